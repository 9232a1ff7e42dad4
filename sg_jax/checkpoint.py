"""Checksummed, atomically written checkpoints of pytrees.

A checkpoint is one file: a fixed 48-byte prefix (magic b"SGJAXCKP", the header length as a
little-endian uint64, the sha256 of the header), a UTF-8 JSON header (format name, version,
one entry per pytree leaf with its dtype, shape and byte range, the sha256 of the payload, and
the caller's `meta`), then the payload: every leaf's bytes, C order, little-endian.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sg_jax.atomic import atomic_open
from sg_jax.formats import _open
from sg_jax.errors import FormatError, quoted

CHECKPOINT_FORMAT = "sg_jax-checkpoint"
CHECKPOINT_VERSION = 1
_MAGIC = b"SGJAXCKP"
_PREFIX = struct.Struct("<8sQ32s")  # magic, header length in bytes, sha256(header)

_PY_SCALARS = {bool: ("bool", "bool"), int: ("int", "int64"), float: ("float", "float64")}  # kind, dtype


def _leaf_spec(leaf) -> tuple[str, str, tuple[int, ...]]:
    """(kind, dtype name, shape) of a pytree leaf; kinds: array, prng_key, bool, int, float."""
    if type(leaf) in _PY_SCALARS:  # exact types: np.float64 subclasses float but is an array
        return (*_PY_SCALARS[type(leaf)], ())
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return "prng_key", f"key<{jax.random.key_impl(leaf)}>", tuple(leaf.shape)
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic)) and leaf.dtype != object:
        return "array", np.dtype(leaf.dtype).name, tuple(np.shape(leaf))
    raise FormatError(f"cannot checkpoint a leaf of type {type(leaf).__name__}")


def _leaf_bytes(leaf, kind: str, dtype: str) -> np.ndarray:
    """The leaf's payload as a flat little-endian uint8 array."""
    data = jax.random.key_data(leaf) if kind == "prng_key" else leaf
    arr = np.ascontiguousarray(data, dtype=dtype if kind in ("bool", "int", "float") else None)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr.reshape(-1).view(np.uint8)


