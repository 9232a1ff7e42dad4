"""Encoded corpora on disk: read a corpus once, train on it many times.

An encoded-corpus directory holds what `load_corpus` makes of a corpus: `ids.npy` and
`offsets.npy` (memory-mapped when used: a process of a multi-process run reads only the pages of
its slice), `vocab.json` (the words and their counts), and `manifest.json`, written last: the
corpus's fingerprint, every option that shaped the result (the text options, min_count,
max_vocab, the order), the read statistics, and each file's size and sha256.

A directory is used only when everything agrees: the files' checksums (else it is damaged), the
options asked for, and, where the source can still be read, the source's fingerprint (else it is
stale). `sg-jax encode` writes one; a run given one as its corpus uses it, and refuses it when
damaged or stale. Under a cache directory (`load_corpus(cache_dir=...)`, `--corpus-cache`,
SG_JAX_CORPUS_CACHE), each corpus and option set has its own entry, keyed by the fingerprint and
the options: a damaged entry is rebuilt, a changed corpus has another key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from sg_jax.atomic import atomic_write_text, file_sha256
from sg_jax.data.text import ReadStats, corpus_fingerprint
from sg_jax.data.vocabulary import EncodedCorpus, Vocab, read_tokens
from sg_jax.errors import CorpusError, FormatError

MANIFEST = "manifest.json"
FORMAT = "sg_jax encoded corpus"
VERSION = 1
FILES = ("ids.npy", "offsets.npy", "vocab.json")
CACHE_ENV = "SG_JAX_CORPUS_CACHE"


def config_options(config) -> dict:
    """The `load_corpus` options a run with `config` reads its corpus with."""
    return dict(lowercase=config.lowercase, errors=config.encoding_errors, max_sentence_length=10_000,
                normalize=config.normalize, strip_diacritics=config.strip_diacritics,
                min_count=config.min_count, max_size=config.max_vocab, order="frequency")


def is_encoded(path) -> bool:
    """Whether `path` is an encoded-corpus directory (it has a manifest)."""
    try:
        path = Path(path)
    except TypeError:
        return False
    return path.is_dir() and (path / MANIFEST).is_file()


def write_encoded(source, directory, options: dict, *, reader, fingerprint: str | None = None, **read) -> tuple:
    """Read `source` with `options` into `directory` (created) and write its manifest last.
    reader: `sg_jax.data.corpus.load_corpus` (passed in: the reader calls this module for directories
    and caches); options and read are its keywords. Returns its (vocab, corpus, stats)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CorpusError(f"output path {directory} exists and is not a directory")
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).unlink(missing_ok=True)  # a half-rewritten directory is never valid
    try:
        fingerprint = fingerprint or corpus_fingerprint(source)
        vocab, corpus, stats = reader(source, directory=directory, **options, **read)
    except BaseException:
        if created:  # a corpus that cannot be read leaves nothing behind
            shutil.rmtree(directory, ignore_errors=True)
        raise
    atomic_write_text(directory / "vocab.json", vocab.to_json())
    files = {name: {"bytes": (directory / name).stat().st_size, "sha256": file_sha256(directory / name)}
             for name in FILES}
    manifest = {"format": FORMAT, "version": VERSION, "fingerprint": fingerprint,
                "source": str(source) if isinstance(source, (str, os.PathLike)) else None,
                "options": options, "stats": dataclasses.asdict(stats), "tokens": int(corpus.n_tokens),
                "sentences": int(corpus.n_sentences), "files": files}
    atomic_write_text(directory / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False))
    return vocab, corpus, stats


