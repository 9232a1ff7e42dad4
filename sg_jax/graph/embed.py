"""A graph-embedding run: walks on the device, then the project's one training run path.

`embed_graph` draws the walks (`sg_jax.graph.walks`), turns them into a vocabulary of visited nodes
and an encoded corpus, and hands them to `sg_jax.runs.run_training` (pass `loaded=`), which writes
DIR/vectors.txt (one row per visited node, keyed by node name), DIR/checkpoint.sgjax (exact resume),
DIR/metrics.jsonl and DIR/config.json. It adds

    DIR/graph.json   the graph (source, fingerprint, sizes, what reading it dropped or merged), the walk
                     settings, the walk statistics, and the nodes no walk visited (no vector for them)

A `resume` with another graph (fingerprint, directedness, weights) or other walk settings is refused
before anything is touched. The walks are a function of the graph, the walk settings and the seed,
so a resumed run draws them again, identical, rather than storing them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from sg_jax.atomic import atomic_write_bytes, atomic_write_text
from sg_jax.errors import ConfigError
from sg_jax.graph.csr import build_csr, fingerprint
from sg_jax.graph.edgelist import Graph
from sg_jax.graph.walks import WalkConfig, WalkCorpus, check_sizes, generate_walks, memory_available
from sg_jax.config import Config
from sg_jax.console import progress_callback
from sg_jax.run_files import CHECKPOINT
from sg_jax.runs import CheckpointPolicy, Corpus, RunOutput, run_training

GRAPH_JSON = "graph.json"
SCHEMA = 1


def graph_config(**overrides) -> Config:
    """The training defaults of graph embedding: those of PecanPy's and node2vec's reference code,
    which call gensim's Word2Vec(walks, sg=1, min_count=0, window=10, vector_size=128, epochs=1) and
    so keep gensim's sample=1e-3, negative=5 and alpha=0.025. min_count=1 keeps every visited node."""
    return Config(**{**GRAPH_DEFAULTS, **overrides}).validate()


# graph embedding's defaults where they differ from word2vec's (see graph_config). Walks train on
# the text's step (the span layout, noise pooled per group of positions): on the Debian package
# graph it trains 5x faster than the padded layout with noise per target, at the same micro-F1
# (docs/graphs.md).
GRAPH_DEFAULTS = dict(dim=128, window=10, min_count=1, epochs=1)


@dataclasses.dataclass
class GraphRunOutput:
    run: RunOutput
    walks: WalkCorpus
    record: dict  # what DIR/graph.json holds


def graph_record(graph: Graph, walk: WalkConfig, seed: int, source: str) -> dict:
    """The part of graph.json that a resume must match, and the graph's description."""
    return {"schema": SCHEMA, "source": source, "fingerprint": fingerprint(graph), "nodes": graph.n_nodes,
            "edges": graph.n_edges, "directed": graph.directed, "weighted": graph.weighted,
            "walk": walk.settings(), "seed": seed, "read": dataclasses.asdict(graph.stats)}


def check_resumable(out: Path, record: dict) -> None:
    """Refuse a resume whose graph or walk settings differ from those recorded in out/graph.json."""
    path = out / GRAPH_JSON
    if not path.exists():
        if (out / CHECKPOINT).exists():
            raise ConfigError(f"cannot resume {out}: it holds a checkpoint but no {GRAPH_JSON} (not a graph run)")
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot resume {out}: {path} is unreadable ({e})") from None
    keys = ("fingerprint", "directed", "weighted", "walk", "seed")
    diff = [k for k in keys if saved.get(k) != record[k]]
    if diff:
        shown = "; ".join(f"{k}: {saved.get(k)!r} then, {record[k]!r} now" for k in diff)
        what = "graph" if set(diff) & {"fingerprint", "directed", "weighted"} else "walk settings"
        raise ConfigError(f"cannot resume {out}: the {what} differ from the checkpoint's ({shown})")


