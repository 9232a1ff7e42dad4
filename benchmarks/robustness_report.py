"""One report from several bench_robustness.py result files: the cells of each corpus in one
table, the divergences counted, and how many cells meet each target.

    python benchmarks/robustness_report.py benchmarks/results/robust_small_*.json \\
        benchmarks/results/robust_default_*.json --out benchmarks/results/robust_grid

A cell measured by several files (the base cell is in every one-factor run) is listed once per
file, since gensim is trained again in each: their spread shows gensim's own run-to-run
variation (2 workers are not deterministic).

A cell on several devices is named by the rule its replicas' changes combined with (`combine
trust`), whether its file set it or took the default of its day: files that do not record the
library's defaults ran under `EARLIER_DEFAULTS`. The counts "at today's defaults" take the cells
that set no option and combined by today's default rule, leaving out those trained at 1,024
targets where batch_size auto now takes fewer (15 noise words at lr 0.05 and 0.1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_robustness as robust  # noqa: E402
import common  # noqa: E402
from sg_jax.config import Config  # noqa: E402

# the defaults of the options a cell's name resolves, for result files written before
# bench_robustness recorded the library's defaults: the replicas' changes combined by cap until
# sync_combine's auto (trust under the trust region) became the default
EARLIER_DEFAULTS = {"sync_combine": "cap"}

HEADER = ["cell", "diverged", "WS353 (± half range)", "gensim", "SimLex-999", "gensim", "analogies", "gensim",
          "verdict", "result file"]


def cell_name(cell: dict, options=()) -> str:
    """The cell's settings, then the sg_jax options its file set (--set), e.g. cap_batch=false."""
    return (f"{cell['arch']} {cell['objective']} lr {cell['lr']} w {cell['window']}"
            f"{' fixed' if cell['fixed'] else ''} b {cell['batch']} d {cell['devices']} ep {cell['epochs']}"
            + "".join(f" {o}" for o in options))


def combine_rule(cell: dict, options: dict, defaults: dict) -> str | None:
    """The rule a cell's replicas combined their changes by (None on one device), resolved by the
    library as the run resolved it."""
    if cell["devices"] == 1:
        return None
    rule = options.get("sync_combine", defaults.get("sync_combine", "auto"))
    trust = options.get("trust_region", Config().trust_region)
    return Config(sync_combine=rule, trust_region=trust).resolved_sync_combine


def name_options(cell: dict, sets: list[str], defaults: dict) -> tuple[list[str], bool]:
    """The options that name a cell (its file's --set, the combine rule of a multi-device cell in
    place of sync_combine), and whether the cell ran at today's defaults."""
    options = common.parse_sets(sets)
    names = [s for s in sets if s.split("=", 1)[0] != "sync_combine"]
    rule = combine_rule(cell, options, defaults)
    # a cell of 1,024 targets where batch_size auto now takes fewer ran the old default batch
    auto_batch = cell["batch"] != 1024 or cell["batch"] == robust.auto_batch(cell)
    at_defaults = not names and auto_batch and rule == combine_rule(cell, {}, {"sync_combine": Config().sync_combine})
    if rule is not None:
        names.append(f"combine {rule}")
    return names, at_defaults


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
        sets = record["args"].get("set") or []
        defaults = record.get("library_defaults") or EARLIER_DEFAULTS
        for entry in record["cells"]:
            options, today = name_options(entry["cell"], sets, defaults)
            by_corpus.setdefault(corpus, []).append(dict(entry, options=options, today=today, file=path.stem))
    parts, totals = [], {}
    for corpus, entries in by_corpus.items():
        runs = sum(e["summary"]["runs"] for e in entries)
        diverged = sum(e["summary"]["diverged"] for e in entries)
        peer_diverged = sum(e["summary"].get("gensim_diverged", 0) for e in entries)
        ok = sum(verdict(e) == "ok" for e in entries)
        alone = sum(not e["gensim"] for e in entries)
        today = [e for e in entries if e["today"] and e["gensim"]]
        today_ok = sum(verdict(e) == "ok" for e in today)
        totals[corpus] = {"cells": len(entries), "runs": runs, "diverged": diverged, "gensim_diverged": peer_diverged,
                          "cells_ok": ok, "cells_today": len(today), "cells_today_ok": today_ok}
        parts += [f"### Corpus {corpus}", "",
                  f"{len(entries)} cells, {runs} sg_jax runs: **{diverged} diverged** (gensim: {peer_diverged}); "
                  f"{ok} of {len(entries) - alone} cells with gensim beside them meet every quality target, "
                  f"{today_ok} of the {len(today)} at today's defaults.", "",
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
