"""The hand-derived gradients, as code, and the checker that holds them against `jax.grad`.

Nothing here uses automatic differentiation: each gradient is the closed form of the textbook
(Rong 2014, "word2vec Parameter Learning Explained", sections 1-3), written with the same names.

Exact softmax, one hidden vector h = W[target] (Skip-gram), C contexts j*_1..j*_C:

    y = softmax(u),  u_j = v'_j . h
    e_c = y - t_c                    prediction error for context c (t_c one-hot at j*_c)
    EI = sum_c e_c                   the summed prediction error, a V-vector
    dE/dW'[:, j] = EI_j * h          every output vector moves (dense in V)
    dE/dh = W' . EI = sum_j EI_j v'_j
    dE/dW[k] = dE/dh if k == target else 0

CBOW: h = (1/C) sum_c W[c]; one prediction (the target), so EI = y - t; each context row receives
(1/C) dE/dh (jax.grad's exact gradient; word2vec and gensim add the undivided dE/dh).

Negative sampling, positive word w and noise words n_i (sigma the logistic function):

    e_w = sigma(v'_w . h) - 1,   e_{n_i} = sigma(v'_{n_i} . h)
    dE/dv'_x = e_x * h,          dE/dh = sum_x e_x v'_x

Hierarchical softmax, inner nodes n_l on w's path with codes d_l:

    e_l = sigma(v'_{n_l} . h) - (1 - d_l)
    dE/dv'_{n_l} = e_l * h,      dE/dh = sum_l e_l v'_{n_l}
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from sg_jax.model import Params
from sg_jax.objectives import Batch, hidden_and_predictions, input_indices, objective_loss, get_objective


# ---------------------------------------------------------------------------------------------
# closed forms


def softmax_error(h, w_out, predicted, weight):
    """EI [B, V]: the summed prediction error sum_p weight_p * (y - t_p) of each hidden vector."""
    u = h @ w_out.T
    y = jnp.exp(u - jnp.max(u, axis=-1, keepdims=True))
    y = y / jnp.sum(y, axis=-1, keepdims=True)
    B, V = u.shape
    t = jnp.zeros((B, V), h.dtype).at[jnp.arange(B)[:, None], predicted].add(weight)
    return jnp.sum(weight, axis=-1, keepdims=True) * y - t


def _input_grads(arch, params, batch, grad_h):
    """Route dE/dh to the rows of W that formed h."""
    g_in = jnp.zeros_like(params.w_in)
    if arch == "sg":
        return g_in.at[batch.targets].add(grad_h)
    mask = batch.mask.astype(grad_h.dtype)
    count = jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1.0)
    per_ctx = (mask / count)[..., None] * grad_h[:, None, :]            # [B, C, N]
    return g_in.at[batch.contexts.reshape(-1)].add(per_ctx.reshape(-1, grad_h.shape[-1]))


def _hidden(arch, params, batch):
    return hidden_and_predictions(arch, params.w_in[input_indices(arch, batch)], batch)


def softmax_grads(params: Params, batch: Batch, arch: str = "sg") -> Params:
    h, predicted, weight = _hidden(arch, params, batch)
    EI = softmax_error(h, params.w_out, predicted, weight)              # [B, V]
    g_out = EI.T @ h                                                    # dE/dW'[:, j] = EI_j h
    grad_h = EI @ params.w_out                                          # dE/dh = W' . EI
    return Params(_input_grads(arch, params, batch, grad_h), g_out)


def _sigmoid(x):
    return 1.0 / (1.0 + jnp.exp(-x))


def _sampled_grads(arch, params, batch, rows, err):
    """Gradients from output rows `rows` int[B, M] with errors `err` [B, M] (0 where unused)."""
    h, _, _ = _hidden(arch, params, batch)
    v = params.w_out[rows]                                              # [B, M, N]
    grad_h = jnp.einsum("bm,bmn->bn", err, v)
    g_out = jnp.zeros_like(params.w_out).at[rows.reshape(-1)].add(
        (err[..., None] * h[:, None, :]).reshape(-1, h.shape[-1]))
    return Params(_input_grads(arch, params, batch, grad_h), g_out)


def negative_grads(params: Params, batch: Batch, negs, arch: str = "sg", share: str = "none") -> Params:
    """Negative-sampling gradients; negs as drawn by the objective's `sample` for `share`."""
    h, predicted, weight = _hidden(arch, params, batch)
    B, P = predicted.shape
    if share == "none":
        k = negs.shape[-1]
        noise = negs.reshape(B, P * k)
        valid = weight[..., None] * (negs != predicted[..., None])      # [B, P, k]
        valid = valid.reshape(B, P * k)
    else:
        noise = negs if share == "target" else jnp.broadcast_to(negs, (B, negs.shape[0]))
        # a shared noise word serves every prediction of the row, except one equal to it
        valid = jnp.einsum("bp,bpk->bk", weight, (noise[:, None, :] != predicted[..., None]).astype(h.dtype))
    s_pos = jnp.einsum("bn,bpn->bp", h, params.w_out[predicted])
    s_neg = jnp.einsum("bn,bmn->bm", h, params.w_out[noise])
    rows = jnp.concatenate([predicted, noise], axis=1)
    err = jnp.concatenate([weight * (_sigmoid(s_pos) - 1.0), valid * _sigmoid(s_neg)], axis=1)
    return _sampled_grads(arch, params, batch, rows, err)


