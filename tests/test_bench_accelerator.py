"""benchmarks/bench_accelerator.py and accelerator.sh: the smoke configuration end to end on the
CPU, the quality comparison and the report for cells that diverged, stopped or were skipped."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bench_scripts

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"


def load_bench():
    return bench_scripts.load("bench_accelerator")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("accel") / "x"
    proc = subprocess.run([sys.executable, str(BENCH / "bench_accelerator.py"), "--smoke", "--out", str(out)],
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc, json.loads(out.with_suffix(".json").read_text()), out.with_suffix(".md").read_text()


def test_smoke_cells_have_rates_memory_and_quality(smoke):
    _, record, _ = smoke
    assert record["settings"]["smoke"] is True
    assert record["settings"]["dims"] == [8] and record["settings"]["batches"] == [64, 256]
    assert [(c["dim"], c["batch"]) for c in record["cells"]] == [(8, 64), (8, 256)]
    for cell in record["cells"]:
        assert cell["status"] in ("ok", "diverged"), cell
        if cell["status"] == "diverged":
            assert "diverged at step" in cell["message"]
            continue
        assert cell["words_per_second"] > 0 and cell["train_seconds"] > 0
        # the rate excludes the first (compiling) call, so it covers part of the epoch, not all of it
        assert cell["calls"] >= 2 and not cell["includes_first_call"]
        assert 0 < cell["timed_words"] < cell["epoch_words"]
        assert cell["first_call_seconds"] > 0
        assert cell["effective_batch"] == cell["batch"]     # uncapped, in whole spans of 64
        peak = cell["peak_device_bytes"]
        assert peak is None if record["machine"]["jax_backend"] == "cpu" else peak > 0
        q = cell["quality"]
        assert q["wordsim353"]["pairs"] > 0 and -1 <= q["wordsim353"]["spearman"] <= 1
        assert q["analogies"]["questions"] > 0 and 0 <= q["analogies"]["accuracy"] <= 1
        simlex = q["simlex999"]
        assert (simlex["pairs"] > 0 and -1 <= simlex["spearman"] <= 1) or "gensim" in simlex["note"]


def test_smoke_quality_study_and_budget_sections(smoke):
    proc, record, markdown = smoke
    (row,) = record["quality"]
    assert row["dim"] == 8 and row["reference_batch"] == 64
    cells = {c["batch"]: c for c in record["cells"]}
    ok = [b for b, c in cells.items() if c["status"] == "ok"]
    assert row["largest_stable_batch"] == (max(ok) if ok else None)
    assert row["diverged_batches"] == [b for b, c in cells.items() if c["status"] == "diverged"]
    if cells[64]["status"] == "ok":
        big, ref = cells[row["largest_stable_batch"]]["quality"], cells[64]["quality"]
        want = big["wordsim353"]["spearman"] - ref["wordsim353"]["spearman"]
        assert math.isclose(row["difference"]["wordsim353"]["delta"], want, abs_tol=1e-12)
    assert record["study"]["status"] == "skipped"
    budget = record["budget"]
    assert budget["budget_seconds"] == 480 and not budget["exceeded"] and budget["skipped"] == []
    assert 0 < budget["elapsed_seconds"] <= 480
    assert record["command"].startswith("python benchmarks/bench_accelerator.py --smoke")
    assert markdown.strip() in proc.stdout  # the printed report is the written one
    for heading in ("| dim | batch |", "## Quality", "## The default study", "## Time budget", "## Machine"):
        assert heading in markdown


def test_quality_compares_the_largest_batch_that_trained():
    bench = load_bench()

    def q(ws, acc):
        return {"wordsim353": {"spearman": ws}, "simlex999": {"spearman": None}, "analogies": {"accuracy": acc}}

    cells = [{"dim": 4, "batch": 16, "status": "ok", "quality": q(0.30, 0.10)},
             {"dim": 4, "batch": 64, "status": "ok", "quality": q(0.25, 0.05)},
             {"dim": 4, "batch": 256, "status": "diverged", "message": "training diverged at step 3: ..."},
             {"dim": 8, "batch": 16, "status": "diverged", "message": "training diverged at step 9: ..."},
             {"dim": 8, "batch": 64, "status": "skipped", "message": "time budget"}]
    four, eight = bench.compare_quality(cells, [4, 8], 16)
    assert four["largest_stable_batch"] == 64 and four["diverged_batches"] == [256]
    assert math.isclose(four["difference"]["wordsim353"]["delta"], -0.05)
    assert math.isclose(four["difference"]["analogies"]["ratio"], 0.5)
    assert four["difference"]["simlex999"] is None  # not measured: no difference invented
    assert eight["largest_stable_batch"] is None and "did not train (diverged)" in eight["note"]
    assert "difference" not in eight


def test_report_renders_cells_that_did_not_train():
    bench = load_bench()
    cells = [{"dim": 4, "batch": 16, "status": "diverged", "message": "training diverged at step 3: loss",
              "peak_device_bytes": None},
             {"dim": 4, "batch": 64, "status": "stopped", "message": "at the time budget, after 9 s"},
             {"dim": 4, "batch": 256, "status": "skipped", "message": "time budget"}]
    record = {"command": "python benchmarks/bench_accelerator.py", "cells": cells,
              "settings": {"smoke": False, "corpus": "c", "tokens": 10, "seed": 0},
              "quality": bench.compare_quality(cells, [4], 16),
              "study": {"status": "stopped", "wall_seconds": 5.0, "message": "not finished"},
              "budget": {"budget_seconds": 10, "elapsed_seconds": 10.2, "skipped": ["dim 4 batch 256"]},
              "machine": {"jax_backend": "cpu", "jax_devices": "cpu:0"}}
    md = bench.render(record)
    assert "diverged: training diverged at step 3" in md and "stopped: at the time budget" in md
    assert "skipped: time budget" in md and "skipped at the budget: dim 4 batch 256" in md
    assert "stopped, 5.0 s wall (not finished)" in md


def test_steps_per_call_leaves_several_calls_per_epoch():
    bench = load_bench()
    assert bench.steps_per_call(4_000_000, 1024) == 64  # capped at the default
    for tokens, batch in ((4_000_000, 65_536), (60_000, 256), (1000, 4096)):
        spc = bench.steps_per_call(tokens, batch)
        assert spc >= 1
        assert spc == 1 or tokens * bench.KEEP_GUESS / batch / spc >= bench.CALLS_PER_EPOCH


def test_accelerator_sh_parses_and_refuses_an_unknown_device():
    script = BENCH / "accelerator.sh"
    assert subprocess.run(["bash", "-n", str(script)], timeout=30).returncode == 0
    assert "set -euo pipefail" in script.read_text()
    proc = subprocess.run(["bash", str(script), "gpu2"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "unknown accelerator 'gpu2'" in proc.stderr
