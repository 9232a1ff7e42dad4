"""The vocabulary and the encoded corpus: a corpus's words with their counts, its tokens as
int32 ids with sentence offsets, and the `.npy` streams they are written and read through.

These are the data types the readers produce (`sg_jax.data.corpus`, `sg_jax.data.fastread`) and the
encoded-corpus directories store (`sg_jax.data.encoded`); this module reads no text itself.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import mmap
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from sg_jax.atomic import atomic_open
from sg_jax.data.text import iter_sentences
from sg_jax.errors import ConfigError, CorpusError, FormatError, VocabError, quoted, quoted_list


@dataclasses.dataclass(frozen=True, eq=False)
class Vocab:
    """An immutable vocabulary: word k is `words[k]`, seen `counts[k]` times (int64, read-only)."""

    words: tuple[str, ...]
    counts: np.ndarray
    _index: dict = dataclasses.field(init=False, repr=False)

    ORDERS = ("frequency", "alphabetical", "first")

    def __post_init__(self):
        words = tuple(self.words)
        counts = np.array(self.counts, dtype=np.int64).reshape(-1)
        if len(words) != len(counts):
            raise VocabError(f"vocabulary has {len(words)} words but {len(counts)} counts")
        if not words:
            raise VocabError("vocabulary is empty")
        if (counts < 0).any():
            raise VocabError(f"negative count for word {quoted(words[int(np.argmin(counts))])}")
        index = {w: i for i, w in enumerate(words)}
        if len(index) != len(words):
            dup = next(w for w, c in collections.Counter(words).items() if c > 1)
            raise VocabError(f"duplicate word in vocabulary: {quoted(dup)}")
        counts.setflags(write=False)
        object.__setattr__(self, "words", words)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_counts(cls, words: Sequence[str], counts: Sequence[int]) -> "Vocab":
        """A vocabulary with exactly these words, in this order (tests, checkpoints)."""
        return cls(tuple(words), np.asarray(counts))

    @classmethod
    def build(cls, sentences, *, min_count: int = 1, max_size: int | None = None,
              order: str = "frequency") -> "Vocab":
        """Count words in one streaming pass over `sentences` (token lists, or any source that
        `iter_sentences` reads) and keep those seen at least `min_count` times.

        `max_size` keeps the `max_size` most frequent of those (ties: first occurrence first).
        `order`: "frequency" (count descending, ties by first occurrence; word2vec's order, so
        index 0 is the most frequent word), "alphabetical" (Python string order), or "first"
        (order of first occurrence in the corpus).
        """
        cls._check_selection(min_count, max_size, order)
        if isinstance(sentences, (str, os.PathLike)):
            sentences = iter_sentences(sentences)
        counter: collections.Counter = collections.Counter()
        for sentence in sentences:
            counter.update(sentence)  # Counter keeps first-occurrence order (dict order)
        return cls.from_occurrences(list(counter), list(counter.values()), min_count=min_count,
                                    max_size=max_size, order=order)

    @classmethod
    def _check_selection(cls, min_count, max_size, order) -> None:
        if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) \
                or min_count < 1:
            raise ConfigError(f"min_count must be an integer >= 1, got {min_count!r}")
        if max_size is not None and (isinstance(max_size, bool) or max_size < 1):
            raise ConfigError(f"max_size must be >= 1, got {max_size!r}")
        if order not in cls.ORDERS:
            raise ConfigError(f"order must be one of {', '.join(cls.ORDERS)}; got {order!r}")

    @classmethod
    def from_occurrences(cls, words: Sequence[str], counts, *, min_count: int = 1,
                         max_size: int | None = None, order: str = "frequency") -> "Vocab":
        """The vocabulary `build` gives for a corpus whose distinct words, in order of first
        occurrence, are `words`, seen `counts` times."""
        cls._check_selection(min_count, max_size, order)
        counts = np.asarray(counts, dtype=np.int64).reshape(-1)
        if not len(words):
            raise CorpusError("corpus contains no words")
        kept = np.flatnonzero(counts >= min_count)  # first-occurrence order
        if not len(kept):
            raise VocabError(f"min_count={min_count} removes every word "
                             f"(largest count is {int(counts.max())})")
        by_freq = kept[np.argsort(-counts[kept], kind="stable")]  # ties keep first occurrence
        if max_size is not None and len(kept) > max_size:
            by_freq = by_freq[:max_size]
            kept = np.sort(by_freq)
        if order == "alphabetical":
            chosen = sorted(kept.tolist(), key=words.__getitem__)
        else:
            chosen = (by_freq if order == "frequency" else kept).tolist()
        return cls(tuple(words[i] for i in chosen), counts[chosen])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word) -> bool:
        return word in self._index

    def __eq__(self, other) -> bool:
        return (isinstance(other, Vocab) and self.words == other.words
                and np.array_equal(self.counts, other.counts))

    def __hash__(self) -> int:
        return hash(self.words)

    @property
    def total(self) -> int:
        """Sum of the counts: the number of in-vocabulary tokens in the corpus."""
        return int(self.counts.sum())

    def index(self, word: str) -> int:
        try:
            return self._index[word]
        except KeyError:
            raise VocabError(f"unknown word: {quoted(word)}") from None

    def indices(self, words: Iterable[str]) -> np.ndarray:
        """int32 indices of `words`; VocabError naming every unknown word at once."""
        words = list(words)
        missing = [w for w in words if w not in self._index]
        if missing:
            s = "s" if len(missing) > 1 else ""
            raise VocabError(f"unknown word{s}: " + quoted_list(missing))
        return np.array([self._index[w] for w in words], dtype=np.int32)

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """int32 ids of the in-vocabulary tokens, in order; out-of-vocabulary tokens dropped."""
        get = self._index.get
        ids = [i for i in map(get, tokens) if i is not None]
        return np.array(ids, dtype=np.int32)

    def to_dict(self) -> dict:
        return {"words": list(self.words), "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocab":
        if not isinstance(data, dict):
            raise FormatError("malformed vocabulary record: not a JSON object")
        for key in ("words", "counts"):
            if not isinstance(data.get(key), list):
                raise FormatError(f"malformed vocabulary record: {key} is missing or not a list")
        if not all(isinstance(w, str) for w in data["words"]):
            raise FormatError("malformed vocabulary record: a word is not a string")
        try:
            return cls.from_counts(data["words"], data["counts"])
        except (TypeError, ValueError, OverflowError, VocabError) as e:
            raise FormatError(f"malformed vocabulary record: {e}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Vocab":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise FormatError(f"vocabulary is not valid JSON: {e}") from None
        return cls.from_dict(data)


# ---------------------------------------------------------------------------------------------
# Encoded corpus


def _increasing(a: np.ndarray, block: int = 1 << 22) -> bool:
    """Whether `a` is strictly increasing, read a block at a time (a memory map stays unread
    into memory)."""
    return all((np.diff(np.asarray(a[i:i + block + 1])) > 0).all() for i in range(0, max(len(a) - 1, 0), block))


def read_tokens(ids: np.ndarray, start: int, end: int) -> np.ndarray:
    """A copy of ids[start:end]. The pages of a memory map a process has read count in its
    resident memory until the kernel reclaims them, so reading a large memory-mapped corpus
    (`EncodedCorpus.load`) chunk by chunk would grow a run's resident memory with the corpus
    instead of its chunk: after the copy, the pages it read are handed back (madvise
    MADV_DONTNEED on the read-only map: the kernel keeps them in its page cache, outside the
    process, and a later read maps them again)."""
    out = np.array(ids[start:end])
    root = ids
    while isinstance(root, np.memmap) and isinstance(root.base, np.ndarray):
        root = root.base   # the memmap np.load made, whose base is the map
    mm = root.base if isinstance(root, np.memmap) else None
    if isinstance(mm, mmap.mmap) and hasattr(mm, "madvise") and end > start:
        first = ids[start:end].ctypes.data - np.frombuffer(mm, dtype=np.uint8).ctypes.data
        low = first - first % mmap.PAGESIZE
        mm.madvise(mmap.MADV_DONTNEED, low, first + (end - start) * ids.itemsize - low)
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class EncodedCorpus:
    """A corpus as word ids: sentence s is `ids[offsets[s]:offsets[s + 1]]`.

    `ids` int32[T] (all sentences concatenated), `offsets` int64[S + 1] with `offsets[0] == 0`
    and `offsets[-1] == T`. Sentences are non-empty. Arrays are read-only (possibly memmaps).
    """

    ids: np.ndarray
    offsets: np.ndarray

    def __post_init__(self):
        ids = np.asanyarray(self.ids)  # asany: keep np.memmap as such
        offsets = np.asanyarray(self.offsets)
        if ids.ndim != 1 or offsets.ndim != 1 or len(offsets) < 1:
            raise FormatError(f"encoded corpus needs 1-D ids and offsets, got shapes "
                              f"{ids.shape} and {offsets.shape}")
        ids = ids if ids.dtype == np.int32 else ids.astype(np.int32)
        offsets = offsets if offsets.dtype == np.int64 else offsets.astype(np.int64)
        if offsets[0] != 0 or offsets[-1] != len(ids) or not _increasing(offsets):
            raise FormatError(f"encoded corpus offsets do not partition {len(ids)} ids into "
                              "non-empty sentences")
        ids, offsets = ids.view(), offsets.view()  # own views: never flip the caller's flags
        ids.setflags(write=False)
        offsets.setflags(write=False)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "offsets", offsets)

    @classmethod
    def from_sentences(cls, sentences: Iterable[Sequence[int]]) -> "EncodedCorpus":
        """Pack id sequences; empty ones are dropped."""
        arrays = [a for a in (np.asarray(s, dtype=np.int32).reshape(-1) for s in sentences)
                  if len(a)]
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        ids = np.concatenate(arrays) if arrays else np.zeros(0, np.int32)
        return cls(ids, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    @property
    def n_sentences(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """int64[S] sentence lengths."""
        return np.diff(self.offsets)

    def sentences(self) -> Iterator[np.ndarray]:
        """Each sentence as a read-only view into `ids`."""
        for a, b in zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist()):
            yield self.ids[a:b]

    def save(self, directory: str | os.PathLike) -> None:
        """Write `ids.npy` and `offsets.npy` into `directory` (each atomically)."""
        directory = Path(directory)
        for name, array in (("ids", self.ids), ("offsets", self.offsets)):
            with atomic_open(directory / f"{name}.npy", "wb") as f:
                np.save(f, np.ascontiguousarray(array), allow_pickle=False)

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = True) -> "EncodedCorpus":
        """Read a saved corpus; with `mmap` the arrays are read-only memory maps."""
        directory = Path(directory)
        arrays = []
        for name in ("ids", "offsets"):
            path = directory / f"{name}.npy"
            if not path.is_file():
                raise CorpusError(f"encoded corpus file not found: {path}")
            try:
                arrays.append(np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False))
            except (ValueError, OSError, EOFError) as e:
                raise FormatError(f"cannot read encoded corpus file {path}: {e}") from None
        return cls(*arrays)


class _NpyStream:
    """Append 1-D arrays to a `.npy` file without knowing the final length: the header is
    rewritten at the end (a 1-D header is always 128 bytes, whatever the length)."""

    def __init__(self, f, dtype):
        self.f, self.dtype, self.n = f, np.dtype(dtype), 0
        self._header()

    def _header(self):
        self.f.seek(0)
        np.lib.format.write_array_header_1_0(self.f, {
            "descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
            "shape": (self.n,)})
        if self.f.tell() != 128:
            raise RuntimeError("unexpected .npy header length")

    def append(self, array: np.ndarray):
        self.f.write(np.ascontiguousarray(array, dtype=self.dtype).tobytes())
        self.n += len(array)

    def close(self):
        end = self.f.tell()
        self._header()
        self.f.seek(end)


class _NpyBlocks:
    """Ranges of a 1-D `.npy` file (`length` items) read with plain file reads."""

    def __init__(self, path):
        self.f = open(path, "rb")
        np.lib.format.read_magic(self.f)
        (self.length,), _, self.dtype = np.lib.format.read_array_header_1_0(self.f)
        self.start = self.f.tell()

    def read(self, begin: int, end: int) -> np.ndarray:
        self.f.seek(self.start + begin * self.dtype.itemsize)
        return np.fromfile(self.f, dtype=self.dtype, count=end - begin)

    def close(self) -> None:
        self.f.close()
