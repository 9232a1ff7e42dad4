"""The sweep engine: the JSONL schema, the summary, the plots and the report, and resuming.

One small sweep on the toy corpus (windows 1, 2 x dims 4, 8, one epoch) is run once per module
and copied where a test changes it; the rest works on the files it leaves.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from sg_jax import cli
from sg_jax.cli import sweep as cli_sweep
from sg_jax.study import records, report, summary, sweep
from sg_jax.errors import ConfigError, FormatError
from sg_jax.plots import is_png
from sg_jax.train import Config

TINY = ["--corpus", "toy:groups", "--windows", "1,2", "--dims", "4,8", "--epochs", "1", "--seeds", "0", "--quiet"]

REQUIRED = {
    "schema": int, "run_id": str, "window": int, "dim": int, "seed": int, "config": dict, "corpus": dict,
    "evaluation": dict, "code_version": dict, "device": dict, "loss_curve": dict, "final_loss": float,
    "wordsim353": dict, "analogy": dict, "wall_seconds": (int, float), "train_seconds": (int, float),
    "eval_seconds": (int, float), "words": int, "words_per_second": (int, float), "started_at": str,
    "finished_at": str,
}
OPTIONAL_FLOAT = (float, int, type(None))  # a correlation over no pairs is null


def run_cli(out: Path, *extra: str) -> int:
    return cli.main(["sweep", *TINY, "--out", str(out), *extra])


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "study"
    assert run_cli(out) == 0
    return out


def lines_of(out: Path) -> list[str]:
    return (out / records.RUNS_FILE).read_text(encoding="utf-8").splitlines()


def records_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in lines_of(out)]


def copy(done: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(done, target)
    return target


# --------------------------------------------------------------------------- the results file


def test_one_record_per_grid_point(done):
    records = records_of(done)
    assert [(r["window"], r["dim"], r["seed"]) for r in records] == [(1, 4, 0), (1, 8, 0), (2, 4, 0), (2, 8, 0)]
    assert [r["run_id"] for r in records] == ["w1_d4_s0", "w1_d8_s0", "w2_d4_s0", "w2_d8_s0"]


def test_jsonl_schema(done):
    for record in records_of(done):
        for key, kind in REQUIRED.items():
            assert key in record, key
            assert isinstance(record[key], kind) and not isinstance(record[key], bool), (key, record[key])
        assert record["schema"] == records.SCHEMA_VERSION
        config = Config(**record["config"])  # the full config: every field, nothing else
        assert (config.window, config.dim, config.seed) == (record["window"], record["dim"], record["seed"])
        assert (config.epochs, config.objective, config.share_negatives) == (1, "ns", "auto")
        assert (config.layout, config.sharing) == ("span", "pool")  # what the study trained
        corpus = record["corpus"]
        assert corpus["source"] == "toy:groups" and re.fullmatch(r"[0-9a-f]{64}", corpus["fingerprint"])
        assert corpus["vocab_size"] == 43 and corpus["tokens"] > 10_000
        assert record["evaluation"] == {"restrict_vocab": 30_000, "method": "add"}
        assert isinstance(record["code_version"]["sg_jax"], str)
        assert set(record["device"]) >= {"platform", "kind", "count", "jax"}
        curve = record["loss_curve"]
        n = len(curve["loss"])
        assert n >= 1 and all(len(curve[k]) == n for k in ("step", "epoch", "words", "loss"))
        assert curve["epoch"][-1] == pytest.approx(1.0) and curve["loss"][-1] == pytest.approx(record["final_loss"])
        assert all(math.isfinite(x) for x in curve["loss"])
        sim, ana = record["wordsim353"], record["analogy"]
        assert isinstance(sim["spearman"], OPTIONAL_FLOAT) and isinstance(sim["n_oov"], int)
        assert sim["n_pairs"] + sim["n_oov"] == 353
        assert isinstance(ana["accuracy"], OPTIONAL_FLOAT)
        assert ana["total"] + ana["skipped"] == 19_544
        assert ana["correct"] == sum(c for c, _ in ana["sections"].values())
        assert ana["semantic"][1] + ana["syntactic"][1] == ana["total"]
        assert record["words"] == corpus["tokens"]
        assert record["wall_seconds"] >= record["train_seconds"] > 0 and record["words_per_second"] > 0
        assert record["finished_at"] >= record["started_at"]


def test_lines_are_strict_json(done):
    for line in lines_of(done):
        json.loads(line, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))


def test_run_directories(done):
    for record in records_of(done):
        run_dir = done / record["run_id"]
        assert json.loads((run_dir / "config.json").read_text()) == record["config"]
        log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [r["loss"] for r in log] == pytest.approx(record["loss_curve"]["loss"], abs=1e-6)
        assert not (run_dir / "vectors.txt").exists()  # only with --save-vectors


# --------------------------------------------------------------------------- summary, plots, report


def test_summary_csv(done):
    records = records_of(done)
    with open(done / report.SUMMARY_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["window"]), int(r["dim"])) for r in rows] == [(1, 4), (1, 8), (2, 4), (2, 8)]
    for row, record in zip(rows, records):
        assert int(row["n_seeds"]) == 1 and row["seeds"] == "0"
        assert float(row["final_loss_mean"]) == pytest.approx(record["final_loss"], rel=1e-5)
        assert row["final_loss_std"] == ""  # undefined with one seed
        assert float(row["wall_seconds_mean"]) == pytest.approx(record["wall_seconds"], rel=1e-5)
        for metric in summary.METRICS:
            assert f"{metric}_mean" in row and f"{metric}_std" in row
        # analogy scores in percent, with intervals that hold the estimate
        accuracy = record["analogy"]["accuracy"]
        if accuracy is not None:
            assert float(row["analogy_pct_mean"]) == pytest.approx(100 * accuracy, rel=1e-5)
            assert float(row["analogy_pct_low"]) <= float(row["analogy_pct_mean"]) <= float(row["analogy_pct_high"])


def test_records_keep_the_items_that_reproduce_the_scores(done):
    from scipy.stats import spearmanr

    from sg_jax.evaluation import unpack_bits
    from sg_jax.study import compare

    for record in records_of(done):
        sim, ana = record["wordsim353"], record["analogy"]
        items = sim["items"]
        assert unpack_bits(items["scored"], 353).sum() == sim["n_pairs"] == len(items["cosine"]) == len(items["human"])
        if sim["spearman"] is not None:  # rounded cosines: ties can move the correlation a little
            assert spearmanr(items["cosine"], items["human"]).statistic == pytest.approx(sim["spearman"], abs=0.02)
        hits = unpack_bits(ana["items"]["hits"], ana["total"])
        assert unpack_bits(ana["items"]["answered"], 19_544).sum() == ana["total"] and hits.sum() == ana["correct"]
        for group in ("semantic", "syntactic"):
            got = compare.record_items(record, group)
            assert (int(got.x.sum()), len(got)) == tuple(ana[group])


def test_plots_are_png(done):
    assert "final_loss" not in report.HEATMAPS  # losses over different windows are not comparable
    names = [report.heatmap_file(m) for m in report.HEATMAPS] + [report.LOSS_CURVES, report.METRIC_LINES]
    for name in names:
        assert is_png(done / name), name
    assert not list(done.glob(".*.tmp"))  # no temporary files left behind


def test_report_links_everything(done):
    text = (done / report.REPORT).read_text(encoding="utf-8")
    links = set(re.findall(r"\]\(([^)]+)\)", text))
    assert {report.heatmap_file(m) for m in report.HEATMAPS} | {report.LOSS_CURVES, report.SUMMARY_CSV,
                                                            records.RUNS_FILE} <= links
    for link in links:
        assert (done / link).exists(), link
    assert (done / report.SUMMARY_MD).read_text(encoding="utf-8") in text  # the table is embedded
    assert "sg-jax sweep --corpus toy:groups --windows 1,2 --dims 4,8 --seeds 0 --epochs 1" in text
    assert "What differs beyond the evaluation noise" in text and "Extremes" not in text
    assert "final loss is not used to rank" in text.replace("\n", " ")


# --------------------------------------------------------------------------- resume


def test_rerun_skips_finished_runs(done, tmp_path, capsys):
    out = copy(done, tmp_path)
    before = (out / records.RUNS_FILE).read_bytes()
    assert run_cli(out) == 0
    assert "0 run(s) trained, 4 already done" in capsys.readouterr().out
    assert (out / records.RUNS_FILE).read_bytes() == before  # same lines, same timestamps


def test_a_study_recorded_before_a_field_or_a_default_changed_continues(done, tmp_path, capsys):
    """Records written before cap_batch existed (its added value is today's default) and with
    sync_combine cap (the default before auto; one device combines nothing) are the same study:
    a rerun skips their runs instead of refusing the directory. A data-parallel study with cap
    stays another study than one with auto."""
    out = copy(done, tmp_path)
    old = records_of(out)
    for r in old:
        del r["config"]["cap_batch"]
        r["config"]["sync_combine"] = "cap"
    (out / records.RUNS_FILE).write_text("".join(json.dumps(r) + "\n" for r in old), encoding="utf-8")
    assert run_cli(out) == 0
    assert "0 run(s) trained, 4 already done" in capsys.readouterr().out
    parallel = dict(old[0], config=dict(old[0]["config"], devices=2))
    assert records.study_settings(parallel) != records.study_settings(dict(parallel, config=dict(
        parallel["config"], sync_combine="auto")))


def test_extending_the_grid_adds_only_new_runs_and_averages_seeds(done, tmp_path):
    out = copy(done, tmp_path)
    before = lines_of(out)
    result = sweep.run_sweep(_sweep(windows=(1,), dims=(4,), seeds=(0, 1)), out, progress=False, log=lambda s: None)
    assert [r["run_id"] for r in result.new] == ["w1_d4_s1"] and result.skipped == 1
    after = lines_of(out)
    assert after[:4] == before and len(after) == 5
    # the summary covers every run in the directory; (1, 4) now has two seeds
    with open(out / report.SUMMARY_CSV, newline="") as f:
        rows = {(int(r["window"]), int(r["dim"])): r for r in csv.DictReader(f)}
    assert len(rows) == 4
    cell = rows[1, 4]
    assert int(cell["n_seeds"]) == 2 and cell["seeds"] == "0 1"
    pair = [r for r in records_of(out) if (r["window"], r["dim"]) == (1, 4)]
    for metric in ("final_loss", "wall_seconds", "words_per_second"):
        values = np.array([summary.metric_value(r, metric) for r in pair])
        assert float(cell[f"{metric}_mean"]) == pytest.approx(values.mean(), rel=1e-5)
        assert float(cell[f"{metric}_std"]) == pytest.approx(values.std(ddof=1), rel=1e-5, abs=1e-9)
    assert "±" in (out / report.SUMMARY_MD).read_text(encoding="utf-8")


def test_half_written_last_line_is_dropped_and_that_run_redone(done, tmp_path):
    out = copy(done, tmp_path)
    path = out / records.RUNS_FILE
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2], encoding="utf-8")  # killed mid-write
    assert run_cli(out, "--save-vectors") == 0
    now = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert now[:3] == lines[:3] and len(now) == 4
    assert json.loads(now[3])["run_id"] == "w2_d8_s0"
    assert json.loads(now[3])["finished_at"] >= json.loads(lines[3])["finished_at"]
    # the redone run wrote its vectors; the others' came from their checkpoints
    assert sorted(p.parent.name for p in out.glob("*/vectors.txt")) == ["w1_d4_s0", "w1_d8_s0", "w2_d4_s0",
                                                                         "w2_d8_s0"]
    header = (out / "w2_d8_s0" / "vectors.txt").read_text(encoding="utf-8").splitlines()[0]
    assert header == "43 8"


def test_duplicate_records_count_once(done, tmp_path):
    out = copy(done, tmp_path)
    path = out / records.RUNS_FILE
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines) + lines[0], encoding="utf-8")  # two sweeps finished the same run
    result = sweep.run_sweep(_sweep(windows=(1, 2), dims=(4, 8), seeds=(0,)), out, progress=False, log=lambda s: None)
    assert [r["run_id"] for r in result.records] == ["w1_d4_s0", "w1_d8_s0", "w2_d4_s0", "w2_d8_s0"]
    assert not result.new


def test_read_runs_repairs_without_training(tmp_path):
    path = tmp_path / "runs.jsonl"
    good = [{"run_id": "a", "x": 1}, {"run_id": "b", "x": 2}]
    text = "".join(json.dumps(r) + "\n" for r in good)
    path.write_text(text + '{"run_id": "c", "x"', encoding="utf-8")
    messages = []
    assert records.read_runs(path, log=messages.append, validate=False) == good
    assert path.read_text(encoding="utf-8") == text and "half-written" in messages[0]
    # a complete last object that only lacks its newline is kept, and the newline added
    path.write_text(text + '{"run_id": "c"}', encoding="utf-8")
    assert [r["run_id"] for r in records.read_runs(path, validate=False)] == ["a", "b", "c"]
    assert path.read_text(encoding="utf-8") == text + '{"run_id": "c"}\n'
    assert records.read_runs(tmp_path / "missing.jsonl") == []


def test_damage_before_the_last_line_is_an_error(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text('{"run_id": "a"}\nnot json\n{"run_id": "b"}\n', encoding="utf-8")
    with pytest.raises(FormatError, match="line 2"):
        records.read_runs(path, validate=False)


def test_append_writes_whole_lines(tmp_path):
    path = tmp_path / "runs.jsonl"
    records.append_run(path, {"run_id": "a", "score": math.nan, "v": np.float32(0.5)})
    records.append_run(path, {"run_id": "b"})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"run_id": "a", "score": None, "v": 0.5}, {"run_id": "b"}]


def test_a_different_study_is_refused(done, tmp_path, capsys):
    out = copy(done, tmp_path)
    before = (out / records.RUNS_FILE).read_bytes()
    assert run_cli(out, "--negative", "3") == 2
    err = capsys.readouterr().err
    assert "different study" in err and "negative=5 (now 3)" in err
    assert (out / records.RUNS_FILE).read_bytes() == before


# --------------------------------------------------------------------------- pieces


def _sweep(**grid) -> sweep.Sweep:
    base = Config(objective="ns", epochs=1, min_count=5)  # the command's defaults
    return sweep.Sweep(base=base, corpus="toy:groups", **grid)


def test_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    for n in (2, 3, 7):
        x = rng.normal(size=n)
        mean, std = summary.mean_std(x.tolist())
        assert mean == pytest.approx(x.mean()) and std == pytest.approx(x.std(ddof=1))
    assert summary.mean_std([1.5]) == (1.5, pytest.approx(math.nan, nan_ok=True))
    mean, std = summary.mean_std([math.nan, 2.0, 4.0])  # undefined values are left out
    assert mean == 3.0 and std == pytest.approx(math.sqrt(2))
    assert all(math.isnan(v) for v in summary.mean_std([]))


def test_summarize_groups_by_cell():
    def record(window, dim, seed, loss, rho):
        return {"window": window, "dim": dim, "seed": seed, "final_loss": loss, "wall_seconds": 1.0,
                "words_per_second": 10.0, "wordsim353": {"spearman": rho}, "analogy": {"accuracy": None}}

    rows = summary.summarize([record(2, 8, 1, 3.0, 0.2), record(1, 8, 0, 1.0, None), record(2, 8, 0, 2.0, 0.4)])
    assert [(r["window"], r["dim"], r["n_seeds"], r["seeds"]) for r in rows] == [(1, 8, 1, "0"), (2, 8, 2, "0 1")]
    assert rows[1]["final_loss_mean"] == 2.5 and rows[1]["final_loss_std"] == pytest.approx(np.std([2, 3], ddof=1))
    assert rows[1]["wordsim_spearman_mean"] == pytest.approx(0.3)
    assert math.isnan(rows[0]["wordsim_spearman_mean"]) and math.isnan(rows[1]["analogy_pct_mean"])
    first = next(csv.DictReader(summary.summary_csv(rows).splitlines()))
    assert (first["window"], first["dim"], first["final_loss_mean"]) == ("1", "8", "1")
    assert first["final_loss_std"] == first["wordsim_spearman_mean"] == first["wordsim_spearman_low"] == ""  # NaN
    assert first["analogy_pct_mean"] == first["analogy_pct_high"] == ""


def test_presets_and_explicit_options():
    parser = cli.build_parser()
    default = cli_sweep.sweep_from_args(parser.parse_args(["sweep"]))
    assert (default.windows, default.dims, default.seeds) == ((1, 2, 3, 5, 8), (25, 50, 100, 200), (0,))
    assert default.base.objective == "ns" and default.base.share_negatives == "auto"
    assert (default.base.layout, default.base.sharing) == ("span", "pool")
    assert default.base.epochs == sweep.PRESETS["default"].epochs and default.corpus == "default"
    paper = cli_sweep.sweep_from_args(parser.parse_args(["sweep", "--preset", "paper"]))
    assert len(paper.grid()) == 6 * 5 * 3 and paper.base.epochs == 5 and paper.base.min_count == 5
    mixed = cli_sweep.sweep_from_args(parser.parse_args(["sweep", "--preset", "paper", "--epochs", "2", "--seed", "7",
                                                     "--share-negatives", "none"]))
    assert mixed.base.epochs == 2 and mixed.seeds == (7,) and mixed.base.share_negatives == "none"
    with pytest.raises(ConfigError):
        cli_sweep.sweep_from_args(parser.parse_args(["sweep", "--seed", "1", "--seeds", "1,2"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["sweep", "--windows", "0,1"])


def test_code_version_has_a_package_version():
    version = sweep.code_version()
    assert set(version) == {"sg_jax", "git"} and version["sg_jax"]


# --------------------------------------------------------------------------- progress and --save-vectors


def test_save_vectors_on_a_finished_study_writes_them_from_the_checkpoints(done, tmp_path, capsys):
    out = copy(done, tmp_path)
    assert not list(out.glob("*/vectors.txt"))
    (out / "w2_d8_s0" / "checkpoint.sgjax").unlink()  # one run whose checkpoint is gone
    assert run_cli(out, "--save-vectors") == 0
    captured = capsys.readouterr()
    assert "0 run(s) trained, 4 already done" in captured.out
    assert "wrote vectors.txt for 3 run(s)" in captured.out
    assert "1 run(s) have no vectors.txt and no checkpoint" in captured.err and "w2_d8_s0" in captured.err
    assert sorted(p.parent.name for p in out.glob("*/vectors.txt")) == ["w1_d4_s0", "w1_d8_s0", "w2_d4_s0"]
    from sg_jax.api import load_model
    from sg_jax.formats import load_word2vec

    words, vectors = load_word2vec(out / "w1_d4_s0" / "vectors.txt")
    np.testing.assert_array_equal(vectors, load_model(out / "w1_d4_s0").wv.vectors)
    assert cli_sweep.missing_vectors_message(done, []) is None


def test_progress_off_a_terminal_is_one_plain_line_per_run(done, tmp_path, capsys):
    out = tmp_path / "plain"
    result = sweep.run_sweep(_sweep(windows=(1, 2), dims=(4,), seeds=(0,)), out, progress=True)
    text = capsys.readouterr().out
    assert "\x1b" not in text and "\r" not in text  # no escape codes, no carriage returns
    lines = [line for line in text.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in lines] == ["[1/2", "[2/2"]
    assert "w1_d4_s0" in lines[0] and "50% of the study's words" in lines[0] and "min left" in lines[0]
    assert "100% of the study's words" in lines[1] and "left" not in lines[1]
    assert sum(r["words"] for r in result.new) == 2 * result.new[0]["corpus"]["tokens"]


def test_progress_counts_words_across_runs():
    from sg_jax.study.progress import StudyProgress

    clock = iter([0.0, 10.0, 30.0])
    lines = []
    p = StudyProgress(400, 2, log=lines.append, stream=io.StringIO(), clock=lambda: next(clock))
    p.advance(100)
    assert p.estimate() == (10.0, pytest.approx(30.0))  # 10 s for 100 words: 300 words left take 30 s
    p.advance(100)
    p.run_done("w1_d4_s0")
    assert lines == ["[1/2] w1_d4_s0 | 50% of the study's words, 0.5 min so far, about 0.5 min left"]


def test_a_sweep_resumes_an_interrupted_run_from_its_checkpoint(tmp_path):
    """A run stopped mid-way (its directory holds a checkpoint after epoch 1 of 2, no record) is
    resumed by the next sweep, not restarted, and ends with the vectors of an uninterrupted run."""
    from sg_jax.runs import run_training

    grid = dict(windows=(2,), dims=(4,), seeds=(0,))
    base = Config(objective="ns", share_negatives="target", epochs=2, min_count=1, sample=0.0, steps_per_call=4)
    whole = sweep.run_sweep(sweep.Sweep(base=base, corpus="toy:groups", save_vectors=True, **grid),
                            tmp_path / "whole", progress=False, log=lambda s: None)
    study = sweep.Sweep(base=base, corpus="toy:groups", save_vectors=True, **grid)
    config = study.config(2, 4, 0)
    run_training(dataclasses.replace(config, devices=1), "toy:groups", tmp_path / "cut" / "w2_d4_s0",
                 until_epoch=1, log=lambda s: None)
    resumed = sweep.run_sweep(study, tmp_path / "cut", progress=False, log=lambda s: None)
    assert resumed.new[0]["words"] * 2 == whole.new[0]["words"]  # only the second epoch was trained
    assert (tmp_path / "cut" / "w2_d4_s0" / "vectors.txt").read_bytes() == \
        (tmp_path / "whole" / "w2_d4_s0" / "vectors.txt").read_bytes()
    assert resumed.new[0]["loss_curve"] == whole.new[0]["loss_curve"] | {"words": resumed.new[0]["loss_curve"]["words"]}
