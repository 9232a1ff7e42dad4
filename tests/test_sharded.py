"""Tables sharded by vocabulary row (--shard-tables), on simulated host CPU devices in
subprocesses: the same losses and vectors as the replicated mesh path synced every step, each
device holding ceil(V/n) rows, determinism, exact resume, and the refused combinations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import error

TIMEOUT = 240
# float32 rounding: the sharded step adds the devices' updates into the table in another order
# than the replicated one (old + sum of replicas' (new - old)); over a few hundred steps the
# losses agree to about 1e-7 relative, the vectors to about 1e-6 absolute (measured at most
# 5e-8 and 1.1e-6). The bounds leave a margin of 10x.
LOSS_RTOL = 1e-6
VECTOR_ATOL = 1e-5


def python(code: str, devices: int) -> str:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def cli(*argv, devices: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("XLA_FLAGS", None)  # the command line makes --devices host devices itself
    return subprocess.run([sys.executable, "-m", "sg_jax", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, zipf_text) -> Path:
    path = tmp_path_factory.mktemp("sharded") / "corpus.txt"
    zipf_text(path, n_tokens=12_000, vocab=301)
    return path


@pytest.mark.parametrize("devices", [2, 4])
def test_sharded_tables_train_the_replicated_run_synced_every_step(corpus, devices):
    """SGD with hierarchical softmax (W' has V - 1 rows) and Adagrad with negative sampling: the
    loss curve and every leaf of the final state (vectors and Adagrad's sums) of --shard-tables
    equal the replicated layout with sync_every=1, sync_combine=sum; during the run each device
    holds ceil(rows / n) rows of each table and of the per-row optimizer state."""
    out = python("""
        import dataclasses, json, math
        import jax, numpy as np
        from sg_jax.config import Config
        from sg_jax.data.corpus import load_corpus
        from sg_jax.train import train

        N, LOSS_RTOL, VECTOR_ATOL = %d, %r, %r
        vocab, enc, _ = load_corpus(%r, min_count=1)
        V = len(vocab)
        report = {"V": V}
        cases = [("adagrad", "ns", "padded")]   # per-row state cut into shards (padded to a multiple of N)
        if N == 2:  # the rest once: the row step is the same at every device count
            cases += [("sgd", "hs", "padded"), ("sgd", "ns", "span"), ("adagrad", "nce", "packed")]
        for optimizer, objective, layout in cases:
            # every layout goes through the one row step, sharded or not; the span layout with a
            # duplicate cap, so that its rows' occurrences (Layout.multiplicity) reach every shard
            config = Config(dim=8, window=3, epochs=2, batch_size=32, min_count=1, steps_per_call=16, seed=5,
                            devices=N, sync_every=1, sync_combine="sum", optimizer=optimizer, objective=objective,
                            window_layout=layout, dup_cap=2 if layout == "span" else None)
            shapes = []

            def look(state, position, record):
                if not shapes:
                    for leaf in jax.tree.leaves(state):
                        if leaf.ndim == 2:
                            shapes.append((leaf.shape, sorted({s.data.shape for s in leaf.addressable_shards}),
                                           len(leaf.addressable_shards)))

            rep = train(config, vocab.words, vocab.counts, enc.ids, enc.offsets)
            sh = train(dataclasses.replace(config, shard_tables=True), vocab.words, vocab.counts, enc.ids,
                       enc.offsets, on_call=look)
            a = np.array([r["loss"] for r in rep.history])
            b = np.array([r["loss"] for r in sh.history])
            assert len(a) == len(b) > 5 and np.all(np.isfinite(a))
            np.testing.assert_allclose(b, a, rtol=LOSS_RTOL)
            assert a[-1] < a[0]
            for x, y in zip(jax.tree.leaves(rep.state), jax.tree.leaves(sh.state)):
                x, y = np.asarray(x), np.asarray(y)
                assert x.shape == y.shape and x.dtype == y.dtype
                if x.dtype.kind == "f":  # Adagrad's sums grow to a few hundred: compare them relatively
                    # (float32 sums in two orders over several hundred steps: measured up to 1.3e-6)
                    np.testing.assert_allclose(y, x, atol=VECTOR_ATOL, rtol=1e-5)
                else:
                    np.testing.assert_array_equal(y, x)
            rows = {V, V - 1} if objective == "hs" else {V}
            for (full, shard_shapes, count) in shapes:
                assert count == N and full[0] == N * math.ceil(full[0] / N)
                assert shard_shapes == [(full[0] // N, 8)], (full, shard_shapes)
                assert any(full[0] == N * math.ceil(r / N) for r in rows)
            report[f"{optimizer}-{layout}"] = [s[:2] for s in shapes]
        print(json.dumps(report))
    """ % (devices, LOSS_RTOL, VECTOR_ATOL, str(corpus)), devices)
    report = json.loads(out.strip().splitlines()[-1])
    V = report["V"]
    assert len(report) == (5 if devices == 2 else 2)
    assert len(report.get("sgd-padded", [0, 0])) == len(report.get("sgd-span", [0, 0])) == 2  # W, W'; Adagrad adds a sum each
    assert len(report["adagrad-padded"]) == len(report.get("adagrad-packed", [0] * 4)) == 4
    assert [V + (-V) % devices, 8] in [s[0] for s in report["adagrad-padded"]]


ARGS = ["--dim", "8", "--window", "3", "--epochs", "2", "--batch-size", "32", "--min-count", "1",
        "--steps-per-call", "16", "--seed", "5", "--optimizer", "adagrad", "--quiet", "--devices", "2",
        "--shard-tables"]


def test_sharded_runs_are_deterministic_and_resume_exactly(corpus, tmp_path):
    """Same seed, same vectors bit for bit; a run stopped after its first epoch (its checkpoint the
    unpadded state, as the replicated layout saves it) and resumed equals the run done at once."""
    for name in ("a", "b"):
        proc = cli("train", "--corpus", corpus, "--out", tmp_path / name, *ARGS)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a" / "vectors.txt").read_bytes() == (tmp_path / "b" / "vectors.txt").read_bytes()
    assert json.loads((tmp_path / "a" / "config.json").read_text())["shard_tables"] is True

    first = cli("train", "--corpus", corpus, "--out", tmp_path / "split", *ARGS, "--stop-after-epoch", "1",
                "--checkpoint-every-steps", "7")
    assert first.returncode == 0, first.stderr
    from sg_jax.checkpoint import load_checkpoint
    from sg_jax.runs import CHECKPOINT, read_checkpoint_meta

    config, vocab, meta = read_checkpoint_meta(tmp_path / "split" / CHECKPOINT)
    assert config.shard_tables and meta["position"] == {"epoch": 1, "chunk": 0, "step": 0}
    leaves, _ = load_checkpoint(tmp_path / "split" / CHECKPOINT)
    assert [tuple(x.shape) for x in leaves if getattr(x, "ndim", 0) == 2] == [(len(vocab), 8)] * 4

    other = cli("train", "--corpus", corpus, "--out", tmp_path / "split", *ARGS[:-1], "--resume")
    assert other.returncode == 2 and other.stderr.count("\n") == 1
    assert "shard_tables=True (now False)" in other.stderr
    rest = cli("train", "--corpus", corpus, "--out", tmp_path / "split", *ARGS, "--resume")
    assert rest.returncode == 0, rest.stderr
    assert (tmp_path / "split" / "vectors.txt").read_bytes() == (tmp_path / "a" / "vectors.txt").read_bytes()


@pytest.mark.parametrize("extra,message", [
    (["--clip-norm", "1"], "clip_norm cannot be used with shard_tables"),
    (["--objective", "softmax"], "objective softmax cannot be used with shard_tables"),
    (["--sync-combine", "mean"], "sync_combine mean cannot be used with shard_tables"),
])
def test_refused_combinations_are_one_line_errors(capsys, corpus, tmp_path, extra, message):
    text = error(capsys, "train", "--corpus", corpus, "--out", tmp_path / "out", "--shard-tables", "--devices", "1",
                 *extra)
    assert message in text
    assert not (tmp_path / "out").exists()


def test_the_flag_is_generated_and_recorded():
    from sg_jax.config import Config

    assert Config().shard_tables is False
    assert Config.from_dict({k: v for k, v in Config().to_dict().items() if k != "shard_tables"}).shard_tables is False
    from sg_jax.cli.options import config_to_argv

    assert "--shard-tables" in config_to_argv(Config(shard_tables=True))
