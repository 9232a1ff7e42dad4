"""The study's table: per (window, dim) cell, each metric's mean and spread over seeds."""

from __future__ import annotations

import csv
import io
import math
from typing import Iterable, Sequence


METRICS = {
    "wordsim_spearman": ("WordSim-353 Spearman", True),
    "analogy_accuracy": ("Google analogy accuracy", True),
    "final_loss": ("final training loss", False),
    "wall_seconds": ("wall time per run (s)", False),
    "words_per_second": ("training words/s", True),
}


def metric_value(record: dict, metric: str) -> float:
    """A record's value of a summary metric (NaN when undefined)."""
    value = {
        "wordsim_spearman": lambda r: r["wordsim353"]["spearman"],
        "analogy_accuracy": lambda r: r["analogy"]["accuracy"],
        "final_loss": lambda r: r["final_loss"],
        "wall_seconds": lambda r: r["wall_seconds"],
        "words_per_second": lambda r: r["words_per_second"],
    }[metric](record)
    return math.nan if value is None else float(value)


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1) of the finite values; NaN where undefined."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    mean = math.fsum(finite) / len(finite)
    if len(finite) < 2:
        return mean, math.nan
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (len(finite) - 1))


def summarize(records: Sequence[dict]) -> list[dict]:
    """One row per (window, dim), sorted: n_seeds, seeds, and <metric>_mean / <metric>_std."""
    groups: dict[tuple[int, int], list[dict]] = {}
    for r in records:
        groups.setdefault((r["window"], r["dim"]), []).append(r)
    rows = []
    for (window, dim), group in sorted(groups.items()):
        row = {"window": window, "dim": dim, "n_seeds": len(group),
               "seeds": " ".join(str(s) for s in sorted(r["seed"] for r in group))}
        for metric in METRICS:
            row[f"{metric}_mean"], row[f"{metric}_std"] = mean_std(metric_value(r, metric) for r in group)
        rows.append(row)
    return rows


def summary_csv(rows: Sequence[dict]) -> str:
    fields = ["window", "dim", "n_seeds", "seeds"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "std")]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else
                             f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def _cell(mean: float, std: float, scale: float = 1.0, digits: int = 3) -> str:
    if not math.isfinite(mean):
        return "n/a"
    text = f"{mean * scale:,.{digits}f}"
    return text + (f" ± {std * scale:,.{digits}f}" if math.isfinite(std) else "")


def markdown_table(rows: Sequence[dict]) -> str:
    head = ("| window | dim | seeds | WordSim-353 ρ | analogy acc. (%) | final loss | wall s | words/s |\n"
            "|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    body = "".join(
        f"| {r['window']} | {r['dim']} | {r['n_seeds']} "
        f"| {_cell(r['wordsim_spearman_mean'], r['wordsim_spearman_std'])} "
        f"| {_cell(r['analogy_accuracy_mean'], r['analogy_accuracy_std'], 100, 2)} "
        f"| {_cell(r['final_loss_mean'], r['final_loss_std'], 1, 4)} "
        f"| {_cell(r['wall_seconds_mean'], r['wall_seconds_std'], 1, 1)} "
        f"| {_cell(r['words_per_second_mean'], r['words_per_second_std'], 1, 0)} |\n"
        for r in rows)
    return head + body
