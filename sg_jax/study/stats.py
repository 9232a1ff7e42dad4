"""How much of a score is evaluation noise: bootstrap intervals over benchmark items.

A benchmark score is a statistic of a sample of items (353 word pairs, a few thousand analogy
questions); another sample of items would give another score. The bootstrap estimates that
spread: draw n items with replacement from the n scored ones, recompute the statistic, repeat
`n_resamples` times, and take the (1 - level)/2 and (1 + level)/2 percentiles of the resampled
statistics as the interval (the percentile method; Efron & Tibshirani 1993, ch. 13).

Two runs scored on the same items are compared *paired*: each resample draws one set of item
indices and computes both runs' statistics on it, so the interval of the difference holds only
the noise that does not cancel between them. A difference "exceeds the evaluation noise" when
its interval excludes 0. Training noise (another seed) is a separate source, reported as the
mean ± sample standard deviation over seeds.

Everything here is a pure function of arrays; the resampling is seeded (`seed`, default 0)
so a report is reproducible, and the number of resamples is part of every result.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import numpy as np

N_RESAMPLES = 2000  # percentile endpoints to about ±0.02 standard errors of Monte Carlo noise
LEVEL = 0.95
SEED = 0
_CHUNK_ELEMENTS = 1 << 22  # resampled items held at once (32 MiB of int64 indices)

# statistic(idx): idx int [r, n] holds r resamples of item indices; returns float [r]
Statistic = Callable[[np.ndarray], np.ndarray]


class Interval(NamedTuple):
    estimate: float   # the statistic on the items as they are
    low: float        # percentile bootstrap interval
    high: float
    level: float      # e.g. 0.95
    n_resamples: int
    n_items: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def excludes(self, value: float = 0.0) -> bool:
        """True when `value` lies outside the interval (NaN intervals exclude nothing)."""
        return bool(self.low > value or self.high < value)

    def format(self, scale: float = 1.0, digits: int = 3, signed: bool = False) -> str:
        """'0.412 [0.351, 0.470]' (values times `scale`); 'n/a' when undefined."""
        if not math.isfinite(self.estimate):
            return "n/a"
        head = f"{self.estimate * scale:+.{digits}f}" if signed else f"{self.estimate * scale:.{digits}f}"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return head
        return f"{head} [{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"


NAN_INTERVAL = Interval(math.nan, math.nan, math.nan, LEVEL, 0, 0)


# ----------------------------------------------------------------------------- the resampler


def resample_statistic(statistic: Statistic, n: int, *, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> np.ndarray:
    """The statistic on `n_resamples` bootstrap resamples of n items: float [n_resamples].

    The indices are drawn from numpy's default generator seeded with `seed`, in chunks so that
    a large n does not hold every resample in memory; the draws do not depend on the chunking,
    so any two statistics resampled with the same (n, n_resamples, seed) see the same items.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // max(n, 1))
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        r = min(chunk, n_resamples - start)
        out[start:start + r] = statistic(rng.integers(0, n, size=(r, n)))
    return out


def percentile_interval(estimate: float, resampled: np.ndarray, n: int, level: float = LEVEL) -> Interval:
    """The percentile interval of resampled statistics (resamples giving NaN are left out)."""
    finite = resampled[np.isfinite(resampled)]
    if not math.isfinite(estimate) or finite.size < 2:
        return Interval(float(estimate), math.nan, math.nan, level, int(resampled.size), n)
    alpha = (1 - level) / 2
    low, high = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return Interval(float(estimate), float(low), float(high), level, int(resampled.size), n)


def bootstrap(statistic: Statistic, n: int, *, n_resamples: int = N_RESAMPLES, level: float = LEVEL,
              seed: int = SEED) -> Interval:
    """Estimate (the statistic on the items as they are) and its percentile bootstrap interval."""
    if n == 0:
        return NAN_INTERVAL
    estimate = float(statistic(np.arange(n)[None, :])[0])
    return percentile_interval(estimate, resample_statistic(statistic, n, n_resamples=n_resamples, seed=seed),
                               n, level)


