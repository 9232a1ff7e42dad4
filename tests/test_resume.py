"""Trustworthy runs: bit-identical results for the same corpus, config and seed, in one process
or across processes, in one invocation or split into several, and after a SIGKILL.

The fast checks run `run_training` in-process on the toy corpus; the cross-process and SIGKILL
checks start `python -m sg_jax.cli train` on a generated corpus big enough to be killed midway.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from sg_jax import checkpoint, cli, runs
from sg_jax.run_files import read_metrics, verify_manifest
from sg_jax.runs import CHECKPOINT, CheckpointPolicy, run_training
from sg_jax.train import Config
from conftest import write_zipf_text

QUIET = dict(log=lambda s: None)
# Several jitted calls per epoch, so that checkpoints fall in the middle of epochs.
TOY = Config(dim=8, window=3, min_count=1, epochs=2, batch_size=16, steps_per_call=16, seed=7)
PROCESS_TIMEOUT = 120  # seconds any one subprocess may take before the test gives up


@pytest.fixture(scope="module", autouse=True)
def default_jax_types():
    """Train with JAX's default 32-bit types even if an earlier test in this process switched
    jax_enable_x64 on globally (`sg-jax gradcheck` does): results depend on it."""
    with jax.enable_x64(False):
        yield


# ---------------------------------------------------------------------------------------------
# helpers


def checkpoint_leaves(path) -> list[np.ndarray]:
    leaves, _ = checkpoint.load_checkpoint(path)
    return [np.asarray(x) for x in leaves]


def assert_same_leaves(a, b) -> None:
    """Bit-for-bit equality of two lists of checkpoint leaves (NaN-safe: compares bytes)."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.ascontiguousarray(x).tobytes() == np.ascontiguousarray(y).tobytes()


def trajectory(out_dir) -> list[tuple]:
    """The reproducible part of DIR/metrics.jsonl (timings and per-invocation word counts vary)."""
    lines = (Path(out_dir) / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r["epoch"], r["loss"], r["lr"], r["examples"]) for r in map(json.loads, lines)]


def assert_same_run(a, b) -> None:
    """Same vectors file, losses and learning rates, and final checkpoint (state and position)."""
    a, b = Path(a), Path(b)
    assert (a / "vectors.txt").read_bytes() == (b / "vectors.txt").read_bytes()
    assert trajectory(a) == trajectory(b)
    assert_same_leaves(checkpoint_leaves(a / CHECKPOINT), checkpoint_leaves(b / CHECKPOINT))
    assert checkpoint.load_checkpoint_meta(a / CHECKPOINT)["position"] == checkpoint.load_checkpoint_meta(b / CHECKPOINT)["position"]


def temp_files(out_dir) -> list[str]:
    return sorted(p.name for p in Path(out_dir).iterdir() if p.name.endswith(".tmp"))


def record_checkpoints(monkeypatch, snapshots: Path) -> list[tuple[dict, Path]]:
    """Keep a copy of every checkpoint `run_training` writes, with its position."""
    saved = []
    original = runs.save_train_checkpoint

    def spy(path, progress, *args, **kwargs):
        original(path, progress, *args, **kwargs)
        copy = snapshots / f"{len(saved)}.sgjax"
        shutil.copyfile(path, copy)
        saved.append((dataclasses.asdict(progress.position), copy))

    snapshots.mkdir()
    monkeypatch.setattr(runs, "save_train_checkpoint", spy)
    return saved


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """One uninterrupted TOY run, checkpointing whenever a call passes a multiple of 100 steps;
    a copy of each checkpoint is kept. Returns (out dir, result, [(position, checkpoint copy)])."""
    root = tmp_path_factory.mktemp("toy")
    with pytest.MonkeyPatch.context() as mp:
        saved = record_checkpoints(mp, root / "snapshots")
        out = run_training(TOY, "toy:groups", root / "whole", checkpoint=CheckpointPolicy(every_steps=100,
                                                                                        every_seconds=None), **QUIET)
    return root / "whole", out.result, saved


# ---------------------------------------------------------------------------------------------
# one process


def test_same_config_and_seed_give_identical_runs(toy_run, tmp_path, monkeypatch):
    whole, _, _ = toy_run
    saved = record_checkpoints(monkeypatch, tmp_path / "snapshots")  # a checkpoint after every call
    out = run_training(TOY, "toy:groups", tmp_path / "again", checkpoint=CheckpointPolicy(every_seconds=1e-9), **QUIET)
    assert len(saved) == len(out.result.history) + 1  # seconds interval: after every call, and at the end
    assert_same_run(whole, tmp_path / "again")
    assert temp_files(tmp_path / "again") == []


