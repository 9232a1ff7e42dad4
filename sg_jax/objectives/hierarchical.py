"""Hierarchical softmax over the Huffman tree (Morin & Bengio 2005; Mikolov et al. 2013b).

The probability of word w given h is a product over the inner nodes n(w, l) on w's path,

    p(w | h) = prod_l sigma((1 - 2 code_l) * v'_{n(w,l)} . h),

so E = -log p(w | h) = sum_l softplus(-(1 - 2 code_l) * v'_{n(w,l)} . h): O(log V) per
prediction instead of O(V). `tables` is a `HuffmanTree` of device arrays; w_out holds the V - 1
inner nodes. The root is on every path, so a large batch sums many gradients into its row: the
default duplicate-row cap (64) bounds that step.

The hand derivation, for inner nodes n_l on w's path with codes d_l:

    e_l = sigma(v'_{n_l} . h) - (1 - d_l)
    dE/dv'_{n_l} = e_l * h,      dE/dh = sum_l e_l v'_{n_l}
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sg_jax.architectures import Batch, hidden_and_predictions, input_indices, predicted_words
from sg_jax.huffman import build_huffman
from sg_jax.model import Params
from sg_jax.objectives.base import Objective, ObjectiveSpec, register, sampled_grads, sigmoid


def hierarchical_grads(params: Params, batch: Batch, tree, form: str = "target") -> Params:
    """The derivation's dE/dParams (no automatic differentiation)."""
    h, predicted, weight = hidden_and_predictions(form, params.w_in[input_indices(form, batch)], batch)
    B, H, _ = h.shape
    nodes = tree.points[predicted].reshape(B, -1)                       # [B, P*L]
    codes = tree.codes[predicted].reshape(B, -1).astype(h.dtype)
    on_path = tree.mask[predicted].astype(h.dtype)                      # [B, P, L]
    valid = (weight[..., None] * on_path[:, None]).reshape(B, H, -1)    # [B, H, P*L]
    s = jnp.einsum("bhn,bmn->bhm", h, params.w_out[nodes])
    err = valid * (sigmoid(s) - (1.0 - codes[:, None, :]))              # e_l = sigma(x) - (1 - d_l)
    return sampled_grads(form, params, batch, h, nodes, err)


def make(form: str, options=None) -> Objective:
    cbow_update = getattr(options, "cbow_update", "mean")

    def sample(key, batch: Batch, tree):
        return None

    def indices(batch: Batch, aux, tree):
        return input_indices(form, batch), tree.points[predicted_words(form, batch)].reshape(-1)

    def loss_rows(in_rows, out_rows, batch: Batch, aux, tree):
        h, predicted, weight = hidden_and_predictions(form, in_rows, batch, cbow_update)
        B, P = predicted.shape
        L = tree.points.shape[1]
        rows = out_rows.reshape(B, P, L, -1)
        s = jnp.einsum("bhn,bpln->bhpl", h, rows)
        sign = 1.0 - 2.0 * tree.codes[predicted].astype(h.dtype)             # [B, P, L]
        w = weight[..., None] * tree.mask[predicted].astype(h.dtype)[:, None]  # [B, H, P, L]
        return jnp.sum(w * jax.nn.softplus(-sign[:, None] * s))

    def closed_form(params, batch, aux, tree):
        return hierarchical_grads(params, batch, tree, form)

    return Objective("hs", form, sample, indices, loss_rows, closed_form)


def tables(counts, options=None):
    return jax.tree.map(jnp.asarray, build_huffman(counts))


SPEC = register(ObjectiveSpec(
    name="hs", summary="hierarchical softmax over a Huffman tree (word2vec's -hs 1)", make=make, tables=tables,
    out_rows=lambda vocab_size: vocab_size - 1, dup_cap=64.0))
