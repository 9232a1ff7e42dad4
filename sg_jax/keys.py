"""The run's random keys: one base key, and a named stream of keys for each thing drawn.

The base key comes from the seed (`seed_key`); every random number of a run is drawn from a key
derived from it by position, never by advancing a state, so a run resumed from a checkpoint draws
exactly what the uninterrupted run would have drawn. Key schedule 2 (the default):

    initialisation      init_key(base)                      = fold_in(base, INIT)
    chunk c of epoch e  chunk_key(base, e * n_chunks + c)   = fold_in(fold_in(base, EPOCHS), e * n_chunks + c)
      its subsampling and visiting order   data_key(chunk)  = fold_in(chunk, 0)
      its steps                            steps_key(chunk) = fold_in(chunk, 1); step s uses
                                           fold_in(steps, s), device d of several fold_in(that, d)
    rows added by a vocabulary update      growth_key(base, new_size) = fold_in(fold_in(base, GROWTH), new_size)

Each stream has its own root, so no two purposes ever share a key. Schedule 1, that of the runs
saved before schedule 2 (their config lacks `key_schedule`), drew the initialisation and the first
chunk's subsampling from the same key: init fold_in(base, 0), chunk fold_in(base, e * n_chunks +
c) used as its own data key, growth fold_in(base, new_size). Such a run resumes under schedule 1,
so it continues exactly as it was trained.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

SCHEDULES = (1, 2)
SCHEDULE = 2          # new runs
INIT, EPOCHS, GROWTH = 0, 1, 2   # the streams' roots under schedule 2


def seed_key(seed: int) -> jax.Array:
    """The run's base key from a 64-bit seed: key data (hi, lo), which is `PRNGKey(seed)` for
    every seed below 2**32 and uses all 64 bits above."""
    return jnp.asarray(np.array([seed >> 32, seed & 0xFFFFFFFF], dtype=np.uint32))


def init_key(base, schedule: int = SCHEDULE) -> jax.Array:
    return jax.random.fold_in(base, INIT if schedule == 2 else 0)


def chunk_key(base, index: int, schedule: int = SCHEDULE) -> jax.Array:
    """The key of the `index`-th epoch chunk of the run (epoch e, chunk c: e * n_chunks + c)."""
    root = jax.random.fold_in(base, EPOCHS) if schedule == 2 else base
    return jax.random.fold_in(root, index)


def data_key(chunk, schedule: int = SCHEDULE) -> jax.Array:
    """The chunk's subsampling and visiting order (`sg_jax.data.epoch.prepare_epoch`)."""
    return jax.random.fold_in(chunk, 0) if schedule == 2 else chunk


def steps_key(chunk) -> jax.Array:
    """The root of the chunk's steps' draws (windows, noise words: `step.step_batch`)."""
    return jax.random.fold_in(chunk, 1)


def growth_key(base, new_size: int, schedule: int = SCHEDULE) -> jax.Array:
    root = jax.random.fold_in(base, GROWTH) if schedule == 2 else base
    return jax.random.fold_in(root, new_size)
