"""The bootstrap intervals against scipy's, and the paired comparison on data whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from sg_jax.evaluation import pack_bits, unpack_bits
from sg_jax.study import stats

# Two bootstraps with different random draws agree only up to Monte Carlo noise. With R
# resamples the 2.5% percentile of a statistic with bootstrap standard error se has a Monte
# Carlo standard deviation of about sqrt(0.025 * 0.975 / R) / phi(1.96) * se ~ 0.027 se at
# R = 10,000; 0.15 se is more than five of those.
R = 10_000
TOL_SE = 0.15


def correlated(n: int, rho: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = rho * x + math.sqrt(1 - rho ** 2) * rng.normal(size=n)
    return np.round(x, 1), np.round(y, 1)  # rounding makes ties, as rounded cosines do


def scipy_spearman(x, y, axis=-1):
    """Spearman correlation along an axis from scipy's ranks (vectorised for scipy's bootstrap)."""
    rx, ry = sps.rankdata(x, axis=axis), sps.rankdata(y, axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    return (rx * ry).sum(axis) / np.sqrt((rx * rx).sum(axis) * (ry * ry).sum(axis))


def test_rank_rows_matches_scipy():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, size=(7, 30)).astype(float)  # many ties
    np.testing.assert_allclose(stats.rank_rows(x), sps.rankdata(x, axis=-1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(stats.rank_rows(x[0]), sps.rankdata(x[0]))


def test_spearman_statistic_matches_scipy():
    x, y = correlated(200, 0.4, seed=2)
    idx = np.random.default_rng(3).integers(0, 200, size=(5, 200))
    got = stats.spearman_statistic(x, y)(idx)
    want = [sps.spearmanr(x[i], y[i]).statistic for i in idx]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_spearman_interval_matches_scipy_bootstrap():
    x, y = correlated(300, 0.5, seed=4)
    ours = stats.spearman_ci(x, y, n_resamples=R, seed=5)
    assert scipy_spearman(x, y) == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)
    theirs = sps.bootstrap((x, y), scipy_spearman, paired=True, vectorized=True, n_resamples=R,
                           method="percentile", confidence_level=0.95, random_state=6)
    se = theirs.standard_error
    assert ours.estimate == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=TOL_SE * se)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=TOL_SE * se)
    assert (ours.n_resamples, ours.n_items, ours.level) == (R, 300, 0.95)


def test_accuracy_interval_matches_scipy_bootstrap():
    hits = np.random.default_rng(7).random(2000) < 0.3
    ours = stats.accuracy_ci(hits, n_resamples=R, seed=8)
    theirs = sps.bootstrap((hits.astype(float),), np.mean, n_resamples=R, method="percentile",
                           random_state=9)
    se = theirs.standard_error
    assert ours.estimate == hits.mean()
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=TOL_SE * se)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=TOL_SE * se)
    # and the binomial standard error, sqrt(p (1 - p) / n), sets the width: 2 * 1.96 se
    binomial = math.sqrt(hits.mean() * (1 - hits.mean()) / hits.size)
    assert ours.high - ours.low == pytest.approx(2 * 1.96 * binomial, rel=0.05)


def test_resampling_is_seeded_and_independent_of_chunking(monkeypatch):
    hits = np.random.default_rng(10).random(500) < 0.5
    a = stats.resample_statistic(stats.mean_statistic(hits), 500, n_resamples=300, seed=3)
    monkeypatch.setattr(stats, "_CHUNK_ELEMENTS", 500 * 7)  # 7 resamples per chunk
    b = stats.resample_statistic(stats.mean_statistic(hits), 500, n_resamples=300, seed=3)
    np.testing.assert_array_equal(a, b)
    c = stats.resample_statistic(stats.mean_statistic(hits), 500, n_resamples=300, seed=4)
    assert not np.array_equal(a, c)


def test_paired_difference_of_known_size():
    # run B answers exactly the questions A answers plus 30 more out of 1,000: a difference of 0.03
    # whose paired spread is that of a mean of 30 ones among 1,000 0/1 values.
    n = 1000
    rng = np.random.default_rng(11)
    a = rng.random(n) < 0.3
    b = a.copy()
    b[rng.choice(np.flatnonzero(~a), 30, replace=False)] = True
    diff = stats.paired_difference(stats.mean_statistic(b), stats.mean_statistic(a), n, n_resamples=R, seed=1)
    assert diff.estimate == pytest.approx(0.03)
    assert diff.excludes(0.0)
    d = b.astype(float) - a.astype(float)
    theirs = sps.bootstrap((d,), np.mean, n_resamples=R, method="percentile", random_state=2)
    se = theirs.standard_error
    assert diff.low == pytest.approx(theirs.confidence_interval.low, abs=TOL_SE * se)
    assert diff.high == pytest.approx(theirs.confidence_interval.high, abs=TOL_SE * se)
    # unpaired, the two accuracies' intervals overlap: only pairing shows the difference is real
    ia, ib = stats.accuracy_ci(a, seed=1), stats.accuracy_ci(b, seed=1)
    assert ia.high > ib.low


def test_independent_difference_matches_scipy_unpaired_bootstrap():
    rng = np.random.default_rng(13)
    x, y = rng.random(400) < 0.4, rng.random(300) < 0.25
    ours = stats.independent_difference(stats.mean_statistic(x), 400, stats.mean_statistic(y), 300, n_resamples=R)

    def diff(a, b, axis=-1):
        return a.mean(axis) - b.mean(axis)

    theirs = sps.bootstrap((x.astype(float), y.astype(float)), diff, paired=False, vectorized=True, n_resamples=R,
                           method="percentile", random_state=3)
    se = theirs.standard_error
    assert ours.estimate == pytest.approx(x.mean() - y.mean())
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=TOL_SE * se)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=TOL_SE * se)


def test_paired_difference_of_identical_runs_is_exactly_zero():
    x, y = correlated(100, 0.3, seed=12)
    s = stats.spearman_statistic(x, y)
    diff = stats.paired_difference(s, s, 100, n_resamples=200)
    assert (diff.estimate, diff.low, diff.high) == (0.0, 0.0, 0.0) and not diff.excludes(0.0)


def test_paired_difference_within_noise():
    # two runs that each get a different half of the questions right: equal accuracy, no real gap
    hits = np.zeros(400, bool)
    hits[::2] = True
    diff = stats.paired_difference(stats.mean_statistic(hits), stats.mean_statistic(~hits), 400)
    assert diff.estimate == 0.0 and diff.low < 0 < diff.high and not diff.excludes(0.0)


def test_averaged_statistic_is_the_mean_of_the_seeds():
    a = np.arange(10) % 2 == 0
    b = np.arange(10) % 5 == 0
    s = stats.averaged([stats.mean_statistic(a), stats.mean_statistic(b)])
    assert s(np.arange(10)[None])[0] == pytest.approx((0.5 + 0.2) / 2)


def test_empty_and_degenerate_inputs():
    assert math.isnan(stats.accuracy_ci(np.zeros(0, bool)).estimate)
    constant = stats.spearman_ci(np.ones(20), np.arange(20.0), n_resamples=50)
    assert math.isnan(constant.estimate) and not constant.excludes(0.0) and constant.format() == "n/a"


def test_seed_mean_std_matches_numpy():
    values = [0.31, 0.35, 0.29]
    mean, std, n = stats.seed_mean_std(values)
    assert (mean, std, n) == (pytest.approx(np.mean(values)), pytest.approx(np.std(values, ddof=1)), 3)
    assert math.isnan(stats.seed_mean_std([0.3])[1]) and stats.seed_mean_std([None, math.nan])[2] == 0


def test_interval_format():
    interval = stats.Interval(0.0244, 0.0207, 0.0281, 0.95, 2000, 6304)
    assert interval.format(scale=100, digits=2) == "2.44 [2.07, 2.81]"
    assert stats.Interval(0.09, 0.05, 0.13, 0.95, 10, 10).format(digits=2, signed=True) == "+0.09 [0.05, 0.13]"


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 6304])
def test_packed_bits_round_trip(n):
    mask = np.random.default_rng(n).random(n) < 0.3
    text = pack_bits(mask)
    assert len(text) == 4 * math.ceil(math.ceil(n / 8) / 3)  # base64 of ceil(n / 8) bytes
    np.testing.assert_array_equal(unpack_bits(text, n), mask)
