"""The window x dimension study: a grid of training runs, logged, summarised, plotted, reported.

    sg-jax sweep --corpus default --windows 1,2,3,5,8 --dims 25,50,100,200 --seeds 0 --out runs/sweep

trains one model per (window, dimension, seed), scores it on WordSim-353 and the Google analogies,
and leaves in the output directory the files below. The runs are trained in groups (`--together
K`, by default one run per device), each group one compiled program spread over the devices
(`sg_jax.study.together`); `--together 1` trains one run at a time. Either way every run is the
one-device run of its settings, so the scheduling never changes a run's vectors; only
`--data-parallel` trains each run over all the devices (one run at a time), which gives it the
vectors of a run on that many devices.

    runs.jsonl      one JSON object per finished run (schema below), appended as each run ends
    summary.csv     per (window, dimension): each score with its bootstrap interval over the
                    benchmark items, and mean and sample standard deviation over seeds
    summary.md      the same as a Markdown table
    heatmap_<metric>.png   each score (and wall time, words/s) over window x dimension
    loss_curves.png        training loss against epoch, one panel per window
    metrics_by_window.png  each score against window, one line per dimension, interval bars
    report.md       the settings, the table, which differences exceed the evaluation noise,
                    and links to everything above
    w{W}_d{D}_s{S}/ per run: config.json and metrics.jsonl (and vectors.txt with --save-vectors)
    sweep.lock      locked while a sweep runs: a second sweep into the directory is refused

A sweep resumes: a run is recorded only once it is complete, so rerunning the same command
skips the finished runs (a line half-written by a crash is detected and dropped). A directory
holds one study: every run in it shares the corpus, the training settings other than window,
dimension and seed, and the evaluation settings; running a different study into it is refused.
Extending the grid (more windows, dimensions or seeds) adds runs, and the summary covers every
run recorded in the directory; report.md names the recorded runs outside the grid last asked for.

Record schema (`SCHEMA_VERSION`): run_id, window, dim, seed (int); config (every `Config` field);
corpus {source, fingerprint, lowercase, encoding_errors, vocab_size, tokens, sentences};
evaluation {restrict_vocab, method}; code_version {sg_jax, git}; device {platform, kind, count,
jax, used (the study's devices), together (runs trained together at most)}; trained_with (the
run ids of its group, when runs were trained together); loss_curve {step, epoch, words, loss} (lists, one entry per jitted call); final_loss;
wordsim353 {spearman, pearson, n_pairs, n_oov, items {scored, cosine, human}}; analogy {accuracy,
correct, total, skipped, semantic, syntactic, sections, items {answered, hits}}; wall_seconds, train_seconds, eval_seconds, words, words_per_second
(training words per second after the first jitted call, which includes compilation);
started_at, finished_at (UTC, ISO 8601). A run trained together counts its wall time from its
group's start. Undefined numbers (a correlation over no pairs) are null.
The items are what the report's bootstrap intervals resample (`SimilarityResult.items_dict`,
`AnalogyResult.items_dict`): which pairs and questions were scored (packed bits), each scored
pair's cosine (4 decimals) and human score, and which answered questions were right.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Callable

import sg_jax.formats as formats
from sg_jax.api import load_model
from sg_jax.config import Config
from sg_jax.data.corpus import corpus_fingerprint
from sg_jax.embeddings import Embeddings
from sg_jax.evaluation import DEFAULT_RESTRICT_VOCAB, evaluate_analogies, evaluate_similarity
from sg_jax.errors import ConfigError
from sg_jax.mesh import resolve_devices
from sg_jax.resolved import resolve
from sg_jax.run_files import CHECKPOINT, write_manifest
from sg_jax.runs import CheckpointPolicy, read_corpus, run_training
from sg_jax.study.lock import sweep_lock
from sg_jax.study.progress import StudyProgress
from sg_jax.study.provenance import _now, code_version, device_info
from sg_jax.study.records import (RUNS_FILE, SCHEMA_VERSION, _check_same_study, _clean, _first_of_each,
                                  append_run, read_runs, run_id, study_settings)
from sg_jax.study.report import write_outputs
from sg_jax.study.together import plan_groups, run_together


@dataclasses.dataclass(frozen=True)
class Preset:
    windows: tuple[int, ...]
    dims: tuple[int, ...]
    seeds: tuple[int, ...]
    epochs: int
    min_count: int = 5
    share_negatives: str = "auto"   # the command's default: pools with the span layout (skip-gram, ns)


PRESETS = {
    # about 4 minutes on 2 CPU cores with the bundled Brown corpus
    "default": Preset(windows=(1, 2, 3, 5, 8), dims=(25, 50, 100, 200), seeds=(0,), epochs=3),
    # the full-size study: 6 x 5 x 3 = 90 runs of 5 epochs
    "paper": Preset(windows=(1, 2, 3, 5, 8, 10), dims=(25, 50, 100, 200, 300), seeds=(0, 1, 2), epochs=5),
}


@dataclasses.dataclass(frozen=True)
class Sweep:
    """What to run: a base config (its window, dim and seed are replaced per run) and the grid."""

    base: Config
    windows: tuple[int, ...]
    dims: tuple[int, ...]
    seeds: tuple[int, ...]
    corpus: str = "default"
    restrict_vocab: int = DEFAULT_RESTRICT_VOCAB
    method: str = "add"
    save_vectors: bool = False
    together: int | None = None  # runs trained together (None: one per device; 1: one run at a time)
    data_parallel: bool = False  # each run over all the devices (else every run is a one-device run)

    def grid(self) -> list[tuple[int, int, int]]:
        return [(w, d, s) for w in self.windows for d in self.dims for s in self.seeds]

    @property
    def lowercase(self) -> bool:
        return self.base.lowercase

    @property
    def encoding_errors(self) -> str:
        return self.base.encoding_errors

    @property
    def normalize(self) -> str | None:
        return self.base.normalize

    def config(self, window: int, dim: int, seed: int):
        return dataclasses.replace(self.base, window=window, dim=dim, seed=seed).validate()


@dataclasses.dataclass
class SweepResult:
    records: list[dict]  # every run recorded in the directory, in file order
    new: list[dict]      # the runs this invocation trained
    skipped: int         # grid points already done


def run_sweep(sweep: Sweep, out_dir: str | os.PathLike, *, progress: bool = True,
              log: Callable[[str], None] | None = None) -> SweepResult:
    """Train and evaluate every grid point not yet recorded in out_dir/runs.jsonl, then write the
    summary, the plots and the report. Returns all records and the new ones. log: given each
    progress line (None: silent); progress: a progress bar on a terminal, else a line per run
    (given to log, or printed when log is None: `StudyProgress`)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a directory")
    # The study's devices schedule its runs; a run's own device count (part of its result) is 1
    # unless data-parallel runs were asked for.
    devices = resolve_devices(sweep.base.devices)
    together = resolve_together(sweep.together, devices, sweep.data_parallel)
    sweep = dataclasses.replace(sweep, together=together, base=resolve(sweep.base, run_devices(sweep, devices)).config)
    out.mkdir(parents=True, exist_ok=True)
    with sweep_lock(out):  # a second sweep into this directory is refused while this one runs
        return _run_sweep_locked(sweep, out, devices, together, progress, log)


