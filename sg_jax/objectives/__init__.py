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
    form: str        # "sg" (target predicts contexts), "sgc" (contexts predict target), "cbow"
    sample: Callable[[jax.Array, Batch, Any], Any]
    indices: Callable[[Batch, Any, Any], tuple[jax.Array, jax.Array | None]]
    loss_rows: Callable[[jax.Array, jax.Array, Batch, Any, Any], jax.Array]


ARCHS = ("sg", "cbow")
SG_FORMS = ("target", "context")
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


def get_objective(arch: str = "sg", name: str = "ns", *, negative: int = 5, share: str = "none",
                  sg_form: str = "target") -> Objective:
    """The Objective for an architecture and an objective name.

    sg_form (skip-gram only): which side of a (target, context) pair feeds the input vector.
    "target": the textbook form, h = W[target] predicts each of its C contexts (one softmax over
    the vocabulary serves all C). "context": the word2vec C tool's and gensim's form, each
    context's input vector predicts the target, so the C predictions of a group share one output
    word (and, with shared negatives, its noise words). With a symmetric window both sum the
    same loss over the same multiset of pairs; they group the pairs differently.
    """
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    if sg_form not in SG_FORMS:
        raise ConfigError(f"unknown skip-gram form {sg_form!r}; choose one of {', '.join(SG_FORMS)}")
    form = "cbow" if arch == "cbow" else ("sg" if sg_form == "target" else "sgc")
    if name == "softmax":
        from sg_jax.objectives import softmax

        return softmax.make(arch, form)
    if name == "hs":
        from sg_jax.objectives import hierarchical

        return hierarchical.make(arch, form)
    from sg_jax.objectives import negative as negative_mod

    return negative_mod.make(arch, form, negative=negative, share=share)


def input_indices(form: str, batch: Batch) -> jax.Array:
    """Rows of w_in a batch reads: the targets (sg) or every context slot (sgc, cbow), flat."""
    return batch.targets if form == "sg" else batch.contexts.reshape(-1)


def predicted_words(form: str, batch: Batch) -> jax.Array:
    """int [B, P]: the words whose output vectors the group predicts."""
    return batch.contexts if form == "sg" else batch.targets[:, None]


def hidden_and_predictions(form: str, in_rows: jax.Array, batch: Batch):
    """The hidden vectors of a group and what each one predicts.

    Returns h [B, H, N], predicted int [B, P], weight [B, H, P] (float, 0 for padding): hidden
    vector h[b, i] predicts word predicted[b, j] with weight weight[b, i, j].
    sg:   H = 1, h = W[target];           P = C contexts, weight = mask
    sgc:  H = C, h = W[context_c];        P = 1, the target, weight = mask
    cbow: H = 1, h = mean of the contexts; P = 1, the target, weight 0 if there is no context
    """
    mask = batch.mask.astype(in_rows.dtype)
    predicted = predicted_words(form, batch)
    if form == "sg":
        return in_rows[:, None, :], predicted, mask[:, None, :]
    B, C = batch.contexts.shape
    rows = in_rows.reshape(B, C, -1)
    if form == "sgc":
        return rows, predicted, mask[:, :, None]
    count = jnp.sum(mask, axis=1)
    h = jnp.einsum("bc,bcn->bn", mask, rows) / jnp.maximum(count, 1.0)[:, None]
    return h[:, None, :], predicted, (count > 0).astype(in_rows.dtype)[:, None, None]
