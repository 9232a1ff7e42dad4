"""Intrinsic evaluation: WordSim-353 word similarity and the Google word-analogy test set.

Both data sets ship with the package (`sg_jax/data/benchmarks/`). The scorers follow gensim's
`evaluate_word_pairs` and `evaluate_word_analogies` so numbers can be compared:

* similarity: Spearman (and Pearson) correlation between human scores and cosine similarities
  over the pairs whose two words are in the vocabulary; other pairs are skipped and counted
  (`n_oov`), as gensim does (it reports them as a ratio).
* analogies: only the first `restrict_vocab` words (the most frequent, in a frequency-ordered
  vocabulary) are searched, and questions with any word outside them are skipped and counted;
  accuracy is over the answered questions, per section and in total. The answer is the best
  word other than a, b and c, by 3CosAdd or 3CosMul (see `sg_jax.embeddings`).

With `lowercase=True` words are compared case-insensitively: question words are lowercased and
looked up among the lowercased vocabulary, the first (most frequent) spelling winning, and a
prediction is right when it equals the expected word up to case. (For a vocabulary with several
spellings of a word, gensim additionally skips predictions that are other spellings of a, b or
c; for the lowercase vocabularies sg_jax trains the two agree exactly.)
"""

from __future__ import annotations

import base64
import dataclasses
import math
import os
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import jax.numpy as jnp
import numpy as np

from sg_jax.embeddings import METHODS, Embeddings
from sg_jax.errors import ConfigError, FormatError, quoted

DATA_DIR = Path(__file__).resolve().parent / "data" / "benchmarks"
WORDSIM353 = DATA_DIR / "wordsim353.tsv"
GOOGLE_ANALOGIES = DATA_DIR / "questions-words.txt"
# Analogies search the 30,000 most frequent words, as the word2vec C tool's compute-accuracy is
# run in Mikolov et al.'s setup (gensim's evaluate_word_analogies defaults to 300,000). `sg-jax eval`
# and the sweep share this default, so the same vectors get the same score from both.
DEFAULT_RESTRICT_VOCAB = 30_000

SIMLEX999_IN_GENSIM = ("test", "test_data", "simlex999.txt")

Pair = tuple[str, str, float]
Question = tuple[str, str, str, str]


@dataclasses.dataclass(frozen=True)
class SimilarityResult:
    spearman: float  # rank correlation, ties given average ranks; NaN when undefined
    pearson: float   # linear correlation of the raw scores; NaN when undefined
    n_pairs: int     # pairs scored (both words in the vocabulary)
    n_oov: int       # pairs skipped because a word is out of vocabulary
    name: str = "pairs"  # the data set: the file's stem, or "pairs" for in-memory pairs
    # Per scored pair, in input order (what a bootstrap over the pairs resamples); not compared.
    index: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64), compare=False, repr=False)
    cosine: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0), compare=False, repr=False)
    human: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0), compare=False, repr=False)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("spearman", "pearson", "n_pairs", "n_oov", "name")}

    def items_dict(self, digits: int = 4) -> dict:
        """The per-pair data, compactly: `scored` marks (as packed bits, see `pack_bits`) which of
        the n_pairs + n_oov input pairs were scored; `cosine` and `human` list the scored pairs'
        values, cosines rounded to `digits` decimals (ties this creates are ranked as ties)."""
        mask = np.zeros(self.n_pairs + self.n_oov, bool)
        mask[self.index] = True
        return {"scored": pack_bits(mask), "cosine": [round(float(c), digits) for c in self.cosine],
                "human": [float(h) for h in self.human]}


