"""Walks on the device: valid paths, lengths, dead ends, determinism across chunk sizes, disk spill,
and node2vec's transition frequencies against the exact probabilities (chi-square tests).

Significance: every chi-square test below rejects at p < ALPHA = 0.001. Each case draws with its
own fixed seed (cases sharing a seed would share their random numbers, and so their luck), so the
outcome is deterministic; a correct sampler fails one such test with probability 0.001, a sampler
that ignores (p, q) fails it for certain (`test_the_chi_square_test_has_power`).
"""

import collections

import numpy as np
import pytest
from scipy import stats

from sg_jax.errors import ConfigError
from sg_jax.graph.csr import build_csr
from sg_jax.graph.edgelist import from_arrays
from sg_jax.graph.sampler import next_node_counts
from sg_jax.graph.walks import WalkConfig, generate_walks

ALPHA = 1e-3
N_WALKERS = 60_000

# t = 0 comes to v = 1. v's neighbours: 0 (return), 2 and 3 (also neighbours of 0: distance 1),
# 4 and 5 (distance 2). Directed: 3 -> 0 exists but not 0 -> 3, so 3 is at distance 2 from 0.
UNDIRECTED = [(0, 1), (1, 2), (1, 3), (1, 4), (1, 5), (0, 2), (0, 3), (4, 6), (5, 7), (2, 6), (6, 7)]
DIRECTED = [(0, 1), (1, 0), (1, 2), (1, 3), (1, 4), (1, 5), (0, 2), (3, 0), (4, 6), (5, 7), (2, 6), (6, 7),
            (7, 1), (6, 0)]
WEIGHTS = np.array([0.5, 1.0, 3.0, 0.25, 2.0, 1.5, 0.7, 1.0, 2.5, 0.3, 1.2, 0.9, 1.1, 0.6])


def graph(directed, weighted):
    edges = np.array(DIRECTED if directed else UNDIRECTED)
    w = WEIGHTS[: len(edges)] if weighted else None
    return from_arrays(edges[:, 0], edges[:, 1], w, directed=directed)


def exact_next(g, t, v, p, q):
    """node2vec's transition probabilities from v having come from t, computed from the edge list."""
    out = collections.defaultdict(dict)
    for a, b, w in zip(g.src.tolist(), g.dst.tolist(), g.weight.tolist()):
        out[a][b] = w
        if not g.directed:
            out[b][a] = w
    probs = np.zeros(g.n_nodes)
    for x, w in out[v].items():
        probs[x] = w * (1 / p if x == t else 1.0 if x in out[t] else 1 / q)
    return probs / probs.sum()


PQ = [(1.0, 1.0), (0.25, 4.0), (4.0, 0.25), (0.5, 2.0), (2.0, 0.5), (1.0, 3.0)]


@pytest.mark.parametrize("case,directed,weighted", [(0, False, False), (1, False, True), (2, True, False),
                                                    (3, True, True)])
def test_node2vec_transition_frequencies_match_exact_probabilities(case, directed, weighted):
    g = graph(directed, weighted)
    csr = build_csr(g)
    for i, (p, q) in enumerate(PQ):
        counts = next_node_counts(csr, 0, 1, N_WALKERS, WalkConfig("node2vec", p=p, q=q), seed=100 * case + i)
        probs = exact_next(g, 0, 1, p, q)
        support = probs > 0
        assert counts[~support].sum() == 0, "a walker moved along a non-edge"
        assert counts.sum() == N_WALKERS
        result = stats.chisquare(counts[support], probs[support] * N_WALKERS)
        assert result.pvalue > ALPHA, (p, q, counts[support], probs[support] * N_WALKERS)


def test_first_step_and_deepwalk_are_weight_proportional():
    g = graph(False, True)
    csr = build_csr(g)
    w = np.zeros(g.n_nodes)
    for a, b, x in zip(g.src, g.dst, g.weight):
        if 1 in (a, b):
            w[b if a == 1 else a] = x
    for config, prev in ((WalkConfig("deepwalk"), 0), (WalkConfig("node2vec", p=0.25, q=4.0), -1)):
        counts = next_node_counts(csr, prev, 1, N_WALKERS, config, seed=5)
        assert stats.chisquare(counts[w > 0], w[w > 0] / w.sum() * N_WALKERS).pvalue > ALPHA


def test_the_chi_square_test_has_power():
    g = graph(False, False)
    counts = next_node_counts(build_csr(g), 0, 1, N_WALKERS, WalkConfig("node2vec", p=0.5, q=2.0), seed=3)
    first_order = exact_next(g, 0, 1, 1.0, 1.0)
    support = first_order > 0
    assert stats.chisquare(counts[support], first_order[support] * N_WALKERS).pvalue < 1e-12


def test_full_walks_follow_node2vec_at_every_step():
    """Triples (t, v, x) counted over whole walks (the asynchronous loop), at the most visited (t, v)."""
    g = graph(False, False)
    p, q = 0.5, 3.0
    wc = generate_walks(build_csr(g), g.names, WalkConfig("node2vec", p=p, q=q, walks=3000, walk_length=12), seed=1)
    node = np.array([int(w) for w in wc.vocab.words])  # vocabulary id -> graph node
    triples = collections.Counter()
    for s in wc.encoded.sentences():
        s = node[s]
        triples.update(zip(s[:-2].tolist(), s[1:-1].tolist(), s[2:].tolist()))
    pairs = collections.Counter()
    for (t, v, _), c in triples.items():
        pairs[t, v] += c
    for (t, v), total in pairs.most_common(3):
        probs = exact_next(g, t, v, p, q)
        observed = np.array([triples[t, v, x] for x in range(g.n_nodes)])
        support = probs > 0
        assert observed[~support].sum() == 0
        assert stats.chisquare(observed[support], probs[support] * total).pvalue > ALPHA


