"""The study's outputs derived from its records: summary files, plots and report.md."""

from __future__ import annotations

import dataclasses
import datetime
import math
import shlex
from pathlib import Path
from typing import Sequence

import numpy as np

import sg_jax.plots as plots
from sg_jax.atomic import atomic_write_text
from sg_jax.cli.options import config_to_argv
from sg_jax.config import Config
from sg_jax.errors import quoted_list
from sg_jax.evaluation import DEFAULT_RESTRICT_VOCAB
from sg_jax.study import stats
from sg_jax.study.findings import findings
from sg_jax.study.records import RUNS_FILE
from sg_jax.study.summary import METRICS, SCORES, TABLED, markdown_table, summarize, summary_csv


SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
REPORT = "report.md"
LOSS_CURVES = "loss_curves.png"
METRIC_LINES = "metrics_by_window.png"
HEATMAPS = TABLED  # final loss is not mapped: losses over different windows are not comparable


def heatmap_file(metric: str) -> str:
    return f"heatmap_{metric}.png"


def _grid(rows, windows, dims, key):
    at = {(r["window"], r["dim"]): r for r in rows}
    grid = np.full((len(windows), len(dims)), np.nan)
    for i, w in enumerate(windows):
        for j, d in enumerate(dims):
            if (w, d) in at:
                grid[i, j] = at[w, d].get(key, np.nan)
    return grid


def typical_interval(rows, metric: str) -> float:
    """The median width of the cells' intervals (NaN when none has one)."""
    widths = [r[f"{metric}_high"] - r[f"{metric}_low"] for r in rows
              if math.isfinite(r.get(f"{metric}_low", math.nan)) and math.isfinite(r.get(f"{metric}_high", math.nan))]
    return float(np.median(widths)) if widths else math.nan


def write_plots(out: Path, records: Sequence[dict], rows: Sequence[dict]) -> list[str]:
    """The heatmaps, the loss curves and the by-window grid; returns the file names written."""
    windows = sorted({r["window"] for r in rows})
    dims = sorted({r["dim"] for r in rows})
    written = []
    for metric in HEATMAPS:
        spec = METRICS[metric]
        mean, std = _grid(rows, windows, dims, f"{metric}_mean"), _grid(rows, windows, dims, f"{metric}_std")
        kwargs = {}
        note = ("Mean ± std over seeds where a cell has several, else one measurement. " if (std == std).any()
                else "One measurement per cell. ") + "Times depend on the load on the machine while each run ran."
        if metric in SCORES:
            typical = typical_interval(rows, metric)
            kwargs = {"low": _grid(rows, windows, dims, f"{metric}_low"),
                      "high": _grid(rows, windows, dims, f"{metric}_high"),
                      "min_range": typical if math.isfinite(typical) else 0.0}
            note = ("Mean [95% bootstrap interval over the benchmark items]" + (" ± std over seeds" if (std == std).any() else "")
                    + ". The colour scale spans at least one typical interval width"
                    + (f" ({typical:.{spec.digits}f})" if math.isfinite(typical) else "") + ", so colours do not "
                    "stretch differences smaller than the evaluation noise.")
        plots.heatmap(out / heatmap_file(metric), mean, windows, dims, std=std, digits=spec.digits,
                      higher_is_better=spec.higher_is_better, note=note,
                      title=f"{spec.title} ({'higher' if spec.higher_is_better else 'lower'} is better)", **kwargs)
        written.append(heatmap_file(metric))
    curves = [{"window": r["window"], "dim": r["dim"], "seed": r["seed"], "epoch": r["loss_curve"]["epoch"],
               "loss": r["loss_curve"]["loss"]} for r in records]
    plots.loss_curves(out / LOSS_CURVES, curves, panel_key="window", colour_key="dim", x="epoch",
                      title="training loss per example: compare within a panel (one window), not across panels",
                      sharey=False)
    written.append(LOSS_CURVES)
    panels = []
    for metric in SCORES:
        lines = {f"dim {d}": tuple(_grid(rows, windows, dims, f"{metric}_{k}")[:, j] for k in ("mean", "low", "high"))
                 for j, d in enumerate(dims)}
        panels.append({"title": METRICS[metric].title, "ylabel": METRICS[metric].column, "lines": lines})
    plots.interval_panels(out / METRIC_LINES, panels, windows, x_label="window", ncols=2,
                          title="error bars: 95% bootstrap intervals over the benchmark items")
    written.append(METRIC_LINES)
    return written


