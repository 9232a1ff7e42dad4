"""Shared fixtures: `x64` turns on float64 for one test (derivation checks need it);
`zipf_text` writes a generated corpus file."""

from pathlib import Path

import jax
import numpy as np
import pytest


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