def hierarchical_grads(params: Params, batch: Batch, tree, arch: str = "sg") -> Params:
    h, predicted, weight = _hidden(arch, params, batch)
    B, P = predicted.shape
    nodes = tree.points[predicted].reshape(B, -1)                       # [B, P*L]
    codes = tree.codes[predicted].reshape(B, -1).astype(h.dtype)
    valid = (weight[..., None] * tree.mask[predicted]).reshape(B, -1)
    s = jnp.einsum("bn,bmn->bm", h, params.w_out[nodes])
    err = valid * (_sigmoid(s) - (1.0 - codes))
    return _sampled_grads(arch, params, batch, nodes, err)


def hand_grads(params: Params, batch: Batch, objective: str, arch: str = "sg", aux=None, tables=None,
               share: str = "none") -> Params:
    """The derivation's gradient of the summed loss for any (arch, objective)."""
    if objective == "softmax":
        return softmax_grads(params, batch, arch)
    if objective == "ns":
        return negative_grads(params, batch, aux, arch, share)
    if objective == "hs":
        return hierarchical_grads(params, batch, tables, arch)
    raise ValueError(objective)


# ---------------------------------------------------------------------------------------------
# the textbook's SGD update rules (Rong 2014, eqs. 11 and 16 / 35 and 36)


def update_output_vectors(w_out, EI, h, lr):
    """v'_j <- v'_j - lr * EI_j * h for every j. w_out [V, N] (rows are W' columns), EI [V]."""
    return w_out - lr * EI[:, None] * h[None, :]


def update_input_vector(w_in, target, grad_h, lr):
    """v_target <- v_target - lr * dE/dh; the other rows of W are unchanged."""
    return w_in.at[target].add(-lr * grad_h)


# ---------------------------------------------------------------------------------------------
# the checker


@dataclasses.dataclass(frozen=True)
class GradCheckReport:
    objective: str
    arch: str
    derivation_abs: float     # max |jax.grad - derivation|
    derivation_rel: float     # max |jax.grad - derivation| / max(|jax.grad|, |derivation|, floor)
    fd_abs: float             # max |jax.grad - central finite difference| on the checked coords
    fd_rel: float
    fd_coords: int            # coordinates checked by finite differences
    dtype: str

    def ok(self, tol: float = 1e-8, fd_tol: float = 1e-5) -> bool:
        return self.derivation_rel <= tol and self.fd_rel <= fd_tol

    def format(self) -> str:
        return (f"{self.arch}/{self.objective} ({self.dtype}): derivation vs jax.grad max abs "
                f"{self.derivation_abs:.3e} rel {self.derivation_rel:.3e}; finite differences "
                f"({self.fd_coords} coords) max abs {self.fd_abs:.3e} rel {self.fd_rel:.3e}")


def _errors(a, b, floor=1e-6):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = np.abs(a - b)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)
    return float(diff.max(initial=0.0)), float((diff / scale).max(initial=0.0))


def finite_difference_grads(loss_fn, params, coords, eps: float, chunk: int = 64):
    """Central differences of loss_fn at the flat coordinates `coords` (int array), vectorised
    over chunks of coordinates."""
    flat, unravel = ravel_pytree(params)

    @jax.jit
    def fd(idx):
        def one(i):
            e = jnp.zeros_like(flat).at[i].set(eps)
            return (loss_fn(unravel(flat + e)) - loss_fn(unravel(flat - e))) / (2 * eps)

        return jax.vmap(one)(idx)

    coords = np.asarray(coords)
    pad = (-coords.size) % chunk
    padded = np.concatenate([coords, np.zeros(pad, coords.dtype)]).reshape(-1, chunk)
    values = np.concatenate([np.asarray(fd(jnp.asarray(c))) for c in padded])
    return values[: coords.size], np.asarray(flat)


