"""Reading a text file on every core, in one pass: word counts and provisional ids.

The file is cut at line boundaries into pieces of about `PIECE_BYTES`; each piece is tokenized
on its own (in worker processes when the file spans several pieces) into a piece vocabulary (its
words in order of first occurrence, with counts), the piece's tokens as ids into that vocabulary,
and its lines' token counts. The parent merges the pieces in file order: the words into one
first-occurrence index (so the vocabulary's order, and hence every id, is the one the sequential
reader gives), the ids, mapped to that index ("provisional" ids), and the line lengths into two
`.npy` files. Memory stays bounded by the vocabulary and a few pieces; `sg_jax.data.corpus` then
builds the vocabulary from the counts and maps the provisional ids to final ones, cutting the
lines into sentences.

A piece's tokens are exactly `sg_jax.data.text`'s. No word spans whitespace, and neither decoding,
normalisation, diacritics nor lowercasing cross it (whitespace characters are starters that
compose with nothing), so a piece is split at whitespace into chunks, with each newline kept as
a marker, and each *distinct* chunk goes through the reference's normaliser and word pattern
once (a chunk of letters and digits only is one word, no pattern needed); numpy lays the words
out again in order. Pure-ASCII pieces, the common case, skip decoding (normalisation and
diacritics are the identity on ASCII). A line longer than a piece is cut after ASCII
whitespace; a file with a piece-long run without whitespace is read by the sequential reader.
`tests/test_fast_reader.py` holds the two readers equal on every script and awkward input.

Workers are plain `python -m sg_jax.data.fastread` processes fed through pipes (one request, then
one reply at a time), so nothing depends on fork (unsafe once JAX has started threads) or on the
calling script being importable (spawn would re-run it).
"""

from __future__ import annotations

import codecs
import collections
import concurrent.futures
import dataclasses
import itertools
import os
import pickle
import queue
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from sg_jax.data.text import WORD_RE, _WHITESPACE, _open_binary, _utf8_error, normalize_text
from sg_jax.errors import CorpusError
from sg_jax.limits import MAX_WORD_CHARS

PIECE_BYTES = 2 << 20  # bytes of text per piece: a worker's unit of work (its memory: ~40x this)

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


class NoCut(Exception):
    """A run of a piece's length without whitespace: the sequential reader takes the file."""


def pieces(path: Path, piece_bytes: int) -> Iterator[tuple[bytes, int]]:
    """(piece, bytes of the file read so far) for the file cut after newlines (after ASCII
    whitespace inside a line longer than a piece)."""
    with _open_binary(path) as f:
        raw = getattr(f, "fileobj", f)  # a gzip file's progress is in compressed bytes

        def read(n: int) -> bytes:
            try:
                return f.read(n)
            except (OSError, EOFError, zlib.error) as e:
                raise CorpusError(f"cannot read corpus file {path}: {e}") from None

        rest = b""
        while True:
            block = read(piece_bytes)
            if not block:
                break
            data = rest + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                if len(data) < piece_bytes:
                    rest = data
                    continue
                cut = max(data.rfind(bytes([c])) for c in _WHITESPACE) + 1
                if cut == 0:
                    raise NoCut
            yield data[:cut], raw.tell()
            rest = data[cut:]
        if rest:
            yield rest, raw.tell()


@dataclasses.dataclass
class Scan:
    """A file read once: `words` in first-occurrence order with `counts`; `ids_path` (.npy
    int32) holds every kept token as an index into `words`, `lines_path` (.npy int64) every
    line's token count."""

    words: list[str]
    counts: np.ndarray
    ids_path: Path
    lines_path: Path
    dropped_chars: int
    replaced_bytes: int
    long_words: int