def write_outputs(out: Path, records: Sequence[dict], sweep=None) -> list[str]:
    """summary.csv, summary.md, the plots and report.md from the recorded runs."""
    if not records:
        return []
    rows = summarize(records)
    atomic_write_text(out / SUMMARY_CSV, summary_csv(rows))
    table = markdown_table(rows)
    atomic_write_text(out / SUMMARY_MD, table)
    figures = write_plots(out, records, rows)
    atomic_write_text(out / REPORT, report_markdown(records, rows, table, figures, sweep, out))
    return [SUMMARY_CSV, SUMMARY_MD, *figures, REPORT]


def reproduce_command(records: Sequence[dict], out: Path) -> str:
    """The `sg-jax sweep` command line that produces this directory's grid (generated from the
    recorded Config, so every field that differs from its default is there), each argument
    shell-quoted: a path holding spaces, quotes, `;` or `$(...)` pastes as itself."""
    return shlex.join(reproduce_argv(records, out))


def reproduce_argv(records: Sequence[dict], out: Path) -> list[str]:
    """The arguments of `reproduce_command`, unquoted."""
    first = records[0]
    config = Config.from_dict(first["config"], where="the first run record's config")
    corpus, evaluation = first["corpus"], first["evaluation"]
    csv_of = lambda key: ",".join(str(v) for v in sorted({r[key] for r in records}))  # noqa: E731
    argv = ["sg-jax", "sweep", "--corpus", str(corpus.get("source", "default")), "--windows", csv_of("window"),
            "--dims", csv_of("dim"), "--seeds", csv_of("seed"), "--epochs", str(config.epochs),
            *config_to_argv(config, exclude=("window", "dim", "seed", "epochs", "devices", "sync_every")),
            *_sync_argv(config)]
    # how the study used its devices: its runs trained together spread over them, one at a time,
    # or each data-parallel over config.devices
    device = first.get("device") or {}
    used, together = device.get("used", config.devices), device.get("together", 1)
    argv += ["--devices", str(used), "--together", str(together)]
    if (config.devices or 1) > 1:
        argv.append("--data-parallel")
    if evaluation.get("restrict_vocab") != DEFAULT_RESTRICT_VOCAB:
        argv += ["--restrict-vocab", str(evaluation["restrict_vocab"])]
    return argv + ["--out", str(out)]


def _sync_argv(config) -> list[str]:
    """--sync-every as the runs used it: the recorded (resolved) interval of runs trained over
    several replicating devices; for one-device runs, where no sync happens, only a value auto
    would not give (so that the command's runs record what these recorded); never with sharded
    tables, whose every step is synchronous."""
    if config.sync_every is None or config.shard_tables:
        return []
    if (config.devices or 1) > 1:
        return ["--sync-every", str(config.sync_every)]
    auto = dataclasses.replace(config, sync_every=None).sync_interval(1)
    return [] if config.sync_every == auto else ["--sync-every", str(config.sync_every)]


def sweep_wall_seconds(records: Sequence[dict]) -> float | None:
    """The study's wall time: the union of its runs' [started_at, finished_at] spans (runs trained
    together overlap; time between two invocations of the sweep, when nothing ran, is not
    counted). None when a record lacks its times (records from before they were kept)."""
    spans = []
    for r in records:
        try:
            start = datetime.datetime.fromisoformat(r["started_at"])
            end = datetime.datetime.fromisoformat(r["finished_at"])
        except (KeyError, TypeError, ValueError):
            return None
        spans.append((start, max(start, end)))
    total, reach = 0.0, None
    for start, end in sorted(spans):
        if reach is None or start > reach:
            total += (end - start).total_seconds()
            reach = end
        elif end > reach:
            total += (end - reach).total_seconds()
            reach = end
    return total


def outside_grid(records: Sequence[dict], sweep) -> list[str]:
    """The run ids of records outside the sweep's grid (recorded by an earlier sweep into the
    directory with another grid); [] without a sweep."""
    if sweep is None:
        return []
    grid = set(sweep.grid())
    return [r["run_id"] for r in records if (r["window"], r["dim"], r["seed"]) not in grid]


