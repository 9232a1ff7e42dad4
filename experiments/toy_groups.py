"""Skip-gram on the five-semantic-groups toy corpus: watch the groups form.

The corpus (`toy:groups`, see `sg_jax.toy`) has five groups of eight words (royalty, people,
animals, emotions, movement); a sentence draws its words from one group, with a few filler words
("the", "a", "and") between them. Words of a group share contexts, so skip-gram must pull them
together and push the groups apart.

    python experiments/toy_groups.py
    python experiments/toy_groups.py --epochs 20 --dim 10 --snapshots 0,1,2,5,10,20

Trains once, pausing at the snapshot epochs (same run as one uninterrupted training), and prints

* the nearest neighbours of one word per group, with bars for the cosine similarity;
* per snapshot: mean cosine within groups and between groups, and how many of each word's
  nearest neighbours are in its own group;
* word vector norms against word frequency.

Writes OUT/neighbours.txt, OUT/group_structure.csv, OUT/similarity_heatmap.png (pairwise cosine,
words ordered by group: the block structure), OUT/pca_epochs.png (2-D PCA at each snapshot) and
OUT/norms_vs_frequency.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sg_jax.atomic import atomic_write_csv, atomic_write_text
from sg_jax.errors import SgJaxError
from sg_jax.plots import pyplot, save_figure
from sg_jax.toy import FILLER_WORDS, FIVE_GROUPS, group_of

GROUPS = list(FIVE_GROUPS)
COLOURS = {"royalty": "tab:purple", "people": "tab:blue", "animals": "tab:green", "emotions": "tab:red",
           "movement": "tab:orange", None: "tab:gray"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--objective", choices=["softmax", "ns", "hs"], default="ns")
    p.add_argument("--dim", type=int, default=20, help="embedding dimension (default 20)")
    p.add_argument("--window", type=int, default=2, help="context window (default 2)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    p.add_argument("--snapshots", default=None,
                   help="comma-separated epochs at which to look (default 0,1,2,5 and the last)")
    p.add_argument("--sample", type=float, default=0.0,
                   help="subsampling threshold (default 0: off; with 43 words every word is 'frequent')")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 0.025)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="targets per step (default 64: with 43 words a batch of 1024 holds each word dozens of "
                        "times, and the summed updates of its row make the vectors collapse or diverge)")
    p.add_argument("--sentences", type=int, default=None, help="generate this many sentences instead of 2000")
    p.add_argument("-k", type=int, default=7, help="neighbours to print (default 7 = the rest of a group)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/toy_groups", help="output directory")
    return p.parse_args(argv)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def train_with_snapshots(args, snapshots):
    """Train once; return (vocab, {epoch: w_in copy}, {epoch: loss})."""
    from sg_jax.data.corpus import load_corpus
    from sg_jax.toy import five_groups_corpus
    from sg_jax.train import Config, Position, init_state, make_optimizer, train

    source = "toy:groups" if args.sentences is None else five_groups_corpus(args.sentences, seed=args.seed)
    vocab, enc, _ = load_corpus(source, min_count=1)
    config = Config(objective=args.objective, dim=args.dim, window=args.window, epochs=args.epochs,
                    sample=args.sample, lr=args.lr, batch_size=args.batch_size, min_count=1, share_negatives="none", seed=args.seed).validate()
    state = init_state(config, len(vocab), make_optimizer(config, 1))
    vectors = {0: np.array(state.params.w_in, copy=True)}
    losses = {0: float("nan")}
    position = Position()
    for epoch in sorted(e for e in snapshots if e > 0):
        result = train(config, vocab.words, vocab.counts, enc.ids, enc.offsets, state=state, position=position,
                       until_epoch=epoch)
        state, position = result.state, result.position
        vectors[epoch] = np.array(state.params.w_in, copy=True)  # a copy: the next call donates the buffers
        losses[epoch] = result.final_loss
    return vocab, enc, vectors, losses


def ordered_words(words) -> list[str]:
    """Content words group by group (in FIVE_GROUPS order), then the fillers."""
    present = set(words)
    order = [w for g in GROUPS for w in FIVE_GROUPS[g] if w in present]
    return order + [w for w in FILLER_WORDS if w in present] + [w for w in words if w not in set(order) | set(FILLER_WORDS)]


def group_structure(words, vectors: np.ndarray, k: int) -> dict:
    """Mean cosine within / between groups and neighbour purity over the content words."""
    idx = [i for i, w in enumerate(words) if group_of(w)]
    labels = np.array([group_of(words[i]) for i in idx])
    u = unit(vectors[idx])
    cos = u @ u.T
    same = labels[:, None] == labels[None, :]
    off_diag = ~np.eye(len(idx), dtype=bool)
    np.fill_diagonal(cos, -np.inf)
    top = np.argsort(-cos, axis=1)[:, :k]
    purity = float((labels[top] == labels[:, None]).mean())
    np.fill_diagonal(cos, 1.0)
    return {"within": float(cos[same & off_diag].mean()), "between": float(cos[~same].mean()), "purity": purity}


def neighbours_text(words, vectors, probes, k) -> str:
    from sg_jax.embeddings import Embeddings

    emb = Embeddings(words, vectors)
    lines = []
    for word in probes:
        lines.append(f"{word} ({group_of(word)}):")
        for other, score in emb.most_similar(word, k=k):
            bar = "█" * max(0, round(score * 40))
            mark = "same group" if group_of(other) == group_of(word) else (group_of(other) or "filler")
            lines.append(f"  {other:>10} {score:+.3f} {bar} {mark}")
    return "\n".join(lines)


def plot_heatmap(path, words, vectors, epoch) -> None:
    plt = pyplot()
    order = ordered_words(words)
    index = {w: i for i, w in enumerate(words)}
    u = unit(vectors[[index[w] for w in order]])
    cos = u @ u.T
    fig, ax = plt.subplots(figsize=(9, 8), layout="constrained")
    im = ax.imshow(cos, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(order)), order, rotation=90, fontsize=6)
    ax.set_yticks(range(len(order)), order, fontsize=6)
    edge = 0
    for g in GROUPS:
        edge += sum(1 for w in FIVE_GROUPS[g] if w in index)
        ax.axhline(edge - 0.5, color="k", lw=0.6)
        ax.axvline(edge - 0.5, color="k", lw=0.6)
    ax.set_title(f"pairwise cosine similarity after {epoch} epochs (words ordered by group)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    save_figure(fig, path)


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Project rows of x on their first two principal components; returns (points, variance share)."""
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    share = float((s[:2] ** 2).sum() / max((s**2).sum(), 1e-30))
    return centred @ vt[:2].T, share


