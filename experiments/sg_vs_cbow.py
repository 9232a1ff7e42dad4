"""Skip-gram against CBOW: rare words and speed. A test of the textbook claims.

The claims: skip-gram represents rare words better (each occurrence of a rare word is a training
example of its own, where CBOW averages it into a context), and CBOW trains faster (one
prediction per target instead of one per context word).

    python experiments/sg_vs_cbow.py                         # about 2 min
    python experiments/sg_vs_cbow.py --window 5 --dim 100 --epochs 5 --buckets 4

Trains both architectures on the same corpus with the same settings (each with its default
learning rate) in one process, one after the other. Rare against frequent: the pairs of
WordSim-353 and SimLex-999 that both models score are bucketed by the corpus count of the rarer
word of the pair (equal-sized buckets), and each bucket's Spearman correlation gets a bootstrap
interval over its pairs; skip-gram − CBOW is resampled paired on the same pairs. Speed: training
words per second after the first jitted call (which includes compilation). Writes
OUT/sg_vs_cbow.csv, .md and .png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sg_jax.atomic import atomic_write_csv, atomic_write_text
from sg_jax.data.corpus import load_corpus
from sg_jax.embeddings import Embeddings
from sg_jax.errors import SgJaxError
from sg_jax.evaluation import load_similarity_pairs, simlex999_path
from sg_jax.plots import pyplot, save_figure
from sg_jax.study import compare, stats
from sg_jax.train import Config, train

ARCHS = {"sg": "skip-gram", "cbow": "CBOW"}
BENCHMARKS = {"wordsim": "WordSim-353", "simlex": "SimLex-999"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default="default", help="a text file, 'default' (Brown) or 'toy:groups'")
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--buckets", type=int, default=3, help="frequency buckets of the pairs (default 3)")
    p.add_argument("--resamples", type=int, default=stats.N_RESAMPLES, help="bootstrap resamples")
    p.add_argument("--out", default="runs/sg_vs_cbow", help="output directory")
    return p.parse_args(argv)


def steady_words_per_second(result) -> float:
    """Training words/s after the first jitted call (whose time includes compilation)."""
    h = result.history
    if len(h) >= 2 and h[-1]["seconds"] > h[0]["seconds"]:
        return (h[-1]["words"] - h[0]["words"]) / (h[-1]["seconds"] - h[0]["seconds"])
    return result.words_per_second


def rarer_counts(pairs, items: compare.Items, vocab) -> np.ndarray:
    """Corpus count of the rarer word of each scored pair (lowercased lookup, as the scorer does)."""
    count = {}
    for w, c in zip(vocab.words, vocab.counts.tolist()):
        count.setdefault(w.lower(), c)
    return np.array([min(count[pairs[i][0].lower()], count[pairs[i][1].lower()]) for i in items.index], np.int64)


def bucket_edges(counts: np.ndarray, n: int) -> np.ndarray:
    """n equal-sized buckets by count: the n + 1 quantile edges (first and last = min and max)."""
    return np.quantile(counts, np.linspace(0, 1, n + 1))


def run(args, log=print):
    vocab, enc, _ = load_corpus(args.corpus, min_count=args.min_count)
    log(f"corpus {args.corpus}: {len(vocab):,} words, {enc.n_tokens:,} tokens")
    scored, speed = {}, {}
    for arch in ARCHS:
        config = Config(arch=arch, window=args.window, dim=args.dim, epochs=args.epochs, min_count=args.min_count,
                        seed=args.seed)
        result = train(config, vocab.words, vocab.counts, enc.ids, enc.offsets)
        speed[arch] = {"words_per_second": steady_words_per_second(result), "train_seconds": result.seconds}
        scored[arch] = compare.evaluate_all(Embeddings(vocab.words, result.vectors()))
        log(f"{ARCHS[arch]}: trained in {result.seconds:.1f} s, {speed[arch]['words_per_second']:,.0f} words/s")
    pairs = {"wordsim": load_similarity_pairs(), "simlex": load_similarity_pairs(simlex999_path())}
    return vocab, scored, speed, pairs


def buckets(vocab, scored, pairs, n_buckets: int, resamples: int) -> list[dict]:
    rows = []
    for bench, name in BENCHMARKS.items():
        sg, cbow = compare.common([scored["sg"][bench], scored["cbow"][bench]])
        if len(sg) == 0:
            continue
        counts = rarer_counts(pairs[bench], sg, vocab)
        edges = bucket_edges(counts, n_buckets)
        which = np.clip(np.searchsorted(edges, counts, side="right") - 1, 0, n_buckets - 1)
        first = None
        for b in range(n_buckets):
            keep = which == b
            if not keep.any():
                continue
            # skip-gram − CBOW on this bucket minus the same on the rarest bucket: the buckets
            # hold different pairs, so they are resampled independently
            gap = stats.NAN_INTERVAL
            if first is None:
                first = keep
            else:
                gap = stats.independent_difference(
                    stats.difference(sg.take(first).statistic(), cbow.take(first).statistic()), int(first.sum()),
                    stats.difference(sg.take(keep).statistic(), cbow.take(keep).statistic()), int(keep.sum()),
                    n_resamples=resamples)
            lo, hi = int(counts[keep].min()), int(counts[keep].max())
            ci = {arch: compare.interval(items.take(keep), n_resamples=resamples)
                  for arch, items in (("sg", sg), ("cbow", cbow))}
            diff = compare.paired(sg.take(keep), cbow.take(keep), n_resamples=resamples)
            rows.append({"benchmark": name, "bucket": b + 1, "rarer_count_min": lo, "rarer_count_max": hi,
                         "pairs": int(keep.sum()),
                         **{f"{arch}_{k}": round(getattr(ci[arch], k), 4) for arch in ARCHS
                            for k in ("estimate", "low", "high")},
                         "sg_minus_cbow": round(diff.estimate, 4), "diff_low": round(diff.low, 4),
                         "diff_high": round(diff.high, 4), "rarest_gap_minus_this": round(gap.estimate, 4),
                         "gap_low": round(gap.low, 4), "gap_high": round(gap.high, 4)})
    return rows


def _outcome(low: float, high: float) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "not testable"
    return "skip-gram better" if low > 0 else "CBOW better" if high < 0 else "no difference beyond evaluation noise"


def verdict_lines(rows, speed) -> list[str]:
    lines = []
    for name in BENCHMARKS.values():
        mine = [r for r in rows if r["benchmark"] == name]
        if not mine:
            continue
        rare, frequent = mine[0], mine[-1]
        parts = []
        for label, r in (("rarest", rare), ("most frequent", frequent)):
            parts.append(f"on the {label} bucket (rarer word seen {r['rarer_count_min']:,}–{r['rarer_count_max']:,} "
                         f"times, {r['pairs']} pairs) skip-gram − CBOW = {r['sg_minus_cbow']:+.3f} "
                         f"[{r['diff_low']:.3f}, {r['diff_high']:.3f}]: {_outcome(r['diff_low'], r['diff_high'])}")
        gap, low, high = frequent["rarest_gap_minus_this"], frequent["gap_low"], frequent["gap_high"]
        tail = ""
        if np.isfinite(low):
            beyond = ("beyond the evaluation noise" if low > 0 or high < 0 else "within the evaluation noise")
            tail = (f". Skip-gram's advantage on the rarest bucket minus that on the most frequent one: {gap:+.3f} "
                    f"[{low:.3f}, {high:.3f}], {beyond}")
        lines.append(f"* {name}: " + "; ".join(parts) + tail + ".")
    ratio = speed["cbow"]["words_per_second"] / speed["sg"]["words_per_second"]
    lines.append(f"* Speed, same process and settings: CBOW {speed['cbow']['words_per_second']:,.0f} words/s, "
                 f"skip-gram {speed['sg']['words_per_second']:,.0f} words/s: CBOW is {ratio:.2f}× "
                 f"{'faster' if ratio > 1 else 'as fast' if ratio == 1 else 'slower'} (one measurement each; "
                 "other jobs on the machine add noise to it).")
    outcomes = [f"{r['benchmark']}: {_outcome(r['diff_low'], r['diff_high'])}" for r in rows if r["bucket"] == 1]
    if any("skip-gram better" in o for o in outcomes) and not any("CBOW better" in o for o in outcomes):
        rare_verdict = "supported where the difference exceeds the noise"
    elif any("CBOW better" in o for o in outcomes) and not any("skip-gram better" in o for o in outcomes):
        rare_verdict = "contradicted"
    elif outcomes and all("noise" in o for o in outcomes):
        rare_verdict = "not resolved"
    else:
        rare_verdict = "mixed" if outcomes else "not testable"
    rare_verdict += f" (rarest bucket, {'; '.join(outcomes)})" if outcomes else ""
    gaps = []
    for name in BENCHMARKS.values():
        mine = [r for r in rows if r["benchmark"] == name]
        if len(mine) > 1 and np.isfinite(mine[-1]["gap_low"]):
            low, high = mine[-1]["gap_low"], mine[-1]["gap_high"]
            gaps.append(f"{name}: {'larger on rare pairs' if low > 0 else 'smaller on rare pairs' if high < 0 else 'within noise'}")
    if gaps:
        rare_verdict += (". Whether the advantage is larger on rare than on frequent pairs: "
                         + ("yes" if all("larger" in g for g in gaps) else "not resolved" if all("noise" in g for g in gaps)
                            else "mixed") + f" ({'; '.join(gaps)})")
    lines.append(f"* Verdict, skip-gram is better on rare words: {rare_verdict}. Verdict, CBOW trains faster: "
                 f"{'supported' if ratio > 1 else 'contradicted'} ({ratio:.2f}×).")
    return lines


def markdown(rows, speed, lines, args) -> str:
    head = ("| benchmark | bucket | rarer word's count | pairs | skip-gram ρ | CBOW ρ | skip-gram − CBOW |\n"
            "|---|---:|---:|---:|---:|---:|---:|\n")
    fmt = lambda e, lo, hi, sign="": f"{e:{sign}.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else "n/a"  # noqa: E731
    body = "".join(
        f"| {r['benchmark']} | {r['bucket']} | {r['rarer_count_min']:,}–{r['rarer_count_max']:,} | {r['pairs']} "
        f"| {fmt(r['sg_estimate'], r['sg_low'], r['sg_high'])} | {fmt(r['cbow_estimate'], r['cbow_low'], r['cbow_high'])} "
        f"| {fmt(r['sg_minus_cbow'], r['diff_low'], r['diff_high'], '+')} |\n" for r in rows)
    speed_table = ("| architecture | words/s | training s |\n|---|---:|---:|\n" + "".join(
        f"| {ARCHS[a]} | {s['words_per_second']:,.0f} | {s['train_seconds']:.1f} |\n" for a, s in speed.items()))
    return (f"# Skip-gram against CBOW: rare words and speed\n\n"
            f"Negative sampling, window {args.window}, dim {args.dim}, {args.epochs} epoch(s), seed {args.seed}, "
            f"corpus `{args.corpus}`; each architecture with its default learning rate. Spearman ρ "
            f"[95% percentile bootstrap interval over the bucket's pairs, {args.resamples} resamples]; the "
            "difference is resampled paired on the same pairs.\n\n" + head + body + "\n" + speed_table +
            "\n## Verdicts\n\n" + "\n".join(lines) + "\n")


def plot(path: Path, rows, speed) -> None:
    plt = pyplot()
    benches = list(dict.fromkeys(r["benchmark"] for r in rows))
    mosaic = [benches or ["speed"], ["speed"] * max(len(benches), 1)]
    fig, axd = plt.subplot_mosaic(mosaic, figsize=(10, 7), layout="constrained", height_ratios=[2.2, 1])
    for bench in benches:
        ax = axd[bench]
        mine = [r for r in rows if r["benchmark"] == bench]
        x = np.arange(len(mine))
        for k, (arch, label) in enumerate(ARCHS.items()):
            est = np.array([r[f"{arch}_estimate"] for r in mine])
            err = np.vstack([est - [r[f"{arch}_low"] for r in mine], [r[f"{arch}_high"] for r in mine] - est])
            ax.errorbar(x + (k - 0.5) * 0.15, est, yerr=np.nan_to_num(err), marker="o", capsize=3, lw=1.4,
                        label=label)
        ax.set_xticks(x, [f"{r['rarer_count_min']:,}–{r['rarer_count_max']:,}\n({r['pairs']} pairs)" for r in mine],
                      fontsize=9)
        ax.set_xlabel("corpus count of the pair's rarer word", fontsize=11)
        ax.set_ylabel("Spearman ρ", fontsize=11)
        ax.set_title(bench, fontsize=12)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    ax = axd["speed"]
    labels = [ARCHS[a] for a in speed]
    values = [speed[a]["words_per_second"] / 1000 for a in speed]
    ax.barh(labels, values, color=["C0", "C1"])
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,.0f}k", ha="left", va="center", fontsize=10)
    ax.set_xlim(0, max(values) * 1.15)
    ax.set_xlabel("training words/s (thousands), after the first jitted call", fontsize=11)
    ax.set_title("speed, same process and settings", fontsize=12)
    ax.tick_params(labelsize=10)
    fig.suptitle("skip-gram vs CBOW; error bars: 95% bootstrap intervals over the pairs", fontsize=12)
    save_figure(fig, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        vocab, scored, speed, pairs = run(args)
    except SgJaxError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    rows = buckets(vocab, scored, pairs, args.buckets, args.resamples)
    lines = verdict_lines(rows, speed)
    atomic_write_csv(out / "sg_vs_cbow.csv", rows)
    atomic_write_csv(out / "sg_vs_cbow_speed.csv",
                     [{"arch": a, "words_per_second": round(s["words_per_second"], 1),
                       "train_seconds": round(s["train_seconds"], 2)} for a, s in speed.items()])
    text = markdown(rows, speed, lines, args)
    atomic_write_text(out / "sg_vs_cbow.md", text)
    plot(out / "sg_vs_cbow.png", rows, speed)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
