"""The research changes the architecture is built for, made from outside the package: a new window
layout registered from this file trains through the runners, and a per-row rule added to the
optimizer's optax chain holds under every runner (one device, replicas on 2 devices, runs
trained together, tables sharded by row)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sg_jax.config import Config
from sg_jax.data.corpus import load_corpus
from sg_jax.data.layouts import LAYOUTS, Layout, register
from sg_jax.data.layouts.padded import make_batch
from sg_jax.errors import ConfigError
from sg_jax.train import train

TIMEOUT = 300


class FixedWindow(Layout):
    """Every target with its whole window (no dynamic window), as word2vec's -window with the
    reduced window switched off: a layout written outside the package."""

    name = "fixed_test"
    summary = "2 x window slots per target, the full window always"

    def refusal(self, config, obj):
        if config.pairs:
            return "window_layout fixed_test cannot be used with pairs"
        return super().refusal(config, obj)

    def make(self, config, obj, epoch, tables, step, k_window, k_sample, *, batch_size, slots, window):
        batch = make_batch(epoch, step, k_window, batch_size=batch_size, window=window, dynamic=False, slots=slots)
        return batch, obj.sample(k_sample, batch, tables)


@pytest.fixture
def fixed_layout():
    layout = register(FixedWindow())
    yield layout
    del LAYOUTS[layout.name]


@pytest.fixture(scope="module")
def small():
    return load_corpus("toy:groups", min_count=1)[:2]


def _train(config, small):
    vocab, enc = small
    return train(config, vocab.words, vocab.counts, enc.ids, enc.offsets)


def test_a_layout_registered_from_outside_trains_as_the_computation_it_describes(fixed_layout, small):
    """The registered layout is a choice of window_layout (validated, recorded in the config) and
    trains the same vectors, bit for bit, as the padded layout with the dynamic window switched
    off: the same batches, scored and stepped by the same row step."""
    base = dict(dim=8, window=3, epochs=2, sample=0.0, batch_size=16, steps_per_call=4, seed=3)
    config = Config(window_layout="fixed_test", **base).validate()
    assert config.layout == "fixed_test" and config.sharing == "target"
    assert Config.from_dict(config.to_dict()).window_layout == "fixed_test"
    mine = _train(config, small)
    same = _train(Config(window_layout="padded", dynamic_window=False, **base), small)
    dynamic = _train(Config(window_layout="padded", **base), small)
    assert np.array_equal(np.asarray(mine.state.params.w_in), np.asarray(same.state.params.w_in))
    assert not np.array_equal(np.asarray(mine.state.params.w_in), np.asarray(dynamic.state.params.w_in))
    with pytest.raises(ConfigError, match="fixed_test cannot be used with pairs"):
        Config(window_layout="fixed_test", pairs=True, **base).validate()


def test_an_unregistered_layout_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="window_layout must be one of auto, padded, packed, span"):
        Config(window_layout="fixed_test").validate()


# The per-row rule: an optimizer whose optax chain never moves row 0 (the corpus's most frequent
# word) of either table. Defined in the subprocess too (simulated devices need a fresh JAX).
RULE = """
import jax, jax.numpy as jnp, optax
from sg_jax import optim

def frozen_row_zero():
    def update(updates, state, params=None, *, indices=None, **extra):
        def one(u, idx):
            if idx is None:                      # a dense table: row 0 is row 0
                return u.at[0].set(0)
            keep = (idx != 0).reshape(idx.shape + (1,) * (u.ndim - idx.ndim))
            return u * keep.astype(u.dtype)
        return jax.tree.map(one, updates, indices, is_leaf=lambda x: x is None), state
    return optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), update)

@optim.register("sgd_frozen0")
def _sgd_frozen0(schedule):
    return optax.chain(optax.sgd(schedule), frozen_row_zero())
"""


def test_a_per_row_rule_holds_under_every_runner(tmp_path):
    """Row 0 keeps its initial vector in W and W' under one device, 2 replicated devices, two runs
    trained together on 2 devices and tables sharded over 2 devices, while the other rows move."""
    code = RULE + textwrap.dedent("""
        import dataclasses, json
        import numpy as np
        from sg_jax.config import Config
        from sg_jax.data.corpus import load_corpus
        from sg_jax.step import init_state, make_optimizer
        from sg_jax.study.together import Member, train_together
        from sg_jax.train import train

        vocab, enc, _ = load_corpus("toy:groups", min_count=1)
        assert int(np.argmax(vocab.counts)) == 0
        base = Config(dim=8, window=3, epochs=2, sample=0.0, batch_size=16, steps_per_call=4, seed=1,
                      optimizer="sgd_frozen0")
        start = init_state(base, len(vocab), make_optimizer(base, 10)).params
        runs = {
            "one device": [train(base, vocab.words, vocab.counts, enc.ids, enc.offsets)],
            "2 replicated devices": [train(dataclasses.replace(base, devices=2), vocab.words, vocab.counts,
                                           enc.ids, enc.offsets)],
            "sharded tables": [train(dataclasses.replace(base, devices=2, shard_tables=True), vocab.words,
                                     vocab.counts, enc.ids, enc.offsets)],
            "together": train_together([Member(base), Member(dataclasses.replace(base, window=2))], vocab.words,
                                       vocab.counts, enc.ids, enc.offsets, devices=2),
        }
        report = {}
        for name, results in runs.items():
            for i, r in enumerate(results):
                w_in, w_out = (np.asarray(x) for x in r.state.params)
                report[f"{name} {i}"] = [
                    bool(np.array_equal(w_in[0], np.asarray(start.w_in)[0])),
                    bool(np.array_equal(w_out[0], np.asarray(start.w_out)[0])),
                    float(np.abs(w_in[1:] - np.asarray(start.w_in)[1:]).max()),
                    float(np.abs(w_out[1:] - np.asarray(start.w_out)[1:]).max())]
        print(json.dumps(report))
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(report) == 5
    for name, (in_kept, out_kept, in_moved, out_moved) in report.items():
        assert in_kept and out_kept, name
        assert in_moved > 1e-3 and out_moved > 1e-3, name
