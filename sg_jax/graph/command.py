"""`sg-jax graph`: DeepWalk / node2vec from an edge list to vectors, scores and a picture."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sg_jax.errors import ConfigError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_graph_arguments(p: argparse.ArgumentParser) -> None:
    """Graph, walk and training options shared by `graph` and `graph-study`."""
    from sg_jax.graph.embed import graph_config
    from sg_jax.graph.walks import WalkConfig

    d, w = graph_config(), WalkConfig()
    g = p.add_argument_group("graph")
    g.add_argument("--edges", required=True,
                   help="edge-list file ('a b' or 'a b weight' per line, tab or space separated, '#' comments; "
                        ".gz ok), or a bundled graph: karate, lesmis, sbm, lfr")
    g.add_argument("--labels", default=None, help="node<TAB>label per line (bundled graphs bring theirs)")
    g.add_argument("--directed", action="store_true", help="edges go from the first node to the second")
    g.add_argument("--weighted", action="store_true", help="read the third column as the edge weight (> 0)")
    g = p.add_argument_group("walks")
    g.add_argument("--method", choices=["deepwalk", "node2vec"], default=w.method, help="walk kind (default deepwalk)")
    g.add_argument("--p", type=float, default=w.p, help="node2vec return parameter (default 1)")
    g.add_argument("--q", type=float, default=w.q, help="node2vec in-out parameter (default 1)")
    g.add_argument("--walks", type=int, default=w.walks, help=f"walks per node (default {w.walks})")
    g.add_argument("--walk-length", type=int, default=w.walk_length,
                   help=f"nodes per walk, the start included (default {w.walk_length})")
    g.add_argument("--chunk-walkers", type=int, default=w.chunk_walkers,
                   help=f"walkers advanced together on the device (memory only; default {w.chunk_walkers})")
    g = p.add_argument_group("training (skip-gram on the walks)")
    g.add_argument("--dim", type=int, default=d.dim, help=f"embedding dimension (default {d.dim})")
    g.add_argument("--window", type=int, default=d.window, help=f"max context offset (default {d.window})")
    g.add_argument("--epochs", type=int, default=d.epochs, help=f"passes over the walks (default {d.epochs})")
    g.add_argument("--negative", type=int, default=d.negative, help=f"noise nodes per prediction (default {d.negative})")
    g.add_argument("--objective", choices=["ns", "hs"], default=d.objective,
                   help="negative sampling or hierarchical softmax (default ns)")
    g.add_argument("--sample", type=float, default=d.sample,
                   help=f"subsampling threshold of frequent nodes, 0 disables (default {d.sample:g}, as gensim "
                        "under PecanPy and node2vec)")
    g.add_argument("--lr", type=float, default=None, help="initial learning rate (default 0.025)")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help=f"targets per step (default {d.batch_size})")
    g.add_argument("--seed", type=int, default=d.seed, help="seed of the walks and the training (default 0)")


def configs_from_args(args):
    from sg_jax.graph.embed import graph_config
    from sg_jax.graph.walks import WalkConfig

    walk = WalkConfig(method=args.method, p=args.p, q=args.q, walks=args.walks, walk_length=args.walk_length,
                      chunk_walkers=args.chunk_walkers).validate()
    config = graph_config(dim=args.dim, window=args.window, epochs=args.epochs, negative=args.negative,
                          objective=args.objective, sample=args.sample, lr=args.lr, batch_size=args.batch_size,
                          seed=args.seed)
    return walk, config


def load_inputs(args):
    """(graph, labels or None, unknown label lines, source name) from --edges/--labels/--directed/--weighted."""
    from sg_jax.graph.datasets import resolve
    from sg_jax.graph.edgelist import read_edgelist, read_labels

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


def evaluate_run(names, vectors, labels, split=None, *, train_fraction: float = 0.5, seed: int = 0) -> dict:
    """Scores of an embedding: classification and NMI with labels, link AUC with an edge split."""
    from sg_jax.graph import evaluate

    scores: dict = {}
    if labels:
        c = evaluate.node_classification(names, vectors, labels, train_fraction=train_fraction, seed=seed)
        scores["classification"] = c.__dict__ | {"summary": c.summary()}
        scores["nmi"] = evaluate.community_nmi(names, vectors, labels, seed=seed)
    if split is not None:
        scores["link_auc"] = evaluate.link_prediction_auc(split, names, vectors, seed=seed)
        scores["held_out_edges"] = int(len(split.test_pos))
    return scores


def main(args) -> int:
    from sg_jax.atomic import atomic_write_text
    from sg_jax.graph.embed import embed_graph
    from sg_jax.graph.evaluate import split_edges
    from sg_jax.runs import CheckpointPolicy

    walk, config = configs_from_args(args)
    if not 0 < args.train_fraction < 1:
        raise ConfigError(f"--train-fraction must be in (0, 1), got {args.train_fraction}")
    log = (lambda s: None) if args.quiet else (lambda s: print(s, flush=True))
    t0 = time.perf_counter()
    graph, labels, unknown, source = load_inputs(args)
    if unknown:
        log(f"labels: {unknown:,} line(s) name nodes not in the graph and are skipped")
    split = None
    if args.holdout_edges is not None:
        split = split_edges(graph, args.holdout_edges, seed=config.seed)
        log(f"link prediction: {len(split.test_pos):,} edges held out (and as many non-edges); training on the rest")
        graph = split.train
    policy = CheckpointPolicy(every_steps=args.checkpoint_every_steps, every_seconds=args.checkpoint_every_seconds)
    out = embed_graph(graph, walk, config, args.out, source=source, resume=args.resume,
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
        scores = evaluate_run(names, vectors, labels, split, train_fraction=args.train_fraction, seed=config.seed)
        if "classification" in scores:
            print(scores["classification"]["summary"])
            print(f"community recovery (k-means on the vectors vs the labels): NMI {scores['nmi']:.4f}")
        if "link_auc" in scores:
            print(f"link prediction: ROC AUC {scores['link_auc']:.4f} on {scores['held_out_edges']:,} held-out edges")
        atomic_write_text(out_dir / "scores.json", json.dumps(scores, indent=2) + "\n")
    if not args.no_plot:
        from sg_jax.graph.projection import plot_projection

        method = plot_projection(out_dir / "projection.png", names, vectors, labels,
                                 title=f"{Path(source).name}: {walk.method}", seed=config.seed)
        print(f"wrote {out_dir / 'vectors.txt'}, {out_dir / 'projection.png'} ({method}) and the checkpoint")
    else:
        print(f"wrote {out_dir / 'vectors.txt'} and the checkpoint")
    return 0
