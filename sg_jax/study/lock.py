"""One sweep at a time per output directory: an exclusive, non-blocking lock on DIR/sweep.lock.

Two sweeps into one directory would both train every run and record each twice. The lock is an
`fcntl.flock` on a file that stays in the directory (removing it would let a third sweep lock a
new file while the second still holds the old one); the system releases it when its holder
exits, however it exits, so a killed sweep never leaves the directory locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from sg_jax.errors import ConfigError

LOCK_FILE = "sweep.lock"


@contextlib.contextmanager
def sweep_lock(out: Path) -> Iterator[None]:
    """Hold DIR/sweep.lock while the block runs; ConfigError naming the directory if another
    process holds it."""
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another sweep is running into {out} (it holds {out / LOCK_FILE}); wait for it "
                              f"to end or choose another --out") from None
        yield
    finally:
        os.close(fd)
