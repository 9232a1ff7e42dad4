"""Tables sharded by vocabulary row (`shard_tables`): each of n devices holds 1/n of W, W' and
the optimizer state, for vocabularies too large for one device.

Layout: a table of V rows is padded to ceil(V/n)·n rows and cut into n blocks of R = ceil(V/n)
consecutive rows; device d holds rows [d·R, (d+1)·R). The optimizer's per-row state (Adagrad's
sums, Adam's moments, a momentum trace) is cut the same way; its other leaves (step counts) are
replicated. No index ever reaches a padding row, so padding is never read into a step nor written.

One step on device d, inside `jax.shard_map`:

1. its batch, as the replicated mesh path builds it (batch s·n + d, keys fold_in(step_key, d)),
   and the objective's row indices;
2. fetch: the indices are all-gathered over the mesh; every device reads the rows it owns for
   every device's batch (zeros for the rows owned elsewhere), and a reduce-scatter
   (`psum_scatter`) hands each device the rows of its own batch, exactly (a row has one owner;
   the other devices add zeros);
3. the loss and the row gradients, by the one row step every runner uses (`step.row_step`);
4. update: the indices and row gradients are all-gathered; each device turns every device's batch
   into row updates against its shard (`optim.sparse_row_updates`, indices localised: a row owned
   elsewhere is mapped past the shard's end, where the scatters drop it) and adds them all. The
   optimizer's per-row state moves by the mean of the batches' changes.

That is the replicated tables' step with a sync after every step (sync_every=1, sync_combine="sum":
every replica steps its own batch from the common tables, the changes are summed and the float
optimizer state averaged over the replicas), computed without a copy of the tables per device:
losses and vectors agree with it to float32 rounding (sums are taken in another order), for
every optimizer. Options that need the whole tables at once are refused by `Config.validate`.

Checkpoints hold the state in the replicated tables' form, gathered to the host and unpadded
(`host_state`); a resumed run pads and shards it again (`RowShards.shard`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import sg_jax.optim as optim
from sg_jax.config import Config
from sg_jax.errors import ConfigError
from sg_jax.mesh import AXIS
from sg_jax.model import Params
from sg_jax.resolved import Resolved
from sg_jax.step import StepStats, TrainState, init_state, make_optimizer, row_step, scan_steps, step_batch

FETCHES = ("psum_scatter", "all_to_all", "psum")  # ways to deliver the fetched rows (see fetch_rows)
FETCH = "psum_scatter"  # the one used (the fastest measured: docs/devices.md); the results are the same


def padded_rows(rows: int, n: int) -> int:
    """Rows of a table of `rows` rows padded to a multiple of the device count n."""
    return -(-rows // n) * n


def _is_float(x) -> bool:
    return jnp.issubdtype(x.dtype, jnp.floating)


class RowShards:
    """Where a sharded run's state lives on a mesh: which leaves are cut by row, their shardings,
    and the moves between the host's unpadded state and the devices' shards."""

    def __init__(self, config: Config, vocab_size: int, optimizer: optax.GradientTransformation, mesh):
        self.config, self.vocab_size, self.optimizer, self.mesh = config, vocab_size, optimizer, mesh
        self.n = int(mesh.devices.size)
        self.template = jax.eval_shape(lambda: init_state(config, vocab_size, optimizer))
        # per opt_state leaf: the table (0: W, 1: W') it is a per-row copy of, or -1
        self.tags = optim.row_state_tables(optax.with_extra_args_support(optimizer), self.template.opt_state,
                                           self.template.params)
        self.by_row = TrainState(Params(True, True), jax.tree.map(lambda t: t >= 0, self.tags), False, False)
        self.specs = jax.tree.map(lambda r: P(AXIS) if r else P(), self.by_row)
        self.shardings = jax.tree.map(lambda s: NamedSharding(mesh, s), self.specs)

    def init(self) -> TrainState:
        """A fresh run's state, made on the devices in its shards (never whole on one device):
        the values of `init_state`, padded."""
        def make():
            return jax.tree.map(self._pad, self.by_row, init_state(self.config, self.vocab_size, self.optimizer))

        return jax.jit(make, out_shardings=self.shardings)()

    def _pad(self, by_row: bool, x):
        if not by_row:
            return x
        extra = padded_rows(x.shape[0], self.n) - x.shape[0]
        return jnp.pad(x, [(0, extra)] + [(0, 0)] * (x.ndim - 1))

    def shard(self, state: TrainState) -> TrainState:
        """An unpadded state (host or device arrays, e.g. read from a checkpoint) padded and cut
        into the devices' shards; each device receives only its block."""
        def one(by_row, x, sharding):
            host = np.asarray(x)
            if not by_row:
                return jax.device_put(host, sharding)
            shape = (padded_rows(host.shape[0], self.n),) + host.shape[1:]

            def block(index):
                start, stop, _ = index[0].indices(shape[0])
                part = host[start:min(stop, host.shape[0])]
                if part.shape[0] < stop - start:
                    part = np.concatenate([part, np.zeros((stop - start - part.shape[0],) + host.shape[1:], host.dtype)])
                return part[(slice(None),) + tuple(index[1:])]

            return jax.make_array_from_callback(shape, sharding, block)

        return jax.tree.map(one, self.by_row, state, self.shardings)


