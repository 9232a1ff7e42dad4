"""The on-device pipeline against the host-side window code, the sparse step against the dense
gradient, and end-to-end training properties."""

import collections
import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sg_jax.architectures import Batch
from sg_jax.data import epoch as pipeline
from sg_jax.data.corpus import EncodedCorpus, load_corpus
from sg_jax.data.layouts import padded
from sg_jax.data.layouts.padded import PADDED
from sg_jax.gradcheck import random_problem
from sg_jax.errors import ConfigError
from sg_jax.huffman import build_huffman
from sg_jax.objectives import get_objective, objective_loss
from sg_jax.objectives.negative import noise_table
from sg_jax.toy import FIVE_GROUPS
from sg_jax.step import TrainState, make_optimizer, row_step
from sg_jax.train import Config, train
from sg_jax.windows import keep_probability, skipgram_pairs


def _corpus(lengths, V=30, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, sum(lengths)).astype(np.int32)
    return EncodedCorpus(ids, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))


def _epoch_pairs(corpus, window, batch_size=7, dynamic=False, shuffle=False, key=0):
    dev = pipeline.to_device(corpus.ids, corpus.offsets, 0, corpus.n_tokens)
    data = pipeline.prepare_epoch(jax.random.PRNGKey(key), dev, jnp.ones(64), shuffle)
    pairs = []
    for s in range(-(-int(data.n) // batch_size)):
        b = padded.make_batch(data, s, jax.random.PRNGKey(s), batch_size=batch_size, window=window, dynamic=dynamic)
        t, c, m = map(np.asarray, b)
        pairs += [(t[i], c[i, j]) for i, j in zip(*np.nonzero(m))]
    return pairs


@pytest.mark.parametrize("window", [1, 2, 5])
def test_device_pipeline_gives_exactly_the_host_pairs(window):
    corpus = _corpus([9, 1, 4, 12, 2])
    want = collections.Counter(map(tuple, skipgram_pairs(corpus, window).tolist()))
    assert collections.Counter(_epoch_pairs(corpus, window)) == want
    assert collections.Counter(_epoch_pairs(corpus, window, shuffle=True)) == want


def test_dynamic_window_pairs_are_a_subset_with_the_expected_count():
    corpus = _corpus([400] * 5, V=10_000)
    window = 4
    full = collections.Counter(map(tuple, skipgram_pairs(corpus, window).tolist()))
    got = collections.Counter(_epoch_pairs(corpus, window, batch_size=256, dynamic=True))
    assert not got - full
    # E[pairs per target] = 2 * E[b] = window + 1 (away from sentence ends)
    expected = corpus.n_tokens * (window + 1)
    assert abs(sum(got.values()) - expected) / expected < 0.05


def test_subsampling_keeps_words_at_the_word2vec_rate():
    ids = np.repeat(np.arange(4, dtype=np.int32), [60_000, 20_000, 5_000, 1_000])
    corpus = EncodedCorpus(ids, np.array([0, ids.size]))
    counts = np.bincount(ids)
    keep = keep_probability(counts, 1e-2)
    dev = pipeline.to_device(corpus.ids, corpus.offsets, 0, ids.size)
    data = pipeline.prepare_epoch(jax.random.PRNGKey(3), dev, jnp.asarray(keep, jnp.float32), False)
    kept = np.bincount(np.asarray(data.ids)[: int(data.n)], minlength=4)
    np.testing.assert_allclose(kept / counts, keep, atol=0.01)


def test_chunks_are_whole_sentences():
    offsets = np.array([0, 3, 10, 11, 30, 31])
    bounds = pipeline.chunk_bounds(offsets, 8)
    assert bounds[0][0] == 0 and bounds[-1][1] == 31
    assert all(a == b for (_, a), (b, _) in zip(bounds, bounds[1:]))
    assert all(s in offsets and e in offsets for s, e in bounds)
    # every chunk holds at most 8 tokens unless it is one sentence longer than that (11..30)
    assert all(e - s <= 8 or (s, e) == (11, 30) for s, e in bounds)
    assert bounds == [(0, 3), (3, 11), (11, 30), (30, 31)]  # greedy: as many whole sentences as fit


@pytest.mark.parametrize("arch,sg_form", [("sg", "target"), ("sg", "context"), ("cbow", "target")])
@pytest.mark.parametrize("objective", ["softmax", "ns", "hs"])
def test_sparse_row_step_equals_dense_sgd_step(arch, sg_form, objective, x64):
    params, batch, counts = random_problem(13, 4, 3, 4, objective=objective, seed=7)
    tables = {"ns": lambda: jnp.asarray(noise_table(counts, size=5000)),
              "hs": lambda: jax.tree.map(jnp.asarray, build_huffman(counts)),
              "softmax": lambda: None}[objective]()
    obj = get_objective(arch, objective, negative=2, share="none", sg_form=sg_form)
    aux = obj.sample(jax.random.PRNGKey(1), batch, tables)
    config = Config(arch=arch, objective=objective, lr=0.3, min_lr_ratio=1.0, dtype="float64", trust_region=0.0)
    opt = make_optimizer(config, 10)
    state = TrainState(params, opt.init((params.w_in[:1], params.w_out[:1])), jnp.zeros((), jnp.int32),
                       jax.random.PRNGKey(0))
    new, loss = jax.jit(lambda s: row_step(s, obj, PADDED, opt, batch, aux, tables))(state)
    grads = jax.grad(objective_loss)(params, obj, batch, aux, tables)
    lr = float(np.float32(0.3))  # optax's schedule evaluates the rate in float32
    np.testing.assert_allclose(new.params.w_in, params.w_in - lr * grads.w_in, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(new.params.w_out, params.w_out - lr * grads.w_out, rtol=1e-12, atol=1e-13)
    assert float(loss) == pytest.approx(float(objective_loss(params, obj, batch, aux, tables)), rel=1e-12)


def _train_groups(**kw):
    vocab, enc, _ = load_corpus("toy:groups", min_count=1)
    config = Config(**{"dim": 16, "window": 3, "epochs": 8, "sample": 0.0, "batch_size": 64, "seed": 0, **kw})
    return vocab, train(config, vocab.words, vocab.counts, enc.ids, enc.offsets)


def _group_similarity(vocab, vectors):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    within, across = [], []
    items = [(g, w) for g, ws in FIVE_GROUPS.items() for w in ws if w in vocab]
    for i, (g1, w1) in enumerate(items):
        for g2, w2 in items[i + 1:]:
            s = float(unit[vocab.index(w1)] @ unit[vocab.index(w2)])
            (within if g1 == g2 else across).append(s)
    return np.mean(within), np.mean(across)


@pytest.mark.parametrize("objective,arch,extra", [
    ("ns", "sg", {}), ("hs", "sg", {}), ("softmax", "sg", {}), ("ns", "cbow", {"cbow_update": "mean"}),
    # word2vec's CBOW update gives every context row C times the mean's step: on this toy corpus it
    # separates the groups at gensim's rate (0.025); at word2vec's CBOW rate (0.05) the margin is 0.30
    ("ns", "cbow", {"cbow_update": "sum", "lr": 0.025})])
def test_five_semantic_groups_are_closer_within_than_across(objective, arch, extra):
    vocab, result = _train_groups(objective=objective, arch=arch, **extra)
    within, across = _group_similarity(vocab, result.vectors())
    assert within > across + 0.3, (within, across)


def test_softmax_training_falls_below_the_uniform_baseline():
    vocab, result = _train_groups(objective="softmax", epochs=4)
    first, last = result.history[0]["loss"], result.final_loss
    assert last < first
    assert last < 0.8 * math.log(len(vocab))  # per-pair loss vs log V (W' = 0 at the start)


def test_same_seed_same_embeddings_other_seed_other_embeddings():
    _, a = _train_groups(epochs=1)
    _, b = _train_groups(epochs=1)
    _, c = _train_groups(epochs=1, seed=1)
    assert np.array_equal(a.vectors(), b.vectors())
    assert not np.array_equal(a.vectors(), c.vectors())


def test_splitting_a_corpus_into_chunks_still_visits_every_word():
    vocab, enc, _ = load_corpus("toy:groups", min_count=1)
    config = Config(dim=8, epochs=1, sample=0.0, batch_size=32, chunk_tokens=500)
    result = train(config, vocab.words, vocab.counts, enc.ids, enc.offsets)
    assert result.words_done == enc.n_tokens
    assert len(pipeline.chunk_bounds(enc.offsets, 500)) > 1


@pytest.mark.parametrize("layout,builder", [("padded", "make_batch"), ("span", "make_span_batch")])
def test_steps_compile_once_across_calls(layout, builder, monkeypatch):
    from sg_jax.data.layouts import span

    vocab, enc, _ = load_corpus("toy:groups", min_count=1)
    config = Config(dim=8, epochs=2, sample=0.0, batch_size=16, steps_per_call=4, window_layout=layout)
    traces = []
    module = span if layout == "span" else padded
    real = getattr(module, builder)

    def counting(*a, **k):
        traces.append(1)
        return real(*a, **k)

    monkeypatch.setattr(module, builder, counting)
    result = train(config, vocab.words, vocab.counts, enc.ids, enc.offsets)
    assert len(result.history) > 10
    assert len(traces) == 1


@pytest.mark.parametrize("field,value,message", [
    ("window", 0, "window must be >= 1, got 0"), ("dim", -3, "dim must be >= 1, got -3"),
    ("negative", 0, "negative must be >= 1, got 0"), ("sample", -1e-3, "sample must be >= 0"),
    ("objective", "bogus", "objective must be one of"), ("lr", float("nan"), "lr must be a positive number"),
])
def test_bad_configs_are_refused(field, value, message):
    with pytest.raises(ConfigError, match=message):
        Config(**{field: value}).validate()


@pytest.mark.parametrize("power", [0.75, 0.0, -0.5])
def test_the_noise_table_draws_each_word_in_proportion_to_its_count_to_the_power(power):
    """word2vec's table for any noise_power, negative ones included (gensim's negative
    ns_exponent: rare words drawn more often): each word's share of the slots is
    count^power / sum count^power to within a slot; NCE's log(k q_w) uses the same q."""
    from sg_jax.config import Config
    from sg_jax.objectives import nce

    assert Config(noise_power=power).validate().noise_power == power
    counts = np.array([1000, 100, 10, 1])
    size = 100_000
    q = counts.astype(float) ** power / np.sum(counts.astype(float) ** power)
    share = np.bincount(noise_table(counts, power, size=size), minlength=counts.size) / size
    np.testing.assert_allclose(share, q, atol=2 / size)
    _, log_kq = nce.tables(counts, types.SimpleNamespace(noise_power=power, negative=5))
    np.testing.assert_allclose(np.asarray(log_kq), np.log(5 * q), rtol=1e-6)
    if power < 0:   # rare words first; a word never counted is never drawn (not an infinite weight)
        assert share[3] > share[2] > share[1] > share[0]
        share = np.bincount(noise_table([*counts, 0], power, size=size), minlength=5) / size
        np.testing.assert_allclose(share, [*q, 0.0], atol=2 / size)


def test_vocabulary_too_small_for_negative_sampling():
    with pytest.raises(ConfigError, match="at least 2 words"):
        noise_table([5])
    with pytest.raises(ConfigError, match="at least 2 words"):
        build_huffman([5])


@pytest.mark.parametrize("optimizer,lr", [("adagrad", 0.1), ("adam", 0.01)])
def test_stateful_optimizers_train_end_to_end(optimizer, lr):
    """Adagrad and Adam on the row-sparse step: the loss falls, and their state has table rows."""
    import sg_jax

    model = sg_jax.train_model("toy:groups", dim=8, epochs=3, sample=0.0, min_count=1, optimizer=optimizer, lr=lr)
    losses = [r["loss"] for r in model.history]
    assert losses[-1] < 0.7 * losses[0]
    leaves = jax.tree.leaves(model.progress.state.opt_state)
    assert any(getattr(x, "shape", ())[:1] == (len(model.vocab),) for x in leaves)


def test_pair_batches_hold_the_same_pairs_as_target_groups():
    """as_pairs turns B targets with C context slots into B*C single pairs, masks carried over."""
    targets = jnp.array([4, 7])
    contexts = jnp.array([[1, 2, 3], [5, 6, 0]])
    mask = jnp.array([[True, False, True], [True, True, False]])
    pairs = padded.as_pairs(Batch(targets, contexts, mask))
    assert pairs.contexts.shape == (6, 1) and pairs.mask.shape == (6, 1)
    got = {(int(t), int(c)) for t, c, m in zip(pairs.targets, pairs.contexts[:, 0], pairs.mask[:, 0]) if m}
    assert got == {(4, 1), (4, 3), (7, 5), (7, 6)}


def test_huffman_ties_are_broken_as_word2vec_breaks_them():
    """Worked by hand from word2vec's CreateBinaryTree (two queues; on a tie between a leaf and
    an inner node the inner node is taken; the second node taken gets code 1)."""
    tree = build_huffman([1, 1, 1, 1])
    codes = ["".join(str(int(b)) for b, m in zip(c, k) if m) for c, k in zip(tree.codes, tree.mask)]
    assert codes == ["11", "10", "01", "00"]
    assert tree.points[:, 0].tolist() == [2, 2, 2, 2]          # the root is inner node V - 2
    assert tree.points[:, 1].tolist() == [1, 1, 0, 0]          # words 2, 3 merge first (node 0)
    tree = build_huffman([5, 3, 2, 1])
    codes = ["".join(str(int(b)) for b, m in zip(c, k) if m) for c, k in zip(tree.codes, tree.mask)]
    assert codes == ["0", "11", "101", "100"]   # word 1 (3) ties with node 0 (2 + 1): the node goes first


def test_huffman_expected_code_length_is_optimal():
    """Any tie-breaking gives an optimal code: the expected length equals that of a heap-built
    Huffman code (computed here independently by summing merge costs)."""
    import heapq

    counts = np.random.default_rng(0).integers(1, 50, 300)
    tree = build_huffman(counts)
    lengths = tree.mask.sum(axis=1)
    heap = list(counts.astype(int))
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        cost += a + b
        heapq.heappush(heap, a + b)
    assert int((lengths * counts).sum()) == cost


@pytest.mark.parametrize("changes", [{}, {"arch": "cbow", "chunk_tokens": 300, "steps_per_call": 4},
                                     {"objective": "hs", "window_layout": "padded"}])
def test_the_step_compiled_ahead_trains_the_vectors_the_jitted_step_trains(changes, monkeypatch):
    """On one device the step is compiled on a second thread from its arguments' shapes while the
    tables are initialised (sg_jax.parallel.ahead): the run's vectors and losses are the jitted
    call's, byte for byte, across chunks (padded to one shape), epochs and a resumed state, and the
    calls ran the program compiled ahead, not a second compilation."""
    import dataclasses

    import sg_jax.parallel.ahead as ahead

    made = []
    real = ahead.StepAhead

    class Recorded(real):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(ahead, "StepAhead", Recorded)
    from sg_jax.synthetic import zipf_corpus

    v, e = zipf_corpus(2_000, 80, seed=5)
    config = dataclasses.replace(Config(epochs=2, min_count=1, dim=8, batch_size=64, steps_per_call=8), **changes)
    runs = [train(config, v.words, v.counts, e.ids, e.offsets, compile_ahead=ahead_on) for ahead_on in (False, True)]
    assert len(made) == 1 and made[0]._compiled is not None and made[0]._error is None
    assert np.array_equal(runs[0].vectors(), runs[1].vectors())
    assert [r["loss"] for r in runs[0].history] == [r["loss"] for r in runs[1].history]
    half = train(config, v.words, v.counts, e.ids, e.offsets, until_epoch=1)
    resumed = train(config, v.words, v.counts, e.ids, e.offsets, state=half.state, position=half.position)
    assert made[-1]._compiled is not None and np.array_equal(resumed.vectors(), runs[0].vectors())
    # by default only a corpus large enough to gain from it (ahead.worth_it) is compiled ahead
    before = len(made)
    train(config, v.words, v.counts, e.ids, e.offsets)
    assert len(made) == before and not ahead.worth_it(len(e.ids)) and ahead.worth_it(1 << 24)
