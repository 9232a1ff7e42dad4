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
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from conftest import error, run

from sg_jax import cli, formats
from sg_jax.data.corpus import ReadStats, iter_sentences, tokenize
from sg_jax.embeddings import Embeddings
from sg_jax.errors import ConfigError, FormatError
from sg_jax.limits import MAX_WORD_CHARS

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--dim", "4", "--epochs", "1", "--min-count", "1", "--quiet"]
WORDS = ["king", "queen", "man", "woman", "apple"]


pytestmark = pytest.mark.usefixtures("default_jax_types")




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


@pytest.mark.parametrize("header,message", [
    ("1 100000000000000000000", "{p}: bad header '1 100000000000000000000' (dim must be at most 1,048,576)"),
    ("3 2000000", "{p}: bad header '3 2000000' (dim must be at most 1,048,576)"),
    ("100000000000000000000 1", "{p} has 1 rows but its header says 100000000000000000000"),
])
def test_absurd_vectors_header_is_refused_before_allocating(capsys, tmp_path, header, message):
    path = tmp_path / "v.txt"
    path.write_text(header + "\nking 1\n")
    assert error(capsys, "similar", "king", "--vectors", path) == message.format(p=path)


def test_vectors_path_that_is_a_fifo_is_refused(capsys, tmp_path):
    fifo = tmp_path / "vectors.txt"
    os.mkfifo(fifo)
    assert error(capsys, "similar", "king", "--vectors", fifo) == \
        f"vectors file {fifo} is a FIFO, not a regular file"
    assert error(capsys, "eval", "--vectors", tmp_path) == f"vectors file {tmp_path} is a directory, not a regular file"
    assert error(capsys, "train", "--corpus", fifo, "--out", tmp_path / "out", *SMALL) == \
        f"corpus path is not a regular file (a FIFO, socket or device): {fifo}"


# ---------------------------------------------------------------------------------------------
# C. checkpoints whose metadata is well-formed JSON but not what this sg_jax wrote


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert cli.main(["train", "--corpus", "toy:groups", "--out", str(out), *SMALL]) == 0
    return out


def _edit_meta(ckpt: Path, edit) -> None:
    """Rewrite a checkpoint with `edit(meta)` applied, checksums recomputed (a valid file)."""
    from sg_jax import checkpoint

    leaves, meta = checkpoint.load_checkpoint(ckpt)
    edit(meta)
    checkpoint.save_checkpoint(ckpt, leaves, meta)


@pytest.mark.parametrize("edit,message", [
    (lambda m: m["config"].update(fancy=1), "checkpoint {p}: config has unknown field 'fancy' (written by a newer sg_jax?)"),
    (lambda m: m["config"].pop("dim"), "checkpoint {p}: config lacks the field dim"),
    (lambda m: m.update(config=[1, 2]), "checkpoint {p}: config is not a JSON object"),
    (lambda m: m["position"].update(shard=0), "checkpoint {p}: position has an unknown field 'shard'"),
    (lambda m: m["position"].pop("step"), "checkpoint {p}: position lacks the field step"),
    (lambda m: m["position"].update(epoch="1"), "checkpoint {p}: position: epoch is '\"1\"', not a whole number >= 0"),
    (lambda m: m.pop("vocab"), "checkpoint {p} lacks the field vocab"),
    (lambda m: m["vocab"].pop("counts"), "malformed vocabulary record: counts is missing or not a list"),
    (lambda m: m.update(history=3), "checkpoint {p}: history is not a list of JSON objects"),
], ids=["config-extra", "config-missing", "config-list", "position-extra", "position-missing", "position-str",
        "no-vocab", "vocab-counts", "history"])
def test_checkpoint_with_unexpected_metadata_is_refused(capsys, tmp_path, finished_run, edit, message):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    ckpt = out / "checkpoint.sgjax"
    _edit_meta(ckpt, edit)
    before = snapshot(out)
    assert error(capsys, "train", "--corpus", "toy:groups", "--out", out, *SMALL, "--resume") == message.format(p=ckpt)
    assert snapshot(out) == before


