"""Scores of node embeddings: node classification, link prediction, community recovery.

* Node classification (DeepWalk's and node2vec's protocol): one-vs-rest logistic regression
  (scikit-learn) on L2-normalised vectors, a stratified split of the labelled nodes (half for
  training by default), micro- and macro-F1 on the held-out half. Classes with fewer than 2
  labelled nodes cannot be stratified and are left out (counted); labelled nodes without a vector
  (visited by no walk) are left out (counted).
* Link prediction (node2vec's protocol): `split_edges` holds out a fraction of the edges (never one
  whose removal would leave an endpoint without an edge) and as many node pairs that are not edges;
  embeddings are trained on the rest; a logistic regression (C = 100: the Hadamard features of unit
  vectors are small, and the default C = 1 all but zeroes the weights) on the Hadamard product of
  the two endpoint unit vectors, fitted on the remaining edges and as many other non-edges, scores
  the held-out pairs: ROC AUC.
* Community recovery: k-means (k = the number of communities) on the normalised vectors, and the
  normalised mutual information between the clusters and the planted partition.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from sg_jax.graph.edgelist import Graph, GraphError


LINK_C = 100.0  # Hadamard features of unit vectors are ~1/dim each: the default C = 1 all but zeroes the weights


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclasses.dataclass
class Classification:
    micro_f1: float
    macro_f1: float
    n_train: int
    n_test: int
    n_classes: int
    without_vector: int   # labelled nodes with no vector (visited by no walk), left out
    rare_classes: int     # classes with < 2 labelled nodes, left out
    train_fraction: float

    def summary(self) -> str:
        notes = []
        if self.without_vector:
            notes.append(f"{self.without_vector} labelled node(s) without a vector left out")
        if self.rare_classes:
            notes.append(f"{self.rare_classes} class(es) with < 2 nodes left out")
        return (f"node classification ({self.n_classes} classes, {self.n_train} train / {self.n_test} test): "
                f"micro-F1 {self.micro_f1:.4f}, macro-F1 {self.macro_f1:.4f}"
                + (f" ({'; '.join(notes)})" if notes else ""))


def node_classification(names: Sequence[str], vectors: np.ndarray, labels: Mapping[str, str], *,
                        train_fraction: float = 0.5, seed: int = 0, n_jobs: int | None = None) -> Classification:
    """Micro/macro-F1 of one-vs-rest logistic regression on a stratified split (module docstring)."""
    # heavy: scikit-learn (1.5 s) loads only when a score is asked for
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import train_test_split
    from sklearn.multiclass import OneVsRestClassifier

    if not 0 < train_fraction < 1:
        raise GraphError(f"train fraction must be in (0, 1), got {train_fraction}")
    row = {name: i for i, name in enumerate(names)}
    have = [n for n in labels if n in row]
    without = len(labels) - len(have)
    classes, counts = np.unique([labels[n] for n in have], return_counts=True)
    keep = set(classes[counts >= 2].tolist())
    nodes = [n for n in have if labels[n] in keep]
    if len(keep) < 2:
        raise GraphError(f"node classification needs at least 2 classes with >= 2 labelled, embedded nodes; "
                         f"got {len(keep)}")
    X = _unit(vectors[[row[n] for n in nodes]])
    y = np.array([labels[n] for n in nodes])
    n_test = max(len(keep), round(len(nodes) * (1 - train_fraction)))
    n_train = len(nodes) - n_test
    if n_train < len(keep):
        raise GraphError(f"{len(nodes)} labelled nodes are too few to split {len(keep)} classes stratified")
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=n_test, stratify=y, random_state=seed)
    clf = OneVsRestClassifier(LogisticRegression(max_iter=1000), n_jobs=n_jobs).fit(X_tr, y_tr)
    pred = clf.predict(X_te)
    return Classification(float(f1_score(y_te, pred, average="micro")), float(f1_score(y_te, pred, average="macro")),
                          len(y_tr), len(y_te), len(keep), without, int((counts < 2).sum()), train_fraction)


@dataclasses.dataclass
class EdgeSplit:
    train: Graph             # the graph without the held-out edges (same nodes)
    test_pos: np.ndarray     # int64 [k, 2] held-out edges (node ids of the original graph)
    test_neg: np.ndarray     # int64 [k, 2] node pairs that are not edges


def _non_edges(graph: Graph, k: int, rng: np.random.Generator, exclude: set) -> np.ndarray:
    n = graph.n_nodes
    edges = set(zip(graph.src.tolist(), graph.dst.tolist()))
    if not graph.directed:
        edges |= {(b, a) for a, b in edges}
    out: list[tuple[int, int]] = []
    tries = 0
    while len(out) < k:
        tries += 1
        if tries > 100 * k + 1000:
            raise GraphError(f"cannot find {k} node pairs that are not edges: the graph is too dense")
        a, b = (int(x) for x in rng.integers(0, n, 2))
        if a != b and (a, b) not in edges and (a, b) not in exclude:
            out.append((a, b))
            exclude.add((a, b))
            if not graph.directed:
                exclude.add((b, a))
    return np.array(out, np.int64).reshape(-1, 2)


def split_edges(graph: Graph, fraction: float = 0.1, seed: int = 0) -> EdgeSplit:
    """Hold out `fraction` of the edges (keeping every endpoint's degree >= 1) and as many non-edges."""
    if not 0 < fraction < 1:
        raise GraphError(f"held-out edge fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    k = int(round(graph.n_edges * fraction))
    deg = graph.degrees().copy()
    held = np.zeros(graph.n_edges, bool)
    taken = 0
    for e in rng.permutation(graph.n_edges).tolist():
        if taken >= k:
            break
        a, b = graph.src[e], graph.dst[e]
        if deg[a] > 1 and deg[b] > 1:
            held[e] = True
            deg[a] -= 1
            deg[b] -= 1
            taken += 1
    if taken == 0:
        raise GraphError("no edge can be held out without isolating a node")
    pos = np.stack([graph.src[held], graph.dst[held]], axis=1)
    neg = _non_edges(graph, len(pos), rng, set())
    return EdgeSplit(graph.edge_subset(~held), pos, neg)


def link_prediction_auc(split: EdgeSplit, names: Sequence[str], vectors: np.ndarray, *, seed: int = 0) -> float:
    """ROC AUC of a logistic regression on Hadamard features, fitted on the training graph's edges
    and as many other non-edges, on the held-out edges against the held-out non-edges.
    `names`/`vectors`: the embedding (nodes without a vector get a zero vector)."""
    # heavy: scikit-learn (1.5 s) loads only when a score is asked for
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed + 1)
    row = {name: i for i, name in enumerate(names)}
    full = np.zeros((len(split.train.names), vectors.shape[1]))
    have = [i for i, n in enumerate(split.train.names) if n in row]
    full[have] = _unit(vectors[[row[split.train.names[i]] for i in have]])
    g = split.train
    pick = rng.choice(g.n_edges, size=min(g.n_edges, max(len(split.test_pos), 1000)), replace=False)
    train_pos = np.stack([g.src[pick], g.dst[pick]], axis=1)
    exclude = {tuple(e) for e in split.test_neg.tolist()} | {tuple(e) for e in split.test_pos.tolist()}
    if not g.directed:
        exclude |= {(b, a) for a, b in exclude}
    train_neg = _non_edges(g, len(train_pos), rng, exclude)  # never a held-out edge or non-edge

    def features(pairs):
        return full[pairs[:, 0]] * full[pairs[:, 1]]

    X = np.concatenate([features(train_pos), features(train_neg)])
    y = np.concatenate([np.ones(len(train_pos)), np.zeros(len(train_neg))])
    clf = LogisticRegression(C=LINK_C, max_iter=1000).fit(X, y)
    Xt = np.concatenate([features(split.test_pos), features(split.test_neg)])
    yt = np.concatenate([np.ones(len(split.test_pos)), np.zeros(len(split.test_neg))])
    return float(roc_auc_score(yt, clf.predict_proba(Xt)[:, 1]))


def community_nmi(names: Sequence[str], vectors: np.ndarray, communities: Mapping[str, str], *,
                  seed: int = 0) -> float:
    """NMI between k-means clusters of the unit vectors (k = number of communities) and the partition,
    over the nodes that have both a vector and a community."""
    # heavy: scikit-learn (1.5 s) loads only when a score is asked for
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    row = {name: i for i, name in enumerate(names)}
    nodes = [n for n in communities if n in row]
    truth = [communities[n] for n in nodes]
    k = len(set(truth))
    if k < 2 or len(nodes) <= k:
        raise GraphError(f"community recovery needs >= 2 communities and more nodes than communities; got {k} "
                         f"communities over {len(nodes)} embedded nodes")
    X = _unit(vectors[[row[n] for n in nodes]])
    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(X)
    return float(normalized_mutual_info_score(truth, clusters))


def score_embedding(names, vectors, labels, split=None, *, train_fraction: float = 0.5, seed: int = 0) -> dict:
    """Scores of an embedding: classification and NMI with labels, link AUC with an edge split."""
    scores: dict = {}
    if labels:
        c = node_classification(names, vectors, labels, train_fraction=train_fraction, seed=seed)
        scores["classification"] = c.__dict__ | {"summary": c.summary()}
        scores["nmi"] = community_nmi(names, vectors, labels, seed=seed)
    if split is not None:
        scores["link_auc"] = link_prediction_auc(split, names, vectors, seed=seed)
        scores["held_out_edges"] = int(len(split.test_pos))
    return scores
