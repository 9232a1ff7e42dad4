"""word2vec text/binary formats and checkpoints: round trips, compatibility, every refusal."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sg_jax import formats
from sg_jax.errors import ConfigError, FormatError
from sg_jax.checkpoint import load_checkpoint, load_checkpoint_meta, save_checkpoint
from sg_jax.formats import load_word2vec, save_word2vec_binary, save_word2vec_text

WORDS = ["the", "café", "naïve", "日本", "x"]


def bits(a) -> np.ndarray:
    return np.asarray(a, np.float32).view(np.uint32)


@pytest.fixture
def vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    v = rng.standard_normal((len(WORDS), 7)).astype(np.float32)
    v[0, :4] = [1e-38, -3.4e38, -0.0, np.float32(1) / 3]  # subnormal-adjacent, huge, signed zero
    v[1, 0] = np.finfo(np.float32).max  # the largest finite value (NaN and inf are refused)
    return v


def listing(tmp_path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("save,name", [(save_word2vec_text, "v.txt"), (save_word2vec_binary, "v.bin")])
def test_round_trip_is_bit_identical(tmp_path, vectors, save, name):
    save(tmp_path / name, WORDS, vectors)
    words, loaded = load_word2vec(tmp_path / name)
    assert words == WORDS
    assert loaded.dtype == np.float32 and loaded.shape == vectors.shape
    np.testing.assert_array_equal(bits(loaded), bits(vectors))


def test_text_layout(tmp_path):
    save_word2vec_text(tmp_path / "v.txt", ["a", "b"], np.array([[0.5, -2.0], [0.1, 3e-5]], np.float32))
    assert (tmp_path / "v.txt").read_text() == "2 2\na 0.5 -2\nb 0.100000001 2.99999992e-05\n"


def test_binary_layout(tmp_path):
    save_word2vec_binary(tmp_path / "v.bin", ["é"], np.array([[1.0, -2.5]], np.float32))
    assert (tmp_path / "v.bin").read_bytes() == b"1 2\n" + "é".encode() + b" " + struct.pack("<2f", 1.0, -2.5) + b"\n"


def test_jax_vectors_are_accepted(tmp_path):
    save_word2vec_binary(tmp_path / "v.bin", ["a"], jnp.ones((1, 3)))
    assert load_word2vec(tmp_path / "v.bin")[1].tolist() == [[1.0, 1.0, 1.0]]


@pytest.mark.parametrize("save,binary", [(save_word2vec_text, False), (save_word2vec_binary, True)])
def test_format_is_detected_without_extension(tmp_path, vectors, save, binary):
    save(tmp_path / "vectors", WORDS, vectors)
    np.testing.assert_array_equal(load_word2vec(tmp_path / "vectors")[1], vectors)
    np.testing.assert_array_equal(load_word2vec(tmp_path / "vectors", binary=binary)[1], vectors)


@pytest.mark.parametrize("save,name", [(save_word2vec_text, "v.txt"), (save_word2vec_binary, "v.bin")])
def test_limit_reads_the_first_rows_only(tmp_path, vectors, save, name):
    save(tmp_path / name, WORDS, vectors)
    words, loaded = load_word2vec(tmp_path / name, limit=2)
    assert words == WORDS[:2]
    np.testing.assert_array_equal(loaded, vectors[:2])
    assert load_word2vec(tmp_path / name, limit=100)[0] == WORDS
    with pytest.raises(ConfigError, match="limit"):
        load_word2vec(tmp_path / name, limit=0)


def test_binary_reader_handles_records_split_across_reads(tmp_path, vectors, monkeypatch):
    save_word2vec_binary(tmp_path / "v.bin", WORDS, vectors)
    for chunk in (1, 3, 7, 29):
        monkeypatch.setattr(formats, "_READ_CHUNK", chunk)
        words, loaded = load_word2vec(tmp_path / "v.bin")
        assert words == WORDS
        np.testing.assert_array_equal(bits(loaded), bits(vectors))


# ----------------------------------------------------------------------------- hand-made files


def test_reads_hand_written_text(tmp_path):
    # word2vec C tool style: trailing space after the last value; also a CRLF line ending
    (tmp_path / "w2v.txt").write_bytes(
        "3 3\n"
        "</s> 0.001 -0.002 0.003 \n"
        "café 1 2.5 -3e-2\r\n"
        "日本 -1.0E2 0 .5\n".encode()
    )
    words, vectors = load_word2vec(tmp_path / "w2v.txt")
    assert words == ["</s>", "café", "日本"]
    np.testing.assert_array_equal(
        vectors, np.array([[0.001, -0.002, 0.003], [1, 2.5, -0.03], [-100, 0, 0.5]], np.float32)
    )


@pytest.mark.parametrize("newline", [b"\n", b""])
def test_reads_hand_built_binary(tmp_path, newline):
    body = b"2 3\n"
    body += b"dog " + struct.pack("<3f", 0.25, -1.0, 8.0) + newline
    body += "naïve".encode() + b" " + struct.pack("<3f", 1.5, 0.0, -0.125) + newline
    (tmp_path / "w2v.bin").write_bytes(body)
    words, vectors = load_word2vec(tmp_path / "w2v.bin")
    assert words == ["dog", "naïve"]
    np.testing.assert_array_equal(vectors, [[0.25, -1.0, 8.0], [1.5, 0.0, -0.125]])


# ----------------------------------------------------------------------------- gensim


@pytest.mark.parametrize("binary", [False, True])
def test_gensim_reads_our_files(tmp_path, vectors, binary):
    gensim_models = pytest.importorskip("gensim.models")
    path = tmp_path / ("v.bin" if binary else "v.txt")
    (save_word2vec_binary if binary else save_word2vec_text)(path, WORDS, vectors)
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert list(kv.index_to_key) == WORDS
    if binary:
        np.testing.assert_array_equal(bits(kv.vectors), bits(vectors))
    else:
        np.testing.assert_array_equal(kv.vectors, vectors)  # 9 digits: exact in float32


@pytest.mark.parametrize("binary", [False, True])
def test_we_read_gensim_files(tmp_path, vectors, binary):
    gensim_models = pytest.importorskip("gensim.models")
    kv = gensim_models.KeyedVectors(vectors.shape[1])
    kv.add_vectors(WORDS, np.nan_to_num(vectors, posinf=1.0))
    path = tmp_path / "gensim.vectors"
    kv.save_word2vec_format(str(path), binary=binary)
    words, loaded = load_word2vec(path)
    assert words == WORDS
    np.testing.assert_array_equal(bits(loaded), bits(kv.vectors))


# ----------------------------------------------------------------------------- load refusals


def write(tmp_path, name, data: bytes):
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("v.txt", b"", r"v\.txt is empty"),
        ("v.txt", b"\n\n", r"v\.txt is empty"),
        ("v.txt", b"three 4\na 1 2 3 4\n", r"bad header 'three 4'"),
        ("v.txt", b"3\n", r"bad header '3'"),
        ("v.txt", b"0 4\n", r"count and dim must be >= 1"),
        ("v.txt", b"3 4\na 1 2 3 4\nb 1 2 3 4 5\nc 1 2 3 4\n",
         r"line 3: header says 3 rows of dim 4 but row 2 has 5 values"),
        ("v.txt", b"3 2\na 1 2\nb 1 2\n", r"v\.txt has 2 rows but its header says 3"),
        ("v.txt", b"2 2\na 1 2\nb 1 2\nc 1 2\n", r"line 4: more rows than the 2 its header says"),
        ("v.txt", b"2 2\na 1 2\n\xff\xfe 1 2\n", r"line 3: word is not valid UTF-8"),
        ("v.txt", b"2 2\na 1 2\nb 1 x2\n", r"line 3: value 'x2' is not a number"),
        ("v.txt", b"3 2\ncat 1 2\ndog 1 2\ncat 3 4\n", r"line 4: duplicate word 'cat' \(first on line 2\)"),
        ("v.bin", b"3 4\na " + bytes(16) + b"\nb " + bytes(16) + b"\n",
         r"v\.bin is truncated: expected 3 vectors of dim 4, got 2"),
        ("v.bin", b"2 4\na " + bytes(16) + b"\nb " + bytes(9),
         r"v\.bin is truncated: expected 2 vectors of dim 4, got 1"),
        ("v.bin", b"2 1\na " + bytes(4) + b"\n\xff " + bytes(4), r"row 2: word is not valid UTF-8"),
        ("v.bin", b"2 1\nab " + bytes(4) + b"\nab " + bytes(4), r"row 2: duplicate word 'ab' \(first on row 1\)"),
        ("v.bin", b"1 1\na " + bytes(4) + b"\nb " + bytes(4), r"has data after the 1 vectors its header says"),
        ("v.bin", b"1 1\n " + bytes(4), r"row 1: empty word"),
    ],
    ids=lambda x: x if isinstance(x, str) and not x.startswith(("v.", "line", "row")) else None,
)
def test_load_refuses_broken_files(tmp_path, name, data, message):  # noqa: D103
    path = write(tmp_path, name, data)
    with pytest.raises(FormatError, match=message):
        load_word2vec(path)


def test_load_refuses_missing_file(tmp_path):
    with pytest.raises(FormatError, match=r"vectors file .*nope\.txt does not exist"):
        load_word2vec(tmp_path / "nope.txt")


def test_bogus_header_count_does_not_allocate(tmp_path):
    path = write(tmp_path, "v.bin", b"1000000000000 300\na " + bytes(1200))
    with pytest.raises(FormatError, match="truncated: expected 1000000000000 vectors of dim 300, got 1"):
        load_word2vec(path)


# ----------------------------------------------------------------------------- save refusals


@pytest.mark.parametrize("save", [save_word2vec_text, save_word2vec_binary])
@pytest.mark.parametrize(
    "words,message",
    [
        (["a", "new york"], r"word 'new york' contains whitespace"),
        (["a", "tab\tword"], r"contains whitespace"),
        (["a", "nbsp\u00a0word"], r"contains whitespace"),
        (["a", ""], r"word 1 is ''"),
        (["a", "a"], r"duplicate word 'a'"),
        (["a"], r"1 words but 2 vectors"),
    ],
)
def test_refused_save_leaves_nothing_behind(tmp_path, save, words, message):
    with pytest.raises(FormatError, match=message):
        save(tmp_path / "out.txt", words, np.zeros((2, 3), np.float32))
    assert listing(tmp_path) == []


def test_refused_save_keeps_the_old_file(tmp_path):
    save_word2vec_text(tmp_path / "v.txt", ["a"], np.ones((1, 2)))
    before = (tmp_path / "v.txt").read_bytes()
    with pytest.raises(FormatError):
        save_word2vec_text(tmp_path / "v.txt", ["a b"], np.ones((1, 2)))
    assert (tmp_path / "v.txt").read_bytes() == before
    assert listing(tmp_path) == ["v.txt"]


def test_save_refuses_non_matrix(tmp_path):
    with pytest.raises(FormatError, match=r"\[V, N\] matrix"):
        save_word2vec_text(tmp_path / "v.txt", ["a"], np.ones(3))


# ----------------------------------------------------------------------------- checkpoints


class State(NamedTuple):
    params: dict
    opt_state: object
    key: jax.Array
    step: int


def make_state() -> State:
    params = {"w_in": jax.random.normal(jax.random.PRNGKey(1), (5, 3)), "w_out": jnp.zeros((5, 3))}
    tx = optax.adam(0.01)
    opt_state = tx.init(params)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    _, opt_state = tx.update(grads, opt_state, params)
    return State(params, opt_state, jax.random.PRNGKey(42), 17)


MIXED = {
    "f32": np.float32([1.5, -0.0, np.nan]),
    "f64": np.array([[1 / 3, 1e-300]]),
    "i32": np.int32([-7, 2**31 - 1]),
    "u32": np.array([2**32 - 1, 0], np.uint32),
    "i64": np.array([-(2**62)], np.int64),
    "bool": np.array([True, False]),
    "scalar32": np.float32(0.1),
    "empty": np.zeros((0, 4), np.float32),
    "py": (3, 2.5, True),
}

META = {"config": {"dim": 3, "window": 5}, "vocab": {"words": ["a", "日本"], "counts": [3, 1]},
        "step": 17, "pipeline": {"epoch": 1, "offset": 12345}, "rng_key": [0, 42]}


def assert_same_leaves(got, want):
    g, w = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(g) == len(w)
    for a, b in zip(g, w):
        if isinstance(b, (int, float, bool)):
            assert type(a) is type(b) and a == b
        else:
            assert np.asarray(a).dtype == np.asarray(b).dtype and np.shape(a) == np.shape(b)
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_checkpoint_round_trip_with_template_is_bit_identical(tmp_path):
    state = make_state()
    save_checkpoint(tmp_path / "c.ckpt", state, META)
    template = jax.tree_util.tree_map(lambda x: jnp.zeros_like(x) if isinstance(x, jax.Array) else 0, state)
    loaded, meta = load_checkpoint(tmp_path / "c.ckpt", template)
    assert meta == META
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(state)
    assert isinstance(loaded.params["w_in"], jax.Array) and isinstance(loaded.step, int)
    assert_same_leaves(loaded, state)


def test_meta_alone_skips_the_payload(ckpt):
    assert load_checkpoint_meta(ckpt) == META
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[:-1])
    with pytest.raises(FormatError, match="truncated"):
        load_checkpoint_meta(ckpt)


def test_checkpoint_keeps_every_dtype(tmp_path):
    save_checkpoint(tmp_path / "c.ckpt", MIXED, {})
    leaves, meta = load_checkpoint(tmp_path / "c.ckpt")
    assert meta == {}
    assert_same_leaves(leaves, jax.tree_util.tree_leaves(MIXED))
    tree, _ = load_checkpoint(tmp_path / "c.ckpt", MIXED)
    assert isinstance(tree["f64"], np.ndarray) and tree["py"] == (3, 2.5, True)


def test_checkpoint_typed_prng_key(tmp_path):
    key = jax.random.split(jax.random.key(7), 3)
    save_checkpoint(tmp_path / "c.ckpt", {"k": key}, {})
    (loaded,), _ = load_checkpoint(tmp_path / "c.ckpt")
    assert jax.dtypes.issubdtype(loaded.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(loaded), jax.random.key_data(key))
    assert (jax.random.uniform(loaded[1]) == jax.random.uniform(key[1])).item()
    tree, _ = load_checkpoint(tmp_path / "c.ckpt", {"k": jax.random.split(jax.random.key(0), 3)})
    np.testing.assert_array_equal(jax.random.key_data(tree["k"]), jax.random.key_data(key))


def test_checkpoint_template_mismatch(tmp_path):
    save_checkpoint(tmp_path / "c.ckpt", {"a": np.zeros((2, 3), np.float32), "b": np.int32(0)}, {})
    with pytest.raises(FormatError, match="holds 2 leaves but the template has 1"):
        load_checkpoint(tmp_path / "c.ckpt", {"a": np.zeros((2, 3), np.float32)})
    with pytest.raises(FormatError, match=r"leaf 0 \(\['a'\]\) is float32\[2,3\] in the file but float32\[2,4\]"):
        load_checkpoint(tmp_path / "c.ckpt", {"a": np.zeros((2, 4), np.float32), "b": np.int32(0)})
    with pytest.raises(FormatError, match=r"leaf 1 .* is int32\[\] in the file but int64\[\]"):
        load_checkpoint(tmp_path / "c.ckpt", {"a": np.zeros((2, 3), np.float32), "b": 0})


@pytest.fixture
def ckpt(tmp_path):
    save_checkpoint(tmp_path / "c.ckpt", make_state(), META)
    return tmp_path / "c.ckpt"


def test_flipped_payload_byte_is_refused(ckpt):
    data = bytearray(ckpt.read_bytes())
    data[-5] ^= 0x01
    ckpt.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"c\.ckpt is corrupted \(checksum mismatch\)"):
        load_checkpoint(ckpt)


def test_flipped_header_byte_is_refused(ckpt):
    data = bytearray(ckpt.read_bytes())
    data[data.index(b'"step"') + 8] ^= 0x01  # a digit of the step in the meta
    ckpt.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"corrupted \(checksum mismatch\)"):
        load_checkpoint(ckpt)


@pytest.mark.parametrize("keep", [3, 8, 20, 47, 60, -1, -100])
def test_cut_checkpoint_is_refused(ckpt, keep):
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[:keep] if keep > 0 else data[:keep])
    with pytest.raises(FormatError, match=r"c\.ckpt is truncated"):
        load_checkpoint(ckpt)


def test_trailing_bytes_are_refused(ckpt):
    ckpt.write_bytes(ckpt.read_bytes() + b"\0")
    with pytest.raises(FormatError, match="corrupted .*1 unexpected trailing bytes"):
        load_checkpoint(ckpt)


def test_not_a_checkpoint(tmp_path):
    for data in (b"", b"3 4\nnot a checkpoint", b"SGJAXCKQ" + bytes(100)):
        (tmp_path / "x").write_bytes(data)
        with pytest.raises(FormatError, match="is not an sg_jax checkpoint"):
            load_checkpoint(tmp_path / "x")
    with pytest.raises(FormatError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.ckpt")


def rewrite_header(path, change):
    """Re-encode a checkpoint's header after `change(header)`, with a valid header checksum."""
    data = path.read_bytes()
    magic, length, _ = struct.unpack("<8sQ32s", data[:48])
    header = json.loads(data[48 : 48 + length])
    change(header)
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<8sQ32s", magic, len(blob), hashlib.sha256(blob).digest()) + blob + data[48 + length :])


