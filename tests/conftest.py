"""Shared fixtures. `x64` turns on float64 for one test (derivation checks need it)."""

import jax
import pytest


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield
