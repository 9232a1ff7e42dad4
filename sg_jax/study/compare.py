"""Benchmark scores with their intervals, from scorer results or from run records.

`Items` is one run's per-item data on one benchmark score: which items were scored (their
indices in the benchmark file) and, per item, what the statistic needs. `interval(items)` is
the score with its bootstrap interval over the items; `paired(a, b)` is a − b over the items
both runs scored, resampled together; `cell(runs)` averages several runs (seeds) of a cell,
resampling the same items for all of them.

Scores ("metrics"): "wordsim" (Spearman over WordSim-353), "simlex" (over SimLex-999),
"analogy" (accuracy over every answered question), "semantic" and "syntactic" (accuracy over
the answered questions of those section groups).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

from sg_jax.evaluation import (AnalogyResult, SimilarityResult, evaluate_analogies, evaluate_similarity, simlex999_path,
                               unpack_bits)
from sg_jax.study import stats

CORRELATIONS = ("wordsim", "simlex")
ACCURACIES = ("analogy", "semantic", "syntactic")


class Items(NamedTuple):
    kind: str            # "spearman" or "accuracy"
    index: np.ndarray    # int [n]: the items' indices in the benchmark file
    x: np.ndarray        # spearman: cosine [n]; accuracy: 1.0 right / 0.0 wrong [n]
    y: np.ndarray | None  # spearman: human score [n]; accuracy: None

    def __len__(self) -> int:
        return int(self.index.size)

    def take(self, keep: np.ndarray) -> "Items":
        return Items(self.kind, self.index[keep], self.x[keep], None if self.y is None else self.y[keep])

    def statistic(self) -> stats.Statistic:
        if self.kind == "spearman":
            return stats.spearman_statistic(self.x, self.y)
        return stats.mean_statistic(self.x)


# ----------------------------------------------------------------------------- building Items


def similarity_items(result: SimilarityResult) -> Items:
    return Items("spearman", np.asarray(result.index), np.asarray(result.cosine, np.float64),
                 np.asarray(result.human, np.float64))


def analogy_items(result: AnalogyResult, group: str = "analogy") -> Items:
    """The answered questions (group "analogy"), or those of the "semantic" or "syntactic" sections."""
    items = Items("accuracy", np.asarray(result.index), np.asarray(result.hits, np.float64), None)
    return _group(items, result.syntactic_mask(), group)


def _group(items: Items, syntactic: np.ndarray, group: str) -> Items:
    if group == "analogy":
        return items
    if group not in ("semantic", "syntactic"):
        raise ValueError(f"unknown analogy group {group!r}")
    return items.take(syntactic if group == "syntactic" else ~syntactic)


def record_items(record: dict, metric: str) -> Items | None:
    """A run record's items for a metric, or None when the record keeps no per-item data."""
    if metric in CORRELATIONS:
        block = record.get("wordsim353" if metric == "wordsim" else "simlex999") or {}
        items = block.get("items")
        if not items:
            return None
        mask = unpack_bits(items["scored"], block["n_pairs"] + block["n_oov"])
        return Items("spearman", np.flatnonzero(mask), np.asarray(items["cosine"], np.float64),
                     np.asarray(items["human"], np.float64))
    block = record.get("analogy") or {}
    items = block.get("items")
    if not items:
        return None
    total = block["total"]
    answered = np.flatnonzero(unpack_bits(items["answered"], total + block["skipped"]))
    hits = unpack_bits(items["hits"], total).astype(np.float64)
    # answered questions are in file order, and so are the sections: section k owns the next total_k
    sizes = [t for _, t in block["sections"].values()]
    syntactic = np.repeat([name.startswith("gram") for name in block["sections"]], sizes).astype(bool)
    return _group(Items("accuracy", answered, hits, None), syntactic, metric)


# ----------------------------------------------------------------------------- intervals


def common(runs: Sequence[Items]) -> list[Items]:
    """Each run restricted to the items every run scored, in one order."""
    shared = runs[0].index
    for r in runs[1:]:
        shared = np.intersect1d(shared, r.index)
    return [r.take(np.isin(r.index, shared)) for r in runs]


def interval(items: Items, **kwargs) -> stats.Interval:
    """The score over the items with its bootstrap interval."""
    return stats.bootstrap(items.statistic(), len(items), **kwargs)


def cell(runs: Sequence[Items], **kwargs) -> stats.Interval:
    """The mean score of several runs (seeds) with its interval over the items they share."""
    runs = common(runs)
    return stats.bootstrap(_mean_of(runs), len(runs[0]), **kwargs)


def _mean_of(runs: Sequence[Items]) -> stats.Statistic:
    """The mean statistic of runs over the same items. An accuracy is linear in the items, so
    the mean of accuracies is the accuracy of the averaged 0/1 values: one gather, not one per run."""
    if all(r.kind == "accuracy" for r in runs):
        return stats.mean_statistic(np.mean([r.x for r in runs], axis=0))
    return stats.averaged([r.statistic() for r in runs])


def paired(a: Sequence[Items] | Items, b: Sequence[Items] | Items, **kwargs) -> stats.Interval:
    """(mean score of runs a) − (mean score of runs b), over the items all of them scored,
    each resample drawing one set of items for all runs."""
    a = [a] if isinstance(a, Items) else list(a)
    b = [b] if isinstance(b, Items) else list(b)
    both = common(a + b)
    if all(r.kind == "accuracy" for r in both):  # linear: the difference of means is the mean of differences
        d = np.mean([r.x for r in both[:len(a)]], axis=0) - np.mean([r.x for r in both[len(a):]], axis=0)
        return stats.bootstrap(stats.mean_statistic(d), len(d), **kwargs)
    return stats.paired_difference(_mean_of(both[:len(a)]), _mean_of(both[len(a):]), len(both[0]), **kwargs)


def verdict(diff: stats.Interval, what: str, a: str, b: str, *, scale: float = 1.0, digits: int = 3,
            unit: str = "") -> str:
    """'<a> beats <b> on <what> by +0.09 [0.05, 0.13], beyond evaluation noise' and its variants,
    from the paired difference a − b."""
    if not (math.isfinite(diff.low) and math.isfinite(diff.high)):
        return f"{a} and {b} cannot be compared on {what}: no items both scored"
    text = f"{diff.estimate * scale:+.{digits}f}{unit} [{diff.low * scale:.{digits}f}, {diff.high * scale:.{digits}f}]"
    if not diff.excludes(0.0):
        return f"{a} and {b} do not differ on {what} beyond evaluation noise ({a} − {b} = {text})"
    winner, loser = (a, b) if diff.estimate > 0 else (b, a)
    return f"{winner} beats {loser} on {what} ({a} − {b} = {text}, beyond evaluation noise)"


# ----------------------------------------------------------------------------- scoring a model


def evaluate_all(emb, *, restrict_vocab: int = 30_000, method: str = "add", simlex: bool = True) -> dict[str, Items]:
    """Every metric's items for one model: wordsim, simlex (when asked), analogy, semantic, syntactic."""
    out = {"wordsim": similarity_items(evaluate_similarity(emb))}
    if simlex:
        out["simlex"] = similarity_items(evaluate_similarity(emb, simlex999_path()))
    ana = evaluate_analogies(emb, restrict_vocab=restrict_vocab, method=method)
    for group in ACCURACIES:
        out[group] = analogy_items(ana, group)
    return out
