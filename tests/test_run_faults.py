"""The run's edges: refusals that come first and leave nothing behind, the report's command line
and figures, the Python API's output directories, two sweeps on one directory, and what the
training log says about the devices.

Command-line refusals: exit status 2, one line on stderr, nothing written. Subprocess tests
carry a timeout (`TIMEOUT`): a refusal that hangs fails instead of stalling the suite.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import error

import sg_jax
from sg_jax import cli
from sg_jax.config import MAX_STEPS_PER_CALL, Config
from sg_jax.errors import ConfigError
from sg_jax.resolved import resolve
from sg_jax.run_files import OUTPUTS, verify_manifest
from sg_jax.study import findings, report, summary
from sg_jax.study.lock import LOCK_FILE

TIMEOUT = 240
ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--epochs", "1", "--dim", "8", "--min-count", "1", "--quiet"]
TOY = dict(dim=8, epochs=1, sample=0.0, min_count=1, batch_size=64, steps_per_call=8)

pytestmark = pytest.mark.usefixtures("default_jax_types")


def python(code: str, *, devices: int = 1, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=TIMEOUT, cwd=cwd)


def sg_jax_cli(*argv, devices: int = 1) -> subprocess.CompletedProcess:
    return python(f"import sys; from sg_jax.cli import main; sys.exit(main({list(map(str, argv))!r}))",
                  devices=devices)


def one_line_refusal(proc: subprocess.CompletedProcess) -> str:
    """The message of a clean refusal: exit 2, one line on stderr, no traceback."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr[-2000:])
    assert proc.stderr.startswith("sg-jax: error: ") and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    return proc.stderr[len("sg-jax: error: "):-1]


# ------------------------------------------------------------------------------ 1. the reproduce command

HOSTILE = "my corpus; $(touch INJECTED) `touch TICKED` it's \"quoted\" & | > redirected.txt"


def _record(config: Config, source: str, *, used: int = 1, together: int = 1, **extra) -> dict:
    return {"config": config.to_dict(), "corpus": {"source": source}, "evaluation": {"restrict_vocab": 30_000},
            "window": config.window, "dim": config.dim, "seed": config.seed,
            "device": {"used": used, "together": together}, **extra}