class _Workers:
    """`n` worker processes, each serving one request at a time from a thread of a pool."""

    def __init__(self, n: int):
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.procs = [subprocess.Popen([sys.executable, "-m", "sg_jax.data.fastread"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, env=env) for _ in range(n)]
        self.idle: queue.Queue = queue.Queue()
        for p in self.procs:
            self.idle.put(p)
        self.threads = concurrent.futures.ThreadPoolExecutor(n)

    def _call(self, request) -> Piece:
        proc = self.idle.get()
        try:
            pickle.dump(request, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            proc.stdin.flush()
            ok, value = pickle.load(proc.stdout)
        except (EOFError, OSError, pickle.UnpicklingError):
            raise CorpusError(f"a corpus reader process exited unexpectedly (exit code {proc.poll()})") from None
        finally:
            self.idle.put(proc)
        if not ok:
            raise RuntimeError(f"corpus reader process failed:\n{value}")
        return value

    def submit(self, request) -> concurrent.futures.Future:
        return self.threads.submit(self._call, request)

    def close(self, kill: bool = False):
        self.threads.shutdown(wait=not kill, cancel_futures=True)
        for p in self.procs:
            if kill:
                p.kill()
            else:
                try:
                    p.stdin.close()
                except OSError:
                    pass
        for p in self.procs:
            p.wait()


class _Merger:
    """Merges pieces in file order into one first-occurrence index and the two .npy streams."""

    def __init__(self, path, fi, fl):
        from sg_jax.data.vocabulary import _NpyStream

        self.path = path
        self.ids_out, self.lines_out = _NpyStream(fi, np.int32), _NpyStream(fl, np.int64)
        self.index: dict[str, int] = {}
        self.counts = np.zeros(1024, np.int64)
        self.dropped = self.replaced = self.long_words = 0
        self.lines_done = self.open_tokens = self.open_bytes = 0

    def merge(self, piece: Piece) -> None:
        if piece.error is not None:
            if piece.error[0] == "nul":
                raise CorpusError(f"corpus file {self.path} looks like a binary file (NUL bytes), not text")
            _, line, byte = piece.error
            raise _utf8_error(self.path, self.lines_done + line + 1,
                              byte + (self.open_bytes if line == 0 else 0) + 1)
        index = self.index
        g = np.fromiter((index.setdefault(w, len(index)) for w in piece.words), np.int64, len(piece.words))
        if len(index) > len(self.counts):
            grown = np.zeros(max(len(index), 2 * len(self.counts)), np.int64)
            grown[:len(self.counts)] = self.counts
            self.counts = grown
        self.counts[g] += piece.counts  # g has no repeats: a piece's words are distinct
        self.ids_out.append(g[piece.ids])
        lines = piece.lines.copy()
        lines[0] += self.open_tokens
        self.lines_out.append(lines[:-1])
        self.lines_done += len(lines) - 1
        self.open_tokens = int(lines[-1])
        self.open_bytes = piece.tail_bytes + (self.open_bytes if len(lines) == 1 else 0)
        self.dropped += piece.dropped_chars
        self.replaced += piece.replaced_bytes
        self.long_words += piece.long_words

    def finish(self, ids_path: Path, lines_path: Path) -> Scan:
        if self.open_bytes or self.open_tokens:  # a last line without a newline
            self.lines_out.append(np.array([self.open_tokens], np.int64))
        self.ids_out.close()
        self.lines_out.close()
        return Scan(list(self.index), self.counts[:len(self.index)], ids_path, lines_path, self.dropped,
                    self.replaced, self.long_words)


MAX_PROCESSES = 16  # each worker holds a piece, its arrays and its chunk cache: about 100 MB


def default_processes() -> int:
    """One worker per usable core, at most MAX_PROCESSES."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_PROCESSES))


def scan_file(path: Path, workdir: Path, *, lowercase: bool, errors: str, normalize: str | None,
              strip: bool, processes: int | None = None, piece_bytes: int = PIECE_BYTES,
              on_progress: Callable[[int, int], None] | None = None) -> Scan:
    """Read `path` once (see the module's doc), writing the provisional ids and line lengths
    into `workdir`, with `processes` workers (default: one per core) when the file spans
    several pieces. Raises CorpusError for what the sequential reader refuses (NUL bytes,
    invalid UTF-8 under errors="strict", with the same messages), and NoCut.
    `on_progress(bytes_read, file_bytes)` is called as pieces are merged."""
    processes = default_processes() if processes is None else processes
    total = path.stat().st_size
    opts = (lowercase, errors, normalize, strip)
    ids_path, lines_path = workdir / "provisional_ids.npy", workdir / "line_lengths.npy"
    with open(ids_path, "wb") as fi, open(lines_path, "wb") as fl:
        merger = _Merger(path, fi, fl)

        def merge(piece: Piece, position: int):
            merger.merge(piece)
            if on_progress is not None:
                on_progress(position, total)

        workers = None
        if processes > 1 and total > 4 * piece_bytes:  # smaller files: starting workers costs more
            try:
                workers = _Workers(processes)
            except OSError:  # no interpreter to start (an embedded Python): read here
                workers = None
        if workers is not None:
            try:
                pending: collections.deque = collections.deque()
                for data, position in pieces(path, piece_bytes):
                    pending.append((workers.submit((data, *opts)), position))
                    if len(pending) >= 2 * processes:  # bounded: a few pieces in flight
                        future, pos = pending.popleft()
                        merge(future.result(), pos)
                while pending:
                    future, pos = pending.popleft()
                    merge(future.result(), pos)
            except BaseException:
                workers.close(kill=True)
                raise
            workers.close()
        else:
            try:
                for data, position in pieces(path, piece_bytes):
                    merge(scan_piece(data, *opts), position)
            finally:
                _CHUNKS.clear()  # the cache is for one file: keep nothing in the caller's process
        return merger.finish(ids_path, lines_path)


def piece_of_sentences(sentences: list[list[str]]) -> Piece:
    """Token lists (already read: normalised, lowercased) as a piece of one line each."""
    tokens = [t for s in sentences for t in s]
    first = dict.fromkeys(tokens)
    index = {w: i for i, w in enumerate(first)}
    ids = np.fromiter(map(index.__getitem__, tokens), np.int32, len(tokens))
    lines = np.array([len(s) for s in sentences] + [0], np.int64)
    return Piece(list(first), np.bincount(ids, minlength=len(first)).astype(np.int64), ids, lines, 0)


def scan_sentences(sentences, workdir: Path, batch_tokens: int = 1 << 20) -> Scan:
    """`scan_file` for a stream of token lists (each a line), consumed once, never held."""
    ids_path, lines_path = workdir / "provisional_ids.npy", workdir / "line_lengths.npy"
    with open(ids_path, "wb") as fi, open(lines_path, "wb") as fl:
        merger = _Merger("(token lists)", fi, fl)
        batch, n = [], 0
        for sentence in sentences:
            batch.append(sentence)
            n += len(sentence)
            if n >= batch_tokens:
                merger.merge(piece_of_sentences(batch))
                batch, n = [], 0
        if batch:
            merger.merge(piece_of_sentences(batch))
        return merger.finish(ids_path, lines_path)


def _serve() -> None:
    """A worker: read (data, *options) requests from stdin, answer (ok, Piece or traceback)."""
    import signal
    import traceback

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends the workers
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            request = pickle.load(stdin)
        except EOFError:
            return
        try:
            reply = (True, scan_piece(*request))
        except Exception:  # a bug, reported to the parent with its traceback
            reply = (False, traceback.format_exc())
        pickle.dump(reply, stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()


if __name__ == "__main__":  # run as a script: serve from the module proper, so replies unpickle
    from sg_jax.data.fastread import _serve as serve

    serve()
