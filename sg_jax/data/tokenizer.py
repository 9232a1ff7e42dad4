"""What a word is: Unicode normalisation, Arabic and Hebrew diacritics, and the word pattern.

`tokenize` splits a line into words as every reader does; `normalize_query` puts a query through
exactly what a corpus token goes through. The readers (`sg_jax.data.text`, `sg_jax.data.fastread`)
apply `normalize_text` and `WORD_RE` to the text they read.
"""

from __future__ import annotations

import re
import unicodedata

from sg_jax.errors import ConfigError, quoted

# A word is a letter, digit or underscore (any script, Python's unicode `\w`) followed by more of
# them and of combining marks (Unicode categories Mn, Mc, Me, which `\w` does not match: the
# vowel signs of Devanagari, Tamil and Thai, Arabic harakat, Hebrew niqqud, decomposed accents),
# optionally joined by an apostrophe, typographic apostrophe or hyphen: "don't", "term-end",
# "café", "हिन्दी". Everything else (punctuation, symbols, U+FFFD) is dropped and counted in
# ReadStats. Text is normalised to NFC first by default, so "café" typed with a combining accent
# and with a precomposed "é" are one word.
NORMALIZATIONS = ("NFC", "NFKC", None)


def _combining_marks() -> str:
    """The Mn, Mc and Me code points as a regex character-class body (ranges). They lie in
    planes 0, 1 and 14, scanned here (a tenth of the code space: ~15 ms at import)."""
    ranges: list[list[int]] = []
    for plane in (range(0x20000), range(0xE0000, 0xF0000)):
        for c in plane:
            if unicodedata.category(chr(c)) in ("Mn", "Mc", "Me"):
                if ranges and ranges[-1][1] == c - 1:
                    ranges[-1][1] = c
                else:
                    ranges.append([c, c])
    return "".join(f"\\U{a:08x}-\\U{b:08x}" if a != b else f"\\U{a:08x}" for a, b in ranges)


_MARKS = _combining_marks()
_WORD_CHARS = rf"[\w{_MARKS}]"
WORD_RE = re.compile(rf"\w{_WORD_CHARS}*(?:['’-]\w{_WORD_CHARS}*)*")
_WORD_RUN = re.compile(rf"{_WORD_CHARS}*")  # word characters, from where a match starts


# Diacritics that `strip_diacritics` removes: Arabic harakat and the other Arabic combining marks
# (U+0610-U+061A, fathatan U+064B .. U+065F, superscript alef U+0670, the Extended-A marks
# U+08D3-U+08FF), the Quranic annotation signs of U+06D6-U+06ED, tatweel U+0640 (a stretching
# stroke, not a letter), and Hebrew points and cantillation (U+0591-U+05C7, U+FB1E). Only
# nonspacing marks (category Mn) of those ranges are taken, so Arabic and Hebrew punctuation and
# letters (the small waw and yeh U+06E5-U+06E6, maqaf U+05BE) stay. Every other script's marks,
# such as the Devanagari vowel signs and virama and the Thai vowels, are untouched.
_DIACRITIC_RANGES = ((0x0591, 0x05C7), (0xFB1E, 0xFB1E), (0x0610, 0x061A), (0x064B, 0x065F),
                     (0x0670, 0x0670), (0x06D6, 0x06ED), (0x08D3, 0x08FF))
DIACRITICS = frozenset([0x0640] + [c for a, b in _DIACRITIC_RANGES for c in range(a, b + 1)
                                   if unicodedata.category(chr(c)) == "Mn"])
_STRIP_TABLE = dict.fromkeys(DIACRITICS)
_DIACRITIC_RE = re.compile("[" + "".join(f"\\u{c:04x}" for c in sorted(DIACRITICS)) + "]")


def strip_diacritics(text: str, normalize: str | None = None) -> str:
    """`text` without the Arabic and Hebrew marks in `DIACRITICS` (harakat, Quranic signs,
    tatweel, niqqud, cantillation): "بِسْمِ" -> "بسم". With `normalize`, the result is normalised
    again where something was removed (a removed mark can leave a base and a later mark that
    compose), so the output is in that form whenever the input was."""
    if not _DIACRITIC_RE.search(text):
        return text
    text = text.translate(_STRIP_TABLE)
    return unicodedata.normalize(normalize, text) if normalize else text


def normalize_text(text: str, normalize: str | None = "NFC", strip: bool = False) -> str:
    """What the reader does to text before tokenizing: Unicode normalisation (`normalize`), then
    `strip_diacritics` if `strip`. Lines never interact: normalising a block of lines equals
    normalising each line."""
    if _check_normalize(normalize):
        text = unicodedata.normalize(normalize, text)
    return strip_diacritics(text, normalize) if strip else text


def normalize_query(word: str, *, lowercase: bool = True, normalize: str | None = "NFC",
                    strip_diacritics: bool = False) -> str:
    """`word` as a corpus token read with these options becomes: normalised, stripped of
    diacritics if asked, lowercased. Look a query up in a vocabulary through this, with the
    options the corpus was read with, and it is found however it was typed (NFC or decomposed,
    with or without vowel marks, any case)."""
    word = normalize_text(word, normalize, strip_diacritics)
    return word.lower() if lowercase else word


def _check_normalize(normalize) -> str | None:
    if normalize not in NORMALIZATIONS:
        raise ConfigError(f"normalize must be 'NFC', 'NFKC' or None, got {quoted(normalize)}")
    return normalize


def tokenize(line: str, lowercase: bool = True, normalize: str | None = "NFC",
             strip_diacritics: bool = False) -> list[str]:
    """Split `line` into words (`WORD_RE` matches, in order) after Unicode normalisation
    (`normalize`: "NFC", the default, "NFKC", which also folds compatibility forms such as "ﬁ"
    and full-width letters, or None), stripped of Arabic and Hebrew diacritics if
    `strip_diacritics` (see `strip_diacritics`), lowercased with `str.lower`.

    "Don't stop -- it's café-time, 3.5!" -> ["don't", "stop", "it's", "café-time", "3", "5"];
    "हिन्दी भाषा" -> ["हिन्दी", "भाषा"].
    """
    words = WORD_RE.findall(normalize_text(line, normalize, strip_diacritics))
    return [w.lower() for w in words] if lowercase else words