@dataclasses.dataclass(frozen=True)
class AnalogyResult:
    accuracy: float  # correct / total; NaN when no question could be answered
    correct: int
    total: int       # questions answered (all four words among the searched words)
    skipped: int     # questions with a word outside the searched words
    sections: dict[str, tuple[int, int]]  # section -> (correct, total), in file order
    method: str = "add"     # "add" (3CosAdd) or "mul" (3CosMul)
    name: str = "analogies"  # the data set: the file's stem, or "analogies" for in-memory questions
    # Per answered question, in file order (what a bootstrap over the questions resamples):
    # its index among all questions, whether the answer was right, its section's index.
    index: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64), compare=False, repr=False)
    hits: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, bool), compare=False, repr=False)
    section_of: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64), compare=False,
                                               repr=False)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("accuracy", "correct", "total", "skipped", "method", "name")}
        d["sections"] = {k: list(v) for k, v in self.sections.items()}
        return d

    def items_dict(self) -> dict:
        """The per-question data as packed bits (see `pack_bits`): `answered` over all
        total + skipped questions in file order, `hits` over the answered ones. Each answered
        question's section follows from the sections' totals, which are in file order."""
        mask = np.zeros(self.total + self.skipped, bool)
        mask[self.index] = True
        return {"answered": pack_bits(mask), "hits": pack_bits(self.hits)}

    def syntactic_mask(self) -> np.ndarray:
        """bool [total]: which answered questions belong to a syntactic ("gram*") section."""
        names = list(self.sections)
        return np.array([names[s].startswith("gram") for s in self.section_of], bool)

    def group(self, syntactic: bool) -> tuple[int, int]:
        """(correct, total) over the Google set's syntactic ("gram*") or semantic sections."""
        pairs = [v for k, v in self.sections.items() if k.startswith("gram") == syntactic]
        return sum(c for c, _ in pairs), sum(t for _, t in pairs)


# ----------------------------------------------------------------------------- loaders


def _lines(path: Path, what: str) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of a UTF-8 file, blank lines skipped."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FormatError(f"{what} file {path} does not exist") from None
    except OSError as e:
        raise FormatError(f"cannot read {what} file {path}: {e.strerror}") from None
    with f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise FormatError(f"{path} line {lineno}: not valid UTF-8") from None
            if line:
                yield lineno, line


def load_similarity_pairs(path: str | os.PathLike | None = None) -> list[Pair]:
    """Word pairs with human scores: lines "word1 word2 score", tab- or space-separated.

    Lines starting with '#' are comments. Default: the bundled WordSim-353 (353 pairs).
    """
    path = WORDSIM353 if path is None else Path(path)
    pairs = []
    for lineno, line in _lines(path, "similarity"):
        if line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("\t")] if "\t" in line else line.split()
        try:
            w1, w2, score = parts
            value = float(score)
        except ValueError:
            raise FormatError(f"{path} line {lineno}: expected 'word1 word2 score', got {quoted(line)}") from None
        if not w1 or not w2 or not math.isfinite(value):
            raise FormatError(f"{path} line {lineno}: expected 'word1 word2 score', got {quoted(line)}")
        pairs.append((w1, w2, value))
    if not pairs:
        raise FormatError(f"similarity file {path} holds no word pairs")
    return pairs


def simlex999_path() -> Path:
    """SimLex-999 (999 pairs scored for similarity, not relatedness), read from the copy in the
    installed gensim's test data: it is not bundled, because its authors state no licence that
    allows redistribution (see sg_jax/data/README.md)."""
    try:
        import gensim  # optional dependency: only SimLex-999 reads gensim's test data
    except ImportError:
        raise ConfigError("SimLex-999 is read from gensim's test data; install gensim "
                          "(pip install -e '.[test]')") from None
    path = Path(gensim.__file__).resolve().parent.joinpath(*SIMLEX999_IN_GENSIM)
    if not path.exists():
        raise ConfigError(f"the installed gensim has no {path.name} (looked for {path})")
    return path


def load_analogies(path: str | os.PathLike | None = None) -> dict[str, list[Question]]:
    """Analogy questions "a b c d" (a:b :: c:d) grouped under ": section" header lines.

    Default: the bundled Google analogy set (19,544 questions in 14 sections).
    """
    path = GOOGLE_ANALOGIES if path is None else Path(path)
    sections: dict[str, list[Question]] = {}
    current = None
    for lineno, line in _lines(path, "analogy"):
        if line.startswith(":"):
            current = line[1:].strip()
            if not current:
                raise FormatError(f"{path} line {lineno}: empty section name")
            sections.setdefault(current, [])
            continue
        parts = line.split()
        if len(parts) != 4:
            raise FormatError(f"{path} line {lineno}: expected 4 words, got {len(parts)}")
        if current is None:
            raise FormatError(f"{path} line {lineno}: question before the first ': section' line")
        sections[current].append(tuple(parts))
    if not any(sections.values()):
        raise FormatError(f"analogy file {path} holds no questions")
    return sections