def _run_sweep_locked(sweep: Sweep, out: Path, devices: int, together: int, progress: bool,
                      log: Callable[[str], None] | None) -> SweepResult:
    study_log, log = log, log or (lambda line: None)
    runs_path = out / RUNS_FILE
    records = _first_of_each(read_runs(runs_path, log=log), log)

    fingerprint = corpus_fingerprint(sweep.corpus)
    probe = _record_head(sweep, *sweep.grid()[0], corpus={"fingerprint": fingerprint, "lowercase": sweep.lowercase,
                                                          "encoding_errors": sweep.encoding_errors,
                                                          "normalize": sweep.normalize})
    parallel = [r for r in records if (r["config"].get("devices") or 1) > 1]
    if parallel and not sweep.data_parallel:  # the study's command before --data-parallel existed
        raise ConfigError(f"{out} holds runs trained data-parallel over {parallel[0]['config']['devices']} devices "
                          f"(run {parallel[0]['run_id']}); continue that study with --data-parallel, or choose "
                          f"another --out")
    _check_same_study(out, records, study_settings(probe))

    done = {r["run_id"] for r in records}
    todo = [point for point in sweep.grid() if run_id(*point) not in done]
    new: list[dict] = []
    if todo:
        base = sweep.base
        data = read_corpus(base, sweep.corpus)
        vocab, encoded = data.vocab, data.encoded
        corpus = {"source": str(sweep.corpus), "fingerprint": fingerprint, "lowercase": sweep.lowercase,
                  "encoding_errors": sweep.encoding_errors, "normalize": sweep.normalize, "vocab_size": len(vocab),
                  "tokens": int(encoded.n_tokens), "sentences": int(encoded.n_sentences)}
        log(f"corpus {sweep.corpus}: {len(vocab):,} words (min_count={base.min_count}), "
            f"{encoded.n_tokens:,} tokens; {len(todo)} run(s) to do, {len(sweep.grid()) - len(todo)} already done")
        provenance = {"code_version": code_version(), "device": {**device_info(), "used": devices,
                                                                  "together": together}}
        total_words = sum(int(encoded.n_tokens) * sweep.config(*point).epochs for point in todo)
        study = StudyProgress(total_words, len(todo), enabled=progress, log=study_log)
        try:
            if together == 1:
                batches = ([train_and_evaluate(sweep, point, data, corpus, provenance, out, progress=study)]
                           for point in todo)
            else:
                batches = train_together_and_evaluate(sweep, todo, data, corpus, provenance, out, devices,
                                                      progress=study)
            for batch in batches:
                for record in batch:
                    append_run(runs_path, record)
                    records.append(record)
                    new.append(record)
                    study.run_done(describe_run(record))
        finally:
            study.close()
    else:
        log(f"all {len(sweep.grid())} run(s) of the grid are already in {runs_path}")
    write_outputs(out, records, sweep)
    return SweepResult(records, new, len(sweep.grid()) - len(todo))


