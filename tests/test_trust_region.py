"""optim.trust_region: a row's summed update bounded in score space, checked against a numpy
derivation; and training runs that diverge without it and train with it."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sg_jax
from sg_jax import optim
from sg_jax.config import Config
from sg_jax.errors import DivergenceError
from sg_jax.model import Params

V_IN, V_OUT, N = 6, 5, 4


def expected(updates, idx, partner, bound):
    """The rule by hand: each row's occurrences summed, the sum's norm times the partner norm
    compared with the bound, every occurrence scaled by the row's factor."""
    updates, idx = np.asarray(updates, np.float64), np.asarray(idx)
    sums = {}
    for u, i in zip(updates, idx):
        sums[int(i)] = sums.get(int(i), 0) + u
    out = np.empty_like(updates)
    for k, (u, i) in enumerate(zip(updates, idx)):
        change = np.linalg.norm(sums[int(i)]) * partner
        out[k] = u * (bound / change if change > bound else 1.0)
    return out


@pytest.mark.parametrize("bound", [0.05, 0.5, 50.0])
def test_each_rows_summed_update_is_scaled_to_the_bound(bound, x64):
    rng = np.random.default_rng(0)
    in_idx = jnp.asarray([0, 3, 3, 3, 5, 0, 1], jnp.int32)    # row 3 three times: its sum is larger
    out_idx = jnp.asarray([4, 4, 2, 0, 4, 1, 4, 4], jnp.int32)
    u = Params(jnp.asarray(rng.normal(size=(7, N))), jnp.asarray(rng.normal(size=(8, N))))
    norms = Params(jnp.asarray(1.7), jnp.asarray(0.3))
    got, _ = optim.trust_region(bound).update(u, optax.EmptyState(), indices=Params(in_idx, out_idx),
                                              partner_norms=norms)
    np.testing.assert_allclose(got.w_in, expected(u.w_in, in_idx, 1.7, bound), rtol=1e-12)
    np.testing.assert_allclose(got.w_out, expected(u.w_out, out_idx, 0.3, bound), rtol=1e-12)
    # the bound holds for every row's sum, and is reached by the rows that exceeded it
    for g, idx, x in ((got.w_in, in_idx, 1.7), (got.w_out, out_idx, 0.3)):
        for row in set(np.asarray(idx).tolist()):
            moved = np.linalg.norm(np.asarray(g)[np.asarray(idx) == row].sum(0)) * x
            assert moved <= bound * (1 + 1e-12)


def test_a_dense_table_is_bounded_row_by_row(x64):
    rng = np.random.default_rng(1)
    u = Params(jnp.asarray(rng.normal(size=(3, N))), jnp.asarray(rng.normal(size=(V_OUT, N))))
    got, _ = optim.trust_region(0.5).update(u, optax.EmptyState(), indices=Params(jnp.asarray([0, 1, 0]), None),
                                            partner_norms=Params(jnp.asarray(1.0), jnp.asarray(2.0)))
    want = np.asarray(u.w_out) * np.minimum(1, 0.5 / (np.linalg.norm(u.w_out, axis=1) * 2.0))[:, None]
    np.testing.assert_allclose(got.w_out, want, rtol=1e-12)


def test_without_partner_norms_updates_pass_unchanged(x64):
    u = Params(jnp.ones((2, N)), jnp.ones((3, N)))
    got, _ = optim.trust_region(1e-9).update(u, optax.EmptyState(), indices=Params(jnp.zeros(2, jnp.int32), None))
    np.testing.assert_array_equal(got.w_in, u.w_in)


def test_partner_norms_are_the_other_tables_largest_row():
    a = jnp.asarray([[3.0, 4.0], [0.0, 1.0]])
    b = jnp.asarray([[1.0, 0.0], [0.0, 2.0], [0.0, 0.5]])
    for_in, for_out = optim.partner_norms(a, b)
    assert float(for_in) == 2.0 and float(for_out) == 5.0


def test_bad_bounds_are_refused():
    for bad in (0, -1, float("inf")):
        with pytest.raises(sg_jax.errors.ConfigError, match="trust_region"):
            optim.trust_region(bad)
    with pytest.raises(sg_jax.errors.ConfigError, match="trust_region"):
        Config(trust_region=-1.0).validate()


def test_configs_saved_before_the_option_train_without_it():
    old = Config().to_dict()
    del old["trust_region"]
    assert Config.from_dict(old).trust_region == 0.0
    assert Config().trust_region > 0


def _small_corpus(seed=0, tokens=40_000, vocab=400):
    """A Zipf corpus with few words: every step holds each frequent row many times."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1)
    words = rng.choice(vocab, size=tokens, p=p / p.sum())
    return [[f"w{i}" for i in words[k:k + 20]] for k in range(0, tokens, 20)]


@pytest.mark.slow
def test_a_run_that_diverges_without_the_rule_trains_with_it():
    """15 noise words, a large rate and a batch of the whole vocabulary: the summed step overshoots
    on the frequent rows without the rule; with it the same run ends finite, its loss falling."""
    corpus = _small_corpus()
    opts = dict(negative=15, lr=0.1, window=4, epochs=2, dim=16, min_count=1, sample=0.0, batch_size=4096)
    with pytest.raises(DivergenceError):
        sg_jax.train_model(corpus, trust_region=0.0, **opts)
    model = sg_jax.train_model(corpus, **opts)
    losses = [r["loss"] for r in model.history if "loss" in r]
    assert np.all(np.isfinite(model.wv.vectors)) and losses[-1] < losses[0]


def test_a_rate_of_ten_thousand_stays_finite_with_the_rule():
    """The catalogue's diverging run (lr 1e4, tests/test_bad_inputs.py) without the rule: every
    step moves each row so far that no score changes by more than the bound, so it ends finite."""
    from sg_jax.data.corpus import load_corpus
    from sg_jax.train import train

    vocab, corpus, _ = load_corpus("toy:groups", min_count=1)
    config = Config(lr=1e4, batch_size=64, dim=8, min_count=1, epochs=2)
    with pytest.raises(DivergenceError):
        train(dataclasses.replace(config, trust_region=0.0), vocab.words, vocab.counts, corpus.ids, corpus.offsets)
    result = train(config, vocab.words, vocab.counts, corpus.ids, corpus.offsets)
    assert np.all(np.isfinite(result.vectors())) and result.final_loss < 10 * result.history[0]["loss"]
