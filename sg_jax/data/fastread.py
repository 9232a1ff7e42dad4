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

A piece's work (tokenizing it exactly as `sg_jax.data.text` would) is `sg_jax.data.piece`'s;
this module cuts the file, schedules the pieces and merges them. A line longer than a piece is
cut after ASCII whitespace; a file with a piece-long run without whitespace is read by the
sequential reader.

Workers are plain `python -m sg_jax.data.fastread` processes fed through pipes (one request, then
one reply at a time), so nothing depends on fork (unsafe once JAX has started threads) or on the
calling script being importable (spawn would re-run it).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import os
import pickle
import queue
import signal
import subprocess
import sys
import traceback
import zlib
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from sg_jax.data.piece import _CHUNKS, Piece, piece_of_sentences, scan_piece
from sg_jax.data.text import _WHITESPACE, _open_binary, _utf8_error
from sg_jax.data.vocabulary import _NpyStream
from sg_jax.errors import CorpusError

PIECE_BYTES = 2 << 20  # bytes of text per piece: a worker's unit of work (its memory: ~40x this)


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
