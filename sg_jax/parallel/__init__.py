"""The runners: how a run's steps use its devices, each one jitted call of `steps_per_call` steps
around the one row step (`sg_jax.step.row_step`).

  single      one device (`single.py`)
  replicated  a copy of the tables on each device, each stepping its own batches, the replicas'
              changes combined every `sync_every` steps (`replicated.py`)
  sharded     the tables split by vocabulary row over the devices, every step synchronous
              (`sharded.py`)
  together    several one-device runs of a study vmapped into one program, the runs spread over
              the devices (`together.py`; asked for by the study that groups them,
              `sg_jax.study.together`)

`strategy` chooses among the first three from the resolved run (`sg_jax.resolved`), here and
nowhere else. Every runner's call is
run_steps(state, epoch_data, tables, epoch_key, first_step, steps_in_epoch) -> (state, StepStats)
(runs trained together take their windows after the states: see `together.make`).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from sg_jax.mesh import make_mesh
from sg_jax.parallel import replicated, sharded, single
from sg_jax.resolved import Resolved


class Runner(NamedTuple):
    run_steps: Callable
    shards: Any = None   # sharded.RowShards: where the state lives, for the sharded runner


def strategy(resolved: Resolved) -> str:
    """The runner a run takes: one device, replicas, or tables sharded by row."""
    if resolved.devices == 1:
        return "single"
    return "sharded" if resolved.config.shard_tables else "replicated"


def _sharded(resolved: Resolved, optimizer, batch_size: int, slots: int | None, vocab_size: int) -> Runner:
    shards = sharded.RowShards(resolved.config, vocab_size, optimizer, make_mesh(resolved.devices))
    return Runner(sharded.make(resolved, optimizer, batch_size, slots, shards), shards)


RUNNERS: dict[str, Callable[..., Runner]] = {
    "single": lambda resolved, optimizer, batch_size, slots, vocab_size: Runner(
        single.make(resolved, optimizer, batch_size, slots)),
    "replicated": lambda resolved, optimizer, batch_size, slots, vocab_size: Runner(
        replicated.make(resolved, optimizer, batch_size, slots)),
    "sharded": _sharded,
}


def make_runner(resolved: Resolved, optimizer, batch_size: int, slots: int | None, vocab_size: int) -> Runner:
    """The run's runner (`strategy`), its jitted call built for `batch_size` targets per device."""
    return RUNNERS[strategy(resolved)](resolved, optimizer, batch_size, slots, vocab_size)
