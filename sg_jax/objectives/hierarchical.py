"""Hierarchical softmax over the Huffman tree (Morin & Bengio 2005; Mikolov et al. 2013b).

The probability of word w given h is a product over the inner nodes n(w, l) on w's path,

    p(w | h) = prod_l sigma((1 - 2 code_l) * v'_{n(w,l)} . h),

so E = -log p(w | h) = sum_l softplus(-(1 - 2 code_l) * v'_{n(w,l)} . h): O(log V) per
prediction instead of O(V). `tables` is a `HuffmanTree` of device arrays.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sg_jax.objectives import Batch, Objective, hidden_and_predictions, input_indices, predicted_words


def make(arch: str, form: str) -> Objective:
    def sample(key, batch: Batch, tree):
        return None

    def indices(batch: Batch, aux, tree):
        return input_indices(form, batch), tree.points[predicted_words(form, batch)].reshape(-1)

    def loss_rows(in_rows, out_rows, batch: Batch, aux, tree):
        h, predicted, weight = hidden_and_predictions(form, in_rows, batch)
        B, P = predicted.shape
        L = tree.points.shape[1]
        rows = out_rows.reshape(B, P, L, -1)
        s = jnp.einsum("bhn,bpln->bhpl", h, rows)
        sign = 1.0 - 2.0 * tree.codes[predicted].astype(h.dtype)             # [B, P, L]
        w = weight[..., None] * tree.mask[predicted].astype(h.dtype)[:, None]  # [B, H, P, L]
        return jnp.sum(w * jax.nn.softplus(-sign[:, None] * s))

    return Objective(arch, "hs", form, sample, indices, loss_rows)
