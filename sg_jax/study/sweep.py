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

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from sg_jax.train import Config

from sg_jax.atomic import atomic_write_text
from sg_jax.errors import ConfigError
from sg_jax.study.provenance import _now, code_version, device_info
from sg_jax.study.records import (RUNS_FILE, SCHEMA_VERSION, _check_same_study, _clean, _dumps, _first_of_each,
                                  append_run, read_runs, run_id, study_settings)
from sg_jax.study.report import write_outputs


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
    normalize: str | None = "NFC"  # Unicode normalisation of the corpus text (see corpus.tokenize)
    restrict_vocab: int = 30_000
    method: str = "add"
    save_vectors: bool = False

    def grid(self) -> list[tuple[int, int, int]]:
        return [(w, d, s) for w in self.windows for d in self.dims for s in self.seeds]

    def config(self, window: int, dim: int, seed: int):
        return dataclasses.replace(self.base, window=window, dim=dim, seed=seed).validate()


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
                                                          "encoding_errors": sweep.encoding_errors,
                                                          "normalize": sweep.normalize})
    _check_same_study(out, records, study_settings(probe))

    done = {r["run_id"] for r in records}
    todo = [point for point in sweep.grid() if run_id(*point) not in done]
    new: list[dict] = []
    if todo:
        base = sweep.base
        vocab, encoded, stats = load_corpus(sweep.corpus, min_count=base.min_count, max_size=base.max_vocab,
                                            lowercase=sweep.lowercase, errors=sweep.encoding_errors,
                                            normalize=sweep.normalize)
        corpus = {"source": str(sweep.corpus), "fingerprint": fingerprint, "lowercase": sweep.lowercase,
                  "encoding_errors": sweep.encoding_errors, "normalize": sweep.normalize, "vocab_size": len(vocab),
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


def _record_head(sweep: Sweep, window: int, dim: int, seed: int, corpus: dict) -> dict:
    return {"schema": SCHEMA_VERSION, "run_id": run_id(window, dim, seed), "window": window, "dim": dim,
            "seed": seed, "config": dataclasses.asdict(sweep.config(window, dim, seed)), "corpus": corpus,
            "evaluation": {"restrict_vocab": sweep.restrict_vocab, "method": sweep.method}}


def train_and_evaluate(sweep: Sweep, point, vocab, encoded, corpus: dict, provenance: dict, out: Path, *,
                       progress: bool = True) -> dict:
    """One run: train, score, write its directory; returns its record (not yet appended)."""
    import numpy as np

    from sg_jax import formats
    from sg_jax.evaluation import evaluate_analogies, evaluate_similarity
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
        formats.save_word2vec_text(run_dir / "vectors.txt", vocab.words, vectors)

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
