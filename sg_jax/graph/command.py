"""`sg-jax graph`: DeepWalk / node2vec from an edge list to vectors, scores and a picture."""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from sg_jax.atomic import atomic_write_text
from sg_jax.cli.commands import positive_int as _positive_int
from sg_jax.cli.options import add_config_arguments, config_from_args
from sg_jax.errors import ConfigError
from sg_jax.graph.datasets import resolve
from sg_jax.graph.edgelist import read_edgelist, read_labels
from sg_jax.graph.embed import GRAPH_DEFAULTS, embed_graph, graph_config
from sg_jax.graph.evaluate import score_embedding, split_edges
from sg_jax.graph.projection import plot_projection
from sg_jax.graph.study import PQStudy, run_study
from sg_jax.graph.walks import WalkConfig
from sg_jax.runs import CheckpointPolicy


def add_graph_arguments(p: argparse.ArgumentParser, *, study: bool = False) -> None:
    """Graph, walk and training options shared by `graph` and `graph-study` (whose grid replaces
    --method, --p, --q and --walk-length)."""
    w = WalkConfig()
    g = p.add_argument_group("graph")
    g.add_argument("--edges", required=True,
                   help="edge-list file ('a b' or 'a b weight' per line, tab or space separated, '#' comments; "
                        ".gz ok), or a bundled graph: karate, lesmis, sbm, lfr")
    g.add_argument("--labels", default=None, help="node<TAB>label per line (bundled graphs bring theirs)")
    g.add_argument("--directed", action="store_true", help="edges go from the first node to the second")
    g.add_argument("--weighted", action="store_true", help="read the third column as the edge weight (> 0)")
    g = p.add_argument_group("walks")
    if not study:
        g.add_argument("--method", choices=["deepwalk", "node2vec"], default=w.method,
                       help="walk kind (default deepwalk)")
        g.add_argument("--p", type=float, default=w.p, help="node2vec return parameter (default 1)")
        g.add_argument("--q", type=float, default=w.q, help="node2vec in-out parameter (default 1)")
        g.add_argument("--walk-length", type=int, default=w.walk_length,
                       help=f"nodes per walk, the start included (default {w.walk_length})")
    g.add_argument("--walks", type=int, default=w.walks, help=f"walks per node (default {w.walks})")
    g.add_argument("--chunk-walkers", type=int, default=w.chunk_walkers,
                   help=f"walkers advanced together on the device (memory only; default {w.chunk_walkers})")
    # the skip-gram options are Config's fields (sg_jax.cli.options), with graph embedding's defaults
    add_config_arguments(p, exclude=READ_FIELDS, defaults=GRAPH_DEFAULTS)


# how text is read does not apply to walks, whose words are node ids
READ_FIELDS = ("min_count", "max_vocab", "lowercase", "encoding_errors", "unicode_normalization",
               "strip_diacritics")


def configs_from_args(args):
    walk = WalkConfig(method=getattr(args, "method", "node2vec"), p=getattr(args, "p", 1.0), q=getattr(args, "q", 1.0),
                      walks=args.walks, walk_length=getattr(args, "walk_length", WalkConfig.walk_length),
                      chunk_walkers=args.chunk_walkers).validate()
    config = config_from_args(args, **{k: v for k, v in graph_config().to_dict().items() if k in READ_FIELDS})
    return walk, config


def load_inputs(args):
    """(graph, labels or None, unknown label lines, source name) from --edges/--labels/--directed/--weighted."""
    path, bundled_labels, bundled_weighted = resolve(args.edges)
    weighted = args.weighted or bool(bundled_weighted)
    graph = read_edgelist(path, directed=args.directed, weighted=weighted)
    labels_path = args.labels or bundled_labels
    labels, unknown = (None, 0)
    if labels_path is not None:
        labels, unknown = read_labels(labels_path, graph)
    return graph, labels, unknown, str(args.edges)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("DeepWalk or node2vec: random walks on the device, skip-gram on the walks. Writes "
                     "DIR/vectors.txt (word2vec text format, one row per node visited by a walk, keyed by node name), "
                     "DIR/checkpoint.sgjax, DIR/graph.json, DIR/metrics.jsonl, DIR/config.json, DIR/projection.png "
                     "and, with labels or --holdout-edges, DIR/scores.json.")
    add_graph_arguments(p)
    g = p.add_argument_group("output and evaluation")
    g.add_argument("--out", required=True, help="output directory")
    g.add_argument("--holdout-edges", type=float, default=None, metavar="F",
                   help="link prediction: train on the graph without a fraction F of its edges, report the ROC AUC "
                        "of Hadamard features on them against as many non-edges")
    g.add_argument("--train-fraction", type=float, default=0.5,
                   help="labelled nodes used to fit the classifier (default 0.5)")
    g.add_argument("--no-plot", action="store_true", help="do not draw DIR/projection.png")
    g.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.sgjax (same graph and settings)")
    g.add_argument("--stop-after-epoch", type=_positive_int, default=None,
                   help="stop after this epoch (resume later with --resume)")
    g.add_argument("--checkpoint-every-steps", type=_positive_int, default=None, help="checkpoint interval in steps")
    g.add_argument("--checkpoint-every-seconds", type=float, default=600.0, help="checkpoint interval in seconds")
    g.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    g.add_argument("--overwrite", action="store_true", help="replace a run already in DIR")


