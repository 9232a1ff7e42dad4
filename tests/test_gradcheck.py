"""Every registered objective's hand derivation against jax.grad and finite differences, in
float64; the textbook's worked SGD step through the real training step; closed forms of the
losses; a user's own objective checked without touching the library."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sg_jax import gradcheck
from sg_jax.config import Config
from sg_jax.huffman import build_huffman
from sg_jax.model import Params
from sg_jax.objectives import REGISTRY, Batch, Objective, get_objective, get_spec, objective_loss
from sg_jax.objectives.softmax import softmax_error
from sg_jax.data.layouts.padded import PADDED
from sg_jax.step import TrainState, make_optimizer, row_step

SHAPES = [(5, 3, 1, 1), (11, 4, 4, 3)]   # one context and one target; several, with finite differences


@pytest.mark.parametrize("V,N,C,B", SHAPES)
@pytest.mark.parametrize("arch,sg_form", [("sg", "target"), ("sg", "context"), ("cbow", "target")])
@pytest.mark.parametrize("objective,share", [("softmax", "none"), ("hs", "none"), ("ns", "none"),
                                             ("ns", "target"), ("ns", "batch"), ("ns", "pool"), ("nce", "none"),
                                             ("nce", "target"), ("nce", "batch"), ("nce", "pool")])
def test_derivation_matches_jax_grad_and_finite_differences(V, N, C, B, arch, sg_form, objective, share, x64):
    params, batch, counts = gradcheck.random_problem(V, N, C, B, objective=objective, seed=V + C)
    obj = get_objective(arch, objective, sg_form=sg_form, negative=3, share_negatives=share, noise_pool=7,
                        pool_group=2, noise_power=0.75)
    tables = get_spec(objective).tables(counts, Config(negative=3, share_negatives=share, noise_pool=7))
    aux = obj.sample(jax.random.PRNGKey(V), batch, tables)
    with_fd = V == 11  # finite differences on one shape (they cost a compile each)
    report = gradcheck.check_gradients(params, batch, obj, aux=aux, tables=tables, finite_differences=with_fd)
    assert report.dtype == "float64"
    assert report.derivation_abs < 1e-10, report.format()
    assert report.fd_coords == (params.w_in.size + params.w_out.size if with_fd else 0)
    assert report.fd_abs < 1e-7, report.format()
    assert report.ok(tol=1e-10, fd_tol=1e-5)


def test_every_registered_objective_is_checked_by_the_command(capsys):
    from sg_jax import cli

    assert cli.main(["gradcheck", "--arch", "cbow"]) == 0
    out = capsys.readouterr().out
    for name in REGISTRY:
        assert f"/{name}" in out
    assert "0 failed" in out


def test_a_users_own_loss_is_checked_by_finite_differences(x64):
    """A smoothed margin loss defined outside the library: jax.grad against finite differences,
    and a wrong hand derivation is caught."""
    from sg_jax.architectures import hidden_and_predictions, input_indices, predicted_words

    def margin(form, wrong=False):
        def indices(batch, negs, tables):
            return input_indices(form, batch), jnp.concatenate([predicted_words(form, batch).reshape(-1), negs])

        def loss_rows(in_rows, out_rows, batch, negs, tables):
            h, predicted, weight = hidden_and_predictions(form, in_rows, batch)
            B, P = predicted.shape
            pos = jnp.einsum("bhn,bpn->bhp", h, out_rows[: B * P].reshape(B, P, -1))
            neg = jnp.einsum("bhn,kn->bhk", h, out_rows[B * P:])
            gap = 1.0 - pos[..., None] + neg[:, :, None, :]
            return jnp.sum(weight[..., None] * jax.nn.softplus(5 * gap) / 5)

        def closed_form(params, batch, negs, tables):
            # d/dx softplus(5 g)/5 = sigmoid(5 g): written by hand for the positive and noise rows
            h, predicted, weight = hidden_and_predictions(form, params.w_in[input_indices(form, batch)], batch)
            pos = jnp.einsum("bhn,bpn->bhp", h, params.w_out[predicted])
            neg = jnp.einsum("bhn,kn->bhk", h, params.w_out[negs])
            s = weight[..., None] * jax.nn.sigmoid(5 * (1.0 - pos[..., None] + neg[:, :, None, :]))  # [B,H,P,K]
            scale = 1.01 if wrong else 1.0
            g_pos = -jnp.sum(s, axis=-1)                                    # [B, H, P]
            g_neg = jnp.sum(s, axis=2)                                      # [B, H, K]
            grad_h = (jnp.einsum("bhp,bpn->bhn", g_pos, params.w_out[predicted])
                      + jnp.einsum("bhk,kn->bhn", g_neg, params.w_out[negs]))
            g_out = jnp.zeros_like(params.w_out).at[predicted.reshape(-1)].add(
                jnp.einsum("bhp,bhn->bpn", g_pos, h).reshape(-1, h.shape[-1]))
            g_out = g_out.at[negs].add(jnp.einsum("bhk,bhn->kn", g_neg, h))
            from sg_jax.architectures import route_input_grads

            return Params(scale * route_input_grads(form, params.w_in, batch, grad_h), g_out)

        return Objective("margin", form, lambda key, batch, t: None, indices, loss_rows, closed_form)

    params, batch, _ = gradcheck.random_problem(9, 3, 2, 2, seed=5)
    negs = jnp.array([3, 7])
    good = gradcheck.check_gradients(params, batch, margin("target"), aux=negs)
    assert good.ok(), good.format()
    assert good.fd_coords == params.w_in.size + params.w_out.size
    bad = gradcheck.check_gradients(params, batch, margin("target", wrong=True), aux=negs)
    assert not bad.ok() and bad.derivation_rel > 1e-3


def test_repeated_context_and_target_in_own_context_are_in_the_problem(x64):
    _, batch, _ = gradcheck.random_problem(11, 4, 4, 3)
    ctx, tgt = np.asarray(batch.contexts), np.asarray(batch.targets)
    assert ctx[0, 0] == ctx[0, 1]
    assert ctx[1, -1] == tgt[1]


def test_softmax_error_is_y_minus_t_summed_over_contexts(x64):
    rng = np.random.default_rng(1)
    V, N = 6, 3
    h = jnp.asarray(rng.normal(size=(1, 1, N)))   # [B, H, N]
    w_out = jnp.asarray(rng.normal(size=(V, N)))
    predicted = jnp.array([[2, 2, 5]])
    weight = jnp.ones((1, 1, 3))
    u = np.asarray(w_out) @ np.asarray(h)[0, 0]
    y = np.exp(u) / np.exp(u).sum()
    want = 3 * y
    want[2] -= 2
    want[5] -= 1
    np.testing.assert_allclose(softmax_error(h, w_out, predicted, weight)[0, 0], want, rtol=1e-12)


def test_gradient_is_zero_on_rows_the_batch_does_not_touch(x64):
    params, batch, _ = gradcheck.random_problem(23, 4, 3, 2, seed=3)
    g = jax.grad(objective_loss)(params, get_objective("sg", "softmax"), batch)
    touched = set(np.asarray(batch.targets).tolist())
    for k in range(23):
        if k not in touched:
            assert not np.any(np.asarray(g.w_in[k]))


@pytest.mark.parametrize("V,C", [(7, 1), (50, 4)])
def test_zero_output_vectors_give_loss_C_log_V(V, C, x64):
    rng = np.random.default_rng(0)
    params = Params(jnp.asarray(rng.normal(size=(V, 3))), jnp.zeros((V, 3)))
    batch = Batch(jnp.array([0, 1]), jnp.asarray(rng.integers(0, V, (2, C))), jnp.ones((2, C), bool))
    loss = objective_loss(params, get_objective("sg", "softmax"), batch)
    assert float(loss) == pytest.approx(2 * C * math.log(V), rel=1e-12)


def test_zero_vectors_give_negative_sampling_loss_of_log2_per_term(x64):
    V, k = 9, 4
    params = Params(jnp.zeros((V, 3)), jnp.zeros((V, 3)))
    batch = Batch(jnp.array([0]), jnp.array([[1, 2]]), jnp.array([[True, True]]))
    negs = jnp.array([[[3, 4, 5, 6], [3, 4, 5, 7]]])  # none collides with its positive
    loss = objective_loss(params, get_objective("sg", "ns", negative=k), batch, negs, None)
    assert float(loss) == pytest.approx(2 * (1 + k) * math.log(2), rel=1e-12)


def test_hierarchical_softmax_probabilities_sum_to_one(x64):
    counts = np.array([50, 20, 9, 9, 5, 3, 1])
    tree = jax.tree.map(jnp.asarray, build_huffman(counts))
    rng = np.random.default_rng(0)
    params = Params(jnp.asarray(rng.normal(size=(7, 4))), jnp.asarray(rng.normal(size=(6, 4))))
    obj = get_objective("sg", "hs")
    total = 0.0
    for w in range(7):
        batch = Batch(jnp.array([2]), jnp.array([[w]]), jnp.array([[True]]))
        total += math.exp(-float(objective_loss(params, obj, batch, None, tree)))
    assert total == pytest.approx(1.0, rel=1e-12)


def test_textbook_worked_sgd_step_through_the_training_step():
    """Rong 2014's worked example (eta = 0.4, h = (0.65, 0.87), output vector of word 4
    (0.86, 0.67) with summed prediction error 0.314 becomes (0.78, 0.56)), run through the real
    sparse training step with the exact softmax: the other words' output vectors are set so that
    y_4 = 0.314, and the context word is word 0."""
    h = np.array([0.65, 0.87])
    e4 = math.exp(0.86 * 0.65 + 0.67 * 0.87)
    others = math.log((e4 / 0.314 - e4) / 4)
    w_out = np.tile(h * others / (h @ h), (5, 1))
    w_out[4] = [0.86, 0.67]
    w_in = np.zeros((3, 2))
    w_in[1] = h
    config = Config(objective="softmax", sg_form="target", lr=0.4, min_lr_ratio=1.0, dim=2)
    opt = make_optimizer(config, 1)
    params = Params(jnp.asarray(w_in, jnp.float32), jnp.asarray(w_out, jnp.float32))
    state = TrainState(params, opt.init(params), jnp.zeros((), jnp.int32), jax.random.PRNGKey(0))
    batch = Batch(jnp.array([1]), jnp.array([[0]]), jnp.array([[True]]))
    obj = get_objective("sg", "softmax", sg_form="target")
    new, _ = jax.jit(lambda st, b: row_step(st, obj, PADDED, opt, b, None, None))(state, batch)   # one compile
    out4 = np.asarray(new.params.w_out[4])
    assert round(float(out4[0]), 2) == 0.78 and round(float(out4[1]), 2) == 0.56
    # the input vector moves by -eta * W'.EI, computed here with numpy from the textbook's formulas
    u = w_out @ h
    EI = np.exp(u) / np.exp(u).sum()
    assert EI[4] == pytest.approx(0.314, abs=1e-6)
    EI[0] -= 1.0
    np.testing.assert_allclose(new.params.w_in[1], h - 0.4 * (EI @ w_out), rtol=1e-5)
    np.testing.assert_allclose(new.params.w_out, w_out - 0.4 * EI[:, None] * h[None, :], rtol=1e-5, atol=1e-6)
    assert not np.any(np.asarray(new.params.w_in)[[0, 2]])


def test_gradcheck_cli_passes_and_fails(capsys, monkeypatch):
    from sg_jax import cli

    assert cli.main(["gradcheck", "--objective", "hs", "--arch", "sg"]) == 0
    assert "2 passed, 0 failed" in capsys.readouterr().out  # both skip-gram forms
    # a derivation that is wrong by a factor must be caught
    from sg_jax.objectives import softmax

    real = softmax.softmax_grads
    monkeypatch.setattr(softmax, "softmax_grads", lambda *a, **k: jax.tree.map(lambda g: 1.01 * g, real(*a, **k)))
    assert cli.main(["gradcheck", "--objective", "softmax", "--arch", "sg"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_each_check_is_reported_as_it_ends(x64):
    seen = []

    def on_report(report):
        seen.append(report)
        assert len(seen) == len(seen_by_then) + 1  # one call per check, before the next one starts
        seen_by_then.append(report.objective)

    seen_by_then = []
    reports = gradcheck.run_gradcheck(objectives="ns", archs="sg", on_report=on_report)
    assert seen == reports and len(reports) == 2 * 4  # two forms x four noise sharings
