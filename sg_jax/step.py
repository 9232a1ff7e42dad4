"""The training step: TrainState, its initialisation, and the jitted sparse step over many steps.

One step gathers the rows of W and W' that a batch touches, differentiates the objective with
respect to those rows with `jax.grad`, lets an optax transformation turn the row gradients into
updates (`sg_jax.optim.sparse_step`), and scatter-adds them back: one scatter per table, with the
tables donated, so a step costs O(batch x dim) for the sampled objectives. (The exact softmax
touches every row of W' by definition and updates it densely.)

`make_local_steps` scans many steps inside one jitted call, the batches cut on the device by the
run's window layout (`sg_jax.data.layouts`); the runners (`sg_jax.parallel`) wrap it for one
device, replicas and runs trained together, and the sharded runner calls `row_step` with its own
row reads and writes. Keys are positional (`sg_jax.keys`): step s of an epoch chunk draws from
fold_in(steps_key, s), so a run resumed from a checkpoint draws exactly the numbers the
uninterrupted run would have drawn.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

import sg_jax.keys as keys
import sg_jax.optim as optim
from sg_jax.config import Config
from sg_jax.data.layouts import Layout
from sg_jax.model import Params, init_params
from sg_jax.objectives import Objective, get_spec
from sg_jax.resolved import Resolved, resolve




class TrainState(NamedTuple):
    params: Params
    opt_state: Any
    step: jax.Array   # int32 [] optimizer steps taken
    key: jax.Array    # uint32 [2] the run's base key (never advanced: keys are positional)


class StepStats(NamedTuple):
    """What one jitted call reports per step, and the state's size at its end."""

    losses: jax.Array    # [S] summed loss of each step (0 for skipped steps)
    examples: jax.Array  # [S] examples each step summed over
    max_abs: jax.Array   # [] the largest |parameter| after the call (a blow-up shows here first)


def learning_rate_schedule(config: Config, total_steps: int, start_step: int = 0):
    """word2vec's linear decay from lr to lr * min_lr_ratio over `total_steps` optimizer steps
    starting at step `start_step` (a run extended by more epochs decays again over the new ones,
    as a second call to gensim's train() does)."""
    lr = config.learning_rate
    base = optax.linear_schedule(lr, lr * config.min_lr_ratio, max(total_steps, 1))
    if start_step == 0:
        return base
    return lambda count: base(count - start_step)


def make_optimizer(config: Config, total_steps: int, start_step: int = 0) -> optax.GradientTransformation:
    """The config's transformation of a step's row gradients: duplicate capping and clipping (when
    set), then its optimizer on word2vec's decaying learning rate, then the per-row trust region
    (when set: `optim.trust_region`), as one optax chain (`optim.with_trust_region`, which
    `row_step` applies after its scatter)."""
    parts = []
    if config.resolved_dup_cap is not None:
        parts.append(optim.cap_duplicates(config.resolved_dup_cap))
    if config.clip_norm is not None:
        parts.append(optim.clip_by_table_norm(config.clip_norm))
    parts.append(optim.make_optimizer(config.optimizer, learning_rate_schedule(config, total_steps, start_step)))
    if config.trust_region:
        return optim.with_trust_region(*parts, bound=config.trust_region)
    return parts[0] if len(parts) == 1 else optax.chain(*parts)


def out_rows(config: Config, vocab_size: int) -> int:
    return get_spec(config.objective).out_rows(vocab_size)


def init_state(config: Config, vocab_size: int, optimizer: optax.GradientTransformation) -> TrainState:
    dtype = jnp.dtype(config.dtype)
    key = keys.seed_key(config.seed)
    params = init_params(keys.init_key(key, config.key_schedule), vocab_size, config.dim,
                         out_rows=out_rows(config, vocab_size), init=config.init, dtype=dtype)
    return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32), key)


def read_rows(table: jax.Array, idx: jax.Array | None) -> jax.Array:
    """The rows idx of a table on this device (the whole table where idx is None: a dense W')."""
    return table if idx is None else table[idx]


def apply_rows(state: TrainState, optimizer, grads: Params, indices: Params, rows: Params, *,
               multiplicity: Params | None = None, hidden_norm: jax.Array | None = None):
    """(params, opt_state) after the row gradients of one batch on this device's whole tables
    (rows: the rows the batch read, from which the trust region bounds each row's move;
    multiplicity: the occurrences each slot stands for, `Layout.multiplicity`; hidden_norm: the
    partner norm of W' where it is not the rows of W read, `Layout.hidden_norm`)."""
    return optim.sparse_step(optimizer, state.params, state.opt_state, grads, indices, rows=rows,
                             multiplicity=multiplicity, hidden_norm=hidden_norm)


def row_step(state: TrainState, obj: Objective, layout: Layout, optimizer, batch, aux, tables, *,
             read=read_rows, apply=apply_rows):
    """One optimizer step on the rows a batch touches, for every runner. Returns (state, summed loss).

    The layout names the rows of W and W' the batch reads and its loss as a function of them
    (`Layout.scoring`); `read(table, idx)` gathers them, `jax.grad` differentiates the loss with
    respect to them, and `apply(state, optimizer, grads, indices, rows read, multiplicity=,
    hidden_norm=)` turns the row gradients into updates through the optimizer's optax chain (every
    per-row transformation in it: duplicate capping, the trust region) and writes them;
    multiplicity (`Layout.multiplicity`) makes a row's count of occurrences the same in every
    layout, and hidden_norm (`Layout.hidden_norm`) is the norm the trust region holds W' rows to
    where they are not scored against the rows of W read (CBOW's means of contexts). A single
    device, replicas and runs trained together use the defaults; sharded tables pass their own
    read (rows fetched from the devices that own them) and apply (every device's batch applied to
    each shard).
    """
    in_idx, out_idx, loss_of = layout.scoring(obj, batch, aux, tables)
    w_in, w_out = state.params
    rows = (read(w_in, in_idx), read(w_out, out_idx))
    loss, grads = jax.value_and_grad(loss_of)(rows)
    grads, indices = Params(*grads), Params(in_idx, out_idx)
    if _keeps_row_state(optimizer, state):
        indices = mark_padding(grads, indices)
    params, opt_state = apply(state, optimizer, grads, indices, Params(*rows),
                              multiplicity=Params(*layout.multiplicity(obj, batch)),
                              hidden_norm=layout.hidden_norm(obj, batch, rows[0]))
    return TrainState(params, opt_state, state.step + 1, state.key), loss


