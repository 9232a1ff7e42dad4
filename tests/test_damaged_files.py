"""Randomized damage (hypothesis) to every file sg_jax reads back: vectors files (text and
binary), checkpoints and the sweep's runs.jsonl. A reader either reads the file or refuses it
with a FormatError of one bounded line; no other exception escapes. The command line, refusing a
damaged file, leaves every existing output byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sg_jax import checkpoint, cli, formats, runs
from sg_jax.data.corpus import Vocab
from sg_jax.errors import FormatError, SgJaxError
from sg_jax.study import records

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
WORDS = ["the", "café", "日本", "हिन्दी", "x"]
MAX_MESSAGE = 600  # characters: user data in messages is shortened


@pytest.fixture(scope="module", autouse=True)
def default_jax_types():
    with jax.enable_x64(False):
        yield


def assert_clean_refusal(error: Exception, allowed=(FormatError,)) -> None:
    assert isinstance(error, allowed), f"{type(error).__name__}: {error}"
    message = str(error)
    assert message and "\n" not in message and len(message) <= MAX_MESSAGE, message


def damage(data: bytes, draw) -> bytes:
    """One random kind of damage: cut, flipped bits, a span of garbage, or a new header line."""
    how = draw(st.sampled_from(["truncate", "flip", "garbage", "header"]))
    if how == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(out) - 1))
            out[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(out)
    if how == "garbage":
        start = draw(st.integers(0, len(data)))
        junk = draw(st.binary(min_size=1, max_size=40))
        return data[:start] + junk + data[start + draw(st.integers(0, 40)):]
    header = draw(st.one_of(
        st.tuples(st.integers(-5, 10**25), st.integers(-5, 10**25)).map(lambda t: f"{t[0]} {t[1]}"),
        st.text(max_size=30)))
    return header.encode("utf-8", "surrogatepass") + b"\n" + data.split(b"\n", 1)[-1]


@st.composite
def damaged(draw, data: bytes) -> bytes:
    return damage(data, draw)


# ---------------------------------------------------------------------------------------------
# vectors files


def _vectors_bytes(binary: bool) -> bytes:
    matrix = np.random.default_rng(0).standard_normal((len(WORDS), 3)).astype(np.float32)
    if binary:
        rows = b"".join(w.encode() + b" " + r.astype("<f4").tobytes() + b"\n" for w, r in zip(WORDS, matrix))
    else:
        rows = "".join(f"{w} " + " ".join("%.9g" % x for x in r) + "\n" for w, r in zip(WORDS, matrix)).encode()
    return f"{len(WORDS)} 3\n".encode() + rows


TEXT, BINARY = _vectors_bytes(False), _vectors_bytes(True)


@SETTINGS
@given(data=st.sampled_from([TEXT, BINARY]).flatmap(damaged), mode=st.sampled_from([None, True, False]),
       limit=st.sampled_from([None, 2]))
def test_damaged_vectors_file_is_read_or_refused(tmp_path, data, mode, limit):
    path = tmp_path / "v.vec"  # no telling extension: the format is sniffed when mode is None
    path.write_bytes(data)
    try:
        words, vectors = formats.load_word2vec(path, mode, limit=limit)
    except Exception as e:  # noqa: BLE001: anything but a FormatError is the bug looked for
        assert_clean_refusal(e)
        return
    assert len(words) == vectors.shape[0] >= 1 and np.isfinite(vectors).all()
    assert len(set(words)) == len(words) and all(words)


@SETTINGS
@given(data=st.binary(max_size=300), mode=st.sampled_from([None, True, False]))
def test_random_bytes_as_vectors_file(tmp_path, data, mode):
    path = tmp_path / "v.vec"
    path.write_bytes(data)
    try:
        formats.load_word2vec(path, mode)
    except Exception as e:  # noqa: BLE001
        assert_clean_refusal(e)


# ---------------------------------------------------------------------------------------------
# checkpoints


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    assert cli.main(["train", "--corpus", "toy:groups", "--out", str(out), "--dim", "4", "--epochs", "1",
                     "--min-count", "1", "--quiet"]) == 0
    return out


def _with_header(data: bytes, header: dict) -> bytes:
    """The checkpoint with another JSON header, its length and checksum made consistent."""
    length = int.from_bytes(data[8:16], "little")
    blob = json.dumps(header).encode()
    return struct.pack("<8sQ32s", b"SGJAXCKP", len(blob), hashlib.sha256(blob).digest()) + blob + data[48 + length:]


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=12)


@st.composite
def edited_header(draw, data: bytes) -> bytes:
    """A header edited in one place (a field removed or given a random value), re-checksummed."""
    length = int.from_bytes(data[8:16], "little")
    header = json.loads(data[48:48 + length])
    node, path = header, []
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        parent, node = node, node[key]
        path.append((parent, key))
    if not path:
        parent, key = header, draw(st.sampled_from(sorted(header)))
    else:
        parent, key = path[-1]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[key]
    else:
        parent[key] = draw(JSON)
    return _with_header(data, header)


def _checkpoint_variants(ckpt: bytes):
    return st.one_of(damaged(ckpt), edited_header(ckpt))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_checkpoint_is_read_or_refused(tmp_path, finished_run, data):
    ckpt = (finished_run / "checkpoint.sgjax").read_bytes()
    path = tmp_path / "c.sgjax"
    path.write_bytes(data.draw(_checkpoint_variants(ckpt)))
    from sg_jax.config import Config

    meta = json.loads(ckpt[48:48 + int.from_bytes(ckpt[8:16], "little")])["meta"]
    config, vocab = Config(**meta["config"]), Vocab.from_dict(meta["vocab"])
    try:
        checkpoint.load_checkpoint(path)
    except Exception as e:  # noqa: BLE001
        assert_clean_refusal(e)
    try:
        runs.load_progress(path, config, vocab, meta.get("corpus_fingerprint", ""))
    except Exception as e:  # noqa: BLE001
        # a well-formed checkpoint of another run (an edited config or vocabulary) is a ConfigError
        assert_clean_refusal(e, allowed=(SgJaxError,))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_cli_refusing_a_damaged_checkpoint_changes_no_file(tmp_path_factory, finished_run, capsys, data):
    out = tmp_path_factory.mktemp("resume") / "run"
    shutil.copytree(finished_run, out)
    ckpt = out / "checkpoint.sgjax"
    ckpt.write_bytes(data.draw(_checkpoint_variants(ckpt.read_bytes())))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code = cli.main(["train", "--corpus", "toy:groups", "--out", str(out), "--dim", "4", "--epochs", "1",
                     "--min-count", "1", "--quiet", "--resume"])
    err = capsys.readouterr().err
    if code != 0:
        assert code == 2 and err.startswith("sg-jax: error: ") and err.count("\n") == 1, err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# ---------------------------------------------------------------------------------------------
# runs.jsonl


@pytest.fixture(scope="module")
def good_record() -> bytes:
    record = {"run_id": "w1_d4_s0", "window": 1, "dim": 4, "seed": 0,
              "config": {"arch": "sg", "objective": "ns", "negative": 5, "share_negatives": "target", "epochs": 1,
                         "min_count": 1, "sample": 0.001, "dynamic_window": True},
              "corpus": {"fingerprint": "ab"}, "evaluation": {"restrict_vocab": 30000, "method": "add"},
              "code_version": {}, "device": {"platform": "cpu", "kind": "cpu", "jax": "0"},
              "loss_curve": {"epoch": [], "loss": []}, "final_loss": 1.0,
              "wordsim353": {"spearman": None, "n_pairs": 0, "n_oov": 0},
              "analogy": {"accuracy": None, "total": 0, "skipped": 0}, "wall_seconds": 1.0, "words_per_second": 1.0}
    records.check_record(record, "test")
    return json.dumps(record).encode()


@SETTINGS
@given(line=st.one_of(JSON.map(lambda v: json.dumps(v).encode()), st.binary(max_size=80)),
       position=st.sampled_from(["first", "last", "unterminated"]))
def test_random_runs_jsonl_lines_are_read_or_refused(tmp_path, good_record, line, position):
    path = tmp_path / "runs.jsonl"
    line = line.replace(b"\n", b" ")
    data = {"first": line + b"\n" + good_record + b"\n", "last": good_record + b"\n" + line + b"\n",
            "unterminated": good_record + b"\n" + line}[position]
    path.write_bytes(data)
    try:
        got = records.read_runs(path, log=lambda s: None)
    except Exception as e:  # noqa: BLE001
        assert_clean_refusal(e)
        assert path.read_bytes() == data  # a refused file is not rewritten
        return
    assert all(isinstance(r, dict) for r in got)
    if position != "unterminated" and line.strip():
        assert len(got) == 2  # a complete line is never dropped: it is a record or an error


@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes_as_runs_jsonl(tmp_path, data):
    path = tmp_path / "runs.jsonl"
    path.write_bytes(data)
    try:
        records.read_runs(path, repair=False)
    except Exception as e:  # noqa: BLE001
        assert_clean_refusal(e)


def test_a_checkpoint_whose_corpus_fingerprint_is_not_a_string_is_refused(tmp_path, finished_run):
    """A re-checksummed header whose corpus_fingerprint is a number or a boolean (found by the
    property test above) is a FormatError naming the field, not a TypeError from the comparison."""
    ckpt = (finished_run / "checkpoint.sgjax").read_bytes()
    length = int.from_bytes(ckpt[8:16], "little")
    header = json.loads(ckpt[48:48 + length])
    from sg_jax.config import Config

    meta = header["meta"]
    config, vocab, fingerprint = Config(**meta["config"]), Vocab.from_dict(meta["vocab"]), meta["corpus_fingerprint"]
    for bad in (False, True, 7, ["x"]):
        meta["corpus_fingerprint"] = bad
        path = tmp_path / "c.sgjax"
        path.write_bytes(_with_header(ckpt, header))
        with pytest.raises(FormatError, match="corpus_fingerprint"):
            runs.load_progress(path, config, vocab, fingerprint)