def _record_head(sweep: Sweep, window: int, dim: int, seed: int, corpus: dict) -> dict:
    return {"schema": SCHEMA_VERSION, "run_id": run_id(window, dim, seed), "window": window, "dim": dim,
            "seed": seed, "config": dataclasses.asdict(sweep.config(window, dim, seed)), "corpus": corpus,
            "evaluation": {"restrict_vocab": sweep.restrict_vocab, "method": sweep.method}}


def resolve_together(together: int | None, devices: int, data_parallel: bool = False) -> int:
    """Runs trained together: `together`, or by default one per device (measured fastest on a
    2-core CPU: benchmarks/README.md); 1 for data-parallel runs, each of which trains alone over
    every device. Refused below 1, and above 1 with data-parallel runs."""
    if together is not None and together < 1:
        raise ConfigError(f"together must be >= 1, got {together}")
    if data_parallel:
        if together not in (None, 1):
            raise ConfigError(f"together {together} cannot be used with data_parallel: a data-parallel run trains "
                              f"alone over all the devices (drop --together, or --data-parallel)")
        return 1
    return devices if together is None else together


def run_devices(sweep: Sweep, devices: int) -> int:
    """The device count of each run of a study on `devices` devices: 1 (runs trained together or
    one at a time are one-device runs, whatever the scheduling), or all of them when data-parallel
    runs were asked for."""
    return devices if sweep.data_parallel else 1


