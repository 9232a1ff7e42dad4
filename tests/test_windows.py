"""Tests for sg_jax.windows: training pairs, context groups, subsampling, window statistics."""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest

from sg_jax.data.corpus import EncodedCorpus, Vocab
from sg_jax.errors import ConfigError, CorpusError
from sg_jax.windows import (
    context_groups, dynamic_window_pairs, keep_probability, skipgram_pairs, window_stats,
)

FOX = "the quick brown fox jumps over the lazy dog".split()


def formula_pairs(length: int, window: int) -> int:
    return sum(2 * max(length - d, 0) for d in range(1, window + 1))


def random_corpus(seed: int, n_sentences: int = 40, max_len: int = 12) -> EncodedCorpus:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len + 1, size=n_sentences)
    return EncodedCorpus.from_sentences(rng.integers(0, 50, size=n) for n in lengths)


def brute_force_pairs(corpus: EncodedCorpus, window: int) -> list[tuple[int, int]]:
    """The definition, one Python loop per token."""
    pairs = []
    for sentence in corpus.sentences():
        s = sentence.tolist()
        for i, target in enumerate(s):
            for d in [*range(-window, 0), *range(1, window + 1)]:
                if 0 <= i + d < len(s):
                    pairs.append((target, s[i + d]))
    return pairs


def test_fox_sentence_window_2():
    vocab = Vocab.build([FOX], order="first")
    ids = vocab.encode(FOX)
    pairs = skipgram_pairs(ids, 2)
    assert pairs.dtype == np.int32 and pairs.shape == (30, 2)  # 2*(9-1) + 2*(9-2) = 16 + 14
    fox = vocab.index("fox")
    contexts = [vocab.words[c] for t, c in pairs if t == fox]
    assert contexts == ["quick", "brown", "jumps", "over"]  # offsets -2, -1, 1, 2
    # Order: by target position, then offset; the first target ("the") has only right contexts.
    first = [(vocab.words[t], vocab.words[c]) for t, c in pairs[:2]]
    assert first == [("the", "quick"), ("the", "brown")]


@pytest.mark.parametrize("length", [1, 2, 3, 7, 20])
@pytest.mark.parametrize("window", [1, 2, 5, 25])
def test_pair_count_formula(length, window):
    ids = np.arange(length)
    if length == 1:
        with pytest.raises(CorpusError, match="no training pairs"):
            skipgram_pairs(ids, window)
    else:
        assert len(skipgram_pairs(ids, window)) == formula_pairs(length, window)


@pytest.mark.parametrize("window", [1, 3, 15])
def test_pairs_match_brute_force_and_stay_in_sentences(window):
    corpus = random_corpus(seed=window)
    pairs = skipgram_pairs(corpus, window)
    assert [tuple(p) for p in pairs.tolist()] == brute_force_pairs(corpus, window)
    assert len(pairs) == sum(formula_pairs(int(n), window) for n in corpus.lengths)


def test_dynamic_window_statistics():
    rng = np.random.default_rng(0)
    length, window = 20_000, 5
    ids = np.arange(length)  # distinct ids: a pair's offset is context - target
    pairs = dynamic_window_pairs(ids, window, rng)
    offsets = pairs[:, 1] - pairs[:, 0]
    assert np.all((np.abs(offsets) >= 1) & (np.abs(offsets) <= window))
    assert pairs.min() >= 0 and pairs.max() < length
    # E[pairs] ~= L * (window + 1); per-target count has sd <= 2*window, so the total's sd is
    # below 2 * 5 * sqrt(20000) ~ 1.4k: a 3% tolerance (3.6k) is > 2.5 sd.
    assert abs(len(pairs) - length * (window + 1)) < 0.03 * length * (window + 1)
    # Offset d survives with probability (w - d + 1) / w: offset 1 always, offset 5 one in five.
    counts = collections.Counter(np.abs(offsets).tolist())
    assert counts[1] == 2 * (length - 1)
    assert abs(counts[5] / (2 * length) - 1 / 5) < 0.02


def test_dynamic_window_within_sentences_and_seeded():
    corpus = random_corpus(seed=7)
    sentence_of = np.repeat(np.arange(corpus.n_sentences), corpus.lengths)
    position = np.arange(corpus.n_tokens)
    # Make each id unique so a pair identifies its positions.
    unique = EncodedCorpus(position.astype(np.int32), corpus.offsets)
    pairs = dynamic_window_pairs(unique, 4, np.random.default_rng(3))
    assert np.all(sentence_of[pairs[:, 0]] == sentence_of[pairs[:, 1]])
    assert np.all(np.abs(pairs[:, 1] - pairs[:, 0]) <= 4)
    again = dynamic_window_pairs(unique, 4, np.random.default_rng(3))
    np.testing.assert_array_equal(pairs, again)
    full = {tuple(p) for p in skipgram_pairs(unique, 4).tolist()}
    assert {tuple(p) for p in pairs.tolist()} <= full


