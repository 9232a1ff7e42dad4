"""The exact full-softmax objective (Mikolov et al. 2013; Rong 2014, eqs. 26-35).

For a hidden vector h the scores are u_j = v'_j . h for every word j and y = softmax(u). Skip-gram
predicts each of its C contexts from the same h, so the multi-context loss of one target is

    E = -sum_c u[j*_c] + C * log sum_j exp(u_j),

computed with log-sum-exp for stability. CBOW's h is the mean of the context vectors and it
predicts the one target word. The B x V score matrix is the memory cost: the trainer sizes the
batch so that it fits (see `max_batch_for_vocab`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sg_jax.objectives import Batch, Objective, hidden_and_predictions, input_indices

SCORE_BUDGET_BYTES = 64 * 2**20


def max_batch_for_vocab(vocab_size: int, contexts: int = 1, budget_bytes: int = SCORE_BUDGET_BYTES) -> int:
    """Targets per batch that keep the [B, V] score matrix (and its gradient) within budget."""
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


def make(arch: str, form: str) -> Objective:
    def sample(key, batch: Batch, tables):
        return None

    def indices(batch: Batch, aux, tables):
        return input_indices(form, batch), None

    def loss_rows(in_rows, out_rows, batch: Batch, aux, tables):
        h, predicted, weight = hidden_and_predictions(form, in_rows, batch)
        return multi_context_loss(h, out_rows, predicted, weight)

    return Objective(arch, "softmax", form, sample, indices, loss_rows)
