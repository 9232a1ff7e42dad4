"""Tests for sg_jax.data.corpus: tokenizer, readers, vocabulary, encoded corpus."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sg_jax.data.corpus import (
    DEFAULT_CORPUS, EncodedCorpus, ReadStats, Vocab, corpus_fingerprint, encode_corpus,
    encode_corpus_to_disk, iter_sentences, load_corpus, tokenize,
)
from sg_jax.errors import ConfigError, CorpusError, FormatError, VocabError
from sg_jax.toy import FIVE_GROUPS, SEEDS_SENTENCES, five_groups_corpus

SEEDS = [s.split() for s in SEEDS_SENTENCES]


# --- tokenizer --------------------------------------------------------------------------------

@pytest.mark.parametrize("line, expected", [
    ("Hello, world!", ["hello", "world"]),
    ("Don't stop -- it's term-end.", ["don't", "stop", "it's", "term-end"]),
    ("the café’s naïve owner", ["the", "café’s", "naïve", "owner"]),
    ("Ñandú ΑΘΗΝΑ Москва", ["ñandú", "αθηνα", "москва"]),
    ("in 1961 , 3.5 % of 2,000", ["in", "1961", "3", "5", "of", "2", "000"]),
    ("`` quoted '' -- 'single' ...", ["quoted", "single"]),
    ("trailing- -leading 'x", ["trailing", "leading", "x"]),
    ("", []),
])
def test_tokenize(line, expected):
    assert tokenize(line) == expected


def test_tokenize_keeps_case_when_asked():
    assert tokenize("The Dog", lowercase=False) == ["The", "Dog"]


def test_dropped_characters_are_counted(tmp_path):
    path = tmp_path / "c.txt"
    # Non-space chars: "Hello," 6, "world!" 6, "--" 2, "ok." 3 -> 17; in tokens: 5+5+2 = 12.
    path.write_text("Hello, world!\n--\n\nok.\n", encoding="utf-8")
    stats = ReadStats()
    sentences = list(iter_sentences(path, stats=stats))
    assert sentences == [["hello", "world"], ["ok"]]
    assert (stats.lines, stats.sentences, stats.tokens) == (4, 2, 3)
    assert stats.dropped_chars == 17 - 12
    assert stats.empty_lines == 2  # "--" and the blank line
    assert "3 tokens" in stats.summary()


# --- readers ----------------------------------------------------------------------------------

def test_plain_file_one_sentence_per_line(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("The dog saw a cat\r\nthe dog chased the cat\nThe cat climbed a tree", "utf-8")
    assert list(iter_sentences(path)) == SEEDS
    assert list(iter_sentences(str(path), lowercase=False))[0][0] == "The"


def test_gzip_file_is_read_transparently(tmp_path):
    path = tmp_path / "c.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(SEEDS_SENTENCES) + "\n")
    assert list(iter_sentences(path)) == SEEDS


def test_text8_style_single_line_is_streamed_in_pseudo_sentences(tmp_path):
    rng = np.random.default_rng(1)
    words = np.array(["alpha", "beta", "gamma", "delta", "épsilon", "z", "longerword"])
    text = " ".join(words[rng.integers(len(words), size=400_000)])  # ~2.5 MB, no newline
    path = tmp_path / "text8"
    path.write_bytes(text.encode("utf-8"))
    expected = text.split()
    stats = ReadStats()
    # A small, odd chunk size: many cuts, each of which must land between words.
    sentences = list(iter_sentences(path, max_sentence_length=1000, chunk_size=4093,
                                    stats=stats))
    assert sum(map(len, sentences)) == len(expected)
    assert [t for s in sentences for t in s] == expected
    assert all(len(s) == 1000 for s in sentences)  # 400,000 = 400 x 1000
    assert len(sentences) == 400 and stats.lines == 1


def test_long_line_remainder_and_following_lines(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(" ".join(["w"] * 25) + "\nshort line\n", encoding="utf-8")
    lengths = [len(s) for s in iter_sentences(path, max_sentence_length=10, chunk_size=7)]
    assert lengths == [10, 10, 5, 2]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("ab é’-'.\n\t\r") + ["日", "本", "ß"]),
                    max_size=300),
       chunk_size=st.integers(1, 40))
def test_chunked_reader_agrees_with_splitting_lines(tmp_path, text, chunk_size):
    # The first 8 KiB are read at once (binary sniffing); the text after them is read in
    # chunks of `chunk_size` bytes, which is what this test is about.
    text = "z " * 4096 + "\n" + text
    path = tmp_path / "h.txt"
    path.write_bytes(text.encode("utf-8"))
    # Reference: every physical line tokenized whole. If every whitespace-free run fits in a
    # chunk the reader must give exactly these tokens; otherwise a run may be cut in two (and
    # a joining ' or - dropped at the cut), but no word character is lost or altered.
    lines = text.split("\n")
    expected = [t for line in lines for t in tokenize(line)]
    got = [t for sentence in iter_sentences(path, chunk_size=chunk_size) for t in sentence]
    joiners = str.maketrans("", "", "'’-")
    assert "".join(got).translate(joiners) == "".join(expected).translate(joiners)
    if chunk_size >= max((len(w.encode()) for w in text.split()), default=0):
        assert got == expected


def test_line_without_whitespace_is_cut_at_character_boundaries(tmp_path):
    path = tmp_path / "c.txt"
    word = "é" * 40  # 80 bytes, no whitespace: must be cut, but never inside a character
    path.write_text(word + "\n", encoding="utf-8")
    sentences = list(iter_sentences(path, chunk_size=7))
    assert "".join(sentences[0]) == word and len(sentences) == 1


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CorpusError, match="corpus file not found: .*nope.txt"):
        iter_sentences(tmp_path / "nope.txt")
    with pytest.raises(CorpusError, match="directory"):
        iter_sentences(tmp_path)


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"ok line\nbad \xff here\n")
    with pytest.raises(CorpusError, match=r"bad\.txt.*line 2 .*byte 5.*--encoding-errors replace"):
        list(iter_sentences(path))


def test_invalid_utf8_replace_mode_counts_bytes(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"ok line\nbad \xff\xfe here\n")
    stats = ReadStats()
    assert list(iter_sentences(path, errors="replace", stats=stats)) == [
        ["ok", "line"], ["bad", "here"]]
    assert stats.replaced_bytes == 2
    assert stats.dropped_chars == 2  # the two U+FFFD are not words


def test_binary_file_is_rejected(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"abc\x00\x01\x02" * 100)
    with pytest.raises(CorpusError, match="looks like a binary file"):
        list(iter_sentences(path))


@pytest.mark.parametrize("content", [b"", b"  \n\t\n\n", b"-- !! ..\n"])
def test_empty_corpus(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match="empty.txt contains no words"):
        list(iter_sentences(path))


def test_iterables_pass_through_and_bad_options():
    assert list(iter_sentences([["The", "Dog"], [], ["cat"]])) == [["the", "dog"], ["cat"]]
    assert list(iter_sentences(["A raw sentence."])) == [["a", "raw", "sentence"]]
    assert len(list(iter_sentences([["w"] * 7], max_sentence_length=3))) == 3
    with pytest.raises(CorpusError, match="token 3 is a int"):
        list(iter_sentences([["a", 3]]))
    with pytest.raises(ConfigError, match="errors must be"):
        iter_sentences(SEEDS, errors="ignore")
    with pytest.raises(CorpusError, match="unknown toy corpus"):
        iter_sentences("toy:nope")


def test_toy_sources():
    assert list(iter_sentences("toy:seeds")) == SEEDS
    groups = list(iter_sentences("toy:groups"))
    assert len(groups) == 2000 and groups == five_groups_corpus()
    assert five_groups_corpus(50, seed=3) == five_groups_corpus(50, seed=3)
    assert five_groups_corpus(50, seed=3) != five_groups_corpus(50, seed=4)
    group_of = {w: g for g, ws in FIVE_GROUPS.items() for w in ws}
    for sentence in groups:  # all content words of a sentence come from one group
        assert len({group_of[w] for w in sentence if w in group_of}) == 1


# --- vocabulary -------------------------------------------------------------------------------

def test_textbook_alphabetical_vocabulary():
    vocab = Vocab.build(SEEDS, order="alphabetical")
    assert list(vocab.words) == "a cat chased climbed dog saw the tree".split()
    assert vocab.index("cat") == 1
    one_hot = np.eye(len(vocab), dtype=int)[vocab.index("cat")]
    assert one_hot.tolist() == [0, 1, 0, 0, 0, 0, 0, 0]
    # "the" appears 4 times, "cat" 3, "a" and "dog" twice, the rest once: 15 tokens.
    assert vocab.counts[vocab.index("the")] == 4 and vocab.total == 15


def test_first_occurrence_order():
    sentences = [s.split() for s in [
        "graph is a good way to visualize data",
        "graph is a very good way to visualize data at a glance",
    ]]
    vocab = Vocab.build(sentences, order="first", min_count=2)
    assert list(vocab.words) == ["graph", "is", "a", "good", "way", "to", "visualize", "data"]
    sentences = [s.split() for s in ["graph is a good way to visualize data",
                                      "very good data at"]]
    assert list(Vocab.build(sentences, order="first").words) == [
        "graph", "is", "a", "good", "way", "to", "visualize", "data", "very", "at"]


def test_frequency_order_breaks_ties_by_first_occurrence():
    vocab = Vocab.build(SEEDS)  # counts: the 4, cat 3, dog 2, a 2, then singletons
    assert list(vocab.words) == ["the", "cat", "dog", "a", "saw", "chased", "climbed", "tree"]
    assert vocab.counts.tolist() == [4, 3, 2, 2, 1, 1, 1, 1]
    assert vocab.counts.dtype == np.int64
    with pytest.raises(ValueError):
        vocab.counts[0] = 9  # read-only


def test_min_count_and_max_size():
    vocab = Vocab.build(SEEDS, min_count=2)
    assert set(vocab.words) == {"the", "cat", "dog", "a"}
    vocab = Vocab.build(SEEDS, max_size=3, order="alphabetical")
    assert list(vocab.words) == ["cat", "dog", "the"]  # top 3 by count (dog beats a: first)
    with pytest.raises(VocabError, match=r"min_count=5 removes every word \(largest count is 4\)"):
        Vocab.build(SEEDS, min_count=5)
    with pytest.raises(ConfigError, match="min_count"):
        Vocab.build(SEEDS, min_count=0)
    with pytest.raises(ConfigError, match="max_size"):
        Vocab.build(SEEDS, max_size=0)
    with pytest.raises(ConfigError, match="order"):
        Vocab.build(SEEDS, order="random")


def test_build_streams_a_generator_once():
    consumed = []

    def gen():
        for s in SEEDS:
            consumed.append(1)
            yield s
    assert len(Vocab.build(gen())) == 8 and len(consumed) == 3


def test_unknown_words_are_named():
    vocab = Vocab.build(SEEDS)
    assert "dog" in vocab and "xyz" not in vocab
    with pytest.raises(VocabError, match="unknown word: 'xyz'"):
        vocab.index("xyz")
    with pytest.raises(VocabError, match="unknown words: 'xyz', 'qq'"):
        vocab.indices(["dog", "xyz", "qq"])
    assert vocab.indices(["the", "cat"]).tolist() == [0, 1]
    encoded = vocab.encode(["the", "zebra", "cat", "the"])
    assert encoded.dtype == np.int32 and encoded.tolist() == [0, 1, 0]


def test_vocab_json_round_trip_and_validation():
    vocab = Vocab.build(SEEDS)
    again = Vocab.from_json(vocab.to_json())
    assert again == vocab and again.index("tree") == vocab.index("tree")
    with pytest.raises(FormatError):
        Vocab.from_json("{not json")
    with pytest.raises(FormatError):
        Vocab.from_json('{"words": ["a"]}')
    with pytest.raises(VocabError, match="duplicate word in vocabulary: 'a'"):
        Vocab.from_counts(["a", "b", "a"], [1, 1, 1])
    with pytest.raises(VocabError, match="2 words but 1 counts"):
        Vocab.from_counts(["a", "b"], [1])


# --- encoded corpus ---------------------------------------------------------------------------

def test_encode_drops_oov_and_emptied_sentences():
    vocab = Vocab.from_counts(["the", "cat"], [4, 3])
    corpus = encode_corpus([["the", "dog"], ["saw"], ["a", "cat", "the"]], vocab)
    assert corpus.ids.tolist() == [0, 1, 0]
    assert corpus.offsets.tolist() == [0, 1, 3]  # "saw" became empty and was dropped
    assert (corpus.n_tokens, corpus.n_sentences) == (3, 2)
    assert [s.tolist() for s in corpus.sentences()] == [[0], [1, 0]]


def test_save_load_round_trip_with_mmap(tmp_path):
    vocab, corpus, _ = load_corpus("toy:groups")
    corpus.save(tmp_path / "enc")
    loaded = EncodedCorpus.load(tmp_path / "enc")
    assert isinstance(loaded.ids, np.memmap) and loaded.ids.dtype == np.int32
    np.testing.assert_array_equal(loaded.ids, corpus.ids)
    np.testing.assert_array_equal(loaded.offsets, corpus.offsets)
    in_ram = EncodedCorpus.load(tmp_path / "enc", mmap=False)
    assert not isinstance(in_ram.ids, np.memmap)
    with pytest.raises(CorpusError, match="not found"):
        EncodedCorpus.load(tmp_path / "missing")


def test_encode_to_disk_matches_in_memory(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("\n".join(" ".join(s) for s in five_groups_corpus(300, seed=2)) + "\n",
                    encoding="utf-8")
    vocab = Vocab.build(iter_sentences(path), min_count=30)
    in_memory = encode_corpus(path, vocab)
    on_disk = encode_corpus_to_disk(path, vocab, tmp_path / "enc")
    assert isinstance(on_disk.ids, np.memmap)
    np.testing.assert_array_equal(on_disk.ids, in_memory.ids)
    np.testing.assert_array_equal(on_disk.offsets, in_memory.offsets)
    assert sorted(p.name for p in (tmp_path / "enc").iterdir()) == ["ids.npy", "offsets.npy"]


def test_load_corpus_needs_two_tokens():
    with pytest.raises(CorpusError, match="at least 2"):
        load_corpus([["lonely"]])
    with pytest.raises(CorpusError, match="at least 2"):
        load_corpus([["a", "b"]], max_size=1)


def test_fingerprint(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"the dog\n")
    assert corpus_fingerprint(path) == hashlib.sha256(b"the dog\n").hexdigest()
    assert corpus_fingerprint(SEEDS) == corpus_fingerprint("toy:seeds")
    assert corpus_fingerprint(SEEDS) != corpus_fingerprint(SEEDS[:2])


def test_default_corpus_is_brown():
    vocab, corpus, stats = load_corpus(DEFAULT_CORPUS)
    # 57,340 lines and 1,161,192 whitespace tokens in the file (documented in data/README.md).
    assert stats.lines == 57_340
    assert corpus.n_tokens == stats.tokens >= 1_000_000
    assert vocab.words[:3] == ("the", "of", "and")
    assert corpus.ids.max() == len(vocab) - 1 and vocab.total == corpus.n_tokens
