"""gensim's evaluations of word vectors, for `KeyedVectors`: word-pair similarity and analogies.

`evaluate_word_pairs` and `evaluate_word_analogies` read gensim's file formats, restrict and case-fold
the searched vocabulary as gensim does, and return gensim's scores and sections. `KeyedVectors`
exposes them as its methods of the same names.
"""

from __future__ import annotations

import itertools
import logging
from typing import Callable

import numpy as np

from sg_jax.errors import ConfigError, FormatError, quoted

logger = logging.getLogger("sg_jax")


def _ok_vocab(kv, restrict_vocab, case_insensitive: bool) -> tuple[dict[str, int], Callable[[str], str]]:
    """gensim's searched words: the first restrict_vocab words, upper-cased when case
    insensitive, the first (most frequent) spelling winning."""
    n = len(kv) if restrict_vocab is None else kv._n_candidates(restrict_vocab)
    fold = str.upper if case_insensitive else str
    table: dict[str, int] = {}
    for i, w in enumerate(kv._words[:n]):
        table.setdefault(fold(w), i)
    return table, fold


def evaluate_word_pairs(kv, pairs, delimiter="\t", encoding="utf8", restrict_vocab=300000,
                        case_insensitive=True, dummy4unknown=False):
    """The implementation of `KeyedVectors.evaluate_word_pairs` (see there)."""
    try:
        from scipy import stats  # optional dependency: scipy (the test extra)
    except ImportError:
        raise ConfigError("evaluate_word_pairs needs scipy for its p-values (pip install scipy)") from None
    table, fold = _ok_vocab(kv, restrict_vocab, case_insensitive)
    gold, rows, oov = [], [], 0
    try:
        with open(pairs, encoding=encoding) as f:
            lines = list(f)
    except OSError as e:
        raise FormatError(f"cannot read word pairs file {pairs}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise FormatError(f"word pairs file {pairs} is not valid {encoding}") from None
    for line_no, line in enumerate(lines):
        if not line or line.startswith("#"):
            continue
        try:
            a, b, score = [fold(part) for part in line.split(delimiter)]
            score = float(score)
        except (ValueError, TypeError):
            logger.info("skipping invalid line #%d in %s", line_no, pairs)
            continue
        i, j = table.get(a), table.get(b)
        if i is None or j is None:
            oov += 1
            if dummy4unknown:
                gold.append(score)
                rows.append(None)
            continue
        gold.append(score)
        rows.append((i, j))
    if not gold:
        raise ConfigError(f"no pair of {pairs} could be scored: invalid format, or every pair has an unknown word")
    if len(gold) < 2:
        raise ConfigError(f"only one pair of {pairs} could be scored ({oov} have an unknown word): a correlation "
                          f"needs at least two")
    unit = kv._unit_host
    model = [0.0 if r is None else float(np.dot(unit[r[0]], unit[r[1]])) for r in rows]
    spearman = stats.spearmanr(gold, model)
    pearson = stats.pearsonr(gold, model)
    oov_ratio = 100.0 * oov / (len(gold) if dummy4unknown else len(gold) + oov)
    logger.info("pearson %.4f (p %.3g), spearman %.4f (p %.3g) against %s; %.1f%% pairs with unknown words",
                pearson[0], pearson[1], spearman[0], spearman[1], pairs, oov_ratio)
    return pearson, spearman, oov_ratio


def evaluate_word_analogies(kv, analogies, restrict_vocab=300000, case_insensitive=True, dummy4unknown=False,
                            similarity_function="most_similar"):
    """The implementation of `KeyedVectors.evaluate_word_analogies` (see there)."""
    if similarity_function not in ("most_similar", "most_similar_cosmul"):
        raise ConfigError(f"similarity_function must be most_similar or most_similar_cosmul, got "
                          f"{quoted(similarity_function)}")
    table, fold = _ok_vocab(kv, restrict_vocab, case_insensitive)
    n = len(kv) if restrict_vocab is None else kv._n_candidates(restrict_vocab)
    sections, questions, order, oov, total = [], [], [], 0, 0
    try:
        with open(analogies, "rb") as f:
            raw = f.read().decode("utf8")
    except OSError as e:
        raise FormatError(f"cannot read analogies file {analogies}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise FormatError(f"analogies file {analogies} is not valid UTF-8") from None
    for line_no, line in enumerate(raw.splitlines(keepends=True)):
        if line.startswith(": "):
            sections.append({"section": line.lstrip(": ").strip(), "correct": [], "incorrect": []})
            continue
        if not sections:
            raise FormatError(f"{analogies} line {line_no + 1}: a question before the first ': section' line")
        words = [fold(w) for w in line.split()]
        if len(words) != 4:
            logger.info("skipping invalid line #%d in %s", line_no, analogies)
            continue
        total += 1
        if any(w not in table for w in words):
            oov += 1
            if dummy4unknown:  # counted wrong, in its place among the answered questions
                order.append((sections[-1], tuple(words), None))
            continue
        order.append((sections[-1], tuple(words), len(questions)))
        questions.append(tuple(words))
    verdicts = []
    if questions:
        rows = np.asarray([[table[w] for w in q[:3]] for q in questions], np.int64)
        if similarity_function == "most_similar":
            predicted = kv.analogy_batch(rows[:, 0], rows[:, 1], rows[:, 2], restrict_vocab=n).tolist()
        else:
            predicted = [_cosmul_answer(kv, r, n) for r in rows.tolist()]
        for q, p, r in zip(questions, predicted, rows.tolist()):
            guess = fold(kv._words[p])
            if guess in {q[0], q[1], q[2]}:  # another spelling of a question word: gensim looks further
                guess = _answer_beyond(kv, r, {q[0], q[1], q[2]}, n, fold, similarity_function)
            verdicts.append(guess == q[3])
    for section, q, k in order:
        section["correct" if k is not None and verdicts[k] else "incorrect"].append(q)
    everything = {"section": "Total accuracy",
                  "correct": list(itertools.chain.from_iterable(s["correct"] for s in sections)),
                  "incorrect": list(itertools.chain.from_iterable(s["incorrect"] for s in sections))}
    for s in sections + [everything]:
        c, w = len(s["correct"]), len(s["incorrect"])
        if c + w:
            logger.info("%s: %.1f%% (%d/%d)", s["section"], 100.0 * c / (c + w), c, c + w)
    if total:
        logger.info("quadruplets with out-of-vocabulary words: %.1f%%", 100.0 * oov / total)
    c, w = len(everything["correct"]), len(everything["incorrect"])
    return (c / (c + w) if c + w else 0.0), sections + [everything]


def _cosmul_answer(kv, row: list[int], n: int) -> int:
    a, b, c = (kv._words[i] for i in row)
    best = kv.most_similar_cosmul(positive=[b, c], negative=[a], topn=1, restrict_vocab=n)
    return kv._index[best[0][0]] if best else row[0]


def _answer_beyond(kv, row, ignore, n, fold, similarity_function) -> str | None:
    """gensim's answer when the best word is another spelling of a question word: the first of
    the top 5 that is not; the fifth's spelling when all are."""
    a, b, c = (kv._words[i] for i in row)
    ask = kv.most_similar if similarity_function == "most_similar" else kv.most_similar_cosmul
    guess = None
    for word, _ in ask(positive=[b, c], negative=[a], topn=5, restrict_vocab=n):
        guess = fold(word)
        if guess not in ignore:
            break
    return guess
