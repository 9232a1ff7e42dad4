"""Runs trained together (sg_jax.study.together) against the same runs trained alone: vectors and
losses, the zero padding of smaller dimensions, the grouping rules, resuming a group from its
runs' checkpoints, and the sweep's grouped path, on one device here and on two simulated devices
in a subprocess.

Trained together, a run's sums may associate differently (vmapped dot products, padded
reductions), so its vectors equal the run alone to float32 rounding, not bit for bit: `TOL`
is about 20x the largest difference seen (1.4e-6 on vectors of size 0.4-1.5, with Adam). A window mask
or a padding that leaked would differ by orders of magnitude more.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sg_jax import cli
from sg_jax.config import Config
from sg_jax.runs import CHECKPOINT, read_corpus, run_training
from sg_jax.study.together import Member, plan_groups, run_together, train_together
from sg_jax.train import train

TOL = 2e-5
BASE = Config(epochs=1, batch_size=32, min_count=1, steps_per_call=16, seed=5, dim=8, window=3)
GRID = [(1, 8), (3, 12), (2, 5)]  # (window, dim): the group pads to window 3, dim 12


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, zipf_text) -> Path:
    path = tmp_path_factory.mktemp("together") / "corpus.txt"
    zipf_text(path, n_tokens=10_000, vocab=250)
    return path


@pytest.fixture(scope="module")
def data(corpus):
    return read_corpus(BASE, str(corpus))


def alone(config: Config, data):
    v, e = data.vocab, data.encoded
    return train(config, v.words, v.counts, e.ids, e.offsets)


def together(configs, data, **kw):
    v, e = data.vocab, data.encoded
    return train_together([Member(c) for c in configs], v.words, v.counts, e.ids, e.offsets, **kw)


def assert_same_run(a, b):
    assert a.vectors().shape == b.vectors().shape
    np.testing.assert_allclose(b.vectors(), a.vectors(), rtol=0, atol=TOL)
    np.testing.assert_allclose(np.asarray(b.state.params.w_out), np.asarray(a.state.params.w_out), rtol=0, atol=TOL)
    assert [r["step"] for r in a.history] == [r["step"] for r in b.history]
    np.testing.assert_allclose([r["loss"] for r in b.history], [r["loss"] for r in a.history], rtol=1e-5)


@pytest.mark.parametrize("settings", [{}, {"optimizer": "adam", "lr": 0.01}, {"arch": "cbow", "cbow_update": "sum"},
                                      {"objective": "hs"},
                                      {"window_layout": "span", "share_negatives": "pool", "span_length": 8,
                                       "noise_pool": 8}],
                         ids=["sgd", "adam", "cbow", "hs", "span"])
def test_runs_trained_together_equal_the_runs_trained_alone(data, settings):
    configs = [dataclasses.replace(BASE, window=w, dim=d, **settings) for w, d in GRID]
    for a, b in zip((alone(c, data) for c in configs), together(configs, data)):
        assert_same_run(a, b)


def test_the_padded_coordinates_never_move(data):
    """Zero padding is exact: the coordinates a smaller run is padded with stay exactly zero in both
    tables (their gradients are multiples of each other's zeros), whatever the optimizer."""
    configs = [dataclasses.replace(BASE, window=w, dim=d, optimizer="adagrad") for w, d in GRID]
    seen = {}
    together(configs, data, on_call=lambda states, pos, records: seen.update(states=states))
    for i, c in enumerate(configs):
        for table in seen["states"].params:
            padding = np.asarray(table[i][:, c.dim:])
            assert padding.shape[1] == 12 - c.dim
            assert not padding.any()
    # and the tables did move: the check above is not about an untrained state
    assert np.abs(np.asarray(seen["states"].params.w_out)).max() > 0.01


def test_a_different_window_changes_the_result(data):
    """The masked window is the run's own: the same run with its neighbour's window differs."""
    configs = [dataclasses.replace(BASE, window=w, dim=8) for w in (1, 3)]
    a, b = together(configs, data)
    assert np.abs(a.vectors() - b.vectors()).max() > 100 * TOL


def test_groups_cover_every_run_once_and_respect_the_rules():
    grid = [dataclasses.replace(BASE, window=w, dim=d) for w in (1, 2, 3, 5, 8) for d in (25, 50, 100, 200)]
    for size in (1, 2, 3, 4):
        groups = plan_groups(grid, size)
        assert sorted(i for g in groups for i in g) == list(range(len(grid)))
        assert all(1 <= len(g) <= size for g in groups)
    # noise drawn per (target, context) pair depends on the slot count: only equal windows group
    per_pair = [dataclasses.replace(c, share_negatives="none") for c in grid]
    for g in plan_groups(per_pair, 4):
        assert len({per_pair[i].window for i in g}) == 1
    # runs that differ in anything but window and dimension never group
    mixed = [dataclasses.replace(BASE, seed=s, window=w) for s in (0, 1) for w in (1, 2)]
    for g in plan_groups(mixed, 4):
        assert len({mixed[i].seed for i in g}) == 1
    # with equal sizes the grouping prefers equal dimensions (padding a dimension costs most)
    assert all(len({grid[i].dim for i in g}) == 1 for g in plan_groups(grid, 5))


def test_a_group_resumes_from_its_runs_checkpoints(data, corpus, tmp_path):
    """Runs interrupted after one epoch (their checkpoints) finish together as they would have
    alone; runs standing at different places train in separate groups."""
    configs = [dataclasses.replace(BASE, window=w, dim=d, epochs=2) for w, d in GRID]
    dirs = [tmp_path / f"run{i}" for i in range(len(configs))]
    for c, d in zip(configs[:2], dirs[:2]):  # two runs stopped after epoch 1, the third not started
        run_training(c, str(corpus), d, until_epoch=1, loaded=data, log=lambda s: None)
        assert (d / CHECKPOINT).exists()
    outputs = run_together(configs, dirs, data, write_vectors=True)
    for c, d, o in zip(configs, dirs, outputs):
        a = alone(c, data)
        np.testing.assert_allclose(o.result.vectors(), a.vectors(), rtol=0, atol=TOL)
        assert (d / "vectors.txt").exists() and (d / "run.json").exists()
        metrics = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in metrics] == [r["step"] for r in a.history]


