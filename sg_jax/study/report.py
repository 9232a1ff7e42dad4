"""The study's outputs derived from its records: summary files, plots and report.md."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from sg_jax.study.sweep import Sweep

from sg_jax.atomic import atomic_write_text
from sg_jax.study.records import RUNS_FILE
from sg_jax.study.summary import METRICS, markdown_table, summarize, summary_csv


SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
REPORT = "report.md"
LOSS_CURVES = "loss_curves.png"
METRIC_LINES = "metrics_by_window.png"


def heatmap_file(metric: str) -> str:
    return f"heatmap_{metric}.png"


def write_plots(out: Path, records: Sequence[dict], rows: Sequence[dict]) -> list[str]:
    """The heatmaps, the loss curves and the by-window lines; returns the file names written."""
    import numpy as np

    from sg_jax import plots

    windows = sorted({r["window"] for r in rows})
    dims = sorted({r["dim"] for r in rows})
    at = {(r["window"], r["dim"]): r for r in rows}
    written = []
    series = {}
    for metric, (title, higher) in METRICS.items():
        mean = np.full((len(windows), len(dims)), np.nan)
        std = np.full_like(mean, np.nan)
        for i, w in enumerate(windows):
            for j, d in enumerate(dims):
                if (w, d) in at:
                    mean[i, j], std[i, j] = at[w, d][f"{metric}_mean"], at[w, d][f"{metric}_std"]
        plots.heatmap(out / heatmap_file(metric), mean, windows, dims, std=std, higher_is_better=higher,
                      title=f"{title} ({'higher' if higher else 'lower'} is better)")
        written.append(heatmap_file(metric))
        series[title] = {d: (mean[:, j], std[:, j]) for j, d in enumerate(dims)}
    curves = [{"window": r["window"], "dim": r["dim"], "seed": r["seed"], "epoch": r["loss_curve"]["epoch"],
               "loss": r["loss_curve"]["loss"]} for r in records]
    plots.loss_curves(out / LOSS_CURVES, curves, panel_key="dim", colour_key="window", x="epoch",
                      title="training loss per example (one line per run)")
    written.append(LOSS_CURVES)
    plots.metric_lines(out / METRIC_LINES, series, windows, x_label="window", line_label="dim")
    written.append(METRIC_LINES)
    return written


def write_outputs(out: Path, records: Sequence[dict], sweep: Sweep | None = None) -> list[str]:
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


def _best(rows: Sequence[dict], metric: str) -> str:
    title, higher = METRICS[metric]
    scored = [r for r in rows if math.isfinite(r[f"{metric}_mean"])]
    if not scored:
        return f"* {title}: no finite values"
    best = (max if higher else min)(scored, key=lambda r: r[f"{metric}_mean"])
    worst = (min if higher else max)(scored, key=lambda r: r[f"{metric}_mean"])
    return (f"* {title}: best at window {best['window']}, dim {best['dim']} ({best[f'{metric}_mean']:.4g}); "
            f"worst at window {worst['window']}, dim {worst['dim']} ({worst[f'{metric}_mean']:.4g})")


def reproduce_command(records: Sequence[dict], out: Path) -> str:
    """The `sg-jax sweep` command line that produces this directory's grid."""
    from sg_jax.train import Config

    first = records[0]
    config, corpus, evaluation = first["config"], first["corpus"], first["evaluation"]
    defaults = dataclasses.asdict(Config())
    csv_of = lambda key: ",".join(str(v) for v in sorted({r[key] for r in records}))  # noqa: E731
    parts = ["sg-jax sweep", f"--corpus {corpus.get('source', 'default')}", f"--windows {csv_of('window')}",
             f"--dims {csv_of('dim')}", f"--seeds {csv_of('seed')}", f"--epochs {config['epochs']}",
             f"--objective {config['objective']}", f"--share-negatives {config['share_negatives']}",
             f"--min-count {config['min_count']}"]
    flags = {"arch": "--arch", "negative": "--negative", "init": "--init", "max_vocab": "--max-vocab",
             "sample": "--sample", "lr": "--lr", "batch_size": "--batch-size", "clip_norm": "--clip-norm"}
    for key, flag in flags.items():
        if config.get(key) != defaults.get(key):
            parts.append(f"{flag} {config[key]}")
    if not config.get("dynamic_window", True):
        parts.append("--fixed-window")
    if config.get("pairs"):
        parts.append("--pairs")
    if not config.get("shuffle", True):
        parts.append("--no-shuffle")
    if not corpus.get("lowercase", True):
        parts.append("--no-lowercase")
    if corpus.get("encoding_errors", "strict") != "strict":
        parts.append(f"--encoding-errors {corpus['encoding_errors']}")
    if corpus.get("normalize", "NFC") != "NFC":
        parts.append(f"--unicode-normalization {corpus['normalize'] or 'none'}")
    if evaluation.get("restrict_vocab") != 30_000:
        parts.append(f"--restrict-vocab {evaluation['restrict_vocab']}")
    parts.append(f"--out {out}")
    return " ".join(parts)