def test_the_reproduce_command_pastes_into_a_shell_as_its_own_arguments(tmp_path):
    """A corpus path and an output directory holding `;`, `$(...)`, backticks, quotes, spaces and
    redirections: the line, run by bash with the program replaced by printf of its arguments,
    gives back exactly the arguments, and nothing in the path runs."""
    corpus, out = str(tmp_path / HOSTILE), tmp_path / "out dir; $(touch OUTDIR)"
    records = [_record(Config(epochs=1, window=1, dim=4), corpus)]
    argv = report.reproduce_argv(records, out)
    assert argv[:4] == ["sg-jax", "sweep", "--corpus", corpus] and argv[-2:] == ["--out", str(out)]
    command = report.reproduce_command(records, out)
    assert shlex.split(command) == argv
    program, rest = command.split(" ", 1)
    assert program == "sg-jax"
    work = tmp_path / "shell"
    work.mkdir()
    shown = subprocess.run(["bash", "-c", "printf '%s\\0' " + rest], cwd=work, capture_output=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.decode().split("\0")[:-1] == argv[1:]
    assert list(work.iterdir()) == [] and not (tmp_path / "INJECTED").exists()
    args = cli.build_parser().parse_args(argv[1:])
    assert args.corpus == corpus and args.out == str(out)


# ------------------------------------------------------------------------------ 4, 9, 23: refused options


@pytest.mark.parametrize("extra,message", [
    (["--sync-every", "7", "--steps-per-call", "128"],
     "sync_every 7 must divide steps_per_call 128: the replicas sync at fixed steps of every call (use a divisor "
     "of 128, or auto)"),
    (["--steps-per-call", "63", "--sync-every", "64"], "sync_every 64 must divide steps_per_call 63"),
    (["--steps-per-call", "1000000000"], f"steps_per_call must be <= {MAX_STEPS_PER_CALL:,}"),
    (["--shard-tables", "--sync-every", "8"], "sync_every 8 cannot be used with shard_tables"),
    (["--sync-combine", "trust", "--trust-region", "0"], "sync_combine trust needs the trust region"),
    (["--pool-group", "32"], "pool_group 32 has no effect: the run shares noise words 'target', not in pools "
     "(window_layout padded)"),
], ids=["sync-7-of-128", "sync-64-of-63", "steps-per-call-1e9", "shard-tables-with-sync", "trust-combine-without-rule",
        "pool-group-without-pools"])
def test_options_that_cannot_apply_are_refused_before_anything_is_written(capsys, tmp_path, extra, message):
    out = tmp_path / "out"
    got = error(capsys, "train", "--corpus", "toy:groups", "--out", out, *SMALL, *extra)
    assert got.startswith(message), got
    assert not out.exists()


def test_sync_every_auto_and_divisors_still_resolve():
    """auto keeps resolving to the largest divisor of the call; explicit divisors pass; sharded
    tables (every step synchronous) record 1."""
    assert resolve(Config(steps_per_call=63), 2).config.sync_every == 63
    assert resolve(Config(steps_per_call=128, sync_every=8), 4).config.sync_every == 8
    assert Config(steps_per_call=MAX_STEPS_PER_CALL).validate().steps_per_call == MAX_STEPS_PER_CALL
    assert resolve(Config(shard_tables=True), 2).config.sync_every == 1
    with pytest.raises(ConfigError, match="steps_per_call must be >= 1"):
        Config(steps_per_call=0).validate()


# ------------------------------------------------------------------------------ 22. a finished run in --out


def test_a_finished_run_is_refused_before_the_corpus_is_read(tmp_path):
    """The corpus is a FIFO nobody writes to: reading it would block until the timeout, so the
    refusal must come first; a corpus that does not exist is not named either."""
    out = tmp_path / "run"
    sg_jax.train_model("toy:groups", out_dir=out, **TOY)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    fifo = tmp_path / "corpus.fifo"
    os.mkfifo(fifo)
    for corpus in (fifo, tmp_path / "no such corpus.txt"):
        message = one_line_refusal(sg_jax_cli("train", "--corpus", corpus, "--out", out, *SMALL))
        assert message.startswith(f"{out} already holds a run (checkpoint.sgjax)"), message
        assert str(corpus) not in message
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# ------------------------------------------------------------------------------ 17, 18. the API's directories


def test_train_model_out_dir_is_what_the_command_line_writes(tmp_path):
    model = sg_jax.train_model("toy:groups", out_dir=tmp_path / "api", **TOY)
    argv = ["train", "--corpus", "toy:groups", "--out", str(tmp_path / "cli"), "--dim", "8", "--epochs", "1",
            "--sample", "0", "--min-count", "1", "--batch-size", "64", "--steps-per-call", "8", "--quiet"]
    assert cli.main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "api").iterdir()) == sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert (tmp_path / "api" / "checkpoint.sgjax").exists() and verify_manifest(tmp_path / "api") == []
    loaded = sg_jax.load_model(tmp_path / "api")
    np.testing.assert_array_equal(loaded.wv.vectors, model.wv.vectors)
    assert loaded.config == model.config and loaded.epochs_trained == 1
    assert (tmp_path / "api" / "vectors.txt").read_bytes() == (tmp_path / "cli" / "vectors.txt").read_bytes()


@pytest.fixture(scope="module")
def two_models():
    return (sg_jax.train_model("toy:groups", **{**TOY, "dim": 12}), sg_jax.train_model("toy:groups", **TOY))


def test_saving_over_another_model_leaves_none_of_its_files(tmp_path, two_models):
    wide, narrow = two_models
    out = tmp_path / "m"
    wide.save(out, binary=True)
    (out / "notes.txt").write_text("mine")  # not a run file: left alone
    narrow.save(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["vectors.txt", "metrics.jsonl", "config.json", "checkpoint.sgjax", "run.json", "notes.txt"])
    assert verify_manifest(out) == [] and sg_jax.load_model(out).config.dim == 8
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary directory left


def test_verify_manifest_names_run_files_it_does_not_list(tmp_path, two_models):
    wide, narrow = two_models
    wide.save(tmp_path / "wide", binary=True)
    narrow.save(tmp_path / "narrow")
    (tmp_path / "narrow" / "vectors.bin").write_bytes((tmp_path / "wide" / "vectors.bin").read_bytes())
    assert verify_manifest(tmp_path / "narrow") == ["vectors.bin"]


def test_saving_onto_a_file_is_a_one_line_error(tmp_path, two_models):
    target = tmp_path / "taken"
    target.write_text("a file")
    with pytest.raises(ConfigError) as e:
        two_models[1].save(target)
    assert str(e.value) == f"cannot save the model to {target}: it exists and is not a directory"
    assert target.read_text() == "a file"


@pytest.mark.parametrize("existing", [False, True], ids=["new-dir", "over-a-model"])
def test_a_save_that_fails_midway_leaves_no_partial_directory(tmp_path, two_models, monkeypatch, existing):
    """The disk fills while the vectors are written: no directory appears (or the model saved
    there before stays whole), no temporary directory is left, and the error is one line."""
    import sg_jax.formats as formats

    wide, narrow = two_models
    out = tmp_path / "m"
    if existing:
        wide.save(out, binary=True)
    before = {p.name: p.read_bytes() for p in out.iterdir()} if existing else None

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(formats, "save_word2vec_text", full)
    with pytest.raises(ConfigError, match=f"cannot save the model to {out}: No space left on device"):
        narrow.save(out)
    assert [p.name for p in tmp_path.iterdir()] == (["m"] if existing else [])
    if existing:
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before and verify_manifest(out) == []


