"""Corpora as ids: the vocabulary and the encoded corpus.

`Vocab.build` counts the words of a sentence stream (`sg_jax.text.iter_sentences`) in one pass;
`encode_corpus` maps the stream to int32 ids and packs it into an `EncodedCorpus` (`ids`
int32[T] + `offsets` int64[S + 1]), which can be saved as two memory-mappable `.npy` files.
`load_corpus` does both passes. The reading names are re-exported here for convenience.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from sg_jax.atomic import atomic_open
from sg_jax.errors import ConfigError, CorpusError, FormatError, VocabError, quoted, quoted_list

from sg_jax.text import ReadStats, _check_normalize, _resolve, iter_sentences
from sg_jax.text import DEFAULT_CORPUS, corpus_fingerprint, normalize_query, tokenize  # noqa: F401  (re-exported)

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


def _encode_stream(source, vocab: Vocab, ids_sink, lengths_sink, read_opts,
                   flush_tokens: int = 1 << 20) -> None:
    """Encode sentence by sentence, flushing ids/lengths to the sinks in ~1M-token blocks."""
    ids_block: list[np.ndarray] = []
    lengths: list[int] = []
    pending = 0
    for sentence in iter_sentences(source, **read_opts):
        encoded = vocab.encode(sentence)
        if len(encoded):  # sentences emptied by min_count are dropped
            ids_block.append(encoded)
            lengths.append(len(encoded))
            pending += len(encoded)
        if pending >= flush_tokens:
            ids_sink(np.concatenate(ids_block))
            lengths_sink(np.array(lengths, dtype=np.int64))
            ids_block, lengths, pending = [], [], 0
    if ids_block:
        ids_sink(np.concatenate(ids_block))
        lengths_sink(np.array(lengths, dtype=np.int64))


def encode_corpus(source, vocab: Vocab, **read_opts) -> EncodedCorpus:
    """Read `source` (see `iter_sentences`; `read_opts` are its keywords) and encode it with
    `vocab`, in memory: about 4 bytes per kept token plus 8 per sentence."""
    ids: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    _encode_stream(source, vocab, ids.append, lengths.append, read_opts)
    if not ids:
        return EncodedCorpus(np.zeros(0, np.int32), np.zeros(1, np.int64))
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))])
    return EncodedCorpus(np.concatenate(ids), offsets)


def encode_corpus_to_disk(source, vocab: Vocab, directory: str | os.PathLike,
                          **read_opts) -> EncodedCorpus:
    """Like `encode_corpus`, but stream ids and offsets straight into `directory`/ids.npy and
    offsets.npy (each written atomically) and return the memory-mapped result. Memory use is
    bounded by the reader's, whatever the corpus size."""
    directory = Path(directory)
    with atomic_open(directory / "ids.npy", "wb") as fi, \
            atomic_open(directory / "offsets.npy", "wb") as fo:
        ids_out, offsets_out = _NpyStream(fi, np.int32), _NpyStream(fo, np.int64)
        offsets_out.append(np.zeros(1, np.int64))
        total = [0]

        def add_lengths(lengths: np.ndarray):
            offsets_out.append(total[0] + np.cumsum(lengths))
            total[0] += int(lengths.sum())

        _encode_stream(source, vocab, ids_out.append, add_lengths, read_opts)
        ids_out.close()
        offsets_out.close()
    return EncodedCorpus.load(directory, mmap=True)