def report_markdown(records: Sequence[dict], rows: Sequence[dict], table: str, figures: Sequence[str],
                    sweep: Sweep | None, out: Path) -> str:
    first = records[0]
    config, corpus = first["config"], first["corpus"]
    windows = sorted({r["window"] for r in records})
    dims = sorted({r["dim"] for r in records})
    seeds = sorted({r["seed"] for r in records})
    versions = sorted({(r["code_version"].get("sg_jax"), r["code_version"].get("git")) for r in records},
                      key=str)
    devices = sorted({f"{r['device']['platform']} ({r['device']['kind']}), jax {r['device']['jax']}"
                      for r in records})
    total = sum(r["wall_seconds"] for r in records)
    objective = {"ns": f"negative sampling, {config['negative']} noise words "
                       f"(shared {'per ' + config['share_negatives'] if config['share_negatives'] != 'none' else 'by nothing: fresh per pair'})",
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
        f"Device: {'; '.join(devices)}. Total time of the runs: {total / 60:.1f} min "
        f"(training and evaluation, {total / len(records):.1f} s per run on average).",
        "",
        "Reproduce:",
        "",
        "```",
        reproduce_command(records, out),
        "```",
        "",
        "## Results",
        "",
        "Mean ± sample standard deviation (n − 1) over seeds (no ± with one seed). "
        "WordSim-353: Spearman correlation of cosine similarity with human scores over the pairs "
        f"whose words are in the vocabulary ({_oov_note(records)}). Analogy: top-1 accuracy (3CosAdd) "
        f"on the Google analogies whose words are among the {first['evaluation']['restrict_vocab']:,} most "
        f"frequent ({_analogy_note(records)}). Words/s: training throughput after the first jitted call "
        "(which includes compilation).",
        "",
        table,
        f"Data: [{SUMMARY_CSV}]({SUMMARY_CSV}) (this table), [{RUNS_FILE}]({RUNS_FILE}) (one JSON object per "
        "run: full config, loss curve, every score), and one directory per run with its config and "
        "training log.",
        "",
        "Extremes over the grid:",
        "",
        *(_best(rows, m) for m in METRICS),
        "",
        "## Heatmaps",
        "",
    ]
    for metric, (title, higher) in METRICS.items():
        name = heatmap_file(metric)
        if name in figures:
            lines += [f"### {title}", "", f"![{title} over window × dimension]({name})", ""]
    lines += ["## Loss curves", "",
              "Training loss per example (mean over each jitted call of 64 steps) against epochs, one panel "
              "per dimension, one colour per window; further seeds are the thinner lines.", "",
              f"![loss curves]({LOSS_CURVES})", "",
              "## Metrics against window", "",
              f"![metrics by window]({METRIC_LINES})", ""]
    return "\n".join(lines) + "\n"


def _learning_rate(config: dict) -> str:
    from sg_jax.train import Config

    return f"{config['lr']}" if config.get("lr") is not None else \
        f"{Config(arch=config['arch']).learning_rate} (the default)"


def _oov_note(records) -> str:
    n = sorted({(r["wordsim353"]["n_pairs"], r["wordsim353"]["n_oov"]) for r in records})
    return "; ".join(f"{p} pairs scored, {o} skipped as out of vocabulary" for p, o in n)


def _analogy_note(records) -> str:
    n = sorted({(r["analogy"]["total"], r["analogy"]["skipped"]) for r in records})
    return "; ".join(f"{t:,} questions answered, {s:,} skipped" for t, s in n)
