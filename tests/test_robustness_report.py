"""benchmarks/robustness_report.py: the grid's joined table names each cell's sg_jax options and
counts divergences and verdicts per corpus, leaving cells trained without gensim out of the count."""

from __future__ import annotations

import json
from pathlib import Path

import bench_scripts


def load_report():
    return bench_scripts.load("robustness_report")


def _entry(batch, verdict, *, diverged=0, gensim=True, devices=1, objective="ns5", lr=0.025):
    cell = {"arch": "sg", "objective": objective, "lr": lr, "window": 5, "fixed": False, "epochs": 5, "dim": 100,
            "min_count": 5, "batch": batch, "devices": devices}
    summary = {"diverged": diverged, "runs": 3, "gensim_diverged": 0, "ws353": 0.2, "ws353_spread": 0.01,
               "gensim_ws353": 0.21 if gensim else None, "simlex": 0.1, "simlex_spread": 0.01,
               "gensim_simlex": 0.1 if gensim else None, "analogy": 0.03, "analogy_spread": 0.001,
               "gensim_analogy": 0.03 if gensim else None}
    return {"cell": cell, "sg_jax": [], "gensim": [{}] if gensim else [], "summary": summary, "verdict": verdict}


def _write(path: Path, corpus: str, sets: list[str], cells: list[dict], defaults: dict | None = None) -> Path:
    record = {"command": f"bench {path.stem}", "args": {"corpus": corpus, "set": sets}, "cells": cells}
    if defaults is not None:
        record["library_defaults"] = defaults
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def test_cells_carry_their_options_and_the_counts_leave_out_runs_without_gensim(tmp_path):
    report = load_report()
    plain = _write(tmp_path / "robust_small_batches.json", "small", [],
                   [_entry(8192, "ok"), _entry(65536, "ws353 0.1 < 0.2", diverged=1)])
    uncapped = _write(tmp_path / "robust_small_batches_uncapped.json", "small", ["cap_batch=false"],
                      [_entry(8192, "ok"), _entry(65536, "ok", gensim=False)])
    totals, text = report.report([plain, uncapped])
    assert totals == {"small": {"cells": 4, "runs": 12, "diverged": 1, "gensim_diverged": 0, "cells_ok": 2,
                                "cells_today": 2, "cells_today_ok": 1}}
    assert "3 of 3 cells with gensim beside them" not in text and "2 of 3 cells with gensim beside them" in text
    rows = [line for line in text.splitlines() if line.startswith("| sg ")]
    assert [r.split(" | ")[0] for r in rows] == [
        "| sg ns5 lr 0.025 w 5 b 8192 d 1 ep 5", "| sg ns5 lr 0.025 w 5 b 65536 d 1 ep 5",
        "| sg ns5 lr 0.025 w 5 b 8192 d 1 ep 5 cap_batch=false", "| sg ns5 lr 0.025 w 5 b 65536 d 1 ep 5 cap_batch=false"]
    assert rows[3].split(" | ")[-2] == "no gensim run" and rows[3].endswith("robust_small_batches_uncapped |")


def test_a_multi_device_cell_is_named_by_the_rule_its_replicas_combined_by(tmp_path):
    """Files that do not record the library's defaults ran when the replicas combined by cap; a
    file that set sync_combine, or recorded today's auto, names the rule the run resolved (trust
    under the trust region, cap without it), and only cells at today's rule count as defaults."""
    report = load_report()
    earlier = _write(tmp_path / "robust_default_devices.json", "default", [],
                     [_entry(1024, "simlex 0.14 < 0.16", devices=4), _entry(1024, "ok")])
    trust = _write(tmp_path / "robust_default_devices_trust.json", "default", ["sync_combine=trust"],
                   [_entry(1024, "ok", devices=4)])
    today = _write(tmp_path / "robust_default_devices_now.json", "default", [],
                   [_entry(1024, "ok", devices=8)], defaults={"sync_combine": "auto"})
    off = _write(tmp_path / "robust_default_devices_off.json", "default", ["trust_region=0"],
                 [_entry(1024, "ok", devices=2)], defaults={"sync_combine": "auto"})
    totals, text = report.report([earlier, trust, today, off])
    names = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| sg ")]
    assert names == ["| sg ns5 lr 0.025 w 5 b 1024 d 4 ep 5 combine cap", "| sg ns5 lr 0.025 w 5 b 1024 d 1 ep 5",
                     "| sg ns5 lr 0.025 w 5 b 1024 d 4 ep 5 combine trust",
                     "| sg ns5 lr 0.025 w 5 b 1024 d 8 ep 5 combine trust",
                     "| sg ns5 lr 0.025 w 5 b 1024 d 2 ep 5 trust_region=0 combine cap"]
    assert totals["default"]["cells_ok"] == 4
    assert (totals["default"]["cells_today"], totals["default"]["cells_today_ok"]) == (3, 3)


def test_a_cell_of_1024_targets_where_auto_now_takes_fewer_is_not_at_todays_defaults(tmp_path):
    """batch_size auto takes 512 targets at k = 15 and lr 0.05: a rates cell run at 1,024 before
    is listed but not counted at today's defaults; the auto batch's cell is, and so are the grid's
    explicit batch cells (256, 8,192) where auto keeps 1,024."""
    report = load_report()
    old = _write(tmp_path / "robust_default_rates.json", "default", [],
                 [_entry(1024, "ws353 0.36 < 0.39", objective="ns15", lr=0.05), _entry(1024, "ok")])
    auto = _write(tmp_path / "robust_default_rates_auto.json", "default", [],
                  [_entry(512, "ok", objective="ns15", lr=0.05)])
    batches = _write(tmp_path / "robust_default_batches.json", "default", [], [_entry(256, "ok"), _entry(8192, "ok")])
    totals, text = report.report([old, auto, batches])
    assert "| sg ns15 lr 0.05 w 5 b 1024 d 1 ep 5 |" in text and "| sg ns15 lr 0.05 w 5 b 512 d 1 ep 5 |" in text
    assert (totals["default"]["cells"], totals["default"]["cells_ok"]) == (5, 4)
    assert (totals["default"]["cells_today"], totals["default"]["cells_today_ok"]) == (4, 4)
