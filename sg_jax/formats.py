"""The word2vec text and binary vector formats.

word2vec formats (as written by the word2vec C tool and read by gensim's `load_word2vec_format`):

* text:   a header line "V N\\n", then V lines "word v1 v2 ... vN\\n", single spaces. Values are
          written with 9 significant digits (``%.9g``), the fewest that always round-trip a float32,
          so reading a file back gives bit-identical float32 vectors.
* binary: the header line "V N\\n", then V records: the word's UTF-8 bytes, b" ", N little-endian
          float32 (4N bytes), b"\\n" (the C tool's layout; the trailing newline is optional when
          reading, as some writers omit it).

Words are refused when the formats cannot hold them: empty words, words containing any
whitespace (readers split fields on whitespace), words longer than `MAX_WORD_CHARS` characters
(the corpus reader never yields one), and duplicates (a file with a duplicate word is also
refused on reading, where gensim keeps the first and warns). Vectors holding NaN or an infinity
are refused on writing and on reading, naming the row and the word. Reading refuses a header
with a dimension over `MAX_DIM` before allocating anything (the rows allocated are bounded by the
file's size, whatever count the header gives), and a path that is not a regular file (a FIFO or
a device would block or give no size).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Sequence

import numpy as np

from sg_jax.atomic import atomic_open
from sg_jax.errors import ConfigError, FormatError, quoted
from sg_jax.limits import MAX_WORD_BYTES, MAX_WORD_CHARS

_WHITESPACE = re.compile(r"\s")
_ROWS_PER_WRITE = 1024
MAX_DIM = 1 << 20  # the widest vectors read (4 MiB a row); the rows allocated are bounded by the file size
_READ_CHUNK = 1 << 20  # bytes per read when parsing binary files



def _checked_for_save(words: Sequence[str], vectors) -> tuple[list[str], np.ndarray]:
    """Validate before anything is opened, so a refused save leaves no file behind."""
    arr = np.asarray(vectors)
    if arr.ndim != 2:
        raise FormatError(f"vectors must be a [V, N] matrix, got shape {arr.shape}")
    words = list(words)
    if len(words) != arr.shape[0]:
        raise FormatError(f"{len(words)} words but {arr.shape[0]} vectors")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise FormatError(f"nothing to save: vectors have shape {arr.shape}")
    seen: set[str] = set()
    for i, w in enumerate(words):
        if not isinstance(w, str) or not w:
            raise FormatError(f"word {i} is {quoted(w)}; words must be non-empty strings")
        if _WHITESPACE.search(w):
            raise FormatError(f"word {quoted(w)} contains whitespace, which the word2vec format cannot hold")
        if len(w) > MAX_WORD_CHARS:
            raise FormatError(f"word {quoted(w)} is longer than {MAX_WORD_CHARS} characters")
        if w in seen:
            raise FormatError(f"duplicate word {quoted(w)}")
        seen.add(w)
    arr = np.ascontiguousarray(arr, dtype="<f4")
    _check_finite(arr, words, "vectors", "row", lambda i: i + 1)
    return words, arr


def _check_finite(arr: np.ndarray, words: Sequence[str], name: str, unit: str, where) -> None:
    """FormatError naming the first row holding NaN or an infinity (`where(i)`: its line or row)."""
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        i = int(np.argmin(finite))
        bad = arr[i][~np.isfinite(arr[i])][0]
        raise FormatError(f"{name} {unit} {where(i)}: the vector of {quoted(words[i])} holds {bad} "
                          f"(NaN and infinite values are refused)")


def _write_rows(path, words: Sequence[str], vectors, encode) -> None:
    words, arr = _checked_for_save(words, vectors)
    with atomic_open(path, "wb") as f:
        f.write(f"{arr.shape[0]} {arr.shape[1]}\n".encode())
        for start in range(0, len(words), _ROWS_PER_WRITE):
            stop = start + _ROWS_PER_WRITE
            f.write(encode(words[start:stop], arr[start:stop]))


def save_word2vec_text(path: str | os.PathLike, words: Sequence[str], vectors) -> None:
    """Write `vectors` [V, N] (cast to float32) as a word2vec text file, atomically."""

    def encode(chunk_words: list[str], block: np.ndarray) -> bytes:
        fmt = " ".join(["%.9g"] * block.shape[1])
        return "".join(f"{w} {fmt % tuple(r)}\n" for w, r in zip(chunk_words, block.tolist())).encode("utf-8")

    _write_rows(path, words, vectors, encode)


def save_word2vec_binary(path: str | os.PathLike, words: Sequence[str], vectors) -> None:
    """Write `vectors` [V, N] as a word2vec binary file (little-endian float32), atomically."""

    def encode(chunk_words: list[str], block: np.ndarray) -> bytes:
        return b"".join(w.encode("utf-8") + b" " + r.tobytes() + b"\n" for w, r in zip(chunk_words, block))

    _write_rows(path, words, vectors, encode)


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _open(path, what: str):  # a missing, unreadable or non-regular file is a FormatError
    try:
        mode = os.stat(path).st_mode  # before open(): opening a FIFO blocks until a writer comes
        if not stat.S_ISREG(mode):
            kind = next((k for test, k in _FILE_KINDS if test(mode)), "not a regular file")
            raise FormatError(f"{what} {path} is {kind}, not a regular file")
        return open(path, "rb")
    except FileNotFoundError:
        raise FormatError(f"{what} {path} does not exist") from None
    except OSError as e:
        raise FormatError(f"cannot read {what} {path}: {e.strerror}") from None


def _parse_header(line: bytes, name: str) -> tuple[int, int]:
    try:
        count, dim = map(int, line.split())
    except ValueError:
        shown = line.decode("utf-8", "replace").strip()
        raise FormatError(f"{name}: bad header {quoted(shown)} (expected 'count dim')") from None
    if count < 1 or dim < 1:
        raise FormatError(f"{name}: bad header '{count} {dim}' (count and dim must be >= 1)")
    if dim > MAX_DIM:  # checked before anything of that size is allocated
        raise FormatError(f"{name}: bad header {quoted(f'{count} {dim}')} (dim must be at most {MAX_DIM:,})")
    return count, dim


def _looks_binary(f, dim: int) -> bool:
    """Sniff the first record: text if the line up to the first newline is UTF-8 and either a
    well-formed text row (a word and `dim` numbers; the word may hold control characters) or free
    of control characters; else binary."""
    start, want = f.tell(), 4096 + 64 * dim
    peek = f.read(want)
    f.seek(start)
    line, newline, _ = peek.partition(b"\n")
    if not newline and len(peek) == want:
        return True  # no newline where a text row would have ended
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    fields = line.split()
    if len(fields) == dim + 1:
        try:
            [float(x) for x in fields[1:]]
            return False
        except ValueError:
            pass
    return any(ord(c) < 32 and c not in "\t\r" or c == "\x7f" for c in text)


def _dedup(seen: dict, word: str, where: str, name: str, unit: str) -> None:
    if (first := seen.setdefault(word, where)) != where:
        raise FormatError(f"{name} {unit} {where}: duplicate word {quoted(word)} (first on {unit} {first})")


def _check_word(word: str, where: str) -> None:
    if len(word) > MAX_WORD_CHARS:
        raise FormatError(f"{where}: word {quoted(word)} is longer than {MAX_WORD_CHARS} characters")


def _read_text(f, name: str, count: int, dim: int, n: int, room: int) -> tuple[list[str], np.ndarray]:
    vectors = np.empty((min(n, room // (2 * dim + 1) + 1), dim), np.float32)
    words, seen = [], {}  # seen: word -> where it first appeared
    for lineno, line in enumerate(f, start=2):
        parts = line.split()
        if not parts:
            continue  # blank lines carry nothing
        row = len(words)
        if row == count:
            raise FormatError(f"{name} line {lineno}: more rows than the {count} its header says")
        if len(parts) != dim + 1:
            raise FormatError(f"{name} line {lineno}: header says {count} rows of dim {dim} "
                              f"but row {row + 1} has {len(parts) - 1} values")
        try:
            word = parts[0].decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{name} line {lineno}: word is not valid UTF-8") from None
        _check_word(word, f"{name} line {lineno}")
        try:
            vectors[row] = [float(x) for x in parts[1:]]
        except ValueError:
            for token in parts[1:]:  # find the culprit for the message
                try:
                    float(token)
                except ValueError:
                    bad = token.decode("utf-8", "replace")
                    raise FormatError(f"{name} line {lineno}: value {quoted(bad)} is not a number") from None
        if not np.isfinite(vectors[row]).all():  # also "1e39", which overflows float32
            _check_finite(vectors[row:row + 1], [word], name, "line", lambda i: lineno)
        _dedup(seen, word, str(lineno), name, "line")
        words.append(word)
        if len(words) == n < count:
            break  # `limit` reached
    if len(words) < n:
        raise FormatError(f"{name} has {len(words)} rows but its header says {count}")
    return words, vectors


def _read_binary(f, name: str, count: int, dim: int, n: int, room: int) -> tuple[list[str], np.ndarray]:
    width = 4 * dim
    vectors = np.empty((min(n, room // (width + 2) + 1), dim), np.float32)
    words, seen = [], {}  # seen: word -> where it first appeared
    buf, pos, eof = b"", 0, False

    def more() -> bool:
        nonlocal buf, pos, eof
        data = b"" if eof else f.read(_READ_CHUNK)
        eof = len(data) < _READ_CHUNK
        buf, pos = buf[pos:] + data, 0
        return bool(data)

    def truncated() -> FormatError:
        return FormatError(f"{name} is truncated: expected {count} vectors of dim {dim}, got {len(words)}")

    while len(words) < n:
        row = len(words) + 1
        while True:  # the word: skip the previous record's newline, read up to the space
            while pos < len(buf) and buf[pos] == 0x0A:
                pos += 1
            space = buf.find(b" ", pos)
            if space >= 0:
                break
            if len(buf) - pos > MAX_WORD_BYTES:
                raise FormatError(f"{name} row {row}: no space after the word within {MAX_WORD_BYTES} bytes "
                                  f"(words are at most {MAX_WORD_CHARS} characters)")
            if not more():
                raise truncated()
        if space == pos:
            raise FormatError(f"{name} row {row}: empty word")
        if space - pos > MAX_WORD_BYTES:
            raise FormatError(f"{name} row {row}: the word is {space - pos:,} bytes long "
                              f"(words are at most {MAX_WORD_CHARS} characters)")
        try:
            word = buf[pos:space].decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{name} row {row}: word is not valid UTF-8") from None
        _check_word(word, f"{name} row {row}")
        pos = space + 1
        while len(buf) - pos < width:
            if not more():
                raise truncated()
        vectors[row - 1] = np.frombuffer(buf, "<f4", dim, pos)
        pos += width
        _dedup(seen, word, str(row), name, "row")
        words.append(word)
    while n == count:  # only whitespace may follow the last record
        if buf[pos:].strip():
            raise FormatError(f"{name} has data after the {count} vectors its header says")
        pos = len(buf)
        if not more():
            break
    _check_finite(vectors[: len(words)], words, name, "row", lambda i: i + 1)
    return words, vectors


def load_word2vec(
    path: str | os.PathLike, binary: bool | None = None, *, limit: int | None = None
) -> tuple[list[str], np.ndarray]:
    """Read a word2vec text or binary file -> (words, vectors float32 [V, N]), streaming.

    binary=None decides by extension (.bin binary; .txt, .vec text) and otherwise by sniffing the
    first record (clean UTF-8 text up to a newline means text). limit: read only the first
    `limit` rows (the rest of the file is not checked). Any defect raises FormatError naming the
    file and the line (text) or row (binary).
    """
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be a positive integer, got {limit!r}")
    path, name = Path(path), str(path)
    with _open(path, "vectors file") as f:
        size = os.fstat(f.fileno()).st_size
        header = f.readline(1024)
        if not header.strip():
            raise FormatError(f"vectors file {name} is empty")
        count, dim = _parse_header(header, name)
        n = count if limit is None else min(count, limit)
        if binary is None:
            ext = path.suffix.lower()
            binary = True if ext == ".bin" else False if ext in (".txt", ".vec") else _looks_binary(f, dim)
        reader = _read_binary if binary else _read_text
        with np.errstate(over="ignore"):  # "1e39" overflows float32: refused as inf, not warned about
            words, vectors = reader(f, name, count, dim, n, size - len(header))
    return words, vectors[: len(words)]


def load_word_counts(path: str | os.PathLike) -> dict[str, int]:
    """word -> count from a vocabulary file of "word count" lines (gensim's and word2vec's fvocab)."""
    known: dict[str, int] = {}
    try:
        with open(path, encoding="utf8") as f:
            for line_no, line in enumerate(f, 1):
                parts = line.split()
                if len(parts) != 2 or not parts[1].isdigit():
                    raise FormatError(f"{path} line {line_no}: expected 'word count', got {quoted(line.strip())}")
                known[parts[0]] = int(parts[1])
    except OSError as e:
        raise FormatError(f"cannot read vocabulary file {path}: {e.strerror or e}") from None
    return known
