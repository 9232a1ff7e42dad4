"""Benchmark loaders and scorers: bundled files, hand-built embeddings with exact expected scores."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sg_jax.evaluation import (
    GOOGLE_ANALOGIES,
    WORDSIM353,
    AnalogyResult,
    SimilarityResult,
    evaluate_analogies,
    evaluate_similarity,
    format_table,
    load_analogies,
    load_similarity_pairs,
    pearson,
    rankdata,
    spearman,
)
from sg_jax.embeddings import Embeddings
from sg_jax.errors import ConfigError, FormatError

# ----------------------------------------------------------------------------- loaders


def test_bundled_wordsim353():
    pairs = load_similarity_pairs()
    assert len(pairs) == 353
    assert pairs[0] == ("love", "sex", 6.77)
    assert ("tiger", "tiger", 10.0) in pairs
    assert load_similarity_pairs(WORDSIM353) == pairs


def test_bundled_google_analogies():
    sections = load_analogies()
    assert len(sections) == 14 and sum(len(q) for q in sections.values()) == 19544
    assert list(sections)[0] == "capital-common-countries"
    assert sections["capital-common-countries"][0] == ("Athens", "Greece", "Baghdad", "Iraq")
    assert sum(1 for name in sections if name.startswith("gram")) == 9
    assert load_analogies(GOOGLE_ANALOGIES) == sections


def test_similarity_file_formats(tmp_path):
    (tmp_path / "pairs.txt").write_text(
        "# a comment\nWord 1\tWord 2\t5\n\ncat   dog 7.5\nnew york\tcity\t8\n  car auto  2e0  \n", encoding="utf-8"
    )
    assert load_similarity_pairs(tmp_path / "pairs.txt") == [
        ("Word 1", "Word 2", 5.0), ("cat", "dog", 7.5), ("new york", "city", 8.0), ("car", "auto", 2.0)
    ]


@pytest.mark.parametrize(
    "text,message",
    [
        ("a b 1\na b\n", r"line 2: expected 'word1 word2 score', got 'a b'"),
        ("# c\na b high\n", r"line 2: expected 'word1 word2 score', got 'a b high'"),
        ("a b c 1\n", r"line 1: expected 'word1 word2 score'"),
        ("a\t\t1\n", r"line 1: expected 'word1 word2 score'"),
        ("a b nan\n", r"line 1: expected"),
        ("# only comments\n\n", r"holds no word pairs"),
    ],
)
def test_similarity_file_refusals(tmp_path, text, message):
    (tmp_path / "p.txt").write_text(text, encoding="utf-8")
    with pytest.raises(FormatError, match=message):
        load_similarity_pairs(tmp_path / "p.txt")


def test_loader_refuses_missing_and_non_utf8(tmp_path):
    with pytest.raises(FormatError, match=r"similarity file .*nope\.txt does not exist"):
        load_similarity_pairs(tmp_path / "nope.txt")
    with pytest.raises(FormatError, match=r"analogy file .*nope\.txt does not exist"):
        load_analogies(tmp_path / "nope.txt")
    (tmp_path / "bad.txt").write_bytes(b": s\na b c d\n\xff b c d\n")
    with pytest.raises(FormatError, match=r"bad\.txt line 3: not valid UTF-8"):
        load_analogies(tmp_path / "bad.txt")


@pytest.mark.parametrize(
    "text,message",
    [
        ("a b c d\n", r"line 1: question before the first ': section' line"),
        (": s\na b c\n", r"line 2: expected 4 words, got 3"),
        (": s\na b c d e\n", r"line 2: expected 4 words, got 5"),
        (":\na b c d\n", r"line 1: empty section name"),
        (": s\n\n", r"holds no questions"),
    ],
)
def test_analogy_file_refusals(tmp_path, text, message):
    (tmp_path / "q.txt").write_text(text, encoding="utf-8")
    with pytest.raises(FormatError, match=message):
        load_analogies(tmp_path / "q.txt")


# ----------------------------------------------------------------------------- statistics


def test_rankdata_averages_ties():
    np.testing.assert_array_equal(rankdata([10, 20, 10, 30, 20, 20]), [1.5, 4, 1.5, 6, 4, 4])
    assert rankdata([]).shape == (0,)


def test_correlation_edge_cases():
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(pearson([1], [2])) and math.isnan(spearman([1, 1, 1], [1, 2, 3]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(-3, 3)), min_size=3, max_size=40))
def test_spearman_and_pearson_match_scipy(pairs):
    stats = pytest.importorskip("scipy.stats")
    x, y = np.array(pairs, np.float64).T
    np.testing.assert_allclose(rankdata(x), stats.rankdata(x))
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        assert math.isnan(spearman(x, y))
        return
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)


# ----------------------------------------------------------------------------- similarity scorer


def pair_embeddings(angles_by_pair: dict[tuple[str, str], float]) -> Embeddings:
    """Each pair's first word at angle 0, its second at the given angle (degrees): cos = cos(angle)."""
    words, vectors = [], []
    for (w1, w2), angle in angles_by_pair.items():
        for w, a in ((w1, 0.0), (w2, angle)):
            if w not in words:
                words.append(w)
                vectors.append([math.cos(math.radians(a)), math.sin(math.radians(a))])
    return Embeddings(words, np.array(vectors, np.float32))