def _json_default(obj):
    if isinstance(obj, (np.generic, np.ndarray, jax.Array, os.PathLike)):
        return os.fspath(obj) if isinstance(obj, os.PathLike) else np.asarray(obj).tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def save_checkpoint(path: str | os.PathLike, tree: Any, meta: dict | None = None) -> None:
    """Save a pytree of arrays and Python scalars plus JSON-able `meta`, atomically.

    Leaves: numpy/jax arrays of any numeric dtype (kept byte for byte), typed PRNG keys (stored
    as uint32 key data + implementation name), Python bool/int/float. The tree's structure is
    not stored (`load_checkpoint` takes a template). In `meta`, numpy values and tuples -> lists.
    """
    entries, payload, offset, digest = [], [], 0, hashlib.sha256()
    for keypath, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        kind, dtype, shape = _leaf_spec(leaf)
        data = _leaf_bytes(leaf, kind, dtype)
        digest.update(data)
        payload.append(data)
        entries.append({"path": jax.tree_util.keystr(keypath), "kind": kind, "dtype": dtype,
                        "shape": list(shape), "offset": offset, "nbytes": data.size})
        offset += data.size
    header = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "n_leaves": len(entries),
              "leaves": entries, "payload_bytes": offset, "payload_sha256": digest.hexdigest(),
              "meta": {} if meta is None else meta}
    try:
        blob = json.dumps(header, default=_json_default, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise FormatError(f"checkpoint meta is not JSON-serialisable ({e})") from None
    with atomic_open(path, "wb") as f:
        f.write(_PREFIX.pack(_MAGIC, len(blob), hashlib.sha256(blob).digest()) + blob)
        for data in payload:
            f.write(data.data)


def _read_header(f, name: str, size: int) -> dict:
    """Check magic, sizes, header checksum, format name and version; return the header."""
    prefix = f.read(_PREFIX.size)
    if not prefix or prefix[:8] != _MAGIC[: len(prefix)]:
        raise FormatError(f"{name} is not an sg_jax checkpoint")
    length = _PREFIX.unpack(prefix)[1] if len(prefix) == _PREFIX.size else size  # short: truncated
    if _PREFIX.size + length > size:
        raise FormatError(f"checkpoint {name} is truncated")
    blob = f.read(length)
    if hashlib.sha256(blob).digest() != prefix[16:]:
        raise FormatError(f"checkpoint {name} is corrupted (checksum mismatch)")
    try:
        header = json.loads(blob)
        expected = _PREFIX.size + length + int(header["payload_bytes"])
    except (ValueError, KeyError, TypeError):
        raise FormatError(f"checkpoint {name} is corrupted (unreadable header)") from None
    if header.get("format") != CHECKPOINT_FORMAT:
        raise FormatError(f"{name} is not an sg_jax checkpoint")
    if header.get("version") != CHECKPOINT_VERSION:
        raise FormatError(f"checkpoint {name} has format version {header.get('version')!r}; "
                          f"this sg_jax reads version {CHECKPOINT_VERSION}")
    if size < expected:
        raise FormatError(f"checkpoint {name} is truncated (expected {expected} bytes, found {size})")
    if size > expected:
        raise FormatError(f"checkpoint {name} is corrupted ({size - expected} unexpected trailing bytes)")
    _check_entries(header, name)
    return header


_KINDS = ("array", "prng_key", "bool", "int", "float")


def _check_entries(header: dict, name: str) -> None:
    """The header's structure, before any of it is used to allocate or read: a header that passed
    its checksum but was written by hand (or by another program) is refused, not crashed on."""
    def bad(what: str) -> FormatError:
        return FormatError(f"checkpoint {name} is corrupted (header: {what})")

    entries, meta = header.get("leaves"), header.get("meta")
    if not isinstance(entries, list) or not isinstance(header.get("payload_sha256"), str):
        raise bad("leaves or payload_sha256 missing")
    if not isinstance(meta, dict):
        raise bad("meta is not a JSON object")
    total = 0
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise bad(f"leaf {i} is not a JSON object")
        kind, dtype, shape, nbytes = e.get("kind"), e.get("dtype"), e.get("shape"), e.get("nbytes")
        if kind not in _KINDS or not isinstance(dtype, str) or not isinstance(shape, list) \
                or not all(type(n) is int and n >= 0 for n in shape) or type(nbytes) is not int:
            raise bad(f"leaf {i} has a missing or malformed kind, dtype, shape or nbytes")
        try:
            itemsize = 8 if kind == "prng_key" else jnp.dtype(dtype).itemsize
            if kind != "prng_key" and jnp.dtype(dtype).kind in "OSUMm":
                raise TypeError(dtype)
        except TypeError:
            raise bad(f"leaf {i} has an unknown dtype {quoted(dtype)}") from None
        if kind == "prng_key" and not (dtype.startswith("key<") and dtype.endswith(">")):
            raise bad(f"leaf {i} has an unknown key type {quoted(dtype)}")
        if int(np.prod(shape, dtype=object)) * itemsize != nbytes:
            raise bad(f"leaf {i} is {_shape(dtype, shape)} but {nbytes} bytes")
        total += nbytes
    if total != header["payload_bytes"]:
        raise bad(f"the leaves hold {total} bytes, the payload {header['payload_bytes']}")


def load_checkpoint_meta(path: str | os.PathLike) -> dict:
    """Only the `meta` of a checkpoint: checks the header (and file size), skips the payload."""
    with _open(path, "checkpoint") as f:
        return _read_header(f, str(path), os.fstat(f.fileno()).st_size)["meta"]


def _shape(dtype: str, shape) -> str:
    return f"{dtype}[{','.join(map(str, shape))}]"


def _check_template(name: str, entries: list[dict], flat: list) -> None:
    if len(flat) != len(entries):
        raise FormatError(f"checkpoint {name} holds {len(entries)} leaves but the template has {len(flat)}")
    for i, ((keypath, leaf), e) in enumerate(zip(flat, entries)):
        _, dtype, shape = _leaf_spec(leaf)
        if (dtype, list(shape)) != (e["dtype"], e["shape"]):
            where = jax.tree_util.keystr(keypath) or "root"
            raise FormatError(f"checkpoint {name}: leaf {i} ({where}) is {_shape(e['dtype'], e['shape'])} "
                              f"in the file but {_shape(dtype, shape)} in the template")


def load_checkpoint(path: str | os.PathLike, template: Any = None) -> tuple[Any, dict]:
    """Read a checkpoint -> (tree, meta), verifying both checksums before returning anything.

    With `template` (a pytree of the saved structure, e.g. a freshly initialised train state),
    the leaves are checked against it (count, dtype, shape) and unflattened into its structure;
    a leaf comes back as a jax array where the template has one, as a Python scalar where the
    template has one, else as a numpy array. Without a template: the flat list of leaves (numpy
    arrays, typed PRNG keys, Python scalars) in `jax.tree_util.tree_flatten` order.
    """
    name = str(path)
    with _open(path, "checkpoint") as f:
        header = _read_header(f, name, os.fstat(f.fileno()).st_size)
        entries = header["leaves"]
        if template is not None:
            flat, treedef = jax.tree_util.tree_flatten_with_path(template)
            _check_template(name, entries, flat)
        digest, leaves = hashlib.sha256(), []
        for e in entries:  # read each leaf straight into its own array: no second copy
            key = e["kind"] == "prng_key"
            dtype = np.dtype(np.uint32) if key else jnp.dtype(e["dtype"])
            arr = np.empty(tuple(e["shape"]) + ((2,) if key else ()), dtype.newbyteorder("<"))
            view = arr.reshape(-1).view(np.uint8)
            if view.size != e["nbytes"] or f.readinto(view) != view.size:
                raise FormatError(f"checkpoint {name} is corrupted (leaf sizes disagree with the header)")
            digest.update(view)
            arr = arr.astype(dtype, copy=False)
            if key:
                try:
                    leaves.append(jax.random.wrap_key_data(arr, impl=e["dtype"][4:-1]))
                except (ValueError, TypeError, KeyError):
                    raise FormatError(f"checkpoint {name} is corrupted (unknown key type "
                                      f"{quoted(e['dtype'])})") from None
            else:
                leaves.append(arr.item() if e["kind"] in ("bool", "int", "float") else arr)
    if digest.hexdigest() != header["payload_sha256"]:
        raise FormatError(f"checkpoint {name} is corrupted (checksum mismatch)")
    if template is None:
        return leaves, header["meta"]
    leaves = [jax.device_put(x) if isinstance(t, jax.Array) and isinstance(x, np.ndarray) else x
              for (_, t), x in zip(flat, leaves)]
    return jax.tree_util.tree_unflatten(treedef, leaves), header["meta"]
