"""The node2vec study: a grid over p, q and the walk length, scored, tabulated and drawn.

    sg-jax graph-study --edges karate --ps 0.25,1,4 --qs 0.25,1,4 --walk-lengths 20,40 --out runs/pq

trains one node2vec model per (p, q, walk length, seed) on one graph, scores it (node classification
micro/macro-F1 and k-means NMI against the labels) and leaves in DIR

    runs.jsonl               one JSON object per finished run (appended when the run is complete)
    summary.md, summary.csv  mean (and sample std over seeds) of each score per (p, q, walk length)
    heatmap_L{L}.png         micro-F1 over (p, q), one picture per walk length

As the window x dimension sweep does, the study resumes: rerunning the command skips the runs
already recorded, and a directory holds one study (same graph, labels and settings other than
the grid); another study into it is refused. Each run is trained in memory (no checkpoint).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

from sg_jax.atomic import atomic_write_csv, atomic_write_text
from sg_jax.errors import ConfigError
from sg_jax.graph.csr import fingerprint
from sg_jax.graph.edgelist import Graph
from sg_jax.graph.embed import embed_graph
from sg_jax.graph.evaluate import score_embedding
from sg_jax.graph.walks import WalkConfig, check_sizes, memory_available
from sg_jax.plots import heatmap
from sg_jax.study.records import RUNS_FILE, append_run, read_runs
from sg_jax.config import Config

METRICS = ("micro_f1", "macro_f1", "nmi")


def run_id(p: float, q: float, length: int, seed: int) -> str:
    return f"p{p:g}_q{q:g}_L{length}_s{seed}"


@dataclasses.dataclass(frozen=True)
class PQStudy:
    base: Config             # training settings (seed replaced per run)
    walk: WalkConfig         # walks per node, chunking (p, q, walk length replaced per run)
    ps: tuple[float, ...]
    qs: tuple[float, ...]
    lengths: tuple[int, ...]
    seeds: tuple[int, ...]
    train_fraction: float = 0.5

    def grid(self):
        return list(itertools.product(self.ps, self.qs, self.lengths, self.seeds))

    def settings(self, graph: Graph, labels: dict) -> dict:
        """What all runs of the study share (a second study into the directory must match)."""
        config = {k: v for k, v in dataclasses.asdict(self.base).items() if k != "seed"}
        labels_digest = hashlib.sha256(json.dumps(sorted(labels.items())).encode("utf-8")).hexdigest()
        return {"graph": fingerprint(graph), "labels": labels_digest, "config": config, "walks": self.walk.walks,
                "train_fraction": self.train_fraction}


def run_study(study: PQStudy, graph: Graph, labels: dict, out_dir, *, source: str = "(python)",
              log: Callable[[str], None] | None = None) -> list[dict]:
    """Train and score the grid points not yet in out_dir/runs.jsonl; write the summary and heatmaps.
    log: given each progress line (None: silent)."""
    log = log or (lambda line: None)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a directory")
    for p, q in itertools.product(study.ps, study.qs):
        dataclasses.replace(study.walk, method="node2vec", p=p, q=q).validate()
    study.base.validate()
    for length in study.lengths:  # sizes too, before the first run rather than at the run of that length
        check_sizes(dataclasses.replace(study.walk, walk_length=length), graph.n_nodes, memory=memory_available(),
                    memory_limit=1 << 30, spill_dir=out.absolute().parent)
    out.mkdir(parents=True, exist_ok=True)
    records = read_runs(out / RUNS_FILE, log=log, validate=False)
    settings = study.settings(graph, labels)
    for r in records:
        if r.get("study") != settings:
            raise ConfigError(f"{out} holds runs of a different study (graph, labels or settings differ); "
                              f"choose another --out or remove {out / RUNS_FILE}")
    done = {r["run_id"] for r in records}
    todo = [point for point in study.grid() if run_id(*point) not in done]
    log(f"study: {len(study.grid())} run(s), {len(study.grid()) - len(todo)} already done")
    for p, q, length, seed in todo:
        walk = dataclasses.replace(study.walk, method="node2vec", p=p, q=q, walk_length=length)
        config = dataclasses.replace(study.base, seed=seed)
        t0 = time.perf_counter()
        res = embed_graph(graph, walk, config, out / run_id(p, q, length, seed), source=source, checkpoint=None,
                          progress=False, log=lambda s: None)
        scores = score_embedding(res.run.vocab.words, res.run.result.vectors(), labels,
                              train_fraction=study.train_fraction, seed=seed)
        c = scores["classification"]
        record = {"run_id": run_id(p, q, length, seed), "p": p, "q": q, "walk_length": length, "seed": seed,
                  "micro_f1": c["micro_f1"], "macro_f1": c["macro_f1"], "nmi": scores["nmi"],
                  "walk_seconds": round(res.walks.seconds, 3), "train_seconds": round(res.run.result.seconds, 3),
                  "wall_seconds": round(time.perf_counter() - t0, 3), "final_loss": res.run.result.final_loss,
                  "study": settings}
        append_run(out / RUNS_FILE, record)
        records.append(record)
        log(f"{record['run_id']:>20}: micro-F1 {c['micro_f1']:.4f}  macro-F1 {c['macro_f1']:.4f}  "
            f"NMI {scores['nmi']:.4f}  ({record['wall_seconds']:.1f} s)")
    write_summary(out, records)
    return records


def summarize(records: list[dict]) -> list[dict]:
    """Mean and sample std over seeds of each metric per (p, q, walk length)."""
    cells: dict = {}
    for r in records:
        cells.setdefault((r["p"], r["q"], r["walk_length"]), []).append(r)
    rows = []
    for (p, q, length), rs in sorted(cells.items()):
        row = {"p": p, "q": q, "walk_length": length, "seeds": len(rs)}
        for m in METRICS:
            values = [r[m] for r in rs]
            row[m] = round(statistics.fmean(values), 4)
            row[f"{m}_std"] = round(statistics.stdev(values), 4) if len(values) > 1 else None
        rows.append(row)
    return rows


def write_summary(out: Path, records: list[dict]) -> None:
    rows = summarize(records)
    if not rows:
        return
    atomic_write_csv(out / "summary.csv", rows)
    lines = ["| p | q | walk length | seeds | micro-F1 | macro-F1 | NMI |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cell = lambda m: f"{r[m]:.4f}" + (f" ± {r[m + '_std']:.4f}" if r[f"{m}_std"] is not None else "")  # noqa: E731
        lines.append(f"| {r['p']:g} | {r['q']:g} | {r['walk_length']} | {r['seeds']} | {cell('micro_f1')} | "
                     f"{cell('macro_f1')} | {cell('nmi')} |")
    atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")
    for length in sorted({r["walk_length"] for r in rows}):
        ps = sorted({r["p"] for r in rows if r["walk_length"] == length})
        qs = sorted({r["q"] for r in rows if r["walk_length"] == length})
        mean = np.full((len(ps), len(qs)), np.nan)
        std = np.full((len(ps), len(qs)), np.nan)
        for r in rows:
            if r["walk_length"] == length:
                mean[ps.index(r["p"]), qs.index(r["q"])] = r["micro_f1"]
                if r["micro_f1_std"] is not None:
                    std[ps.index(r["p"]), qs.index(r["q"])] = r["micro_f1_std"]
        heatmap(out / f"heatmap_L{length}.png", mean, [f"{p:g}" for p in ps], [f"{q:g}" for q in qs], std=std,
                title=f"micro-F1, walk length {length}", row_label="p (return)", col_label="q (in-out)")