def check_gradients(params: Params, batch: Batch, objective: str = "softmax", arch: str = "sg", *,
                    aux=None, tables=None, negative: int = 5, share: str = "none",
                    max_fd_coords: int = 400, seed: int = 0, eps: float | None = None,
                    finite_differences: bool = True) -> GradCheckReport:
    """Compare jax.grad of the objective with the hand derivation and with finite differences.

    Run it in float64 (`jax.config.update("jax_enable_x64", True)` and float64 params) for
    agreement near machine precision; in float32 expect ~1e-3 from the finite differences.
    """
    obj = get_objective(arch, objective, negative=negative, share=share)
    loss_fn = lambda p: objective_loss(p, obj, batch, aux, tables)  # noqa: E731
    auto = jax.jit(jax.grad(loss_fn))(params)
    hand = jax.jit(lambda p: hand_grads(p, batch, objective, arch, aux, tables, share))(params)
    d_abs, d_rel = 0.0, 0.0
    for a, h in zip(auto, hand):
        ab, rel = _errors(a, h)
        d_abs, d_rel = max(d_abs, ab), max(d_rel, rel)

    flat_auto, _ = ravel_pytree(auto)
    if not finite_differences:
        return GradCheckReport(objective, arch, d_abs, d_rel, 0.0, 0.0, 0, str(flat_auto.dtype))
    n = flat_auto.size
    rng = np.random.default_rng(seed)
    if n <= max_fd_coords:
        coords = np.arange(n)
    else:  # half on the largest gradients (touched rows), half uniform
        top = np.argsort(-np.abs(np.asarray(flat_auto)))[: max_fd_coords // 2]
        coords = np.unique(np.concatenate([top, rng.choice(n, max_fd_coords // 2, replace=False)]))
    dtype = flat_auto.dtype
    eps = eps if eps is not None else (1e-5 if dtype == jnp.float64 else 1e-2)
    fd, _ = finite_difference_grads(loss_fn, params, coords, eps)
    fd_abs, fd_rel = _errors(np.asarray(flat_auto)[coords], fd, floor=1e-4 if dtype == jnp.float64 else 1e-2)
    return GradCheckReport(objective, arch, d_abs, d_rel, fd_abs, fd_rel, int(coords.size), str(dtype))


def random_problem(V: int, N: int, C: int, B: int, *, objective: str = "softmax", seed: int = 0,
                   dtype=jnp.float64, repeat_contexts: bool = True):
    """A random (params, batch, counts) with repeated contexts and a target in its own context."""
    rng = np.random.default_rng(seed)
    out_rows = V - 1 if objective == "hs" else V
    params = Params(jnp.asarray(rng.normal(size=(V, N)), dtype), jnp.asarray(rng.normal(size=(out_rows, N)), dtype))
    targets = rng.integers(0, V, B)
    contexts = rng.integers(0, V, (B, C))
    if repeat_contexts and C >= 2:
        contexts[0, 1] = contexts[0, 0]          # the same context word twice
    if B >= 2:
        contexts[1, -1] = targets[1]             # the target inside its own context
    mask = rng.random((B, C)) < 0.8
    mask[:, 0] = True
    batch = Batch(jnp.asarray(targets, jnp.int32), jnp.asarray(contexts, jnp.int32), jnp.asarray(mask))
    counts = rng.integers(1, 1000, V)
    return params, batch, counts


def run_gradcheck(objectives="all", archs="all", *, vocab_size=11, dim=5, contexts=4, batch=3, negative=3,
                  seed=0) -> list[GradCheckReport]:
    """check_gradients on random problems for each (arch, objective [, sharing]) combination."""
    from sg_jax.huffman import build_huffman
    from sg_jax.objectives.negative import noise_table

    objectives = ["softmax", "ns", "hs"] if objectives == "all" else [objectives]
    archs = ["sg", "cbow"] if archs == "all" else [archs]
    reports = []
    for arch in archs:
        for objective in objectives:
            params, b, counts = random_problem(vocab_size, dim, contexts, batch, objective=objective, seed=seed)
            if objective == "softmax":
                reports.append(check_gradients(params, b, "softmax", arch))
            elif objective == "hs":
                tree = jax.tree.map(jnp.asarray, build_huffman(counts))
                reports.append(check_gradients(params, b, "hs", arch, tables=tree))
            else:
                table = jnp.asarray(noise_table(counts, size=10_000))
                for share in ("none", "target", "batch"):
                    obj = get_objective(arch, "ns", negative=negative, share=share)
                    aux = obj.sample(jax.random.PRNGKey(seed), b, table)
                    report = check_gradients(params, b, "ns", arch, aux=aux, tables=table, negative=negative,
                                             share=share)
                    reports.append(dataclasses.replace(report, objective=f"ns[share={share}]"))
    return reports