# ----------------------------------------------------------------------------- statistics


def rankdata(x) -> np.ndarray:
    """1-based ranks float64 [n] of `x` [n]; tied values share the average of their ranks."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    sx = x[order]
    new = np.r_[True, sx[1:] != sx[:-1]]  # first element of each run of equal values
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], x.size]
    ranks = np.empty(x.size)
    ranks[order] = ((starts + ends + 1) / 2.0)[np.cumsum(new) - 1]
    return ranks


def pearson(x, y) -> float:
    """Pearson correlation of two [n] samples; NaN when n < 2 or either is constant."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size < 2:
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / denom if denom > 0 else math.nan


def spearman(x, y) -> float:
    """Spearman rank correlation (the Pearson correlation of average ranks)."""
    return pearson(rankdata(x), rankdata(y))


# ----------------------------------------------------------------------------- scorers


def _lookup(emb: Embeddings, n: int, lowercase: bool) -> dict[str, int]:
    """word (lowercased if asked) -> index among the first n words; first spelling wins."""
    table: dict[str, int] = {}
    for i, w in enumerate(emb.words[:n]):
        table.setdefault(w.lower() if lowercase else w, i)
    return table


def evaluate_similarity(
    emb: Embeddings, pairs: Iterable[Pair] | str | os.PathLike | None = None, lowercase: bool = True
) -> SimilarityResult:
    """Correlate cosine similarities with human scores (default pairs: WordSim-353)."""
    name = "pairs"
    if pairs is None or isinstance(pairs, (str, os.PathLike)):
        name = Path(pairs or WORDSIM353).stem
        pairs = load_similarity_pairs(pairs)
    table = _lookup(emb, len(emb), lowercase)
    key = str.lower if lowercase else str
    left, right, human, kept, n_oov = [], [], [], [], 0
    for k, (w1, w2, score) in enumerate(pairs):
        i, j = table.get(key(w1)), table.get(key(w2))
        if i is None or j is None:
            n_oov += 1
            continue
        kept.append(k)
        left.append(i)
        right.append(j)
        human.append(score)
    if not human:
        return SimilarityResult(math.nan, math.nan, 0, n_oov, name)
    unit = emb.unit_vectors
    cos = np.asarray(jnp.sum(unit[jnp.asarray(left)] * unit[jnp.asarray(right)], axis=1), np.float64)
    human = np.asarray(human, np.float64)
    return SimilarityResult(spearman(cos, human), pearson(cos, human), len(human), n_oov, name,
                            np.asarray(kept, np.int64), cos, human)