HUMAN = [("a1", "b1", 9.0), ("a2", "b2", 7.5), ("a3", "b3", 5.0), ("a4", "b4", 2.0), ("a5", "b5", 0.5)]


def test_similarity_monotone_gives_spearman_one():
    # cosine = cos(angle) decreases with the angle, so angles decreasing in the human score
    # give cosines increasing in it: a perfect rank agreement (but not a linear one)
    emb = pair_embeddings({(w1, w2): 90 - 9 * s for w1, w2, s in HUMAN})
    result = evaluate_similarity(emb, HUMAN)
    assert result.spearman == pytest.approx(1.0)
    assert 0.9 < result.pearson < 1.0
    assert (result.n_pairs, result.n_oov, result.name) == (5, 0, "pairs")
    reversed_emb = pair_embeddings({(w1, w2): 9 * s for w1, w2, s in HUMAN})
    assert evaluate_similarity(reversed_emb, HUMAN).spearman == pytest.approx(-1.0)


def test_similarity_ties_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    human = [("a1", "b1", 8.0), ("a2", "b2", 8.0), ("a3", "b3", 3.0), ("a4", "b4", 5.0), ("a5", "b5", 3.0)]
    angles = [20.0, 50.0, 50.0, 10.0, 80.0]  # one tie in the cosines, two in the human scores
    emb = pair_embeddings({(w1, w2): a for (w1, w2, _), a in zip(human, angles)})
    result = evaluate_similarity(emb, human)
    cos = [math.cos(math.radians(a)) for a in angles]
    scores = [s for _, _, s in human]
    assert result.spearman == pytest.approx(stats.spearmanr(cos, scores).statistic, abs=1e-6)
    assert result.pearson == pytest.approx(stats.pearsonr(cos, scores).statistic, abs=1e-6)


def test_similarity_skips_and_counts_oov_pairs():
    emb = pair_embeddings({(w1, w2): 90 - 9 * s for w1, w2, s in HUMAN})
    pairs = HUMAN + [("a1", "unicorn", 3.0), ("dragon", "b2", 1.0), ("x", "y", 4.0)]
    result = evaluate_similarity(emb, pairs)
    assert (result.n_pairs, result.n_oov) == (5, 3) and result.spearman == pytest.approx(1.0)
    empty = evaluate_similarity(emb, [("x", "y", 1.0)])
    assert (empty.n_pairs, empty.n_oov) == (0, 1) and math.isnan(empty.spearman)