def test_the_sweep_trains_runs_together_with_the_same_scores(tmp_path):
    tiny = ["sweep", "--corpus", "toy:groups", "--windows", "1,2", "--dims", "4,8", "--epochs", "1", "--quiet"]
    assert cli.main([*tiny, "--out", str(tmp_path / "one"), "--together", "1"]) == 0
    assert cli.main([*tiny, "--out", str(tmp_path / "four"), "--together", "4"]) == 0
    one, four = ({r["run_id"]: r for r in map(json.loads, (tmp_path / n / "runs.jsonl").read_text().splitlines())}
                 for n in ("one", "four"))
    assert one.keys() == four.keys()
    for key, r in four.items():
        assert sorted(r["trained_with"]) == sorted(one)
        assert r["device"]["together"] == 4 and r["config"]["devices"] == 1
        assert "trained_with" not in one[key]
        assert r["loss_curve"]["step"] == one[key]["loss_curve"]["step"]
        np.testing.assert_allclose(r["loss_curve"]["loss"], one[key]["loss_curve"]["loss"], rtol=1e-5)
        assert r["wordsim353"]["n_pairs"] == one[key]["wordsim353"]["n_pairs"]


def test_runs_spread_over_two_devices_equal_the_runs_alone(corpus):
    """Three runs on two simulated devices (the group filled to four with a copy): each equals
    the run alone on one device."""
    code = f"""
        import dataclasses, numpy as np
        from sg_jax.config import Config
        from sg_jax.runs import read_corpus
        from sg_jax.study.together import Member, train_together
        from sg_jax.train import train
        base = Config(epochs=1, batch_size=32, min_count=1, steps_per_call=16, seed=5, dim=8, window=3)
        data = read_corpus(base, {str(corpus)!r})
        v, e = data.vocab, data.encoded
        configs = [dataclasses.replace(base, window=w, dim=d) for w, d in {GRID!r}]
        runs = train_together([Member(c) for c in configs], v.words, v.counts, e.ids, e.offsets, devices=2)
        for c, r in zip(configs, runs):
            a = train(c, v.words, v.counts, e.ids, e.offsets)
            print(float(np.abs(a.vectors() - r.vectors()).max()), r.vectors().shape == (len(v.words), c.dim))
    """
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.split("\n")
    rows = [line.split() for line in lines if line.strip()]
    assert len(rows) == 3
    for diff, shape_ok in rows:
        assert float(diff) <= TOL and shape_ok == "True"
