"""Architectures: how a group of (target, contexts) becomes hidden vectors and predictions.

A batch is a group of targets with their contexts (`Batch`). An architecture's *form* says which
rows of W form the hidden vectors h and which words those vectors predict; every objective is
written once over that shape (`h [B, H, N]`, `predicted int [B, P]`, `weight [B, H, P]`):

    target   skip-gram as in the textbook: h = W[target] predicts each of its C contexts
             (H = 1, P = C; one softmax over the vocabulary serves all C)
    context  skip-gram as in the word2vec C tool and gensim: each context's vector W[c] predicts
             the target (H = C, P = 1), so the C predictions share one output word
    cbow     h = the mean of the context vectors predicts the target (H = 1, P = 1)

With a symmetric window `target` and `context` sum the same loss over the same multiset of pairs;
they group the pairs differently (which matters for shared noise words and for speed).

CBOW's backward pass has two conventions. `cbow_update="mean"` is the exact gradient of the loss:
each context row receives (1/C) dE/dh. `"sum"` is word2vec's and gensim's rule (cbow_mean=1): the
forward pass averages, and every context row receives the whole dE/dh, so the context vectors
move C times further than the gradient says (the output vectors are unaffected). It is not the
gradient of any loss, so the gradient checker skips it.

The registry `ARCHITECTURES` maps the names a Config uses ("sg", "cbow") to the form they train
and their word2vec default learning rate.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from sg_jax.errors import ConfigError


class Batch(NamedTuple):
    targets: jax.Array   # int32 [B]     the centre words
    contexts: jax.Array  # int32 [B, C]  their context words (padding: any valid id)
    mask: jax.Array      # bool  [B, C]  True where contexts[b, c] is a real context


SG_FORMS = ("target", "context")  # the forms skip-gram can train in (Config.sg_form)
CBOW_UPDATES = ("sum", "mean")    # CBOW's backward conventions (Config.cbow_update)

def input_indices(form: str, batch: Batch) -> jax.Array:
    """Rows of w_in a batch reads: the targets (target form) or every context slot, flat."""
    return batch.targets if form == "target" else batch.contexts.reshape(-1)


def predicted_words(form: str, batch: Batch) -> jax.Array:
    """int [B, P]: the words whose output vectors the group predicts."""
    return batch.contexts if form == "target" else batch.targets[:, None]


def hidden_and_predictions(form: str, in_rows: jax.Array, batch: Batch, cbow_update: str = "mean"):
    """The hidden vectors of a group and what each one predicts.

    Returns h [B, H, N], predicted int [B, P], weight [B, H, P] (float, 0 for padding): hidden
    vector h[b, i] predicts word predicted[b, j] with weight weight[b, i, j].
    """
    mask = batch.mask.astype(in_rows.dtype)
    predicted = predicted_words(form, batch)
    if form == "target":
        return in_rows[:, None, :], predicted, mask[:, None, :]
    B, C = batch.contexts.shape
    rows = in_rows.reshape(B, C, -1)
    if form == "context":
        return rows, predicted, mask[:, :, None]
    count = jnp.sum(mask, axis=1)
    h = context_means(in_rows, batch)
    if cbow_update == "sum":
        # forward: the mean; backward: d h / d row_c = 1 (word2vec's rule), not 1 / C
        total = jnp.einsum("bc,bcn->bn", mask, rows)
        h = total + jax.lax.stop_gradient(h - total)
    return h[:, None, :], predicted, (count > 0).astype(in_rows.dtype)[:, None, None]


def context_means(in_rows: jax.Array, batch: Batch) -> jax.Array:
    """[B, N]: each target's mean of its context rows (in_rows [B * C, N], read at the contexts);
    0 for a target without contexts."""
    B, C = batch.contexts.shape
    mask = batch.mask.astype(in_rows.dtype)
    count = jnp.sum(mask, axis=1)
    return jnp.einsum("bc,bcn->bn", mask, in_rows.reshape(B, C, -1)) / jnp.maximum(count, 1.0)[:, None]


def largest_hidden_norm(form: str, in_rows: jax.Array, batch: Batch) -> jax.Array | None:
    """The largest norm among a group's hidden vectors where they are not rows of W: CBOW's
    means of the contexts, which the output rows are scored against (the trust region's partner
    norm for W', `sg_jax.optim.trust`). None for skip-gram, whose hidden vectors are the rows of W
    that the step read. A mean is never longer than its longest row, and is usually shorter: rows
    pointing different ways partly cancel."""
    if form != "cbow":
        return None
    return longest_norm(context_means(in_rows, batch))


def longest_norm(vectors: jax.Array) -> jax.Array:
    """The largest norm among vectors [..., N]."""
    return jnp.sqrt(jnp.max(jnp.sum(vectors * vectors, axis=-1)))


def n_examples(form: str, batch: Batch) -> jax.Array:
    """What the loss sums over: (target, context) pairs for skip-gram, targets with a context for
    CBOW."""
    if form != "cbow":
        return jnp.sum(batch.mask)
    return jnp.sum(jnp.any(batch.mask, axis=-1))   # a target's contexts are the mask's last axis (any layout)


def route_input_grads(form: str, w_in: jax.Array, batch: Batch, grad_h: jax.Array) -> jax.Array:
    """The closed form of the backward pass into W: dE/dW from dE/dh [B, H, N] (exact gradient)."""
    g_in = jnp.zeros_like(w_in)
    N = grad_h.shape[-1]
    if form == "target":
        return g_in.at[batch.targets].add(grad_h[:, 0])
    if form == "context":   # h[b, c] is W[context c] itself
        return g_in.at[batch.contexts.reshape(-1)].add(grad_h.reshape(-1, N))
    mask = batch.mask.astype(grad_h.dtype)
    count = jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1.0)
    per_ctx = (mask / count)[..., None] * grad_h                        # [B, C, N] (H = 1 broadcasts)
    return g_in.at[batch.contexts.reshape(-1)].add(per_ctx.reshape(-1, N))


class Architecture(NamedTuple):
    name: str
    summary: str
    default_lr: float                 # word2vec's initial learning rate for it
    form: Callable[[str], str]        # resolved skip-gram form ("target"/"context") -> trained form


ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(arch: Architecture) -> Architecture:
    ARCHITECTURES[arch.name] = arch
    return arch


register_architecture(Architecture("sg", "skip-gram: a word predicts its context", 0.025, lambda sg_form: sg_form))
register_architecture(Architecture("cbow", "continuous bag of words: the context predicts the word", 0.05,
                                   lambda sg_form: "cbow"))


def get_architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]
