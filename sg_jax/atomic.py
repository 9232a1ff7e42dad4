"""Atomic file output: write to a temporary name in the same directory, then rename.

A reader (or a crash) never sees a half-written file: either the old file or the complete new
one is at the final path. A log that grows line by line (`append_line`) gets each line in one
write on an O_APPEND descriptor: a crash can cut only the last line short, never an earlier one.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside `path`; on a clean exit fsync it and rename it onto `path`.

    On an exception the temporary file is removed and `path` is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports 'w' and 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def atomic_write_csv(path: str | os.PathLike, rows, fields=None) -> None:
    """Write dict rows as CSV (header from `fields` or the first row's keys), atomically."""
    rows = list(rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields or (rows[0] if rows else [])), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def append_line(path: str | os.PathLike, line: str, *, fsync: bool = False) -> None:
    """Append `line` (which ends with a newline) to `path`, creating it: one write on an O_APPEND
    descriptor, so lines appended one after another never interleave and a crash leaves at most
    the last line cut short. The bytes reach the operating system before this returns (a killed
    process loses none of them); `fsync` also waits for the disk."""
    data = memoryview(line.encode("utf-8"))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        while data:
            data = data[os.write(fd, data):]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: str | os.PathLike, block: int = 1 << 22) -> str:
    """The hex sha256 of a file's bytes, read in blocks (what manifests record and check)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            h.update(chunk)
    return h.hexdigest()
