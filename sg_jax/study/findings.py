"""What the study's numbers say, in words written from them: which differences between cells
exceed the evaluation noise and which do not.

Every comparison is paired: two cells scored on the same benchmark items are resampled
together (`sg_jax.study.compare.paired`), and a difference counts only when its 95% interval
excludes zero. Three questions per score:

* window: the largest window against the smallest, at each dimension;
* dimension: the largest dimension against the smallest, at each window;
* the best cell: which other cells are within evaluation noise of it.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

from sg_jax.study import compare, stats
from sg_jax.study.summary import METRICS, SCORES, cell_items, scale


class Comparison(NamedTuple):
    a: tuple[int, int]   # (window, dim) of the first cell
    b: tuple[int, int]   # ... and of the second
    diff: stats.Interval  # a − b, in the statistic's units (fractions for accuracies)


def _cells(records: Sequence[dict]) -> dict[tuple[int, int], list[dict]]:
    cells: dict[tuple[int, int], list[dict]] = {}
    for r in records:
        cells.setdefault((r["window"], r["dim"]), []).append(r)
    return cells


def compare_cells(records: Sequence[dict], metric: str, a: tuple[int, int], b: tuple[int, int],
                  n_resamples: int = stats.N_RESAMPLES) -> Comparison | None:
    """Cell a − cell b on one score, paired over the items, or None without per-item data."""
    cells = _cells(records)
    ia, ib = cell_items(cells[a], metric), cell_items(cells[b], metric)
    if ia is None or ib is None:
        return None
    return Comparison(a, b, compare.paired(ia, ib, n_resamples=n_resamples))


def _diff_text(metric: str, diff: stats.Interval) -> str:
    k, digits = scale(metric), METRICS[metric].digits
    unit = " pts" if k != 1 else ""
    return f"{diff.estimate * k:+.{digits}f}{unit} [{diff.low * k:.{digits}f}, {diff.high * k:.{digits}f}]"


def _along(records, metric, axis: str, n_resamples: int) -> list[str]:
    """The largest value of `axis` ("window" or "dim") against the smallest, at each value of the other."""
    cells = _cells(records)
    other = "dim" if axis == "window" else "window"
    at = {}
    for (w, d) in cells:
        at.setdefault(d if axis == "window" else w, []).append(w if axis == "window" else d)
    lines, up, down, flat, signs = [], [], [], [], []
    label = {"window": "window", "dim": "dimension"}
    for fixed in sorted(at):
        values = sorted(at[fixed])
        if len(values) < 2:
            continue
        lo, hi = values[0], values[-1]
        key = (lambda v: (v, fixed)) if axis == "window" else (lambda v: (fixed, v))
        c = compare_cells(records, metric, key(hi), key(lo), n_resamples)
        if c is None or not math.isfinite(c.diff.low):
            continue
        lines.append(f"{other} {fixed}: {_diff_text(metric, c.diff)}")
        signs.append(math.copysign(1.0, c.diff.estimate) if c.diff.estimate else 0.0)
        (up if c.diff.low > 0 else down if c.diff.high < 0 else flat).append(str(fixed))
    if not lines:
        return []
    n = len(up) + len(down) + len(flat)
    title = METRICS[metric].title
    pieces = []
    if up:
        pieces.append(f"higher at the larger {label[axis]} beyond evaluation noise at {_count(up, n)} ({other} "
                      f"{', '.join(up)})")
    if down:
        pieces.append(f"lower at the larger {label[axis]} beyond evaluation noise at {_count(down, n)} ({other} "
                      f"{', '.join(down)})")
    if flat:
        pieces.append(f"within evaluation noise at {_count(flat, n)} ({other} {', '.join(flat)})")
    if len(up) == n:
        head = f"{title} rises with {label[axis]} at every {label[other]}"
    elif len(down) == n:
        head = f"{title} falls with {label[axis]} at every {label[other]}"
    elif len(flat) == n:
        head = f"{title}: {label[axis]} changes nothing beyond evaluation noise"
        if n > 1 and abs(sum(signs)) == n:  # shared items: agreeing estimates are not independent evidence
            head += (f" (every estimate favours the {'larger' if signs[0] > 0 else 'smaller'} {label[axis]}, but "
                     f"every interval includes zero, and as the cells share their items the agreement is not "
                     f"extra evidence)")
    elif up and down:  # mixed only when the intervals say so in both directions
        head = (f"{title}: the {label[axis]} effect is mixed (up beyond evaluation noise at {len(up)}, down at "
                f"{len(down)} of {n} {label[other]}s)")
    else:  # one direction beyond the noise at some, within it at the rest
        moves, rest = ("rises", up) if up else ("falls", down)
        agree = abs(sum(signs)) == n
        head = (f"{title} {moves} with {label[axis]} beyond evaluation noise at {_count(rest, n)} "
                f"{label[other]}s and is within the noise at the other {len(flat)}"
                + (f", where its estimates point the same way" if agree else "")
                + f"; at no {label[other]} does it {'fall' if up else 'rise'} beyond the noise")
    lo_all = min(v for vals in at.values() for v in vals)
    hi_all = max(v for vals in at.values() for v in vals)
    return [f"{head}. {label[axis].capitalize()} {hi_all} − {label[axis]} {lo_all}, per {label[other]}: "
            f"{'; '.join(lines)}. So the score is {'; '.join(pieces)}."]


def _count(items: list, n: int) -> str:
    return f"{len(items)} of {n}"


def _best(records, rows, metric, n_resamples: int) -> list[str]:
    title, digits = METRICS[metric].title, METRICS[metric].digits
    scored = [r for r in rows if math.isfinite(r[f"{metric}_mean"])]
    if len(scored) < 2:
        return []
    best = max(scored, key=lambda r: r[f"{metric}_mean"])
    b = (best["window"], best["dim"])
    tied, below = [], []
    for r in scored:
        cell = (r["window"], r["dim"])
        if cell == b:
            continue
        c = compare_cells(records, metric, cell, b, n_resamples)
        if c is None or not math.isfinite(c.diff.low):
            return []
        (below if c.diff.high < 0 else tied).append(f"w{cell[0]} d{cell[1]}")
    low, high = best.get(f"{metric}_low", math.nan), best.get(f"{metric}_high", math.nan)
    text = (f"{title}: the highest mean is at window {b[0]}, dimension {b[1]} ({best[f'{metric}_mean']:.{digits}f} "
            f"[{low:.{digits}f}, {high:.{digits}f}]). ")
    n = len(tied) + len(below)
    if tied:
        text += f"{_count(tied, n)} other cells are within evaluation noise of it ({', '.join(tied)})"
        text += f"; the other {len(below)} are below it beyond noise." if below else "."
    else:
        text += f"Every other cell ({n}) is below it beyond evaluation noise."
    return [text]


def _training_noise(rows, metric) -> list[str]:
    multi = [r for r in rows if r["n_seeds"] > 1 and math.isfinite(r[f"{metric}_std"])]
    halves = [(r[f"{metric}_high"] - r[f"{metric}_low"]) / 2 for r in rows
              if math.isfinite(r.get(f"{metric}_low", math.nan))]
    if not multi or not halves:
        return []
    digits = METRICS[metric].digits
    std = sum(r[f"{metric}_std"] for r in multi) / len(multi)
    half = sum(halves) / len(halves)
    relation = "smaller than" if std < half else "as large as or larger than"
    return [f"{METRICS[metric].title}: training noise (std over seeds, mean over the {len(multi)} cells with "
            f"several seeds) is {std:.{digits}f}, {relation} the evaluation noise (mean interval half-width "
            f"{half:.{digits}f})."]


def findings(records: Sequence[dict], rows: Sequence[dict], n_resamples: int = stats.N_RESAMPLES) -> dict[str, list[str]]:
    """score metric -> sentences on its window effect, dimension effect, best cell, training noise."""
    out = {}
    for metric in SCORES:
        sentences = (_along(records, metric, "window", n_resamples) + _along(records, metric, "dim", n_resamples)
                     + _best(records, rows, metric, n_resamples) + _training_noise(rows, metric))
        if sentences:
            out[metric] = sentences
    return out