def test_neither_checkpoints_nor_steps_per_call_change_the_result(toy_run, tmp_path):
    # no checkpoint at all, and 64 steps per jitted call instead of 16: the keys are positional
    out = run_training(dataclasses.replace(TOY, steps_per_call=64), "toy:groups", tmp_path / "none",
                       checkpoint=None, **QUIET)
    assert not (tmp_path / "none" / CHECKPOINT).exists()
    assert (tmp_path / "none" / "vectors.txt").read_bytes() == (toy_run[0] / "vectors.txt").read_bytes()
    assert out.result.history[-1]["step"] == toy_run[1].history[-1]["step"]


def test_checkpoints_at_a_step_interval(toy_run):
    _, result, saved = toy_run
    calls = [r["step"] for r in result.history]  # the step count after each jitted call
    assert len(calls) >= 20
    # a checkpoint after each call that passes a multiple of 100 steps, and one at the end
    due = [s for before, s in zip([0] + calls, calls) if s // 100 > before // 100]
    assert [checkpoint.load_checkpoint_meta(p)["history"][-1]["step"] for _, p in saved] == due + [calls[-1]]
    assert saved[-1][0] == {"epoch": TOY.epochs, "chunk": 0, "step": 0}


def test_epochs_split_across_invocations_equal_one_invocation(toy_run, tmp_path):
    split = tmp_path / "split"
    out = run_training(TOY, "toy:groups", split, resume=True, until_epoch=1, **QUIET)  # no checkpoint yet: fresh
    assert out.resumed_from is None
    assert (split / "vectors.txt").read_bytes() != (toy_run[0] / "vectors.txt").read_bytes()  # not done yet
    assert checkpoint.load_checkpoint_meta(split / CHECKPOINT)["position"] == {"epoch": 1, "chunk": 0, "step": 0}
    out = run_training(TOY, "toy:groups", split, resume=True, **QUIET)
    assert dataclasses.asdict(out.resumed_from) == {"epoch": 1, "chunk": 0, "step": 0}
    assert_same_run(toy_run[0], split)
    # Resuming a finished run trains nothing and changes nothing.
    out = run_training(TOY, "toy:groups", split, resume=True, **QUIET)
    assert out.result.words_done == 0
    assert_same_run(toy_run[0], split)


def resume_from_copy(config, snapshot, out_dir):
    out_dir.mkdir()
    shutil.copyfile(snapshot, out_dir / CHECKPOINT)
    return run_training(config, "toy:groups", out_dir, resume=True, **QUIET)


def test_resume_from_a_mid_epoch_checkpoint_is_exact(toy_run, tmp_path):
    whole, _, saved = toy_run
    mid = [(pos, p) for pos, p in saved if pos["step"] > 0]
    assert {pos["epoch"] for pos, _ in mid} == {0, 1}, [pos for pos, _ in saved]
    position, snapshot = mid[len(mid) // 2]
    out = resume_from_copy(TOY, snapshot, tmp_path / "resumed")
    assert dataclasses.asdict(out.resumed_from) == position
    assert_same_run(whole, tmp_path / "resumed")


def test_resume_in_the_middle_of_a_later_chunk_is_exact(tmp_path, monkeypatch):
    # A corpus larger than `chunk_tokens` is sent to the device in chunks (toy:groups has 15k tokens).
    config = dataclasses.replace(TOY, chunk_tokens=8000)
    saved = record_checkpoints(monkeypatch, tmp_path / "snapshots")
    run_training(config, "toy:groups", tmp_path / "whole", checkpoint=CheckpointPolicy(every_steps=1), **QUIET)
    monkeypatch.undo()
    mid = [(pos, p) for pos, p in saved if pos["epoch"] == 1 and pos["chunk"] == 1 and pos["step"] > 0]
    assert mid, [pos for pos, _ in saved]
    position, snapshot = mid[0]
    out = resume_from_copy(config, snapshot, tmp_path / "resumed")
    assert dataclasses.asdict(out.resumed_from) == position
    assert_same_run(tmp_path / "whole", tmp_path / "resumed")


def reproducible(records: list[dict]) -> list[dict]:
    """Metrics records without what a clock or an invocation counts (seconds; words and
    words_total are counted from the start of each invocation)."""
    return [{k: v for k, v in r.items() if k not in ("seconds", "words", "words_total")} for r in records]


def test_an_interrupted_and_resumed_run_has_the_metrics_of_an_uninterrupted_one(toy_run, tmp_path, capsys):
    whole, result, _ = toy_run
    per_epoch = max(r["step"] for r in result.history if r["epoch"] <= 1.0)  # steps of the first epoch
    policy = CheckpointPolicy(every_steps=per_epoch, every_seconds=None)  # a checkpoint after each epoch
    out = tmp_path / "interrupted"
    seen = []

    def interrupt(state, position, record):
        assert read_metrics(out)[-1] == record  # in the file before the call is reported
        seen.append(record)
        if record["epoch"] > 1.0 and len([r for r in seen if r["epoch"] > 1.0]) == 3:
            raise KeyboardInterrupt  # three calls into the second epoch: they are past the checkpoint

    with pytest.raises(KeyboardInterrupt):
        run_training(TOY, "toy:groups", out, checkpoint=policy, on_call=interrupt)
    assert capsys.readouterr().out == ""  # the library prints nothing unless given a log callback
    kept = checkpoint.load_checkpoint_meta(out / CHECKPOINT)["history"]
    assert kept[-1]["epoch"] == 1.0 and read_metrics(out) == seen == kept + seen[len(kept):]
    assert len(seen) == len(kept) + 3 and not (out / "vectors.txt").exists()

    run_training(TOY, "toy:groups", out, resume=True, checkpoint=policy, **QUIET)
    assert reproducible(read_metrics(out)) == reproducible(read_metrics(whole))
    assert read_metrics(out)[:len(kept)] == kept  # the checkpoint's records, untouched
    assert verify_manifest(out) == []


def test_an_interrupted_extension_leaves_no_manifest_claiming_its_files(toy_run, tmp_path):
    out = tmp_path / "extended"
    shutil.copytree(toy_run[0], out)
    finished = read_metrics(out)
    longer = dataclasses.replace(TOY, epochs=TOY.epochs + 1)

    def interrupt(state, position, record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(longer, "toy:groups", out, resume=True, on_call=interrupt, **QUIET)
    assert not (out / "run.json").exists()  # the metrics log grew past what the manifest held
    assert read_metrics(out)[:-1] == finished and len(read_metrics(out)) == len(finished) + 1
    run_training(longer, "toy:groups", out, resume=True, **QUIET)
    assert read_metrics(out)[:len(finished)] == finished and verify_manifest(out) == []


def test_a_fresh_run_failing_before_its_first_checkpoint_leaves_no_files(tmp_path):
    def fail(state, position, record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(TOY, "toy:groups", tmp_path / "out", on_call=fail, **QUIET)
    assert not (tmp_path / "out").exists()  # its metrics log, removed: there is nothing to resume


# ---------------------------------------------------------------------------------------------
# across processes, and after SIGKILL


TRAIN_ARGS = ["--dim", "16", "--window", "4", "--epochs", "2", "--batch-size", "32", "--min-count", "1",
              "--seed", "3", "--checkpoint-every-steps", "256", "--devices", "1", "--quiet"]


def cli_command(corpus, out, *extra) -> list[str]:
    return [sys.executable, "-m", "sg_jax.cli", "train", "--corpus", str(corpus), "--out", str(out),
            *TRAIN_ARGS, *extra]


def run_cli(corpus, out, *extra) -> None:
    proc = subprocess.run(cli_command(corpus, out, *extra), capture_output=True, text=True,
                          timeout=PROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A generated corpus and an uninterrupted reference run of it, trained in a subprocess that
    starts at once and runs alongside the tests that need it; `reference()` waits for it."""
    root = tmp_path_factory.mktemp("generated")
    corpus = root / "corpus.txt"
    write_zipf_text(corpus)
    out = root / "reference"
    proc = subprocess.Popen(cli_command(corpus, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def reference() -> Path:
        _, err = proc.communicate(timeout=PROCESS_TIMEOUT)
        assert proc.returncode == 0, err
        return out

    yield corpus, reference
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_python_dash_m_cli_is_the_cli():
    proc = subprocess.run([sys.executable, "-m", "sg_jax.cli", "train", "--help"], capture_output=True, text=True,
                          timeout=PROCESS_TIMEOUT)
    assert proc.returncode == 0 and "--resume" in proc.stdout


def test_identical_across_processes(generated, tmp_path):
    corpus, reference = generated
    assert cli.main(["train", "--corpus", str(corpus), "--out", str(tmp_path / "here"), *TRAIN_ARGS]) == 0
    assert_same_run(reference(), tmp_path / "here")


def test_sigkill_mid_epoch_then_resume_is_exact(generated, tmp_path):
    corpus, reference = generated
    out = tmp_path / "killed"
    ckpt = out / CHECKPOINT
    victim = subprocess.Popen(cli_command(corpus, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # Wait for the first checkpoint (a quarter into the first epoch), let the run go on past
        # it a little (that work is lost and redone), then kill it without warning.
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while not ckpt.exists():
            assert victim.poll() is None, f"training ended before it could be killed: {victim.stderr.read()}"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.01)
        time.sleep(0.05)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=PROCESS_TIMEOUT)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not (out / "vectors.txt").exists()  # it died before the end
    killed_at = checkpoint.load_checkpoint_meta(ckpt)["position"]
    assert killed_at["epoch"] < 2 and killed_at["step"] > 0  # resuming starts mid-epoch
    kept = checkpoint.load_checkpoint_meta(ckpt)["history"]
    appended = read_metrics(out)  # every call completed before the kill, the checkpoint's first
    assert appended[:len(kept)] == kept and len(appended) >= len(kept)

    run_cli(corpus, out, "--resume")
    assert_same_run(reference(), out)
