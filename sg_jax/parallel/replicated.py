"""Replicas: a copy of the tables on each of n devices, each stepping its own batches (batch
s·n + d on device d, its own window and noise draws), the replicas' changes combined every
`sync_every` steps over the mesh by one of the rules of `sg_jax.combine_rules` (`COMBINES` has
their arithmetic; see `sg_jax.mesh` and docs/devices.md for the measurements).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from sg_jax.registry import lookup
from sg_jax.combine_rules import SYNC_COMBINES
from sg_jax.mesh import AXIS, make_mesh
from sg_jax.optim.trust import held_scale, partner_norms
from sg_jax.resolved import Resolved
from sg_jax.step import StepStats, TrainState, make_local_steps, max_abs

# sync_combine="cap": a row's combined change is at most this many times the largest change one
# replica made to it. 2 makes "cap" equal "sum" on 2 devices (|d1 + d2| <= 2 max |di|); 2.5 and 3
# diverged on 4 devices (docs/devices.md)
CAP_FACTOR = 2.0


def _summed(old: jax.Array, new: jax.Array) -> jax.Array:
    """sum: one large step over all the replicas' batches."""
    return old + jax.lax.psum(new - old, AXIS)


def _averaged(old: jax.Array, new: jax.Array) -> jax.Array:
    """mean: each row's summed change over the replicas that touched it."""
    delta = new - old
    touched = jax.lax.psum(jnp.any(delta != 0, axis=-1).astype(delta.dtype), AXIS)
    return old + jax.lax.psum(delta, AXIS) / jnp.maximum(touched, 1.0)[:, None]


def _capped(old: jax.Array, new: jax.Array) -> jax.Array:
    """cap: the sum, each row's capped at CAP_FACTOR times the largest change one replica made to
    it. Replicas that moved a frequent row the same way (each converging on the same point from
    the same start) would overshoot n-fold; noise-like or single-replica changes pass."""
    delta = new - old
    total = jax.lax.psum(delta, AXIS)
    largest = jax.lax.pmax(jnp.linalg.norm(delta, axis=-1), AXIS)
    norm = jnp.linalg.norm(total, axis=-1)
    limit = CAP_FACTOR * largest
    scale = jnp.where(norm > limit, limit / jnp.where(norm > 0, norm, 1.0), 1.0)
    return old + total * scale[:, None]


def _each_table(rule: Callable[[jax.Array, jax.Array], jax.Array]):
    """A rule that combines each table on its own, as an entry of `COMBINES`."""
    def combine(start, new, bound: float):
        del bound
        return jax.tree.map(rule, start, new)

    return combine


def combine_trust(start, new, bound: float):
    """sync_combine="trust": the tables after a sync, the replicas' changes summed and each row's
    sum U_r held to the trust region as one device's step over the union of their batches would
    hold it: moved by U_r while |U_r| * P <= bound, else by U_r * bound / (|U_r| * P), P the
    largest row norm of the other table at the sync's start (at least the largest among the rows
    the steps read, so the bound is never looser than a step's). `bound` is the trust region times
    the steps since the last sync, the furthest one device's steps could move a score."""
    partners = partner_norms(*start)   # per table: the other table's longest row
    out = []
    for old, changed, partner in zip(start, new, partners):
        total = jax.lax.psum(changed - old, AXIS)
        scale = held_scale(jnp.linalg.norm(total, axis=-1) * partner, bound)
        out.append(old + total * scale[:, None].astype(total.dtype))
    return type(start)(*out)


# each rule of `sg_jax.combine_rules.SYNC_COMBINES`, by name: (the tables at the last sync, this
# replica's tables now, the trust region times the steps since the sync) -> the tables every
# replica continues from; called inside the mesh
COMBINES: dict[str, Callable] = {
    "cap": _each_table(_capped),
    "sum": _each_table(_summed),
    "mean": _each_table(_averaged),
    "trust": combine_trust,
}
assert COMBINES.keys() == SYNC_COMBINES.keys(), "every combine rule has its arithmetic here"


def make(resolved: Resolved, optimizer, batch_size: int, slots: int | None):
    """The jitted call of `steps_per_call` steps on `resolved.devices` replicas, syncing every
    `resolved.sync_every` steps (a divisor of steps_per_call: the syncs fall at fixed steps of
    every call). Losses and examples are summed over the replicas."""
    config, n, k = resolved.config, resolved.devices, resolved.sync_every
    S = config.steps_per_call
    local_steps = make_local_steps(resolved, optimizer, batch_size, slots, n)
    combine = lookup(COMBINES, "sync_combine rule", config.sync_combine)   # resolved: never auto

    def replica(state, epoch, tables, epoch_key, first_step, steps_in_epoch):
        d = jax.lax.axis_index(AXIS)

        def synced(state, j):
            start = state.params
            state, (losses, examples) = local_steps(state, epoch, tables, epoch_key, first_step + j * k,
                                                    steps_in_epoch, d, k)
            # every replica adds the sum of all replicas' changes to the tables it started from
            params = combine(start, state.params, config.trust_region * k)
            opt_state = jax.tree.map(
                lambda x: jax.lax.pmean(x, AXIS) if jnp.issubdtype(x.dtype, jnp.floating) else x, state.opt_state)
            return TrainState(params, opt_state, state.step, state.key), (losses, examples)

        state, (losses, examples) = jax.lax.scan(synced, state, jnp.arange(S // k))
        losses, examples = losses.reshape(S), examples.reshape(S)
        return state, StepStats(jax.lax.psum(losses, AXIS), jax.lax.psum(examples, AXIS), max_abs(state.params))

    sharded = jax.shard_map(replica, mesh=make_mesh(n), in_specs=(P(),) * 6, out_specs=(P(), P()), check_vma=False)
    return jax.jit(sharded, donate_argnums=(0,))
