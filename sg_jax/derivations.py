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

from sg_jax.errors import ConfigError
from sg_jax.model import Params
from sg_jax.objectives import Batch, hidden_and_predictions, input_indices, objective_loss, get_objective


# ---------------------------------------------------------------------------------------------
# closed forms


def softmax_error(h, w_out, predicted, weight):
    """EI [B, H, V]: the summed prediction error sum_j weight_j * (y - t_j) of each hidden vector.

    h [B, H, N], predicted int [B, P], weight [B, H, P]."""
    u = jnp.einsum("bhn,vn->bhv", h, w_out)
    y = jnp.exp(u - jnp.max(u, axis=-1, keepdims=True))
    y = y / jnp.sum(y, axis=-1, keepdims=True)
    B, H, V = u.shape
    t = jnp.zeros((B, H, V), h.dtype).at[jnp.arange(B)[:, None, None], jnp.arange(H)[None, :, None],
                                         predicted[:, None, :]].add(weight)
    return jnp.sum(weight, axis=-1, keepdims=True) * y - t


def _input_grads(form, params, batch, grad_h):
    """Route dE/dh [B, H, N] to the rows of W that formed h."""
    g_in = jnp.zeros_like(params.w_in)
    N = grad_h.shape[-1]
    if form == "sg":
        return g_in.at[batch.targets].add(grad_h[:, 0])
    if form == "sgc":   # h[b, c] is W[context c] itself
        return g_in.at[batch.contexts.reshape(-1)].add(grad_h.reshape(-1, N))
    mask = batch.mask.astype(grad_h.dtype)
    count = jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1.0)
    per_ctx = (mask / count)[..., None] * grad_h                        # [B, C, N] (H = 1 broadcasts)
    return g_in.at[batch.contexts.reshape(-1)].add(per_ctx.reshape(-1, N))


def _hidden(form, params, batch):
    return hidden_and_predictions(form, params.w_in[input_indices(form, batch)], batch)


def softmax_grads(params: Params, batch: Batch, form: str = "sg") -> Params:
    h, predicted, weight = _hidden(form, params, batch)
    EI = softmax_error(h, params.w_out, predicted, weight)              # [B, H, V]
    g_out = jnp.einsum("bhv,bhn->vn", EI, h)                            # dE/dW'[:, j] = EI_j h
    grad_h = jnp.einsum("bhv,vn->bhn", EI, params.w_out)                # dE/dh = W' . EI
    return Params(_input_grads(form, params, batch, grad_h), g_out)


def _sigmoid(x):
    return 1.0 / (1.0 + jnp.exp(-x))


def _sampled_grads(form, params, batch, h, rows, err):
    """Gradients from output rows `rows` int[B, M] with errors `err` [B, H, M] (0 where unused)."""
    v = params.w_out[rows]                                              # [B, M, N]
    grad_h = jnp.einsum("bhm,bmn->bhn", err, v)                         # dE/dh = sum_x e_x v'_x
    g_rows = jnp.einsum("bhm,bhn->bmn", err, h)                         # dE/dv'_x = e_x h
    g_out = jnp.zeros_like(params.w_out).at[rows.reshape(-1)].add(g_rows.reshape(-1, h.shape[-1]))
    return Params(_input_grads(form, params, batch, grad_h), g_out)


def negative_grads(params: Params, batch: Batch, negs, form: str = "sg", share: str = "none") -> Params:
    """Negative-sampling gradients; negs as drawn by the objective's `sample` for `share`."""
    h, predicted, weight = _hidden(form, params, batch)
    B, H, _ = h.shape
    P = predicted.shape[1]
    if share == "none":
        k = negs.shape[-1]
        # every (h, predicted) pair has its own k noise words: one output row per (p, noise)
        s_pos = jnp.einsum("bhn,bpn->bhp", h, params.w_out[predicted])
        s_neg = jnp.einsum("bhn,bhpkn->bhpk", h, params.w_out[negs])
        valid = weight[..., None] * (negs != predicted[:, None, :, None])
        err_neg = valid * _sigmoid(s_neg)                                 # [B, H, P, k]
        rows = jnp.concatenate([predicted, negs.reshape(B, H * P * k)], axis=1)
        # hidden vector i touches only its own noise rows: spread into a block layout
        err_blocks = jnp.einsum("bhpk,hg->bhgpk", err_neg, jnp.eye(H, dtype=h.dtype)).reshape(B, H, H * P * k)
        err = jnp.concatenate([weight * (_sigmoid(s_pos) - 1.0), err_blocks], axis=2)
        return _sampled_grads(form, params, batch, h, rows, err)
    noise = negs if share == "target" else jnp.broadcast_to(negs, (B, negs.shape[0]))
    # a shared noise word serves every prediction of the group, except one equal to it
    differs = (noise[:, None, :] != predicted[:, :, None]).astype(h.dtype)
    valid = jnp.einsum("bhp,bpk->bhk", weight, differs)
    s_pos = jnp.einsum("bhn,bpn->bhp", h, params.w_out[predicted])
    s_neg = jnp.einsum("bhn,bkn->bhk", h, params.w_out[noise])
    rows = jnp.concatenate([predicted, noise], axis=1)
    err = jnp.concatenate([weight * (_sigmoid(s_pos) - 1.0), valid * _sigmoid(s_neg)], axis=2)
    return _sampled_grads(form, params, batch, h, rows, err)