# ------------------------------------------------------------------------------ 20. two sweeps on one --out

SWEEP = ["--corpus", "toy:groups", "--dims", "4", "--epochs", "1", "--seeds", "0", "--min-count", "1", "--quiet"]


def test_a_second_sweep_into_a_locked_directory_is_refused(tmp_path):
    """While a sweep holds DIR/sweep.lock (here: this test), another is refused at once, naming
    the directory, and writes no record."""
    out = tmp_path / "study"
    out.mkdir()
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        message = one_line_refusal(sg_jax_cli("sweep", *SWEEP, "--windows", "1", "--out", out))
    finally:
        os.close(fd)
    assert message == (f"another sweep is running into {out} (it holds {out / LOCK_FILE}); wait for it to end "
                       f"or choose another --out")
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]


def test_runs_outside_an_edited_grid_are_named(tmp_path, capsys):
    out = tmp_path / "study"
    assert cli.main(["sweep", *SWEEP, "--windows", "1", "--out", str(out)]) == 0
    assert "lie outside the grid" not in (out / report.REPORT).read_text(encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["sweep", *SWEEP, "--windows", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 recorded run(s) lie outside this command's grid (w1_d4_s0)" in printed
    text = (out / report.REPORT).read_text(encoding="utf-8").replace("\n", " ")
    assert ("1 of the 2 recorded runs lie outside the grid of the last sweep command (windows 2 × dimensions 4 × "
            "seeds 0): 'w1_d4_s0'.") in text
    with open(out / "summary.csv") as f:
        assert len(f.read().splitlines()) == 3  # both cells, as said
    # the report's other words: the sweep's wall time, and what words/s leaves out
    assert "so no sync between replicas applied" in text  # one device per run here
    assert "Total time: " in text and "min of wall time from the first run's start to the last run's end" in text
    assert "Words/s: training words per second, the first jitted call left out (its time includes compilation)" in text


# ------------------------------------------------------------------------------ 25. the report's figures


def _timed(start: str, seconds: float, wall: float) -> dict:
    t0 = datetime.datetime.fromisoformat(start)
    return {"started_at": t0.isoformat(), "finished_at": (t0 + datetime.timedelta(seconds=seconds)).isoformat(),
            "wall_seconds": wall}


def test_total_time_is_the_sweeps_wall_time_not_the_sum_of_the_runs():
    """Two runs trained together over the same 60 s, then one run of 30 s after a day's pause:
    the sweep took 90 s of wall time; the runs' own times add up to 150 s."""
    records = [_timed("2026-01-01T10:00:00+00:00", 60, 60), _timed("2026-01-01T10:00:00+00:00", 60, 60),
               _timed("2026-01-02T10:00:00+00:00", 30, 30)]
    assert report.sweep_wall_seconds(records) == 90
    line = report._time_line(records)
    assert line.startswith("Total time: 1.5 min of wall time") and "add up to 2.5 min" in line
    assert "overlap" in line
    assert report.sweep_wall_seconds([{"wall_seconds": 1.0}]) is None


@pytest.mark.parametrize("used,together,devices,sync,shard,expect", [
    (2, 1, 2, 64, False, ["--sync-every", "64"]),   # each run over 2 replicas: its resolved interval
    (2, 2, 1, 1, False, []),                        # runs trained together, one device each: no sync
    (2, 2, 1, 8, False, ["--sync-every", "8"]),     # ... an older run's record (auto on one device gave 8)
    (2, 2, 1, 4, False, ["--sync-every", "4"]),     # ... unless a value auto would not give was asked
    (2, 1, 2, 1, True, []),                         # sharded tables: every step synchronous
])
def test_the_reproduce_command_carries_the_resolved_sync_interval(tmp_path, used, together, devices, sync, shard,
                                                                  expect):
    """The command records what the runs used, and running it makes the same recorded config
    (so it reruns into the same directory as the same study)."""
    config = Config(epochs=1, window=1, dim=4, devices=devices, sync_every=sync, shard_tables=shard,
                    window_layout="padded" if shard else "auto")
    argv = report.reproduce_argv([_record(config, "toy:groups", used=used, together=together)], tmp_path)
    got = [argv[i:i + 2] for i in range(len(argv)) if argv[i] == "--sync-every"]
    assert got == ([expect] if expect else [])
    from sg_jax.cli.sweep import sweep_from_args

    again = sweep_from_args(cli.build_parser().parse_args(argv[1:]))
    assert resolve(again.base, 1 if together > 1 else used).config.sync_every == sync
    said = report._devices_used(_record(config, "toy:groups", used=used, together=together))
    assert (f"syncing every {sync} step(s)" in said) == (devices > 1 and not shard)
    assert ("no sync between replicas applied" in said) == (devices == 1)


N_PAIRS = 300
RNG = np.random.default_rng(7)
HUMAN = np.round(RNG.uniform(0, 10, N_PAIRS), 2)


def _scored(window: int, dim: int, cosine: np.ndarray) -> dict:
    from sg_jax.evaluation import AnalogyResult, SimilarityResult, spearman

    sim = SimilarityResult(spearman(cosine, HUMAN), 0.0, N_PAIRS, 0, "wordsim353", np.arange(N_PAIRS), cosine, HUMAN)
    hits = np.zeros(8, bool)
    ana = AnalogyResult(0.0, 0, 8, 0, {"capital-common-countries": (0, 8)}, "add", "google", np.arange(8), hits,
                        np.zeros(8, int))
    analogy = ana.to_dict()
    analogy.update(semantic=list(ana.group(False)), syntactic=list(ana.group(True)), items=ana.items_dict())
    wordsim = sim.to_dict()
    wordsim["items"] = sim.items_dict()
    return {"window": window, "dim": dim, "seed": 0, "wordsim353": wordsim, "analogy": analogy, "final_loss": 1.0,
            "wall_seconds": 1.0, "words_per_second": 1.0}


def _window_sentence(effects: dict[int, float]) -> str:
    """Window 8 against window 1 at each dimension: cosines closer to the human scores by the
    given amount of noise removed (0: the same cosines, so a difference of exactly zero)."""
    noise = RNG.normal(0, 1.0, N_PAIRS)
    records = []
    for dim, gain in effects.items():
        base = np.round(HUMAN / 10 + noise, 4)
        better = np.round(HUMAN / 10 + noise * (1 - gain), 4)
        records += [_scored(1, dim, base), _scored(8, dim, better if gain >= 0 else np.round(
            HUMAN / 10 + noise * 3, 4))]
    rows = summary.summarize(records, n_resamples=300)
    found = findings.findings(records, rows, n_resamples=300)["wordsim_spearman"]
    return next(s for s in found if s.startswith("WordSim-353") and "Window 8 − window 1" in s)


def test_a_window_effect_beyond_noise_at_most_dimensions_is_not_called_mixed():
    """Window 8 better beyond the noise at three dimensions and exactly equal at the fourth: the
    sentence says it rises at 3 of 4, not that the effect is mixed."""
    text = _window_sentence({25: 0.8, 50: 0.8, 100: 0.8, 200: 0.0})
    assert "mixed" not in text
    assert text.startswith("WordSim-353 Spearman ρ rises with window beyond evaluation noise at 3 of 4 dimensions "
                           "and is within the noise at the other 1"), text
    assert "at no dimension does it fall beyond the noise" in text


def test_a_window_effect_in_both_directions_is_mixed():
    text = _window_sentence({25: 0.8, 50: 0.8, 100: -1.0})
    assert text.startswith("WordSim-353 Spearman ρ: the window effect is mixed (up beyond evaluation noise at 2, "
                           "down at 1 of 3 dimensions)"), text


# ------------------------------------------------------------------------------ 26. the training log


def test_the_training_log_says_how_the_devices_were_used(tmp_path, zipf_text):
    corpus = tmp_path / "corpus.txt"
    zipf_text(corpus, n_tokens=6_000, vocab=200)
    code = f"""
        import sys
        from sg_jax.cli import main
        common = ["train", "--corpus", {str(corpus)!r}, "--dim", "8", "--epochs", "1", "--min-count", "1",
                  "--batch-size", "32", "--steps-per-call", "16"]
        for name, extra in (("one", []), ("two", ["--devices", "2"]),
                            ("sharded", ["--devices", "2", "--shard-tables"])):
            print("RUN", name, flush=True)
            assert main(common + ["--out", {str(tmp_path)!r} + "/" + name] + extra) == 0
    """
    proc = python(code, devices=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = dict(part.split("\n", 1) for part in proc.stdout.split("RUN ")[1:])
    line = {name: next(s for s in text.splitlines() if s.startswith("devices: ")) for name, text in logs.items()}
    assert line["one"] == "devices: 1 device; window layout span; noise words pool-shared"
    assert line["two"] == ("devices: 2 devices, a replica of the tables on each, synced every 16 step(s) "
                           "(sync_combine trust); window layout span; noise words pool-shared")
    assert line["sharded"] == ("devices: 2 devices, tables sharded by row over them (every step synchronous); "
                               "window layout span; noise words pool-shared")
    recorded = json.loads((tmp_path / "sharded" / "config.json").read_text())
    assert recorded["shard_tables"] is True and recorded["sync_every"] == 1
    assert not set(OUTPUTS) - {"vectors.bin"} - {p.name for p in (tmp_path / "two").iterdir()}
