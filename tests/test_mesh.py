"""Data-parallel training on a device mesh, on simulated host CPU devices in subprocesses (the
device count must be set before JAX starts): determinism, exact resume, the recorded device
count, the combined replica changes (sum, mean, cap) checked against single-device steps, cap
keeping 4 devices stable where sum diverges, and bad device counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TIMEOUT = 240


def python(code: str, devices: int, *, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=TIMEOUT)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def cli(*argv, devices: int = 2) -> subprocess.CompletedProcess:
    return python(f"import sys; from sg_jax.cli import main; sys.exit(main({list(map(str, argv))!r}))", devices,
                  check=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, zipf_text) -> Path:
    path = tmp_path_factory.mktemp("mesh") / "corpus.txt"
    zipf_text(path, n_tokens=20_000, vocab=300)
    return path


ARGS = ["--dim", "8", "--window", "3", "--epochs", "2", "--batch-size", "32", "--min-count", "1",
        "--steps-per-call", "16", "--seed", "5", "--quiet"]


SPAN = ["--window-layout", "span", "--share-negatives", "pool", "--span-length", "8", "--noise-pool", "16"]


@pytest.mark.parametrize("layout", [SPAN], ids=["span"])   # the resumed step is the one row step of every layout
def test_two_devices_are_recorded_deterministic_and_resume_exactly(corpus, tmp_path, layout):
    """Two devices: recorded as such (and their auto sync interval), other vectors than one
    device's, and a run stopped, refused on another count and resumed equals the run trained
    whole (so the same command gives the same vectors)."""
    args = [*ARGS, *layout]
    whole = cli("train", "--corpus", corpus, "--out", tmp_path / "whole", *args, "--devices", "2")
    assert whole.returncode == 0, whole.stderr
    recorded = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert recorded["devices"] == 2 and recorded["sync_every"] == 16  # auto on 2 devices: once per call of 16 steps
    one = cli("train", "--corpus", corpus, "--out", tmp_path / "one", *args, "--devices", "1")
    assert one.returncode == 0, one.stderr
    assert (tmp_path / "one" / "vectors.txt").read_bytes() != (tmp_path / "whole" / "vectors.txt").read_bytes()
    first = cli("train", "--corpus", corpus, "--out", tmp_path / "split", *args, "--devices", "2",
                "--stop-after-epoch", "1", "--checkpoint-every-steps", "7")
    assert first.returncode == 0, first.stderr
    other = cli("train", "--corpus", corpus, "--out", tmp_path / "split", *args, "--devices", "1", "--resume")
    assert other.returncode == 2
    assert other.stderr.count("\n") == 1 and "devices=2 (now 1)" in other.stderr
    rest = cli("train", "--corpus", corpus, "--out", tmp_path / "split", *args, "--devices", "2", "--resume")
    assert rest.returncode == 0, rest.stderr
    assert (tmp_path / "split" / "vectors.txt").read_bytes() == (tmp_path / "whole" / "vectors.txt").read_bytes()


def test_auto_sync_resumes_with_the_interval_the_run_was_trained_with(corpus, tmp_path):
    """A run trained with an explicit --sync-every and --sync-combine cap (the combine default of
    runs saved before auto) resumes under auto (the default) with that interval and rule, giving
    the uninterrupted run's vectors, instead of being refused for a changed config."""
    args = [*ARGS, "--devices", "2"]
    explicit = ["--sync-every", "4", "--sync-combine", "cap"]
    whole = cli("train", "--corpus", corpus, "--out", tmp_path / "whole", *args, *explicit)
    assert whole.returncode == 0, whole.stderr
    first = cli("train", "--corpus", corpus, "--out", tmp_path / "split", *args, *explicit, "--stop-after-epoch", "1")
    assert first.returncode == 0, first.stderr
    rest = cli("train", "--corpus", corpus, "--out", tmp_path / "split", *args, "--sync-every", "auto",
               "--sync-combine", "auto", "--resume")
    assert rest.returncode == 0, rest.stderr
    recorded = json.loads((tmp_path / "split" / "config.json").read_text())
    assert (recorded["sync_every"], recorded["sync_combine"]) == (4, "cap")
    assert (tmp_path / "split" / "vectors.txt").read_bytes() == (tmp_path / "whole" / "vectors.txt").read_bytes()
    auto = cli("train", "--corpus", corpus, "--out", tmp_path / "auto", *args)
    assert auto.returncode == 0, auto.stderr
    recorded = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert (recorded["sync_every"], recorded["sync_combine"]) == (16, "trust")
    assert (tmp_path / "auto" / "vectors.txt").read_bytes() != (tmp_path / "whole" / "vectors.txt").read_bytes()


