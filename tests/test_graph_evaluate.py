"""The scorers on inputs whose answers are known without any training."""

import numpy as np
import pytest

from sg_jax.graph.edgelist import GraphError, from_arrays
from sg_jax.graph.evaluate import community_nmi, node_classification, split_edges


def blobs(n_per=40, classes=3, dim=8, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    names = [f"v{i}" for i in range(n_per * classes)]
    labels = {n: f"c{i % classes}" for i, n in enumerate(names)}
    vectors = np.stack([centres[i % classes] + spread * rng.normal(size=dim) for i in range(len(names))])
    return names, vectors, labels


def test_separable_classes_score_one_and_shuffled_labels_score_chance():
    names, vectors, labels = blobs()
    c = node_classification(names, vectors, labels, seed=0)
    assert c.micro_f1 == 1.0 and c.macro_f1 == 1.0 and c.n_classes == 3 and c.n_train + c.n_test == 120
    assert community_nmi(names, vectors, labels) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    shuffled = dict(zip(labels, rng.permutation(list(labels.values()))))
    assert node_classification(names, vectors, shuffled, seed=0).micro_f1 < 0.6
    assert community_nmi(names, vectors, shuffled) < 0.1


def test_stratified_split_and_what_is_left_out():
    names, vectors, labels = blobs()
    labels = dict(labels, ghost="c0")  # a node without a vector
    labels[names[0]] = "c9"  # a class of one node
    c = node_classification(names, vectors, labels, train_fraction=0.25, seed=0)
    assert c.rare_classes == 1 and c.without_vector == 1 and c.n_train == 30 and c.n_test == 89
    assert "1 labelled node(s) without a vector left out" in c.summary()
    with pytest.raises(GraphError, match="at least 2 classes"):
        node_classification(names, vectors, {n: "same" for n in names})


def test_split_edges_holds_out_edges_and_non_edges_without_isolating_nodes():
    rng = np.random.default_rng(0)
    g = from_arrays(rng.integers(0, 50, 300), rng.integers(0, 50, 300))
    split = split_edges(g, 0.2, seed=3)
    edges = set(zip(g.src.tolist(), g.dst.tolist()))
    edges |= {(b, a) for a, b in edges}
    assert all(tuple(e) in edges for e in split.test_pos.tolist())
    assert not any(tuple(e) in edges or e[0] == e[1] for e in split.test_neg.tolist())
    assert len(split.test_pos) == len(split.test_neg) == round(0.2 * g.n_edges)
    assert (split.train.degrees() > 0).sum() == (g.degrees() > 0).sum()
    with pytest.raises(GraphError, match="no edge can be held out"):
        split_edges(from_arrays([0], [1]), 0.5)
