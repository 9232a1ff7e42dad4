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


def _train(tmp_path, name, cache: str, **jax_env) -> bytes:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")
           and not k.startswith("JAX_PERSISTENT_CACHE")}
    env[compile_cache.ENV] = cache
    env.update(jax_env)
    out = tmp_path / name
    proc = subprocess.run([sys.executable, "-m", "sg_jax", "train", "--corpus", "toy:groups", "--epochs", "2",
                           "--min-count", "1", "--out", str(out), "--quiet"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return (out / "vectors.txt").read_bytes()


def test_a_run_from_the_cache_trains_the_vectors_a_compiling_run_trains(tmp_path):
    """Every program cached (a threshold of 0 s: which programs cross sg_jax's 0.1 s depends on
    the machine's load), so the second run compiles nothing and writes no entry."""
    cache = tmp_path / "cache"
    every = {compile_cache.MIN_COMPILE_ENV: "0"}
    compiled = _train(tmp_path, "off", "off")
    first = _train(tmp_path, "first", str(cache), **every)      # compiles, and fills the cache
    entries = sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache"))
    assert any(name.startswith("jit_run_steps") for name in entries), entries
    second = _train(tmp_path, "second", str(cache), **every)    # loads every program from the cache
    assert first == compiled and second == compiled
    assert sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache")) == entries


def test_the_processs_own_threshold_wins(tmp_path):
    """JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS, where set, is left as it is; else sg_jax's."""
    code = ("import jax; from sg_jax import compile_cache; compile_cache.enable(); "
            "print(jax.config.jax_persistent_cache_min_compile_time_secs)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")
           and not k.startswith("JAX_PERSISTENT_CACHE")}
    env[compile_cache.ENV] = str(tmp_path / "cache")
    for own, want in ((None, compile_cache.MIN_COMPILE_SECONDS), ("2.5", 2.5)):
        run_env = env if own is None else {**env, compile_cache.MIN_COMPILE_ENV: own}
        out = subprocess.run([sys.executable, "-c", code], env=run_env, capture_output=True, text=True, check=True)
        assert float(out.stdout.strip()) == want
