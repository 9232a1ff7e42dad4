"""Robustness of the step across the hyperparameters users set, against gensim in the same run.

A cell is one setting: corpus, architecture, objective (ns with k noise words, or hs), learning
rate, window (fixed or dynamic), batch size and device count. For every cell and seed it trains
sg_jax (in a subprocess of its own, so that the device count can be set before JAX starts) and,
once per setting that gensim has (batch and devices are sg_jax's alone), gensim 4 with the same
hyperparameters and seed; both are scored by the same code (WordSim-353, SimLex-999 from gensim's
test data, Google analogies). The report counts divergences and gives each cell's mean scores with
their spread over seeds beside gensim's, and whether the cell meets the targets: no divergence where
gensim trains, WordSim-353 and SimLex-999 at least gensim's minus 0.01 (or within the seeds'
spread where that is wider), analogies at least 0.95x gensim's.

    python benchmarks/bench_robustness.py --corpus small --seeds 0,1,2 --out benchmarks/results/robust_small
    python benchmarks/bench_robustness.py --corpus default --arch sg,cbow --objective ns5,ns15,hs \\
        --lr 0.025,0.05,0.1 --window 2,5,10 --fixed-window both --batch 256,1024,8192,65536 --devices 1

Corpora: "small" (the first 60,000 tokens of the bundled Brown corpus, written to a temporary
file), "default" (the bundled Brown corpus, 1.16M tokens), "default-xN" (the bundled corpus N
times over: "default-x5" is a corpus of 5.8M tokens, 48,526 words at min_count 5) or a path. sg_jax options beyond the
grid's can be given as --set FIELD=VALUE (repeatable), e.g. --set trust_region=0 for the step
without its trust region.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

OBJECTIVES = {"ns5": ("ns", 5), "ns15": ("ns", 15), "hs": ("hs", 0)}
SMALL_TOKENS = 60_000


def corpus_file(name: str, directory: Path) -> str:
    """--corpus: "small", "default", "default-xN" (Brown N times over) or a path."""
    if name == "small":
        return small_corpus(directory)
    return common.repeated_corpus(name, directory) or name


def small_corpus(directory: Path) -> str:
    """The first SMALL_TOKENS whitespace tokens of the bundled Brown corpus, whole lines."""
    from sg_jax.data.text import DEFAULT_CORPUS_PATH

    lines, n = [], 0
    with gzip.open(DEFAULT_CORPUS_PATH, "rt", encoding="utf-8") as f:
        for line in f:
            lines.append(line)
            n += len(line.split())
            if n >= SMALL_TOKENS:
                break
    path = directory / "small.txt"
    path.write_text("".join(lines), encoding="utf-8")
    return str(path)


def scores(words, vectors) -> dict:
    from sg_jax.embeddings import Embeddings
    from sg_jax.evaluation import evaluate_analogies, evaluate_similarity, simlex999_path

    emb = Embeddings(list(words), vectors)
    out = {"ws353": evaluate_similarity(emb).spearman, "analogy": evaluate_analogies(emb).accuracy}
    path = simlex999_path()
    out["simlex"] = evaluate_similarity(emb, path).spearman if path else None
    return out


def run_sg_jax(cell: dict, corpus: str, extra: dict) -> dict:
    from sg_jax.mesh import host_device_flags

    host_device_flags(cell["devices"])
    import sg_jax
    from sg_jax.errors import DivergenceError

    objective, k = OBJECTIVES[cell["objective"]]
    opts = dict(arch=cell["arch"], objective=objective, lr=cell["lr"], window=cell["window"],
                dynamic_window=not cell["fixed"], batch_size=cell["batch"], devices=cell["devices"],
                epochs=cell["epochs"], dim=cell["dim"], seed=cell["seed"], min_count=cell["min_count"],
                **({"negative": k} if k else {}), **extra)
    if cell["arch"] == "cbow":
        opts.setdefault("cbow_update", "sum")
    t = time.perf_counter()
    try:
        model = sg_jax.train_model(corpus, **opts)
    except DivergenceError as e:
        return {"diverged": str(e), "seconds": time.perf_counter() - t}
    out = {"seconds": time.perf_counter() - t, "loss": model.history[-1]["loss"] if model.history else None}
    out.update(scores(model.vocab.words, model.wv.vectors))
    return out


def run_gensim(cell: dict, corpus: str) -> dict:
    """gensim on the corpus's sentences, in the corpus's order, or (cell["peer_order"] "shuffled")
    shuffled once with the seed and read in that order every epoch: sg_jax visits an epoch's
    targets in a random order, gensim the corpus's, and on Brown, whose documents are grouped by
    genre, the order alone moves the scores (benchmarks/README.md)."""
    import random

    from gensim.models import Word2Vec

    from sg_jax.data.corpus import iter_sentences

    objective, k = OBJECTIVES[cell["objective"]]
    sentences = list(iter_sentences(corpus))
    if cell.get("peer_order") == "shuffled":
        random.Random(cell["seed"]).shuffle(sentences)
    t = time.perf_counter()
    model = Word2Vec(sentences, vector_size=cell["dim"], window=cell["window"], min_count=cell["min_count"],
                     sg=1 if cell["arch"] == "sg" else 0, hs=1 if objective == "hs" else 0, negative=k,
                     alpha=cell["lr"], min_alpha=cell["lr"] * 1e-4, epochs=cell["epochs"], seed=cell["seed"],
                     shrink_windows=not cell["fixed"], workers=os.cpu_count() or 1)
    import numpy as np

    vectors = model.wv.vectors
    if not np.all(np.isfinite(vectors)):
        return {"diverged": "non-finite vectors", "seconds": time.perf_counter() - t}
    return {"seconds": time.perf_counter() - t, **scores(model.wv.index_to_key, vectors)}


def worker(args) -> int:
    cell = json.loads(args.cell)
    extra = dict(json.loads(args.extra))
    result = run_gensim(cell, args.corpus_path) if cell["trainer"] == "gensim" else \
        run_sg_jax(cell, args.corpus_path, extra)
    Path(args.result).write_text(json.dumps(result), encoding="utf-8")
    return 0


def cells(args):
    fixed = {"both": (False, True), "yes": (True,), "no": (False,)}[args.fixed_window]
    grid = itertools.product(args.arch.split(","), args.objective.split(","), map(float, args.lr.split(",")),
                             map(int, args.window.split(",")), fixed)
    for arch, objective, lr, window, fix in grid:
        setting = dict(arch=arch, objective=objective, lr=lr, window=window, fixed=fix, epochs=args.epochs,
                       dim=args.dim, min_count=args.min_count)
        sg = [dict(setting, batch=auto_batch(setting) if b == "auto" else int(b), devices=d)
              for b in args.batch.split(",") for d in map(int, args.devices.split(","))]
        yield setting, sg


def auto_batch(cell: dict) -> int:
    """The batch sg_jax's batch_size auto takes for a cell's architecture, objective and rate."""
    from sg_jax.config import Config

    objective, k = OBJECTIVES[cell["objective"]]
    return Config(arch=cell["arch"], objective=objective, lr=cell["lr"], **({"negative": k} if k else {})
                  ).resolved_batch_size


def mean_spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (max(values) - min(values)) / 2


def verdict(ours: list[dict], peer: list[dict]) -> tuple[str, dict]:
    """(the cell's verdict, its numbers): divergences first, then each score against gensim's."""
    div = sum("diverged" in r for r in ours)
    peer_div = sum("diverged" in r for r in peer)
    nums = {"diverged": div, "runs": len(ours), "gensim_diverged": peer_div}
    trained = [r for r in ours if "diverged" not in r]
    peer_ok = [r for r in peer if "diverged" not in r]
    misses = []
    if div and peer_div < len(peer):
        misses.append(f"{div} diverged")
    for key in ("ws353", "simlex", "analogy"):
        m, s = mean_spread([r.get(key) for r in trained])
        pm, ps = mean_spread([r.get(key) for r in peer_ok])
        nums[key], nums[f"{key}_spread"], nums[f"gensim_{key}"] = m, s, pm
        if m is None or pm is None:
            continue
        if key == "analogy":
            ok = pm == 0 or m >= 0.95 * pm or pm - m <= max(s or 0, ps or 0)
        else:
            ok = m >= pm - max(0.01, s or 0, ps or 0)
        if not ok:
            misses.append(f"{key} {m:.3f} < {pm:.3f}")
    return ("ok" if not misses else "; ".join(misses)), nums


def fmt(x, pct=False):
    if x is None:
        return "–"
    return f"{100 * x:.2f}%" if pct else f"{x:.3f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--corpus", default="small",
                   help="small, default, default-xN (the bundled corpus N times over) or a path")
    p.add_argument("--arch", default="sg,cbow")
    p.add_argument("--objective", default="ns5,ns15,hs", help=f"from {', '.join(OBJECTIVES)}")
    p.add_argument("--lr", default="0.025")
    p.add_argument("--window", default="5")
    p.add_argument("--fixed-window", default="no", choices=("no", "yes", "both"))
    p.add_argument("--batch", default="auto", help="targets a step, or auto (the library's default for the cell: "
                   "1,024, or fewer with many noise words at high rates; the cell records the number)")
    p.add_argument("--devices", default="1")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="an sg_jax Config field")
    p.add_argument("--no-gensim", action="store_true", help="sg_jax alone (no peer columns)")
    p.add_argument("--peer-order", default="corpus", choices=("corpus", "shuffled"),
                   help="the order gensim reads the sentences in: the corpus's, or shuffled once per seed")
    p.add_argument("--out", help="write OUT.json and OUT.md (atomically)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--cell", help=argparse.SUPPRESS)
    p.add_argument("--extra", default="[]", help=argparse.SUPPRESS)
    p.add_argument("--corpus-path", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    extra = list(common.parse_sets(args.set).items())
    seeds = [int(s) for s in args.seeds.split(",")]
    rows, record_cells = [], []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = corpus_file(args.corpus, Path(tmp))

        def run(cell):
            result = Path(tmp) / "result.json"
            result.unlink(missing_ok=True)
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--cell", json.dumps(cell),
                   "--extra", json.dumps(extra), "--corpus-path", corpus, "--result", str(result)]
            proc = subprocess.run(cmd)
            if proc.returncode != 0 or not result.exists():
                return {"diverged": f"worker failed with exit code {proc.returncode}"}
            return json.loads(result.read_text(encoding="utf-8"))

        for setting, sg_cells in cells(args):
            order = {} if args.peer_order == "corpus" else {"peer_order": args.peer_order}
            peer = [] if args.no_gensim else [run(dict(setting, trainer="gensim", seed=s, **order)) for s in seeds]
            for cell in sg_cells:
                ours = []
                for s in seeds:
                    r = run(dict(cell, trainer="sg_jax", seed=s))
                    ours.append(r)
                    state = f"diverged: {r['diverged'][:80]}" if "diverged" in r else \
                        f"WS353 {fmt(r.get('ws353'))}, SimLex {fmt(r.get('simlex'))}, analogies {fmt(r.get('analogy'), True)}"
                    print(f"{cell} seed {s}: {state} ({r.get('seconds', 0):.0f} s)", flush=True)
                text, nums = verdict(ours, peer)
                record_cells.append({"cell": cell, "sg_jax": ours, "gensim": peer, "summary": nums, "verdict": text})
                name = (f"{cell['arch']} {cell['objective']} lr {cell['lr']} w {cell['window']}"
                        f"{' fixed' if cell['fixed'] else ''} b {cell['batch']} d {cell['devices']}")
                rows.append([name, f"{nums['diverged']}/{nums['runs']}",
                             f"{fmt(nums['ws353'])} ± {fmt(nums['ws353_spread'])}", fmt(nums["gensim_ws353"]),
                             f"{fmt(nums['simlex'])} ± {fmt(nums['simlex_spread'])}", fmt(nums["gensim_simlex"]),
                             f"{fmt(nums['analogy'], True)}", fmt(nums["gensim_analogy"], True), text])
    header = ["cell", "diverged", "WS353 (± half range)", "gensim", "SimLex-999", "gensim", "analogies", "gensim",
              "verdict"]
    text = "\n".join([f"Corpus {args.corpus}, seeds {args.seeds}, {args.epochs} epochs, dim {args.dim}, "
                      f"min_count {args.min_count}; sg_jax options {dict(extra) or 'default'}; gensim reads the "
                      f"sentences in {'the corpus order' if args.peer_order == 'corpus' else 'a shuffled order'}.",
                      "",
                      common.markdown_table(header, rows)])
    print()
    print(text)
    if args.out:
        import gensim

        from sg_jax.config import Config

        # the library's defaults, so a report names what a cell ran with after a default changes
        record = {"command": common.command_line(), "args": vars(args), "cells": record_cells,
                  "library_defaults": Config().to_dict(), "machine": common.machine({"gensim": gensim.__version__})}
        paths = common.write_outputs(args.out, record, text)
        print(f"\nwrote {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