@pytest.mark.parametrize("dynamic", [False, True])
def test_context_groups_hold_the_same_pairs(dynamic):
    corpus = random_corpus(seed=11)
    window = 3
    rng = np.random.default_rng(5) if dynamic else None
    targets, contexts, mask = context_groups(corpus, window, rng=rng)
    assert contexts.shape == mask.shape == (len(targets), 2 * window)
    assert targets.dtype == contexts.dtype == np.int32 and mask.dtype == bool
    assert np.all(contexts[~mask] == 0) and np.all(mask.any(axis=1))
    grouped = collections.Counter(
        (int(t), int(c)) for t, row, m in zip(targets, contexts, mask) for c in row[m])
    if dynamic:
        reference = dynamic_window_pairs(corpus, window, np.random.default_rng(5))
    else:
        reference = skipgram_pairs(corpus, window)
    assert grouped == collections.Counter(map(tuple, reference.tolist()))
    # One-word sentences give no row; every other token is a target exactly once.
    assert len(targets) == int(corpus.lengths[corpus.lengths > 1].sum())


def test_context_groups_padding_layout():
    targets, contexts, mask = context_groups(np.array([10, 11, 12]), 2)
    assert targets.tolist() == [10, 11, 12]
    # Columns are offsets -2, -1, +1, +2.
    assert mask.tolist() == [[False, False, True, True],
                             [False, True, True, False],
                             [True, True, False, False]]
    assert contexts.tolist() == [[0, 0, 11, 12], [0, 10, 12, 0], [10, 11, 0, 0]]


def test_window_validation_and_no_pairs():
    with pytest.raises(ConfigError, match="window must be >= 1, got 0"):
        skipgram_pairs(np.arange(5), 0)
    with pytest.raises(ConfigError, match="window must be an integer"):
        skipgram_pairs(np.arange(5), 2.5)
    single_words = EncodedCorpus.from_sentences([[1], [2], [3]])
    with pytest.raises(CorpusError, match=r"no training pairs \(every sentence has fewer"):
        skipgram_pairs(single_words, 5)
    with pytest.raises(CorpusError, match="no training pairs"):
        dynamic_window_pairs(single_words, 5, np.random.default_rng(0))
    # A window longer than every sentence is fine; pairs stay inside sentences.
    two = EncodedCorpus.from_sentences([[1, 2], [3, 4]])
    assert skipgram_pairs(two, 50).tolist() == [[1, 2], [2, 1], [3, 4], [4, 3]]


def test_keep_probability_by_hand():
    counts = np.array([1000, 100, 10, 0])
    sample = 1e-2
    t = 0.01 * 1110  # = 11.1
    expected = [
        (math.sqrt(1000 / t) + 1) * t / 1000,  # (9.4916 + 1) * 0.0111 = 0.11646
        (math.sqrt(100 / t) + 1) * t / 100,  # (3.0015 + 1) * 0.111 = 0.44417
        1.0,  # (sqrt(10 / 11.1) + 1) * 1.11 = 2.16 > 1 -> clipped
        1.0,  # never seen
    ]
    p = keep_probability(counts, sample)
    assert p.dtype == np.float64
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    assert abs(p[0] - 0.116457) < 1e-6  # 10.49164 * 0.0111, by hand
    np.testing.assert_array_equal(keep_probability(counts, 0), np.ones(4))
    with pytest.raises(ConfigError, match="sample must be >= 0"):
        keep_probability(counts, -1e-3)


def test_window_stats_against_formula_and_pairs():
    corpus = random_corpus(seed=2)
    rows = window_stats(corpus, [1, 2, 5])
    assert [r["window"] for r in rows] == [1, 2, 5]
    for row in rows:
        w = row["window"]
        expected = sum(formula_pairs(int(n), w) for n in corpus.lengths)
        assert row["pairs"] == expected == len(skipgram_pairs(corpus, w))
        assert row["avg_contexts"] == pytest.approx(expected / corpus.n_tokens)
    # One long sentence: dynamic expectation ~ L * (w + 1), fixed ~ L * 2w.
    (row,) = window_stats(np.arange(10_000), [4])
    assert row["pairs"] == 2 * (9999 + 9998 + 9997 + 9996)
    assert row["expected_dynamic_pairs"] == pytest.approx(10_000 * 5, rel=1e-3)
