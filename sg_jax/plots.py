"""Figures for the sweep and the experiments, drawn with matplotlib's Agg backend.

Every figure is written as a PNG through `sg_jax.atomic`, so a figure on disk is always whole.
matplotlib is imported on first use: importing this module (as `sg-jax --help` does through the
sweep) costs nothing.
"""

from __future__ import annotations

import io
import math
import os
from typing import Mapping, Sequence

import numpy as np

from sg_jax.atomic import atomic_write_bytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib  # heavy: matplotlib loads only for plots (and takes Agg before pyplot loads)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: matplotlib loads only for plots

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> None:
    """Render `fig` to PNG bytes in memory, write them atomically, and close the figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())


def heatmap(path, mean: np.ndarray, rows: Sequence, cols: Sequence, *, std: np.ndarray | None = None,
            low: np.ndarray | None = None, high: np.ndarray | None = None, digits: int = 3, title: str = "",
            row_label: str = "window", col_label: str = "dimension", cmap: str = "viridis",
            higher_is_better: bool = True, min_range: float = 0.0, note: str = "") -> None:
    """A [rows x cols] grid of values (NaN: no data, drawn blank), each cell annotated with its
    value to `digits` decimals, its interval [low, high] and its ± std when given.

    The colour scale spans the values' range widened (about its middle) to at least `min_range`,
    so that differences smaller than the noise do not fill the scale; the better end is bright
    whatever the metric's direction. `note` is printed under the plot.
    """
    plt = pyplot()
    mean = np.asarray(mean, np.float64)
    data = np.ma.masked_invalid(mean)
    finite = mean[np.isfinite(mean)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmax - vmin < min_range:
        middle = (vmin + vmax) / 2
        vmin, vmax = middle - min_range / 2, middle + min_range / 2
    if vmax <= vmin:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    lines = 1 + (low is not None) + (std is not None)
    fig, ax = plt.subplots(figsize=(1.75 * len(cols) + 2.6, (0.42 + 0.3 * lines) * len(rows) + 1.8),
                           layout="constrained")
    colours = cmap if higher_is_better else f"{cmap}_r"
    im = ax.imshow(data, cmap=colours, aspect="auto", origin="lower", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(cols)), [str(c) for c in cols], fontsize=10)
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=10)
    ax.set_xlabel(col_label, fontsize=11)
    ax.set_ylabel(row_label, fontsize=11)
    ax.set_title(title, fontsize=12)
    colour_map = plt.get_cmap(colours)
    for i in range(len(rows)):
        for j in range(len(cols)):
            value = mean[i, j]
            if not math.isfinite(value):
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=9, color="grey")
                continue
            text = f"{value:,.{digits}f}"
            if low is not None and high is not None and math.isfinite(low[i, j]) and math.isfinite(high[i, j]):
                text += f"\n[{low[i, j]:,.{digits}f}, {high[i, j]:,.{digits}f}]"
            if std is not None and math.isfinite(std[i, j]):
                text += f"\n± {std[i, j]:,.{digits}f}"
            r, g, b, _ = colour_map((value - vmin) / (vmax - vmin))
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black")
    if finite.size:
        fig.colorbar(im, ax=ax)
    if note:
        fig.text(0.01, 0.0, note, fontsize=8.5, ha="left", va="top", wrap=True)
    save_figure(fig, path)


def loss_curves(path, curves: Sequence[Mapping], *, panel_key: str = "dim", colour_key: str = "window",
                x: str = "epoch", title: str = "training loss", sharey: bool = True) -> None:
    """One panel per value of `panel_key`, one line per curve coloured by `colour_key`.

    curves: dicts with the keys panel_key, colour_key, "seed", x and "loss" (lists of equal length).
    Curves of further seeds share their colour and are drawn thinner.
    """
    plt = pyplot()
    panels = sorted({c[panel_key] for c in curves})
    colours = sorted({c[colour_key] for c in curves})
    cmap = plt.get_cmap("viridis")
    colour_of = {v: cmap(i / max(len(colours) - 1, 1) * 0.9) for i, v in enumerate(colours)}
    n = max(len(panels), 1)
    ncols = min(math.ceil(math.sqrt(n)), 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False, sharey=sharey,
                             layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    first_seed = {}
    for curve in sorted(curves, key=lambda c: (c[panel_key], c[colour_key], c.get("seed", 0))):
        ax = axes.flat[panels.index(curve[panel_key])]
        key = (curve[panel_key], curve[colour_key])
        first = key not in first_seed
        first_seed.setdefault(key, curve.get("seed"))
        ax.plot(curve[x], curve["loss"], color=colour_of[curve[colour_key]], lw=1.6 if first else 0.8,
                alpha=1.0 if first else 0.6, label=f"{colour_key} {curve[colour_key]}" if first else None)
    for value, ax in zip(panels, axes.flat):
        ax.set_title(f"{panel_key} {value}")
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
    for ax in (axes.flat if not sharey else (row[0] for row in axes)):
        ax.set_ylabel("loss per example")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title)
    save_figure(fig, path)


def metric_lines(path, series: Mapping[str, Mapping], xs: Sequence, *, x_label: str = "window",
                 line_label: str = "dim") -> None:
    """One panel per metric: mean ± std against `xs`, one line per value of `line_label`.

    series: metric title -> {line value: (means [len(xs)], stds [len(xs)])}.
    """
    plt = pyplot()
    n = max(len(series), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.0 * n, 3.2), squeeze=False, layout="constrained")
    cmap = plt.get_cmap("plasma")
    for ax, (title, lines) in zip(axes.flat, series.items()):
        keys = list(lines)
        for i, key in enumerate(keys):
            means, stds = (np.asarray(a, np.float64) for a in lines[key])
            ax.errorbar(range(len(xs)), means, yerr=np.nan_to_num(stds), marker="o", ms=3, capsize=2,
                        color=cmap(i / max(len(keys) - 1, 1) * 0.85), label=f"{line_label} {key}")
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
        ax.set_xlabel(x_label)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    save_figure(fig, path)


def is_png(path: str | os.PathLike) -> bool:
    """True when the file starts with the PNG signature and holds an IHDR chunk."""
    with open(path, "rb") as f:
        head = f.read(16)
    return head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR"


def interval_panels(path, panels: Sequence[Mapping], xs: Sequence, *, x_label: str = "window",
                    ncols: int = 2, title: str = "", categorical: bool = True) -> None:
    """A grid of panels, each a few lines of estimates with interval error bars against `xs`.

    panels: dicts with "title", "ylabel" and "lines": {label: (estimates, lows, highs)} (arrays of
    len(xs); NaN where undefined). Lines are offset slightly along x so their bars do not hide
    each other; `categorical` spaces the xs evenly and labels them.
    """
    plt = pyplot()
    n = max(len(panels), 1)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.6 * nrows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    positions = np.arange(len(xs), dtype=float) if categorical else np.asarray(xs, float)
    step = 1.0 if categorical or len(xs) < 2 else float(np.min(np.diff(np.sort(positions))))
    for ax, panel in zip(axes.flat, panels):
        lines = panel["lines"]
        cmap = plt.get_cmap("viridis" if len(lines) > 2 else "tab10")
        for i, (label, (est, low, high)) in enumerate(lines.items()):
            est, low, high = (np.asarray(a, np.float64) for a in (est, low, high))
            shift = (i - (len(lines) - 1) / 2) * 0.08 * step
            err = np.vstack([np.nan_to_num(est - low), np.nan_to_num(high - est)])
            colour = cmap(i / max(len(lines) - 1, 1) * 0.85) if len(lines) > 2 else cmap(i)
            ax.errorbar(positions + shift, est, yerr=err, marker="o", ms=4, capsize=3, lw=1.4,
                        color=colour, label=str(label))
        if categorical:
            ax.set_xticks(positions, [str(v) for v in xs])
        ax.set_xlabel(x_label, fontsize=11)
        ax.set_ylabel(panel.get("ylabel", ""), fontsize=11)
        ax.set_title(panel["title"], fontsize=12)
        ax.tick_params(labelsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    if title:
        fig.suptitle(title, fontsize=12)
    save_figure(fig, path)
