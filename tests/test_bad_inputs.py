"""A catalogue of bad inputs, each through the command line: the exact one-line error on stderr,
exit status 2, no traceback, and nothing written (or, where there were files, nothing changed).
"""

from __future__ import annotations

import gzip
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import error, run

from sg_jax import cli, formats
from sg_jax.errors import DivergenceError
from sg_jax.train import Config, init_state, make_optimizer, train

OUTPUTS = ("vectors.txt", "vectors.bin", "checkpoint.sgjax", "metrics.jsonl")
SMALL = ["--dim", "4", "--epochs", "1", "--min-count", "1", "--quiet"]


pytestmark = pytest.mark.usefixtures("default_jax_types")




def assert_nothing_written(out: Path) -> None:
    if out.exists():
        names = sorted(p.name for p in out.iterdir())
        assert not [n for n in names if n in OUTPUTS or n.endswith(".tmp")], names


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def train_error(capsys, tmp_path, corpus, *extra) -> str:
    """`sg-jax train` on a bad corpus or config: fails before anything is created."""
    out = tmp_path / "out"
    message = error(capsys, "train", "--corpus", corpus, "--out", out, *SMALL, *extra)
    assert not out.exists()
    return message


# ---------------------------------------------------------------------------------------------
# corpora


@pytest.mark.parametrize("content", [b"", b"   \n\t\n \r\n\n", b"... --- !!! \n"],
                         ids=["empty", "whitespace-only", "punctuation-only"])
def test_corpus_without_words(capsys, tmp_path, content):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(content)
    assert train_error(capsys, tmp_path, corpus) == f"corpus {corpus} contains no words"


def test_binary_file(capsys, tmp_path):
    corpus = tmp_path / "model.bin"
    corpus.write_bytes(bytes(range(256)) * 64)
    assert train_error(capsys, tmp_path, corpus) == \
        f"corpus file {corpus} looks like a binary file (NUL bytes), not text"