def train_and_evaluate(sweep: Sweep, point, data, corpus: dict, provenance: dict, out: Path, *,
                       progress: StudyProgress | None = None) -> dict:
    """One run through the one run path (`sg_jax.runs.run_training`: checkpointed, so an
    interrupted sweep resumes mid-run), then scored; returns its record (not yet appended).
    `progress` is told the training words as they are done."""
    window, dim, seed = point
    config = sweep.config(window, dim, seed)
    started, t0 = _now(), time.perf_counter()
    seen = {"words": 0}
    name = run_id(*point)

    def on_call(state, position, rec):
        if progress is not None:
            progress.advance(rec["words"] - seen["words"], rec["loss"], name)
        seen["words"] = rec["words"]

    output = run_training(config, sweep.corpus, out / name, resume=True, loaded=data, on_call=on_call,
                          checkpoint=CheckpointPolicy(every_seconds=60.0), log=lambda s: None,
                          write_vectors=sweep.save_vectors)
    return evaluate_run(sweep, point, data, corpus, provenance, output.result, started, t0)


def train_together_and_evaluate(sweep: Sweep, todo, data, corpus: dict, provenance: dict, out: Path, devices: int, *,
                                progress: StudyProgress | None = None):
    """The runs `todo` in groups trained together (`sg_jax.study.together`), spread over `devices`:
    yields the records of each group as it ends (a group is checkpointed, so an interrupted sweep
    resumes it mid-run)."""
    configs = [sweep.config(*point) for point in todo]
    for group in plan_groups(configs, sweep.together):
        points = [todo[i] for i in group]
        names = [run_id(*p) for p in points]
        seen = [0] * len(group)
        started, t0 = _now(), time.perf_counter()

        def on_call(j, words, loss, seen=seen, names=names):
            if progress is not None:
                progress.advance(words - seen[j], loss, names[j])
            seen[j] = words

        outputs = run_together([configs[i] for i in group], [out / n for n in names], data, devices=devices,
                               names=names, write_vectors=sweep.save_vectors, on_call=on_call)
        extra = {"trained_with": names}
        yield [evaluate_run(sweep, p, data, corpus, {**provenance, **extra}, o.result, started, t0)
               for p, o in zip(points, outputs)]


def evaluate_run(sweep: Sweep, point, data, corpus: dict, provenance: dict, result, started: str, t0: float) -> dict:
    """Score a trained run and return its record; its wall time counts from t0 (perf_counter)."""
    window, dim, seed = point
    record = _record_head(sweep, window, dim, seed, corpus)
    record.update(provenance)
    vectors = result.vectors()
    t1 = time.perf_counter()
    emb = Embeddings(data.vocab.words, vectors)
    sim = evaluate_similarity(emb)
    ana = evaluate_analogies(emb, restrict_vocab=sweep.restrict_vocab, method=sweep.method)
    t2 = time.perf_counter()

    history = result.history

    analogy = ana.to_dict()
    analogy["semantic"] = list(ana.group(False))
    analogy["syntactic"] = list(ana.group(True))
    analogy.pop("method", None)
    analogy["items"] = ana.items_dict()
    similarity = sim.to_dict()
    similarity["items"] = sim.items_dict()
    record.update({
        "loss_curve": {key: [round(float(r[key]), 6) if key != "step" else int(r[key]) for r in history]
                       for key in ("step", "epoch", "words", "loss")},
        "final_loss": float(result.final_loss),
        "wordsim353": similarity,
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


def save_missing_vectors(out: Path, records) -> tuple[int, list[str]]:
    """Write DIR/<run>/vectors.txt for recorded runs that lack it, from each run's checkpoint
    (every sweep run keeps one). Returns (how many were written, the runs that have neither)."""
    written, missing = 0, []
    for r in records:
        run_dir = out / r["run_id"]
        if (run_dir / "vectors.txt").exists():
            continue
        if not (run_dir / CHECKPOINT).exists():
            missing.append(r["run_id"])
            continue
        model = load_model(run_dir)
        formats.save_word2vec_text(run_dir / "vectors.txt", model.vocab.words, model.wv.vectors)
        write_manifest(run_dir, model.config, model.corpus_fingerprint)  # the run's files now include it
        written += 1
    return written, missing


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
