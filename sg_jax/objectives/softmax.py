"""The exact full-softmax objective (Mikolov et al. 2013; Rong 2014, eqs. 26-35).

For a hidden vector h the scores are u_j = v'_j . h for every word j and y = softmax(u). Skip-gram
predicts each of its C contexts from the same h, so the multi-context loss of one target is

    E = -sum_c u[j*_c] + C * log sum_j exp(u_j),

computed with log-sum-exp for stability. CBOW's h is the mean of the context vectors and it
predicts the one target word. The B x V score matrix is the memory cost: the trainer sizes the
batch so that it fits (`max_predictions`).

The hand derivation (Rong 2014, sections 1-3), with the textbook's names:

    e_c = y - t_c                    prediction error for context c (t_c one-hot at j*_c)
    EI = sum_c e_c                   the summed prediction error, a V-vector
    dE/dW'[:, j] = EI_j * h          every output vector moves (dense in V)
    dE/dh = W' . EI = sum_j EI_j v'_j
    dE/dW[k] = dE/dh if k == target else 0
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sg_jax.architectures import Batch, hidden_and_predictions, input_indices, route_input_grads
from sg_jax.model import Params
from sg_jax.objectives.base import Objective, ObjectiveSpec, register

SCORE_BUDGET_BYTES = 64 * 2**20


def max_batch_for_vocab(vocab_size: int, contexts: int = 1, budget_bytes: int = SCORE_BUDGET_BYTES) -> int:
    """Predictions per step that keep the [B, V] score matrix (and its gradient) within budget."""
    per_target = 3 * vocab_size * 4  # scores, softmax, gradient; float32
    return max(1, budget_bytes // per_target)


def multi_context_loss(h: jax.Array, w_out: jax.Array, predicted: jax.Array, weight: jax.Array) -> jax.Array:
    """sum_{b,i} [ -sum_j weight * u[b, i, predicted[b, j]] + (sum_j weight) * logsumexp(u[b, i]) ].

    h [B, H, N], w_out [V, N], predicted int [B, P], weight [B, H, P].
    """
    u = jnp.einsum("bhn,vn->bhv", h, w_out)                               # [B, H, V]
    lse = jax.nn.logsumexp(u, axis=-1)                                    # [B, H]
    B, H, _ = u.shape
    index = jnp.broadcast_to(predicted[:, None, :], (B, H, predicted.shape[1]))
    picked = jnp.take_along_axis(u, index, axis=-1)                       # [B, H, P]
    return jnp.sum(jnp.sum(weight, axis=-1) * lse) - jnp.sum(weight * picked)


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


def softmax_grads(params: Params, batch: Batch, form: str = "target") -> Params:
    """The derivation's dE/dParams (no automatic differentiation)."""
    h, predicted, weight = hidden_and_predictions(form, params.w_in[input_indices(form, batch)], batch)
    EI = softmax_error(h, params.w_out, predicted, weight)              # [B, H, V]
    g_out = jnp.einsum("bhv,bhn->vn", EI, h)                            # dE/dW'[:, j] = EI_j h
    grad_h = jnp.einsum("bhv,vn->bhn", EI, params.w_out)                # dE/dh = W' . EI
    return Params(route_input_grads(form, params.w_in, batch, grad_h), g_out)


def make(form: str, options=None) -> Objective:
    cbow_update = getattr(options, "cbow_update", "mean")

    def sample(key, batch: Batch, tables):
        return None

    def indices(batch: Batch, aux, tables):
        return input_indices(form, batch), None

    def loss_rows(in_rows, out_rows, batch: Batch, aux, tables):
        h, predicted, weight = hidden_and_predictions(form, in_rows, batch, cbow_update)
        return multi_context_loss(h, out_rows, predicted, weight)

    def closed_form(params, batch, aux, tables):
        return softmax_grads(params, batch, form)

    return Objective("softmax", form, sample, indices, loss_rows, closed_form)


SPEC = register(ObjectiveSpec(
    name="softmax", summary="the exact full softmax over the vocabulary (the textbook's model)", make=make,
    max_predictions=max_batch_for_vocab, sg_form="target", reads_every_output_row=True))
