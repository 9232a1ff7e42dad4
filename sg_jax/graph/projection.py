"""A 2-D picture of node embeddings, coloured by label (PNG, written atomically).

Unit vectors are projected with t-SNE (scikit-learn, fixed seed) up to `TSNE_MAX` nodes and with
PCA beyond (t-SNE costs minutes on tens of thousands of points); the title says which. Up to ten
most frequent labels get their own colour, the others and unlabelled nodes are grey.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from sg_jax.plots import pyplot, save_figure

TSNE_MAX = 3000
MAX_COLOURS = 10


def project_2d(vectors: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """[V, 2] coordinates of the unit vectors and the method's name."""
    x = np.asarray(vectors, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if 4 <= len(x) <= TSNE_MAX:
        from sklearn.manifold import TSNE  # heavy: scikit-learn loads only for a t-SNE projection

        perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x), "t-SNE"
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T, "PCA"


def plot_projection(path, names: Sequence[str], vectors: np.ndarray, labels: Mapping[str, str] | None = None, *,
                    title: str = "node embeddings", seed: int = 0) -> str:
    """Write the picture to `path`; returns the projection's name."""
    xy, method = project_2d(vectors, seed)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 6), layout="constrained")
    labels = labels or {}
    lab = np.array([labels.get(n, "") for n in names], dtype=object)
    values, counts = np.unique(lab[lab != ""].astype(str), return_counts=True)
    top = [v for _, v in sorted(zip(-counts, values))][:MAX_COLOURS]
    size = max(4.0, min(40.0, 4000.0 / max(len(names), 1)))
    rest = ~np.isin(lab, top)
    if rest.any():
        ax.scatter(xy[rest, 0], xy[rest, 1], s=size, c="lightgrey", label="other / unlabelled" if top else None,
                   linewidths=0)
    cmap = plt.get_cmap("tab10")
    for i, value in enumerate(top):
        sel = lab == value
        ax.scatter(xy[sel, 0], xy[sel, 1], s=size, color=cmap(i), label=f"{value} ({int(sel.sum())})", linewidths=0)
    if len(names) <= 60:
        for (x, y), n in zip(xy, names):
            ax.annotate(n, (x, y), fontsize=6, alpha=0.7)
    if top:
        ax.legend(fontsize=7, markerscale=max(1.0, 12.0 / size), loc="best")
    ax.set_title(f"{title} ({method} of {len(names):,} unit vectors)")
    ax.set_xticks([])
    ax.set_yticks([])
    save_figure(fig, path)
    return method