def host_state(state: TrainState, config: Config, vocab_size: int) -> TrainState:
    """The state in the replicated tables' form: every leaf gathered to the host (numpy), the
    padding rows of the tables and of the per-row optimizer state cut off. (A state already in
    that form comes back as it is.)"""
    template = jax.eval_shape(lambda: init_state(config, vocab_size, make_optimizer(config, 1)))
    return jax.tree.map(lambda x, t: np.asarray(x)[: t.shape[0]] if np.ndim(x) else np.asarray(x), state, template)


def host_template(config: Config, vocab_size: int) -> TrainState:
    """A checkpoint template of host arrays (zeros, not touched until read into), so that a
    resumed sharded run never holds its whole tables on one device."""
    template = jax.eval_shape(lambda: init_state(config, vocab_size, make_optimizer(config, 1)))
    return jax.tree.map(lambda t: np.zeros(t.shape, t.dtype), template)


def check_processes() -> None:
    if jax.process_count() > 1:
        raise ConfigError(f"shard_tables cannot be used with num_processes {jax.process_count()} yet: its "
                          f"checkpoints gather the tables on one host (drop shard_tables, or train in one process)")


def make(resolved: Resolved, optimizer, batch_size: int, slots: int | None, shards: RowShards):
    """The jitted call of `config.steps_per_call` steps on row-sharded tables, with every
    runner's signature (`sg_jax.parallel`): run_steps(state, epoch_data, tables, epoch_key, first_step,
    steps_in_epoch) -> (state, StepStats); the state in `shards`, the rest replicated.
    The fetched rows are delivered by the collective FETCH names (benchmarks/bench_shard_tables.py
    sets it to measure the others of FETCHES)."""
    fetch = FETCH
    if fetch not in FETCHES:
        raise ValueError(f"fetch must be one of {', '.join(FETCHES)}, got {fetch!r}")
    config, obj = resolved.config, resolved.objective
    S, n = config.steps_per_call, shards.n
    tx = optax.with_extra_args_support(optimizer)

    def fetch_rows(table, idx, d):
        """The rows idx [M] of the whole table, from the devices that own them: [M, N]."""
        R = table.shape[0]
        local = jax.lax.all_gather(idx, AXIS) - d * R   # [n, M] every device's indices, relative to this shard
        owned = (local >= 0) & (local < R)
        mine = jnp.where(owned[..., None], table[jnp.where(owned, local, 0)], 0)  # [n, M, N]
        if fetch == "psum_scatter":
            return jax.lax.psum_scatter(mine, AXIS, scatter_dimension=0)
        if fetch == "all_to_all":
            return jnp.sum(jax.lax.all_to_all(mine, AXIS, 0, 0), axis=0)
        return jax.lax.psum(mine, AXIS)[d]

    def localise(idx, d, R):
        """Indices relative to this shard; a row owned elsewhere (or marked padding) -> R, past its end."""
        local = idx - d * R
        return jnp.where((local >= 0) & (local < R), local, R)

    def apply_updates(state, grads: Params, indices: Params, norms: Params, d, multiplicity: Params):
        shard_rows = [w.shape[0] for w in state.params]
        every_g = Params(*(jax.lax.all_gather(g, AXIS) for g in grads))       # [n, M, N]
        every_m = jax.tree.map(lambda m: jax.lax.all_gather(m, AXIS), multiplicity)  # [n, M] (None: 1 each)
        every_i = Params(*(localise(jax.lax.all_gather(i, AXIS), d, r) for i, r in zip(indices, shard_rows)))
        every_norms = Params(*(jax.lax.all_gather(x, AXIS) for x in norms))   # [n]

        def source(g, i, x, m):  # one device's batch turned into updates of this shard, from the common state
            found = optim.sparse_row_updates(tx, state.params, state.opt_state, g, i, partner_norms=x,
                                             first_rows=Params(*(d * r for r in shard_rows)), multiplicity=m)
            return found.touched, found.updates, found.row_state

        touched, updates, row_state = jax.vmap(source)(every_g, every_i, every_norms, every_m)
        params = Params(*(w.at[t.reshape(-1)].add(u.reshape((-1,) + w.shape[1:]), mode="drop")
                          for w, t, u in zip(state.params, touched, updates)))

        def put_state(tag, old, new):
            if tag < 0:  # a replicated leaf: every batch gives the same (step counts); floats averaged as replicas
                return jnp.mean(new, axis=0).astype(new.dtype) if _is_float(new) else new[0]
            rows = touched[tag]                                             # [n, M]
            before = old.at[rows].get(mode="fill", fill_value=0)
            change = (new - before) / n                                     # the mean over the n batches
            return old.at[rows.reshape(-1)].add(change.reshape((-1,) + old.shape[1:]), mode="drop")

        return params, jax.tree.map(put_state, shards.tags, state.opt_state, row_state)

    step_layout = resolved.layout

    def one_step(state, epoch, tables, epoch_key, s, d):
        batch, aux = step_batch(config, obj, step_layout, epoch, tables, epoch_key, s, d, n, batch_size, slots,
                                config.window)
        state, loss = row_step(state, obj, step_layout, optimizer, batch, aux, tables,
                               read=lambda table, idx: fetch_rows(table, idx, d),
                               apply=lambda st, _, grads, indices, rows, multiplicity, hidden_norm: apply_updates(
                                   st, grads, indices, Params(*optim.partner_norms(*rows, hidden_norm)), d,
                                   multiplicity))
        return state, loss, step_layout.examples(obj, batch).astype(loss.dtype)

    def device(state, epoch, tables, epoch_key, first_step, steps_in_epoch):
        d = jax.lax.axis_index(AXIS)

        state, (losses, examples) = scan_steps(lambda st, s: one_step(st, epoch, tables, epoch_key, s, d), state,
                                             first_step, steps_in_epoch, S)
        big = jnp.maximum(jnp.max(jnp.abs(state.params.w_in)), jnp.max(jnp.abs(state.params.w_out)))
        return state, StepStats(jax.lax.psum(losses, AXIS), jax.lax.psum(examples, AXIS), jax.lax.pmax(big, AXIS))

    sharded = jax.shard_map(device, mesh=shards.mesh, in_specs=(shards.specs,) + (P(),) * 5,
                            out_specs=(shards.specs, P()), check_vma=False)
    return jax.jit(sharded, donate_argnums=(0,))