def _devices_used(first: dict) -> str:
    """How the runs used the devices, with the sync interval they trained with."""
    config = Config.from_dict(first["config"], where="the first run record's config")
    device = first.get("device") or {}
    used, together = device.get("used", config.devices), device.get("together", 1)
    n = config.devices or 1
    if n == 1:
        spread = f", up to {together} at a time spread over {used} device(s)" if together > 1 else ""
        return f"Each run trained on one device{spread}, so no sync between replicas applied."
    if config.shard_tables:
        return f"Each run trained over {n} devices with its tables sharded by row (every step synchronous)."
    return (f"Each run trained data-parallel over {n} devices, the replicas syncing every {config.sync_every} "
            f"step(s) (sync_combine {config.resolved_sync_combine}).")


def _time_line(records: Sequence[dict]) -> str:
    summed = sum(r["wall_seconds"] for r in records)
    per_run = (f"the runs' own wall times (training and evaluation) add up to {summed / 60:.1f} min, "
               f"{summed / len(records):.1f} s per run on average")
    wall = sweep_wall_seconds(records)
    if wall is None:
        return f"Time: {per_run} (the records lack their start and end times, so the sweep's wall time is unknown)."
    overlap = " (runs trained together overlap)" if summed > wall * 1.001 else ""
    return (f"Total time: {wall / 60:.1f} min of wall time from the first run's start to the last run's end "
            f"(time between invocations, when no run was going, not counted); {per_run}{overlap}.")


def _outside_lines(records: Sequence[dict], sweep) -> list[str]:
    outside = outside_grid(records, sweep)
    if not outside:
        return []

    return [f"{len(outside)} of the {len(records)} recorded runs lie outside the grid of the last sweep command "
            f"(windows {', '.join(map(str, sweep.windows))} × dimensions {', '.join(map(str, sweep.dims))} × seeds "
            f"{', '.join(map(str, sweep.seeds))}): {quoted_list(outside, 20)}. An earlier command with another "
            f"grid recorded them; this report, its table and its plots include them.", ""]


