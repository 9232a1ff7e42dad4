"""The persistent compilation cache (sg_jax.compile_cache): where it goes, that the process's own
choice wins, and that a run served from it trains the same vectors as one that compiles."""

import os
import subprocess
import sys
from pathlib import Path

import jax

from sg_jax import compile_cache


def test_the_directory_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(compile_cache.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.chosen_dir() == tmp_path / "xdg" / "sg_jax" / "xla"
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "mine"))
    assert compile_cache.chosen_dir() == tmp_path / "mine"
    for off in ("off", "OFF", "0", "none"):
        monkeypatch.setenv(compile_cache.ENV, off)
        assert compile_cache.chosen_dir() is None


def test_jax_own_setting_is_left_as_it_is(monkeypatch, tmp_path):
    # the suite's conftest sets JAX_COMPILATION_CACHE_DIR, as a user's environment may
    own = jax.config.jax_compilation_cache_dir
    assert own
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "other"))
    assert compile_cache.enable() == Path(own)
    assert jax.config.jax_compilation_cache_dir == own
    assert not (tmp_path / "other").exists()


def _train(tmp_path, name, cache: str) -> bytes:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")
           and not k.startswith("JAX_PERSISTENT_CACHE")}
    env[compile_cache.ENV] = cache
    out = tmp_path / name
    proc = subprocess.run([sys.executable, "-m", "sg_jax", "train", "--corpus", "toy:groups", "--epochs", "2",
                           "--min-count", "1", "--out", str(out), "--quiet"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return (out / "vectors.txt").read_bytes()


def test_a_run_from_the_cache_trains_the_vectors_a_compiling_run_trains(tmp_path):
    cache = tmp_path / "cache"
    compiled = _train(tmp_path, "off", "off")
    first = _train(tmp_path, "first", str(cache))      # compiles, and fills the cache
    entries = sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache"))
    assert any(name.startswith("jit_run_steps") for name in entries), entries
    second = _train(tmp_path, "second", str(cache))    # loads the step from the cache
    assert first == compiled and second == compiled
    assert sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache")) == entries
