"""The packed window layout (window_layout="packed"): sub-batches without window padding.

Checked against a numpy construction of each target's contexts, against the padded layout's
step on the same (target, contexts, noise) (one step over the sub-batches equals one step over
them laid out padded), for the uniformity of the dealt windows, and end to end.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sg_jax import cli
from sg_jax.data import epoch as pipeline
from sg_jax.data.layouts.packed import PACKED, make_packed_batches
from sg_jax.data.layouts.padded import PADDED
from sg_jax.architectures import Batch
from sg_jax.config import Config
from sg_jax.data.corpus import EncodedCorpus
from sg_jax.errors import ConfigError
from sg_jax.objectives import get_spec, make_objective
from sg_jax.step import init_state, make_optimizer, row_step
from sg_jax.train import train

LENGTHS = [9, 1, 4, 12, 2, 7, 30, 3]


def _epoch(V=30, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, sum(LENGTHS)).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)]).astype(np.int64)
    dev = pipeline.to_device(ids, offsets, 0, len(ids))
    data = pipeline.prepare_epoch(jax.random.PRNGKey(1), dev, jnp.ones(V), True)
    return EncodedCorpus(ids, offsets), data


@pytest.mark.parametrize("window", [1, 3, 5])
def test_each_sub_batch_holds_exactly_the_contexts_of_its_window(window):
    """Sub-batch b holds the targets dealt to it (the step's permutation, recomputed here) with
    exactly their in-sentence neighbours within b, each in 2b slots."""
    _, data = _epoch()
    ids, sent, order, n = (np.asarray(x) for x in data)
    B = 16
    bounds = np.linspace(0, B, window + 1).round().astype(int)
    pairs = 0
    for step in range(-(-int(n) // B)):
        key = jax.random.PRNGKey(step)
        batches = make_packed_batches(data, step, key, batch_size=B, window=window)
        deal = np.asarray(jax.random.permutation(key, B))
        assert len(batches) == window
        for b, batch in enumerate(batches, start=1):
            t, c, m = map(np.asarray, batch)
            assert c.shape == (bounds[b] - bounds[b - 1], 2 * b)  # no slot beyond the window
            for row, j in enumerate(deal[bounds[b - 1]:bounds[b]]):
                i = step * B + j
                if i >= n:  # past the epoch's end: no contexts
                    assert not m[row].any()
                    continue
                p = order[i]
                want = [ids[q] for q in range(p - b, p + b + 1)
                        if q != p and 0 <= q < n and sent[q] == sent[p]]
                assert t[row] == ids[p]
                assert sorted(c[row][m[row]].tolist()) == sorted(want)
                pairs += len(want)
    assert pairs > 0


def test_every_target_of_a_step_is_dealt_once():
    corpus, data = _epoch()
    B, window = 16, 4
    batches = make_packed_batches(data, 0, jax.random.PRNGKey(3), batch_size=B, window=window)
    want = np.asarray(data.ids)[np.asarray(data.order)[:B]]
    got = np.concatenate([np.asarray(b.targets) for b in batches])
    assert sorted(got.tolist()) == sorted(want.tolist())


def test_the_dealt_windows_are_uniform_for_every_target():
    """Over many steps, batch position j lands in sub-batch b with probability 1/window for every
    (j, b): a chi-square test on the counts."""
    from scipy.stats import chisquare

    B, window, trials = 12, 3, 3000
    deals = jax.vmap(lambda k: jax.random.permutation(k, B))(jax.random.split(jax.random.PRNGKey(0), trials))
    bounds = np.linspace(0, B, window + 1).round().astype(int)
    sub_of_slot = np.repeat(np.arange(window), np.diff(bounds))
    counts = np.zeros((B, window))
    for deal in np.asarray(deals):
        counts[deal, sub_of_slot] += 1
    for j in range(B):
        assert chisquare(counts[j]).pvalue > 1e-4


@pytest.mark.parametrize("objective", ["ns", "nce"])
def test_a_step_over_sub_batches_equals_the_step_over_them_padded(objective):
    """The joined gather/scatter of sub-batches of different widths is the padded step's: lay the
    same targets, contexts and noise words out padded to 2 x window and compare the updates."""
    config = Config(objective=objective, dim=6, window=3, batch_size=12, min_count=1, dtype="float64",
                    share_negatives="target")
    corpus, data = _epoch()
    counts = np.bincount(corpus.ids, minlength=30) + 1  # every word seen
    obj = make_objective(config)
    tables = get_spec(objective).tables(counts, config)
    opt = make_optimizer(config, 100)
    with jax.enable_x64(True):
        state = init_state(dataclasses.replace(config, init="normal"), 30, opt)
        batches = make_packed_batches(data, 0, jax.random.PRNGKey(7), batch_size=12, window=3)
        auxes = tuple(obj.sample(k, b, tables) for k, b in zip(jax.random.split(jax.random.PRNGKey(8), 3), batches))
        def update(layout):  # jitted: eager ops compile one by one
            return jax.jit(lambda st, b, a: row_step(st, obj, layout, opt, b, a, tables))

        packed, loss_packed = update(PACKED)(state, batches, auxes)
        width = 2 * 3

        def pad(x, fill):
            return jnp.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=fill)

        padded_batch = Batch(jnp.concatenate([b.targets for b in batches]),
                             jnp.concatenate([pad(b.contexts, 0) for b in batches]),
                             jnp.concatenate([pad(b.mask, False) for b in batches]))
        padded_aux = jax.tree.map(lambda *xs: jnp.concatenate(xs), *auxes)
        padded, loss_padded = update(PADDED)(state, padded_batch, padded_aux)
    np.testing.assert_allclose(float(loss_packed), float(loss_padded), rtol=1e-12)
    for a, b in zip(packed.params, padded.params):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-12)
    assert not np.allclose(np.asarray(packed.params.w_in), np.asarray(state.params.w_in))


def test_packed_training_runs_and_is_deterministic(zipf_text, tmp_path):
    path = tmp_path / "c.txt"
    zipf_text(path, n_tokens=8_000, vocab=200)
    from sg_jax.runs import read_corpus

    config = Config(window_layout="packed", epochs=2, batch_size=32, min_count=1, dim=8, steps_per_call=16)
    data = read_corpus(config, str(path))
    v, e = data.vocab, data.encoded
    a, b = (train(config, v.words, v.counts, e.ids, e.offsets) for _ in range(2))
    assert np.array_equal(a.vectors(), b.vectors())
    assert a.history[-1]["loss"] < a.history[0]["loss"]
    padded = train(dataclasses.replace(config, window_layout="padded"), v.words, v.counts, e.ids, e.offsets)
    # the same number of examples in expectation, not in each step
    assert abs(sum(r["examples"] for r in a.history) / sum(r["examples"] for r in padded.history) - 1) < 0.05


@pytest.mark.parametrize("flags, clash", [(["--fixed-window"], "dynamic_window=False"),
                                          (["--no-shuffle"], "shuffle=False"),
                                          (["--objective", "softmax"], "objective=softmax")])
def test_packed_with_a_clashing_option_is_a_one_line_error(flags, clash, capsys, tmp_path):
    assert cli.main(["train", "--corpus", "toy:groups", "--out", str(tmp_path / "run"), "--window-layout", "packed",
                     *flags, "--quiet"]) == 2
    assert not (tmp_path / "run").exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and clash in err and "window_layout=packed" in err
    with pytest.raises(ConfigError):
        Config(window_layout="packed", pairs=True).validate()
