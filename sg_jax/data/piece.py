"""One piece of a text file tokenized: a worker's unit of work for `sg_jax.data.fastread`.

A piece's tokens are exactly `sg_jax.data.text`'s. No word spans whitespace, and neither decoding,
normalisation, diacritics nor lowercasing cross it (whitespace characters are starters that
compose with nothing), so a piece is split at whitespace into chunks, with each newline kept as
a marker, and each *distinct* chunk goes through the reference's normaliser and word pattern
once (a chunk of letters and digits only is one word, no pattern needed); numpy lays the words
out again in order. Pure-ASCII pieces, the common case, skip decoding (normalisation and
diacritics are the identity on ASCII). `tests/test_fast_reader.py` holds the two readers equal on every script and awkward input.
"""

from __future__ import annotations

import codecs
import dataclasses
import itertools

import numpy as np

from sg_jax.data.tokenizer import WORD_RE, normalize_text
from sg_jax.limits import MAX_WORD_CHARS

_replaced = [0]


def _count_replace(e: UnicodeDecodeError):
    _replaced[0] += e.end - e.start  # the ranges "replace" turns into one U+FFFD each
    return "\ufffd", e.end


codecs.register_error("sg_jax.count_replace", _count_replace)


@dataclasses.dataclass
class Piece:
    """One piece's result. `lines[i]`: tokens of the piece's i-th line, the last one the line
    the piece ends in (empty and 0 when the piece ends with a newline)."""

    words: list[str]  # the piece's vocabulary, in first-occurrence order
    counts: np.ndarray  # int64 per word
    ids: np.ndarray  # int32 index into `words` of each kept token
    lines: np.ndarray  # int64 kept tokens per line
    tail_bytes: int  # bytes after the last newline
    dropped_chars: int = 0
    replaced_bytes: int = 0
    long_words: int = 0
    error: tuple | None = None  # ("nul",) or ("utf8", line index in piece, byte index in that line)


# what a whitespace-delimited chunk gives, per distinct chunk: (words, chars dropped, long words),
# one table per set of options; kept across a worker's pieces, since most chunks of a piece were
# in the previous ones
_CHUNKS: dict = {}
_CHUNK_CACHE_SIZE = 1 << 17  # entries (about 200 bytes each): a worker's memory stays small
_NOTHING = ((), 0, 0)


def _read_chunk(chunk, lowercase: bool, normalize: str | None, strip: bool):
    if isinstance(chunk, bytes):  # ASCII: decoding, NFC/NFKC and diacritics are the identity
        text = chunk.decode("ascii")
    else:
        text = normalize_text(chunk, normalize, strip)  # per chunk: whitespace never composes
    if text.isalnum():  # letters and digits only (all `\w`): the chunk is one word
        if len(text) > MAX_WORD_CHARS:
            return (), 0, 1
        return (text.lower() if lowercase else text,), 0, 0
    words = WORD_RE.findall(text)
    # the reference's count: non-space characters of the normalised text not in a word (NFKC
    # can turn a character into a space, so the chunk is split again)
    dropped = sum(map(len, text.split())) - sum(map(len, words))
    kept = [w for w in words if len(w) <= MAX_WORD_CHARS]
    return tuple(map(str.lower, kept)) if lowercase else tuple(kept), dropped, len(words) - len(kept)


def scan_piece(data: bytes, lowercase: bool, errors: str, normalize: str | None, strip: bool) -> Piece:
    """Tokenize a block of whole lines (the last one possibly open) as `sg_jax.data.text` would.

    The text is split at whitespace into chunks, each newline kept as a NUL marker (a NUL byte
    cannot be in the text: the reader refuses it). A word never spans whitespace, and
    normalisation, diacritics and lowercasing never cross it, so each *distinct* chunk is
    tokenized once, with the reference's pattern, and the piece's tokens are the chunks'
    words laid out again with numpy."""
    tail = len(data) - (data.rfind(b"\n") + 1)
    if b"\x00" in data:
        return Piece([], np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64), tail,
                     error=("nul",))
    replaced = 0
    if data.isascii():
        chunks = data.replace(b"\n", b" \x00 ").split()
        marker = b"\x00"
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            if errors == "strict":
                line_start = data.rfind(b"\n", 0, e.start) + 1
                return Piece([], np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64), tail,
                             error=("utf8", data.count(b"\n", 0, e.start), e.start - line_start))
            _replaced[0] = 0
            text = data.decode("utf-8", "sg_jax.count_replace")
            replaced = _replaced[0]
        chunks = text.replace("\n", " \x00 ").split()
        marker = "\x00"
    first = dict.fromkeys(chunks)  # the piece's distinct chunks, first occurrence first
    first.setdefault(marker)
    index = {c: i for i, c in enumerate(first)}
    pid = np.fromiter(map(index.__getitem__, chunks), np.int64, len(chunks))
    n_distinct = len(first)
    cache = _CHUNKS.setdefault((lowercase, normalize, strip), {})
    if len(cache) > _CHUNK_CACHE_SIZE:
        cache.clear()
    cache[marker] = _NOTHING
    found = list(map(cache.get, first))
    if None in found:
        for j, chunk in enumerate(first):
            if found[j] is None:
                found[j] = cache[chunk] = _read_chunk(chunk, lowercase, normalize, strip)
    words_of, dropped, long = zip(*found)
    dropped_of = np.fromiter(dropped, np.int64, n_distinct)
    long_of = np.fromiter(long, np.int64, n_distinct)
    n_of = np.fromiter(map(len, words_of), np.int64, n_distinct)  # words each distinct chunk gives
    flat = list(itertools.chain.from_iterable(words_of))  # in chunk order: first occurrences in order
    local = {w: i for i, w in enumerate(dict.fromkeys(flat))}
    table = np.fromiter(map(local.__getitem__, flat), np.int32, len(flat))
    per_chunk = np.bincount(pid, minlength=n_distinct)
    n_occ = n_of[pid]
    start_of = np.cumsum(n_of) - n_of
    occ_start = np.cumsum(n_occ) - n_occ  # where each chunk occurrence's words go
    source = np.repeat(start_of[pid] - occ_start, n_occ) + np.arange(int(n_occ.sum()))
    ids = table[source]
    token_line = np.repeat(np.cumsum(pid == index[marker]), n_occ)  # a marker ends its line
    n_lines = int(per_chunk[index[marker]]) + 1
    return Piece(list(local), np.bincount(ids, minlength=len(local)).astype(np.int64), ids,
                 np.bincount(token_line, minlength=n_lines).astype(np.int64), tail,
                 dropped_chars=int(dropped_of @ per_chunk), replaced_bytes=replaced,
                 long_words=int(long_of @ per_chunk))


def piece_of_sentences(sentences: list[list[str]]) -> Piece:
    """Token lists (already read: normalised, lowercased) as a piece of one line each."""
    tokens = [t for s in sentences for t in s]
    first = dict.fromkeys(tokens)
    index = {w: i for i, w in enumerate(first)}
    ids = np.fromiter(map(index.__getitem__, tokens), np.int32, len(tokens))
    lines = np.array([len(s) for s in sentences] + [0], np.int64)
    return Piece(list(first), np.bincount(ids, minlength=len(first)).astype(np.int64), ids, lines, 0)

