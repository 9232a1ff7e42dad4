"""Corpora: tokenizing, streaming sentence readers, the vocabulary, and the encoded corpus.

Data flow: a *source* (a text file, a bundled corpus name, or token lists) is read by
`iter_sentences` as a stream of token lists; `Vocab.build` counts words in one streaming pass;
`encode_corpus` maps the stream to int32 ids and packs it into an `EncodedCorpus`
(`ids` int32[T] + `offsets` int64[S + 1]), which can be saved as two memory-mappable `.npy`
files. `load_corpus` does both passes. Files are never materialised as text: the reader keeps at
most about two chunks of bytes (1 MiB each by default) plus one sentence of tokens in memory.
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import hashlib
import io
import json
import os
import re
import unicodedata
import zlib
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from sg_jax.atomic import atomic_open
from sg_jax.errors import ConfigError, CorpusError, FormatError, VocabError, quoted, quoted_list
from sg_jax.limits import MAX_WORD_CHARS

DEFAULT_CORPUS = "default"
DEFAULT_CORPUS_PATH = Path(__file__).resolve().parent / "data" / "brown.txt.gz"
CHUNK_SIZE = 1 << 20  # bytes read per call; also the longest piece of a line decoded at once

# A word is a letter, digit or underscore (any script, Python's unicode `\w`) followed by more of
# them and of combining marks (Unicode categories Mn, Mc, Me, which `\w` does not match: the
# vowel signs of Devanagari, Tamil and Thai, Arabic harakat, Hebrew niqqud, decomposed accents),
# optionally joined by an apostrophe, typographic apostrophe or hyphen: "don't", "term-end",
# "café", "हिन्दी". Everything else (punctuation, symbols, U+FFFD) is dropped and counted in
# ReadStats. Text is normalised to NFC first by default, so "café" typed with a combining accent
# and with a precomposed "é" are one word.
NORMALIZATIONS = ("NFC", "NFKC", None)


def _combining_marks() -> str:
    """The Mn, Mc and Me code points as a regex character-class body (ranges). They lie in
    planes 0, 1 and 14, scanned here (a tenth of the code space: ~15 ms at import)."""
    ranges: list[list[int]] = []
    for plane in (range(0x20000), range(0xE0000, 0xF0000)):
        for c in plane:
            if unicodedata.category(chr(c)) in ("Mn", "Mc", "Me"):
                if ranges and ranges[-1][1] == c - 1:
                    ranges[-1][1] = c
                else:
                    ranges.append([c, c])
    return "".join(f"\\U{a:08x}-\\U{b:08x}" if a != b else f"\\U{a:08x}" for a, b in ranges)


_MARKS = _combining_marks()
_WORD_CHARS = rf"[\w{_MARKS}]"
WORD_RE = re.compile(rf"\w{_WORD_CHARS}*(?:['’-]\w{_WORD_CHARS}*)*")
_WORD_RUN = re.compile(rf"{_WORD_CHARS}*")  # word characters, from where a match starts
_WHITESPACE = b" \t\r\n\v\f"


def _check_normalize(normalize) -> str | None:
    if normalize not in NORMALIZATIONS:
        raise ConfigError(f"normalize must be 'NFC', 'NFKC' or None, got {quoted(normalize)}")
    return normalize


def tokenize(line: str, lowercase: bool = True, normalize: str | None = "NFC") -> list[str]:
    """Split `line` into words (`WORD_RE` matches, in order) after Unicode normalisation
    (`normalize`: "NFC", the default, "NFKC", which also folds compatibility forms such as "ﬁ"
    and full-width letters, or None), lowercased with `str.lower`.

    "Don't stop -- it's café-time, 3.5!" -> ["don't", "stop", "it's", "café-time", "3", "5"];
    "हिन्दी भाषा" -> ["हिन्दी", "भाषा"].
    """
    if _check_normalize(normalize):
        line = unicodedata.normalize(normalize, line)
    words = WORD_RE.findall(line)
    return [w.lower() for w in words] if lowercase else words


def _tokenize_counted(text: str, lowercase: bool, normalize: str | None = "NFC",
                      stats: "ReadStats | None" = None) -> tuple[list[str], int]:
    """Tokens of `text` and the number of non-space characters that are not part of a token.
    Words longer than MAX_WORD_CHARS are dropped and counted in `stats.long_words`."""
    if normalize:
        text = unicodedata.normalize(normalize, text)
    words = WORD_RE.findall(text)
    # Count before lowercasing: str.lower can change a word's length ("İ" -> "i̇").
    dropped = sum(map(len, text.split())) - sum(map(len, words))
    if words and max(map(len, words)) > MAX_WORD_CHARS:
        kept = [w for w in words if len(w) <= MAX_WORD_CHARS]
        if stats is not None:
            stats.long_words += len(words) - len(kept)
        words = kept
    return ([w.lower() for w in words] if lowercase else words), dropped


@dataclasses.dataclass
class ReadStats:
    """What a reader saw and dropped, filled in as sentences are yielded (all counts)."""

    lines: int = 0  # physical lines (or token lists, for an iterable source)
    sentences: int = 0  # non-empty sentences yielded (long lines give several)
    tokens: int = 0  # tokens yielded
    dropped_chars: int = 0  # non-space characters not part of any token (punctuation, ...)
    empty_lines: int = 0  # lines that gave no token
    replaced_bytes: int = 0  # invalid UTF-8 bytes replaced by U+FFFD (errors="replace")
    long_words: int = 0  # words longer than MAX_WORD_CHARS, dropped whole

    def summary(self) -> str:
        long = (f", {self.long_words:,} word{'s' if self.long_words != 1 else ''} longer than "
                f"{MAX_WORD_CHARS:,} characters" if self.long_words else "")
        return (f"{self.lines:,} lines, {self.sentences:,} sentences, {self.tokens:,} tokens; "
                f"dropped {self.dropped_chars:,} punctuation/symbol chars, "
                f"{self.empty_lines:,} empty lines, {self.replaced_bytes:,} invalid UTF-8 bytes{long}")


# ---------------------------------------------------------------------------------------------
# Reading files


def _check_file(path: Path) -> None:
    if not path.exists():
        raise CorpusError(f"corpus file not found: {path}")
    if path.is_dir():
        raise CorpusError(f"corpus path is a directory, not a file: {path}")
    if not path.is_file():  # a FIFO would block, and the corpus is read twice (vocabulary, ids)
        raise CorpusError(f"corpus path is not a regular file (a FIFO, socket or device): {path}")


def _open_binary(path: Path):
    """Open `path` for binary reading, transparently gunzipping (detected by magic bytes)."""
    _check_file(path)
    try:
        f = open(path, "rb")
        if f.read(2) == b"\x1f\x8b":
            f.close()
            return gzip.open(path, "rb")
        f.seek(0)
        return f
    except OSError as e:
        raise CorpusError(f"cannot read corpus file {path}: {e.strerror or e}") from None


def _cut_point(buf: bytes) -> int:
    """Where to cut an over-long line: after its last ASCII whitespace byte, so no word is split;
    failing that (a >chunk run without whitespace) before the lead byte of the last character,
    which may still be incomplete. 0 means "no safe cut yet: read more"."""
    cut = max(buf.rfind(bytes([c])) for c in _WHITESPACE) + 1
    if cut > 0:
        return cut
    cut = len(buf) - 1
    # Skip back over continuation bytes (10xxxxxx), at most 3: a character has <= 4 bytes, and
    # longer runs are invalid UTF-8 anyway, so cutting inside them changes nothing.
    while cut > max(len(buf) - 4, 0) and buf[cut] & 0xC0 == 0x80:
        cut -= 1
    return cut


def _byte_lines(f, path: Path, chunk_size: int) -> Iterator[tuple[int, int, bytes, bool]]:
    """Yield (line_no, byte offset in line, piece, ends_line) from a binary file.

    Lines end at b"\\n"; a line longer than `chunk_size` (text8 is one 100 MB line) is yielded in
    pieces cut by `_cut_point`, so memory stays O(chunk_size) whatever the line length.
    """
    def read(n: int) -> bytes:
        try:
            return f.read(n)
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise CorpusError(f"cannot read corpus file {path}: {e}") from None

    buf = read(8192)
    if b"\x00" in buf:
        raise CorpusError(f"corpus file {path} looks like a binary file (NUL bytes), not text")
    line_no, line_offset = 1, 0
    while True:
        chunk = read(chunk_size)
        if b"\x00" in chunk:  # memchr: cheap enough to look at every byte
            raise CorpusError(f"corpus file {path} looks like a binary file (NUL bytes), not text")
        buf += chunk
        *complete, buf = buf.split(b"\n")
        for line in complete:
            yield line_no, line_offset, line, True
            line_no, line_offset = line_no + 1, 0
        if not chunk:
            break
        while len(buf) > chunk_size:
            cut = _cut_point(buf)
            if cut == 0:
                break
            yield line_no, line_offset, buf[:cut], False
            line_offset += cut
            buf = buf[cut:]
    if buf or line_offset:  # a last line without "\n" (or the tail of a cut one)
        yield line_no, line_offset, buf, True


def _decode(piece: bytes, errors: str, path: Path, line_no: int, offset: int,
            stats: ReadStats | None) -> str:
    try:
        return piece.decode("utf-8")
    except UnicodeDecodeError as e:
        if errors == "strict":
            raise CorpusError(
                f"{path}: invalid UTF-8 at line {line_no} (byte {offset + e.start + 1} of the "
                f"line); fix the file or pass --encoding-errors replace") from None
    # Same output as bytes.decode("utf-8", "replace"), but counting the replaced bytes.
    parts, pos = [], 0
    while True:
        try:
            parts.append(piece[pos:].decode("utf-8"))
            return "".join(parts)
        except UnicodeDecodeError as e:
            parts.append(piece[pos:pos + e.start].decode("utf-8"))
            parts.append("\ufffd")
            if stats is not None:
                stats.replaced_bytes += e.end - e.start
            pos += e.end


def _file_sentences(path: Path, lowercase: bool, errors: str, max_len: int,
                    stats: ReadStats, chunk_size: int, normalize: str | None) -> Iterator[list[str]]:
    with _open_binary(path) as f:
        pending: list[str] = []
        line_tokens = 0
        # A piece cut inside a run without whitespace (a line longer than a chunk with no space
        # in it) may end inside a word: its trailing word characters are carried over to the
        # next piece, so the word is read whole, or dropped whole once it is over MAX_WORD_CHARS
        # (then `skipping` drops the rest of it at the start of the following pieces).
        carry, skipping = "", False
        for line_no, offset, piece, ends_line in _byte_lines(f, path, chunk_size):
            text = _decode(piece, errors, path, line_no, offset, stats)
            if skipping:
                n = _WORD_RUN.match(text).end()
                skipping = n == len(text) and not ends_line
                text = text[n:]
            text, carry = carry + text, ""
            if not ends_line and text and _WORD_RUN.fullmatch(text[-1]):
                n = _WORD_RUN.match(text[::-1]).end()  # reversed: linear, however long the run
                text, carry = text[:len(text) - n], text[len(text) - n:]
                if len(carry) > MAX_WORD_CHARS:
                    stats.long_words += 1
                    carry, skipping = "", True
            tokens, dropped = _tokenize_counted(text, lowercase, normalize, stats)
            stats.dropped_chars += dropped
            line_tokens += len(tokens)
            pending.extend(tokens)
            # Long lines become pseudo-sentences of max_len tokens (gensim's convention for
            # text8 and LineSentence); only the remainder stays in memory.
            full = len(pending) // max_len * max_len
            for i in range(0, full, max_len):
                yield pending[i:i + max_len]
            pending = pending[full:]
            if ends_line:
                stats.lines += 1
                stats.empty_lines += line_tokens == 0
                if pending:
                    yield pending
                pending, line_tokens = [], 0


def _iterable_sentences(source: Iterable, lowercase: bool, max_len: int,
                        stats: ReadStats, normalize: str | None) -> Iterator[list[str]]:
    for n, sentence in enumerate(source, 1):
        if isinstance(sentence, str):  # a list of raw sentences: tokenize them
            tokens, dropped = _tokenize_counted(sentence, lowercase, normalize, stats)
            stats.dropped_chars += dropped
        else:
            tokens = list(sentence)
            if not all(isinstance(t, str) for t in tokens):
                bad = next(t for t in tokens if not isinstance(t, str))
                raise CorpusError(f"sentence {n}: token {quoted(bad)} is a {type(bad).__name__}, "
                                  "expected str")
            if normalize:
                tokens = [unicodedata.normalize(normalize, t) for t in tokens]
            if tokens and max(map(len, tokens)) > MAX_WORD_CHARS:
                kept = [t for t in tokens if len(t) <= MAX_WORD_CHARS]
                stats.long_words += len(tokens) - len(kept)
                tokens = kept
            if lowercase:
                tokens = [t.lower() for t in tokens]
        stats.lines += 1
        stats.empty_lines += not tokens
        for i in range(0, len(tokens), max_len):
            yield tokens[i:i + max_len]


def _resolve(source) -> Path | Iterable:
    """A named corpus ("default", "toy:NAME") -> its path or token lists; paths -> Path."""
    if isinstance(source, str) and source == DEFAULT_CORPUS:
        return DEFAULT_CORPUS_PATH
    if isinstance(source, str) and source.startswith("toy:"):
        from sg_jax.toy import TOY_CORPORA
        name = source[4:]
        if name not in TOY_CORPORA:
            raise CorpusError(f"unknown toy corpus {quoted(source)}; known: "
                              + ", ".join(f"toy:{k}" for k in TOY_CORPORA))
        return TOY_CORPORA[name]()
    if isinstance(source, (str, os.PathLike)):
        return Path(source)
    if isinstance(source, (bytes, bytearray)) or not hasattr(source, "__iter__"):
        raise CorpusError(f"corpus source must be a path, a corpus name or an iterable of "
                          f"token lists, got {type(source).__name__}")
    return source


def iter_sentences(source, *, lowercase: bool = True, errors: str = "strict",
                   max_sentence_length: int = 10_000, stats: ReadStats | None = None,
                   chunk_size: int = CHUNK_SIZE, normalize: str | None = "NFC") -> Iterator[list[str]]:
    """Stream the sentences of `source` as lists of tokens (str).

    `source`: `"default"` (the bundled Brown corpus), `"toy:seeds"` / `"toy:groups"` (see
    `sg_jax.toy`), a path to a UTF-8 text file (optionally gzip-compressed, detected by content)
    with one sentence or document per line, or an iterable of token lists (passed through,
    lowercased if asked) or of raw sentence strings (tokenized). Named corpora take precedence
    over files of the same name.

    Lines longer than `max_sentence_length` tokens are cut into pseudo-sentences of that many
    tokens (gensim's convention); a text8-style file, one line of 17M words, is streamed in
    bounded memory that way. Lines with no token are skipped. `errors="replace"` turns invalid
    UTF-8 into U+FFFD (then dropped as a non-word); "strict" raises CorpusError with the line.
    `stats`, if given, is filled in as the stream is consumed. `normalize`: the Unicode
    normalisation applied before tokenizing ("NFC", the default; "NFKC"; None for none; see
    `tokenize`). Words longer than `MAX_WORD_CHARS` characters are dropped and counted in
    `stats.long_words`; NUL bytes anywhere in a file make it a CorpusError (a binary file).
    """
    _check_normalize(normalize)
    if errors not in ("strict", "replace"):
        raise ConfigError(f"errors must be 'strict' or 'replace', got {errors!r}")
    if max_sentence_length < 1:
        raise ConfigError(f"max_sentence_length must be >= 1, got {max_sentence_length}")
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
    stats = ReadStats() if stats is None else stats
    resolved = _resolve(source)  # bad names and missing files fail here, not at first next()
    if isinstance(resolved, Path):
        _check_file(resolved)
        stream = _file_sentences(resolved, lowercase, errors, max_sentence_length, stats,
                                 chunk_size, normalize)
        name = str(resolved)
    else:
        stream = _iterable_sentences(resolved, lowercase, max_sentence_length, stats, normalize)
        name = "(token lists)"
    return _counted(stream, stats, name)


def _counted(stream: Iterator[list[str]], stats: ReadStats, name: str) -> Iterator[list[str]]:
    start = stats.tokens
    for sentence in stream:
        stats.sentences += 1
        stats.tokens += len(sentence)
        yield sentence
    if stats.tokens == start:
        raise CorpusError(f"corpus {name} contains no words")


# ---------------------------------------------------------------------------------------------
# Vocabulary


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
        if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) \
                or min_count < 1:
            raise ConfigError(f"min_count must be an integer >= 1, got {min_count!r}")
        if max_size is not None and (isinstance(max_size, bool) or max_size < 1):
            raise ConfigError(f"max_size must be >= 1, got {max_size!r}")
        if order not in cls.ORDERS:
            raise ConfigError(f"order must be one of {', '.join(cls.ORDERS)}; got {order!r}")
        if isinstance(sentences, (str, os.PathLike)):
            sentences = iter_sentences(sentences)
        counter: collections.Counter = collections.Counter()
        for sentence in sentences:
            counter.update(sentence)  # Counter keeps first-occurrence order (dict order)
        if not counter:
            raise CorpusError("corpus contains no words")
        first = list(counter)  # first-occurrence order
        kept = [w for w in first if counter[w] >= min_count]
        if not kept:
            raise VocabError(f"min_count={min_count} removes every word "
                             f"(largest count is {max(counter.values())})")
        by_freq = sorted(kept, key=lambda w: -counter[w])  # stable: ties keep first occurrence
        if max_size is not None and len(kept) > max_size:
            keep = set(by_freq[:max_size])
            kept = [w for w in kept if w in keep]
            by_freq = by_freq[:max_size]
        words = {"frequency": by_freq, "alphabetical": sorted(kept), "first": kept}[order]
        return cls(tuple(words), np.array([counter[w] for w in words], dtype=np.int64))

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
        if offsets[0] != 0 or offsets[-1] != len(ids) or (np.diff(offsets) <= 0).any():
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


def load_corpus(source, *, min_count: int = 1, max_size: int | None = None,
                order: str = "frequency", lowercase: bool = True, errors: str = "strict",
                max_sentence_length: int = 10_000,
                normalize: str | None = "NFC") -> tuple[Vocab, EncodedCorpus, ReadStats]:
    """Build the vocabulary and encode `source`: two streaming passes over a file, one
    materialisation for an in-memory source. Returns (vocab, corpus, stats of the read).
    `normalize`: Unicode normalisation before tokenizing (see `tokenize`)."""
    stats = ReadStats()
    opts = dict(lowercase=lowercase, errors=errors, max_sentence_length=max_sentence_length,
                normalize=_check_normalize(normalize))
    resolved = _resolve(source)
    if not isinstance(resolved, Path):  # an iterator can be consumed only once
        source = list(iter_sentences(resolved, stats=stats, **opts))
        opts.update(lowercase=False, normalize=None)  # already done
        vocab = Vocab.build(source, min_count=min_count, max_size=max_size, order=order)
    else:
        vocab = Vocab.build(iter_sentences(resolved, stats=stats, **opts),
                            min_count=min_count, max_size=max_size, order=order)
        source = resolved
    corpus = encode_corpus(source, vocab, **opts)
    if corpus.n_tokens < 2:
        raise CorpusError(f"corpus has {corpus.n_tokens} in-vocabulary token(s) after "
                          f"min_count={min_count}; at least 2 are needed for training pairs")
    return vocab, corpus, stats


def corpus_fingerprint(source) -> str:
    """Hex sha256 identifying a corpus in experiment logs: of the file's bytes (streamed; for
    a .gz file, the compressed bytes), or of the token lists of an in-memory/toy corpus."""
    h = hashlib.sha256()
    resolved = _resolve(source)
    if isinstance(resolved, Path):
        with _open_raw(resolved) as f:
            for block in iter(lambda: f.read(CHUNK_SIZE), b""):
                h.update(block)
    else:
        for sentence in resolved:
            tokens = [sentence] if isinstance(sentence, str) else sentence
            h.update("\x1f".join(tokens).encode("utf-8", "surrogatepass") + b"\x1e")
    return h.hexdigest()


def _open_raw(path: Path) -> io.BufferedReader:
    _check_file(path)
    try:
        return open(path, "rb")
    except OSError as e:
        raise CorpusError(f"cannot read corpus file {path}: {e.strerror or e}") from None