def mark_padding(grads, indices) -> Params:
    """The indices with every slot whose gradient row is zero moved past the table's end.

    Padding slots read real rows with a zero gradient: marked (an index past the table is
    ignored), a lazy optimizer does not count them as touched and decay their moments."""
    return Params(*(i if i is None else jnp.where(jnp.any(g != 0, axis=-1), i, jnp.iinfo(i.dtype).max)
                    for g, i in zip(grads, indices)))


def step_batch(config: Config, obj: Objective, layout: Layout, epoch, tables, epoch_key, s, d, n: int,
               batch_size: int, slots: int | None, window):
    """(batch, aux) of step s on device d of n: batch s*n + d of the epoch's visiting order as the
    layout cuts it, drawn with fold_in(fold_in(epoch_key, s), d) (fold_in(epoch_key, s) on one
    device), epoch_key the chunk's `keys.steps_key`."""
    step_key = jax.random.fold_in(epoch_key, s)
    if n > 1:  # each device draws its own window sizes and noise words
        step_key = jax.random.fold_in(step_key, d)
    k_window, k_sample = jax.random.split(step_key)
    return layout.make(config, obj, epoch, tables, s * n + d, k_window, k_sample, batch_size=batch_size,
                       slots=slots, window=window)


def _keeps_row_state(optimizer, state: TrainState) -> bool:
    tags = optim.row_state_tables(optax.with_extra_args_support(optimizer), state.opt_state, state.params)
    return any(t >= 0 for t in jax.tree.leaves(tags))


def effective_batch_size(config: Config, vocab_size: int, slots: int | None = None, devices: int = 1, *,
                         layout: Layout | None = None) -> int:
    """Targets per step on each device. By default (`cap_batch`) a batch never holds more targets
    than the vocabulary has words: a step applies the *sum* of the gradients of every occurrence of
    a row, and with a tiny vocabulary each row would receive dozens of them per step (the trust
    region keeps that stable; the cap also keeps several steps per epoch on a small corpus, and
    runs without the trust region stable as they were trained). With `devices` data-parallel
    devices and `split_batch`, the step's batch is split over them, so the summed step does not
    grow with the device count. An objective with a memory bound (the exact softmax's [B, V]
    scores) caps it further."""
    batch = config.resolved_batch_size
    if config.cap_batch:
        batch = min(batch, max(vocab_size, 16))
    if devices > 1 and config.split_batch:
        batch = max(1, batch // devices)
    batch = (layout or resolve(config).layout).batch_size(config, batch)
    bound = get_spec(config.objective).max_predictions
    if bound is None:
        return batch
    per_target = 1 if config.pairs else 2 * min(config.window, slots or config.window)
    return min(batch, max(1, bound(vocab_size) // per_target))


def make_local_steps(resolved: Resolved, optimizer, batch_size: int, slots: int | None = None, devices: int = 1):
    """The steps one device runs between collectives, for every runner but the sharded one:
    local_steps(state, epoch, tables, epoch_key, first_step, steps_in_epoch, d, count, window)
    -> (state, (losses [count], examples [count])), step s taking batch s * devices + d of the
    epoch's visiting order (`step_batch`) and `row_step`'s update. count defaults to
    steps_per_call, window to the config's (runs trained together pass their own)."""
    config, obj, layout = resolved.config, resolved.objective, resolved.layout

    def one_step(state, epoch, tables, epoch_key, s, d, window):
        batch, aux = step_batch(config, obj, layout, epoch, tables, epoch_key, s, d, devices, batch_size, slots,
                                window)
        examples = layout.examples(obj, batch)
        state, loss = row_step(state, obj, layout, optimizer, batch, aux, tables)
        return state, loss, examples.astype(loss.dtype)

    def local_steps(state, epoch, tables, epoch_key, first_step, steps_in_epoch, d, count=config.steps_per_call,
                    window=config.window):
        return scan_steps(lambda st, s: one_step(st, epoch, tables, epoch_key, s, d, window), state, first_step,
                          steps_in_epoch, count)

    return local_steps


def max_abs(params: Params) -> jax.Array:
    """The largest |parameter| of both tables (a blow-up shows here first)."""
    return jnp.maximum(jnp.max(jnp.abs(params.w_in)), jnp.max(jnp.abs(params.w_out)))


def scan_steps(step_fn, state: TrainState, first_step, steps_in_epoch, count: int):
    """`count` steps from first_step in one lax.scan: step_fn(state, s) -> (state, loss, examples);
    steps at or beyond steps_in_epoch are skipped (the state passes through, loss and examples 0).
    Returns (state, (losses [count], examples [count]))."""
    def body(state, i):
        s = first_step + i

        def skip(state):
            zero = jnp.zeros((), state.params.w_in.dtype)
            return state, zero, zero

        state, loss, examples = jax.lax.cond(s < steps_in_epoch, lambda st: step_fn(st, s), skip, state)
        return state, (loss, examples)

    return jax.lax.scan(body, state, jnp.arange(count))
