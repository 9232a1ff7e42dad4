"""Reading text: the streaming sentence readers.

A *source* (a text file, plain or gzip, one sentence per line or text8's single huge line; a
bundled corpus name; or token lists) is read by `iter_sentences` as a stream of token lists,
never materialised as text: the reader keeps at most about two chunks of bytes (1 MiB each by
default) plus one sentence of tokens in memory. `ReadStats` counts what it dropped.
`corpus_fingerprint` identifies a source by its bytes. What a word is (normalisation,
diacritics, the word pattern) is `sg_jax.data.tokenizer`'s.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import zlib
from pathlib import Path
from typing import Callable, Iterable, Iterator

from sg_jax.data.tokenizer import WORD_RE, _WORD_RUN, _check_normalize, normalize_text
from sg_jax.errors import ConfigError, CorpusError, quoted
from sg_jax.limits import MAX_WORD_CHARS
from sg_jax.toy import TOY_CORPORA

DEFAULT_CORPUS = "default"
DEFAULT_CORPUS_PATH = Path(__file__).resolve().parent / "brown.txt.gz"
CHUNK_SIZE = 1 << 20  # bytes read per call; also the longest piece of a line decoded at once

_WHITESPACE = b" \t\r\n\v\f"


def _tokenize_counted(text: str, lowercase: bool, normalize: str | None = "NFC",
                      stats: "ReadStats | None" = None, strip: bool = False) -> tuple[list[str], int]:
    """Tokens of `text` and the number of non-space characters that are not part of a token.
    Words longer than MAX_WORD_CHARS are dropped and counted in `stats.long_words`."""
    text = normalize_text(text, normalize, strip)
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


def _utf8_error(path: Path, line_no: int, byte_no: int) -> CorpusError:
    return CorpusError(f"{path}: invalid UTF-8 at line {line_no} (byte {byte_no} of the line); fix the "
                       "file or pass --encoding-errors replace")


def _decode(piece: bytes, errors: str, path: Path, line_no: int, offset: int,
            stats: ReadStats | None) -> str:
    try:
        return piece.decode("utf-8")
    except UnicodeDecodeError as e:
        if errors == "strict":
            raise _utf8_error(path, line_no, offset + e.start + 1) from None
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


def _file_sentences(path: Path, lowercase: bool, errors: str, max_len: int, stats: ReadStats,
                    chunk_size: int, normalize: str | None, strip: bool = False) -> Iterator[list[str]]:
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
            tokens, dropped = _tokenize_counted(text, lowercase, normalize, stats, strip)
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


def _iterable_sentences(source: Iterable, lowercase: bool, max_len: int, stats: ReadStats,
                        normalize: str | None, strip: bool = False) -> Iterator[list[str]]:
    for n, sentence in enumerate(source, 1):
        if isinstance(sentence, str):  # a list of raw sentences: tokenize them
            tokens, dropped = _tokenize_counted(sentence, lowercase, normalize, stats, strip)
            stats.dropped_chars += dropped
        else:
            if isinstance(sentence, (bytes, bytearray)) or not hasattr(sentence, "__iter__"):
                raise CorpusError(f"sentence {n} of the corpus is {quoted(sentence)} ({type(sentence).__name__}), "
                                  "not a list of tokens")
            tokens = list(sentence)
            if not all(isinstance(t, str) for t in tokens):
                bad = next(t for t in tokens if not isinstance(t, str))
                raise CorpusError(f"sentence {n}: token {quoted(bad)} is a {type(bad).__name__}, "
                                  "expected str")
            if normalize or strip:
                tokens = [normalize_text(t, normalize, strip) for t in tokens]
                if strip:  # a token of marks or tatweel alone is nothing once they are removed
                    tokens = [t for t in tokens if t]
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
                   chunk_size: int = CHUNK_SIZE, normalize: str | None = "NFC",
                   strip_diacritics: bool = False) -> Iterator[list[str]]:
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
    `tokenize`). `strip_diacritics`: remove Arabic and Hebrew diacritics after normalising (see
    `strip_diacritics`). Words longer than `MAX_WORD_CHARS` characters are dropped and counted in
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
                                 chunk_size, normalize, bool(strip_diacritics))
        name = str(resolved)
    else:
        stream = _iterable_sentences(resolved, lowercase, max_sentence_length, stats, normalize,
                                     bool(strip_diacritics))
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


def query_normalizer(text) -> Callable[[str], str | None]:
    """How the corpus reader spells one token under a run's text options (`text`: a Config, or
    anything with its `lowercase` and `normalize`): the reader itself is asked, so a query is
    normalised exactly as the training text was. None: the reader drops the token."""
    options = dict(lowercase=text.lowercase, normalize=text.normalize,
                   strip_diacritics=getattr(text, "strip_diacritics", False))

    def normal(word: str) -> str | None:
        try:
            sentence = next(iter_sentences([[word]], **options), None)
        except CorpusError:
            return None
        return sentence[0] if sentence and len(sentence) == 1 else None

    return normal


# ---------------------------------------------------------------------------------------------
# Vocabulary


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