def main(args) -> int:
    walk, config = configs_from_args(args)
    if not 0 < args.train_fraction < 1:
        raise ConfigError(f"--train-fraction must be in (0, 1), got {args.train_fraction}")
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    t0 = time.perf_counter()
    graph, labels, unknown, source = load_inputs(args)
    if unknown:
        log(f"labels: {unknown:,} line(s) name nodes not in the graph and are skipped")
    if labels and sum(c >= 2 for c in Counter(labels.values()).values()) < 2:
        raise ConfigError("the labels give fewer than 2 classes with 2 or more nodes: nothing to classify")
    split = None
    if args.holdout_edges is not None:
        split = split_edges(graph, args.holdout_edges, seed=config.seed)
        log(f"link prediction: {len(split.test_pos):,} edges held out (and as many non-edges); training on the rest")
        graph = split.train
    policy = CheckpointPolicy(every_steps=args.checkpoint_every_steps, every_seconds=args.checkpoint_every_seconds)
    out = embed_graph(graph, walk, config, args.out, source=source, resume=args.resume, overwrite=args.overwrite,
                      until_epoch=args.stop_after_epoch, checkpoint=policy, progress=not args.quiet, log=log)
    r = out.run.result
    out_dir = Path(args.out)
    print(f"trained {walk.method} ({config.objective}, dim {config.dim}, window {config.window}) on "
          f"{len(out.run.vocab):,} nodes: walks {out.walks.seconds:.1f} s, training {r.seconds:.1f} s, "
          f"total {time.perf_counter() - t0:.1f} s; final loss {r.final_loss:.4f}")
    if out.walks.unvisited:
        print(f"{len(out.walks.unvisited):,} node(s) visited by no walk have no vector (listed in "
              f"{out_dir / 'graph.json'})")
    vectors = r.vectors()
    names = out.run.vocab.words
    finished = r.position.epoch >= config.epochs
    if (labels or split is not None) and finished:
        scores = score_embedding(names, vectors, labels, split, train_fraction=args.train_fraction,
                                 seed=config.seed)
        if "classification" in scores:
            print(scores["classification"]["summary"])
            print(f"community recovery (k-means on the vectors vs the labels): NMI {scores['nmi']:.4f}")
        if "link_auc" in scores:
            print(f"link prediction: ROC AUC {scores['link_auc']:.4f} on {scores['held_out_edges']:,} held-out edges")
        atomic_write_text(out_dir / "scores.json", json.dumps(scores, indent=2) + "\n")
    if not args.no_plot:
        method = plot_projection(out_dir / "projection.png", names, vectors, labels,
                                 title=f"{Path(source).name}: {walk.method}", seed=config.seed)
        print(f"wrote {out_dir / 'vectors.txt'}, {out_dir / 'projection.png'} ({method}) and the checkpoint")
    else:
        print(f"wrote {out_dir / 'vectors.txt'} and the checkpoint")
    return 0


def _number_list(kind, minimum, strict: bool):
    def parse(text: str):
        try:
            values = [kind(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
        bad = [v for v in values if (v <= minimum if strict else v < minimum)]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"every value must be {'>' if strict else '>='} {minimum}, got {text!r}")
        return tuple(dict.fromkeys(values))

    return parse


def add_study_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("node2vec over a grid of p, q and walk length on one labelled graph: one model per point, "
                     "scored by node classification (micro/macro-F1) and k-means NMI. Writes DIR/runs.jsonl, "
                     "DIR/summary.md, DIR/summary.csv and DIR/heatmap_L<length>.png (micro-F1 over p x q); "
                     "rerunning the command skips the runs already recorded.")
    add_graph_arguments(p, study=True)
    g = p.add_argument_group("grid")
    g.add_argument("--ps", type=_number_list(float, 0, True), default=(0.25, 1.0, 4.0), help="values of p (default 0.25,1,4)")
    g.add_argument("--qs", type=_number_list(float, 0, True), default=(0.25, 1.0, 4.0), help="values of q (default 0.25,1,4)")
    g.add_argument("--walk-lengths", type=_number_list(int, 2, False), default=(40,),
                   help="walk lengths in nodes (default 40)")
    g.add_argument("--seeds", type=_number_list(int, 0, False), default=(0,), help="seeds (default 0)")
    g.add_argument("--train-fraction", type=float, default=0.5, help="labelled nodes used for fitting (default 0.5)")
    g.add_argument("--out", required=True, help="output directory")
    g.add_argument("--quiet", action="store_true", help="no per-run lines")


def study_main(args) -> int:
    walk, config = configs_from_args(args)
    graph, labels, unknown, source = load_inputs(args)
    if not labels:
        raise ConfigError("graph-study scores every run against labels: give --labels (bundled graphs have them)")
    study = PQStudy(config, walk, args.ps, args.qs, args.walk_lengths, args.seeds, args.train_fraction)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    records = run_study(study, graph, labels, args.out, source=source, log=log)
    out = Path(args.out)
    print((out / "summary.md").read_text(encoding="utf-8"))
    print(f"{len(records)} run(s) recorded in {out / 'runs.jsonl'}; wrote summary.md, summary.csv and heatmaps")
    return 0
