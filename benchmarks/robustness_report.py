"""One report from several bench_robustness.py result files: the cells of each corpus in one
table, the divergences counted, and how many cells meet each target.

    python benchmarks/robustness_report.py benchmarks/results/robust_small_*.json \\
        benchmarks/results/robust_default_*.json --out benchmarks/results/robust_grid

A cell measured by several files (the base cell is in every one-factor run) is listed once per
file, since gensim is trained again in each: their spread shows gensim's own run-to-run
variation (2 workers are not deterministic).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_robustness as robust  # noqa: E402
import common  # noqa: E402

HEADER = ["cell", "diverged", "WS353 (± half range)", "gensim", "SimLex-999", "gensim", "analogies", "gensim",
          "verdict", "result file"]


def cell_name(cell: dict, options=()) -> str:
    """The cell's settings, then the sg_jax options its file set (--set), e.g. cap_batch=false."""
    return (f"{cell['arch']} {cell['objective']} lr {cell['lr']} w {cell['window']}"
            f"{' fixed' if cell['fixed'] else ''} b {cell['batch']} d {cell['devices']} ep {cell['epochs']}"
            + "".join(f" {o}" for o in options))


def row(entry: dict) -> list:
    n = entry["summary"]
    f = robust.fmt
    return [cell_name(entry["cell"], entry.get("options") or ()), f"{n['diverged']}/{n['runs']}",
            f"{f(n['ws353'])} ± {f(n['ws353_spread'])}", f(n["gensim_ws353"]), f"{f(n['simlex'])} ± {f(n['simlex_spread'])}", f(n["gensim_simlex"]),
            f(n["analogy"], True), f(n["gensim_analogy"], True), verdict(entry), entry["file"]]


def verdict(entry: dict) -> str:
    """The cell's verdict against gensim; a cell trained without gensim (--no-gensim) has none."""
    return entry["verdict"] if entry["gensim"] else "no gensim run"


def report(paths: list[Path]) -> tuple[dict, str]:
    by_corpus: dict[str, list[dict]] = {}
    commands = []
    for path in paths:
        record = json.loads(path.read_text(encoding="utf-8"))
        commands.append(record["command"])
        corpus = record["args"]["corpus"]
        extra = record["args"].get("set") or []
        for entry in record["cells"]:
            by_corpus.setdefault(corpus, []).append(dict(entry, options=extra, file=path.stem))
    parts, totals = [], {}
    for corpus, entries in by_corpus.items():
        runs = sum(e["summary"]["runs"] for e in entries)
        diverged = sum(e["summary"]["diverged"] for e in entries)
        peer_diverged = sum(e["summary"].get("gensim_diverged", 0) for e in entries)
        ok = sum(verdict(e) == "ok" for e in entries)
        alone = sum(not e["gensim"] for e in entries)
        totals[corpus] = {"cells": len(entries), "runs": runs, "diverged": diverged, "gensim_diverged": peer_diverged,
                          "cells_ok": ok}
        parts += [f"### Corpus {corpus}", "",
                  f"{len(entries)} cells, {runs} sg_jax runs: **{diverged} diverged** (gensim: {peer_diverged}); "
                  f"{ok} of {len(entries) - alone} cells with gensim beside them meet every quality target.", "",
                  common.markdown_table(HEADER, [row(e) for e in entries]), ""]
    parts += ["Made from:", ""] + [f"    {c}" for c in commands]
    return totals, "\n".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--out", help="write OUT.json and OUT.md (atomically)")
    args = p.parse_args(argv)
    totals, text = report(args.files)
    print(text)
    if args.out:
        common.write_outputs(args.out, {"command": common.command_line(), "files": [str(f) for f in args.files],
                                        "totals": totals}, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
