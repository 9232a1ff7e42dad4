"""The README's main job, sequential against grouped: the sweep's time and its scores.

    python benchmarks/bench_study.py --variants 1x1,1x2,2x2,4x2 --out benchmarks/results/study

Each variant is `TOGETHERxDEVICES`: `sg-jax sweep --corpus default --together T --devices D` (the
default study: windows 1, 2, 3, 5, 8 x dimensions 25, 50, 100, 200, 3 epochs) in its own process
and its own output directory. `1x1` is the study as it ran before runs were grouped (one run at a
time on one device); `1xD` trains each run data-parallel over D devices (`--data-parallel`); `TxD` trains T runs
together spread over D devices (each run a one-device run). Reported: the sweep's own time (as
the command prints it), the process's wall and CPU time, and each variant's mean WordSim-353 and
analogy accuracy over the grid with the largest per-run difference from the first variant, in
units of that run's bootstrap interval half-width. The variants interleave over `--repeats`
rounds and the medians of the times are reported, with the load average each one saw.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common


def run_variant(together: int, devices: int, args, workdir: Path) -> dict:
    out = workdir / f"t{together}_d{devices}"
    shutil.rmtree(out, ignore_errors=True)
    argv = [sys.executable, "-m", "sg_jax", "sweep", "--corpus", args.corpus, "--out", str(out), "--quiet",
            "--together", str(together), "--devices", str(devices)]
    if together == 1 and devices > 1:
        argv.append("--data-parallel")  # 1xD: each run data-parallel over the devices, asked for explicitly
    if args.preset:
        argv += ["--preset", args.preset]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    row = {"together": together, "devices": devices, "wall_s": round(wall, 1),
           "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
           "loadavg": round(os.getloadavg()[0], 2)}
    if proc.returncode != 0:
        row["error"] = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        return row
    m = re.search(r"run\(s\) trained, \d+ already done, in ([0-9.]+) s", proc.stdout)
    row["sweep_s"] = float(m.group(1)) if m else None
    records = [json.loads(line) for line in (out / "runs.jsonl").read_text(encoding="utf-8").splitlines()]
    row["runs"] = {r["run_id"]: {"wordsim353": r["wordsim353"]["spearman"], "analogy": r["analogy"]["accuracy"]}
                   for r in records}
    row["summary"] = _intervals(out)
    return row


def _intervals(out: Path) -> dict:
    """Per run: the bootstrap intervals the sweep's summary.csv gives (run ids by window, dim)."""
    import csv

    rows = {}
    with open(out / "summary.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows[f"w{r['window']}_d{r['dim']}"] = r
    return rows


COLUMNS = {"wordsim353": ("wordsim_spearman", 1.0), "analogy": ("analogy_pct", 0.01)}  # summary.csv, scale


def _half_width(summary: dict, run: str, metric: str) -> float | None:
    """Half the width of a run's bootstrap interval, in the record's units."""
    column, scale = COLUMNS[metric]
    r = summary.get(run.rsplit("_s", 1)[0], {})
    try:
        return (float(r[f"{column}_high"]) - float(r[f"{column}_low"])) / 2 * scale
    except (KeyError, TypeError, ValueError):
        return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default="1x1,1x2,2x2,4x2", help="comma-separated TOGETHERxDEVICES")
    p.add_argument("--corpus", default="default")
    p.add_argument("--preset", default=None, help="the sweep's --preset (default: the default study)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--out", help="write OUT.json and OUT.md (atomically)")
    args = p.parse_args(argv)
    variants = [tuple(int(x) for x in v.split("x")) for v in args.variants.split(",")]
    rows: dict[tuple, list[dict]] = {v: [] for v in variants}
    machine = common.machine()
    with tempfile.TemporaryDirectory(prefix="bench_study_") as tmp:
        for _ in range(args.repeats):
            for v in variants:
                rows[v].append(run_variant(*v, args, Path(tmp)))
                print(json.dumps({k: x for k, x in rows[v][-1].items() if k not in ("runs", "summary")}), flush=True)
    first = next((r[-1] for r in rows.values() if "error" not in r[-1]), None)
    lines = ["| together x devices | sweep s (median) | vs first | process wall s | CPU s | mean WordSim-353 | "
             "mean analogies | largest run difference (interval half-widths) | load avg |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base = None
    for v in variants:
        last = rows[v][-1]
        if "error" in last:
            lines.append(f"| {v[0]} x {v[1]} | failed: {last['error'][:120]} | | | | | | | {last['loadavg']} |")
            continue
        sweep_s = statistics.median(r["sweep_s"] for r in rows[v] if r.get("sweep_s") is not None)
        base = base or sweep_s
        runs = last["runs"]
        ws = statistics.mean(r["wordsim353"] for r in runs.values())
        an = statistics.mean(r["analogy"] for r in runs.values())
        worst = 0.0
        for run, r in runs.items():
            for metric in COLUMNS:
                half = _half_width(first["summary"], run, metric)
                if half and run in first["runs"]:
                    a, b = r[metric], first["runs"][run][metric]
                    if a is not None and b is not None:
                        worst = max(worst, abs(a - b) / half)
        lines.append(f"| {v[0]} x {v[1]} | {sweep_s:.1f} | {base / sweep_s:.2f}x | "
                     f"{statistics.median(r['wall_s'] for r in rows[v]):.1f} | "
                     f"{statistics.median(r['cpu_s'] for r in rows[v]):.1f} | {ws:.3f} | {100 * an:.2f}% | "
                     f"{worst:.2f} | {last['loadavg']} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        record = {"args": vars(args), "rows": {f"{t}x{d}": r for (t, d), r in rows.items()}, "machine": machine,
                  "command": common.command_line()}
        common.write_outputs(args.out, record, "# The main job: sequential against grouped\n\n" + table + "\n\n"
                             + common.machine_markdown(machine) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