def test_corrupt_gzip_file(capsys, tmp_path):
    rng = np.random.default_rng(0)
    text = "".join(" ".join(rng.choice([f"w{i}" for i in range(500)], 10)) + "\n" for _ in range(2000))
    data = gzip.compress(text.encode())
    corpus = tmp_path / "corpus.txt.gz"
    corpus.write_bytes(data[: len(data) // 2])  # cut in the middle of the compressed stream
    assert train_error(capsys, tmp_path, corpus) == (f"cannot read corpus file {corpus}: "
                                                      "Compressed file ended before the end-of-stream marker was reached")


@pytest.mark.parametrize("corpus,message", [
    ("missing.txt", "corpus file not found: {tmp}/missing.txt"),
    (".", "corpus path is a directory, not a file: {tmp}"),
    ("toy:nope", "unknown toy corpus 'toy:nope'; known: toy:seeds, toy:groups"),
])
def test_missing_corpus(capsys, tmp_path, corpus, message):
    source = corpus if corpus.startswith("toy:") else tmp_path / corpus
    assert train_error(capsys, tmp_path, source) == message.format(tmp=tmp_path)


def test_invalid_utf8_names_the_line_and_byte(capsys, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"the first line\nthe second line\nbad \xff\xfe bytes here\nlast line\n")
    assert train_error(capsys, tmp_path, corpus) == (
        f"{corpus}: invalid UTF-8 at line 3 (byte 5 of the line); fix the file or pass --encoding-errors replace")


def test_invalid_utf8_deep_in_a_text8_style_line(capsys, tmp_path):
    corpus = tmp_path / "text8"
    words = b"anarchism originated as a term of abuse " * 40_000  # 1.6 MB, longer than one read
    at = 1_500_000 - words[:1_500_000][::-1].index(b" ")  # just after a space
    corpus.write_bytes(words[:at] + b"\xc3(" + words[at:])
    assert train_error(capsys, tmp_path, corpus) == (
        f"{corpus}: invalid UTF-8 at line 1 (byte {at + 1} of the line); "
        "fix the file or pass --encoding-errors replace")


def test_invalid_utf8_replaced_on_request(capsys, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"the cat sat on the mat\nthe dog \xff\xfe sat on the log\na cat and a dog\n" * 5)
    code, out, err = run(capsys, "train", "--corpus", corpus, "--out", tmp_path / "out", "--dim", "4",
                         "--epochs", "1", "--min-count", "1", "--sample", "0", "--encoding-errors", "replace")
    assert code == 0, err
    assert "10 invalid UTF-8 bytes" in out  # two bytes on each of 5 lines, each replaced by U+FFFD
    words, _ = formats.load_word2vec(tmp_path / "out" / "vectors.txt")
    assert sorted(words) == ["a", "and", "cat", "dog", "log", "mat", "on", "sat", "the"]


def test_single_token_corpus(capsys, tmp_path):
    corpus = tmp_path / "one.txt"
    corpus.write_text("word\n")
    assert train_error(capsys, tmp_path, corpus) == (
        "corpus has 1 in-vocabulary token(s) after min_count=1; at least 2 are needed for training pairs")


@pytest.mark.parametrize("objective", ["ns", "hs", "softmax"])
def test_single_word_vocabulary(capsys, tmp_path, objective):
    corpus = tmp_path / "one.txt"
    corpus.write_text("word word word\nword\n")
    assert train_error(capsys, tmp_path, corpus, "--objective", objective) == (
        "the vocabulary has only 1 word ('word') after min_count=1; training needs at least 2 distinct words")


def test_sentences_of_one_word_give_no_pairs(capsys, tmp_path):
    corpus = tmp_path / "lists.txt"
    corpus.write_text("alpha\nbeta\ngamma\nalpha\n")
    assert train_error(capsys, tmp_path, corpus) == \
        "corpus yields no training pairs (every sentence has fewer than 2 words)"


def test_min_count_removing_every_word(capsys, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b c d\ne f g\na b\n")
    assert train_error(capsys, tmp_path, corpus, "--min-count", "3") == \
        "min_count=3 removes every word (largest count is 2)"


def test_window_longer_than_every_sentence_trains_within_sentences(capsys, tmp_path):
    corpus = tmp_path / "corpus.txt"
    lengths = [3, 4, 5, 7]
    words = iter(f"w{i}" for i in range(100))
    corpus.write_text("".join(" ".join(next(words) for _ in range(n)) + "\n" for n in lengths))
    out = tmp_path / "out"
    code, _, err = run(capsys, "train", "--corpus", corpus, "--out", out, *SMALL, "--window", "50",
                       "--fixed-window", "--sample", "0", "--batch-size", "4")
    assert code == 0, err
    # every target paired with every other word of its sentence, and nothing across sentences
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["examples"] for r in records) == sum(n * (n - 1) for n in lengths)
    _, vectors = formats.load_word2vec(out / "vectors.txt")
    assert vectors.shape == (sum(lengths), 4) and np.isfinite(vectors).all()


# ---------------------------------------------------------------------------------------------
# configuration


@pytest.mark.parametrize("option,value,message", [
    ("--window", "0", "window must be >= 1, got 0"),
    ("--window", "-2", "window must be >= 1, got -2"),
    ("--dim", "0", "dim must be >= 1, got 0"),
    ("--dim", "-3", "dim must be >= 1, got -3"),
    ("--negative", "0", "negative must be >= 1, got 0"),
    ("--epochs", "0", "epochs must be >= 1, got 0"),
    ("--batch-size", "0", "batch_size must be >= 1, got 0"),
    ("--min-count", "0", "min_count must be >= 1, got 0"),
    ("--max-vocab", "1", "max_vocab must be >= 2, got 1"),
    ("--sample", "-1", "sample must be >= 0, got -1.0"),
    ("--sample", "nan", "sample must be >= 0, got nan"),
    ("--lr", "0", "lr must be a positive number, got 0.0"),
    ("--lr", "nan", "lr must be a positive number, got nan"),
    ("--lr", "inf", "lr must be a positive number, got inf"),
    ("--clip-norm", "0", "clip_norm must be > 0, got 0.0"),
    ("--clip-norm", "nan", "clip_norm must be > 0, got nan"),
    ("--checkpoint-every-seconds", "0", "checkpoint interval must be > 0 seconds, got 0.0"),
    ("--checkpoint-every-seconds", "nan", "checkpoint interval must be > 0 seconds, got nan"),
])
def test_bad_hyperparameter(capsys, tmp_path, option, value, message):
    assert train_error(capsys, tmp_path, "toy:groups", option, value) == message


def test_absurdly_large_window_is_refused_cleanly(capsys, tmp_path):
    message = train_error(capsys, tmp_path, "toy:groups", "--window", "3000000000")
    assert "window" in message


def test_model_too_large_for_memory(capsys, tmp_path):
    message = train_error(capsys, tmp_path, "toy:groups", "--dim", "3000000000")
    assert message.startswith("out of memory (") and "lower --dim, --batch-size or --max-vocab" in message


def test_bad_option_values_are_usage_errors(capsys, tmp_path):
    for option, value in [("--checkpoint-every-steps", "0"), ("--stop-after-epoch", "-1"), ("--dim", "ten")]:
        with pytest.raises(SystemExit) as exit_:
            cli.main(["train", "--corpus", "toy:groups", "--out", str(tmp_path / "out"), option, value])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {option}:" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_output_path_that_is_a_file(capsys, tmp_path):
    target = tmp_path / "results"
    target.write_text("precious\n")
    message = error(capsys, "train", "--corpus", "toy:groups", "--out", target, *SMALL)
    assert message == f"output path {target} exists and is not a directory"
    assert target.read_text() == "precious\n"


def test_errors_from_a_real_process_are_one_line(tmp_path):
    corpus = tmp_path / "empty.txt"
    corpus.write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "sg_jax.cli", "train", "--corpus", str(corpus),
                           "--out", str(tmp_path / "out"), "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == f"sg-jax: error: corpus {corpus} contains no words\n"
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# divergence and clipping


# a rate of 10,000 without the trust region, which alone keeps such a rate finite (test_trust_region.py)
DIVERGING = ["--corpus", "toy:groups", "--lr", "1e4", "--batch-size", "64", "--dim", "8", "--min-count", "1",
             "--epochs", "2", "--trust-region", "0", "--quiet"]


def test_divergence_stops_with_the_step_and_writes_nothing(capsys, tmp_path):
    out = tmp_path / "out"
    message = error(capsys, "train", "--out", out, *DIVERGING)
    assert re.match(r"training diverged at step \d+: (the loss became (nan|inf|-inf)|the loss per example rose to "
                    r"[0-9.e+]+, over 10x the first steps' [0-9.]+) \(last finite loss .*\); "
                    r"lower the learning rate \(lr, now 10000\.0\)", message), message
    assert message.endswith("set clip_norm")
    assert_nothing_written(out)


def test_clipping_prevents_that_divergence(capsys, tmp_path):
    out = tmp_path / "out"
    code, _, err = run(capsys, "train", "--out", out, *DIVERGING, "--clip-norm", "1e-4")
    assert code == 0, err
    _, vectors = formats.load_word2vec(out / "vectors.txt")
    assert np.isfinite(vectors).all()


@pytest.fixture(scope="module")
def divergence_messages():
    """The DivergenceError message of the DIVERGING config, scanning 64 steps per call and 1."""
    from sg_jax.data.corpus import load_corpus

    vocab, corpus, _ = load_corpus("toy:groups", min_count=1)
    messages = {}
    for steps_per_call in (64, 1):
        config = Config(lr=1e4, batch_size=64, dim=8, min_count=1, epochs=2, steps_per_call=steps_per_call,
                        trust_region=0.0)
        with pytest.raises(DivergenceError) as e:
            train(config, vocab.words, vocab.counts, corpus.ids, corpus.offsets)
        messages[steps_per_call] = str(e.value)
    return messages


def _step_and_last_loss(message: str) -> tuple[int, str]:
    m = re.match(r"training diverged at step (\d+): .*\(last finite loss ([^)]*)\)", message)
    assert m, message
    return int(m.group(1)), m.group(2)


def test_divergence_step_does_not_depend_on_steps_per_call(divergence_messages):
    (step64, _), (step1, last1) = map(_step_and_last_loss, (divergence_messages[64], divergence_messages[1]))
    assert step64 == step1 > 1
    assert math.isfinite(float(last1))


def test_divergence_reports_the_last_finite_step_loss(divergence_messages):
    (_, last64), (_, last1) = map(_step_and_last_loss, (divergence_messages[64], divergence_messages[1]))
    assert last64 == last1


class _FirstCall(Exception):
    pass


@pytest.fixture(scope="module")
def clipped_updates():
    """lr * clip -> global norm of the parameter change made by the first step with that clipping."""
    from sg_jax.data.corpus import load_corpus

    vocab, corpus, _ = load_corpus("toy:groups", min_count=1)
    norms = {}
    for clip in (1e-3, 1e-1):
        config = Config(dim=8, min_count=1, lr=1.0, min_lr_ratio=1.0, clip_norm=clip, steps_per_call=1,
                        batch_size=256, init="normal")
        before = [np.asarray(x, np.float64) for x in init_state(config, len(vocab), make_optimizer(config, 1)).params]
        after = []

        def stop(state, position, record):
            after.extend(np.asarray(x, np.float64) for x in state.params)
            raise _FirstCall

        with pytest.raises(_FirstCall):
            train(config, vocab.words, vocab.counts, corpus.ids, corpus.offsets, on_call=stop)
        norms[config.learning_rate * clip] = math.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(after, before)))
    return norms


