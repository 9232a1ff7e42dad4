"""Training objectives: pure losses over the rows of the two tables that a batch touches.

Every objective is written once, as a loss over *gathered rows*:

    in_idx, out_idx = obj.indices(batch, aux, tables)       # flat int32 index vectors
    loss = obj.loss_rows(w_in[in_idx], w_out[out_idx], batch, aux, tables)

`out_idx is None` means "all of w_out" (the exact softmax needs every output vector). The dense
loss `objective_loss(obj, params, ...)` is the same function composed with the gather, so
`jax.grad` of it gives the full-table gradient the textbook derives (the transpose of a gather
is a scatter-add), while the fast trainer differentiates `loss_rows` directly and scatters the
row updates back: O(batch x dim) work per step, never a dense V x N gradient.

A batch is a group of targets with their contexts (`Batch`); a batch of plain (target, context)
pairs is the special case C = 1. Losses are *sums* over the batch, so the learning rate is a
per-example step size as in word2vec.

`aux` holds what an objective samples per step (negatives), drawn by `obj.sample(key, ...)`
outside the differentiated function so the gradient checker can hold it fixed.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from sg_jax.errors import ConfigError


class Batch(NamedTuple):
    targets: jax.Array   # int32 [B]     the centre words
    contexts: jax.Array  # int32 [B, C]  their context words (padding: any valid id)
    mask: jax.Array      # bool  [B, C]  True where contexts[b, c] is a real context


class Objective(NamedTuple):
    """An (architecture, objective) pair as pure functions; see the module docstring."""

    arch: str        # "sg" or "cbow"
    name: str        # "softmax", "ns" or "hs"
    sample: Callable[[jax.Array, Batch, Any], Any]
    indices: Callable[[Batch, Any, Any], tuple[jax.Array, jax.Array | None]]
    loss_rows: Callable[[jax.Array, jax.Array, Batch, Any, Any], jax.Array]


ARCHS = ("sg", "cbow")
OBJECTIVES = ("softmax", "ns", "hs")
SHARING = ("none", "target", "batch")


def gather_rows(params, obj: Objective, batch: Batch, aux, tables):
    """(in_rows, out_rows): the rows of w_in and w_out that the batch touches."""
    in_idx, out_idx = obj.indices(batch, aux, tables)
    out_rows = params.w_out if out_idx is None else params.w_out[out_idx]
    return params.w_in[in_idx], out_rows


def objective_loss(params, obj: Objective, batch: Batch, aux=None, tables=None) -> jax.Array:
    """The loss as a function of the full Params (for jax.grad against the derivations)."""
    in_rows, out_rows = gather_rows(params, obj, batch, aux, tables)
    return obj.loss_rows(in_rows, out_rows, batch, aux, tables)


def n_examples(arch: str, batch: Batch) -> jax.Array:
    """What the loss sums over: (target, context) pairs for sg, targets with a context for cbow."""
    if arch == "sg":
        return jnp.sum(batch.mask)
    return jnp.sum(jnp.any(batch.mask, axis=1))


def get_objective(arch: str = "sg", name: str = "ns", *, negative: int = 5, share: str = "none") -> Objective:
    """The Objective for an architecture and an objective name."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    if name == "softmax":
        from sg_jax.objectives import softmax

        return softmax.make(arch)
    if name == "hs":
        from sg_jax.objectives import hierarchical

        return hierarchical.make(arch)
    from sg_jax.objectives import negative as negative_mod

    return negative_mod.make(arch, negative=negative, share=share)


def input_indices(arch: str, batch: Batch) -> jax.Array:
    """Rows of w_in a batch reads: the targets (sg) or every context slot (cbow), flat."""
    return batch.targets if arch == "sg" else batch.contexts.reshape(-1)


def hidden_and_predictions(arch: str, in_rows: jax.Array, batch: Batch):
    """The hidden vectors and what each one predicts.

    Returns h [B, N], predicted int32 [B, P], weight [B, P] (float, 0 for padding):
    sg:   h = w_in[target];             predicts its P = C contexts, weights = mask
    cbow: h = mean of the context rows; predicts its target (P = 1), weight 0 if no context
    """
    mask = batch.mask.astype(in_rows.dtype)
    if arch == "sg":
        return in_rows, batch.contexts, mask
    B, C = batch.contexts.shape
    rows = in_rows.reshape(B, C, -1)
    count = jnp.sum(mask, axis=1)
    h = jnp.einsum("bc,bcn->bn", mask, rows) / jnp.maximum(count, 1.0)[:, None]
    return h, batch.targets[:, None], (count > 0).astype(in_rows.dtype)[:, None]
