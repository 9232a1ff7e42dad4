"""How many training pairs a context window gives.

A window of size w pairs each target with up to 2w context words inside its sentence, so a corpus
of T tokens gives at most 2wT (target, context) pairs; sentence edges take some away. word2vec's
dynamic window draws the window size b ~ Uniform{1..w} per target, which keeps offset d with
probability (w - d + 1) / w: about (w + 1) T pairs, and it weights near contexts more than far ones.

    python experiments/window_analysis.py                     # bundled Brown corpus, windows 1,2,3,5
    python experiments/window_analysis.py --windows 1,2,3,5,8,10 --corpus text8

Prints the pairs of one textbook sentence for windows 1 and 2, then a table per window: total
pairs, average contexts per word, the 2w ceiling and how much sentence edges cost, and the
expected pairs under the dynamic window. Writes OUT/window_stats.csv, OUT/window_stats.md and
OUT/window_analysis.png.
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
from sg_jax.windows import skipgram_pairs, window_stats


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default="default", help="a text file, 'default' (Brown), 'toy:groups' or 'toy:seeds'")
    p.add_argument("--windows", default="1,2,3,5", help="comma-separated window sizes (default 1,2,3,5)")
    p.add_argument("--min-count", type=int, default=1,
                   help="drop words rarer than this before counting (default 1: every word counts)")
    p.add_argument("--out", default="runs/window_analysis", help="output directory")
    return p.parse_args(argv)


def textbook_example(window_sizes=(1, 2)) -> list[str]:
    """The pairs of "the dog saw a cat" (the first textbook seed sentence) for small windows."""
    sentence = "the dog saw a cat".split()
    ids = np.arange(len(sentence), dtype=np.int32)  # position i holds word i
    lines = [f'pairs of "{" ".join(sentence)}" ({len(sentence)} words):']
    for w in window_sizes:
        pairs = skipgram_pairs(ids, w)
        shown = ", ".join(f"({sentence[t]}, {sentence[c]})" for t, c in pairs)
        lines.append(f"  window {w}: {len(pairs)} pairs = sum over d=1..{w} of 2(L - d): {shown}")
    return lines


def analyse(corpus, windows) -> list[dict]:
    """One row per window for an EncodedCorpus (see the module docstring for the columns)."""
    n_tokens = corpus.n_tokens
    lengths = np.diff(np.asarray(corpus.offsets))
    rows = []
    for stats in window_stats(corpus, windows):
        w = stats["window"]
        ceiling = 2 * w * n_tokens
        rows.append({
            "window": w,
            "pairs": stats["pairs"],
            "avg_contexts": stats["avg_contexts"],
            "ceiling_2w": 2 * w,
            "edge_loss_pct": 100.0 * (1 - stats["pairs"] / ceiling),
            "dynamic_pairs": stats["expected_dynamic_pairs"],
            "dynamic_avg_contexts": stats["expected_dynamic_pairs"] / n_tokens,
            "sentences_shorter_than_window": int((lengths <= w).sum()),
        })
    return rows


def table_text(rows) -> str:
    head = (f"{'window':>6}  {'pairs':>13}  {'contexts/word':>13}  {'2w':>3}  {'edge loss':>9}  "
            f"{'dynamic pairs':>13}  {'dyn. contexts':>13}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['window']:>6}  {r['pairs']:>13,}  {r['avg_contexts']:>13.3f}  {r['ceiling_2w']:>3}  "
                     f"{r['edge_loss_pct']:>8.2f}%  {r['dynamic_pairs']:>13,.0f}  {r['dynamic_avg_contexts']:>13.3f}")
    return "\n".join(lines)


def table_markdown(rows) -> str:
    out = ["| window | pairs | contexts per word | ceiling 2w | lost at sentence edges | expected pairs, "
           "dynamic window | contexts per word, dynamic |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['window']} | {r['pairs']:,} | {r['avg_contexts']:.3f} | {r['ceiling_2w']} | "
                   f"{r['edge_loss_pct']:.2f}% | {r['dynamic_pairs']:,.0f} | {r['dynamic_avg_contexts']:.3f} |")
    return "\n".join(out) + "\n"


def plot(path: Path, rows, n_tokens: int, corpus: str) -> None:
    plt = pyplot()
    w = np.array([r["window"] for r in rows])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    x = np.arange(len(w))
    left.bar(x - 0.2, [r["pairs"] / 1e6 for r in rows], 0.4, label="fixed window")
    left.bar(x + 0.2, [r["dynamic_pairs"] / 1e6 for r in rows], 0.4, label="dynamic window (expected)")
    left.plot(x, 2 * w * n_tokens / 1e6, "k--", marker="o", ms=3, label="ceiling 2wT")
    left.set_xticks(x, [str(v) for v in w])
    left.set_xlabel("window w")
    left.set_ylabel("training pairs (millions)")
    left.set_title(f"pairs in {corpus} (T = {n_tokens:,} tokens)")
    left.legend(fontsize=8)
    right.plot(w, [r["avg_contexts"] for r in rows], marker="o", label="fixed window")
    right.plot(w, [r["dynamic_avg_contexts"] for r in rows], marker="s", label="dynamic window (expected)")
    right.plot(w, 2 * w, "k--", label="2w")
    right.set_xlabel("window w")
    right.set_ylabel("contexts per word")
    right.set_title("average contexts per word")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    save_figure(fig, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        windows = [int(x) for x in args.windows.split(",") if x.strip()]
        out = Path(args.out)
        for line in textbook_example():
            print(line)
        print()
        vocab, enc, _ = load_corpus(args.corpus, min_count=args.min_count)
        print(f"corpus {args.corpus}: {enc.n_tokens:,} tokens in {enc.n_sentences:,} sentences "
              f"(mean length {enc.n_tokens / enc.n_sentences:.1f}), {len(vocab):,} distinct words "
              f"with min_count {args.min_count}")
        rows = analyse(enc, windows)
        print(table_text(rows))
        print("\nA window of w gives at most 2w contexts per word; words near a sentence edge get fewer. "
              "The dynamic window keeps offset d with probability (w - d + 1)/w: about w + 1 contexts.")
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_csv(out / "window_stats.csv", rows)
        atomic_write_text(out / "window_stats.md", table_markdown(rows))
        plot(out / "window_analysis.png", rows, enc.n_tokens, args.corpus)
        print(f"\nwrote {out / 'window_stats.csv'}, {out / 'window_stats.md'} and {out / 'window_analysis.png'}")
    except (SgJaxError, ValueError) as e:
        print(f"window_analysis: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