@pytest.mark.parametrize("value,message", [("0", "devices must be >= 1, got 0"),
                                           ("3", "devices=3 but only 2 device(s) exist")])
def test_bad_device_counts_are_one_line_errors(corpus, tmp_path, value, message):
    proc = cli("train", "--corpus", corpus, "--out", tmp_path / "out", *ARGS, "--devices", value)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("combine,devices", [("sum", 2), ("mean", 2), ("cap", 4), ("trust", 4)])
def test_a_mesh_call_combines_the_replicas_changes(tmp_path, combine, devices):
    """One jitted call of one step on n devices equals: each device's batch stepped alone from
    the same tables (on one device, with the same keys), and the changes added (sum), averaged
    over the replicas that changed each row (mean), added with each row's sum scaled down to
    twice the largest single replica's change where it is longer (cap: 4 devices, as 2 devices
    never exceed it), or added with each row's sum scaled down to the trust region's bound over
    the other table's longest row at the start (trust: a small bound, so that it binds)."""
    python("""
        COMBINE, N = %r, %d
        import dataclasses
        import jax, jax.numpy as jnp, numpy as np
        from sg_jax.data import epoch as pipeline
        from sg_jax.data.layouts.padded import make_batch
        from sg_jax.config import Config
        from sg_jax.data.corpus import load_corpus
        from sg_jax.mesh import make_mesh, replicate
        from sg_jax.resolved import resolve
        from sg_jax.step import init_state, row_step
        from sg_jax.train import make_plan

        vocab, enc, _ = load_corpus("toy:groups", min_count=1)
        config = Config(dim=6, min_count=1, sample=0.0, batch_size=16, steps_per_call=1, devices=N, seed=3, init="normal",
                        sync_combine=COMBINE, window_layout="padded", share_negatives="target",
                        trust_region=0.005 if COMBINE == "trust" else Config().trust_region)
        plan = make_plan(config, vocab.counts, enc.ids, enc.offsets)
        state = init_state(config, len(vocab), plan.optimizer)
        dev = pipeline.to_device(enc.ids, enc.offsets, 0, len(enc.ids))
        key = jax.random.fold_in(state.key, 0)
        data = pipeline.prepare_epoch(key, dev, plan.keep_prob, config.shuffle)
        epoch_key = jax.random.fold_in(key, 1)
        start = jax.tree.map(np.asarray, state.params)
        mesh = make_mesh(N)
        new, stats = plan.run_steps(replicate(state, mesh), replicate(data, mesh), replicate(plan.tables, mesh),
                                    epoch_key, 0, 100)
        deltas = [[] for _ in start]
        examples = 0.0
        layout = resolve(config).layout
        one_step = jax.jit(lambda st, b, a: row_step(st, plan.obj, layout, plan.optimizer, b, a, plan.tables))

        @jax.jit
        def draw(d, k_window, k_sample):   # device d's batch and noise words, as the mesh call draws them
            batch = make_batch(data, d, k_window, batch_size=plan.batch_size, window=config.window, dynamic=True)
            return batch, plan.obj.sample(k_sample, batch, plan.tables)
        for d in range(N):
            k_window, k_sample = jax.random.split(jax.random.fold_in(jax.random.fold_in(epoch_key, 0), d))
            batch, aux = draw(d, k_window, k_sample)
            fresh = init_state(config, len(vocab), plan.optimizer)
            moved, _ = one_step(fresh, batch, aux)
            for t, (a, b) in enumerate(zip(moved.params, start)):
                deltas[t].append(np.asarray(a, np.float64) - b)
            examples += float(jnp.sum(batch.mask))
        capped = 0
        longest = [np.sqrt((np.asarray(t, np.float64) ** 2).sum(axis=1).max()) for t in start]
        for table, (got, s, ds) in enumerate(zip(new.params, start, deltas)):
            ds = np.stack(ds)                                   # [replicas, rows, dim]
            total = ds.sum(axis=0)
            if COMBINE == "sum":
                want = s + total
            elif COMBINE == "mean":
                touched = np.any(ds != 0, axis=2).sum(axis=0)
                want = s + total / np.maximum(touched, 1)[:, None]
            elif COMBINE == "trust":                            # |U_r| * (other table's longest row) <= bound
                change = np.linalg.norm(total, axis=1) * longest[1 - table]
                capped += int((change > config.trust_region * (1 + 1e-4)).sum())
                scale = np.where(change > config.trust_region, config.trust_region / np.where(change > 0, change, 1), 1)
                want = s + total * scale[:, None]
            else:
                limit = 2 * np.linalg.norm(ds, axis=2).max(axis=0)
                norm = np.linalg.norm(total, axis=1)
                over = norm > limit * (1 + 1e-4)                # clearly capped rows (no rounding ties)
                capped += int(over.sum())
                scale = np.where(norm > limit, limit / np.where(norm > 0, norm, 1), 1)
                want = s + total * scale[:, None]
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-7)
        if COMBINE in ("cap", "trust"):
            assert capped > 0  # the rule changed some row
        assert max(np.any(d != 0, axis=2).sum(axis=0).max() for d in map(np.stack, deltas)) >= 2
        assert float(stats.examples[0]) == examples, (np.asarray(stats.examples), examples)
        assert np.abs(deltas[0][0]).max() > 0
        print("ok")
    """ % (combine, devices), devices)