def evaluate_analogies(
    emb: Embeddings, questions: Mapping[str, Iterable[Question]] | str | os.PathLike | None = None,
    restrict_vocab: int | None = DEFAULT_RESTRICT_VOCAB, method: str = "add", lowercase: bool = True,
) -> AnalogyResult:
    """Top-1 analogy accuracy over the first `restrict_vocab` words (default: Google set)."""
    name = "analogies"
    if questions is None or isinstance(questions, (str, os.PathLike)):
        name = Path(questions or GOOGLE_ANALOGIES).stem
        questions = load_analogies(questions)
    if restrict_vocab is not None and (not isinstance(restrict_vocab, int) or restrict_vocab < 1):
        raise ConfigError(f"restrict_vocab must be a positive integer, got {restrict_vocab!r}")
    if method not in METHODS:
        raise ConfigError(f"unknown analogy method {method!r}; choose one of {', '.join(METHODS)}")
    n = len(emb) if restrict_vocab is None else min(restrict_vocab, len(emb))
    table = _lookup(emb, n, lowercase)
    key = str.lower if lowercase else str
    rows, owners, expected, kept, skipped = [], [], [], [], 0
    names = list(questions)
    number = 0
    for s, section in enumerate(names):
        for q in questions[section]:
            idx = [table.get(key(w)) for w in q]
            number += 1
            if None in idx:
                skipped += 1
                continue
            kept.append(number - 1)
            rows.append(idx[:3])
            owners.append(s)
            expected.append(key(q[3]))
    hits = np.zeros(len(rows), bool)
    if rows:
        a, b, c = np.asarray(rows, np.int32).T
        predicted = emb.analogy_batch(a, b, c, method=method, restrict_vocab=n)
        hits = np.array([key(emb.words[p]) == e for p, e in zip(predicted.tolist(), expected)])
    owners = np.asarray(owners, np.int64)
    sections = {
        section: (int(hits[owners == s].sum()), int((owners == s).sum())) for s, section in enumerate(names)
    }
    correct, total = int(hits.sum()), len(rows)
    accuracy = correct / total if total else math.nan
    return AnalogyResult(accuracy, correct, total, skipped, sections, method, name,
                         np.asarray(kept, np.int64), hits.astype(bool), owners)


# ----------------------------------------------------------------------------- per-item data


def pack_bits(mask) -> str:
    """A bool [n] array as text: its bits packed 8 to a byte (first item = highest bit), base64."""
    return base64.b64encode(np.packbits(np.asarray(mask, bool)).tobytes()).decode("ascii")


def unpack_bits(text: str, n: int) -> np.ndarray:
    """The inverse of `pack_bits`: bool [n]."""
    raw = np.frombuffer(base64.b64decode(text.encode("ascii")), np.uint8)
    if raw.size != (n + 7) // 8:
        raise FormatError(f"packed bits hold {raw.size * 8} items, expected {n}")
    return np.unpackbits(raw)[:n].astype(bool)


# ----------------------------------------------------------------------------- reporting


def _pct(correct: int, total: int) -> str:
    return f"{100.0 * correct / total:7.2f}%" if total else "      - "


def _corr(value: float) -> str:
    """A correlation for the table: '-' where it is undefined (fewer than two pairs, or constant scores)."""
    return f"{value:8.4f}" if math.isfinite(value) else "       -"


def format_table(results: Mapping[str, SimilarityResult | AnalogyResult] | Iterable) -> str:
    """A plain-text report: one line per similarity result, a block per analogy result.

    `results`: label -> result, or an iterable of results (labelled by their `name`).
    """
    items = list(results.items()) if isinstance(results, Mapping) else [(r.name, r) for r in results]
    sims = [(k, r) for k, r in items if isinstance(r, SimilarityResult)]
    lines: list[str] = []
    if sims:
        width = max(24, *(len(k) for k, _ in sims))
        lines.append(f"{'similarity':<{width}}  {'spearman':>8}  {'pearson':>8}  {'pairs':>6}  {'oov':>5}")
        for label, r in sims:
            lines.append(f"{label:<{width}}  {_corr(r.spearman)}  {_corr(r.pearson)}  {r.n_pairs:6d}  {r.n_oov:5d}")
    for label, r in items:
        if not isinstance(r, AnalogyResult):
            continue
        rows = [(f"  {name}", c, t) for name, (c, t) in r.sections.items()]
        sem, syn = r.group(False), r.group(True)
        if sem[1] and syn[1]:
            rows += [("  semantic", *sem), ("  syntactic", *syn)]
        rows.append(("  total", r.correct, r.total))
        width = max(24, *(len(name) for name, _, _ in rows))
        if lines:
            lines.append("")
        lines.append(f"{f'{label} (3Cos{r.method.capitalize()})':<{width}}  {'accuracy':>8}  "
                     f"{'correct':>7}  {'total':>6}")
        lines += [f"{name:<{width}}  {_pct(c, t):>8}  {c:7d}  {t:6d}" for name, c, t in rows]
        lines.append(f"{'  skipped (out of vocabulary)':<{width}}  {'':>8}  {'':>7}  {r.skipped:6d}")
    return "\n".join(lines)
