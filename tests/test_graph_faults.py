"""Graph inputs at the edges (issue 20, items 2, 3, 6-9 and 21): per-row weight sums, weights beyond
float32, devices and FIFOs as edge lists, sizes too large for memory or disk, node2vec's (p, q)
bounds, NUL bytes and NFC node names.

CLI cases run `python -m sg_jax graph` in a subprocess (with a timeout: a hang fails the test) and
check exit status 2, one line on stderr naming the problem (no warnings, no traceback) and no
output directory. Chi-square tests reject at p < ALPHA = 0.001 with a fixed seed per case, as in
test_graph_walks.py.
"""

import os
import subprocess
import sys
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from sg_jax.errors import ConfigError
from sg_jax.graph import csr as csr_module
from sg_jax.graph.csr import build_csr, row_cumsum
from sg_jax.graph.edgelist import GraphError, from_arrays, from_networkx, read_edgelist, read_labels
from sg_jax.graph.sampler import next_node_counts
from sg_jax.graph.walks import MAX_PROPOSALS, WalkConfig, check_sizes, generate_walks

ROOT = Path(__file__).resolve().parent.parent
ALPHA = 1e-3
N_WALKERS = 40_000
TINY = ["--dim", "8", "--window", "3", "--walks", "2", "--walk-length", "6", "--epochs", "1", "--sample", "0",
        "--quiet", "--no-plot"]