def test_clipping_scales_the_update(clipped_updates):
    (small, n_small), (large, n_large) = sorted(clipped_updates.items())
    assert n_small > 0 and n_large / n_small == pytest.approx(large / small, rel=1e-3)


def test_clipping_bounds_the_update(clipped_updates):
    for bound, norm in clipped_updates.items():
        assert norm <= bound * (1 + 1e-5)


# ---------------------------------------------------------------------------------------------
# vectors files and queries


WORDS = ["king", "queen", "man", "woman", "apple"]


@pytest.fixture
def vectors(tmp_path):
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((len(WORDS), 8)).astype(np.float32)
    formats.save_word2vec_text(tmp_path / "v.txt", WORDS, matrix)
    formats.save_word2vec_binary(tmp_path / "v.bin", WORDS, matrix)
    return tmp_path / "v.txt", tmp_path / "v.bin"


QUERIES = {
    "similar": lambda path: ["similar", "king", "--vectors", path],
    "analogy": lambda path: ["analogy", "man", "king", "woman", "--vectors", path],
    "eval": lambda path: ["eval", "--vectors", path],
}


@pytest.mark.parametrize("command", QUERIES)
@pytest.mark.parametrize("case", ["more rows", "fewer rows", "wrong dim", "bad value", "empty", "missing"])
def test_text_vectors_file_that_disagrees_with_its_header(capsys, vectors, command, case):
    text, _ = vectors
    header, *rows = text.read_text().splitlines()
    bad = text.with_name("bad.txt")
    content, message = {
        "more rows": (["4 8", *rows], f"{bad} line 6: more rows than the 4 its header says"),
        "fewer rows": (["6 8", *rows], f"{bad} has 5 rows but its header says 6"),
        "wrong dim": (["5 9", *rows], f"{bad} line 2: header says 5 rows of dim 9 but row 1 has 8 values"),
        "bad value": ([header, *rows[:2], rows[2].split(" ", 1)[0] + " abc " + rows[2].split(" ", 2)[2], *rows[3:]],
                      f"{bad} line 4: value 'abc' is not a number"),
        "empty": ([], f"vectors file {bad} is empty"),
        "missing": (None, f"vectors file {bad} does not exist"),
    }[case]
    if content is not None:
        bad.write_text("".join(line + "\n" for line in content))
    assert error(capsys, *QUERIES[command](bad)) == message


