"""A row's occurrences in a step, the count per-row rules read (`--dup-cap`): the same quantity in
every window layout, the padded layout's gathers with a nonzero gradient for the step's
predictions.

The span layout reads each position's row of W once for every pair that uses it as a context; its
`multiplicity` (`span.position_uses`) says how many gathers each read stands for. Checked against
a numpy enumeration of the mask, against the padded layout's counts over the same pairs and noise
draws (`span.as_batch`), and through a capped SGD step in both layouts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import sg_jax.optim as optim
from sg_jax.config import Config
from sg_jax.data import epoch as pipeline
from sg_jax.data.epoch import window_offsets
from sg_jax.data.layouts import span as span_layout
from sg_jax.data.layouts.padded import PADDED
from sg_jax.model import Params
from sg_jax.objectives import get_spec
from sg_jax.resolved import resolve
from sg_jax.objectives.base import objective_loss
from sg_jax.optim.rows import slot_counts
from sg_jax.step import init_state, row_step

LENGTHS = [9, 1, 4, 12, 2, 7, 30, 3, 17, 5]   # sentence ends inside the spans
V = 30
B, L = 12, 4   # three spans of four targets per step


def _epoch(seed: int):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, sum(LENGTHS)).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)]).astype(np.int64)
    dev = pipeline.to_device(ids, offsets, 0, len(ids))
    return ids, pipeline.prepare_epoch(jax.random.PRNGKey(seed), dev, jnp.full(V, 0.9), True, unit=L)


def _spans(data, window: int):
    """Every step's span batch of the epoch (the last one past its end: padding targets)."""
    steps = -(-int(data.n) // B) + 1
    make = jax.jit(lambda s: span_layout.make_span_batch(data, s, jax.random.PRNGKey(20 + s), batch_size=B, length=L,
                                                         window=window, dynamic=True))
    return [make(s) for s in range(steps)]


@pytest.mark.parametrize("window", [1, 3])
def test_position_uses_counts_the_pairs_with_each_context_position(window):
    """position_uses equals a numpy enumeration of the mask's pairs by context position, over an
    epoch whose spans hold sentence ends and padding."""
    _, data = _epoch(1)
    spans = _spans(data, window)
    R = window
    offs = window_offsets(R)
    for span in spans:
        mask = np.asarray(span.mask)
        G = mask.shape[0]
        want = np.zeros((G, L + 2 * R), np.int64)
        for g, l, c in zip(*np.nonzero(mask)):
            want[g, l + R + offs[c]] += 1
        np.testing.assert_array_equal(np.asarray(span_layout.position_uses(span)), want)
    masks = np.concatenate([np.asarray(s.mask) for s in spans])
    assert not masks.all() and masks.any() and not masks[-G:].any()   # windows, sentence ends, padding


def _counter(layout, obj, tables):
    """counts(batch, aux, params) -> (in_idx, out_idx, in counts, out counts) per gathered slot,
    as row_step reads them: the slots' gradient rows and the layout's multiplicity."""
    @jax.jit
    def counts(batch, aux, params):
        in_idx, out_idx, loss_of = layout.scoring(obj, batch, aux, tables)
        g_in, g_out = jax.grad(loss_of)((params.w_in[in_idx], params.w_out[out_idx]))
        m_in, m_out = layout.multiplicity(obj, batch)
        return in_idx, out_idx, slot_counts(g_in, m_in), slot_counts(g_out, m_out)

    return lambda *args: tuple(np.asarray(x) for x in counts(*args))


def _setup(objective: str, share: str, window: int, seed: int):
    config = Config(dim=4, window=window, min_count=1, dtype="float64", objective=objective, share_negatives=share,
                    noise_pool=5, negative=3, span_length=L, window_layout="span", init="normal")
    ids, data = _epoch(seed)
    counts = np.bincount(ids, minlength=V) + 1
    obj = resolve(config).objective   # pool_group: the span's length
    tables = get_spec(objective).tables(counts, config)
    state = init_state(config, V, optax.sgd(0.1))
    params = state.params
    params = Params(params.w_in, params.w_out + 0.5 * jax.random.normal(jax.random.PRNGKey(seed), params.w_out.shape))
    return config, data, obj, tables, state._replace(params=params)


@pytest.mark.parametrize("objective,share", [("ns", "pool"), ("ns", "target"), ("nce", "pool")])
def test_the_span_and_padded_layouts_count_the_same_occurrences(x64, objective, share):
    """For the same predictions (a span batch and its padded batch, the same noise draws), the
    per-word occurrences of W and W' rows (the gradient rows' counts summed by word) agree, while
    the span layout reads W fewer times than the padded layout counts: without its multiplicity
    the counts would differ."""
    window = 2
    _, data, obj, tables, state = _setup(objective, share, window, 3)
    by_span, by_batch = _counter(span_layout.SPAN, obj, tables), _counter(PADDED, obj, tables)
    fewer = 0
    for s, span in enumerate(_spans(data, window)):
        batch = span_layout.as_batch(span)
        aux = obj.sample(jax.random.PRNGKey(100 + s), batch, tables)
        si, so, sci, sco = by_span(span, aux, state.params)
        pi, po, pci, pco = by_batch(batch, aux, state.params)
        for a, ca, b, cb in ((si, sci, pi, pci), (so, sco, po, pco)):
            np.testing.assert_array_equal(np.bincount(a, ca, minlength=V), np.bincount(b, cb, minlength=V))
        assert np.bincount(pi, pci, minlength=V).sum() == int(np.asarray(span.mask).sum())   # one per pair
        read = np.bincount(si, (sci > 0).astype(int), minlength=V)   # the span's reads with a gradient
        fewer += int(np.sum(read < np.bincount(pi, pci, minlength=V)))
    assert fewer > 0


@pytest.mark.parametrize("sum_duplicates", [None, True])
def test_a_capped_step_moves_each_row_by_its_mean_gradient_in_both_layouts(x64, sum_duplicates):
    """cap_duplicates(1) then SGD: each row moves by lr times its summed gradient over its
    occurrences (the padded layout's count), in the span layout as in the padded one, whether the
    row gradients are scattered as they come or summed first."""
    lr = 0.1
    window = 2
    _, data, obj, tables, state = _setup("ns", "pool", window, 5)
    tx = optax.chain(optim.cap_duplicates(1), optax.sgd(lr))
    state = state._replace(opt_state=tx.init(state.params))

    def apply(st, opt, grads, indices, rows, *, multiplicity, hidden_norm):
        assert hidden_norm is None   # skip-gram: W' is scored against the rows of W read
        return optim.sparse_step(opt, st.params, st.opt_state, grads, indices, rows=rows,
                                 sum_duplicates=sum_duplicates, multiplicity=multiplicity)

    def step(layout):
        return jax.jit(lambda b, a: row_step(state, obj, layout, tx, b, a, tables, apply=apply)[0])

    span_step, padded_step, counts = step(span_layout.SPAN), step(PADDED), _counter(PADDED, obj, tables)
    dense_grad = jax.jit(lambda b, a: jax.grad(objective_loss)(state.params, obj, b, a, tables))
    capped = 0
    for s, span in enumerate(_spans(data, window)[:3]):
        batch = span_layout.as_batch(span)
        aux = obj.sample(jax.random.PRNGKey(100 + s), batch, tables)
        by_span, by_batch, dense = span_step(span, aux), padded_step(batch, aux), dense_grad(batch, aux)
        pi, po, pci, pco = counts(batch, aux, state.params)
        for table, idx, n, g, a, b in zip(state.params, (pi, po), (pci, pco), dense, by_span.params,
                                          by_batch.params):
            n = np.bincount(idx, n, minlength=V)
            want = np.asarray(table) - lr * np.asarray(g) / np.maximum(n, 1)[:, None]
            np.testing.assert_allclose(np.asarray(a), want, rtol=0, atol=1e-12)
            np.testing.assert_allclose(np.asarray(b), want, rtol=0, atol=1e-12)
            capped += int(np.sum(n > 1))
    assert capped > 0