def _encode_scan(scan, vocab: Vocab, max_len: int, ids_out: "_NpyStream", offsets_out: "_NpyStream",
                 stats: ReadStats | None, token_block: int = 1 << 22, line_block: int = 1 << 20) -> None:
    """Map a scan's provisional ids to `vocab`'s and cut its lines into sentences of at most
    `max_len` tokens, as the sequential reader does (then sentences emptied by the vocabulary
    are dropped), streaming into `ids_out` / `offsets_out` (which starts with its 0) a block at
    a time. With `stats`, add the read's line, sentence and token counts to it."""
    final = np.full(len(scan.words), -1, np.int32)
    position = {w: i for i, w in enumerate(scan.words)}
    final[np.fromiter((position[w] for w in vocab.words), np.int64, len(vocab))] = np.arange(len(vocab))
    del position
    # the provisional ids are read block by block with plain reads, not through a memory map: the
    # pages a map touches would stay in this process's resident memory, 4 bytes a corpus token
    prov, lines_all = _NpyBlocks(scan.ids_path), _NpyBlocks(scan.lines_path)
    token_pos, written = 0, 0
    for lb in range(0, lines_all.length, line_block):
        lines = lines_all.read(lb, min(lb + line_block, lines_all.length))
        per_line = -(-lines // max_len)  # sentences of each line (0 for an empty one)
        seg = np.full(int(per_line.sum()), max_len, np.int64)
        rem = lines % max_len
        seg[(np.cumsum(per_line) - 1)[rem > 0]] = rem[rem > 0]  # each line's last, shorter sentence
        ends = np.cumsum(seg)
        first = 0
        while first < len(seg):
            base = int(ends[first - 1]) if first else 0
            stop = max(int(np.searchsorted(ends, base + token_block, side="right")), first + 1)
            block = final[prov.read(token_pos + base, token_pos + int(ends[stop - 1]))]
            keep = block >= 0
            kept = np.bincount(np.repeat(np.arange(stop - first), seg[first:stop])[keep],
                               minlength=stop - first)
            kept = kept[kept > 0]
            ids_out.append(block[keep])
            offsets_out.append(written + np.cumsum(kept))
            written += int(kept.sum())
            first = stop
        token_pos += int(lines.sum())
        if stats is not None:
            stats.lines += len(lines)
            stats.empty_lines += int((lines == 0).sum())
            stats.sentences += len(seg)
            stats.tokens += int(lines.sum())
    prov.close()
    lines_all.close()


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


def load_corpus(source, *, min_count: int = 1, max_size: int | None = None,
                order: str = "frequency", lowercase: bool = True, errors: str = "strict",
                max_sentence_length: int = 10_000, normalize: str | None = "NFC",
                strip_diacritics: bool = False, directory: str | os.PathLike | None = None,
                processes: int | None = None, piece_bytes: int | None = None,
                on_progress=None, cache_dir: str | os.PathLike | None = None,
                log=lambda s: None) -> tuple[Vocab, EncodedCorpus, ReadStats]:
    """Build the vocabulary and encode `source` in one read (`sg_jax.fastread`: a file is cut
    into pieces tokenized on `processes` cores, default all; an iterable is consumed once and
    never held). Returns (vocab, corpus, stats of the read), the same as counting with
    `Vocab.build` and encoding with `encode_corpus` over `iter_sentences` would give.

    The corpus's `ids.npy` and `offsets.npy` are written into `directory` (atomically) and
    returned memory-mapped; without `directory` they go to a temporary directory that is
    removed at once (the maps keep the data until they are dropped; the directory is under
    TMPDIR, which should be on disk, not in memory, for corpora larger than memory). Memory stays
    bounded by the
    vocabulary and a few pieces of `piece_bytes`, whatever the corpus size. `normalize`: Unicode
    normalisation before tokenizing (see `tokenize`); `strip_diacritics`: remove Arabic and
    Hebrew diacritics after it (see `sg_jax.text.strip_diacritics`). `on_progress(bytes_read,
    file_bytes)` is called while a file is read.

    `source` may be an encoded-corpus directory (`sg_jax.encoded`, `sg-jax encode`): it is used
    if it was read with these options and is neither damaged nor stale, else refused. With
    `cache_dir`, a file is read once into an entry there keyed by its fingerprint and these
    options, and reused by later calls (`log` hears when a damaged entry is rebuilt)."""
    import shutil
    import tempfile

    from sg_jax import encoded, fastread

    Vocab._check_selection(min_count, max_size, order)
    opts = dict(lowercase=lowercase, errors=errors, max_sentence_length=max_sentence_length,
                normalize=_check_normalize(normalize), strip_diacritics=bool(strip_diacritics))
    options = dict(opts, min_count=min_count, max_size=max_size, order=order)
    read = dict(processes=processes, piece_bytes=piece_bytes, on_progress=on_progress)
    if isinstance(source, (str, os.PathLike)) and encoded.is_encoded(source):
        return encoded.read_encoded(source, options)[:3]
    if cache_dir is not None and directory is None and isinstance(_resolve(source), Path):
        return encoded.cached(source, cache_dir, options, log=log, **read)[:3]
    iter_sentences(source, **opts)  # refuses bad options and a missing or unreadable source up front
    resolved = _resolve(source)
    workdir = Path(tempfile.mkdtemp(prefix="sg_jax-corpus-"))
    try:
        stats = ReadStats()
        scan = None
        if isinstance(resolved, Path):
            try:
                scan = fastread.scan_file(resolved, workdir, lowercase=lowercase, errors=errors,
                                          normalize=normalize, strip=bool(strip_diacritics),
                                          processes=processes, on_progress=on_progress,
                                          piece_bytes=piece_bytes or fastread.PIECE_BYTES)
                stats.dropped_chars, stats.replaced_bytes = scan.dropped_chars, scan.replaced_bytes
                stats.long_words = scan.long_words
                line_stats = stats
            except fastread.NoCut:  # a piece-long run without whitespace: read it line by line
                scan = None
        if scan is None:
            stream = iter_sentences(resolved, stats=stats, **opts)
            # token lists cost ~60 bytes a token in Python: batches of a 64th of a piece's bytes
            scan = fastread.scan_sentences(stream, workdir, max((piece_bytes or fastread.PIECE_BYTES) // 64, 256))
            line_stats = None  # the reader counted them
        if not len(scan.words):
            raise CorpusError(f"corpus {resolved if isinstance(resolved, Path) else '(token lists)'} "
                              "contains no words")
        vocab = Vocab.from_occurrences(scan.words, scan.counts, min_count=min_count,
                                       max_size=max_size, order=order)
        if vocab.total < 2:  # the in-vocabulary tokens: refused before anything is written
            raise CorpusError(f"corpus has {vocab.total} in-vocabulary token(s) after "
                              f"min_count={min_count}; at least 2 are needed for training pairs")
        out = Path(directory) if directory is not None else workdir
        with atomic_open(out / "ids.npy", "wb") as fi, atomic_open(out / "offsets.npy", "wb") as fo:
            ids_out, offsets_out = _NpyStream(fi, np.int32), _NpyStream(fo, np.int64)
            offsets_out.append(np.zeros(1, np.int64))
            block = max((piece_bytes or fastread.PIECE_BYTES) // 2, 1024)  # about a piece's tokens
            _encode_scan(scan, vocab, max_sentence_length, ids_out, offsets_out, line_stats,
                         token_block=block, line_block=max(block // 16, 256))
            ids_out.close()
            offsets_out.close()
        corpus = EncodedCorpus.load(out, mmap=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # open maps keep their files' data
    return vocab, corpus, stats
