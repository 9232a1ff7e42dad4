"""The span layout (window_layout="span") and the shared noise pool (share_negatives="pool").

The span layout reads each position's row once and scores each position once against the pool; it
must be the padded layout's loss over the same pairs and noise words. Checked against the padded
batch builder (same targets, same window draws), against a numpy enumeration of an epoch's pairs,
against the padded layout's loss and gradients in float64, and end to end (determinism, resume,
several devices, runs trained together).
"""

from __future__ import annotations

import collections
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sg_jax import cli
from sg_jax.data import epoch as pipeline
from sg_jax.data.layouts import span as span_layout
from sg_jax.data.layouts.padded import PADDED, make_batch
from sg_jax.config import Config
from sg_jax.objectives import get_objective, get_spec
from sg_jax.resolved import resolve
from sg_jax.step import init_state, make_optimizer, row_step
from sg_jax.train import train

LENGTHS = [9, 1, 4, 12, 2, 7, 30, 3, 17, 5]
V = 30


def _device_corpus(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, sum(LENGTHS)).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)]).astype(np.int64)
    return ids, offsets, pipeline.to_device(ids, offsets, 0, len(ids))


@pytest.mark.parametrize("window,dynamic", [(1, True), (3, True), (4, False)])
def test_one_whole_span_is_the_padded_batch_of_the_same_targets(window, dynamic):
    """Unshuffled, with one span per step, step s holds the targets of the padded layout's batch s,
    with the same window draws (the same key): the same targets, contexts and mask."""
    _, _, dev = _device_corpus()
    keep = jnp.full(V, 0.9)
    B = 16
    by_span = pipeline.prepare_epoch(jax.random.PRNGKey(4), dev, keep, False, unit=B)
    by_token = pipeline.prepare_epoch(jax.random.PRNGKey(4), dev, keep, False)
    assert int(by_span.n) == int(by_token.n)
    for s in range(-(-int(by_span.n) // B)):
        key = jax.random.PRNGKey(10 + s)
        got = span_layout.as_batch(span_layout.make_span_batch(by_span, s, key, batch_size=B, length=B, window=window,
                                                               dynamic=dynamic))
        want = make_batch(by_token, s, key, batch_size=B, window=window, dynamic=dynamic)
        np.testing.assert_array_equal(np.asarray(got.mask), np.asarray(want.mask))
        np.testing.assert_array_equal(np.asarray(got.targets)[np.asarray(want.mask).any(1)],
                                      np.asarray(want.targets)[np.asarray(want.mask).any(1)])
        m = np.asarray(want.mask)
        np.testing.assert_array_equal(np.asarray(got.contexts)[m], np.asarray(want.contexts)[m])


@pytest.mark.parametrize("shuffle", [False, True])
def test_an_epoch_of_spans_holds_every_pair_once(shuffle):
    """Over an epoch (fixed window, several spans per step, the last ones partial), the spans hold
    each in-sentence (target, context) pair of the kept tokens exactly once: compared with a numpy
    enumeration."""
    _, _, dev = _device_corpus(1)
    keep = jnp.full(V, 0.8)
    B, L, window = 12, 4, 2
    data = pipeline.prepare_epoch(jax.random.PRNGKey(2), dev, keep, shuffle, unit=L)
    ids, sent, order, n = (np.asarray(x) for x in data)
    spans = -(-int(n) // L)
    assert sorted(order[:spans].tolist()) == list(range(spans))
    assert (order[:spans].tolist() == list(range(spans))) != shuffle
    want = collections.Counter((ids[p], ids[q]) for p in range(n) for q in range(p - window, p + window + 1)
                               if q != p and 0 <= q < n and sent[q] == sent[p])
    got = collections.Counter()
    for s in range(-(-int(n) // B)):
        b = span_layout.as_batch(span_layout.make_span_batch(data, s, jax.random.PRNGKey(s), batch_size=B, length=L,
                                                             window=window, dynamic=False))
        t, c, m = map(np.asarray, b)
        got.update((t[i], c[i, j]) for i, j in zip(*np.nonzero(m)))
    assert got == want and sum(want.values()) > 100


def test_steps_of_span_layout_come_in_whole_spans():
    from sg_jax.step import effective_batch_size

    config = Config(window_layout="span", share_negatives="pool", span_length=48, batch_size=1000)
    assert effective_batch_size(config, 10_000) == 960   # 20 spans of 48
    assert effective_batch_size(dataclasses.replace(config, span_length=2000), 10_000) == 1000  # one span


SHARES = [("pool", 1, 5), ("pool", 7, 5), ("pool", 7, 32), ("target", 0, 32)]
# skip-gram in every case; CBOW under both backward rules, with ns on pools of 7 (one block and two)
# and noise per target, and with nce on two blocks (one compile per case: the suite's time)
CASES = ([("sg", "mean", objective, *share) for objective in ("ns", "nce") for share in SHARES]
         + [("cbow", rule, "ns", *share) for rule in ("mean", "sum") for share in SHARES[1:]]
         + [("cbow", rule, "nce", *SHARES[2]) for rule in ("mean", "sum")])


@pytest.mark.parametrize("arch,cbow_update,objective,share,pool,length", CASES)
def test_the_span_loss_is_the_padded_loss_over_the_same_pairs(objective, share, pool, length, arch, cbow_update,
                                                              x64):
    """Loss and gradients of the span step (skip-gram: pair scores block by block, each position
    scored once against its span's pool, weighted by its pairs; CBOW: each target's mean of its
    contexts as a band product per block) equal the generic loss over the padded batch of the same
    pairs, in float64, with the dynamic window, sentence ends and the epoch's end in the spans;
    spans of 32 are scored in two blocks of 16. CBOW's gradients hold under both backward rules
    (word2vec's sum and the exact mean)."""
    ids, _, dev = _device_corpus(2)
    data = pipeline.prepare_epoch(jax.random.PRNGKey(3), dev, jnp.full(V, 0.9), True, unit=length)
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 100, V)
    obj = get_objective(arch, objective, sg_form="context", negative=3, share_negatives=share, noise_pool=pool or 1,
                        pool_group=length, cbow_update=cbow_update)
    tables = get_spec(objective).tables(counts, Config(objective=objective, negative=3))
    w_in, w_out = (jnp.asarray(rng.normal(size=(V, 4))) for _ in range(2))
    B = 3 * length if length < 16 else 2 * length
    last = -(-int(data.n) // B) - 1
    for step in (0, last):
        span = span_layout.make_span_batch(data, step, jax.random.PRNGKey(step), batch_size=B, length=length,
                                           window=3, dynamic=True)
        batch = span_layout.as_batch(span)
        negs = obj.sample(jax.random.PRNGKey(9), batch, tables)

        def padded(w_in, w_out):
            i, o = obj.indices(batch, negs, tables)
            return obj.loss_rows(w_in[i], w_out[o], batch, negs, tables)

        def spans(w_in, w_out):
            i, o = obj.scorer(span_layout.SpanBatch)[0](span, negs, tables)
            return obj.scorer(span_layout.SpanBatch)[1](w_in[i], w_out[o], span, negs, tables)

        want, want_grads = jax.jit(jax.value_and_grad(padded, (0, 1)))(w_in, w_out)   # one compile: faster
        got, got_grads = jax.jit(jax.value_and_grad(spans, (0, 1)))(w_in, w_out)      # than op by op
        assert float(want) > 0
        np.testing.assert_allclose(float(got), float(want), rtol=1e-13)
        for g, w in zip(got_grads, want_grads):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=0, atol=1e-12)
    assert int(batch.mask.sum()) < batch.mask.size  # the last step is partial: its padding took part


def test_a_pooled_noise_term_weighs_k_over_the_pool(x64):
    """share_negatives pool with a pool of K is the 'batch' sharing of the same K words with each
    noise term scaled by k/K: the noise part of both losses (the loss minus its positive part,
    computed here directly), compared."""
    from sg_jax import gradcheck

    params, batch, counts = gradcheck.random_problem(13, 4, 4, 6, objective="ns", seed=1)
    pool = get_objective("sg", "ns", sg_form="context", negative=2, share_negatives="pool", noise_pool=8)
    full = get_objective("sg", "ns", sg_form="context", negative=8, share_negatives="batch")
    tables = get_spec("ns").tables(counts)
    negs = pool.sample(jax.random.PRNGKey(0), batch, tables)
    assert negs.shape == (1, 8)  # one pool: 6 targets in groups of 64
    i, o = pool.indices(batch, negs, tables)
    scores = jnp.einsum("bcn,bn->bc", params.w_in[batch.contexts], params.w_out[batch.targets])
    positive = jnp.sum(batch.mask * jax.nn.softplus(-scores))
    noise_pool = pool.loss_rows(params.w_in[i], params.w_out[o], batch, negs, tables) - positive
    noise_full = full.loss_rows(params.w_in[i], params.w_out[o], batch, negs[0], tables) - positive
    assert float(noise_full) > 0
    np.testing.assert_allclose(float(noise_pool), 2 / 8 * float(noise_full), rtol=1e-12)


@pytest.mark.parametrize("share,pool,group", [("none", 0, 0), ("target", 0, 0), ("pool", 8, 2), ("pool", 32, 64)])
def test_every_noise_sharing_estimates_the_expected_noise_loss(share, pool, group, x64):
    """Averaged over many draws, the loss with noise words drawn per pair, per target or in pools
    (groups of `group` targets sharing `pool` words, each weighted k/K) is the exact expected
    loss: for each pair (context c, target t), softplus(-s_ct) + k sum_n q_n [n != t]
    softplus(s_cn), with q the unigram table's frequencies. Within 5 standard errors, which are
    small enough that a noise part off by 3% would fail."""
    from sg_jax import gradcheck

    k, draws = 3, 20_000
    params, batch, counts = gradcheck.random_problem(13, 4, 4, 6, objective="ns", seed=2)
    obj = get_objective("sg", "ns", sg_form="context", negative=k, share_negatives=share, noise_pool=pool or 1,
                        pool_group=group or 64)
    tables = get_spec("ns").tables(counts)
    w_in, w_out = (np.asarray(p) for p in params)
    t, c, m = (np.asarray(x) for x in batch)
    q = np.bincount(np.asarray(tables), minlength=len(counts)) / tables.shape[0]
    s_pos = np.einsum("bcn,bn->bc", w_in[c], w_out[t])
    s_noise = np.einsum("bcn,vn->bcv", w_in[c], w_out)                     # [B, C, V]: every noise word
    other = np.arange(len(counts))[None, :] != t[:, None]                  # [B, V]: word2vec skips n == t
    positive = np.sum(m * np.logaddexp(0, -s_pos))
    noise = k * np.sum(m[:, :, None] * other[:, None, :] * q * np.logaddexp(0, s_noise))

    def loss(key):
        negs = obj.sample(key, batch, tables)
        i, o = obj.indices(batch, negs, tables)
        return obj.loss_rows(params.w_in[i], params.w_out[o], batch, negs, tables)

    losses = np.asarray(jax.jit(jax.vmap(loss))(jax.random.split(jax.random.PRNGKey(5), draws)))
    error = losses.std() / np.sqrt(draws)
    assert error < 0.006 * noise
    assert abs(losses.mean() - (positive + noise)) < 5 * error, (losses.mean(), positive + noise, error)


def test_a_span_step_equals_the_padded_step_on_the_same_pairs(x64):
    """One optimizer step (gather, gradient, Adagrad, scatter) over a span equals the step over its
    padded batch: the span's rows are read and written once per position, with the same result."""
    config = Config(dim=5, window=2, batch_size=10, min_count=1, dtype="float64", optimizer="adagrad",
                    share_negatives="pool", noise_pool=6, window_layout="span", span_length=5)
    ids, _, dev = _device_corpus(3)
    data = pipeline.prepare_epoch(jax.random.PRNGKey(1), dev, jnp.ones(V), True, unit=5)
    counts = np.bincount(ids, minlength=V) + 1
    obj = resolve(config).objective   # the pool_group resolved to the span's length
    tables = get_spec("ns").tables(counts, config)
    opt = make_optimizer(config, 100)
    state = init_state(dataclasses.replace(config, init="normal"), V, opt)
    span = span_layout.make_span_batch(data, 1, jax.random.PRNGKey(7), batch_size=10, length=5, window=2,
                                       dynamic=True)
    batch = span_layout.as_batch(span)
    negs = obj.sample(jax.random.PRNGKey(8), batch, tables)
    by_span, loss_span = jax.jit(lambda st, b: row_step(st, obj, span_layout.SPAN, opt, b, negs, tables))(state, span)
    by_batch, loss_batch = jax.jit(lambda st, b: row_step(st, obj, PADDED, opt, b, negs, tables))(state, batch)
    np.testing.assert_allclose(float(loss_span), float(loss_batch), rtol=1e-12)
    for a, b in zip(jax.tree.leaves(by_span), jax.tree.leaves(by_batch)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-12)
    assert not np.allclose(np.asarray(by_span.params.w_in), np.asarray(state.params.w_in))


@pytest.fixture(scope="module")
def corpus():
    from sg_jax.synthetic import zipf_corpus

    return zipf_corpus(8_000, 200, seed=3)


SPAN = Config(window_layout="span", share_negatives="pool", noise_pool=16, span_length=8, epochs=2, batch_size=32,
              min_count=1, dim=8, steps_per_call=16)


@pytest.mark.parametrize("arch", ["sg", "cbow"])
def test_span_training_learns_and_is_deterministic(corpus, arch):
    """Skip-gram and CBOW on spans: the same vectors twice, a falling loss, another seed's other
    vectors, and what an epoch sums over (pairs; CBOW: targets with a context) as many as the padded
    layout's, whatever their order."""
    v, e = corpus
    config = dataclasses.replace(SPAN, arch=arch)
    a, b = (train(config, v.words, v.counts, e.ids, e.offsets) for _ in range(2))
    assert np.array_equal(a.vectors(), b.vectors())
    assert a.history[-1]["loss"] < 0.9 * a.history[0]["loss"]
    padded = train(dataclasses.replace(config, window_layout="padded"), v.words, v.counts, e.ids, e.offsets)
    total = sum(r["examples"] for r in a.history)
    assert total == pytest.approx(sum(r["examples"] for r in padded.history), rel=0.03)
    # a CBOW example is a target (about one per kept token), a skip-gram one a pair (several)
    assert (total < 1.01 * config.epochs * len(e.ids)) == (arch == "cbow")
    other = train(dataclasses.replace(config, seed=1), v.words, v.counts, e.ids, e.offsets)
    assert not np.array_equal(a.vectors(), other.vectors())


def test_cbow_on_spans_counts_its_targets_and_the_padded_batchs(x64):
    """A CBOW span step sums over the targets with a context, as the padded batch of the same pairs
    does (architectures.n_examples); skip-gram over the pairs."""
    from sg_jax.architectures import n_examples

    _, _, dev = _device_corpus(4)
    data = pipeline.prepare_epoch(jax.random.PRNGKey(2), dev, jnp.full(V, 0.8), True, unit=8)
    span = span_layout.make_span_batch(data, 0, jax.random.PRNGKey(5), batch_size=16, length=8, window=3, dynamic=True)
    batch = span_layout.as_batch(span)
    for arch in ("sg", "cbow"):
        obj = get_objective(arch, "ns", sg_form="context", share="pool", pool_group=8)
        assert int(span_layout.SPAN.examples(obj, span)) == int(n_examples(obj.form, batch))
    assert int(n_examples("cbow", batch)) < int(n_examples("context", batch))


@pytest.mark.parametrize("flags, clash", [(["--share-negatives", "none"], "share_negatives=none"),
                                          (["--share-negatives", "batch"], "share_negatives=batch"),
                                          (["--objective", "hs"], "objective=hs"),
                                          (["--sg-form", "target"], "sg_form=target"),
                                          (["--pairs"], "pairs=True")])
def test_span_with_a_clashing_option_is_a_one_line_error(flags, clash, capsys, tmp_path):
    args = ["train", "--corpus", "toy:groups", "--out", str(tmp_path / "run"), "--window-layout", "span", "--quiet"]
    if "--share-negatives" not in flags:
        args += ["--share-negatives", "pool"]
    assert cli.main(args + flags) == 2
    assert not (tmp_path / "run").exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and clash in err and "window_layout=span" in err
    # sharded tables train spans through the same row step (tests/test_sharded.py compares them)
    assert Config(window_layout="auto", shard_tables=True, devices=2).validate().layout == "span"


def test_several_devices_split_the_step_batch():
    """With split_batch (the default) N devices take batch_size / N targets each, so the step's
    batch is the one-device step's; spans shrink when a device's share is shorter than a span.
    A config saved before the option read each device's batch as batch_size."""
    from sg_jax.step import effective_batch_size

    config = Config(devices=4)
    assert effective_batch_size(config, 10_000, devices=1) == 1024
    assert effective_batch_size(config, 10_000, devices=4) == 256
    assert effective_batch_size(config, 10_000, devices=32) == 32   # one span of 32 per device
    assert effective_batch_size(dataclasses.replace(config, split_batch=False), 10_000, devices=4) == 1024
    assert effective_batch_size(Config(window_layout="padded", batch_size=1000), 10_000, devices=3) == 333
    old = {k: v for k, v in config.to_dict().items() if k != "split_batch"}
    assert Config.from_dict(old).split_batch is False
