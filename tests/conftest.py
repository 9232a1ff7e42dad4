"""Shared fixtures and helpers: `x64` turns on float64 for one test (derivation checks need it);
`default_jax_types` keeps 32-bit types for a module; `zipf_text` writes a generated corpus file;
`run` and `error` drive the CLI in-process and check its one-line errors.

The suite shares one persistent XLA compilation cache, in a temporary directory removed at the
end, with the subprocesses it starts (through the environment): many tests build the same
training step again (a new closure each time, so jit's in-memory cache misses), and compiling
is most of their time. A cached executable is the compiled program itself: results do not change.
"""

import os
import shutil
import tempfile
from pathlib import Path

_CACHE = tempfile.mkdtemp(prefix="sg_jax_test_xla_cache_")
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

import jax  # noqa: E402  (after the cache settings, which JAX reads when it starts)
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE, ignore_errors=True)


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pyproject.toml's addopts): one worker per core this process may run on, at most
    four. Each worker is a JAX process of its own (its own cache directory, above); more of them
    than cores would only slow the subprocess tests that hold a deadline."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, 4))


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def write_zipf_text(path: Path, n_tokens: int = 60_000, vocab: int = 400, seed: int = 0) -> None:
    """Zipf-distributed words w0..w{vocab-1} in sentences of 5..20 words."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1)
    tokens = np.array([f"w{i}" for i in range(vocab)])[rng.choice(vocab, size=n_tokens, p=p / p.sum())]
    cuts = np.cumsum(rng.integers(5, 21, size=n_tokens // 5))
    path.write_text("\n".join(" ".join(s) for s in np.split(tokens, cuts[cuts < n_tokens])) + "\n")


@pytest.fixture(scope="session")
def zipf_text():
    """write_zipf_text(path, n_tokens=..., vocab=..., seed=...): a generated corpus file."""
    return write_zipf_text


@pytest.fixture(scope="module")
def default_jax_types():
    """Train with JAX's default 32-bit types even if an earlier test in this process switched
    jax_enable_x64 on globally (`sg-jax gradcheck` does): results depend on it."""
    with jax.enable_x64(False):
        yield


def run(capsys, *argv) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit status, stdout, stderr)."""
    from sg_jax import cli

    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def error(capsys, *argv) -> str:
    """Run the CLI, check it failed cleanly with one line, return the message after 'sg-jax: error: '."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    assert err.startswith("sg-jax: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err[len("sg-jax: error: "):-1]


@pytest.fixture(scope="session")
def royals():
    """Six words on four axes (royal, adult, child, gender), each its kind plus or minus gender,
    so x : y :: z : ? is exact by construction; listed in "frequency" order (girl the rarest)."""
    from sg_jax.embeddings import Embeddings

    e = np.eye(4, dtype=np.float32)
    vectors = {
        "king": e[0] + 0.5 * e[3], "queen": e[0] - 0.5 * e[3],
        "man": e[1] + 0.5 * e[3], "woman": e[1] - 0.5 * e[3],
        "boy": e[2] + 0.5 * e[3], "girl": e[2] - 0.5 * e[3],
    }
    return Embeddings(list(vectors), np.stack(list(vectors.values())))
