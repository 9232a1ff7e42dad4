"""Encoded corpora on disk and the corpus cache: used only when intact and current; damaged or
stale ones are refused (an explicit directory) or rebuilt (a cache entry), never used."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sg_jax.cli import main
from sg_jax.config import Config
from sg_jax.data import encoded, fastread
from sg_jax.data.corpus import EncodedCorpus, load_corpus
from sg_jax.data.text import corpus_fingerprint
from sg_jax.errors import CorpusError, FormatError
from sg_jax.runs import corpus_identity, read_corpus

TEXT = "".join(f"the cat {w} sat on the mat, and the dog {w} ran.\n" for w in ("black", "old", "young") * 20)
OPTIONS = encoded.config_options(Config(min_count=2))


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(TEXT)
    return path


def same(a, b):
    (va, ca, sa), (vb, cb, sb) = a[:3], b[:3]
    assert va == vb and sa == sb
    np.testing.assert_array_equal(ca.ids, cb.ids)
    np.testing.assert_array_equal(ca.offsets, cb.offsets)


def test_encoded_directory_gives_what_reading_gives(corpus, tmp_path):
    out = tmp_path / "enc"
    encoded.write_encoded(corpus, out, OPTIONS, reader=load_corpus)
    same(load_corpus(out, **OPTIONS), load_corpus(corpus, **OPTIONS))
    assert json.loads((out / "manifest.json").read_text())["fingerprint"] == corpus_fingerprint(corpus)
    # a run on the directory has the corpus's own fingerprint (resuming on either agrees)
    data = read_corpus(Config(min_count=2), out)
    assert data.fingerprint == corpus_fingerprint(corpus)
    assert corpus_identity(str(out), data.encoded)[0] == corpus_identity(corpus, data.encoded)[0]


@pytest.mark.parametrize("damage", ["flip ids", "truncate offsets", "drop vocab", "garble manifest",
                                    "edit vocab", "manifest gone"])
def test_damaged_directory_is_refused(corpus, tmp_path, damage):
    out = tmp_path / "enc"
    encoded.write_encoded(corpus, out, OPTIONS, reader=load_corpus)
    if damage == "flip ids":
        data = bytearray((out / "ids.npy").read_bytes())
        data[-3] ^= 0x01
        (out / "ids.npy").write_bytes(bytes(data))
    elif damage == "truncate offsets":
        (out / "offsets.npy").write_bytes((out / "offsets.npy").read_bytes()[:-8])
    elif damage == "drop vocab":
        (out / "vocab.json").unlink()
    elif damage == "garble manifest":
        (out / "manifest.json").write_text("{not json")
    elif damage == "edit vocab":
        (out / "vocab.json").write_text((out / "vocab.json").read_text().replace('"cat"', '"cow"'))
    else:
        (out / "manifest.json").unlink()
    with pytest.raises((FormatError, CorpusError)) as e:
        encoded.read_encoded(out, OPTIONS)
    message = str(e.value)
    assert "\n" not in message
    assert ("damaged" in message) if damage != "manifest gone" else ("not an encoded corpus" in message)


def test_stale_directory_and_other_options_are_refused(corpus, tmp_path):
    out = tmp_path / "enc"
    encoded.write_encoded(corpus, out, OPTIONS, reader=load_corpus)
    with pytest.raises(CorpusError, match="was read with min_count=2, not 1"):
        load_corpus(out, **dict(OPTIONS, min_count=1))
    with pytest.raises(CorpusError, match="strip_diacritics=False, not True"):
        load_corpus(out, **dict(OPTIONS, strip_diacritics=True))
    corpus.write_text(TEXT + "a new line\n")  # the corpus changed after it was encoded
    with pytest.raises(CorpusError, match="is stale"):
        load_corpus(out, **OPTIONS)
    with pytest.raises(CorpusError, match="is stale"):
        read_corpus(Config(min_count=2), out)


def test_cache_reuses_rebuilds_damage_and_never_serves_a_changed_corpus(corpus, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    vocab, enc, stats = load_corpus(corpus, cache_dir=cache, **OPTIONS)
    first = vocab, EncodedCorpus(np.array(enc.ids), np.array(enc.offsets)), stats  # not a map of the entry
    same(first, load_corpus(corpus, **OPTIONS))
    entry = encoded.cache_entry(cache, corpus_fingerprint(corpus), OPTIONS)
    assert encoded.is_encoded(entry) and [p.name for p in cache.iterdir()] == [entry.name]

    reads = []
    real_scan = fastread.scan_file
    monkeypatch.setattr(fastread, "scan_file", lambda *a, **k: reads.append(1) or real_scan(*a, **k))
    same(load_corpus(corpus, cache_dir=cache, **OPTIONS), first)
    assert reads == []  # reused: the file was not read again

    data = bytearray((entry / "ids.npy").read_bytes())
    data[-1] ^= 0xFF
    (entry / "ids.npy").write_bytes(bytes(data))
    log = []
    same(load_corpus(corpus, cache_dir=cache, log=log.append, **OPTIONS), first)
    assert reads == [1] and "damaged" in log[0]  # rebuilt, not used
    encoded.read_encoded(entry, OPTIONS)  # and whole again

    corpus.write_text(TEXT.replace("cat", "cow"))
    changed = load_corpus(corpus, cache_dir=cache, **OPTIONS)
    assert "cow" in changed[0] and "cat" not in changed[0] and reads == [1, 1]
    assert len(list(cache.iterdir())) == 2  # another key: the old entry is never served for it


def test_encode_command_and_train_refusing_a_damaged_directory(corpus, tmp_path, capsys):
    out = tmp_path / "enc"
    assert main(["encode", str(corpus), "--out", str(out), "--min-count", "2"]) == 0
    assert "encoded" in capsys.readouterr().out
    same(encoded.read_encoded(out, OPTIONS), load_corpus(corpus, **OPTIONS))
    (out / "offsets.npy").write_bytes(b"\x93NUMPY garbage")
    assert main(["train", "--corpus", str(out), "--out", str(tmp_path / "run"), "--min-count", "2",
                 "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sg-jax: error: encoded corpus") and "damaged" in err and "\n" not in err
    assert not (tmp_path / "run" / "vectors.txt").exists()


def test_encode_command_refuses_bad_input_in_a_subprocess(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sg_jax", "encode", str(tmp_path / "missing.txt"), "--out",
                           str(tmp_path / "enc")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "corpus file not found" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "enc" / "manifest.json").exists()


def test_encode_command_writes_nothing_for_an_unreadable_corpus(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nnot \xff utf-8\n")
    out = tmp_path / "enc"
    assert main(["encode", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "invalid UTF-8 at line 2" in err and err.count("\n") == 1
    assert not out.exists()


def test_train_with_a_corpus_cache_reads_once(corpus, tmp_path, monkeypatch):
    monkeypatch.delenv(encoded.CACHE_ENV, raising=False)
    cache = tmp_path / "cache"
    reads = []
    real_scan = fastread.scan_file
    monkeypatch.setattr(fastread, "scan_file", lambda *a, **k: reads.append(1) or real_scan(*a, **k))
    for run in ("a", "b"):
        assert main(["train", "--corpus", str(corpus), "--corpus-cache", str(cache), "--out", str(tmp_path / run),
                     "--min-count", "2", "--dim", "4", "--epochs", "1", "--batch-size", "16", "--quiet"]) == 0
    assert reads == [1] and len(list(cache.iterdir())) == 1  # the second run used the entry
    assert encoded.CACHE_ENV not in os.environ  # the option does not outlive the command
    a, b = ((tmp_path / run / "vectors.txt").read_text() for run in ("a", "b"))
    assert a == b  # the same corpus, the same vectors
