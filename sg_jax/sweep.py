"""The window x dimension study: a grid of training runs, logged, summarised, plotted, reported.

    sg-jax sweep --corpus default --windows 1,2,3,5,8 --dims 25,50,100,200 --seeds 0 --out runs/sweep

trains one model per (window, dimension, seed), scores it on WordSim-353 and the Google analogies,
and leaves in the output directory

    runs.jsonl      one JSON object per finished run (schema below), appended as each run ends
    summary.csv     mean and sample standard deviation over seeds per (window, dimension)
    summary.md      the same as a Markdown table
    heatmap_<metric>.png   each metric over window x dimension
    loss_curves.png        training loss against epoch, one line per run
    metrics_by_window.png  each metric against window, one line per dimension, ± std
    report.md       the settings, the table and links to everything above
    w{W}_d{D}_s{S}/ per run: config.json and metrics.jsonl (and vectors.txt with --save-vectors)

A sweep resumes: a run is recorded only once it is complete, so rerunning the same command
skips the finished runs (a line half-written by a crash is detected and dropped). A directory
holds one study: every run in it shares the corpus, the training settings other than window,
dimension and seed, and the evaluation settings; running a different study into it is refused.
Extending the grid (more windows, dimensions or seeds) adds runs, and the summary covers every
run recorded in the directory.

Record schema (`SCHEMA_VERSION`): run_id, window, dim, seed (int); config (every `Config` field);
corpus {source, fingerprint, lowercase, encoding_errors, vocab_size, tokens, sentences};
evaluation {restrict_vocab, method}; code_version {sg_jax, git}; device {platform, kind, count,
jax}; loss_curve {step, epoch, words, loss} (lists, one entry per jitted call); final_loss;
wordsim353 {spearman, pearson, n_pairs, n_oov}; analogy {accuracy, correct, total, skipped,
semantic, syntactic, sections}; wall_seconds, train_seconds, eval_seconds, words, words_per_second
(training words per second after the first jitted call, which includes compilation);
started_at, finished_at (UTC, ISO 8601). Undefined numbers (a correlation over no pairs) are null.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import io
import json
import math
import os
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

from sg_jax.atomic import atomic_write_bytes, atomic_write_text
from sg_jax.errors import ConfigError, FormatError

SCHEMA_VERSION = 1
RUNS_FILE = "runs.jsonl"
SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
REPORT = "report.md"
LOSS_CURVES = "loss_curves.png"
METRIC_LINES = "metrics_by_window.png"
GRID_FIELDS = ("window", "dim", "seed")

# metric key -> (title, higher is better)
METRICS = {
    "wordsim_spearman": ("WordSim-353 Spearman", True),
    "analogy_accuracy": ("Google analogy accuracy", True),
    "final_loss": ("final training loss", False),
    "wall_seconds": ("wall time per run (s)", False),
    "words_per_second": ("training words/s", True),
}


@dataclasses.dataclass(frozen=True)
class Preset:
    windows: tuple[int, ...]
    dims: tuple[int, ...]
    seeds: tuple[int, ...]
    epochs: int
    min_count: int = 5
    share_negatives: str = "target"


PRESETS = {
    # about 4 minutes on 2 CPU cores with the bundled Brown corpus
    "default": Preset(windows=(1, 2, 3, 5, 8), dims=(25, 50, 100, 200), seeds=(0,), epochs=3),
    # the full-size study: 6 x 5 x 3 = 90 runs of 5 epochs
    "paper": Preset(windows=(1, 2, 3, 5, 8, 10), dims=(25, 50, 100, 200, 300), seeds=(0, 1, 2), epochs=5),
}


@dataclasses.dataclass(frozen=True)
class Sweep:
    """What to run: a base config (its window, dim and seed are replaced per run) and the grid."""

    base: "Config"  # noqa: F821 (sg_jax.train.Config, imported lazily)
    windows: tuple[int, ...]
    dims: tuple[int, ...]
    seeds: tuple[int, ...]
    corpus: str = "default"
    lowercase: bool = True
    encoding_errors: str = "strict"
    restrict_vocab: int = 30_000
    method: str = "add"
    save_vectors: bool = False

    def grid(self) -> list[tuple[int, int, int]]:
        return [(w, d, s) for w in self.windows for d in self.dims for s in self.seeds]

    def config(self, window: int, dim: int, seed: int):
        return dataclasses.replace(self.base, window=window, dim=dim, seed=seed).validate()


def run_id(window: int, dim: int, seed: int) -> str:
    return f"w{window}_d{dim}_s{seed}"


# --------------------------------------------------------------------------- the results file


def read_runs(path: str | os.PathLike, *, repair: bool = True, log: Callable[[str], None] = print) -> list[dict]:
    """The records of a runs.jsonl file ([] when it does not exist).

    A last line that is not a complete JSON object (a crash while it was written) is dropped,
    and with `repair` the file is rewritten atomically without it. A bad line anywhere else
    means the file was edited or damaged otherwise: FormatError naming the line.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    records, kept, dropped = [], [], None
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict) or "run_id" not in record:
                raise ValueError("not a run record")
        except (ValueError, UnicodeDecodeError):
            if number == len(lines):
                dropped = raw
                break
            raise FormatError(f"{path} line {number}: not a run record; the results file is damaged "
                              f"(remove the line to rerun that run)") from None
        records.append(record)
        kept.append(raw)
    if dropped is not None or (data and not data.endswith(b"\n")):
        if dropped is not None:
            log(f"{path}: dropped a half-written last line ({len(dropped)} bytes) left by an interrupted run")
        if repair:  # the complete lines byte for byte, each ended by a newline
            atomic_write_bytes(path, b"".join(raw + b"\n" for raw in kept))
    return records