def graph_cli(tmp_path, *argv, timeout=120):
    """(exit status, stderr) of `python -m sg_jax graph ... --out tmp_path/out`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "sg_jax", "graph", *argv, "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env)
    return proc.returncode, proc.stderr


def assert_refused(tmp_path, *argv, message):
    code, err = graph_cli(tmp_path, *argv)
    assert code == 2, err
    assert err.startswith("sg-jax: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert message in err, err
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".sg-jax-walks-*"))  # the spill directory is removed too


def caveman(tmp_path) -> Path:
    """60 nodes in 6 cliques of 10, joined in a ring: a small connected graph."""
    lines = []
    for c in range(6):
        nodes = range(10 * c, 10 * c + 10)
        lines += [f"n{a} n{b}\n" for a in nodes for b in nodes if a < b]
        lines.append(f"n{10 * c} n{(10 * c + 15) % 60}\n")
    path = tmp_path / "g.edges"
    path.write_text("".join(lines))
    return path


# ---------------------------------------------------------------------------------------------
# item 2: each row's running sums from its own weights


def test_a_heavy_edge_leaves_later_rows_their_weights():
    g = from_arrays(["a", "c", "c"], ["b", "d", "e"], [1e20, 1.0, 3.0], directed=True)
    csr = build_csr(g)
    c = g.names.index("c")
    row = slice(csr.indptr[c], csr.indptr[c + 1])
    assert csr.cumw[row].tolist() == [1.0, 4.0]
    assert csr.weights[row].tolist() == [1.0, 3.0]
    # undirected: c's row holds its edges to d and e; the heavy edge is in a's and b's rows only
    u = build_csr(from_arrays(["a", "c", "c"], ["b", "d", "e"], [1e20, 1.0, 3.0]))
    assert u.cumw[u.indptr[c]:u.indptr[c + 1]].tolist() == [1.0, 4.0]


def test_row_sums_are_each_rows_own_cumulative_sum():
    rng = np.random.default_rng(1)
    src, dst = rng.integers(0, 80, 900), rng.integers(0, 80, 900)
    w = 10.0 ** rng.uniform(-6, 20, 900)
    g = from_arrays(src, dst, w, directed=True)
    csr = build_csr(g)  # weights within float32's range: stored as they are
    for v in range(csr.n_nodes):
        mine = g.src == v
        own = g.weight[mine][np.argsort(g.dst[mine])]  # the row's float64 weights, by neighbour id
        a, b = csr.indptr[v], csr.indptr[v + 1]
        np.testing.assert_array_equal(csr.cumw[a:b], np.cumsum(own).astype(np.float32))
        np.testing.assert_array_equal(csr.weights[a:b], own.astype(np.float32))
    got = row_cumsum(np.array([0, 2, 2, 5]), np.array([1e20, 5.0, 1.0, 2.0, 3.0]))
    assert got.tolist() == [1e20, 1e20 + 5.0, 1.0, 3.0, 6.0]


def test_walks_from_a_row_after_a_heavy_edge_follow_its_weights():
    g = from_arrays(["a", "c", "c"], ["b", "d", "e"], [1e20, 1.0, 3.0], directed=True)
    csr = build_csr(g)
    c, d, e = (g.names.index(x) for x in "cde")
    counts = next_node_counts(csr, -1, c, N_WALKERS, WalkConfig("deepwalk"), seed=11)
    assert counts.sum() == N_WALKERS and counts[d] + counts[e] == N_WALKERS
    # the old global sums gave c's row [0, 0]: every walker went to e, which this rejects for certain
    assert stats.chisquare([counts[d], counts[e]], [N_WALKERS / 4, 3 * N_WALKERS / 4]).pvalue > ALPHA


# ---------------------------------------------------------------------------------------------
# item 3: weights beyond float32


def test_weights_that_overflow_float32_are_scaled_exactly_and_walk_by_their_ratios():
    w = np.array([3e38, 1e38, 2e38, 3e38, 3e38])
    g = from_arrays([0, 0, 0, 1, 2], [1, 2, 3, 2, 3], w)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow in a cast or a sum
        csr = build_csr(g)
    assert np.isfinite(csr.weights).all() and np.isfinite(csr.cumw).all()
    # one power of two for every weight and every running sum, exactly
    shift = int(np.round(np.log2(csr.weights[0] / 3e38)))
    assert shift < 0
    row0 = np.array([3e38, 1e38, 2e38])  # node 0's edges to 1, 2, 3
    np.testing.assert_array_equal(csr.weights[:3], np.ldexp(row0, shift).astype(np.float32))
    np.testing.assert_array_equal(csr.cumw[:3], np.ldexp(np.cumsum(row0), shift).astype(np.float32))
    assert set(np.round(np.ldexp(csr.weights.astype(np.float64), -shift) / 1e38, 5)) == {1.0, 2.0, 3.0}
    counts = next_node_counts(csr, -1, 0, N_WALKERS, WalkConfig("deepwalk"), seed=12)
    assert stats.chisquare(counts[1:4], np.array([3, 1, 2]) / 6 * N_WALKERS).pvalue > ALPHA
    # node2vec from 0, having come from 1: to 1 (return, 1/p), 2 (a neighbour of 1: 1), 3 (1/q)
    p, q = 0.5, 2.0
    counts = next_node_counts(csr, 1, 0, N_WALKERS, WalkConfig("node2vec", p=p, q=q), seed=13)
    mass = np.array([3 / p, 1.0, 2 / q])
    assert stats.chisquare(counts[1:4], mass / mass.sum() * N_WALKERS).pvalue > ALPHA


def test_tiny_weights_are_scaled_up_not_lost():
    csr = build_csr(from_arrays([0, 0], [1, 2], [1e-300, 3e-300], directed=True))
    assert csr.weights.min() > 0 and csr.cumw[1] / csr.cumw[0] == pytest.approx(4.0, rel=1e-6)


def test_weights_spanning_more_than_float32_are_refused_naming_the_edges():
    g = from_arrays(["a", "b"], ["b", "c"], [1e308, 1.0])
    with pytest.raises(GraphError, match="span more than float32 can hold: edge b c weighs 1 while node"):
        build_csr(g)
    # a row whose total passes float64's range: refused the same way, no overflow warning on the way
    g = from_arrays(["a", "a", "b"], ["b", "c", "c"], [1e308, 1e308, 1.0], directed=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(GraphError, match="node a's edges weigh more than 1.8e\\+308 together"):
            build_csr(g)


def test_duplicate_weights_summing_past_float64_are_refused(tmp_path):
    path = tmp_path / "g.edges"
    path.write_text("a b 1e308\nb a 1e308\nb c 1\n")
    with pytest.raises(GraphError, match="the duplicates of edge a b have weights that sum beyond float64"):
        read_edgelist(path, weighted=True)


def test_cli_refuses_float32_overflowing_weights_in_one_line(tmp_path):
    (tmp_path / "w.edges").write_text("a b 1e308\nb c 1\nc a 1\n")
    assert_refused(tmp_path, "--edges", "w.edges", "--weighted", *TINY,
                   message="the edge weights span more than float32 can hold: edge ")


def test_cli_trains_on_weights_of_3e38(tmp_path):
    (tmp_path / "w.edges").write_text("a b 3e38\nb c 3e38\nc a 3e38\nc d 3e38\n")
    code, err = graph_cli(tmp_path, "--edges", "w.edges", "--weighted", *TINY)
    assert code == 0, err
    assert "Warning" not in err and "overflow" not in err and "invalid value" not in err, err  # no numpy warning
    assert (tmp_path / "out" / "vectors.txt").read_text().startswith("4 8\n")


# ---------------------------------------------------------------------------------------------
# item 6: devices and FIFOs


def test_cli_refuses_a_device_as_edge_list(tmp_path):
    assert_refused(tmp_path, "--edges", "/dev/zero", *TINY,
                   message="edge list /dev/zero is a character device, not a regular file")


def test_a_fifo_is_refused_before_it_is_opened(tmp_path):
    fifo = tmp_path / "edges.fifo"
    os.mkfifo(fifo)
    with pytest.raises(GraphError, match="edge list .*edges.fifo is a FIFO, not a regular file"):
        read_edgelist(fifo)  # opening it would block: no writer ever comes
    g = from_arrays(["a"], ["b"])
    with pytest.raises(GraphError, match="labels file .*edges.fifo is a FIFO"):
        read_labels(fifo, g)


# ---------------------------------------------------------------------------------------------
# items 7 and 8: sizes


def test_cli_refuses_a_walk_length_whose_chunk_cannot_fit(tmp_path):
    caveman(tmp_path)
    assert_refused(tmp_path, "--edges", "g.edges", *TINY, "--walk-length", "100000000",
                   message="walk length 100,000,000 is too long: a chunk of 1,024 walkers would need")


def test_cli_refuses_walks_larger_than_the_disk(tmp_path):
    caveman(tmp_path)
    # without --quiet: the refusal comes before the progress bar, whose line would join stderr
    code, err = graph_cli(tmp_path, "--edges", "g.edges", "--walks", "1000000000", "--no-plot")
    assert code == 2 and err.count("\n") == 1, err
    assert "the walks are too large: 1,000,000,000 walks per node x 60 nodes x 80 nodes per walk take up to " \
           "19.7 TB" in err
    assert "free on the disk they spill to" in err and "walks per node of this length fit" in err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".sg-jax-walks-*"))


def test_chunks_shrink_to_fit_memory_and_the_limit_is_stated(monkeypatch):
    config = WalkConfig(walks=50, walk_length=1000)
    import sg_jax.graph.walks as walks_module

    assert walks_module.memory_available() >= 1 << 20  # this machine's free memory, in bytes
    walkers, on_disk = check_sizes(config, 100, memory=2 * 12 * 1000 * 2048, memory_limit=1 << 30, spill_dir=None)
    assert walkers == 2048 and not on_disk
    with pytest.raises(ConfigError, match="at most 83 nodes per walk fit"):
        check_sizes(config, 100, memory=2 * 12 * 1024 * 83 + 5, memory_limit=1 << 30, spill_dir=None)
    # a shrunk chunk draws the same walks
    g = from_arrays(np.arange(40), (np.arange(40) + 1) % 40)
    csr = build_csr(g)
    small = WalkConfig(walks=60, walk_length=7)
    want = generate_walks(csr, g.names, small, seed=3)
    monkeypatch.setattr(walks_module, "memory_available", lambda: 2 * 12 * 7 * 1024)  # one BLOCK of walkers
    assert check_sizes(small, 40, memory=walks_module.memory_available(), memory_limit=1 << 30,
                       spill_dir=None)[0] == 1024
    got = generate_walks(csr, g.names, small, seed=3)
    np.testing.assert_array_equal(got.encoded.ids, want.encoded.ids)


def test_walks_over_the_free_disk_are_refused(tmp_path):
    config = WalkConfig(walks=10**12, walk_length=80)
    with pytest.raises(ConfigError, match=r"the walks are too large: 1,000,000,000,000 walks per node x 60 nodes"):
        check_sizes(config, 60, memory=1 << 30, memory_limit=1 << 20, spill_dir=tmp_path / "walks")


# ---------------------------------------------------------------------------------------------
# item 9: node2vec's (p, q)


def test_cli_refuses_unbounded_rejection_at_once(tmp_path):
    caveman(tmp_path)
    assert_refused(tmp_path, "--edges", "g.edges", *TINY, "--method", "node2vec", "--p", "1e300", "--q", "1e-300",
                   message="node2vec with p=1e+300 and q=1e-300 could need more than 1e308 proposals for one step")


@pytest.mark.parametrize("p, q, message", [
    (2000.0, 1.0, r"could need 2,000 proposals for one step \(max\(1, 1/q\) \* max\(1, p, q\)\); at most 1,000"),
    (1.0, 1e-4, "could need 1e\\+04 proposals"),
    (100.0, 0.05, "could need 2,000 proposals"),
    (1e-300, 1.0, "p must be >= 1e-06"),
])
def test_p_and_q_beyond_the_bounds_are_refused(p, q, message):
    with pytest.raises(ConfigError, match=message):
        WalkConfig("node2vec", p=p, q=q).validate()


def test_p_and_q_within_the_bounds_are_accepted():
    for p, q in [(1000.0, 1.0), (1.0, 1e-3), (40.0, 0.05), (1e-6, 1000.0), (0.25, 4.0)]:
        assert WalkConfig("node2vec", p=p, q=q).validate().proposals_bound() <= MAX_PROPOSALS


def exact_next(g, t, v, p, q):
    adj = {}
    for a, b, w in zip(g.src.tolist(), g.dst.tolist(), g.weight.tolist()):
        adj.setdefault(a, {})[b] = w
        adj.setdefault(b, {})[a] = w
    probs = np.zeros(g.n_nodes)
    for x, w in adj[v].items():
        probs[x] = w * (1 / p if x == t else 1.0 if x in adj[t] else 1 / q)
    return probs / probs.sum()


@pytest.mark.parametrize("case, p, q", [(0, 30.0, 1 / 30), (1, 1e-6, 1.0), (2, 1000.0, 1.0)])
def test_node2vec_stays_exact_at_the_bounds(case, p, q):
    """Extreme (p, q) that are accepted finish and sample the exact node2vec probabilities."""
    # t = 0 comes to v = 1; 2 and 3 are neighbours of 0, 4 and 5 are not; 6 is a leaf on 1
    edges = np.array([(0, 1), (1, 2), (1, 3), (1, 4), (1, 5), (0, 2), (0, 3), (4, 6), (5, 7), (2, 6), (6, 7)])
    w = np.array([0.5, 1.0, 3.0, 0.25, 2.0, 1.5, 0.7, 1.0, 2.5, 0.3, 1.2])
    g = from_arrays(edges[:, 0], edges[:, 1], w)
    config = WalkConfig("node2vec", p=p, q=q).validate()
    counts = next_node_counts(build_csr(g), 0, 1, N_WALKERS, config, seed=40 + case)
    probs = exact_next(g, 0, 1, p, q)
    support = probs * N_WALKERS > 5  # cells of expected count <= 5 are pooled
    assert counts[probs == 0].sum() == 0 and counts.sum() == N_WALKERS
    observed = np.append(counts[support], counts[~support].sum())
    expected = np.append(probs[support], probs[~support].sum()) * N_WALKERS
    if expected[-1] == 0:
        observed, expected = observed[:-1], expected[:-1]
    assert stats.chisquare(observed, expected).pvalue > ALPHA, (p, q, observed, expected)


# ---------------------------------------------------------------------------------------------
# item 21: node names


def test_cli_refuses_a_nul_byte_in_a_node_name(tmp_path):
    (tmp_path / "nul.edges").write_bytes(b"a b\nb c\nc\x00x a\n")
    assert_refused(tmp_path, "--edges", "nul.edges", *TINY, message="nul.edges:3: a NUL byte (byte 2 of the line)")


def test_nul_in_names_from_python_is_refused():
    with pytest.raises(GraphError, match="holds a NUL character"):
        from_arrays(["a\x00b", "c"], ["c", "d"])
    with pytest.raises(GraphError, match="holds a NUL character"):
        from_arrays([0], [1], names=["a", "b\x00"])


def test_nfc_and_nfd_spellings_are_one_node(tmp_path):
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    path = tmp_path / "g.edges"
    path.write_text(f"{nfc} b\n{nfd} c\nb c\n", encoding="utf-8")
    g = read_edgelist(path)
    assert g.names == (nfc, "b", "c") and g.n_edges == 3
    labels_path = tmp_path / "labels"
    labels_path.write_text(f"{nfd}\tx\nb\ty\n", encoding="utf-8")
    labels, unknown = read_labels(labels_path, g)
    assert labels == {nfc: "x", "b": "y"} and unknown == 0
    a = from_arrays([nfc, nfd], ["b", "c"])
    assert a.names == (nfc, "b", "c")
    import networkx as nx

    G = nx.Graph([(nfc, "b"), (nfd, "c")])
    with pytest.raises(GraphError, match="two networkx nodes have the same name"):
        from_networkx(G)


def test_cli_writes_one_vector_for_both_spellings(tmp_path):
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    (tmp_path / "g.edges").write_text(f"{nfc} b\n{nfd} c\nb c\n", encoding="utf-8")
    code, err = graph_cli(tmp_path, "--edges", "g.edges", *TINY)
    assert code == 0, err
    rows = (tmp_path / "out" / "vectors.txt").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "3 8" and sorted(r.split()[0] for r in rows[1:]) == sorted([nfc, "b", "c"])


def test_the_module_constants_leave_float32_headroom():
    # 2**TOP_EXPONENT row totals times node2vec's largest factors (1/p <= 1e6, envelope <= 1,000) stay finite
    assert 2.0 ** csr_module.TOP_EXPONENT * (1e6 + MAX_PROPOSALS) < np.finfo(np.float32).max


@pytest.mark.parametrize("extra, message", [
    (["--walk-lengths", "10,100000000"], "walk length 100,000,000 is too long"),
    (["--ps", "1,1e300", "--qs", "1e-300"], "node2vec with p=1 and q=1e-300 could need 1e+300 proposals"),
])
def test_graph_study_refuses_sizes_and_p_q_before_its_first_run(tmp_path, capsys, extra, message):
    from sg_jax.cli import main

    out = tmp_path / "study"
    assert main(["graph-study", "--edges", "karate", "--out", str(out), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sg-jax: error: ") and message in err and err.count("\n") == 1, err
    assert not out.exists()
