"""The run's key streams (sg_jax.keys): distinct keys for distinct purposes under the default
schedule, the earlier schedule kept for the runs saved under it, and the config's record of it."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import sg_jax.keys as keys
from sg_jax.config import KEY_SCHEDULE, KEY_SCHEDULES, Config
from sg_jax.data.corpus import load_corpus
from sg_jax.errors import ConfigError
from sg_jax.train import train


def _bits(key) -> tuple:
    return tuple(np.asarray(jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
                            else key).ravel().tolist())


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3])
def test_every_purpose_draws_from_its_own_key(seed):
    base = keys.seed_key(seed)
    drawn = {"init": keys.init_key(base), "growth 50": keys.growth_key(base, 50)}
    for index in range(3):  # epoch chunks
        chunk = keys.chunk_key(base, index)
        drawn[f"data {index}"] = keys.data_key(chunk)
        drawn[f"steps {index}"] = keys.steps_key(chunk)
        for s in range(3):
            drawn[f"step {index}.{s}"] = jax.random.fold_in(keys.steps_key(chunk), s)
    bits = {name: _bits(k) for name, k in drawn.items()}
    assert len(set(bits.values())) == len(bits)


def test_the_earlier_schedule_is_kept_for_the_runs_saved_under_it():
    """Schedule 1 drew the initialisation and the first chunk's subsampling from one key (why
    schedule 2 exists); runs saved before the field resume under it."""
    base = keys.seed_key(3)
    assert _bits(keys.init_key(base, 1)) == _bits(keys.data_key(keys.chunk_key(base, 0, 1), 1))
    assert _bits(keys.init_key(base, 2)) != _bits(keys.data_key(keys.chunk_key(base, 0, 2), 2))
    saved = {k: v for k, v in Config().to_dict().items() if k != "key_schedule"}
    assert Config.from_dict(saved).key_schedule == 1
    assert Config().key_schedule == KEY_SCHEDULE == keys.SCHEDULE and KEY_SCHEDULES == keys.SCHEDULES
    with pytest.raises(ConfigError, match="key_schedule must be one of 1, 2"):
        Config(key_schedule=3).validate()


def test_the_schedules_start_alike_and_draw_differently():
    """Both schedules initialise from the same key (the initial vectors are equal); the epochs'
    draws differ, so the trained vectors do."""
    vocab, enc, _ = load_corpus("toy:groups", min_count=1)
    config = Config(dim=8, window=3, epochs=1, batch_size=16, steps_per_call=4, seed=2)
    runs = [train(dataclasses.replace(config, key_schedule=s), vocab.words, vocab.counts, enc.ids, enc.offsets)
            for s in (1, 2)]
    a, b = (np.asarray(r.state.params.w_in) for r in runs)
    assert not np.array_equal(a, b)
    from sg_jax.step import init_state, make_optimizer

    starts = [init_state(dataclasses.replace(config, key_schedule=s), len(vocab), make_optimizer(config, 1))
              for s in (1, 2)]
    assert np.array_equal(np.asarray(starts[0].params.w_in), np.asarray(starts[1].params.w_in))