def test_similarity_lowercase():
    emb = pair_embeddings({(w1, w2): 90 - 9 * s for w1, w2, s in HUMAN})
    shouted = [(w1.upper(), w2.upper(), s) for w1, w2, s in HUMAN]
    assert evaluate_similarity(emb, shouted).n_pairs == 5
    assert evaluate_similarity(emb, shouted, lowercase=False).n_oov == 5


def test_similarity_default_pairs_and_file(tmp_path):
    emb = Embeddings(["tiger", "cat", "love", "sex"], np.eye(4, dtype=np.float32)[[0, 1, 2, 2]] + 0.1)
    result = evaluate_similarity(emb)
    assert (result.n_pairs, result.n_oov, result.name) == (3, 350, "wordsim353")  # tiger-tiger too
    (tmp_path / "mine.tsv").write_text("tiger\tcat\t7\nlove\tsex\t6\n", encoding="utf-8")
    assert evaluate_similarity(emb, tmp_path / "mine.tsv").name == "mine"


# ----------------------------------------------------------------------------- analogy scorer


QUESTIONS = {
    "family": [
        ("man", "woman", "king", "queen"),     # right
        ("woman", "man", "queen", "king"),     # right
        ("man", "king", "woman", "queen"),     # right
        ("man", "woman", "king", "boy"),       # wrong: the answer is queen
        ("man", "woman", "unicorn", "mare"),   # skipped: out of vocabulary
    ],
    "young": [
        ("man", "boy", "woman", "girl"),       # right (uses the rarest word)
        ("MAN", "Woman", "BOY", "Girl"),       # right when lowercasing, else skipped
        ("king", "boy", "queen", "man"),       # wrong: the answer is girl
    ],
    "empty": [("dragon", "fire", "fish", "water")],
}


@pytest.mark.parametrize("method", ["add", "mul"])
def test_analogy_exact_counts(royals, method):
    result = evaluate_analogies(royals, QUESTIONS, method=method)
    assert result == AnalogyResult(
        accuracy=5 / 7, correct=5, total=7, skipped=2,
        sections={"family": (3, 4), "young": (2, 3), "empty": (0, 0)}, method=method, name="analogies",
    )


def test_analogy_lowercase_off_skips_cased_questions(royals):
    result = evaluate_analogies(royals, QUESTIONS, lowercase=False)
    assert (result.correct, result.total, result.skipped) == (4, 6, 3)
    assert result.sections["young"] == (1, 2)


def test_analogy_restrict_vocab_skips_rare_words(royals):
    # without "girl" among the searched words, every question that mentions it is skipped,
    # and "king boy queen" can no longer reach girl: its best remaining answer is still wrong
    result = evaluate_analogies(royals, QUESTIONS, restrict_vocab=5)
    assert (result.correct, result.total, result.skipped) == (3, 5, 4)
    assert result.sections == {"family": (3, 4), "young": (0, 1), "empty": (0, 0)}
    assert evaluate_analogies(royals, QUESTIONS, restrict_vocab=None).total == 7
    with pytest.raises(ConfigError, match="restrict_vocab must be a positive integer"):
        evaluate_analogies(royals, QUESTIONS, restrict_vocab=0)
    with pytest.raises(ConfigError, match="unknown analogy method 'cos'"):
        evaluate_analogies(royals, {"s": [("x", "y", "z", "w")]}, method="cos")


def test_analogy_from_file_and_nothing_answerable(tmp_path, royals):
    (tmp_path / "mine.txt").write_text(": s\nman woman king queen\n: t\nfoo bar baz qux\n", encoding="utf-8")
    result = evaluate_analogies(royals, tmp_path / "mine.txt")
    assert (result.correct, result.total, result.skipped, result.name) == (1, 1, 1, "mine")
    none = evaluate_analogies(royals, {"s": [("foo", "bar", "baz", "qux")]})
    assert math.isnan(none.accuracy) and (none.total, none.skipped) == (0, 1)


