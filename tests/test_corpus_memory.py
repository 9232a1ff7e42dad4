"""The reader's memory is bounded by the vocabulary and a piece, not the corpus: the encoded
corpus is a memory map, iterables are streamed, one-shot generators refused for several epochs."""

import tracemalloc

import numpy as np
import pytest

from sg_jax.config import Config
from sg_jax.data.corpus import EncodedCorpus, load_corpus
from sg_jax.errors import CorpusError
from sg_jax.runs import read_corpus

WORDS = [f"w{i}" for i in range(300)]


def sentences(n_lines, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n_lines):
        yield [WORDS[i] for i in rng.zipf(1.3, 12) % len(WORDS)]


def write_corpus(path, n_lines):
    with open(path, "w") as f:
        for s in sentences(n_lines):
            f.write(" ".join(s) + ", and.\n")
    return path


def peak_bytes(fn):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


def test_file_reader_peak_does_not_grow_with_the_corpus(tmp_path):
    small = write_corpus(tmp_path / "small.txt", 4_000)
    big = write_corpus(tmp_path / "big.txt", 64_000)  # 16x the tokens, the same vocabulary
    read = dict(processes=1, piece_bytes=16 << 10)
    load_corpus(small, **read)  # the first call's imports and compiled patterns are not the reader's
    peak_small, (_, enc_small, _) = peak_bytes(lambda: load_corpus(small, **read))
    peak_big, (vocab, enc_big, _) = peak_bytes(lambda: load_corpus(big, **read))
    assert enc_big.n_tokens > 15 * enc_small.n_tokens
    # the big corpus's ids alone are several times the small one's peak: holding them would fail this
    assert enc_big.ids.nbytes > 3 * peak_small
    assert peak_big < 1.5 * peak_small, (peak_small, peak_big)
    assert isinstance(enc_big.ids, np.memmap) and isinstance(enc_big.offsets, np.memmap)


class Restartable:
    """gensim's streaming pattern: each __iter__ starts over, nothing is kept."""

    def __init__(self, n_lines):
        self.n_lines, self.passes = n_lines, 0

    def __iter__(self):
        self.passes += 1
        return sentences(self.n_lines)


def test_restartable_iterable_is_streamed_not_held():
    read = dict(piece_bytes=64 << 10)
    load_corpus(Restartable(100), **read)  # warm: imports
    peak_small, (_, small, _) = peak_bytes(lambda: load_corpus(Restartable(3_000), **read))
    source = Restartable(48_000)
    peak_big, (_, big, _) = peak_bytes(lambda: load_corpus(source, **read))
    assert big.n_tokens == 16 * small.n_tokens and big.ids.nbytes > 2 * peak_small
    assert peak_big < 1.5 * peak_small, (peak_small, peak_big)
    assert source.passes == 1  # read once: counted and encoded in the same pass


def test_one_shot_generator_is_refused_for_several_epochs():
    config = Config(min_count=1, epochs=2)
    with pytest.raises(CorpusError, match="one-shot iterator .*epochs=2"):
        read_corpus(config, sentences(50))
    data = read_corpus(Config(min_count=1, epochs=1), sentences(50))  # one epoch: read once is enough
    assert data.encoded.n_tokens == 50 * 12
    restartable = read_corpus(config, Restartable(50))
    np.testing.assert_array_equal(restartable.encoded.ids, data.encoded.ids)
    assert read_corpus(config, list(sentences(50))).vocab == data.vocab


def test_directory_keeps_the_encoded_corpus(tmp_path):
    path = write_corpus(tmp_path / "c.txt", 200)
    out = tmp_path / "encoded"
    out.mkdir()
    _, corpus, _ = load_corpus(path, directory=out)
    again = EncodedCorpus.load(out)
    np.testing.assert_array_equal(again.ids, corpus.ids)
    np.testing.assert_array_equal(again.offsets, corpus.offsets)
    assert sorted(p.name for p in out.iterdir()) == ["ids.npy", "offsets.npy"]


def _mapped_kib(address: int) -> int | None:
    """The resident KiB of the mapping holding `address` (/proc/self/smaps), None off Linux."""
    try:
        lines = open("/proc/self/smaps").read().splitlines()
    except OSError:
        return None
    inside = False
    for line in lines:
        head = line.split()[0]
        if "-" in head and all(c in "0123456789abcdef-" for c in head):
            low, high = (int(x, 16) for x in head.split("-"))
            inside = low <= address < high
        elif inside and head == "Rss:":
            return int(line.split()[1])
    return None


def test_a_chunk_of_a_mapped_corpus_is_handed_back_after_it_is_read(tmp_path):
    """A run reads its chunks of a memory-mapped corpus with `read_tokens`: the same tokens for
    the map, the view EncodedCorpus keeps of it and a slice of it, and the pages read handed back
    to the kernel, so that a corpus read chunk by chunk does not stay in the run's resident
    memory (the map's resident size, from /proc/self/smaps, falls from the whole file to a few
    pages the kernel maps ahead of each read). The map stays readable after."""
    from sg_jax.data.vocabulary import read_tokens

    ids = np.random.default_rng(0).integers(0, 1000, 2_000_000).astype(np.int32)   # 8 MB
    offsets = np.arange(0, 2_000_001, 50, dtype=np.int64)
    EncodedCorpus(ids, offsets).save(tmp_path / "enc")
    mapped = EncodedCorpus.load(tmp_path / "enc", mmap=True)
    for source, base in ((mapped.ids, 0), (mapped.ids[1234:], 1234)):
        for start, end in ((0, 7), (9_999, 40_000), (37_000, 37_066)):
            np.testing.assert_array_equal(read_tokens(source, start, end), ids[base + start:base + end])
    np.testing.assert_array_equal(read_tokens(ids, 10, 20), ids[10:20])
    assert int(np.asarray(mapped.ids).sum()) == int(ids.sum())   # every page read through the map
    before = _mapped_kib(mapped.ids.ctypes.data)
    if before is None:
        pytest.skip("no /proc/self/smaps on this system")
    for start in range(0, len(ids), 300_000):
        read_tokens(mapped.ids, start, min(start + 300_000, len(ids)))
    after = _mapped_kib(mapped.ids.ctypes.data)
    assert before > 7000 and after < 0.2 * before, (before, after)   # the kernel may map a few pages ahead
    np.testing.assert_array_equal(np.asarray(mapped.ids), ids)   # still readable through the map
