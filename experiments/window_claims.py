"""Does window size trade syntactic for topical similarity? A test of the textbook claim.

The claim: a small window sees a word's immediate neighbours, which share its grammatical role,
so it favours syntactic similarity; a large window sees the topic of the passage, so it favours
topical (semantic) relatedness. Measured here on two pairs of benchmarks that separate the two:

* the Google analogies' syntactic sections (gram1-gram9: plurals, tenses, comparatives, ...)
  against its semantic ones (capitals, currencies, family, ...);
* SimLex-999 (similarity: "coast"–"shore" high, "clothes"–"closet" low) against WordSim-353
  (relatedness: both high).

    python experiments/window_claims.py                          # windows 1,2,5,10; about 4 min
    python experiments/window_claims.py --windows 1,3,8 --seeds 0,1 --epochs 2

One skip-gram model per window (and seed) on the same corpus; every score comes with a
percentile bootstrap interval over the benchmark's items, and the smallest and largest windows
are compared paired on the same items. Writes OUT/window_claims.csv, .md and .png. SimLex-999
is read from the installed gensim (see sg_jax/data/README.md).
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
from sg_jax.plots import interval_panels
from sg_jax.study import compare, stats
from sg_jax.train import Config, train

METRICS = {  # metric -> (label, scale, digits, unit)
    "syntactic": ("syntactic analogies (%)", 100, 1, " pts"),
    "semantic": ("semantic analogies (%)", 100, 1, " pts"),
    "simlex": ("SimLex-999 ρ (similarity)", 1, 3, ""),
    "wordsim": ("WordSim-353 ρ (relatedness)", 1, 3, ""),
}
# (metric, the window the claim says should score higher: "small" or "large")
PREDICTIONS = [("syntactic", "small"), ("semantic", "large"), ("simlex", "small"), ("wordsim", "large")]


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default="default", help="a text file, 'default' (Brown) or 'toy:groups'")
    p.add_argument("--windows", type=int_list, default=[1, 2, 5, 10], help="comma-separated (default 1,2,5,10)")
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seeds", type=int_list, default=[0], help="comma-separated; several give mean ± std")
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--resamples", type=int, default=stats.N_RESAMPLES, help="bootstrap resamples")
    p.add_argument("--out", default="runs/window_claims", help="output directory")
    return p.parse_args(argv)


def run(args, log=print) -> dict[int, list[dict[str, compare.Items]]]:
    """window -> one {metric: Items} per seed."""
    vocab, enc, _ = load_corpus(args.corpus, min_count=args.min_count)
    log(f"corpus {args.corpus}: {len(vocab):,} words, {enc.n_tokens:,} tokens")
    scored: dict[int, list] = {}
    for window in args.windows:
        for seed in args.seeds:
            config = Config(window=window, dim=args.dim, epochs=args.epochs, min_count=args.min_count, seed=seed)
            result = train(config, vocab.words, vocab.counts, enc.ids, enc.offsets)
            scored.setdefault(window, []).append(compare.evaluate_all(Embeddings(vocab.words, result.vectors())))
            log(f"window {window} seed {seed}: trained in {result.seconds:.1f} s")
    return scored


def table(scored, resamples: int) -> list[dict]:
    rows = []
    for window, runs in scored.items():
        row = {"window": window, "seeds": len(runs)}
        for metric, (_, scale, digits, _) in METRICS.items():
            ci = compare.cell([r[metric] for r in runs], n_resamples=resamples)
            per_seed = [compare.interval(r[metric], n_resamples=0).estimate * scale for r in runs] \
                if len(runs) > 1 else []
            _, std, _ = stats.seed_mean_std(per_seed)
            row.update({metric: round(ci.estimate * scale, digits + 2), f"{metric}_low": round(ci.low * scale, digits + 2),
                        f"{metric}_high": round(ci.high * scale, digits + 2),
                        f"{metric}_seed_std": "" if not np.isfinite(std) else round(std, digits + 2),
                        f"{metric}_items": ci.n_items})
        rows.append(row)
    return rows


def verdicts(scored, resamples: int) -> tuple[list[dict], list[str]]:
    """The paired difference (claimed-better window − the other) per metric, and sentences."""
    small, large = min(scored), max(scored)
    diffs, lines = [], []
    for metric, favoured in PREDICTIONS:
        label, scale, digits, unit = METRICS[metric]
        better, worse = (small, large) if favoured == "small" else (large, small)
        diff = compare.paired([r[metric] for r in scored[better]], [r[metric] for r in scored[worse]],
                              n_resamples=resamples)
        if not np.isfinite(diff.low):
            outcome = "not testable (no items)"
        elif diff.low > 0:
            outcome = "supported"
        elif diff.high < 0:
            outcome = "contradicted"
        else:
            outcome = "not resolved: the difference is within evaluation noise"
        sentence = compare.verdict(diff, label.split(" (")[0] if "ρ" in label else label.replace(" (%)", ""),
                                   f"window {better}", f"window {worse}", scale=scale, digits=digits, unit=unit)
        lines.append(f"* Claim: window {better} scores higher than window {worse} on {label.split(' (')[0]}. "
                     f"Measured: {sentence}. Verdict: {outcome}.")
        diffs.append({"metric": metric, "claimed_better": better, "other": worse,
                      "difference": round(diff.estimate * scale, digits + 2), "low": round(diff.low * scale, digits + 2),
                      "high": round(diff.high * scale, digits + 2), "items": diff.n_items, "verdict": outcome})
    return diffs, lines


def markdown(rows, diffs, lines, args) -> str:
    head = "| window | " + " | ".join(METRICS[m][0] for m in METRICS) + " |\n|---:|" + "---:|" * len(METRICS) + "\n"
    body = ""
    for row in rows:
        cells = []
        for metric, (_, _, digits, _) in METRICS.items():
            text = f"{row[metric]:.{digits}f} [{row[f'{metric}_low']:.{digits}f}, {row[f'{metric}_high']:.{digits}f}]" \
                if np.isfinite(row[metric]) else "n/a"
            if row[f"{metric}_seed_std"] != "":
                text += f" (seed std {row[f'{metric}_seed_std']:.{digits}f})"
            cells.append(text)
        body += f"| {row['window']} | " + " | ".join(cells) + " |\n"
    items = ", ".join(f"{METRICS[m][0].split(' (')[0]} {rows[0][f'{m}_items']}" for m in METRICS)
    return (f"# Window size: syntactic against topical similarity\n\n"
            f"Skip-gram, negative sampling, dim {args.dim}, {args.epochs} epoch(s), seeds "
            f"{', '.join(map(str, args.seeds))}, corpus `{args.corpus}`. Estimate [95% percentile bootstrap "
            f"interval over the benchmark items, {args.resamples} resamples, seed {stats.SEED}]; items scored: {items}.\n\n"
            + head + body + "\n## Verdicts (paired bootstrap over the same items)\n\n" + "\n".join(lines) + "\n")


def plot(path: Path, rows) -> None:
    windows = [r["window"] for r in rows]

    def line(metric):
        return tuple(np.array([r[k] for r in rows], float) for k in (metric, f"{metric}_low", f"{metric}_high"))

    interval_panels(path, [
        {"title": "Google analogies by section group", "ylabel": "accuracy (%)",
         "lines": {"syntactic": line("syntactic"), "semantic": line("semantic")}},
        {"title": "similarity vs relatedness", "ylabel": "Spearman ρ",
         "lines": {"SimLex-999 (similarity)": line("simlex"), "WordSim-353 (relatedness)": line("wordsim")}},
    ], windows, x_label="window", title="error bars: 95% bootstrap intervals over the benchmark items")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        scored = run(args)
    except SgJaxError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    rows = table(scored, args.resamples)
    diffs, lines = verdicts(scored, args.resamples)
    atomic_write_csv(out / "window_claims.csv", rows)
    atomic_write_csv(out / "window_claims_differences.csv", diffs)
    text = markdown(rows, diffs, lines, args)
    atomic_write_text(out / "window_claims.md", text)
    plot(out / "window_claims.png", rows)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