@pytest.mark.parametrize("command", QUERIES)
@pytest.mark.parametrize("keep", [-1, -9, -50, 4, 10], ids=["newline", "last-row", "earlier-row", "header", "word"])
def test_binary_vectors_file_cut_short(capsys, vectors, command, keep):
    _, binary = vectors
    data = binary.read_bytes()
    cut = binary.with_name("cut.bin")
    cut.write_bytes(data[:keep])
    if keep == -1:  # only the final newline is missing: still a complete file
        code, _, err = run(capsys, *QUERIES[command](cut))
        assert code == 0, err
        return
    ends = np.cumsum([len(b"5 8\n")] + [len(w) + 1 + 4 * 8 + 1 for w in WORDS]) - 1  # each record's end (no newline)
    complete = int((ends[1:] <= len(data[:keep])).sum())
    assert complete < len(WORDS)
    assert error(capsys, *QUERIES[command](cut)) == \
        f"{cut} is truncated: expected 5 vectors of dim 8, got {complete}"


@pytest.mark.parametrize("argv,message", [
    (["similar", "NOTAWORD"], "unknown word: 'NOTAWORD'"),
    (["similar", "king", "Quux"], "unknown word: 'Quux'"),
    (["similar", "king", "--negative", "zzz", "man"], "unknown word: 'zzz'"),
    (["analogy", "man", "king", "duchess"], "unknown word: 'duchess'"),
    (["analogy", "earl", "king", "duchess"], "unknown words: 'earl', 'duchess'"),
])
@pytest.mark.parametrize("fmt", [0, 1], ids=["text", "binary"])
def test_unknown_words_in_queries_are_named(capsys, vectors, argv, message, fmt):
    assert error(capsys, *argv, "--vectors", vectors[fmt]) == message