def append_run(path: str | os.PathLike, record: dict) -> None:
    """Append one record as one line: a single write on an O_APPEND descriptor, then fsync."""
    line = (_dumps(record) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _clean(value):
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers, tuples lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _dumps(record: dict) -> str:
    return json.dumps(_clean(record), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def study_settings(record: dict) -> dict:
    """What every run of one study shares: everything but the grid, the code and the results."""
    config = {k: v for k, v in record["config"].items() if k not in GRID_FIELDS}
    corpus = {k: record["corpus"].get(k) for k in ("fingerprint", "lowercase", "encoding_errors")}
    return {"config": config, "corpus": corpus, "evaluation": record["evaluation"]}


def _check_same_study(out: Path, records: list[dict], settings: dict) -> None:
    for record in records:
        theirs = study_settings(record)
        if theirs == settings:
            continue
        diffs = []
        for section in settings:
            for key in sorted(set(settings[section]) | set(theirs[section])):
                if settings[section].get(key) != theirs[section].get(key):
                    diffs.append(f"{key}={theirs[section].get(key)!r} (now {settings[section].get(key)!r})")
        raise ConfigError(f"{out} holds runs of a different study ({', '.join(diffs)}); "
                          f"choose another --out or remove {out / RUNS_FILE}")


# --------------------------------------------------------------------------- provenance


def code_version() -> dict:
    """{"sg_jax": package version, "git": `git describe --always --dirty` or None}."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        package = version("sg_jax")
    except PackageNotFoundError:
        package = None
    root = Path(__file__).resolve().parent.parent
    git = None
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
                             timeout=10)
        if top.returncode == 0 and Path(top.stdout.strip()).resolve() == root:
            described = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=root, capture_output=True,
                                       text=True, timeout=10)
            if described.returncode == 0:
                git = described.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"sg_jax": package, "git": git}


def device_info() -> dict:
    import jax

    devices = jax.devices()
    return {"platform": devices[0].platform, "kind": getattr(devices[0], "device_kind", devices[0].platform),
            "count": len(devices), "jax": jax.__version__}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- running


@dataclasses.dataclass
class SweepResult:
    records: list[dict]  # every run recorded in the directory, in file order
    new: list[dict]      # the runs this invocation trained
    skipped: int         # grid points already done


def run_sweep(sweep: Sweep, out_dir: str | os.PathLike, *, progress: bool = True,
              log: Callable[[str], None] = print) -> SweepResult:
    """Train and evaluate every grid point not yet recorded in out_dir/runs.jsonl, then write the
    summary, the plots and the report. Returns all records and the new ones."""
    from sg_jax.corpus import corpus_fingerprint, load_corpus

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    runs_path = out / RUNS_FILE
    records = _first_of_each(read_runs(runs_path, log=log), log)

    fingerprint = corpus_fingerprint(sweep.corpus)
    probe = _record_head(sweep, *sweep.grid()[0], corpus={"fingerprint": fingerprint, "lowercase": sweep.lowercase,
                                                          "encoding_errors": sweep.encoding_errors})
    _check_same_study(out, records, study_settings(probe))

    done = {r["run_id"] for r in records}
    todo = [point for point in sweep.grid() if run_id(*point) not in done]
    new: list[dict] = []
    if todo:
        base = sweep.base
        vocab, encoded, stats = load_corpus(sweep.corpus, min_count=base.min_count, max_size=base.max_vocab,
                                            lowercase=sweep.lowercase, errors=sweep.encoding_errors)
        corpus = {"source": str(sweep.corpus), "fingerprint": fingerprint, "lowercase": sweep.lowercase,
                  "encoding_errors": sweep.encoding_errors, "vocab_size": len(vocab),
                  "tokens": int(encoded.n_tokens), "sentences": int(encoded.n_sentences)}
        log(f"corpus {sweep.corpus}: {len(vocab):,} words (min_count={base.min_count}), "
            f"{encoded.n_tokens:,} tokens; {len(todo)} run(s) to do, {len(sweep.grid()) - len(todo)} already done")
        provenance = {"code_version": code_version(), "device": device_info()}
        bar = _bar(progress, total=len(todo), desc="sweep", unit="run", position=0, leave=True)
        write = (lambda s: bar.write(s)) if bar is not None else log
        try:
            for point in todo:
                record = train_and_evaluate(sweep, point, vocab, encoded, corpus, provenance, out, progress=progress)
                append_run(runs_path, record)
                records.append(record)
                new.append(record)
                write(describe_run(record))
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
    else:
        log(f"all {len(sweep.grid())} run(s) of the grid are already in {runs_path}")
    write_outputs(out, records, sweep)
    return SweepResult(records, new, len(sweep.grid()) - len(todo))


def _first_of_each(records: list[dict], log: Callable[[str], None]) -> list[dict]:
    """Records with distinct run ids (two sweeps run at once into one directory can both finish
    a run; the first record counts)."""
    seen, unique = set(), []
    for r in records:
        if r["run_id"] in seen:
            log(f"ignoring a second record of run {r['run_id']}")
            continue
        seen.add(r["run_id"])
        unique.append(r)
    return unique


def _record_head(sweep: Sweep, window: int, dim: int, seed: int, corpus: dict) -> dict:
    return {"schema": SCHEMA_VERSION, "run_id": run_id(window, dim, seed), "window": window, "dim": dim,
            "seed": seed, "config": dataclasses.asdict(sweep.config(window, dim, seed)), "corpus": corpus,
            "evaluation": {"restrict_vocab": sweep.restrict_vocab, "method": sweep.method}}


def train_and_evaluate(sweep: Sweep, point, vocab, encoded, corpus: dict, provenance: dict, out: Path, *,
                       progress: bool = True) -> dict:
    """One run: train, score, write its directory; returns its record (not yet appended)."""
    import numpy as np

    from sg_jax import io as sg_io
    from sg_jax.benchmarks import evaluate_analogies, evaluate_similarity
    from sg_jax.embeddings import Embeddings
    from sg_jax.errors import DivergenceError
    from sg_jax.train import train

    window, dim, seed = point
    config = sweep.config(window, dim, seed)
    record = _record_head(sweep, window, dim, seed, corpus)
    record.update(provenance)
    started, t0 = _now(), time.perf_counter()
    total_words = int(encoded.n_tokens) * config.epochs
    bar = _bar(progress, total=total_words, desc=record["run_id"], unit="word", unit_scale=True, leave=False,
               position=1)
    seen = {"words": 0}

    def on_call(state, position, rec):
        if bar is not None:
            bar.update(rec["words"] - seen["words"])
            bar.set_postfix(loss=f"{rec['loss']:.4f}", refresh=False)
        seen["words"] = rec["words"]

    try:
        result = train(config, vocab.words, vocab.counts, encoded.ids, encoded.offsets, progress=False,
                       on_call=on_call)
    finally:
        if bar is not None:
            bar.close()
    vectors = result.vectors()
    if not np.all(np.isfinite(vectors)):
        raise DivergenceError(f"run {record['run_id']} diverged: the embeddings hold NaN or Inf; "
                              f"lower the learning rate (--lr) or set --clip-norm")
    t1 = time.perf_counter()
    emb = Embeddings(vocab.words, vectors)
    sim = evaluate_similarity(emb)
    ana = evaluate_analogies(emb, restrict_vocab=sweep.restrict_vocab, method=sweep.method)
    t2 = time.perf_counter()

    history = result.history
    run_dir = out / record["run_id"]
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.json", json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    atomic_write_text(run_dir / "metrics.jsonl", "".join(_dumps(r) + "\n" for r in history))
    if sweep.save_vectors:
        sg_io.save_word2vec_text(run_dir / "vectors.txt", vocab.words, vectors)

    analogy = ana.to_dict()
    analogy["semantic"] = list(ana.group(False))
    analogy["syntactic"] = list(ana.group(True))
    analogy.pop("method", None)
    record.update({
        "loss_curve": {key: [round(float(r[key]), 6) if key != "step" else int(r[key]) for r in history]
                       for key in ("step", "epoch", "words", "loss")},
        "final_loss": float(result.final_loss),
        "wordsim353": sim.to_dict(),
        "analogy": analogy,
        "wall_seconds": round(t2 - t0, 3),
        "train_seconds": round(result.seconds, 3),
        "eval_seconds": round(t2 - t1, 3),
        "words": int(result.words_done),
        "words_per_second": round(steady_words_per_second(history, result), 1),
        "started_at": started,
        "finished_at": _now(),
    })
    return _clean(record)


def steady_words_per_second(history: list[dict], result) -> float:
    """Training throughput after the first jitted call (whose time includes compilation)."""
    if len(history) >= 2:
        words = history[-1]["words"] - history[0]["words"]
        seconds = history[-1]["seconds"] - history[0]["seconds"]
        if seconds > 0:
            return words / seconds
    return result.words_per_second


def describe_run(record: dict) -> str:
    sim, ana = record["wordsim353"], record["analogy"]
    spearman = "n/a" if sim["spearman"] is None else f"{sim['spearman']:.3f}"
    accuracy = "n/a" if ana["accuracy"] is None else f"{100 * ana['accuracy']:.2f}%"
    return (f"{record['run_id']:>14}: loss {record['final_loss']:.4f}  WordSim-353 {spearman} "
            f"({sim['n_pairs']} pairs)  analogies {accuracy} of {ana['total']}  "
            f"{record['wall_seconds']:.1f} s  {record['words_per_second']:,.0f} words/s")


def _bar(enabled: bool, **kwargs):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(dynamic_ncols=True, **kwargs)


# --------------------------------------------------------------------------- summary


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


# --------------------------------------------------------------------------- command line


def _int_list(minimum: int):
    def parse(text: str) -> tuple[int, ...]:
        try:
            values = [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError("expected at least one number")
        low = [v for v in values if v < minimum]
        if low:
            raise argparse.ArgumentTypeError(f"every value must be >= {minimum}, got {low[0]}")
        return tuple(dict.fromkeys(values))  # in the given order, without repeats

    return parse


def _positive_int(text: str) -> int:
    return _int_list(1)(text)[0] if "," not in text else _reject(text)


def _reject(text: str):
    raise argparse.ArgumentTypeError(f"expected one whole number, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `sg-jax sweep` (and of experiments/sweep.py)."""
    from sg_jax.cli import add_training_arguments

    d, p = PRESETS["default"], PRESETS["paper"]
    parser.description = (
        "Train one model per (window, dimension, seed), score each on WordSim-353 and the Google analogies, "
        "and write DIR/runs.jsonl, DIR/summary.csv, DIR/summary.md, heatmaps and loss curves (PNG) and "
        "DIR/report.md. Rerunning the same command skips the runs already recorded.")
    g = parser.add_argument_group("sweep")
    g.add_argument("--out", default="runs/sweep", help="output directory (default runs/sweep)")
    g.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help=f"default: windows {_csv(d.windows)}, dims {_csv(d.dims)}, seeds {_csv(d.seeds)}, "
                        f"{d.epochs} epochs (a few minutes on 2 CPU cores); paper: windows {_csv(p.windows)}, "
                        f"dims {_csv(p.dims)}, seeds {_csv(p.seeds)}, {p.epochs} epochs. Both: negative sampling "
                        f"with noise words shared per target, min_count {d.min_count}. Options given explicitly "
                        "override the preset")
    g.add_argument("--windows", type=_int_list(1), default=None, help="comma-separated window sizes")
    g.add_argument("--dims", type=_int_list(1), default=None, help="comma-separated embedding dimensions")
    g.add_argument("--seeds", type=_int_list(0), default=None,
                   help="comma-separated seeds; several give mean ± std per cell")
    g.add_argument("--restrict-vocab", type=_positive_int, default=30_000,
                   help="analogies search the N most frequent words (default 30000)")
    g.add_argument("--save-vectors", action="store_true", help="also write DIR/w*_d*_s*/vectors.txt")
    g.add_argument("--quiet", action="store_true", help="no progress bars or per-run lines")
    add_training_arguments(parser, epochs=d.epochs)
    # Unset means "take it from the preset": the preset fills these in main().
    parser.set_defaults(epochs=None, min_count=None, share_negatives=None, seed=None)


def _csv(values) -> str:
    return ",".join(map(str, values))


def sweep_from_args(args) -> Sweep:
    from sg_jax.cli import config_from_args

    preset = PRESETS[args.preset]
    if args.seed is not None and args.seeds is not None:
        raise ConfigError("give either --seed or --seeds, not both")
    seeds = args.seeds or ((args.seed,) if args.seed is not None else preset.seeds)
    for name in ("epochs", "min_count", "share_negatives"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(preset, name))
    windows = args.windows or preset.windows
    dims = args.dims or preset.dims
    base = config_from_args(args, window=windows[0], dim=dims[0], seed=seeds[0])
    return Sweep(base=base, windows=tuple(windows), dims=tuple(dims), seeds=tuple(seeds), corpus=args.corpus,
                 lowercase=not args.no_lowercase, encoding_errors=args.encoding_errors,
                 restrict_vocab=args.restrict_vocab, save_vectors=args.save_vectors)


def main(args) -> int:
    sweep = sweep_from_args(args)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    n = len(sweep.grid())
    log(f"sweep: {len(sweep.windows)} window(s) x {len(sweep.dims)} dim(s) x {len(sweep.seeds)} seed(s) = {n} runs "
        f"of {sweep.base.arch}/{sweep.base.objective}, {sweep.base.epochs} epoch(s), into {args.out}")
    t0 = time.perf_counter()
    result = run_sweep(sweep, args.out, progress=not args.quiet, log=log)
    out = Path(args.out)
    print(f"{len(result.new)} run(s) trained, {result.skipped} already done, in {time.perf_counter() - t0:.1f} s; "
          f"{len(result.records)} recorded in {out / RUNS_FILE}")
    if not args.quiet:
        print()
        print(markdown_table(summarize(result.records)))
    print(f"wrote {out / SUMMARY_CSV}, {out / SUMMARY_MD}, the heatmaps and loss curves, and {out / REPORT}")
    return 0
