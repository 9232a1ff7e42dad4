"""`sg-jax graph-study`: the (p, q, walk length) grid, its table and heatmap, and resuming."""

import json

from sg_jax.cli import main
from sg_jax.plots import is_png

ARGS = ["graph-study", "--edges", "karate", "--ps", "0.5,2", "--qs", "1", "--walk-lengths", "8", "--walks", "3",
        "--dim", "8", "--window", "3", "--epochs", "1", "--quiet"]


def test_study_runs_the_grid_resumes_and_refuses_another_study(tmp_path, capsys):
    out = tmp_path / "pq"
    assert main([*ARGS, "--out", str(out)]) == 0
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert sorted(r["run_id"] for r in runs) == ["p0.5_q1_L8_s0", "p2_q1_L8_s0"]
    assert all(0 <= r["micro_f1"] <= 1 and 0 <= r["nmi"] <= 1 for r in runs)
    summary = (out / "summary.md").read_text()
    assert "| 0.5 | 1 | 8 | 1 |" in summary and "| 2 | 1 | 8 | 1 |" in summary
    assert is_png(out / "heatmap_L8.png")
    capsys.readouterr()
    # rerun with one more q: only the new points are trained
    assert main([*ARGS[:6], "1,4", *ARGS[7:], "--out", str(out)]) == 0
    assert "4 run(s) recorded" in capsys.readouterr().out
    assert len((out / "runs.jsonl").read_text().splitlines()) == 4
    # other training settings into the same directory: refused, nothing added
    assert main([*ARGS[:-7], "--dim", "16", "--window", "3", "--epochs", "1", "--quiet", "--out", str(out)]) == 2
    assert "holds runs of a different study" in capsys.readouterr().err
    assert len((out / "runs.jsonl").read_text().splitlines()) == 4