def hierarchical_grads(params: Params, batch: Batch, tree, form: str = "sg") -> Params:
    h, predicted, weight = _hidden(form, params, batch)
    B, H, _ = h.shape
    nodes = tree.points[predicted].reshape(B, -1)                       # [B, P*L]
    codes = tree.codes[predicted].reshape(B, -1).astype(h.dtype)
    on_path = tree.mask[predicted].astype(h.dtype)                      # [B, P, L]
    valid = (weight[..., None] * on_path[:, None]).reshape(B, H, -1)    # [B, H, P*L]
    s = jnp.einsum("bhn,bmn->bhm", h, params.w_out[nodes])
    err = valid * (_sigmoid(s) - (1.0 - codes[:, None, :]))             # e_l = sigma(x) - (1 - d_l)
    return _sampled_grads(form, params, batch, h, nodes, err)


def hand_grads(params: Params, batch: Batch, objective: str, form: str = "sg", aux=None, tables=None,
               share: str = "none") -> Params:
    """The derivation's gradient of the summed loss for any (form, objective)."""
    if objective == "softmax":
        return softmax_grads(params, batch, form)
    if objective == "ns":
        return negative_grads(params, batch, aux, form, share)
    if objective == "hs":
        return hierarchical_grads(params, batch, tables, form)
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
                    aux=None, tables=None, negative: int = 5, share: str = "none", sg_form: str = "target",
                    max_fd_coords: int = 400, seed: int = 0, eps: float | None = None,
                    finite_differences: bool = True) -> GradCheckReport:
    """Compare jax.grad of the objective with the hand derivation and with finite differences.

    Run it in float64 (`jax.config.update("jax_enable_x64", True)` and float64 params) for
    agreement near machine precision; in float32 expect ~1e-3 from the finite differences.
    """
    obj = get_objective(arch, objective, negative=negative, share=share, sg_form=sg_form)
    loss_fn = lambda p: objective_loss(p, obj, batch, aux, tables)  # noqa: E731
    auto = jax.jit(jax.grad(loss_fn))(params)
    hand = jax.jit(lambda p: hand_grads(p, batch, objective, obj.form, aux, tables, share))(params)
    d_abs, d_rel = 0.0, 0.0
    for a, h in zip(auto, hand):
        ab, rel = _errors(a, h)
        d_abs, d_rel = max(d_abs, ab), max(d_rel, rel)

    flat_auto, _ = ravel_pytree(auto)
    if not finite_differences:
        return GradCheckReport(objective, obj.form, d_abs, d_rel, 0.0, 0.0, 0, str(flat_auto.dtype))
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
    return GradCheckReport(objective, obj.form, d_abs, d_rel, fd_abs, fd_rel, int(coords.size), str(dtype))


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


GRADCHECK_MAX_ELEMENTS = 10_000_000


def run_gradcheck(objectives="all", archs="all", *, vocab_size=11, dim=5, contexts=4, batch=3, negative=3,
                  seed=0) -> list[GradCheckReport]:
    """check_gradients on random problems for each (arch, objective [, sharing]) combination.

    The problem is bounded (GRADCHECK_MAX_ELEMENTS for batch * contexts * (vocab_size + negative)
    * dim, the size of its largest intermediate): a check is a test of the algebra, which small
    problems exercise fully, and a huge one would exhaust memory inside XLA.
    """
    sizes = dict(vocab_size=vocab_size, dim=dim, contexts=contexts, batch=batch, negative=negative)
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    elements = batch * contexts * (vocab_size + negative) * dim
    if elements > GRADCHECK_MAX_ELEMENTS:
        raise ConfigError(f"gradcheck problem too large: batch * contexts * (vocab_size + negative) * dim = "
                          f"{elements:,}, more than {GRADCHECK_MAX_ELEMENTS:,} "
                          f"(batch={batch}, contexts={contexts}, vocab_size={vocab_size}, negative={negative}, "
                          f"dim={dim})")
    from sg_jax.huffman import build_huffman
    from sg_jax.objectives.negative import noise_table

    objectives = ["softmax", "ns", "hs"] if objectives == "all" else [objectives]
    archs = ["sg", "cbow"] if archs == "all" else [archs]
    forms = [(a, f) for a in archs for f in (("target", "context") if a == "sg" else ("target",))]
    reports = []
    for arch, sg_form in forms:
        for objective in objectives:
            params, b, counts = random_problem(vocab_size, dim, contexts, batch, objective=objective, seed=seed)
            if objective == "softmax":
                reports.append(check_gradients(params, b, "softmax", arch, sg_form=sg_form))
            elif objective == "hs":
                tree = jax.tree.map(jnp.asarray, build_huffman(counts))
                reports.append(check_gradients(params, b, "hs", arch, tables=tree, sg_form=sg_form))
            else:
                table = jnp.asarray(noise_table(counts, size=10_000))
                for share in ("none", "target", "batch"):
                    obj = get_objective(arch, "ns", negative=negative, share=share, sg_form=sg_form)
                    aux = obj.sample(jax.random.PRNGKey(seed), b, table)
                    report = check_gradients(params, b, "ns", arch, aux=aux, tables=table, negative=negative,
                                             share=share, sg_form=sg_form)
                    reports.append(dataclasses.replace(report, objective=f"ns[share={share}]"))
    return reports