def report_markdown(records: Sequence[dict], rows: Sequence[dict], table: str, figures: Sequence[str],
                    sweep, out: Path) -> str:
    first = records[0]
    config, corpus = first["config"], first["corpus"]
    windows = sorted({r["window"] for r in records})
    dims = sorted({r["dim"] for r in records})
    seeds = sorted({r["seed"] for r in records})
    versions = sorted({(r["code_version"].get("sg_jax"), r["code_version"].get("git")) for r in records},
                      key=str)
    devices = sorted({f"{r['device']['platform']} ({r['device']['kind']}), jax {r['device']['jax']}"
                      for r in records})
    objective = {"ns": f"negative sampling, {config['negative']} noise words ({_sharing(config)})",
                 "hs": "hierarchical softmax", "softmax": "exact softmax"}[config["objective"]]
    lines = [
        "# How window size and embedding dimension shape the embeddings",
        "",
        f"{len(records)} runs: windows {', '.join(map(str, windows))} × dimensions {', '.join(map(str, dims))} "
        f"× seeds {', '.join(map(str, seeds))}. Model: {'skip-gram' if config['arch'] == 'sg' else 'CBOW'}, "
        f"{objective}; {config['epochs']} epoch(s), learning rate {_learning_rate(config)}, "
        f"{'dynamic' if config['dynamic_window'] else 'fixed'} window, subsampling {config['sample']}.",
        "",
        f"Corpus `{corpus.get('source')}` (sha256 `{corpus['fingerprint'][:16]}…`): "
        f"{corpus.get('vocab_size', 0):,} words with min_count {config['min_count']}, "
        f"{corpus.get('tokens', 0):,} tokens in {corpus.get('sentences', 0):,} sentences.",
        "",
        f"Code: sg_jax {', '.join(f'{p} (git {g})' if g else str(p) for p, g in versions)}. "
        f"Device: {'; '.join(devices)}. {_devices_used(first)}",
        "",
        _time_line(records),
        "",
        *_outside_lines(records, sweep),
        "Reproduce:",
        "",
        "```",
        reproduce_command(records, out),
        "```",
        "",
        "## Results",
        "",
        f"Each benchmark score is shown as mean [95% percentile bootstrap interval over the benchmark items, "
        f"{stats.N_RESAMPLES:,} resamples, seed {stats.SEED}] ± sample standard deviation over seeds (no ± with "
        "one seed). The interval is the evaluation noise: another sample of word pairs or questions would give "
        "another score; the ± is the training noise. "
        "WordSim-353: Spearman correlation of cosine similarity with human scores over the pairs "
        f"whose words are in the vocabulary ({_oov_note(records)}). Analogy: top-1 accuracy in percent (3CosAdd) "
        f"on the Google analogies whose words are among the {first['evaluation']['restrict_vocab']:,} most "
        f"frequent ({_analogy_note(records)}), in total and over the semantic and syntactic section groups. "
        "Wall s: training and evaluation per run. Words/s: training words per second, the first jitted call "
        "left out (its time includes compilation).",
        "",
        table,
        f"Data: [{SUMMARY_CSV}]({SUMMARY_CSV}) (this table, with the final training loss), "
        f"[{RUNS_FILE}]({RUNS_FILE}) (one JSON object per run: full config, loss curve, every score and the "
        "per-item data the intervals are computed from), and one directory per run with its config and "
        "training log.",
        "",
        "## What differs beyond the evaluation noise",
        "",
        "Cells are compared paired: both are scored on the same items, and each bootstrap resample draws one "
        "set of items for both, so the interval of a difference holds only the noise that does not cancel. "
        "A difference counts when its 95% interval excludes zero. Each interval is 95% on its own: among many "
        "comparisons a few can exceed the noise by chance.",
        "",
        *_findings_lines(records, rows),
        "## Heatmaps",
        "",
    ]
    for metric in HEATMAPS:
        name = heatmap_file(metric)
        if name in figures:
            lines += [f"### {METRICS[metric].title}", "", f"![{METRICS[metric].title} over window × dimension]({name})", ""]
    lines += ["## Loss curves", "",
              "Training loss per example (mean over each jitted call of 64 steps) against epochs, one panel "
              "per window, one colour per dimension; further seeds are the thinner lines. The final loss is "
              "not used to rank the cells: with a window of w each target predicts up to 2w context words, "
              "the farther ones harder to predict, and the dynamic window changes how many, so losses over "
              "different windows measure different tasks. Within one window the curves show convergence, "
              "and dimensions can be compared.", "",
              f"![loss curves]({LOSS_CURVES})", "",
              "## Scores against window", "",
              "One line per dimension; error bars are the cells' 95% intervals over the benchmark items. "
              "Overlapping bars do not prove two cells equal (the paired comparisons above are sharper).", "",
              f"![scores by window]({METRIC_LINES})", ""]
    return "\n".join(lines) + "\n"


def _learning_rate(config: dict) -> str:
    return f"{config['lr']}" if config.get("lr") is not None else \
        f"{Config(arch=config['arch']).learning_rate} (the default)"


def _oov_note(records) -> str:
    n = sorted({(r["wordsim353"]["n_pairs"], r["wordsim353"]["n_oov"]) for r in records})
    return "; ".join(f"{p} pairs scored, {o} skipped as out of vocabulary" for p, o in n)


def _analogy_note(records) -> str:
    n = sorted({(r["analogy"]["total"], r["analogy"]["skipped"]) for r in records})
    return "; ".join(f"{t:,} questions answered, {s:,} skipped" for t, s in n)


def _findings_lines(records, rows) -> list[str]:
    found = findings(records, rows)
    if not found:
        return ["No per-item benchmark data in these records (they predate it), so no comparison is made.", ""]
    lines = []
    for metric, sentences in found.items():
        lines += [f"* {sentence}" for sentence in sentences]
    return lines + [""]


def _sharing(config: dict) -> str:
    """How a study's runs drew their noise words, in words (the resolved share_negatives)."""
    resolved = Config.from_dict(config, where="the study's config")
    sharing = resolved.sharing
    if sharing == "pool":
        group = resolved.pool_group or resolved.span_length   # recorded runs carry the resolved group
        return (f"pools of {resolved.noise_pool} shared by each group of {group} targets, each "
                f"weighted {resolved.negative}/{resolved.noise_pool}; {resolved.layout} layout")
    return {"none": "fresh per pair", "target": "shared per target", "batch": "shared per batch"}[sharing]

