"""The textbook experiment scripts: their helpers on known inputs, and each script end to end on a
tiny setting (the outputs exist, the PNGs are PNGs, the tables hold what the library says)."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from sg_jax.data.corpus import load_corpus
from sg_jax.plots import is_png
from sg_jax.toy import FIVE_GROUPS

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"experiment_{name}", EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- window analysis


def test_window_analysis_counts_by_hand():
    wa = load("window_analysis")
    _, enc, _ = load_corpus("toy:seeds")  # three sentences of five words
    rows = wa.analyse(enc, [1, 2])
    # a sentence of L words gives sum_{d=1..w} 2 (L - d) pairs: 8 for w=1, 8 + 6 = 14 for w=2
    assert [r["pairs"] for r in rows] == [3 * 8, 3 * 14]
    assert rows[0]["avg_contexts"] == pytest.approx(24 / 15)
    assert rows[1]["edge_loss_pct"] == pytest.approx(100 * (1 - 42 / (2 * 2 * 15)))
    # dynamic window: offset 1 always, offset 2 with probability 1/2 -> 3 * (8 + 6 / 2)
    assert rows[1]["dynamic_pairs"] == pytest.approx(3 * 11)
    assert "window 2: 14 pairs" in "\n".join(wa.textbook_example())


def test_window_analysis_script(tmp_path, capsys):
    wa = load("window_analysis")
    assert wa.main(["--corpus", "toy:groups", "--windows", "1,2,3", "--out", str(tmp_path)]) == 0
    assert "contexts/word" in capsys.readouterr().out
    rows = read_csv(tmp_path / "window_stats.csv")
    assert [int(r["window"]) for r in rows] == [1, 2, 3]
    assert is_png(tmp_path / "window_analysis.png") and (tmp_path / "window_stats.md").exists()


# --------------------------------------------------------------------------- softmax cost


def test_softmax_cost_helpers():
    sc = load("softmax_cost")
    counts = sc.zipf_counts(1000)
    assert counts.shape == (1000,) and counts.min() >= 1 and np.all(np.diff(counts) <= 0)
    xs = np.array([1e3, 1e4, 1e5])
    assert sc.slope(xs, 3 * xs) == pytest.approx(1.0)
    assert sc.slope(xs, np.full(3, 2.0)) == pytest.approx(0.0, abs=1e-12)


def test_softmax_cost_script(tmp_path, capsys):
    sc = load("softmax_cost")
    argv = ["--vocab-sizes", "50,200", "--batch", "8", "--dim", "8", "--repeats", "2", "--min-seconds", "0",
            "--out", str(tmp_path)]
    assert sc.main(argv) == 0
    assert "log-log slope" in capsys.readouterr().out
    rows = read_csv(tmp_path / "softmax_cost.csv")
    assert {(r["objective"], int(r["V"])) for r in rows} == {(o, v) for o in ("softmax", "ns", "hs") for v in (50, 200)}
    for r in rows:
        assert float(r["ms_per_step"]) > 0 and math.isfinite(float(r["loss_per_pair"]))
    assert is_png(tmp_path / "softmax_cost.png")


# --------------------------------------------------------------------------- toy groups


def test_group_structure_of_perfect_groups():
    tg = load("toy_groups")
    words = [w for g in FIVE_GROUPS.values() for w in g] + ["the"]
    centres = np.eye(6)[:5] * 3
    rng = np.random.default_rng(0)
    vectors = np.stack([centres[i // 8] + 0.1 * rng.normal(size=6) for i in range(40)] + [np.ones(6)])
    s = tg.group_structure(words, vectors, k=7)
    assert s["purity"] == 1.0 and s["within"] > 0.9 and abs(s["between"]) < 0.1
    assert tg.ordered_words(list(reversed(words)))[:8] == FIVE_GROUPS["royalty"]
    points, share = tg.pca_2d(np.array([[0.0, 0, 0], [2, 0, 0], [0, 1, 0], [0, -1, 0]]))
    assert share == pytest.approx(1.0) and points.shape == (4, 2)


def test_toy_groups_script(tmp_path, capsys):
    tg = load("toy_groups")
    argv = ["--epochs", "2", "--snapshots", "0,1,2", "--sentences", "300", "--dim", "8", "--out", str(tmp_path)]
    assert tg.main(argv) == 0
    out = capsys.readouterr().out
    assert "king (royalty)" in out and "█" in out
    assert [int(r["epoch"]) for r in read_csv(tmp_path / "group_structure.csv")] == [0, 1, 2]
    for name in ("similarity_heatmap.png", "pca_epochs.png", "norms_vs_frequency.png"):
        assert is_png(tmp_path / name), name


# --------------------------------------------------------------------------- dot products


def test_auc_matches_brute_force():
    dp = load("dot_products")
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(0.5, 1, 40).round(1), rng.normal(0, 1, 30).round(1)  # rounding makes ties
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert dp.auc(pos, neg) == pytest.approx(brute)
    assert dp.auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0


def test_sampled_pairs_are_and_are_not_contexts():
    from sg_jax.windows import skipgram_pairs

    dp = load("dot_products")
    vocab, enc, _ = load_corpus("toy:groups", min_count=1)
    context, non_context, optimum = dp.sample_pairs(enc, vocab.counts, 2, 500, np.random.default_rng(0))
    seen = {tuple(p) for p in skipgram_pairs(enc, 2).tolist()}
    assert len(context) == 500 and all(tuple(p) in seen for p in context.tolist())
    assert len(non_context) > 0 and not any(tuple(p) in seen for p in non_context.tolist())
    assert optimum.shape == (500,) and np.all(np.isfinite(optimum))


def test_dot_products_script(tmp_path, capsys):
    dp = load("dot_products")
    assert dp.main(["--epochs", "2", "--pairs", "2000", "--dim", "8", "--out", str(tmp_path)]) == 0
    assert "shifted PMI" in capsys.readouterr().out
    rows = read_csv(tmp_path / "dot_products.csv")
    assert [(r["stage"], r["pairs"]) for r in rows] == [("before", "context"), ("before", "non-context"),
                                                        ("after", "context"), ("after", "non-context")]
    assert float(rows[2]["auc"]) > 0.9 > float(rows[0]["auc"])  # training separates the two kinds
    assert is_png(tmp_path / "dot_products.png")


# --------------------------------------------------------------------------- the textbook claims


def test_window_claims_script(tmp_path, capsys):
    wc = load("window_claims")
    assert wc.main(["--corpus", "toy:groups", "--windows", "1,3", "--dim", "8", "--epochs", "1",
                    "--resamples", "50", "--out", str(tmp_path)]) == 0
    rows = read_csv(tmp_path / "window_claims.csv")
    assert [int(r["window"]) for r in rows] == [1, 3]
    for r in rows:  # each estimate lies inside its interval (or is undefined)
        for metric in wc.METRICS:
            if r[metric] != "nan":
                assert float(r[f"{metric}_low"]) <= float(r[metric]) <= float(r[f"{metric}_high"])
    diffs = read_csv(tmp_path / "window_claims_differences.csv")
    assert [d["metric"] for d in diffs] == [m for m, _ in wc.PREDICTIONS]
    text = (tmp_path / "window_claims.md").read_text()
    assert text.count("Verdict:") == len(wc.PREDICTIONS) and is_png(tmp_path / "window_claims.png")


def test_sg_vs_cbow_buckets_by_the_rarer_word():
    sc = load("sg_vs_cbow")
    counts = np.array([1, 2, 3, 4, 5, 6])
    edges = sc.bucket_edges(counts, 3)
    assert edges[0] == 1 and edges[-1] == 6 and len(edges) == 4
    vocab = type("V", (), {"words": ("The", "cat", "dog"), "counts": np.array([9, 4, 2])})()
    from sg_jax.study.compare import Items
    items = Items("spearman", np.array([0, 1]), np.zeros(2), np.zeros(2))
    pairs = [("the", "cat", 1.0), ("cat", "dog", 2.0)]
    assert sc.rarer_counts(pairs, items, vocab).tolist() == [4, 2]


def test_sg_vs_cbow_script(tmp_path):
    sc = load("sg_vs_cbow")
    assert sc.main(["--corpus", "toy:groups", "--dim", "8", "--epochs", "1", "--buckets", "2", "--resamples", "50",
                    "--out", str(tmp_path)]) == 0
    rows = read_csv(tmp_path / "sg_vs_cbow.csv")
    assert {r["benchmark"] for r in rows} <= {"WordSim-353", "SimLex-999"} and rows
    speed = read_csv(tmp_path / "sg_vs_cbow_speed.csv")
    assert [r["arch"] for r in speed] == ["sg", "cbow"] and all(float(r["words_per_second"]) > 0 for r in speed)
    assert "CBOW trains faster" in (tmp_path / "sg_vs_cbow.md").read_text() and is_png(tmp_path / "sg_vs_cbow.png")


def test_norm_frequency_statistics_on_known_data():
    nf = load("norm_frequency")
    counts = np.arange(1.0, 101.0)
    corr = nf.correlations(np.sqrt(counts), counts, resamples=50)  # norms strictly rise with count
    assert corr[0]["spearman"] == 1.0 and corr[0]["n"] == 100 and corr[2]["count_max"] == 100
    bins = nf.binned(np.sqrt(counts), counts, 2)
    assert sum(b["words"] for b in bins) == 100 and bins[0]["norm_median"] < bins[1]["norm_median"]
    assert "supported" in nf.verdict_lines(corr, bins, 2)[-1]


def test_norm_frequency_script(tmp_path):
    nf = load("norm_frequency")
    assert nf.main(["--corpus", "toy:groups", "--dim", "8", "--epochs", "1", "--resamples", "50", "--bins", "4",
                    "--out", str(tmp_path)]) == 0
    assert len(read_csv(tmp_path / "norm_frequency_spearman.csv")) in (4, 5)  # 5 when a peak precedes the top bin
    assert "Verdict" in (tmp_path / "norm_frequency.md").read_text() and is_png(tmp_path / "norm_frequency.png")
