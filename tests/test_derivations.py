"""The hand derivations against jax.grad and finite differences, in float64; the textbook's
worked SGD step; closed forms of the losses."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sg_jax import derivations
from sg_jax.huffman import build_huffman
from sg_jax.model import Params
from sg_jax.objectives import Batch, get_objective, objective_loss
from sg_jax.objectives.negative import noise_table

SHAPES = [(5, 3, 1, 1), (11, 4, 4, 3), (23, 6, 6, 5)]


def _tables(objective, counts):
    if objective == "hs":
        return jax.tree.map(jnp.asarray, build_huffman(counts))
    if objective == "ns":
        return jnp.asarray(noise_table(counts, size=10_000))
    return None


@pytest.mark.parametrize("V,N,C,B", SHAPES)
@pytest.mark.parametrize("arch,sg_form", [("sg", "target"), ("sg", "context"), ("cbow", "target")])
@pytest.mark.parametrize("objective,share", [("softmax", "none"), ("hs", "none"), ("ns", "none"),
                                             ("ns", "target"), ("ns", "batch")])
def test_derivation_matches_jax_grad_and_finite_differences(V, N, C, B, arch, sg_form, objective, share, x64):
    params, batch, counts = derivations.random_problem(V, N, C, B, objective=objective, seed=V + C)
    tables = _tables(objective, counts)
    aux = None
    if objective == "ns":
        obj = get_objective(arch, "ns", negative=3, share=share, sg_form=sg_form)
        aux = obj.sample(jax.random.PRNGKey(V), batch, tables)
    with_fd = V == 11  # finite differences on one shape (they cost a compile each)
    report = derivations.check_gradients(params, batch, objective, arch, aux=aux, tables=tables, negative=3,
                                         share=share, sg_form=sg_form, finite_differences=with_fd)
    assert report.dtype == "float64"
    assert report.derivation_abs < 1e-10, report.format()
    assert report.fd_coords == (params.w_in.size + params.w_out.size if with_fd else 0)
    assert report.fd_abs < 1e-7, report.format()
    assert report.ok(tol=1e-10, fd_tol=1e-5)


def test_repeated_context_and_target_in_own_context_are_in_the_problem(x64):
    _, batch, _ = derivations.random_problem(11, 4, 4, 3)
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
    np.testing.assert_allclose(derivations.softmax_error(h, w_out, predicted, weight)[0, 0], want, rtol=1e-12)


def test_gradient_is_zero_on_rows_the_batch_does_not_touch(x64):
    params, batch, _ = derivations.random_problem(23, 4, 3, 2, seed=3)
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


def test_textbook_worked_sgd_step():
    """eta = 0.4, h = (0.65, 0.87), summed error 0.314 on output word 4 (Rong 2014's example)."""
    lr, h = 0.4, jnp.array([0.65, 0.87])
    w_out = jnp.zeros((5, 2)).at[4].set(jnp.array([0.86, 0.67]))  # column 4 of W': w'14, w'24
    EI = jnp.zeros(5).at[4].set(0.314)
    new = derivations.update_output_vectors(w_out, EI, h, lr)
    assert round(float(new[4, 0]), 2) == 0.78
    assert round(float(new[4, 1]), 2) == 0.56
    np.testing.assert_allclose(new[4], [0.86 - 0.4 * 0.314 * 0.65, 0.67 - 0.4 * 0.314 * 0.87], rtol=1e-6)
    w_in = jnp.zeros((3, 2)).at[1].set(jnp.array([0.65, 0.87]))  # w21, w22 (word 2 is row 1)
    new_in = derivations.update_input_vector(w_in, 1, jnp.array([0.283, 0.081]), lr)
    assert round(float(new_in[1, 0]), 2) == 0.54
    assert round(float(new_in[1, 1]), 2) == 0.84
    assert not np.any(np.asarray(new_in)[[0, 2]])


def test_optax_sgd_on_jax_grad_equals_the_textbook_update(x64):
    """One step of the design card's recipe (jax.grad + optax.sgd) is the derivation's rule."""
    params, batch, _ = derivations.random_problem(9, 3, 1, 1, seed=4)
    obj = get_objective("sg", "softmax")
    lr = 0.4
    grads = jax.grad(objective_loss)(params, obj, batch)
    opt = optax.sgd(lr)
    updates, _ = opt.update(grads, opt.init(params))
    stepped = optax.apply_updates(params, updates)
    h = params.w_in[batch.targets]
    EI = derivations.softmax_error(h[:, None], params.w_out, batch.contexts, batch.mask.astype(h.dtype)[:, None])[0, 0]
    want_out = derivations.update_output_vectors(params.w_out, EI, h[0], lr)
    want_in = derivations.update_input_vector(params.w_in, batch.targets[0], EI @ params.w_out, lr)
    np.testing.assert_allclose(stepped.w_out, want_out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(stepped.w_in, want_in, rtol=1e-12, atol=1e-14)


def test_gradcheck_cli_passes_and_fails(capsys, monkeypatch):
    from sg_jax import cli

    assert cli.main(["gradcheck", "--objective", "hs", "--arch", "sg"]) == 0
    assert "2 passed, 0 failed" in capsys.readouterr().out  # both skip-gram forms
    # a derivation that is wrong by a factor must be caught
    real = derivations.hand_grads
    monkeypatch.setattr(derivations, "hand_grads", lambda *a, **k: jax.tree.map(lambda g: 1.01 * g, real(*a, **k)))
    assert cli.main(["gradcheck", "--objective", "softmax", "--arch", "sg"]) == 1
    assert "FAIL" in capsys.readouterr().out
