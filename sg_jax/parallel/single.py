"""One device: the row step scanned `steps_per_call` times in one jitted call, the state donated."""

from __future__ import annotations

import functools

import jax

from sg_jax.resolved import Resolved
from sg_jax.step import StepStats, make_local_steps, max_abs


def make(resolved: Resolved, optimizer, batch_size: int, slots: int | None):
    local_steps = make_local_steps(resolved, optimizer, batch_size, slots)

    @functools.partial(jax.jit, donate_argnums=(0,))
    def run_steps(state, epoch, tables, epoch_key, first_step, steps_in_epoch):
        state, (losses, examples) = local_steps(state, epoch, tables, epoch_key, first_step, steps_in_epoch, 0)
        return state, StepStats(losses, examples, max_abs(state.params))

    return run_steps