def plot_pca(path, words, snapshots: dict) -> None:
    plt = pyplot()
    epochs = sorted(snapshots)
    cols = min(len(epochs), 3)
    rows = -(-len(epochs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 4.0 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(epochs):]:
        ax.set_visible(False)
    for ax, epoch in zip(axes.flat, epochs):
        points, share = pca_2d(unit(snapshots[epoch]))
        for i, w in enumerate(words):
            g = group_of(w)
            ax.scatter(points[i, 0], points[i, 1], s=14, color=COLOURS[g], marker="o" if g else "x")
            ax.annotate(w, points[i], fontsize=5, alpha=0.8, xytext=(2, 2), textcoords="offset points")
        ax.set_title(f"epoch {epoch} (PCs explain {100 * share:.0f}%)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [plt.Line2D([], [], marker="o", ls="", color=COLOURS[g], label=g) for g in GROUPS]
    handles.append(plt.Line2D([], [], marker="x", ls="", color=COLOURS[None], label="filler"))
    axes.flat[0].legend(handles=handles, fontsize=6, loc="best")
    fig.suptitle("2-D PCA of the unit word vectors")
    save_figure(fig, path)


def plot_norms(path, words, counts, vectors, epoch) -> None:
    plt = pyplot()
    norms = np.linalg.norm(vectors, axis=1)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    for g in GROUPS + [None]:
        sel = [i for i, w in enumerate(words) if group_of(w) == g]
        ax.scatter(np.asarray(counts)[sel], norms[sel], s=16, color=COLOURS[g], label=g or "filler",
                   marker="o" if g else "x")
    for i, w in enumerate(words):
        if group_of(w) is None:
            ax.annotate(w, (counts[i], norms[i]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("word frequency (count in the corpus, log scale)")
    ax.set_ylabel("norm of the input vector")
    ax.set_title(f"vector norm against frequency after {epoch} epochs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        snapshots = ([int(x) for x in args.snapshots.split(",") if x.strip()] if args.snapshots
                     else [0, 1, 2, 5, args.epochs])
        snapshots = sorted({e for e in snapshots if 0 <= e <= args.epochs} | {args.epochs})
        out = Path(args.out)
        vocab, enc, vectors, losses = train_with_snapshots(args, snapshots)
        words = list(vocab.words)
        last = max(vectors)
        print(f"toy:groups: {len(words)} words, {enc.n_tokens:,} tokens, {enc.n_sentences:,} sentences; "
              f"{args.objective}, dim {args.dim}, window {args.window}, {args.epochs} epochs\n")
        probes = [FIVE_GROUPS[g][0] for g in GROUPS if FIVE_GROUPS[g][0] in vocab]
        text = neighbours_text(words, vectors[last], probes, args.k)
        print(f"nearest neighbours after {last} epochs (bar: cosine x 40)")
        print(text)

        rows = []
        for epoch in sorted(vectors):
            s = group_structure(words, vectors[epoch], args.k)
            rows.append({"epoch": epoch, "loss": losses[epoch], "cos_within": s["within"],
                         "cos_between": s["between"], "gap": s["within"] - s["between"],
                         f"purity_at_{args.k}": s["purity"]})
        print(f"\ngroup structure (content words; purity = share of the {args.k} nearest neighbours "
              f"in the word's own group, {7 / 39:.2f} by chance for k=7)")
        print(f"{'epoch':>5}  {'loss':>8}  {'cos within':>10}  {'cos between':>11}  {'gap':>6}  {'purity':>6}")
        for r in rows:
            print(f"{r['epoch']:>5}  {r['loss']:>8.4f}  {r['cos_within']:>10.3f}  {r['cos_between']:>11.3f}  "
                  f"{r['gap']:>6.3f}  {r[f'purity_at_{args.k}']:>6.2f}")

        norms = np.linalg.norm(vectors[last], axis=1)
        print(f"\nvector norms after {last} epochs against frequency")
        print(f"{'words':>10}  {'mean count':>10}  {'mean norm':>9}")
        for g in GROUPS + [None]:
            sel = [i for i, w in enumerate(words) if group_of(w) == g]
            if sel:
                print(f"{g or 'fillers':>10}  {np.mean(vocab.counts[sel]):>10.0f}  {np.mean(norms[sel]):>9.3f}")
        content = [i for i, w in enumerate(words) if group_of(w)]
        r = np.corrcoef(np.log(vocab.counts[content]), norms[content])[0, 1]
        print(f"correlation of norm with log frequency over the content words: {r:+.2f}")

        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "neighbours.txt", text + "\n")
        atomic_write_csv(out / "group_structure.csv", rows)
        plot_heatmap(out / "similarity_heatmap.png", words, vectors[last], last)
        plot_pca(out / "pca_epochs.png", words, vectors)
        plot_norms(out / "norms_vs_frequency.png", words, vocab.counts, vectors[last], last)
        print(f"\nwrote {out}/neighbours.txt, group_structure.csv, similarity_heatmap.png, pca_epochs.png, "
              f"norms_vs_frequency.png")
    except (SgJaxError, ValueError) as e:
        print(f"toy_groups: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