# ---------------------------------------------------------------------------------------------
# C and E. the sweep's runs.jsonl

SWEEP = ["sweep", "--corpus", "toy:groups", "--windows", "1", "--dims", "4", "--epochs", "1", "--min-count", "1",
         "--quiet"]


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "study"
    assert cli.main([*SWEEP, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("line,message", [
    ('{"run_id": "w9_d9_s0"}', "line 2: the run record lacks the field window"),
    ("# note", "line 2: not a run record (not valid JSON); the results file is damaged (remove the line to "
               "rerun that run)"),
    ("[1, 2]", "line 2: not a run record (a JSON object)"),
], ids=["missing-fields", "comment", "list"])
@pytest.mark.parametrize("quiet", [True, False], ids=["quiet", "verbose"])
def test_a_complete_bad_last_line_of_runs_jsonl_is_an_error_not_dropped(capsys, tmp_path, finished_sweep, line,
                                                                         message, quiet):
    out = tmp_path / "study"
    shutil.copytree(finished_sweep, out)
    runs = out / "runs.jsonl"
    with open(runs, "a", encoding="utf-8") as f:
        f.write(line + "\n")  # `echo '# note' >> runs.jsonl`
    before = snapshot(out)
    argv = SWEEP if quiet else [a for a in SWEEP if a != "--quiet"]
    assert error(capsys, *argv, "--out", out) == f"{runs} {message}"
    assert snapshot(out) == before


def test_a_record_missing_a_nested_field_is_named(capsys, tmp_path, finished_sweep):
    out = tmp_path / "study"
    shutil.copytree(finished_sweep, out)
    runs = out / "runs.jsonl"
    record = json.loads(runs.read_text())
    del record["wordsim353"]["spearman"]
    runs.write_text(json.dumps(record) + "\n")
    before = snapshot(out)
    assert error(capsys, *SWEEP, "--out", out) == f"{runs} line 1: the run record lacks the field wordsim353.spearman"
    assert snapshot(out) == before


def test_a_last_line_without_its_newline_is_dropped_as_half_written(capsys, tmp_path, finished_sweep):
    out = tmp_path / "study"
    shutil.copytree(finished_sweep, out)
    runs = out / "runs.jsonl"
    complete = runs.read_bytes()
    runs.write_bytes(complete + complete[:40])  # a crash in the middle of appending a record
    code, _, err = run(capsys, *SWEEP, "--out", out)
    assert code == 0, err
    assert runs.read_bytes() == complete


# ---------------------------------------------------------------------------------------------
# B. words in scripts with combining marks, and Unicode normalisation

NFD = lambda text: unicodedata.normalize("NFD", text)  # noqa: E731

# (sentence, its words as written by hand): each script keeps its vowel signs, harakat, niqqud
# and virama inside the word; decomposed accents are composed (NFC) and kept.
SCRIPTS = [
    ("हिन्दी भाषा", ["हिन्दी", "भाषा"]),                                        # Hindi (Devanagari)
    ("मैं हिन्दी बोलता हूँ।", ["मैं", "हिन्दी", "बोलता", "हूँ"]),
    ("اللُّغَةُ العَرَبِيَّةُ جَمِيلَةٌ.", ["اللُّغَةُ", "العَرَبِيَّةُ", "جَمِيلَةٌ"]),  # Arabic with harakat
    ("שָׁלוֹם עוֹלָם!", ["שָׁלוֹם", "עוֹלָם"]),                                    # Hebrew with niqqud
    ("தமிழ் மொழி அழகானது", ["தமிழ்", "மொழி", "அழகானது"]),                     # Tamil
    ("สวัสดีครับ ภาษาไทย", ["สวัสดีครับ", "ภาษาไทย"]),                            # Thai
    ("Tiếng Việt rất đẹp", ["tiếng", "việt", "rất", "đẹp"]),                   # Vietnamese (precomposed)
    (NFD("Tiếng Việt rất đẹp"), ["tiếng", "việt", "rất", "đẹp"]),              # ... and decomposed
    (NFD("Le café naïf à Zürich"), ["le", "café", "naïf", "à", "zürich"]),     # NFD Latin
]


@pytest.mark.parametrize("sentence,words", SCRIPTS)
def test_tokenize_keeps_combining_marks_inside_words(sentence, words):
    assert all(unicodedata.is_normalized("NFC", w) for w in words)
    assert tokenize(sentence) == words


def test_tokenize_without_normalisation_keeps_decomposed_words_whole():
    assert tokenize(NFD("café naïf"), normalize=None) == [NFD("café"), NFD("naïf")]
    assert tokenize("ﬁne ＡＢ", normalize="NFKC") == ["fine", "ab"]  # compatibility forms folded
    assert tokenize("ﬁne") == ["ﬁne"]
    with pytest.raises(ConfigError, match="normalize must be 'NFC', 'NFKC' or None, got 'NFD'"):
        tokenize("x", normalize="NFD")


def test_chunked_reader_keeps_a_marked_word_whole_across_cuts(tmp_path):
    path = tmp_path / "c.txt"
    word = NFD("é") * 30 + "हिन्दी"  # no whitespace: cut every 7 bytes, inside the marks
    path.write_text(word + "\n", encoding="utf-8")
    assert list(iter_sentences(path, chunk_size=7)) == [[unicodedata.normalize("NFC", word)]]


def test_train_on_a_multi_script_corpus_keeps_whole_words(capsys, tmp_path):
    corpus = tmp_path / "scripts.txt"
    corpus.write_text("".join(s + "\n" for s, _ in SCRIPTS), encoding="utf-8")
    out = tmp_path / "out"
    code, _, err = run(capsys, "train", "--corpus", corpus, "--out", out, *SMALL, "--sample", "0")
    assert code == 0, err
    words, _ = formats.load_word2vec(out / "vectors.txt")
    assert sorted(words) == sorted({w for _, ws in SCRIPTS for w in ws})
    code, _, err = run(capsys, "train", "--corpus", corpus, "--out", tmp_path / "raw", *SMALL, "--sample", "0",
                       "--unicode-normalization", "none")
    assert code == 0, err
    words, _ = formats.load_word2vec(tmp_path / "raw" / "vectors.txt")
    assert NFD("café") in words and "café" not in words and "tiếng" in words and NFD("tiếng") in words


# ---------------------------------------------------------------------------------------------
# D. one maximum word length for reading, training, writing and reading back


def test_a_5_million_letter_word_is_dropped_and_reported(capsys, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("alpha beta gamma " + "x" * 5_000_000 + " alpha beta delta\nbeta gamma alpha\n")
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "train", "--corpus", corpus, "--out", out, "--dim", "4", "--epochs", "1",
                            "--min-count", "1", "--sample", "0", "--binary")
    assert code == 0, err
    assert f"1 word longer than {MAX_WORD_CHARS:,} characters" in stdout
    for name in ("vectors.txt", "vectors.bin"):
        words, _ = formats.load_word2vec(out / name)
        assert sorted(words) == ["alpha", "beta", "delta", "gamma"]
        code, _, err = run(capsys, "similar", "alpha", "--vectors", out / name)
        assert code == 0, err


@pytest.mark.parametrize("length", [MAX_WORD_CHARS, MAX_WORD_CHARS + 1])
@pytest.mark.parametrize("chunk_size", [1 << 20, 100])
def test_reader_drops_words_over_the_limit_whole(tmp_path, length, chunk_size):
    path = tmp_path / "c.txt"
    path.write_text(f"one {'é' * length} two\n", encoding="utf-8")
    stats = ReadStats()
    got = list(iter_sentences(path, stats=stats, chunk_size=chunk_size))
    kept = length <= MAX_WORD_CHARS
    assert got == [["one", "é" * length, "two"] if kept else ["one", "two"]]
    assert stats.long_words == (not kept)


def test_vectors_with_a_word_over_the_limit_are_neither_written_nor_read(capsys, tmp_path):
    long = "w" * (MAX_WORD_CHARS + 1)
    with pytest.raises(FormatError, match=rf"^word 'w{{60}}…' \({MAX_WORD_CHARS + 1:,} characters\) is longer"):
        formats.save_word2vec_binary(tmp_path / "v.bin", [long, "b"], np.ones((2, 3)))
    path = tmp_path / "v.bin"
    path.write_bytes(b"2 3\n" + b"".join(w.encode() + b" " + np.ones(3, "<f4").tobytes() + b"\n" for w in ["b", long]))
    assert error(capsys, "similar", "b", "--vectors", path) == (
        f"{path} row 2: word 'w{'w' * 59}…' ({MAX_WORD_CHARS + 1:,} characters) is longer than "
        f"{MAX_WORD_CHARS} characters")


# ---------------------------------------------------------------------------------------------
# F. NUL bytes anywhere, long user data in messages


def test_nul_bytes_past_the_first_block_are_found(capsys, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(b"the cat sat on the mat\n" * 10_000 + b"\x00\x01\x02" + b"the dog\n" * 10)
    out = tmp_path / "out"
    assert error(capsys, "train", "--corpus", corpus, "--out", out, *SMALL) == \
        f"corpus file {corpus} looks like a binary file (NUL bytes), not text"
    assert not out.exists()


def test_a_50_mb_unknown_word_gives_a_short_message(capsys, tmp_path):
    path = tmp_path / "v.txt"
    formats.save_word2vec_text(path, WORDS, matrix())
    word = "q" * 50_000_000
    message = error(capsys, "similar", word, "--vectors", path)
    assert message == f"unknown word: 'q{'q' * 59}…' (50,000,000 characters)"


@pytest.mark.parametrize("argv,message", [
    (["train", "--corpus", "toy:groups", "--out", "o", "--dim", "ten"], "argument --dim: expected a whole number, got 'ten'"),
    (["train", "--corpus", "toy:groups", "--out", "o", "--sync-every", "often"],
     "argument --sync-every: expected a whole number or auto, got 'often'"),
    (["similar", "king"], "the following arguments are required: --vectors"),
    (["nope"], "argument COMMAND: invalid choice: 'nope' (choose from "),  # the list's quoting varies by Python
    (["sweep", "--windows", "0,1"], "argument --windows: every value must be >= 1, got 0"),
    (["gradcheck", "--tol", "nan"], "argument --tol: must be a positive finite number, got 'nan'"),
    (["gradcheck", "--fd-tol", "-1"], "argument --fd-tol: must be a positive finite number, got '-1'"),
    (["gradcheck", "--tol", "inf"], "argument --tol: must be a positive finite number, got 'inf'"),
    (["eval", "--vectors", "v", "--bogus", "x" * 100_000], None),
], ids=["bad-int", "bad-int-or-word", "missing", "command", "sweep-list", "tol-nan", "fd-tol-negative", "tol-inf", "huge"])
def test_usage_errors_are_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert not out and err.count("\n") == 1 and err.startswith("sg-jax: error: ") and len(err) < 400, err
    if message is not None:
        assert err == f"sg-jax: error: {message}\n" or message.endswith("from ") and err.startswith(
            f"sg-jax: error: {message}"), err


def test_gradcheck_problem_sizes_are_bounded(capsys):
    message = error(capsys, "gradcheck", "--negative", "1000000000")
    assert message.startswith("gradcheck problem too large: batch * contexts * (vocab_size + negative) * dim = "
                              "60,000,000,660, more than 10,000,000")


@pytest.mark.parametrize("how", ["pipe-closed", "fd-closed"])
def test_a_closed_stdout_does_not_change_the_exit_status(tmp_path, how):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "sg_jax.cli", "train", "--corpus", "toy:groups", "--out", str(tmp_path / "out"),
            "--dim", "4", "--epochs", "1", "--min-count", "1"]
    if how == "pipe-closed":  # `sg-jax train ... | head -0`
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=300)
    else:  # `sg-jax train ... >&-`
        proc = subprocess.run(["sh", "-c", 'exec "$0" "$@" >&-', *argv], env=env, stderr=subprocess.PIPE,
                              timeout=300)
        code, err = proc.returncode, proc.stderr.decode()
    assert code == 0, err
    assert "Traceback" not in err and "error" not in err and "Exception ignored" not in err, err
    assert (tmp_path / "out" / "vectors.txt").exists()


# ---------------------------------------------------------------------------------------------
# G. Ctrl-C during a sweep


def _interrupt_sweep(out: Path, after: float) -> tuple[int, str]:
    """Run a small sweep on a terminal (as a user would), send SIGINT `after` seconds after it
    starts; return its exit status and everything it wrote to the terminal."""
    import pty
    import select

    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONFAULTHANDLER="1")
    master, slave = pty.openpty()
    # A shell that starts the suite in the background makes it ignore SIGINT, and an ignored signal
    # stays ignored across exec: with a handler installed here instead, the sweep starts with the
    # default disposition, as from a terminal (a handler does not survive exec).
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    proc = subprocess.Popen([sys.executable, "-m", "sg_jax.cli", "sweep", "--corpus", "toy:groups",
                             # long enough (20 runs of 1,000 epochs, at least 50 s even with the runs trained
                             # together on every core) that no interrupt comes after the end
                             "--windows", "1,2,3,4,5", "--dims", "4,8,16,32", "--epochs", "1000", "--out", str(out)],
                            env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    signal.signal(signal.SIGINT, ignored)
    os.close(slave)
    output, start, sent, closed = b"", time.monotonic(), False, False
    try:
        while True:
            if not sent and time.monotonic() - start >= after:
                os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the foreground group
                sent = True
            if not closed and select.select([master], [], [], 0.02)[0]:
                try:
                    chunk = os.read(master, 1 << 16)
                except OSError:  # EIO: the terminal's last writer is gone
                    chunk = b""
                output += chunk
                closed = not chunk
            elif closed:
                time.sleep(0.02)
            if proc.poll() is not None and (closed or not select.select([master], [], [], 0)[0]):
                break
            assert time.monotonic() - start < 240, "the sweep did not stop"
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return proc.wait(), output.decode("utf-8", "replace").replace("\r", "\n")


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs POSIX terminals and process groups")
def test_interrupting_a_sweep_exits_130_with_one_line_and_a_valid_runs_file(tmp_path):
    # The interrupts fall while runs are compiling (the first seconds): the window in which a
    # teardown of JAX's runtime crashed the process (SIGSEGV, exit 139) in most tries.
    from sg_jax.study import records

    rng = np.random.default_rng(0)
    for i, after in enumerate(rng.uniform(1.5, 5.0, size=3)):
        out = tmp_path / f"sweep{i}"
        code, output = _interrupt_sweep(out, after)
        assert code == 130, (after, code, output[-2000:])
        assert output.rstrip().endswith("sg-jax: interrupted"), output[-2000:]
        assert "Traceback" not in output and "Fatal Python error" not in output, output[-2000:]
        runs = out / "runs.jsonl"
        if runs.exists():
            data = runs.read_bytes()
            assert data.endswith(b"\n") or not data
            records.read_runs(runs, repair=False)  # every line a complete, valid record


# ---------------------------------------------------------------------------------------------
# the run path: corpus identity, 64-bit seeds, one run per directory, blown-up runs


def _train(out, *extra, corpus="toy:groups"):
    return cli.main(["train", "--corpus", str(corpus), "--out", str(out), "--dim", "4", "--epochs", "2",
                     "--min-count", "1", "--sample", "0", "--batch-size", "16", "--steps-per-call", "4", "--quiet",
                     *map(str, extra)])


def test_resume_refuses_an_edited_corpus_naming_both(capsys, tmp_path):
    corpus = tmp_path / "c.txt"
    lines = [" ".join(f"w{(i * 7 + j) % 23}" for j in range(8)) for i in range(60)]
    corpus.write_text("\n".join(lines) + "\n")
    assert _train(tmp_path / "run", "--stop-after-epoch", "1", corpus=corpus) == 0
    lines[3], lines[4] = lines[4], lines[3]  # the same vocabulary, another corpus
    corpus.write_text("\n".join(lines) + "\n")
    before = snapshot(tmp_path / "run")
    capsys.readouterr()
    assert _train(tmp_path / "run", "--resume", corpus=corpus) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trained on a different corpus (sha256 " in err and ", now " in err
    assert snapshot(tmp_path / "run") == before


def test_seeds_use_all_64_bits(tmp_path):
    from sg_jax.formats import load_word2vec

    vectors = {}
    for seed in (0, 2**32, 2**63, 2**64 - 1):
        assert _train(tmp_path / str(seed), "--seed", seed) == 0
        vectors[seed] = load_word2vec(tmp_path / str(seed) / "vectors.txt")[1]
    for a in vectors:
        for b in vectors:
            assert a == b or not np.array_equal(vectors[a], vectors[b]), (a, b)


def test_a_seed_past_64_bits_is_refused(capsys, tmp_path):
    assert _train(tmp_path / "run", "--seed", 2**64) == 2
    err = capsys.readouterr().err
    assert err == f"sg-jax: error: seed must be in [0, 2**64 - 1], got {2**64}\n"
    assert not (tmp_path / "run").exists()


def test_a_failed_run_never_leaves_another_runs_files_beside_its_own(capsys, tmp_path):
    """A dim-4 run, then a dim-16 run into the same directory that fails (here: it diverges):
    what remains is never the old vectors beside the new config."""
    from sg_jax.run_files import verify_manifest

    out = tmp_path / "run"
    assert _train(out) == 0
    assert verify_manifest(out) == []
    assert _train(out, "--overwrite", "--dim", "16", "--lr", "1e4", "--trust-region", "0") == 2
    left = {p.name for p in out.iterdir()} if out.exists() else set()
    assert not {"vectors.txt", "run.json", "metrics.jsonl"} & left  # the old run's outputs are gone
    if "config.json" in left:
        assert json.loads((out / "config.json").read_text())["dim"] == 16


def test_a_run_that_blows_up_without_nan_is_not_a_success(capsys, tmp_path):
    """Noise words shared by the whole batch overshoot on a small corpus with a wide window: the
    loss grows far past the first steps' while staying finite. The run stops with the divergence
    message and writes nothing (it used to exit 0 with neighbours at cosine 1.00)."""
    corpus = tmp_path / "small.txt"
    rng = np.random.default_rng(0)
    p = 1.0 / np.arange(1, 301)
    words = np.array([f"w{i}" for i in range(300)])[rng.choice(300, size=30_000, p=p / p.sum())]
    corpus.write_text("\n".join(" ".join(s) for s in np.split(words, 600)) + "\n")
    # the first version ended this run with exit 0 and "final loss 73914678529114576"
    argv = ["train", "--corpus", str(corpus), "--dim", "8", "--epochs", "1", "--window", "20", "--min-count", "1",
            "--share-negatives", "batch", "--quiet"]
    # without the trust region (which bounds every row's step: with it the same run trains)
    code = cli.main([*argv, "--out", str(tmp_path / "run"), "--trust-region", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("sg-jax: error: training diverged at step ") and err.count("\n") == 1, err
    assert not (tmp_path / "run" / "vectors.txt").exists()
    assert cli.main([*argv, "--out", str(tmp_path / "bounded")]) == 0, capsys.readouterr().err
    _, vectors = formats.load_word2vec(tmp_path / "bounded" / "vectors.txt")
    assert np.isfinite(vectors).all()
