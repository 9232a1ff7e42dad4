"""Do embedding norms grow with word frequency? A test of the textbook claim.

The claim: a frequent word receives many updates that mostly pull its input vector the same way,
so its vector grows longer, while a rare word's vector stays near its small initial value.

    python experiments/norm_frequency.py                     # about 1 min
    python experiments/norm_frequency.py --arch cbow --epochs 5 --dim 100

Trains one model on the corpus, then relates each word's input-vector norm ||W[k]|| to the
log of its corpus count: the Spearman correlation over all words with a bootstrap interval over
the words, the same within the least and the most frequent tenth of the vocabulary, and the
median norm per bin of log count. Writes OUT/norm_frequency.csv (per bin), .md and .png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sg_jax.atomic import atomic_write_csv, atomic_write_text
from sg_jax.data.corpus import load_corpus
from sg_jax.errors import SgJaxError
from sg_jax.plots import pyplot, save_figure
from sg_jax.study import stats
from sg_jax.train import Config, train

RESAMPLES = 1000  # over ~14,000 words each resample ranks 14,000 values twice


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default="default", help="a text file, 'default' (Brown) or 'toy:groups'")
    p.add_argument("--arch", choices=("sg", "cbow"), default="sg")
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--bins", type=int, default=12, help="bins of log count for the binned medians")
    p.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples")
    p.add_argument("--out", default="runs/norm_frequency", help="output directory")
    return p.parse_args(argv)


def norms_and_counts(args, log=print) -> tuple[np.ndarray, np.ndarray]:
    vocab, enc, _ = load_corpus(args.corpus, min_count=args.min_count)
    config = Config(arch=args.arch, window=args.window, dim=args.dim, epochs=args.epochs, min_count=args.min_count,
                    seed=args.seed)
    result = train(config, vocab.words, vocab.counts, enc.ids, enc.offsets)
    log(f"corpus {args.corpus}: {len(vocab):,} words; trained in {result.seconds:.1f} s")
    return np.linalg.norm(result.vectors().astype(np.float64), axis=1), np.asarray(vocab.counts, np.float64)


def correlations(norms, counts, resamples: int, above: float | None = None) -> list[dict]:
    """Spearman(norm, log count) over all words, the words below the median count, the most
    frequent 10% and 1% (where a rise could turn into a fall), and the words seen at least
    `above` times when given."""
    order = np.argsort(counts, kind="stable")
    subsets = {"all words": np.arange(len(counts)), "below the median count": np.flatnonzero(counts < np.median(counts)),
               "most frequent 10%": order[-max(len(counts) // 10, 2):],
               "most frequent 1%": order[-max(len(counts) // 100, 2):]}
    if above is not None:
        subsets[f"seen at least {above:,.0f} times"] = np.flatnonzero(counts >= above)
    rows = []
    for name, idx in subsets.items():
        ci = stats.spearman_ci(norms[idx], np.log(counts[idx]), n_resamples=resamples)
        rows.append({"words": name, "n": len(idx), "count_min": int(counts[idx].min()),
                     "count_max": int(counts[idx].max()), "spearman": round(ci.estimate, 4),
                     "low": round(ci.low, 4), "high": round(ci.high, 4)})
    return rows


def binned(norms, counts, n_bins: int) -> list[dict]:
    """Median and quartiles of the norm per equal-width bin of log10 count (empty bins dropped)."""
    logc = np.log10(counts)
    edges = np.linspace(logc.min(), logc.max(), n_bins + 1)
    which = np.clip(np.searchsorted(edges, logc, side="right") - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        v = norms[which == b]
        if v.size == 0:
            continue
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        rows.append({"bin": b + 1, "count_from": round(10 ** edges[b], 1), "count_to": round(10 ** edges[b + 1], 1),
                     "words": int(v.size), "norm_median": round(float(med), 4), "norm_q1": round(float(q1), 4),
                     "norm_q3": round(float(q3), 4)})
    return rows


def verdict_lines(corr, bins, n_bins: int) -> list[str]:
    def sign(r):
        if not np.isfinite(r["low"]):
            return "undefined"
        return ("rises with frequency" if r["low"] > 0 else "falls with frequency" if r["high"] < 0
                else "shows no trend with frequency beyond the noise")

    lines = [f"* {r['words']} ({r['n']:,} words seen {r['count_min']:,}–{r['count_max']:,} times): Spearman "
             f"ρ(norm, log count) = {r['spearman']:+.3f} [{r['low']:.3f}, {r['high']:.3f}]: the norm {sign(r)}."
             for r in corr]
    peak = max(bins, key=lambda b: b["norm_median"])
    lines.append(f"* The median norm is largest ({peak['norm_median']:.2f}) in bin {peak['bin']} of {n_bins} "
                 f"(counts {peak['count_from']:,.0f}–{peak['count_to']:,.0f}); the rarest bin's median is "
                 f"{bins[0]['norm_median']:.2f} and the most frequent bin's {bins[-1]['norm_median']:.2f} "
                 f"({bins[-1]['words']} words).")
    overall = corr[0]
    if overall["low"] > 0:
        claim = "supported over the vocabulary as a whole"
        for top in corr[2:4]:
            if top["high"] < 0:
                claim += f"; but among the {top['words']} of words the norm falls with frequency"
            elif not top["low"] > 0:
                claim += f"; among the {top['words']} of words the trend is within the noise"
    elif overall["high"] < 0:
        claim = "contradicted: norms fall with frequency over the vocabulary"
    else:
        claim = "not resolved: no trend beyond the noise"
    if len(corr) > 4:
        tail = corr[4]
        if tail["high"] < 0:
            claim += (f"; past the peak, among the {tail['n']:,} words {tail['words']}, it falls "
                      f"(ρ = {tail['spearman']:+.3f} [{tail['low']:.3f}, {tail['high']:.3f}]; this range was chosen "
                      "after seeing the bins, so read it as a description of this run)")
    lines.append(f"* Verdict, norms grow with word frequency: {claim}.")
    return lines


def markdown(corr, bins, lines, args) -> str:
    bin_table = ("| bin | count from | count to | words | median norm | quartiles |\n|---:|---:|---:|---:|---:|---:|\n"
                 + "".join(f"| {b['bin']} | {b['count_from']:,.1f} | {b['count_to']:,.1f} | {b['words']:,} "
                           f"| {b['norm_median']:.3f} | {b['norm_q1']:.3f}–{b['norm_q3']:.3f} |\n" for b in bins))
    return (f"# Embedding norm against word frequency\n\n{'Skip-gram' if args.arch == 'sg' else 'CBOW'}, "
            f"negative sampling, window {args.window}, dim {args.dim}, {args.epochs} epoch(s), seed {args.seed}, "
            f"corpus `{args.corpus}`, min_count {args.min_count}. Norm of each word's input vector W[k]; "
            f"Spearman ρ with the log count [95% percentile bootstrap interval over the words, "
            f"{args.resamples} resamples].\n\n" + "\n".join(lines) + "\n\n" + bin_table)


def plot(path: Path, norms, counts, bins, corr) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.6), layout="constrained")
    ax.scatter(counts, norms, s=3, alpha=0.15, color="grey", lw=0, label="one word")
    centre = [np.sqrt(b["count_from"] * b["count_to"]) for b in bins]
    med = np.array([b["norm_median"] for b in bins])
    err = np.vstack([med - [b["norm_q1"] for b in bins], [b["norm_q3"] for b in bins] - med])
    ax.errorbar(centre, med, yerr=err, color="C3", marker="o", capsize=3, lw=1.8, label="median per bin (quartiles)")
    ax.set_xscale("log")
    ax.set_xlabel("corpus count (log scale)", fontsize=11)
    ax.set_ylabel("norm of the input vector", fontsize=11)
    r = corr[0]
    ax.set_title(f"norm vs frequency: Spearman ρ = {r['spearman']:.3f} [{r['low']:.3f}, {r['high']:.3f}]", fontsize=12)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    save_figure(fig, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        norms, counts = norms_and_counts(args)
    except SgJaxError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    bins = binned(norms, counts, args.bins)
    peak = max(bins, key=lambda b: b["norm_median"])
    # the words from the bin with the largest median norm up: chosen after looking at the bins,
    # so the test of a fall there describes this run rather than confirming a prediction
    corr = correlations(norms, counts, args.resamples, above=peak["count_from"] if peak is not bins[-1] else None)
    lines = verdict_lines(corr, bins, args.bins)
    atomic_write_csv(out / "norm_frequency.csv", bins)
    atomic_write_csv(out / "norm_frequency_spearman.csv", corr)
    text = markdown(corr, bins, lines, args)
    atomic_write_text(out / "norm_frequency.md", text)
    plot(out / "norm_frequency.png", norms, counts, bins, corr)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
