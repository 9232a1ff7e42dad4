"""Synthetic corpora: Zipf-distributed word ids, generated in bounded memory.

Benchmarks and soak tests need corpora of a chosen size and vocabulary without reading text.
`zipf_corpus` draws word ids i.i.d. from a truncated Zipf law over `vocab_size` ranks,

    P(word r) = (r + 1) ** -exponent / sum_j (j + 1) ** -exponent,   r = 0 .. vocab_size - 1,

so word 0 ("w0") is the most probable, and cuts the stream into sentences of `sentence_length`
tokens (the last one may be shorter). There is no co-occurrence structure: such a corpus measures
speed and memory, not embedding quality.

Tokens are generated in fixed blocks of `BLOCK_TOKENS`, block b from its own generator seeded by
(seed, b), so the ids depend only on (n_tokens, vocab_size, exponent, seed) and never on how they
are produced: `zipf_corpus` (in memory) and `write_zipf_corpus` (streamed into `ids.npy` and
`offsets.npy`, loadable by `EncodedCorpus.load(directory, mmap=True)`) give identical corpora.
Memory use while generating is O(vocab_size + BLOCK_TOKENS) beyond the output.

The matching `Vocab` names word r "w{r}" and carries the counts observed in the generated ids
(in rank order, which is frequency order up to sampling noise; words never drawn keep count 0,
so the vocabulary has exactly `vocab_size` words).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from sg_jax.atomic import atomic_open, atomic_write_text
from sg_jax.data.corpus import EncodedCorpus, Vocab
from sg_jax.errors import ConfigError

BLOCK_TOKENS = 1 << 20
DEFAULT_SENTENCE_LENGTH = 1000  # word2vec.c's MAX_SENTENCE_LENGTH
META_FILE = "synthetic.json"
COUNTS_FILE = "counts.npy"


def _check(n_tokens, vocab_size, exponent, sentence_length) -> None:
    checks = [
        (isinstance(n_tokens, (int, np.integer)) and n_tokens >= 1, f"n_tokens must be an integer >= 1, got {n_tokens!r}"),
        (isinstance(vocab_size, (int, np.integer)) and vocab_size >= 1,
         f"vocab_size must be an integer >= 1, got {vocab_size!r}"),
        (np.isfinite(exponent) and exponent >= 0, f"exponent must be a finite number >= 0, got {exponent!r}"),
        (isinstance(sentence_length, (int, np.integer)) and sentence_length >= 1,
         f"sentence_length must be an integer >= 1, got {sentence_length!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def zipf_probabilities(vocab_size: int, exponent: float = 1.0) -> np.ndarray:
    """float64[vocab_size]: P(rank r) proportional to (r + 1) ** -exponent."""
    _check(1, vocab_size, exponent, 1)
    p = np.arange(1, vocab_size + 1, dtype=np.float64) ** -float(exponent)
    return p / p.sum()


def _blocks(n_tokens: int, vocab_size: int, exponent: float, seed: int) -> Iterator[np.ndarray]:
    """The corpus ids as int32 blocks of BLOCK_TOKENS (the last one shorter)."""
    cdf = np.cumsum(zipf_probabilities(vocab_size, exponent))
    cdf[-1] = 1.0
    for b, start in enumerate(range(0, n_tokens, BLOCK_TOKENS)):
        size = min(BLOCK_TOKENS, n_tokens - start)
        rng = np.random.default_rng([int(seed), b])
        u = rng.random(size)
        # inverse CDF: the first rank whose cumulative probability exceeds u
        ids = np.searchsorted(cdf, u, side="right")
        yield np.minimum(ids, vocab_size - 1).astype(np.int32)


def _offsets(n_tokens: int, sentence_length: int) -> np.ndarray:
    offsets = np.arange(0, n_tokens, sentence_length, dtype=np.int64)
    return np.append(offsets, np.int64(n_tokens))


def synthetic_vocab(counts) -> Vocab:
    """The vocabulary of a synthetic corpus: word r is "w{r}" with counts[r] occurrences."""
    counts = np.asarray(counts, dtype=np.int64)
    return Vocab.from_counts([f"w{r}" for r in range(counts.size)], counts)


def zipf_corpus(n_tokens: int, vocab_size: int, *, exponent: float = 1.0,
                sentence_length: int = DEFAULT_SENTENCE_LENGTH, seed: int = 0) -> tuple[Vocab, EncodedCorpus]:
    """A Zipf-distributed corpus in memory (4 bytes a token) and its vocabulary."""
    _check(n_tokens, vocab_size, exponent, sentence_length)
    ids = np.empty(n_tokens, dtype=np.int32)
    counts = np.zeros(vocab_size, dtype=np.int64)
    start = 0
    for block in _blocks(n_tokens, vocab_size, exponent, seed):
        ids[start:start + block.size] = block
        counts += np.bincount(block, minlength=vocab_size)
        start += block.size
    return synthetic_vocab(counts), EncodedCorpus(ids, _offsets(n_tokens, sentence_length))


def _meta(n_tokens, vocab_size, exponent, sentence_length, seed) -> dict:
    return {"generator": "zipf", "version": 1, "n_tokens": int(n_tokens), "vocab_size": int(vocab_size),
            "exponent": float(exponent), "sentence_length": int(sentence_length), "seed": int(seed),
            "block_tokens": BLOCK_TOKENS}


def write_zipf_corpus(directory: str | os.PathLike, n_tokens: int, vocab_size: int, *, exponent: float = 1.0,
                      sentence_length: int = DEFAULT_SENTENCE_LENGTH, seed: int = 0,
                      reuse: bool = True) -> tuple[Vocab, EncodedCorpus]:
    """Stream a Zipf corpus into `directory` (ids.npy, offsets.npy, counts.npy, synthetic.json)
    and return its vocabulary and the memory-mapped corpus.

    Memory stays bounded (one block of ids and the vocabulary's counts) whatever `n_tokens`.
    Every file is written atomically; the parameter record `synthetic.json` is written last, so
    with `reuse` a directory already holding a complete corpus with the same parameters is loaded
    instead of regenerated.
    """
    _check(n_tokens, vocab_size, exponent, sentence_length)
    directory = Path(directory)
    meta = _meta(n_tokens, vocab_size, exponent, sentence_length, seed)
    if reuse:
        found = load_zipf_corpus(directory, expect=meta)
        if found is not None:
            return found
    directory.mkdir(parents=True, exist_ok=True)
    (directory / META_FILE).unlink(missing_ok=True)  # the directory is incomplete from here on
    counts = np.zeros(vocab_size, dtype=np.int64)
    with atomic_open(directory / "ids.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.int32)),
                                                 "fortran_order": False, "shape": (n_tokens,)})
        for block in _blocks(n_tokens, vocab_size, exponent, seed):
            f.write(block.tobytes())
            counts += np.bincount(block, minlength=vocab_size)
    with atomic_open(directory / "offsets.npy", "wb") as f:
        np.save(f, _offsets(n_tokens, sentence_length), allow_pickle=False)
    with atomic_open(directory / COUNTS_FILE, "wb") as f:
        np.save(f, counts, allow_pickle=False)
    atomic_write_text(directory / META_FILE, json.dumps(meta, indent=1) + "\n")
    return synthetic_vocab(counts), EncodedCorpus.load(directory, mmap=True)


def load_zipf_corpus(directory: str | os.PathLike, *, expect: dict | None = None,
                     mmap: bool = True) -> tuple[Vocab, EncodedCorpus] | None:
    """A corpus written by `write_zipf_corpus`, or None if the directory holds no complete one
    (or, with `expect`, one generated with other parameters)."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if expect is not None and meta != expect:
        return None
    counts = np.load(directory / COUNTS_FILE, allow_pickle=False)
    return synthetic_vocab(counts), EncodedCorpus.load(directory, mmap=mmap)