# ----------------------------------------------------------------------------- statistics


def rank_rows(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties sharing the mean of their ranks) along the last axis of x."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, axis=-1, kind="stable")
    sx = np.take_along_axis(x, order, axis=-1)
    n = x.shape[-1]
    pos = np.broadcast_to(np.arange(n), x.shape)
    starts = np.ones(x.shape, bool)
    starts[..., 1:] = sx[..., 1:] != sx[..., :-1]
    ends = np.ones(x.shape, bool)
    ends[..., :-1] = starts[..., 1:]
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=-1)          # start of each tie run
    last = np.flip(np.minimum.accumulate(np.flip(np.where(ends, pos, n - 1), -1), axis=-1), -1)  # its end
    ranks = np.empty_like(sx)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=-1)
    return ranks


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row pair of x, y [r, n]: float [r]; NaN for a constant row."""
    dx = x - x.mean(axis=-1, keepdims=True)
    dy = y - y.mean(axis=-1, keepdims=True)
    denom = np.sqrt(np.sum(dx * dx, axis=-1) * np.sum(dy * dy, axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, np.sum(dx * dy, axis=-1) / np.where(denom > 0, denom, 1.0), np.nan)


def spearman_statistic(x, y) -> Statistic:
    """Spearman correlation of the paired items x[i], y[i] (e.g. cosine and human score)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return lambda idx: pearson_rows(rank_rows(x[idx]), rank_rows(y[idx]))


def mean_statistic(values) -> Statistic:
    """The mean of the items (accuracy, for 0/1 values), in the values' units."""
    values = np.asarray(values, np.float64)
    return lambda idx: values[idx].mean(axis=-1)


def averaged(statistics: Sequence[Statistic]) -> Statistic:
    """The mean of several statistics of the same items (e.g. one per seed of a cell)."""
    return lambda idx: np.mean([s(idx) for s in statistics], axis=0)


def difference(a: Statistic, b: Statistic) -> Statistic:
    """a − b on the same resampled items: the paired comparison."""
    return lambda idx: a(idx) - b(idx)


# ----------------------------------------------------------------------------- shortcuts


def spearman_ci(x, y, **kwargs) -> Interval:
    """Spearman correlation of paired samples x, y [n] with its bootstrap interval over items."""
    return bootstrap(spearman_statistic(x, y), len(x), **kwargs)


def accuracy_ci(hits, **kwargs) -> Interval:
    """Accuracy of 0/1 outcomes hits [n] with its bootstrap interval over the items."""
    return bootstrap(mean_statistic(hits), len(hits), **kwargs)


def paired_difference(a: Statistic, b: Statistic, n: int, **kwargs) -> Interval:
    """a − b over the same n items, each resample drawing one set of items for both."""
    return bootstrap(difference(a, b), n, **kwargs)


def independent_difference(a: Statistic, n_a: int, b: Statistic, n_b: int, *, n_resamples: int = N_RESAMPLES,
                           level: float = LEVEL, seed: int = SEED) -> Interval:
    """a − b for statistics of two disjoint item sets (e.g. two frequency buckets): each set is
    resampled on its own (seeds `seed` and `seed + 1`) and the differences' percentiles taken."""
    if n_a == 0 or n_b == 0:
        return NAN_INTERVAL
    estimate = float(a(np.arange(n_a)[None, :])[0] - b(np.arange(n_b)[None, :])[0])
    ra = resample_statistic(a, n_a, n_resamples=n_resamples, seed=seed)
    rb = resample_statistic(b, n_b, n_resamples=n_resamples, seed=seed + 1)
    return percentile_interval(estimate, ra - rb, n_a + n_b, level)


def seed_mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (n − 1) and count of the finite values (training noise
    over seeds); the std is NaN with fewer than two values."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if finite.size == 0:
        return math.nan, math.nan, 0
    std = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
    return float(finite.mean()), std, int(finite.size)
