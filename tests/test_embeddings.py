"""Embeddings queries on hand-built vectors whose answers are known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sg_jax.embeddings import Embeddings
from sg_jax.errors import ConfigError, VocabError


def at_angles(degrees) -> np.ndarray:
    """2-D vectors [len, 2] at the given angles (various lengths: cosine must not care)."""
    rad = np.deg2rad(np.asarray(degrees, np.float64))
    lengths = 1.0 + np.arange(len(rad))
    return (np.stack([np.cos(rad), np.sin(rad)], axis=1) * lengths[:, None]).astype(np.float32)


ANGLES = {"w0": 0, "w1": 10, "w2": 30, "w3": 50, "w4": 90, "w5": 180}


@pytest.fixture(scope="module")
def fan() -> Embeddings:
    return Embeddings(list(ANGLES), at_angles(list(ANGLES.values())))


def cosd(deg: float) -> float:
    return math.cos(math.radians(deg))


# ----------------------------------------------------------------------------- basics


def test_lookup_api(fan):
    assert len(fan) == 6 and fan.dim == 2 and fan.words == tuple(ANGLES)
    assert "w3" in fan and "nope" not in fan
    assert fan.index("w3") == 3
    np.testing.assert_allclose(fan.vector("w1"), 2 * np.array([cosd(10), math.sin(math.radians(10))]), rtol=1e-6)
    assert repr(fan) == "Embeddings(6 words, dim 2)"


def test_vectors_are_a_private_read_only_copy():
    v = np.ones((2, 3), np.float32)
    emb = Embeddings(["a", "b"], v)
    v[0] = 5
    assert emb.vectors[0].tolist() == [1, 1, 1]
    with pytest.raises(ValueError):
        emb.vectors[0, 0] = 2
    emb.vector("a")[0] = 9  # a copy
    assert emb.vectors[0, 0] == 1


def test_unit_vectors(fan):
    np.testing.assert_allclose(np.linalg.norm(np.asarray(fan.unit_vectors), axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    "words,vectors,error,message",
    [
        (["a", "a"], np.ones((2, 2)), VocabError, r"duplicate word 'a' \(rows 0 and 1\)"),
        (["a"], np.ones((2, 2)), ConfigError, "1 words but 2 vectors"),
        (["a", ""], np.ones((2, 2)), VocabError, "word 1 is ''"),
        ([], np.ones((0, 2)), VocabError, "no vectors"),
        (["a"], np.ones(3), ConfigError, r"\[V, N\] matrix"),
    ],
)
def test_constructor_refusals(words, vectors, error, message):
    with pytest.raises(error, match=message):
        Embeddings(words, vectors)


def test_zero_vectors_do_not_make_nan():
    emb = Embeddings(["zero", "a", "b"], np.array([[0, 0], [1, 0], [0, 2]], np.float32))
    assert np.isfinite(np.asarray(emb.unit_vectors)).all()
    assert emb.similarity("zero", "a") == 0.0
    result = emb.most_similar("zero", k=2)
    assert [w for w, _ in result] == ["a", "b"] and all(s == 0.0 for _, s in result)
    with pytest.raises(ConfigError, match="zero vector"):  # a query that cancels out: no word is similar to it
        emb.most_similar(["a"], negative=["a"], k=1)
    assert all(math.isfinite(s) for _, s in emb.analogy("zero", "a", "b", k=1, method="mul"))


# ----------------------------------------------------------------------------- most_similar


def test_most_similar_orders_by_cosine_and_excludes_the_query(fan):
    result = fan.most_similar("w0", k=10)
    assert [w for w, _ in result] == ["w1", "w2", "w3", "w4", "w5"]
    np.testing.assert_allclose([s for _, s in result], [cosd(a) for a in (10, 30, 50, 90, 180)], atol=1e-6)
    assert fan.most_similar("w0", k=2) == result[:2]


def test_most_similar_mean_of_positives_minus_negatives(fan):
    # unit(w0) + unit(w4) points at 45 degrees: w3 (50) beats w2 (30)
    result = fan.most_similar(["w0", "w4"], k=3)
    assert [w for w, _ in result] == ["w3", "w2", "w1"]
    assert result[0][1] == pytest.approx(cosd(5), abs=1e-6)
    assert fan.most_similar(negative="w0", k=1)[0][0] == "w5"
    # w4 - w0 points at 135 degrees: w5 (45 away) then w4 is excluded, so w3 (85 away)
    assert [w for w, _ in fan.most_similar("w4", negative="w0", k=2)] == ["w5", "w3"]


def test_most_similar_restrict_vocab(fan):
    assert [w for w, _ in fan.most_similar("w0", k=10, restrict_vocab=3)] == ["w1", "w2"]
    assert [w for w, _ in fan.most_similar("w5", k=10, restrict_vocab=2)] == ["w1", "w0"]
    assert len(fan.most_similar("w0", k=10, restrict_vocab=1)) == 0  # only the query itself
    assert len(fan.most_similar("w0", restrict_vocab=100)) == 5


def test_similarity(fan):
    assert fan.similarity("w0", "w3") == pytest.approx(cosd(50), abs=1e-6)
    assert fan.similarity("w1", "w1") == pytest.approx(1.0, abs=1e-6)


# ----------------------------------------------------------------------------- analogies


@pytest.mark.parametrize("method", ["add", "mul"])
def test_king_minus_man_plus_woman_is_queen(royals, method):
    (word, score), *_ = royals.analogy("man", "king", "woman", method=method)
    assert word == "queen"
    assert royals.analogy("boy", "girl", "man", method=method)[0][0] == "woman"
    if method == "add":  # unit(king - man + woman) is exactly unit(queen)
        assert score == pytest.approx(1.0, abs=1e-6)


def test_3cosadd_and_3cosmul_disagree():
    # a = e4 is orthogonal to every candidate, so only cos(x, b) and cos(x, c) matter:
    # x1: cos(x, b) = 1, cos(x, c) = 0    -> add (1 + 0) / sqrt(3) = 0.57735 wins
    # x2: cos(x, b) = cos(x, c) = 0.45    -> add 0.9 / sqrt(3) = 0.51962
    # mul = (1 + cos xb)/2 * (1 + cos xc)/2 / ((1 + cos xa)/2 + 0.001):
    #   x1: 1 * 0.5 / 0.501 = 0.998004     x2: 0.725^2 / 0.501 = 1.049152 wins
    z = math.sqrt(1 - 2 * 0.45**2)
    vectors = {"a": [0, 0, 0, 1], "b": [1, 0, 0, 0], "c": [0, 1, 0, 0],
               "x1": [2, 0, 0, 0], "x2": [0.45, 0.45, z, 0], "far": [-1, -1, 0, 0]}
    emb = Embeddings(list(vectors), np.array(list(vectors.values()), np.float32))
    add = emb.analogy("a", "b", "c", k=2, method="add")
    mul = emb.analogy("a", "b", "c", k=2, method="mul")
    assert [w for w, _ in add] == ["x1", "x2"] and [w for w, _ in mul] == ["x2", "x1"]
    np.testing.assert_allclose([s for _, s in add], [0.57735, 0.51962], atol=1e-5)
    np.testing.assert_allclose([s for _, s in mul], [1.049152, 0.998004], atol=1e-5)
    predicted = {m: emb.analogy_batch([0], [1], [2], method=m).tolist() for m in ("add", "mul")}
    assert predicted == {"add": [3], "mul": [4]}


def test_analogy_excludes_question_words_and_respects_restrict_vocab(royals):
    assert {w for w, _ in royals.analogy("man", "king", "woman", k=10)} == {"queen", "boy", "girl"}
    # with only the first 4 words searched, queen (index 1) is still found; with 1, nothing is left
    assert royals.analogy("man", "king", "woman", restrict_vocab=4)[0][0] == "queen"
    assert royals.analogy("man", "king", "woman", restrict_vocab=1) == []


@pytest.mark.parametrize("method", ["add", "mul"])
@pytest.mark.parametrize("restrict", [None, 30])
def test_analogy_batch_matches_single_queries(method, restrict):
    rng = np.random.default_rng(3)
    emb = Embeddings([f"w{i}" for i in range(60)], rng.standard_normal((60, 8)))
    questions = rng.integers(0, 60, size=(23, 3))
    questions[:, :3] = np.where(rng.random((23, 3)) < 0.5, questions % 30, questions)
    got = emb.analogy_batch(*questions.T, method=method, restrict_vocab=restrict, chunk_size=4)
    assert got.dtype == np.int32 and got.shape == (23,)
    for (a, b, c), p in zip(questions, got):
        best = emb.analogy(f"w{a}", f"w{b}", f"w{c}", method=method, restrict_vocab=restrict)[0][0]
        assert emb.words[p] == best
        assert p not in (a, b, c) and (restrict is None or p < restrict)
    assert emb.analogy_batch([], [], []).shape == (0,)


def test_analogy_batch_refusals(royals):
    with pytest.raises(ConfigError, match="differ in length"):
        royals.analogy_batch([0, 1], [1], [2])
    with pytest.raises(ConfigError, match="out of range"):
        royals.analogy_batch([0], [1], [6])
    with pytest.raises(ConfigError, match="unknown analogy method 'cos'"):
        royals.analogy_batch([0], [1], [2], method="cos")


# ----------------------------------------------------------------------------- odd one out


def test_doesnt_match():
    vectors = {"apple": [1, 0.1, 0], "banana": [1, 0, 0.1], "cherry": [0.9, 0.1, 0.1], "car": [0, 1, 0]}
    emb = Embeddings(list(vectors), np.array(list(vectors.values()), np.float32))
    assert emb.doesnt_match(["apple", "car", "banana", "cherry"]) == "car"
    assert emb.doesnt_match(("car", "cherry", "apple", "banana")) == "car"


# ----------------------------------------------------------------------------- errors


def test_unknown_words_are_all_named(fan, royals):
    with pytest.raises(VocabError, match=r"^unknown words: 'foo', 'bar'$"):
        fan.most_similar(["foo", "w0"], negative=["bar", "foo"])
    with pytest.raises(VocabError, match=r"^unknown word: 'foo'$"):
        fan.similarity("w0", "foo")
    with pytest.raises(VocabError, match=r"^unknown words: 'x', 'y'$"):
        royals.analogy("x", "king", "y")
    with pytest.raises(VocabError, match="'pear'"):
        royals.doesnt_match(["king", "pear"])
    with pytest.raises(VocabError, match="'pear'"):
        royals.vector("pear")
    with pytest.raises(VocabError, match="'pear'"):
        royals.index("pear")


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda e: e.most_similar("w0", k=0), "k must be a positive integer, got 0"),
        (lambda e: e.most_similar("w0", k=-3), "k must be a positive integer"),
        (lambda e: e.analogy("w0", "w1", "w2", k=0), "k must be a positive integer"),
        (lambda e: e.most_similar("w0", restrict_vocab=0), "restrict_vocab must be a positive integer"),
        (lambda e: e.most_similar(), "at least one positive or negative word"),
        (lambda e: e.analogy("w0", "w1", "w2", method="cos"), "unknown analogy method 'cos'"),
        (lambda e: e.doesnt_match(["w0"]), "at least two words"),
    ],
)
def test_bad_arguments(fan, call, message):
    with pytest.raises(ConfigError, match=message):
        call(fan)


# ----------------------------------------------------------------------------- files and gensim


@pytest.mark.parametrize("binary", [False, True])
def test_save_and_load(tmp_path, royals, binary):
    royals.save(tmp_path / "v.vectors", binary=binary)
    loaded = Embeddings.load(tmp_path / "v.vectors")
    assert loaded.words == royals.words
    np.testing.assert_array_equal(loaded.vectors, royals.vectors)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # gensim, zero vector
def test_agrees_with_gensim():
    gensim_models = pytest.importorskip("gensim.models")
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(200)]
    vectors = rng.standard_normal((200, 16)).astype(np.float32)
    vectors[7] = 0.0
    emb = Embeddings(words, vectors)
    kv = gensim_models.KeyedVectors(16)
    kv.add_vectors(words, vectors)
    queries = [(["w1"], [], None), (["w2", "w3"], ["w4"], None), (["w5", "w6", "w8"], ["w9", "w10"], None),
               (["w5", "w6"], ["w9"], 30), (["w40"], ["w17"], 30)]
    for pos, neg, restrict in queries:
        ours = emb.most_similar(pos, neg, k=10, restrict_vocab=restrict)
        theirs = kv.most_similar(positive=pos, negative=neg, topn=10, restrict_vocab=restrict)
        assert [w for w, _ in ours] == [w for w, _ in theirs]
        np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)
    ours = emb.most_similar("w11", k=5, restrict_vocab=50)
    assert [w for w, _ in ours] == [w for w, _ in kv.most_similar("w11", topn=5, restrict_vocab=50)]
    assert emb.doesnt_match(["w1", "w2", "w3", "w4"]) == kv.doesnt_match(["w1", "w2", "w3", "w4"])
    assert emb.similarity("w1", "w2") == pytest.approx(float(kv.similarity("w1", "w2")), abs=1e-6)


def test_the_similar_command_refuses_a_query_that_cancels_out(tmp_path, capsys):
    from sg_jax import cli

    path = tmp_path / "v.txt"
    Embeddings(["a", "b", "c"], np.array([[1, 0], [0, 1], [1, 1]], np.float32)).save(path)
    assert cli.main(["similar", "a", "--negative", "a", "--vectors", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "zero vector" in err and "'a'" in err, err


def test_the_query_commands_print_topn_answers(tmp_path, capsys):
    """-k and gensim's name --topn set how many neighbours (similar) or answers (analogy) print."""
    from sg_jax import cli

    path = tmp_path / "v.txt"
    rng = np.random.default_rng(1)
    Embeddings([f"w{i}" for i in range(12)], rng.normal(size=(12, 4)).astype(np.float32)).save(path)
    for flag in ("-k", "--topn"):
        assert cli.main(["similar", "w0", "--vectors", str(path), flag, "3"]) == 0
        assert len(capsys.readouterr().out.strip().splitlines()) == 3
        assert cli.main(["analogy", "w0", "w1", "w2", "--vectors", str(path), flag, "2"]) == 0
        assert len(capsys.readouterr().out.strip().splitlines()) == 2
