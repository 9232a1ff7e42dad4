"""The report's comparisons between cells, on constructed runs whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from sg_jax.evaluation import AnalogyResult, SimilarityResult, spearman
from sg_jax.study import findings, summary

N_PAIRS, N_QUESTIONS = 300, 800
RNG = np.random.default_rng(0)
HUMAN = np.round(RNG.uniform(0, 10, N_PAIRS), 2)
SECTIONS = {"capital-common-countries": (0, N_QUESTIONS // 2), "gram1-adjective-to-adverb": (0, N_QUESTIONS // 2)}


def record(window: int, dim: int, cosine: np.ndarray, hits: np.ndarray) -> dict:
    """A run record with per-item data, built through the scorers' result types."""
    sim = SimilarityResult(spearman(cosine, HUMAN), 0.0, N_PAIRS, 53, "wordsim353", np.arange(N_PAIRS), cosine, HUMAN)
    sections = {name: (int(hits[k * N_QUESTIONS // 2:(k + 1) * N_QUESTIONS // 2].sum()), t)
                for k, (name, (_, t)) in enumerate(SECTIONS.items())}
    owners = np.repeat([0, 1], N_QUESTIONS // 2)
    ana = AnalogyResult(hits.mean(), int(hits.sum()), N_QUESTIONS, 0, sections, "add", "google",
                        np.arange(N_QUESTIONS), hits, owners)
    analogy = ana.to_dict()
    analogy.update(semantic=list(ana.group(False)), syntactic=list(ana.group(True)), items=ana.items_dict())
    wordsim = sim.to_dict()
    wordsim["items"] = sim.items_dict()
    return {"window": window, "dim": dim, "seed": 0, "wordsim353": wordsim, "analogy": analogy,
            "final_loss": 1.0, "wall_seconds": 1.0, "words_per_second": 1.0}


@pytest.fixture(scope="module")
def study():
    """Window 8 tracks the human scores far better than window 1; dimension changes nothing (the
    same cosines at both dimensions); every cell answers the same questions right."""
    hits = RNG.random(N_QUESTIONS) < 0.3
    close = np.round(HUMAN / 10 + RNG.normal(0, 0.1, N_PAIRS), 4)
    loose = np.round(HUMAN / 10 + RNG.normal(0, 1.0, N_PAIRS), 4)
    records = [record(w, d, close if w == 8 else loose, hits) for w in (1, 8) for d in (25, 50)]
    rows = summary.summarize(records, n_resamples=500)
    return records, rows, findings.findings(records, rows, n_resamples=500)


def test_window_effect_beyond_noise_and_dimension_within(study):
    _, _, found = study
    text = " ".join(found["wordsim_spearman"])
    assert "WordSim-353 Spearman ρ rises with window at every dimension" in text
    assert "dimension changes nothing beyond evaluation noise" in text
    assert "within evaluation noise at 2 of 2 (window 1, 8)" in text
    analogy = " ".join(found["analogy_pct"])
    assert "Google analogy accuracy (%): window changes nothing beyond evaluation noise" in analogy
    assert "+0.00 pts [0.00, 0.00]" in analogy  # the same questions right: the paired difference is exactly 0


def test_best_cell_and_its_ties(study):
    _, _, found = study
    best = next(s for s in found["wordsim_spearman"] if "highest mean" in s)
    assert "window 8" in best and "1 of 3 other cells are within evaluation noise of it (w8 d" in best
    assert "the other 2 are below it beyond noise" in best


def test_paired_difference_matches_scipy(study):
    records, _, _ = study
    got = findings.compare_cells(records, "wordsim_spearman", (8, 25), (1, 25), n_resamples=4000).diff
    a = np.asarray(records[2]["wordsim353"]["items"]["cosine"])
    b = np.asarray(records[0]["wordsim353"]["items"]["cosine"])

    def rho(x, h, axis=-1):
        rx, rh = sps.rankdata(x, axis=axis), sps.rankdata(h, axis=axis)
        rx, rh = rx - rx.mean(axis, keepdims=True), rh - rh.mean(axis, keepdims=True)
        return (rx * rh).sum(axis) / np.sqrt((rx * rx).sum(axis) * (rh * rh).sum(axis))

    def diff(x, y, h, axis=-1):
        return rho(x, h, axis) - rho(y, h, axis)

    assert diff(a, b, HUMAN) == pytest.approx(sps.spearmanr(a, HUMAN).statistic - sps.spearmanr(b, HUMAN).statistic)
    theirs = sps.bootstrap((a, b, HUMAN), diff, paired=True, vectorized=True, n_resamples=4000,
                           method="percentile", random_state=1)
    se = theirs.standard_error  # tolerance: Monte Carlo noise of two 4,000-resample bootstraps, < 0.2 se
    assert got.estimate == pytest.approx(diff(a, b, HUMAN), abs=1e-12)
    assert got.low == pytest.approx(theirs.confidence_interval.low, abs=0.2 * se)
    assert got.high == pytest.approx(theirs.confidence_interval.high, abs=0.2 * se)


def test_summary_intervals_hold_the_estimates(study):
    _, rows, _ = study
    for row in rows:
        for metric in summary.SCORES:
            assert row[f"{metric}_low"] <= row[f"{metric}_mean"] <= row[f"{metric}_high"]
    # analogy in percent: 0.3 of the questions is about 30
    assert 20 < rows[0]["analogy_pct_mean"] < 40
