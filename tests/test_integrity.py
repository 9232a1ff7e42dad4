"""Files that sg_jax writes or reads, damaged or hostile: each is refused with one line naming
what is wrong (exit 2, no traceback, nothing overwritten), or read correctly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from sg_jax import cli, formats
from sg_jax.embeddings import Embeddings
from sg_jax.errors import ConfigError, FormatError
from sg_jax.limits import MAX_WORD_CHARS

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--dim", "4", "--epochs", "1", "--min-count", "1", "--quiet"]
WORDS = ["king", "queen", "man", "woman", "apple"]


@pytest.fixture(scope="module", autouse=True)
def default_jax_types():
    with jax.enable_x64(False):
        yield


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def error(capsys, *argv) -> str:
    """Run the CLI, check it failed cleanly with one line, return the message."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    assert err.startswith("sg-jax: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err[len("sg-jax: error: "):-1]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def sg_jax(*argv, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "sg_jax.cli", *map(str, argv)], env=env,
                          capture_output=True, text=True, timeout=300, **kwargs)


QUERIES = {
    "similar": lambda path: ["similar", "king", "--vectors", path],
    "analogy": lambda path: ["analogy", "man", "king", "woman", "--vectors", path],
    "eval": lambda path: ["eval", "--vectors", path],
}


def matrix() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((len(WORDS), 8)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# A. NaN and infinities in vectors


@pytest.mark.parametrize("command", QUERIES)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e39"])
def test_non_finite_text_vectors_are_refused_naming_the_line_and_word(capsys, tmp_path, command, value):
    rows = [f"{w} " + " ".join(["0.5"] * 8) for w in WORDS]
    rows[2] = "man 0.5 0.5 " + value + " 0.5 0.5 0.5 0.5 0.5"  # 1e39 overflows float32
    path = tmp_path / "v.txt"
    path.write_text("5 8\n" + "\n".join(rows) + "\n")
    shown = {"1e39": "inf"}.get(value, value)
    assert error(capsys, *QUERIES[command](path)) == \
        f"{path} line 4: the vector of 'man' holds {shown} (NaN and infinite values are refused)"


@pytest.mark.parametrize("command", QUERIES)
def test_all_nan_binary_vectors_are_refused(capsys, tmp_path, command):
    path = tmp_path / "v.bin"
    data = b"5 8\n" + b"".join(w.encode() + b" " + np.full(8, np.nan, "<f4").tobytes() + b"\n" for w in WORDS)
    path.write_bytes(data)
    assert error(capsys, *QUERIES[command](path)) == \
        f"{path} row 1: the vector of 'king' holds nan (NaN and infinite values are refused)"


def test_embeddings_refuse_non_finite_vectors_naming_row_and_word():
    vectors = matrix()
    vectors[3, 5] = -np.inf
    with pytest.raises(ConfigError, match=r"^vectors row 4 \(word 'woman'\) holds -inf; "):
        Embeddings(WORDS, vectors)


def test_writers_refuse_non_finite_vectors(tmp_path):
    vectors = matrix()
    vectors[1, 0] = np.nan
    for save in (formats.save_word2vec_text, formats.save_word2vec_binary):
        with pytest.raises(FormatError, match=r"^vectors row 2: the vector of 'queen' holds nan"):
            save(tmp_path / "v", WORDS, vectors)
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------
# C. vectors headers and paths that are not files


@pytest.mark.parametrize("header", ["1 100000000000000000000", "100000000000000000000 1", "99999999 300"])
def test_absurd_vectors_header_is_refused_before_allocating(capsys, tmp_path, header):
    path = tmp_path / "v.txt"
    path.write_text(header + "\nking 1\n")
    assert error(capsys, "similar", "king", "--vectors", path) == \
        f"{path}: bad header '{header}': that many rows of that dimension cannot fit in the 7 bytes after it"


def test_vectors_path_that_is_a_fifo_is_refused(capsys, tmp_path):
    fifo = tmp_path / "vectors.txt"
    os.mkfifo(fifo)
    assert error(capsys, "similar", "king", "--vectors", fifo) == \
        f"vectors file {fifo} is a FIFO, not a regular file"
    assert error(capsys, "eval", "--vectors", tmp_path) == f"vectors file {tmp_path} is a directory, not a regular file"
