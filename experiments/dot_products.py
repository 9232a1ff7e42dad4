"""Dot products v'_c . v_t of context and non-context pairs, before and after training.

Skip-gram with negative sampling raises sigma(v'_c . v_t) for pairs seen in a window and lowers
it for noise pairs, so training pulls the two distributions apart. Before training they are the
same distribution around 0. After it, non-context pairs sit far below 0, and each context pair
near the optimum of the objective, log(#(t,c) / (k #(t) P_n(c))), a shifted pointwise mutual
information (Levy and Goldberg 2014): that can be below 0 too (k = 5 shifts it by log 5), so
what tells the two kinds apart is their order, measured by the AUC.

    python experiments/dot_products.py                        # toy:groups, a few seconds
    python experiments/dot_products.py --corpus default --epochs 3 --dim 100

Context pairs are drawn from all (target, context) pairs of a fixed window; non-context pairs
pair the same targets with words drawn from the noise distribution (unigram^0.75), keeping only
pairs that occur nowhere in the corpus within the window. The default initialisation is "normal"
(small random W and W'): with gensim's or word2vec's (W' = 0) every dot product is exactly 0 before
training.

Prints, before and after: mean, standard deviation, share of positive dot products, mean sigma,
and the AUC (chance that a random context pair scores above a random non-context pair), then how
well the trained dot products of the context pairs follow the shifted PMI. Writes
OUT/dot_products.csv and OUT/dot_products.png (histograms).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sg_jax.atomic import atomic_write_csv
from sg_jax.errors import SgJaxError
from sg_jax.model import INITS
from sg_jax.plots import pyplot, save_figure


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default="toy:groups", help="'toy:groups' (default), 'default' (Brown) or a file")
    p.add_argument("--objective", choices=["ns", "softmax"], default="ns",
                   help="ns (default) or softmax; hierarchical softmax has no output vector per word")
    p.add_argument("--dim", type=int, default=20, help="embedding dimension (default 20)")
    p.add_argument("--window", type=int, default=2, help="context window (default 2)")
    p.add_argument("--epochs", type=int, default=5, help="training epochs (default 5)")
    p.add_argument("--init", choices=INITS, default="normal")
    p.add_argument("--min-count", type=int, default=None, help="default 1 for toy corpora, 5 otherwise")
    p.add_argument("--sample", type=float, default=None, help="subsampling threshold (default 0 for toy corpora, 1e-3 otherwise)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="targets per step (default 64 for toy corpora, whose 43 words would repeat dozens of times "
                        "in a batch of 1024; 1024 otherwise)")
    p.add_argument("--pairs", type=int, default=20_000, help="pairs of each kind to score (default 20000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/dot_products", help="output directory")
    return p.parse_args(argv)


def sample_pairs(corpus, counts, window: int, n: int, rng, negative: int = 5):
    """(context pairs int[n', 2], non-context pairs int[n'', 2], optimum float[n']).

    The pairs are drawn as the module docstring says. `optimum` is, for each context pair, the dot
    product at which negative sampling's expected loss is smallest (Levy and Goldberg 2014):
    log(#(t, c) / (k #(t) P_n(c))), a shifted pointwise mutual information, with the pair counts
    of the fixed window (training's dynamic window weights near pairs more; this is a reference).
    """
    from sg_jax.windows import skipgram_pairs

    pairs = skipgram_pairs(corpus, window).astype(np.int64)
    V = len(counts)
    seen, pair_counts = np.unique(pairs[:, 0] * V + pairs[:, 1], return_counts=True)
    target_counts = np.bincount(pairs[:, 0], minlength=V)
    context = pairs[rng.choice(len(pairs), size=min(n, len(pairs)), replace=False)]
    noise = np.asarray(counts, np.float64) ** 0.75
    noise /= noise.sum()
    targets = context[:, 0]
    found = []
    for _ in range(20):  # draw until enough pairs are never-seen ones (each round is one vector draw)
        words = rng.choice(V, size=len(targets), p=noise)
        fresh = ~np.isin(targets * V + words, seen)
        found.append(np.stack([targets[fresh], words[fresh]], axis=1))
        if sum(len(f) for f in found) >= len(targets):
            break
    non_context = np.concatenate(found)[: len(targets)]
    joint = pair_counts[np.searchsorted(seen, context[:, 0] * V + context[:, 1])]
    optimum = np.log(joint / (negative * target_counts[context[:, 0]] * noise[context[:, 1]]))
    return context, non_context, optimum


def dots(params, pairs: np.ndarray) -> np.ndarray:
    w_in, w_out = (np.asarray(t, np.float64) for t in params)
    return np.einsum("pn,pn->p", w_in[pairs[:, 0]], w_out[pairs[:, 1]])


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a random positive > a random negative), ties counted half (Mann-Whitney U / n1 n2)."""
    scores = np.concatenate([positive, negative])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e - 1) / 2 + 1
    u = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2
    return float(u / (len(positive) * len(negative)))


def describe(x: np.ndarray) -> dict:
    return {"n": len(x), "mean": float(x.mean()), "std": float(x.std()), "median": float(np.median(x)),
            "positive_share": float((x > 0).mean()), "mean_sigmoid": float((1 / (1 + np.exp(-x))).mean())}


def plot(path, before: dict, after: dict, title: str) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for ax, (stage, d) in zip(axes, (("before training", before), ("after training", after))):
        both = np.concatenate([d["context"], d["non-context"]])
        lo, hi = np.percentile(both, [0.5, 99.5])
        if hi <= lo:
            lo, hi = lo - 1e-3, hi + 1e-3
        bins = np.linspace(lo, hi, 60)
        ax.hist(d["context"], bins=bins, density=True, alpha=0.55, label="context pairs", color="tab:blue")
        ax.hist(d["non-context"], bins=bins, density=True, alpha=0.55, label="non-context pairs", color="tab:red")
        ax.axvline(0, color="k", lw=0.6)
        ax.set_title(f"{stage} (AUC {auc(d['context'], d['non-context']):.3f})")
        ax.set_xlabel("v'_c · v_t")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    save_figure(fig, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        from sg_jax.data.corpus import load_corpus
        from sg_jax.train import Config, init_state, make_optimizer, train

        toy = str(args.corpus).startswith("toy:")
        min_count = args.min_count if args.min_count is not None else (1 if toy else 5)
        sample = args.sample if args.sample is not None else (0.0 if toy else 1e-3)
        batch_size = args.batch_size if args.batch_size is not None else (64 if toy else 1024)
        vocab, enc, _ = load_corpus(args.corpus, min_count=min_count)
        config = Config(objective=args.objective, dim=args.dim, window=args.window, epochs=args.epochs,
                        init=args.init, sample=sample, min_count=min_count, batch_size=batch_size, seed=args.seed,
                        share_negatives="none").validate()
        rng = np.random.default_rng(args.seed)
        context, non_context, optimum = sample_pairs(enc, vocab.counts, args.window, args.pairs, rng,
                                                     negative=config.negative)
        print(f"corpus {args.corpus}: {len(vocab):,} words, {enc.n_tokens:,} tokens; scoring {len(context):,} "
              f"context and {len(non_context):,} non-context pairs (window {args.window})")

        initial = init_state(config, len(vocab), make_optimizer(config, 1))
        before = {"context": dots(initial.params, context), "non-context": dots(initial.params, non_context)}
        result = train(config, vocab.words, vocab.counts, enc.ids, enc.offsets)
        after = {"context": dots(result.state.params, context), "non-context": dots(result.state.params, non_context)}
        print(f"trained {args.objective}, dim {args.dim}, {args.epochs} epochs, init {args.init}: "
              f"final loss {result.final_loss:.4f}\n")

        rows = []
        head = f"{'stage':<8} {'pairs':<12} {'mean':>8} {'std':>8} {'median':>8} {'> 0':>6} {'mean σ':>7} {'AUC':>6}"
        print(head)
        print("-" * len(head))
        for stage, d in (("before", before), ("after", after)):
            area = auc(d["context"], d["non-context"])
            for kind in ("context", "non-context"):
                s = describe(d[kind])
                rows.append({"stage": stage, "pairs": kind, **s, "auc": area})
                print(f"{stage:<8} {kind:<12} {s['mean']:>8.4f} {s['std']:>8.4f} {s['median']:>8.4f} "
                      f"{s['positive_share']:>6.2f} {s['mean_sigmoid']:>7.3f} {area:>6.3f}")
        print("\nAUC 0.5: the dot product does not tell context from non-context pairs; 1.0: it always does.")
        if args.objective == "ns":
            r = np.corrcoef(optimum, after["context"])[0, 1]
            print(f"Negative sampling's optimum for a pair is the shifted PMI log(#(t,c) / (k #(t) P_n(c))): "
                  f"over these context pairs its mean is {optimum.mean():+.3f} (trained: "
                  f"{after['context'].mean():+.3f}), and it correlates with the trained dot products at "
                  f"r = {r:+.2f}. Context pairs need not score above 0: only above the noise pairs.")

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_csv(out / "dot_products.csv", rows)
        plot(out / "dot_products.png", before, after,
             f"{args.corpus}: skip-gram {args.objective}, dim {args.dim}, window {args.window}, {args.epochs} epochs")
        print(f"\nwrote {out / 'dot_products.csv'} and {out / 'dot_products.png'}")
    except (SgJaxError, ValueError) as e:
        print(f"dot_products: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
