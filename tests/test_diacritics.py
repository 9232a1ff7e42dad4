"""strip_diacritics: Arabic and Hebrew marks removed from the corpus and from queries alike,
the letters and vowel signs of every other script kept."""

import unicodedata

import pytest

import sg_jax
from sg_jax.config import Config
from sg_jax.data import tokenizer
from sg_jax.data.corpus import load_corpus
from sg_jax.data.text import iter_sentences
from sg_jax.data.tokenizer import DIACRITICS, normalize_query, strip_diacritics, tokenize

# The first verse of the Quran, fully vowelled as printed (shadda, superscript alef, a Quranic
# sign and tatweel added), and the same words as usually typed, without marks.
VOWELLED = "بِسْمِ ٱللَّهِ ٱلرَّحْمَٰنِ ٱلرَّحِيمِ ۝ الْحَمْدُ لِلَّـهِ رَبِّ الْعَالَمِينَ ۗ"
PLAIN = "بسم ٱلله ٱلرحمن ٱلرحيم ۝ الحمد لله رب العالمين ۗ"
HEBREW_POINTED = "בְּרֵאשִׁ֖ית בָּרָ֣א אֱלֹהִ֑ים"
HEBREW_PLAIN = "בראשית ברא אלהים"
HINDI = "हिन्दी भाषा में क्षत्रिय और पृथ्वी"
THAI = "ภาษาไทย เป็น ภาษา ที่ สวยงาม"


def test_vowelled_and_plain_arabic_give_the_same_tokens():
    stripped = tokenize(VOWELLED, strip_diacritics=True)
    assert stripped == tokenize(PLAIN, strip_diacritics=True) == tokenize(PLAIN)
    assert stripped == ["بسم", "ٱلله", "ٱلرحمن", "ٱلرحيم", "الحمد", "لله", "رب", "العالمين"]
    # without the option the marks stay inside the words: different tokens
    assert tokenize(VOWELLED)[0] != "بسم" and len(tokenize(VOWELLED)) == 8


def test_hebrew_points_and_cantillation_are_removed():
    assert tokenize(HEBREW_POINTED, strip_diacritics=True) == HEBREW_PLAIN.split()
    assert tokenize(HEBREW_POINTED) != HEBREW_PLAIN.split()


@pytest.mark.parametrize("sample", [HINDI, THAI, "Crème brûlée, naïve café", "中文 日本語 한국어 😀"])
def test_other_scripts_are_unchanged(sample):
    for form in ("NFC", "NFKC", None):
        assert tokenize(sample, normalize=form, strip_diacritics=True) == tokenize(sample, normalize=form)
    # the Devanagari vowel signs and virama, the Thai vowels: every mark of the sample is still there
    marks = [c for c in sample if unicodedata.category(c) in ("Mn", "Mc")]
    assert [c for c in strip_diacritics(sample) if unicodedata.category(c) in ("Mn", "Mc")] == marks


def test_the_removed_set_is_marks_and_tatweel_only():
    assert 0x0640 in DIACRITICS and 0x064E in DIACRITICS and 0x0670 in DIACRITICS and 0x05B0 in DIACRITICS
    assert all(unicodedata.category(chr(c)) == "Mn" for c in DIACRITICS - {0x0640})
    # Quranic signs that are not marks (end of ayah, rub el hizb, small waw) and Hebrew maqaf stay
    for kept in (0x06DD, 0x06DE, 0x06E5, 0x05BE, 0x0627, 0x05D0):
        assert kept not in DIACRITICS


def test_normalize_query_is_what_a_corpus_token_goes_through():
    decomposed = unicodedata.normalize("NFD", VOWELLED)  # marks in another order, as copied from elsewhere
    corpus_tokens = tokenize(VOWELLED, strip_diacritics=True)
    for word, token in zip(decomposed.split()[:4], corpus_tokens):
        assert normalize_query(word, strip_diacritics=True) == token
    assert normalize_query("Café") == tokenize("Café")[0] == "café"
    assert normalize_query("Café", lowercase=False) == "Café"
    assert normalize_query("ﬁne", normalize="NFKC") == "fine"
    for word in VOWELLED.split() + HEBREW_POINTED.split():  # idempotent
        once = normalize_query(word, strip_diacritics=True)
        assert normalize_query(once, strip_diacritics=True) == once
    # the README names it as sg_jax.normalize_query: the package exposes the reader's own function
    assert sg_jax.normalize_query is normalize_query and "normalize_query" in sg_jax.__all__


def test_corpus_with_and_without_marks_gives_one_vocabulary(tmp_path):
    vowelled, plain = tmp_path / "v.txt", tmp_path / "p.txt"
    vowelled.write_text((VOWELLED + "\n") * 3, encoding="utf-8")
    plain.write_text((PLAIN + "\n") * 3, encoding="utf-8")
    v1, c1, _ = load_corpus(vowelled, strip_diacritics=True)
    v2, c2, _ = load_corpus(plain, strip_diacritics=True)
    assert v1 == v2 and (c1.ids == c2.ids).all()
    mixed = tmp_path / "m.txt"
    mixed.write_text(VOWELLED + "\n" + PLAIN + "\n", encoding="utf-8")
    assert load_corpus(mixed, strip_diacritics=True)[0].words == v1.words
    assert len(load_corpus(mixed)[0]) == 2 * len(v1)  # unstripped, each vowelled form is another word
    # token lists and raw strings given in memory are stripped too
    lists = list(iter_sentences([VOWELLED.split()], strip_diacritics=True))
    assert lists == [PLAIN.split()[:-1]]  # the last "word", a lone Quranic mark, is nothing once stripped
    assert list(iter_sentences([VOWELLED], strip_diacritics=True)) == [tokenize(PLAIN)]
    assert list(iter_sentences([["ـ", "بِ"]], strip_diacritics=True)) == [["ب"]]  # tatweel alone: gone


def test_config_field_and_flag():
    assert Config().strip_diacritics is False
    cfg = Config(strip_diacritics=True).validate()
    assert Config.from_dict(cfg.to_dict()).strip_diacritics is True
    old = Config().to_dict()
    del old["strip_diacritics"]  # a config written before the option
    assert Config.from_dict(old).strip_diacritics is False
    from sg_jax.cli.options import add_config_arguments, config_from_args
    import argparse

    p = argparse.ArgumentParser()
    add_config_arguments(p)
    assert config_from_args(p.parse_args(["--strip-diacritics"])).strip_diacritics is True
    assert config_from_args(p.parse_args([])).strip_diacritics is False


def test_strip_is_a_no_op_without_marks():
    assert tokenizer.strip_diacritics("plain ascii") == "plain ascii"
