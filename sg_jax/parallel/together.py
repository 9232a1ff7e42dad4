"""Runs trained together: several one-device runs stacked on a leading run axis and vmapped into
one jitted call, the run axis spread over the devices (each trains its share of the runs; nothing
is exchanged). Their windows and dimensions are padded to the group's widest, exactly
(`sg_jax.study.together` explains why, groups the runs and drives them).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from sg_jax.mesh import AXIS, make_mesh
from sg_jax.resolved import Resolved
from sg_jax.step import StepStats, make_local_steps, max_abs


def make(resolved: Resolved, optimizer, batch_size: int, slots: int | None, devices: int = 1):
    """run_steps(states, windows, epoch_data, tables, epoch_key, first_step, steps_in_epoch) ->
    (states, StepStats per run): the states stacked on a leading run axis, `windows` int32 [runs]
    (each at most `slots`), every run the one-device run of its config."""
    local_steps = make_local_steps(resolved, optimizer, batch_size, slots)

    def runs(states, windows, epoch, tables, epoch_key, first_step, steps_in_epoch):
        def one(state, window):
            state, (losses, examples) = local_steps(state, epoch, tables, epoch_key, first_step, steps_in_epoch, 0,
                                                    window=window)
            return state, StepStats(losses, examples, max_abs(state.params))

        return jax.vmap(one)(states, windows)

    if devices == 1:
        return jax.jit(runs, donate_argnums=(0,))
    run_axis = P(AXIS)
    sharded = jax.shard_map(runs, mesh=make_mesh(devices), in_specs=(run_axis, run_axis) + (P(),) * 5,
                            out_specs=(run_axis, run_axis), check_vma=False)
    return jax.jit(sharded, donate_argnums=(0,))


def pad_state(state, wide):
    """`state` zero-padded to the shapes of `wide` (a state of the group's widest dimension)."""
    def pad(x, w):
        x = jnp.asarray(x)
        return x if x.shape == w.shape else jnp.pad(x, [(0, b - a) for a, b in zip(x.shape, w.shape)])

    return jax.tree.map(pad, state, wide)


def unpad_state(state, template):
    """`state` cut back to the shapes of `template` (the run's own)."""
    return jax.tree.map(lambda x, t: x[tuple(slice(0, n) for n in t.shape)], state, template)


def member(states, i: int):
    """Run i's state out of stacked states (still padded)."""
    return jax.tree.map(lambda x: x[i], states)