def test_cap_keeps_four_devices_stable_where_sum_diverges(tmp_path, zipf_text):
    """A small Zipf corpus at a high learning rate, each replica's step without the trust region: on
    4 devices the summed changes of the frequent rows overshoot (a DivergenceError, or a loss that
    has blown up), the capped ones train."""
    path = tmp_path / "zipf.txt"
    zipf_text(path, n_tokens=20_000, vocab=300)
    python("""
        import sg_jax
        from sg_jax.errors import DivergenceError

        def final_loss(combine):
            try:
                model = sg_jax.train_model(%r, devices=4, sync_combine=combine, dim=16, epochs=2, min_count=1,
                                           batch_size=256, lr=0.07, steps_per_call=16, seed=5, trust_region=0.0)
            except DivergenceError:
                return float("inf")
            return model.history[-1]["loss"]

        capped, summed = final_loss("cap"), final_loss("sum")
        assert capped < 4.0, capped
        assert summed > 2 * capped, (summed, capped)
        print("ok")
    """ % str(path), 4)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes(argvs, devices: int = 1):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-m", "sg_jax", *map(str, argv)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for argv in argvs]
    try:
        return [(p.wait(timeout=TIMEOUT), *p.communicate()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def test_processes_with_different_corpora_are_refused(corpus, tmp_path, zipf_text):
    other = tmp_path / "other.txt"
    zipf_text(other, n_tokens=20_000, vocab=300, seed=9)
    address = f"127.0.0.1:{_free_port()}"
    results = _processes([["train", "--corpus", c, "--out", tmp_path / f"out{i}", *ARGS, "--devices", "2",
                           "--coordinator", address, "--num-processes", "2", "--process-id", i]
                          for i, c in enumerate([corpus, other])])
    for code, _, err in results:
        assert code == 2 and err.count("\n") == 1 and "disagree on the corpus" in err, err[-2000:]
    assert not (tmp_path / "out0").exists() and not (tmp_path / "out1").exists()


@pytest.mark.parametrize("extra,message", [
    (["--process-id", "2"], "process_id must be in [0, 1], got 2"),
    (["--process-id", "1", "--coordinator-timeout", "3"], "could not join the run at"),
])
def test_bad_multi_process_launches_fail_in_bounded_time(corpus, tmp_path, extra, message):
    argv = ["train", "--corpus", corpus, "--out", tmp_path / "out", *ARGS, "--devices", "2", "--coordinator",
            f"127.0.0.1:{_free_port()}", "--num-processes", "2", *extra]
    [(code, _, err)] = _processes([argv])
    assert code == 2 and err.count("\n") == 1 and message in err, err[-2000:]
    assert not (tmp_path / "out").exists()
