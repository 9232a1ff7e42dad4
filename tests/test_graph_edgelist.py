"""Graphs in: edge-list parsing, networkx and arrays, CSR, and every bad input the issue lists."""

import gzip

import networkx as nx
import numpy as np
import pytest

from sg_jax.graph.csr import build_csr, fingerprint
from sg_jax.graph.datasets import bundled
from sg_jax.graph.edgelist import GraphError, from_arrays, from_networkx, read_edgelist, read_labels


def write(tmp_path, text, name="g.edges"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_names_comments_tabs_and_spaces(tmp_path):
    path = write(tmp_path, "# a comment\nlibc6\tpython3-numpy\n\n  g++-12   libc6  # trailing comment\n"
                           "python3-numpy g++-12\n")
    g = read_edgelist(path)
    assert g.names == ("libc6", "python3-numpy", "g++-12")
    assert [(g.names[a], g.names[b]) for a, b in zip(g.src, g.dst)] == [
        ("libc6", "python3-numpy"), ("libc6", "g++-12"), ("python3-numpy", "g++-12")]
    assert g.stats.comments == 2 and g.stats.edges_read == 3 and not g.directed and not g.weighted


def test_self_loops_dropped_and_duplicates_merged_with_summed_weights(tmp_path):
    path = write(tmp_path, "a b 1.5\nb a 2\na a 3\nb c 1\na b 0.5\n")
    g = read_edgelist(path, weighted=True)
    assert g.stats.self_loops == 1 and g.stats.duplicates == 2
    edges = {(g.names[a], g.names[b]): w for a, b, w in zip(g.src, g.dst, g.weight)}
    assert edges == {("a", "b"): 4.0, ("b", "c"): 1.0}
    # directed: b->a is another edge than a->b
    d = read_edgelist(path, weighted=True, directed=True)
    assert d.stats.duplicates == 1 and d.n_edges == 3


def test_unweighted_read_ignores_and_counts_a_third_column(tmp_path):
    g = read_edgelist(write(tmp_path, "a b 7\nb c\n"))
    assert g.stats.ignored_weights == 1 and np.all(g.weight == 1.0)


def test_gzip_edge_list(tmp_path):
    path = tmp_path / "g.edges.gz"
    with gzip.open(path, "wt") as f:
        f.write("x y\ny z\n")
    assert read_edgelist(path).n_edges == 2


@pytest.mark.parametrize("text, flags, message", [
    ("", {}, "no edges (the file is empty"),
    ("# only a comment\n\n", {}, "no edges (the file is empty"),
    ("a b\nlonely\n", {}, ":2: expected 'a b' or 'a b weight', got 1 field"),
    ("a b c d\n", {}, ":1: expected 'a b' or 'a b weight', got 4 field"),
    ("a b heavy\n", {"weighted": True}, ":1: weight 'heavy' is not a number"),
    ("a b -1\n", {"weighted": True}, ":1: weight '-1' must be a finite number > 0"),
    ("a b 0\n", {"weighted": True}, ":1: weight '0' must be a finite number > 0"),
    ("a b nan\n", {"weighted": True}, ":1: weight 'nan' must be a finite number > 0"),
    ("a b 1\nb c\n", {"weighted": True}, ":2: --weighted but the line has no weight"),
    ("a a\nb b\n", {}, "the graph has no edges (2 self-loop(s) dropped)"),
])
def test_bad_edge_lists_are_one_line_errors(tmp_path, text, flags, message):
    with pytest.raises(GraphError) as e:
        read_edgelist(write(tmp_path, text), **flags)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_missing_file_and_invalid_utf8(tmp_path):
    with pytest.raises(GraphError, match="edge list not found"):
        read_edgelist(tmp_path / "nope.edges")
    path = tmp_path / "bad.edges"
    path.write_bytes(b"a b\n\xff\xfe c\n")
    with pytest.raises(GraphError, match=r":2: invalid UTF-8"):
        read_edgelist(path)


def test_labels_unknown_nodes_skipped_and_counted(tmp_path):
    g = read_edgelist(write(tmp_path, "a b\nb c\n"))
    labels, unknown = read_labels(write(tmp_path, "a\tx\nb\ty\nzz\tx\n# c\n", "l.labels"), g)
    assert labels == {"a": "x", "b": "y"} and unknown == 1
    with pytest.raises(GraphError, match="no line names a node of the graph .2 line"):
        read_labels(write(tmp_path, "p\tx\nq\ty\n", "l2.labels"), g)
    with pytest.raises(GraphError, match="node 'a' has two labels"):
        read_labels(write(tmp_path, "a\tx\na\ty\n", "l3.labels"), g)
    with pytest.raises(GraphError, match=":1: expected 'node<TAB>label', got 3"):
        read_labels(write(tmp_path, "a x y\n", "l4.labels"), g)


def test_from_networkx_keeps_isolated_nodes_and_weights():
    G = nx.Graph()
    G.add_weighted_edges_from([(1, 2, 0.5), (2, 3, 2.0)])
    G.add_node(9)
    g = from_networkx(G, weight="weight")
    assert g.names == ("1", "2", "3", "9") and g.isolated() == ["9"] and g.weighted
    assert sorted(g.weight.tolist()) == [0.5, 2.0]
    with pytest.raises(GraphError, match="contains whitespace"):
        from_networkx(nx.relabel_nodes(G, {1: "a node"}))


def test_from_arrays_names_and_bad_weights():
    g = from_arrays(np.array(["a", "b"]), np.array(["b", "c"]))
    assert g.names == ("a", "b", "c")
    with pytest.raises(GraphError, match="weight -2.0 must be a finite number > 0"):
        from_arrays([0, 1], [1, 2], [1.0, -2.0])
    with pytest.raises(GraphError, match="no edges"):
        from_arrays([], [])


def test_csr_rows_sorted_with_row_running_weight_sums():
    g = from_arrays([0, 0, 2, 1], [2, 1, 1, 3], [1.0, 2.0, 3.0, 4.0])
    csr = build_csr(g)
    rows = {v: csr.indices[csr.indptr[v]:csr.indptr[v + 1]].tolist() for v in range(4)}
    assert rows == {0: [1, 2], 1: [0, 2, 3], 2: [0, 1], 3: [1]}
    assert csr.cumw[csr.indptr[1]:csr.indptr[2]].tolist() == [2.0, 5.0, 9.0]  # weights 2, 3, 4 restarted at row 1
    directed = build_csr(from_arrays([0, 0, 2, 1], [2, 1, 1, 3], directed=True))
    assert directed.out_degree().tolist() == [2, 1, 1, 0]


def test_fingerprint_changes_with_edges_weights_and_direction():
    base = from_arrays([0, 1], [1, 2])
    assert fingerprint(base) == fingerprint(from_arrays([0, 1], [1, 2]))
    assert len({fingerprint(base), fingerprint(from_arrays([0, 1], [1, 2], directed=True)),
                fingerprint(from_arrays([0, 1], [1, 2], [1.0, 2.0])), fingerprint(from_arrays([0, 0], [1, 2]))}) == 4


def test_bundled_graphs_match_networkx():
    path, labels, _ = bundled("karate")
    g = read_edgelist(path)
    G = nx.karate_club_graph()
    assert g.n_nodes == 34 and g.n_edges == G.number_of_edges() == 78
    lab, _ = read_labels(labels, g)
    assert sorted(set(lab.values())) == ["MrHi", "Officer"]
    assert all((lab[str(v)] == "MrHi") == (G.nodes[v]["club"] == "Mr. Hi") for v in G.nodes)
    path, _, weighted = bundled("lesmis")
    g = read_edgelist(path, weighted=weighted)
    assert (g.n_nodes, g.n_edges) == (77, 254) and g.weight.sum() == sum(
        d["weight"] for _, _, d in nx.les_miserables_graph().edges(data=True))