def test_unknown_version_is_refused(ckpt):
    rewrite_header(ckpt, lambda h: h.update(version=2))
    with pytest.raises(FormatError, match="has format version 2; this sg_jax reads version 1"):
        load_checkpoint(ckpt)


def test_wrong_format_name_is_refused(ckpt):
    rewrite_header(ckpt, lambda h: h.update(format="something-else"))
    with pytest.raises(FormatError, match="not an sg_jax checkpoint"):
        load_checkpoint(ckpt)


def test_checkpoint_save_refusals_leave_nothing(tmp_path):
    with pytest.raises(FormatError, match="not JSON-serialisable"):
        save_checkpoint(tmp_path / "c.ckpt", {"a": np.zeros(2)}, {"bad": object()})
    with pytest.raises(FormatError, match="cannot checkpoint a leaf of type str"):
        save_checkpoint(tmp_path / "c.ckpt", {"a": "text"}, {})
    assert listing(tmp_path) == []


def test_meta_accepts_numpy_values(tmp_path):
    save_checkpoint(tmp_path / "c.ckpt", [], {"counts": np.arange(3), "lr": np.float32(0.5), "t": (1, 2)})
    leaves, meta = load_checkpoint(tmp_path / "c.ckpt")
    assert leaves == [] and meta == {"counts": [0, 1, 2], "lr": 0.5, "t": [1, 2]}
