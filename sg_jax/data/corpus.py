"""Corpora as ids: reading a corpus into its vocabulary and encoded corpus.

The types live in `sg_jax.data.vocabulary` (re-exported here). `Vocab.build` counts the words of a
sentence stream (`sg_jax.data.text.iter_sentences`) in one pass; `encode_corpus` maps the stream to int32 ids and packs it into an `EncodedCorpus` (`ids`
int32[T] + `offsets` int64[S + 1]), which can be saved as two memory-mappable `.npy` files.
`load_corpus` does both passes. The reading names are re-exported here for convenience.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

import sg_jax.data.encoded as encoded
import sg_jax.data.fastread as fastread
from sg_jax.atomic import atomic_open
from sg_jax.data.text import DEFAULT_CORPUS, corpus_fingerprint  # noqa: F401  (re-exported)
from sg_jax.data.text import ReadStats, _resolve, iter_sentences
from sg_jax.data.tokenizer import _check_normalize
from sg_jax.data.tokenizer import normalize_query, tokenize  # noqa: F401  (re-exported)
from sg_jax.data.vocabulary import EncodedCorpus, Vocab, _NpyBlocks, _NpyStream  # noqa: F401  (re-exported)
from sg_jax.errors import CorpusError


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


def load_corpus(source, *, min_count: int = 1, max_size: int | None = None,
                order: str = "frequency", lowercase: bool = True, errors: str = "strict",
                max_sentence_length: int = 10_000, normalize: str | None = "NFC",
                strip_diacritics: bool = False, directory: str | os.PathLike | None = None,
                processes: int | None = None, piece_bytes: int | None = None,
                on_progress=None, cache_dir: str | os.PathLike | None = None,
                log=lambda s: None) -> tuple[Vocab, EncodedCorpus, ReadStats]:
    """Build the vocabulary and encode `source` in one read (`sg_jax.data.fastread`: a file is cut
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
    Hebrew diacritics after it (see `sg_jax.data.tokenizer.strip_diacritics`). `on_progress(bytes_read,
    file_bytes)` is called while a file is read.

    `source` may be an encoded-corpus directory (`sg_jax.data.encoded`, `sg-jax encode`): it is used
    if it was read with these options and is neither damaged nor stale, else refused. With
    `cache_dir`, a file is read once into an entry there keyed by its fingerprint and these
    options, and reused by later calls (`log` hears when a damaged entry is rebuilt)."""
    Vocab._check_selection(min_count, max_size, order)
    opts = dict(lowercase=lowercase, errors=errors, max_sentence_length=max_sentence_length,
                normalize=_check_normalize(normalize), strip_diacritics=bool(strip_diacritics))
    options = dict(opts, min_count=min_count, max_size=max_size, order=order)
    read = dict(processes=processes, piece_bytes=piece_bytes, on_progress=on_progress)
    if isinstance(source, (str, os.PathLike)) and encoded.is_encoded(source):
        return encoded.read_encoded(source, options)[:3]
    if cache_dir is not None and directory is None and isinstance(_resolve(source), Path):
        return encoded.cached(source, cache_dir, options, reader=load_corpus, log=log, **read)[:3]
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
