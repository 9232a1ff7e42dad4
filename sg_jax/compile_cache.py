"""The persistent compilation cache: a run's compiled programs kept on disk for the next run.

Compiling the training step and the epoch's preparation is most of a short run's overhead (about
2 s of the 8 s that 5 epochs of the bundled corpus take on a 2-core CPU). JAX can keep compiled
executables on disk, keyed by the program, its shapes, the devices, the compiler options and the
JAX version; a later run with the same shapes (the same corpus and settings, any seed) loads them
instead of compiling. A cached executable is the compiled program itself, so the results do not
change (tests/test_compile_cache.py trains twice and compares the vectors byte for byte).

`enable()` turns the cache on for the run paths (`runs.run_training`, `study.together`) unless
the process already chose: JAX's own setting (`JAX_COMPILATION_CACHE_DIR`, or
`jax.config.update("jax_compilation_cache_dir", ...)`) is left as it is. The environment variable
`SG_JAX_COMPILATION_CACHE` names the directory, or turns the cache off with `off`; the default
is `$XDG_CACHE_HOME/sg_jax/xla` (`~/.cache/sg_jax/xla`). The cache holds at most `MAX_BYTES`,
least recently used entries evicted first, under a file lock (the `filelock` package), so
processes that share it never read an entry while another writes it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import jax

ENV = "SG_JAX_COMPILATION_CACHE"
OFF = ("off", "0", "false", "no", "none")
MAX_BYTES = 1 << 30
# Programs that compile faster than this are not worth a disk read: the small helper programs
# compile in milliseconds; the step, the epoch's preparation and the initialisation take
# 0.2 to 1.5 s each on a CPU.
MIN_COMPILE_SECONDS = 0.1
MIN_COMPILE_ENV = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sg_jax" / "xla"


def chosen_dir() -> Path | None:
    """The directory sg_jax would use, or None when the cache is off ($SG_JAX_COMPILATION_CACHE)."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in OFF:
        return None
    return Path(value).expanduser() if value else default_dir()


def enable() -> Path | None:
    """Turn on the persistent compilation cache unless the process chose otherwise. Returns the
    directory in use (JAX's own when it had one), or None when the cache is off."""
    own = jax.config.jax_compilation_cache_dir
    if own:
        return Path(own)
    directory = chosen_dir()
    if directory is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:  # an unwritable home: train without the cache rather than fail
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    if MIN_COMPILE_ENV not in os.environ:   # JAX's own setting, where the process chose one, wins
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    if importlib.util.find_spec("filelock") is not None:  # JAX's eviction and locking need it
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return directory
