"""The study's table: per (window, dim) cell, each metric with its two kinds of noise.

* Evaluation noise (which benchmark items happen to be in the set): the benchmark scores get
  a 95% percentile bootstrap interval over the items (`<metric>_low`, `<metric>_high`; see
  `sg_jax.study.stats`). A cell of several seeds gets the interval of its mean score, the same
  items resampled for every seed.
* Training noise (which seed): every metric gets the mean and the sample standard deviation
  over the cell's seeds (`<metric>_mean`, `<metric>_std`; the std needs two seeds or more).

Analogy accuracies are in percent everywhere (table, CSV, plots, text).
"""

from __future__ import annotations

import csv
import io
import math
from typing import Iterable, NamedTuple, Sequence

from sg_jax.study import compare, stats


class Metric(NamedTuple):
    title: str             # as it appears in plot titles and sentences
    column: str            # the Markdown table's header
    digits: int            # decimals shown
    higher_is_better: bool
    items: str | None      # the `sg_jax.study.compare` metric whose items give an interval; None: no interval


METRICS = {
    "wordsim_spearman": Metric("WordSim-353 Spearman ρ", "WordSim-353 ρ", 3, True, "wordsim"),
    "analogy_pct": Metric("Google analogy accuracy (%)", "analogy %", 2, True, "analogy"),
    "semantic_pct": Metric("semantic analogies (%)", "semantic %", 2, True, "semantic"),
    "syntactic_pct": Metric("syntactic analogies (%)", "syntactic %", 2, True, "syntactic"),
    "final_loss": Metric("final training loss", "final loss", 4, False, None),
    "wall_seconds": Metric("wall time per run (s)", "wall s", 1, False, None),
    "words_per_second": Metric("training words/s", "words/s", 0, True, None),
}
SCORES = [m for m, spec in METRICS.items() if spec.items]  # the metrics with intervals
# Final loss is kept in the CSV as data but neither tabled nor ranked: a window of size w asks
# each target to predict up to 2w contexts, farther ones harder to predict, so losses over
# different windows measure different tasks.
TABLED = [m for m in METRICS if m != "final_loss"]

_SCALE = {"analogy_pct": 100.0, "semantic_pct": 100.0, "syntactic_pct": 100.0}


def metric_value(record: dict, metric: str) -> float:
    """A record's value of a summary metric, in the table's units (NaN when undefined)."""
    ana = record.get("analogy") or {}

    def group(name):
        correct, total = ana.get(name) or (0, 0)
        return correct / total if total else None

    value = {
        "wordsim_spearman": lambda r: r["wordsim353"]["spearman"],
        "analogy_pct": lambda r: ana.get("accuracy"),
        "semantic_pct": lambda r: group("semantic"),
        "syntactic_pct": lambda r: group("syntactic"),
        "final_loss": lambda r: r["final_loss"],
        "wall_seconds": lambda r: r["wall_seconds"],
        "words_per_second": lambda r: r["words_per_second"],
    }[metric](record)
    return math.nan if value is None else float(value) * _SCALE.get(metric, 1.0)


def scale(metric: str) -> float:
    """Table units per unit of the statistic (100 for the accuracies in percent)."""
    return _SCALE.get(metric, 1.0)


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1) of the finite values; NaN where undefined."""
    mean, std, _ = stats.seed_mean_std(list(values))
    return mean, std


def cell_items(group: Sequence[dict], metric: str) -> list[compare.Items] | None:
    """The per-item data of every run of a cell for a score, or None when a run lacks it."""
    items = [compare.record_items(r, METRICS[metric].items) for r in group]
    return None if any(i is None for i in items) else items


def summarize(records: Sequence[dict], *, n_resamples: int = stats.N_RESAMPLES) -> list[dict]:
    """One row per (window, dim), sorted: n_seeds, seeds, <metric>_mean / _std, and for the
    scores <metric>_low / _high (the bootstrap interval of the cell's mean score)."""
    groups: dict[tuple[int, int], list[dict]] = {}
    for r in records:
        groups.setdefault((r["window"], r["dim"]), []).append(r)
    rows = []
    for (window, dim), group in sorted(groups.items()):
        row = {"window": window, "dim": dim, "n_seeds": len(group),
               "seeds": " ".join(str(s) for s in sorted(r["seed"] for r in group))}
        for metric in METRICS:
            row[f"{metric}_mean"], row[f"{metric}_std"] = mean_std(metric_value(r, metric) for r in group)
            if metric in SCORES:
                items = cell_items(group, metric)
                ci = compare.cell(items, n_resamples=n_resamples) if items and len(items[0]) else stats.NAN_INTERVAL
                row[f"{metric}_low"], row[f"{metric}_high"] = ci.low * scale(metric), ci.high * scale(metric)
        rows.append(row)
    return rows


def fields() -> list[str]:
    out = ["window", "dim", "n_seeds", "seeds"]
    for m in METRICS:
        out += [f"{m}_mean", f"{m}_std"] + ([f"{m}_low", f"{m}_high"] if m in SCORES else [])
    return out


def summary_csv(rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields(), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else
                             f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def format_cell(row: dict, metric: str, *, interval: bool = True, spread: bool = True) -> str:
    """'0.412 [0.351, 0.470] ± 0.012': mean, its interval over the items, ± std over seeds."""
    digits = METRICS[metric].digits
    mean = row[f"{metric}_mean"]
    if not math.isfinite(mean):
        return "n/a"
    text = f"{mean:,.{digits}f}"
    low, high = row.get(f"{metric}_low", math.nan), row.get(f"{metric}_high", math.nan)
    if interval and math.isfinite(low) and math.isfinite(high):
        text += f" [{low:,.{digits}f}, {high:,.{digits}f}]"
    std = row[f"{metric}_std"]
    if spread and math.isfinite(std):
        text += f" ± {std:,.{digits}f}"
    return text


def markdown_table(rows: Sequence[dict]) -> str:
    head = ("| window | dim | seeds | " + " | ".join(METRICS[m].column for m in TABLED) + " |\n"
            "|---:|---:|---:|" + "---:|" * len(TABLED) + "\n")
    body = "".join(f"| {r['window']} | {r['dim']} | {r['n_seeds']} | "
                   + " | ".join(format_cell(r, m) for m in TABLED) + " |\n" for r in rows)
    return head + body
