"""Tests for sg_jax.synthetic: Zipf corpora in memory and on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sg_jax import synthetic
from sg_jax.data.corpus import EncodedCorpus
from sg_jax.errors import ConfigError
from sg_jax.synthetic import load_zipf_corpus, write_zipf_corpus, zipf_corpus, zipf_probabilities


def loglog_slope(counts: np.ndarray, ranks: int) -> float:
    """Least-squares slope of log(count) against log(rank) over ranks 1..ranks."""
    r = np.arange(1, ranks + 1)
    return float(np.polyfit(np.log(r), np.log(counts[:ranks]), 1)[0])


@pytest.mark.parametrize("exponent", [0.8, 1.0, 1.3])
def test_rank_frequency_follows_the_exponent(exponent):
    vocab, corpus = zipf_corpus(300_000, 2_000, exponent=exponent, seed=1)
    counts = np.bincount(corpus.ids, minlength=2_000)
    assert np.array_equal(counts, vocab.counts)
    assert loglog_slope(counts, 100) == pytest.approx(-exponent, abs=0.05)
    # and the head matches the probabilities themselves
    p = zipf_probabilities(2_000, exponent)
    assert counts[:10] / corpus.n_tokens == pytest.approx(p[:10], rel=0.05)


def test_exponent_zero_is_uniform():
    _, corpus = zipf_corpus(100_000, 10, exponent=0.0)
    counts = np.bincount(corpus.ids, minlength=10)
    assert counts / corpus.n_tokens == pytest.approx(np.full(10, 0.1), abs=0.01)


def test_deterministic_by_seed_and_independent_of_blocking(monkeypatch):
    _, a = zipf_corpus(50_000, 500, seed=7)
    _, b = zipf_corpus(50_000, 500, seed=7)
    _, c = zipf_corpus(50_000, 500, seed=8)
    assert np.array_equal(a.ids, b.ids)
    assert not np.array_equal(a.ids, c.ids)
    # a shorter corpus is a prefix of a longer one with the same seed
    _, d = zipf_corpus(30_000, 500, seed=7)
    assert np.array_equal(d.ids, a.ids[:30_000])
    # several generation blocks (the block size is part of the format, patched only to test it)
    monkeypatch.setattr(synthetic, "BLOCK_TOKENS", 4_096)
    _, e = zipf_corpus(50_000, 500, seed=7)
    _, f = zipf_corpus(50_000, 500, seed=7)
    assert np.array_equal(e.ids, f.ids)
    assert e.ids.min() >= 0 and e.ids.max() < 500


@pytest.mark.parametrize("n_tokens, length", [(10_000, 1000), (10_001, 1000), (7, 3), (5, 10), (1, 1)])
def test_offsets_partition_the_ids(n_tokens, length):
    vocab, corpus = zipf_corpus(n_tokens, 50, sentence_length=length)
    offsets = corpus.offsets
    assert offsets.dtype == np.int64 and corpus.ids.dtype == np.int32
    assert offsets[0] == 0 and offsets[-1] == n_tokens
    lengths = np.diff(offsets)
    assert (lengths >= 1).all() and (lengths[:-1] == length).all() and lengths[-1] <= length
    assert len(vocab) == 50 and vocab.words[:2] == ("w0", "w1")
    assert vocab.total == n_tokens


def test_written_corpus_matches_memory_and_is_memory_mapped(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "BLOCK_TOKENS", 1_000)
    vocab, corpus = write_zipf_corpus(tmp_path / "z", 12_345, 300, exponent=1.1, sentence_length=100, seed=3)
    mem_vocab, mem = zipf_corpus(12_345, 300, exponent=1.1, sentence_length=100, seed=3)
    assert vocab == mem_vocab
    assert np.array_equal(corpus.ids, mem.ids) and np.array_equal(corpus.offsets, mem.offsets)
    assert isinstance(corpus.ids, np.memmap)
    loaded = EncodedCorpus.load(tmp_path / "z", mmap=True)
    assert np.array_equal(loaded.ids, mem.ids)
    again = load_zipf_corpus(tmp_path / "z")
    assert again is not None and again[0] == vocab


def test_reuse_only_with_the_same_parameters(tmp_path):
    d = tmp_path / "z"
    write_zipf_corpus(d, 2_000, 100, seed=1)
    stamp = (d / "ids.npy").stat().st_mtime_ns
    write_zipf_corpus(d, 2_000, 100, seed=1)
    assert (d / "ids.npy").stat().st_mtime_ns == stamp
    vocab, corpus = write_zipf_corpus(d, 2_000, 100, seed=2)
    assert json.loads((d / "synthetic.json").read_text())["seed"] == 2
    assert np.array_equal(corpus.ids, zipf_corpus(2_000, 100, seed=2)[1].ids)
    assert load_zipf_corpus(tmp_path / "missing") is None


@pytest.mark.parametrize("kwargs", [
    dict(n_tokens=0, vocab_size=10), dict(n_tokens=10, vocab_size=0),
    dict(n_tokens=10, vocab_size=10, exponent=-1.0), dict(n_tokens=10, vocab_size=10, exponent=float("nan")),
    dict(n_tokens=10, vocab_size=10, sentence_length=0),
])
def test_bad_parameters(kwargs):
    n, v = kwargs.pop("n_tokens"), kwargs.pop("vocab_size")
    with pytest.raises(ConfigError):
        zipf_corpus(n, v, **kwargs)
