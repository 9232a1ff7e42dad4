"""`sg-jax graph` as a user runs it: outputs, scores, and one-line errors that leave nothing behind."""

import json

import pytest

from sg_jax import formats
from sg_jax.cli import main
from sg_jax.plots import is_png

FAST = ["--dim", "8", "--window", "3", "--walks", "4", "--walk-length", "10", "--epochs", "1", "--quiet"]


def test_graph_command_writes_vectors_scores_and_picture(tmp_path, capsys):
    out = tmp_path / "karate"
    assert main(["graph", "--edges", "karate", "--method", "node2vec", "--p", "0.5", "--q", "2", "--out", str(out),
                 *FAST]) == 0
    printed = capsys.readouterr().out
    assert "micro-F1" in printed and "macro-F1" in printed and "NMI" in printed
    words, vectors = formats.load_word2vec(out / "vectors.txt")
    assert len(words) == 34 and vectors.shape[1] == 8 and "33" in words
    assert is_png(out / "projection.png")
    scores = json.loads((out / "scores.json").read_text())
    assert 0 <= scores["classification"]["micro_f1"] <= 1 and scores["classification"]["n_classes"] == 2
    graph = json.loads((out / "graph.json").read_text())
    assert graph["walk"] == {"method": "node2vec", "p": 0.5, "q": 2.0, "walks": 4, "walk_length": 10}
    # resuming with other walk settings is refused and changes nothing
    before = (out / "vectors.txt").read_bytes()
    assert main(["graph", "--edges", "karate", "--method", "node2vec", "--p", "0.5", "--q", "3", "--out", str(out),
                 "--resume", *FAST]) == 2
    assert "the walk settings differ" in capsys.readouterr().err
    assert (out / "vectors.txt").read_bytes() == before


def test_holdout_edges_reports_link_auc(tmp_path, capsys):
    assert main(["graph", "--edges", "sbm", "--out", str(tmp_path / "o"), "--holdout-edges", "0.1", "--no-plot",
                 *FAST]) == 0
    assert "link prediction: ROC AUC" in capsys.readouterr().out
    assert "link_auc" in json.loads((tmp_path / "o" / "scores.json").read_text())


@pytest.mark.parametrize("edges, extra, message", [
    ("", [], "no edges (the file is empty or holds only comments)"),
    ("a b\nc\n", [], "g.edges:2: expected 'a b' or 'a b weight', got 1 field(s)"),
    ("a b x\n", ["--weighted"], "g.edges:1: weight 'x' is not a number"),
    ("a b -2\n", ["--weighted"], "g.edges:1: weight '-2' must be a finite number > 0"),
    ("a a\n", [], "the graph has no edges (1 self-loop(s) dropped)"),
    ("a b\n", ["--method", "node2vec", "--p", "0"], "p must be a finite number > 0"),
    ("a b\n", ["--method", "node2vec", "--q", "-1"], "q must be a finite number > 0"),
    ("a b\n", ["--labels", "LABELS"], "no line names a node of the graph (1 line(s) name unknown nodes)"),
    ("a b\n", ["--edges", "missing.edges"], "edge list not found"),
    ("a b\nb c\n", ["--labels", "ONECLASS"], "fewer than 2 classes with 2 or more nodes"),
])
def test_bad_inputs_are_one_line_errors_and_leave_no_output(tmp_path, capsys, edges, extra, message):
    (tmp_path / "g.edges").write_text(edges)
    (tmp_path / "LABELS").write_text("zz\tx\n")
    (tmp_path / "ONECLASS").write_text("a\tx\nb\tx\nc\ty\n")
    extra = [str(tmp_path / x) if x in ("LABELS", "ONECLASS", "missing.edges") else x for x in extra]
    out = tmp_path / "out"
    assert main(["graph", "--edges", str(tmp_path / "g.edges"), "--out", str(out), *FAST, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sg-jax: error: ") and message in err and "\n" not in err
    assert not out.exists()