# ---------------------------------------------------------------------------------------------
# checkpoints


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert cli.main(["train", "--corpus", "toy:groups", "--out", str(out), *SMALL]) == 0
    return out


def _corrupt(data: bytes, how: str) -> tuple[bytes, str]:
    """A damaged copy of a checkpoint's bytes and the message that refuses it ({p}: the path)."""
    header_end = 48 + int.from_bytes(data[8:16], "little")  # magic, length, sha256, then the header
    n = len(data)
    return {
        "empty": (b"", "{p} is not an sg_jax checkpoint"),
        "text": (b"this is not a checkpoint\n", "{p} is not an sg_jax checkpoint"),
        "cut-in-prefix": (data[:20], "checkpoint {p} is truncated"),
        "cut-in-header": (data[: header_end - 10], "checkpoint {p} is truncated"),
        "cut-in-payload": (data[:-10], f"checkpoint {{p}} is truncated (expected {n} bytes, found {n - 10})"),
        "flipped-payload-bit": (data[:-10] + bytes([data[-10] ^ 0x01]) + data[-9:],
                                "checkpoint {p} is corrupted (checksum mismatch)"),
        "flipped-header-bit": (data[: header_end - 5] + bytes([data[header_end - 5] ^ 0x20]) + data[header_end - 4:],
                               "checkpoint {p} is corrupted (checksum mismatch)"),
        "trailing-bytes": (data + b"\0" * 16, "checkpoint {p} is corrupted (16 unexpected trailing bytes)"),
    }[how]