def test_agrees_with_gensim_on_the_bundled_sets():
    gensim_models = pytest.importorskip("gensim.models")
    words = sorted({w.lower() for qs in load_analogies().values() for q in qs for w in q}
                   | {w.lower() for p in load_similarity_pairs() for w in p[:2]})
    rng = np.random.default_rng(0)
    words = list(rng.permutation(words))[:-40]  # some words out of vocabulary
    vectors = rng.standard_normal((len(words), 16)).astype(np.float32)
    emb = Embeddings(words, vectors)
    kv = gensim_models.KeyedVectors(16)
    kv.add_vectors(words, vectors)

    ours = evaluate_analogies(emb, restrict_vocab=700)
    score, sections = kv.evaluate_word_analogies(str(GOOGLE_ANALOGIES), restrict_vocab=700)
    assert ours.accuracy == pytest.approx(score)
    assert ours.correct == len(sections[-1]["correct"])
    assert ours.total == len(sections[-1]["correct"]) + len(sections[-1]["incorrect"])
    for s in sections[:-1]:
        assert ours.sections[s["section"]] == (len(s["correct"]), len(s["correct"]) + len(s["incorrect"]))

    sim = evaluate_similarity(emb)
    (pearson_r, _), (spearman_r, _), oov_percent = kv.evaluate_word_pairs(str(WORDSIM353))
    assert sim.spearman == pytest.approx(spearman_r, abs=1e-6)
    assert sim.pearson == pytest.approx(pearson_r, abs=1e-6)
    assert 100 * sim.n_oov / (sim.n_oov + sim.n_pairs) == pytest.approx(oov_percent)


# ----------------------------------------------------------------------------- reporting


def test_results_are_frozen_and_serialisable(royals):
    sim = SimilarityResult(0.5, 0.25, 10, 2, "ws")
    ana = evaluate_analogies(royals, QUESTIONS)
    with pytest.raises(AttributeError):
        sim.spearman = 1.0
    assert json.loads(json.dumps(sim.to_dict())) == {"spearman": 0.5, "pearson": 0.25, "n_pairs": 10,
                                                     "n_oov": 2, "name": "ws"}
    d = json.loads(json.dumps(ana.to_dict()))
    assert d["sections"] == {"family": [3, 4], "young": [2, 3], "empty": [0, 0]} and d["skipped"] == 2


def test_format_table(royals):
    sim = SimilarityResult(0.65432, 0.61, 340, 13, "wordsim353")
    ana = evaluate_analogies(royals, QUESTIONS, method="mul")
    table = format_table([sim, ana])
    lines = table.splitlines()
    assert lines[0].split() == ["similarity", "spearman", "pearson", "pairs", "oov"]
    assert lines[1].split() == ["wordsim353", "0.6543", "0.6100", "340", "13"]
    assert "analogies (3CosMul)" in table
    assert any(line.split() == ["family", "75.00%", "3", "4"] for line in lines)
    assert any(line.split() == ["empty", "-", "0", "0"] for line in lines)
    assert any(line.split() == ["total", "71.43%", "5", "7"] for line in lines)
    assert lines[-1].split()[-1] == "2"
    labelled = format_table({"mine": sim})
    assert labelled.splitlines()[1].startswith("mine ")
    one_pair = SimilarityResult(math.nan, math.nan, 1, 4, "few")   # a correlation of one pair is undefined
    assert format_table([one_pair]).splitlines()[1].split() == ["few", "-", "-", "1", "4"]


def test_format_table_semantic_and_syntactic_rows():
    result = AnalogyResult(0.5, 3, 6, 0, {"capital": (2, 2), "gram1-x": (1, 4)}, "add", "google")
    lines = [line.split() for line in format_table([result]).splitlines()]
    assert ["semantic", "100.00%", "2", "2"] in lines and ["syntactic", "25.00%", "1", "4"] in lines