def embed_graph(graph: Graph, walk: WalkConfig, config: Config, out_dir, *, source: str = "(python)",
                resume: bool = False, overwrite: bool = False, checkpoint: CheckpointPolicy | None = CheckpointPolicy(),
                until_epoch: int | None = None, progress: bool = True, memory_limit: int = 1 << 30,
                log: Callable[[str], None] | None = None) -> GraphRunOutput:
    """Walk `graph`, train `config` on the walks, write DIR (see the module docstring). log: given
    each progress line (None: silent); progress: show progress bars."""
    log = log or (lambda line: None)
    walk.validate()
    config.validate()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a directory")
    record = graph_record(graph, walk, config.seed, source)
    if resume:
        check_resumable(out, record)
    log(f"graph: {graph.describe()}; read: {graph.stats.summary()}")
    csr = build_csr(graph)
    parent = out.parent if out.parent.exists() else Path(tempfile.gettempdir())
    spill = Path(tempfile.mkdtemp(prefix=".sg-jax-walks-", dir=parent))
    created = not out.exists()
    previous = (out / GRAPH_JSON).read_bytes() if (out / GRAPH_JSON).is_file() else None
    try:
        # sizes first, before a progress bar is drawn (generate_walks checks them again)
        check_sizes(walk, graph.n_nodes, memory=memory_available(), memory_limit=memory_limit, spill_dir=spill)
        bar = _bar(progress, walk.walks * graph.n_nodes)
        try:
            walks = generate_walks(csr, graph.names, walk, config.seed, spill_dir=spill, memory_limit=memory_limit,
                                   progress=None if bar is None else (lambda done, total: bar.update(done - bar.n)))
        finally:
            if bar is not None:
                bar.close()
        log(f"walks ({walk.method}" + (f", p={walk.p:g}, q={walk.q:g}" if walk.method == "node2vec" else "")
            + f"): {walks.summary()}")
        if walks.unvisited:
            shown = ", ".join(walks.unvisited[:10]) + (", ..." if len(walks.unvisited) > 10 else "")
            log(f"{len(walks.unvisited):,} node(s) visited by no walk (isolated{' or unreachable' if graph.directed else ''})"
                f" get no vector: {shown}")
        record.update(walks={"started": walks.walks_started, "kept": walks.walks_kept, "nodes": int(walks.encoded.n_tokens),
                             "steps": walks.steps, "seconds": round(walks.seconds, 3), "spilled": walks.on_disk},
                      vocabulary=len(walks.vocab), unvisited=walks.unvisited)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / GRAPH_JSON, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        data = Corpus(walks.vocab, walks.encoded, None, walk_fingerprint(walks), source)
        on_call, close = progress_callback(progress)
        try:
            run = run_training(config, source, out, resume=resume, overwrite=overwrite, until_epoch=until_epoch,
                               checkpoint=checkpoint, on_call=on_call, log=log, loaded=data)
        finally:
            close()
    except BaseException:
        if previous is not None:  # the directory's earlier run keeps its own description
            atomic_write_bytes(out / GRAPH_JSON, previous)
        elif not (out / CHECKPOINT).exists():  # nothing worth keeping: leave no graph.json behind
            with contextlib.suppress(FileNotFoundError):
                (out / GRAPH_JSON).unlink()
            if created:
                with contextlib.suppress(OSError):
                    out.rmdir()
        raise
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    return GraphRunOutput(run, walks, record)


def walk_fingerprint(walks: WalkCorpus) -> str:
    """sha256 of the walks as trained (the graph, the walk settings and the seed determine them):
    what the checkpoint records as its corpus."""
    h = hashlib.sha256()
    for array in (walks.encoded.ids, walks.encoded.offsets):
        for start in range(0, len(array), 1 << 22):
            h.update(np.ascontiguousarray(array[start:start + (1 << 22)]).tobytes())
    h.update("\x1f".join(walks.vocab.words).encode("utf-8"))
    return h.hexdigest()


def _bar(enabled: bool, total: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm  # heavy: tqdm loads only when a bar is shown

    return tqdm(total=total, unit="walk", unit_scale=True, desc="walks", dynamic_ncols=True)