@pytest.mark.parametrize("how", ["empty", "text", "cut-in-prefix", "cut-in-header", "cut-in-payload",
                                 "flipped-payload-bit", "flipped-header-bit", "trailing-bytes"])
def test_damaged_checkpoint_is_refused_and_left_alone(capsys, tmp_path, finished_run, how):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    ckpt = out / "checkpoint.sgjax"
    damaged, message = _corrupt(ckpt.read_bytes(), how)
    ckpt.write_bytes(damaged)
    before = snapshot(out)
    assert error(capsys, "train", "--corpus", "toy:groups", "--out", out, *SMALL, "--resume") == message.format(p=ckpt)
    assert snapshot(out) == before  # the checkpoint, vectors, metrics and config are untouched


def test_intact_checkpoint_resumes(capsys, tmp_path, finished_run):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    before = snapshot(out)
    code, _, err = run(capsys, "train", "--corpus", "toy:groups", "--out", out, *SMALL, "--resume")
    assert code == 0, err
    after = snapshot(out)
    assert after["vectors.txt"] == before["vectors.txt"]


@pytest.mark.parametrize("extra,message", [
    (["--dim", "5"], r"cannot resume {p}: the config differs: dim=4 \(now 5\)"),
    (["--seed", "1", "--window", "2"], r"cannot resume {p}: the config differs: window=5 \(now 2\), seed=0 \(now 1\)"),
    (["--corpus", "toy:seeds"], r"cannot resume {p}: the corpus gives a different vocabulary than the checkpoint's"),
])
def test_resume_with_another_config_or_corpus_is_refused(capsys, tmp_path, finished_run, extra, message):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    before = snapshot(out)
    got = error(capsys, "train", "--corpus", "toy:groups", "--out", out, *SMALL, "--resume", *extra)
    assert re.fullmatch(message.format(p=re.escape(str(out / "checkpoint.sgjax"))), got), got
    assert snapshot(out) == before


# ---------------------------------------------------------------------------------------------
# a text8-style corpus: one line of 100 MB, streamed in bounded memory

MEASURE = """
import sys
from sg_jax.data.corpus import ReadStats, Vocab, iter_sentences

def peak_rss_kb():  # VmHWM belongs to this process image (ru_maxrss would include the parent's peak)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

stats, longest = ReadStats(), 0
def sentences():
    global longest
    for s in iter_sentences(sys.argv[1], stats=stats):
        longest = max(longest, len(s))
        yield s

before = peak_rss_kb()
vocab = Vocab.build(sentences())
growth = peak_rss_kb() - before
print(growth // 1024, stats.lines, stats.sentences, stats.tokens, longest, vocab.total, len(vocab))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak memory from /proc")
def test_text8_style_100mb_line_is_streamed_in_bounded_memory(tmp_path):
    rng = np.random.default_rng(0)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)
    words = sorted({bytes(rng.choice(letters, size=int(n))) for n in rng.integers(3, 10, size=2000)})
    p = 1.0 / np.arange(1, len(words) + 1)
    block = b" ".join(words[i] for i in rng.choice(len(words), size=100_000, p=p / p.sum())) + b" "
    per_block = 100_000
    blocks = (100 << 20) // len(block) + 1
    corpus = tmp_path / "text8"
    with open(corpus, "wb") as f:
        for _ in range(blocks):
            f.write(block)
    assert corpus.stat().st_size >= 100 << 20
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(corpus)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    growth_mb, lines, sentences, tokens, longest, total, size = map(int, proc.stdout.split())
    assert lines == 1 and tokens == total == blocks * per_block and size <= len(words)
    assert longest == 10_000 and sentences == math.ceil(tokens / 10_000)  # gensim-style pseudo-sentences
    # Holding the line would take > 100 MB for the bytes alone and ~1 GB for 17M token strings;
    # streaming holds a chunk (1 MiB) of bytes and its tokens.
    assert growth_mb < 128, f"peak memory grew by {growth_mb} MB"
