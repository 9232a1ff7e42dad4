"""optim.trust_region: a row's summed update bounded in score space, checked against a numpy
derivation; and training runs that diverge without it and train with it."""

import dataclasses

import jax
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


def _step_problem(rng, repeats=1, scale=1.0):
    """Tables [V_IN, N] and [V_OUT, N], indices with repeated rows (padded once past the end), and
    row gradients scaled by `scale`."""
    params = Params(jnp.asarray(rng.normal(size=(V_IN, N))), jnp.asarray(rng.normal(size=(V_OUT, N))))
    in_idx = jnp.asarray([0, 3, 3, 3, 5, 0, 1] * repeats, jnp.int32)
    out_idx = jnp.asarray([4, 4, 2, 0, 4, 1, 4, 4] * repeats, jnp.int32)
    grads = Params(jnp.asarray(scale * rng.normal(size=(in_idx.shape[0], N))),
                   jnp.asarray(scale * rng.normal(size=(out_idx.shape[0], N))))
    return params, Params(in_idx, out_idx), grads


@pytest.mark.parametrize("name", ["sgd", "adagrad", "adam"])
@pytest.mark.parametrize("bound", [0.05, 0.5, 50.0])
def test_the_rule_after_the_scatter_equals_the_chains(name, bound, x64):
    """sparse_step given the rows read (the rule applied after its scatter, `bound_row_moves`) and
    given the partner norms (the rule inside the optax chain, `trust_region`) take the same step,
    for the summed (row-state) path too; and for SGD that step is the hand derivation's."""
    params, idx, grads = _step_problem(np.random.default_rng(2))
    rows = Params(params.w_in[idx.w_in], params.w_out[idx.w_out])
    tx = optim.with_trust_region(optim.make_optimizer(name, 0.7), bound=bound)
    state = tx.init(params)
    chain, chain_state = optim.sparse_step(tx, params, state, grads, idx,
                                           partner_norms=Params(*optim.partner_norms(*rows)))
    after, after_state = optim.sparse_step(tx, params, state, grads, idx, rows=rows)
    for a, b in zip(after, chain):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for a, b in zip(jax.tree.leaves(after_state), jax.tree.leaves(chain_state)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    if name == "sgd":
        p_in, p_out = (float(x) for x in optim.partner_norms(*rows))
        for table, u, i, x in ((0, grads.w_in, idx.w_in, p_in), (1, grads.w_out, idx.w_out, p_out)):
            want = np.asarray(params[table]).copy()
            np.add.at(want, np.asarray(i), expected(-0.7 * np.asarray(u), i, x, bound))
            np.testing.assert_allclose(after[table], want, rtol=1e-12, atol=1e-14)


def test_the_rule_after_the_scatter_bounds_a_dense_table(x64):
    params, idx, grads = _step_problem(np.random.default_rng(3))
    idx = Params(idx.w_in, None)
    grads = Params(grads.w_in, jnp.asarray(np.random.default_rng(4).normal(size=(V_OUT, N))))
    rows = Params(params.w_in[idx.w_in], params.w_out)
    tx = optim.with_trust_region(optim.make_optimizer("sgd", 0.9), bound=0.3)
    chain, _ = optim.sparse_step(tx, params, tx.init(params), grads, idx,
                                 partner_norms=Params(*optim.partner_norms(*rows)))
    after, _ = optim.sparse_step(tx, params, tx.init(params), grads, idx, rows=rows)
    moved = np.linalg.norm(np.asarray(after.w_out - params.w_out), axis=1) * float(optim.partner_norms(*rows)[1])
    assert np.any(np.isclose(moved, 0.3)) and np.all(moved <= 0.3 * (1 + 1e-12))
    for a, b in zip(after, chain):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_a_step_that_would_diverge_moves_no_row_past_the_bound():
    """A rate of 1,000 on rows met up to 30 times (float32, as trained): unbounded, the step moves
    rows by thousands of times the bound; with the rule after the scatter every row it touched
    moves by at most bound / P (the rows over it by exactly that), padding and untouched rows not
    at all."""
    bound = 2.0
    params, idx, grads = _step_problem(np.random.default_rng(5), repeats=10, scale=3.0)
    params = jax.tree.map(lambda x: x.astype(jnp.float32), params)
    grads = jax.tree.map(lambda x: x.astype(jnp.float32), grads)
    rows = Params(params.w_in[idx.w_in], params.w_out[idx.w_out])
    partner = dict(zip((0, 1), (float(x) for x in optim.partner_norms(*rows))))
    padded = Params(idx.w_in.at[-1].set(V_IN), idx.w_out)   # one slot marked as padding (past the end)
    grads = Params(grads.w_in.at[-1].set(0.0), grads.w_out)
    plain = optim.make_optimizer("sgd", 1e3)
    free, _ = optim.sparse_step(plain, params, plain.init(params), grads, padded)
    tx = optim.with_trust_region(optim.make_optimizer("sgd", 1e3), bound=bound)
    held, _ = optim.sparse_step(tx, params, tx.init(params), grads, padded, rows=rows)
    for t in (0, 1):
        touched = np.unique(np.asarray(padded[t])[np.asarray(padded[t]) < params[t].shape[0]])
        before = np.asarray(params[t])
        free_change = np.linalg.norm(np.asarray(free[t]) - before, axis=1) * partner[t]
        change = np.linalg.norm(np.asarray(held[t]) - before, axis=1) * partner[t]
        assert free_change[touched].min() > 1000 * bound
        np.testing.assert_allclose(change[touched], bound, rtol=1e-4)
        untouched = np.setdiff1d(np.arange(before.shape[0]), touched)
        np.testing.assert_array_equal(np.asarray(held[t])[untouched], before[untouched])
        # each row moved along its unbounded direction
        for r in touched:
            d_free, d = np.asarray(free[t])[r] - before[r], np.asarray(held[t])[r] - before[r]
            assert np.dot(d_free, d) / (np.linalg.norm(d_free) * np.linalg.norm(d)) > 1 - 1e-4


def test_the_chain_with_a_trust_region_keeps_the_chains_state():
    """Checkpoints of runs trained with optax.chain(..., trust_region(B)) resume into it."""
    params = Params(jnp.zeros((3, 2)), jnp.zeros((4, 2)))
    adagrad = optim.make_optimizer("adagrad", 0.1)
    tx = optim.with_trust_region(adagrad, bound=2.0)
    assert tx.bound == 2.0 and isinstance(tx, optax.GradientTransformationExtraArgs)
    chained = optax.chain(adagrad, optim.trust_region(2.0))
    assert jax.tree.structure(tx.init(params)) == jax.tree.structure(chained.init(params))


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


def test_a_batch_far_beyond_the_vocabulary_trains_when_uncapped():
    """--no-cap-batch keeps the batch asked for: 8,192 targets a step on 400 words, each frequent
    row summed hundreds of times in a step, at the catalogue's hostile settings (15 noise words, lr
    0.1). The rule keeps it finite and learning; the default caps the batch at the vocabulary, so
    it takes dozens of steps an epoch where the uncapped run takes a few."""
    from sg_jax.step import effective_batch_size

    corpus = _small_corpus()
    opts = dict(negative=15, lr=0.1, window=4, epochs=2, dim=16, min_count=1, sample=0.0, batch_size=8192,
                steps_per_call=1)
    assert effective_batch_size(Config(batch_size=8192, cap_batch=False), 400) == 8192
    assert effective_batch_size(Config(batch_size=8192), 400) == 384            # 6 spans of 64
    uncapped = sg_jax.train_model(corpus, cap_batch=False, **opts)
    steps = uncapped.history[-1]["step"]
    assert steps <= 2 * -(-40_000 // 8192)                                        # at most 5 an epoch
    losses = [r["loss"] for r in uncapped.history]
    assert np.all(np.isfinite(uncapped.wv.vectors)) and losses[-1] < losses[0]
    capped = sg_jax.train_model(corpus, **opts)
    assert capped.history[-1]["step"] > 10 * steps
    old = Config().to_dict()
    del old["cap_batch"]
    assert Config.from_dict(old).cap_batch is True


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


def _cbow_batch(rng, B=6, C=4):
    from sg_jax.architectures import Batch

    mask = rng.random((B, C)) < 0.6
    mask[0] = False            # a target with no context: its mean is 0
    mask[1:, :2] = True        # the others with two or more, whose means are shorter than their rows
    return Batch(jnp.asarray(rng.integers(0, V_IN, B), jnp.int32),
                 jnp.asarray(rng.integers(0, V_IN, (B, C)), jnp.int32), jnp.asarray(mask))


def test_cbows_hidden_norm_is_the_longest_mean_of_contexts(x64):
    """W' is scored against each target's mean of its context rows in CBOW (not against the rows
    of W themselves): the partner norm is the longest of those means, by hand; skip-gram has none."""
    from sg_jax.architectures import largest_hidden_norm

    rng = np.random.default_rng(6)
    batch = _cbow_batch(rng)
    w = rng.normal(size=(V_IN, N))
    in_rows = jnp.asarray(w[np.asarray(batch.contexts).reshape(-1)])
    means = []
    for ctx, m in zip(np.asarray(batch.contexts), np.asarray(batch.mask)):
        means.append(w[ctx[m]].mean(axis=0) if m.any() else np.zeros(N))
    want = max(np.linalg.norm(h) for h in means)
    assert float(largest_hidden_norm("cbow", in_rows, batch)) == pytest.approx(want, rel=1e-12)
    for form in ("target", "context"):
        assert largest_hidden_norm(form, in_rows, batch) is None


def _cbow_spans(rng, G=2, L=4, R=2):
    """A span batch of CBOW targets (sg_jax.data.layouts.span): G spans of L targets, contexts up to
    R positions away, the first target without a context."""
    from sg_jax.data.layouts.span import SpanBatch

    mask = rng.random((G, L, 2 * R)) < 0.6
    mask[0, 0] = False
    mask[:, 1:, R - 1:R + 1] = True   # the others with their two nearest neighbours at least
    return SpanBatch(jnp.asarray(rng.integers(0, V_IN, (G, L + 2 * R)), jnp.int32), jnp.asarray(mask))


@pytest.mark.parametrize("layout", ["padded", "packed", "span"])
def test_a_cbow_step_holds_wprime_to_the_hidden_vectors(layout, x64):
    """A CBOW step with a large rate: every row of W' it moves is held to bound / (the longest mean
    of contexts), computed by hand, and the rows over the bound reach it; the rows of W are held
    to bound / (the longest row of W' read), as in skip-gram. The span layout reads each position's
    row once; its means are taken from the padded batch of the same pairs."""
    from sg_jax.resolved import resolve
    from sg_jax.data.layouts import get_layout
    from sg_jax.data.layouts.span import as_batch
    from sg_jax.objectives import get_spec
    from sg_jax.step import init_state, row_step

    rng = np.random.default_rng(7)
    bound = 0.5
    config = Config(arch="cbow", negative=3, window=2, dim=N, dtype="float64", init="normal", window_layout=layout,
                    span_length=4, share_negatives="pool" if layout == "span" else "target")
    obj = resolve(config).objective
    tables = get_spec("ns").tables(np.arange(V_IN, 0, -1) * 10, config)
    tx = optim.with_trust_region(optax.sgd(50.0), bound=bound)
    state = init_state(config, V_IN, tx)
    state = state._replace(params=Params(state.params.w_in,
                                         jnp.asarray(rng.normal(size=state.params.w_out.shape))))
    batches = {"padded": (_cbow_batch(rng, C=4),), "packed": (_cbow_batch(rng, C=4), _cbow_batch(rng, B=5, C=2)),
               "span": (_cbow_spans(rng),)}[layout]
    batch = batches if layout == "packed" else batches[0]
    aux = (tuple(obj.sample(jax.random.PRNGKey(k), b, tables) for k, b in enumerate(batches)) if layout == "packed"
           else obj.sample(jax.random.PRNGKey(0), as_batch(batch) if layout == "span" else batch, tables))
    lay = get_layout(layout)
    new, _ = jax.jit(lambda s, b, a, t: row_step(s, obj, lay, tx, b, a, t))(state, batch, aux, tables)
    w, w_out = (np.asarray(t) for t in state.params)
    padded = [as_batch(b) if layout == "span" else b for b in batches]
    means = [w[c[m]].mean(axis=0) for b in padded for c, m in zip(np.asarray(b.contexts), np.asarray(b.mask))
             if m.any()]
    hidden = max(np.linalg.norm(h) for h in means)
    assert hidden < max(np.linalg.norm(w[np.asarray(b.contexts)[np.asarray(b.mask)]], axis=1).max() for b in padded)
    in_idx, out_idx, _ = get_layout(layout).scoring(obj, batch, aux, tables)
    longest_out = np.linalg.norm(w_out[np.asarray(out_idx)], axis=1).max()
    for table, before, partner, idx in ((1, w_out, hidden, out_idx), (0, w, longest_out, in_idx)):
        moved = np.linalg.norm(np.asarray(new.params[table]) - before, axis=1) * partner
        touched = np.unique(np.asarray(idx))
        assert np.all(moved <= bound * (1 + 1e-9))
        np.testing.assert_allclose(moved[touched].max(), bound, rtol=1e-9)   # the rate puts rows over it
