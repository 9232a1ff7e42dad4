"""Queries are looked up as the corpus was read: a word typed with its combining marks in another
order, in another case, or with the diacritics a run stripped, finds its row (issue: queries
normalised like the corpus)."""

import unicodedata

import numpy as np
import pytest

import sg_jax
from sg_jax import cli
from sg_jax.embeddings import Embeddings
from sg_jax.errors import VocabError

# "mma" with shadda typed before fatha: NFC puts fatha (combining class 30) before shadda (33)
TYPED = "\u0645\u0651\u064e\u0627"
CANONICAL = unicodedata.normalize("NFC", TYPED)
BARE = "\u0645\u0627"


def test_the_typed_and_canonical_spellings_differ():
    assert TYPED != CANONICAL and unicodedata.normalize("NFC", CANONICAL) == CANONICAL


def test_a_query_in_another_mark_order_finds_the_nfc_row():
    emb = Embeddings([CANONICAL, "king"], np.eye(2, dtype=np.float32))
    assert TYPED in emb and emb.index(TYPED) == 0
    assert "KING" in emb and emb.index("King") == 1
    with pytest.raises(VocabError):
        emb.index("queen")


def test_a_query_with_marks_finds_a_row_read_without_them():
    emb = Embeddings([BARE, "x"], np.eye(2, dtype=np.float32))
    assert emb.index(TYPED) == 0 and emb.index(CANONICAL) == 0


def test_the_exact_word_wins_over_another_form():
    emb = Embeddings([TYPED, CANONICAL], np.eye(2, dtype=np.float32))
    assert emb.index(TYPED) == 0 and emb.index(CANONICAL) == 1


def test_the_similar_command_finds_a_word_typed_in_another_form(tmp_path, capsys):
    vectors = tmp_path / "v.txt"
    rng = np.random.default_rng(0)
    Embeddings([CANONICAL, "b", "c"], rng.normal(size=(3, 4)).astype(np.float32)).save(vectors)
    assert cli.main(["similar", TYPED, "--vectors", str(vectors), "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "b" in out and "c" in out


def test_a_model_trained_with_stripped_marks_answers_marked_queries():
    sentences = [[CANONICAL, "x", "y"], [BARE, "y", "z"]] * 20
    model = sg_jax.train_model(sentences, min_count=1, dim=4, epochs=1, strip_diacritics=True, sample=0.0)
    assert CANONICAL not in model.vocab.words and BARE in model.vocab.words
    np.testing.assert_array_equal(model.wv[TYPED], model.wv[BARE])