def check_walks_are_paths(g, wc, length):
    edges = set(zip(g.src.tolist(), g.dst.tolist()))
    if not g.directed:
        edges |= {(b, a) for a, b in edges}
    index = {name: i for i, name in enumerate(g.names)}
    node = np.array([index[w] for w in wc.vocab.words])
    for s in wc.encoded.sentences():
        s = node[s].tolist()
        assert 2 <= len(s) <= length
        assert all((a, b) in edges for a, b in zip(s[:-1], s[1:]))


@pytest.mark.parametrize("method", ["deepwalk", "node2vec"])
def test_walks_are_paths_of_the_requested_length_and_start_at_every_node(method):
    g = from_arrays(np.array(["a", "b", "c", "d", "e"]), np.array(["b", "c", "a", "e", "d"]))
    g = from_arrays(np.r_[g.src, 0], np.r_[g.dst, 5], names=list(g.names) + ["iso"])  # 'iso' linked below
    g = from_arrays(g.src[:-1], g.dst[:-1], names=g.names)  # ...and unlinked: an isolated node
    config = WalkConfig(method, p=0.5 if method == "node2vec" else 1.0, walks=7, walk_length=9)
    wc = generate_walks(build_csr(g), g.names, config, seed=0)
    check_walks_are_paths(g, wc, 9)
    assert np.all(wc.encoded.lengths == 9)
    assert wc.walks_started == 7 * 6 and wc.walks_kept == 7 * 5
    assert wc.unvisited == ["iso"] and "iso" not in wc.vocab
    starts = collections.Counter(wc.vocab.words[s[0]] for s in wc.encoded.sentences())
    assert starts == {name: 7 for name in "abcde"}
    assert wc.vocab.total == wc.encoded.n_tokens
    assert list(wc.vocab.counts) == sorted(wc.vocab.counts, reverse=True)


def test_directed_walks_stop_at_a_dead_end():
    g = from_arrays([0, 1, 2], [1, 2, 3], directed=True)  # a path 0 -> 1 -> 2 -> 3; 3 has no out-edge
    for method in ("deepwalk", "node2vec"):
        wc = generate_walks(build_csr(g), g.names, WalkConfig(method, q=2.0 if method == "node2vec" else 1.0,
                                                              walks=2, walk_length=10), seed=0)
        walks = sorted(tuple(wc.vocab.words[i] for i in s) for s in wc.encoded.sentences())
        assert walks == [("0", "1", "2", "3")] * 2 + [("1", "2", "3")] * 2 + [("2", "3")] * 2
        check_walks_are_paths(g, wc, 10)


@pytest.mark.parametrize("config", [WalkConfig("deepwalk", walks=5, walk_length=6),
                                    WalkConfig("node2vec", p=0.3, q=2.0, walks=5, walk_length=6)])
def test_walks_do_not_depend_on_the_chunk_size_and_spill_to_disk_identically(tmp_path, config):
    import dataclasses

    rng = np.random.default_rng(0)
    g = from_arrays(rng.integers(0, 600, 3000), rng.integers(0, 600, 3000), rng.uniform(0.1, 2, 3000))
    csr = build_csr(g)
    big = generate_walks(csr, g.names, config, seed=4)
    small = generate_walks(csr, g.names, dataclasses.replace(config, chunk_walkers=1024), seed=4)
    disk = generate_walks(csr, g.names, dataclasses.replace(config, chunk_walkers=1024), seed=4,
                          spill_dir=tmp_path / "walks", memory_limit=1000)
    assert disk.on_disk and not big.on_disk
    for other in (small, disk):
        assert other.vocab == big.vocab
        np.testing.assert_array_equal(other.encoded.ids, big.encoded.ids)
        np.testing.assert_array_equal(other.encoded.offsets, big.encoded.offsets)
    again = generate_walks(csr, g.names, config, seed=5)
    assert not np.array_equal(again.encoded.ids[:1000], big.encoded.ids[:1000])


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="node2vec", p=0.0), "p must be a finite number > 0"),
    (dict(method="node2vec", q=-1.0), "q must be a finite number > 0"),
    (dict(method="node2vec", p=float("inf")), "p must be a finite number > 0"),
    (dict(method="deepwalk", p=2.0), "deepwalk takes none"),
    (dict(method="walk"), "method must be one of deepwalk, node2vec"),
    (dict(walk_length=1), "walk length must be >= 2"),
    (dict(walks=0), "walks per node must be >= 1"),
    (dict(chunk_walkers=1000), "multiple of 1024"),
])
def test_bad_walk_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        WalkConfig(**kwargs).validate()


def test_spill_needs_a_directory():
    g = from_arrays([0], [1])
    with pytest.raises(ConfigError, match="give a directory to spill them to"):
        generate_walks(build_csr(g), g.names, WalkConfig(walks=10), seed=0, memory_limit=10)