def read_manifest(directory) -> dict:
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusError(f"{directory} is not an encoded corpus (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"encoded corpus {directory} is damaged: {MANIFEST} is unreadable ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise FormatError(f"encoded corpus {directory} is damaged: {MANIFEST} is not an encoded corpus's")
    if manifest.get("version") != VERSION:
        raise FormatError(f"encoded corpus {directory} has format version {manifest.get('version')!r}; this "
                          f"sg_jax reads version {VERSION} (encode the corpus again)")
    for key, kind in (("fingerprint", str), ("options", dict), ("stats", dict), ("files", dict)):
        if not isinstance(manifest.get(key), kind):
            raise FormatError(f"encoded corpus {directory} is damaged: {MANIFEST} lacks a valid {key!r}")
    return manifest


def read_encoded(directory, options: dict | None = None, *, fingerprint: str | None = None,
                 check_source: bool = True) -> tuple:
    """(vocab, corpus, stats, fingerprint) of an encoded-corpus directory, after checking it:
    every file's size and sha256 (FormatError: damaged), `options` against those it was read
    with and `fingerprint` against its corpus's (CorpusError: made for another reading or
    stale). Without `fingerprint` and with `check_source`, the source named in the manifest is
    fingerprinted if it is still there."""

    directory = Path(directory)
    manifest = read_manifest(directory)
    if options is not None:
        saved = manifest["options"]
        for name, value in options.items():
            if name in saved and saved[name] != value:
                raise CorpusError(f"encoded corpus {directory} was read with {name}={saved[name]!r}, not "
                                  f"{value!r}: encode the corpus again with these options")
    for name in FILES:
        path, want = directory / name, manifest["files"].get(name)
        if not isinstance(want, dict) or not path.is_file():
            raise FormatError(f"encoded corpus {directory} is damaged: {name} is missing")
        if path.stat().st_size != want.get("bytes") or file_sha256(path) != want.get("sha256"):
            raise FormatError(f"encoded corpus {directory} is damaged: {name} does not match its checksum")
    source = manifest.get("source")
    if fingerprint is None and check_source and source and Path(source).is_file():
        fingerprint = corpus_fingerprint(source)
    if fingerprint is not None and fingerprint != manifest["fingerprint"]:
        raise CorpusError(f"encoded corpus {directory} is stale: its corpus {source or ''} has changed since it "
                          "was encoded (encode it again)")
    vocab = Vocab.from_json((directory / "vocab.json").read_text(encoding="utf-8"))
    corpus = EncodedCorpus.load(directory, mmap=True)
    top = max((int(np.max(read_tokens(corpus.ids, i, min(i + (1 << 22), corpus.n_tokens))))
               for i in range(0, corpus.n_tokens, 1 << 22)), default=-1)
    if top >= len(vocab) or corpus.n_tokens != manifest.get("tokens"):
        raise FormatError(f"encoded corpus {directory} is damaged: its ids do not fit its vocabulary")
    try:
        stats = ReadStats(**manifest["stats"])
    except TypeError:
        raise FormatError(f"encoded corpus {directory} is damaged: {MANIFEST} has malformed stats") from None
    return vocab, corpus, stats, manifest["fingerprint"]


def cache_entry(cache_dir, fingerprint: str, options: dict) -> Path:
    """The directory of a corpus read with `options` under `cache_dir`."""
    key = json.dumps({"version": VERSION, "fingerprint": fingerprint, "options": options}, sort_keys=True)
    return Path(cache_dir) / hashlib.sha256(key.encode()).hexdigest()[:32]


def cached(source, cache_dir, options: dict, *, reader, log=lambda s: None, **read) -> tuple:
    """(vocab, corpus, stats, fingerprint) of `source` read with `options`, from its entry
    under `cache_dir` when that entry checks out, else read (again) into it by `reader` (see
    `write_encoded`)."""
    fingerprint = corpus_fingerprint(source)
    entry = cache_entry(cache_dir, fingerprint, options)
    if entry.exists():
        try:
            return read_encoded(entry, options, fingerprint=fingerprint)
        except (CorpusError, FormatError) as e:
            log(f"corpus cache: {e}; reading the corpus again")
    # build beside the entry, then publish it with one rename: readers never see it half-made
    building = entry.with_name(f".{entry.name}.{uuid.uuid4().hex[:8]}")
    try:
        vocab, corpus, stats = write_encoded(source, building, options, reader=reader, fingerprint=fingerprint,
                                             **read)
        shutil.rmtree(entry, ignore_errors=True)
        try:
            os.replace(building, entry)
        except OSError:  # another process published the same entry meanwhile: use ours from here
            return vocab, corpus, stats, fingerprint
        return vocab, EncodedCorpus.load(entry), stats, fingerprint
    finally:
        shutil.rmtree(building, ignore_errors=True)
