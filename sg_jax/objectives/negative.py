"""Negative sampling (Mikolov et al. 2013b, "Distributed Representations of Words and Phrases").

For a hidden vector h, a word w it should predict, and k noise words n_1..n_k drawn from the
unigram distribution raised to the power `noise_power` (word2vec: 3/4),

    E = -log sigma(v'_w . h) - sum_i log sigma(-v'_{n_i} . h),

with -log sigma(x) = softplus(-x) for stability. As in the word2vec C tool, a noise word equal to
the word being predicted is skipped (its term is masked out).

Noise words come from a table in which word j fills a share of the slots proportional to
count_j^power (word2vec's unigram table): one uniform integer per sample, O(1), inside jit.
`jax.random.categorical` would cost O(V) per sample.

Sharing of noise words (`share_negatives`):
  "none"   k fresh noise words for every (h, w) pair, as word2vec (per-pair estimator);
  "target" k noise words shared by the predictions of one target group (Ji et al. 2016 share
           noise within a window): fewer rows to move, the same expected gradient;
  "batch"  k noise words shared by the whole batch: the scores become one [B, N] x [N, k]
           matrix product. Every prediction of the batch adds its full gradient to the same k
           rows, so a step moves each of them by the sum of thousands of gradients: it diverges
           at word2vec's learning rate on a batch of 1,024 targets.
  "pool"   a pool of K = noise_pool noise words shared by each group of pool_group targets
           (consecutive in the batch; a span of the span layout), every prediction of the group
           scoring all K of them with weight k/K. Each term is then k/K times an unbiased draw, so
           the expected gradient is that of k per-pair noise words, and a pooled row receives
           (k/K) x (the group's predictions) gradients, not the whole batch's: the scores are
           matrix products (a group's hidden vectors times its pool) without the overshoot of
           "batch".

The hand derivation (sigma the logistic function), positive word w and noise words n_i:

    e_w = sigma(v'_w . h) - 1,   e_{n_i} = sigma(v'_{n_i} . h)
    dE/dv'_x = e_x * h,          dE/dh = sum_x e_x v'_x

`make_sampled` is the family this belongs to: a logistic loss on the true word against sampled
noise words, with an optional per-word shift of the scores (noise-contrastive estimation, see
nce.py, subtracts log(k q_w)).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

import sg_jax.data.layouts.span as span_layout
from sg_jax.architectures import Batch, hidden_and_predictions, input_indices, predicted_words
from sg_jax.data.layouts.base import POOL_GROUP
from sg_jax.errors import ConfigError
from sg_jax.model import Params
from sg_jax.objectives.base import Objective, ObjectiveSpec, register, sampled_grads, sigmoid

DEFAULT_TABLE_SIZE = 10_000_000
SHARING = ("none", "target", "batch", "pool")
DEFAULT_POOL = 64


def noise_weights(counts, power: float) -> np.ndarray:
    """float64 [V]: count^power, the unnormalised noise distribution. A negative power (gensim's
    negative ns_exponent: rare words drawn more often than frequent ones, Caselles-Dupre et al.
    2018) gives a word never counted weight 0, not infinity."""
    counts = np.asarray(counts, dtype=np.float64)
    return np.where(counts > 0, counts, np.inf) ** power if power < 0 else counts**power


def noise_table(counts, power: float = 0.75, size: int | None = None) -> np.ndarray:
    """word2vec's unigram table: int32[size], word j in about size * p_j slots, p ~ count^power.

    Slot i holds the word whose cumulative probability first exceeds (i + 0.5) / size, so every
    word with p_j >= 1 / size gets at least one slot.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size < 2:
        raise ConfigError(
            f"negative sampling needs a vocabulary of at least 2 words, got {counts.size}"
        )
    if np.any(counts < 0) or not np.any(counts > 0):
        raise ConfigError("negative sampling needs positive word counts")
    size = size or min(DEFAULT_TABLE_SIZE, max(1_000_000, 100 * counts.size))
    p = noise_weights(counts, power)
    cdf = np.cumsum(p / p.sum())
    cdf[-1] = 1.0
    slots = (np.arange(size, dtype=np.float64) + 0.5) / size
    table = np.searchsorted(cdf, slots, side="right").astype(np.int32)
    if table.min() == table.max():
        raise ConfigError("the vocabulary is too small for the negative table: all noise words are one word")
    return table


def sample_negatives(key: jax.Array, table: jax.Array, shape) -> jax.Array:
    """Noise word ids int32[shape], drawn from the unigram table."""
    slots = jax.random.randint(key, shape, 0, table.shape[0])
    return table[slots]


def _options(options) -> tuple[int, str, int]:
    """(k, sharing, noise words drawn per draw site): the pool's K for "pool", else k."""
    k = getattr(options, "negative", 5)
    share = getattr(options, "share_negatives", "none")
    if k < 1:
        raise ConfigError(f"negative must be >= 1, got {k}")
    if share not in SHARING:
        raise ConfigError(f"unknown negative sharing {share!r}; choose one of {', '.join(SHARING)}")
    pool = getattr(options, "noise_pool", DEFAULT_POOL)
    if share == "pool" and pool < 1:
        raise ConfigError(f"noise_pool must be >= 1, got {pool}")
    return k, share, pool if share == "pool" else k


def make_sampled(name: str, form: str, options, *, noise: Callable, shift: Callable | None = None,
                 skip_hits: bool = True) -> Objective:
    """A logistic loss of the true word against k sampled noise words.

    noise(tables) -> the unigram table to draw from; shift(tables) -> float [V] subtracted from
    every score (None: no shift); skip_hits: mask out a noise word equal to the predicted word.
    """
    k, share, drawn = _options(options)
    scale = k / drawn          # the pool's weight k/K on every noise term (1 otherwise)
    group = getattr(options, "pool_group", None) or POOL_GROUP   # targets sharing one pool
    cbow_update = getattr(options, "cbow_update", "mean")

    def sample(key, batch: Batch, tables):
        B, C = batch.contexts.shape
        H, P = {"target": (1, C), "context": (C, 1), "cbow": (1, 1)}[form]
        shape = {"none": (B, H, P, k), "target": (B, k), "batch": (k,), "pool": (-(-B // group), drawn)}[share]
        return sample_negatives(key, noise(tables), shape)

    def per_target(negs, B):
        """int [B, k or K]: the noise words target b's predictions share (shared modes)."""
        if share == "target":
            return negs
        if share == "pool":
            return jnp.repeat(negs, group, axis=0)[:B]
        return jnp.broadcast_to(negs, (B, drawn))

    def indices(batch: Batch, negs, tables):
        out_idx = jnp.concatenate([predicted_words(form, batch).reshape(-1), negs.reshape(-1)])
        return input_indices(form, batch), out_idx

    def hits(negs, predicted, dtype):
        """[B, P, k] (shared) or [B, H, P, k] (per pair): 1 where a noise term counts."""
        if share == "none":
            return (negs != predicted[:, None, :, None]).astype(dtype) if skip_hits else 1.0
        noise_ids = per_target(negs, predicted.shape[0])
        if not skip_hits:
            return jnp.ones((*predicted.shape, drawn), dtype)
        return (noise_ids[:, None, :] != predicted[:, :, None]).astype(dtype)

    def shifted(scores, ids, tables):
        return scores if shift is None else scores - shift(tables)[ids]

    def loss_rows(in_rows, out_rows, batch: Batch, negs, tables):
        h, predicted, weight = hidden_and_predictions(form, in_rows, batch, cbow_update)
        B, H, _ = h.shape
        P = predicted.shape[1]
        pos_rows = out_rows[: B * P].reshape(B, P, -1)
        neg_rows = out_rows[B * P :]
        s_pos = shifted(jnp.einsum("bhn,bpn->bhp", h, pos_rows), predicted[:, None, :], tables)
        loss = jnp.sum(weight * jax.nn.softplus(-s_pos))
        if share == "none":
            s_neg = shifted(jnp.einsum("bhn,bhpkn->bhpk", h, neg_rows.reshape(B, H, P, k, -1)), negs, tables)
            w_neg = weight[..., None] * hits(negs, predicted, h.dtype)
        else:
            # noise word j of group b serves every prediction of the group (except one equal to it)
            noise_ids = per_target(negs, B)
            if share == "target":
                s_neg = jnp.einsum("bhn,bkn->bhk", h, neg_rows.reshape(B, k, -1))
            elif share == "pool":  # each group of targets times its own pool
                G = negs.shape[0]
                hg = jnp.pad(h, ((0, G * group - B), (0, 0), (0, 0))).reshape(G, group, H, -1)
                s_neg = jnp.einsum("glhn,gkn->glhk", hg, neg_rows.reshape(G, drawn, -1)).reshape(G * group, H, drawn)[:B]
            else:
                s_neg = jnp.einsum("bhn,kn->bhk", h, neg_rows)
            s_neg = shifted(s_neg, noise_ids[:, None, :], tables)
            w_neg = jnp.einsum("bhp,bpk->bhk", weight, hits(negs, predicted, h.dtype))
        return loss + scale * jnp.sum(w_neg * jax.nn.softplus(s_neg))

    def closed_form(params: Params, batch: Batch, negs, tables) -> Params:
        """e_w = sigma(s_w) - 1, e_n = sigma(s_n) on the (shifted) scores; see the module docstring."""
        h, predicted, weight = hidden_and_predictions(form, params.w_in[input_indices(form, batch)], batch)
        B, H, _ = h.shape
        P = predicted.shape[1]
        s_pos = shifted(jnp.einsum("bhn,bpn->bhp", h, params.w_out[predicted]), predicted[:, None, :], tables)
        e_pos = weight * (sigmoid(s_pos) - 1.0)
        if share == "none":
            # every (h, predicted) pair has its own k noise words: one output row per (p, noise)
            s_neg = shifted(jnp.einsum("bhn,bhpkn->bhpk", h, params.w_out[negs]), negs, tables)
            err_neg = weight[..., None] * hits(negs, predicted, h.dtype) * sigmoid(s_neg)   # [B, H, P, k]
            rows = jnp.concatenate([predicted, negs.reshape(B, H * P * k)], axis=1)
            # hidden vector i touches only its own noise rows: spread into a block layout
            err_blocks = jnp.einsum("bhpk,hg->bhgpk", err_neg, jnp.eye(H, dtype=h.dtype)).reshape(B, H, H * P * k)
            return sampled_grads(form, params, batch, h, rows, jnp.concatenate([e_pos, err_blocks], axis=2))
        noise_ids = per_target(negs, B)
        valid = scale * jnp.einsum("bhp,bpk->bhk", weight, hits(negs, predicted, h.dtype))
        s_neg = shifted(jnp.einsum("bhn,bkn->bhk", h, params.w_out[noise_ids]), noise_ids[:, None, :], tables)
        rows = jnp.concatenate([predicted, noise_ids], axis=1)
        return sampled_grads(form, params, batch, h, rows, jnp.concatenate([e_pos, valid * sigmoid(s_neg)], axis=2))

    def span_indices(span, negs, tables):
        return span.ids.reshape(-1), jnp.concatenate([span_layout.targets(span), negs.reshape(-1)])

    def span_pairs(x_rows, out_rows, span, tables):
        """The pair part of a span loss, block by block (b targets against their b + 2R
        positions, the window's pairs a band of the product): (pairs [G J, b + 2R, b] the band's
        weights, the pair loss, x_blocks [G J, b + 2R, N], targets [G J, b])."""
        pairs, x_blocks = span_layout.block_pairs(x_rows, span)
        Q, _, b = pairs.shape
        t = span_layout.targets(span).reshape(Q, b)
        s_pos = jnp.einsum("qpn,qln->qpl", x_blocks, out_rows[:Q * b].reshape(Q, b, -1))
        loss = jnp.sum(pairs * jax.nn.softplus(-shifted(s_pos, t[:, None, :], tables)))
        return pairs, loss, x_blocks, t

    def span_loss(x_rows, out_rows, span, negs, tables):
        """loss_rows over spans (sg_jax.data.layouts.span): x_rows [G (L + 2R), N] the rows of the spans'
        positions, out_rows [G L + G K, N] the targets' then the spans' pools' output rows.

        The pair scores come from `span_pairs`. A noise word's score depends on the context's row
        alone, so each span's positions are scored once against its pool, one [L + 2R, N] x [N, K]
        product, each weighted by the pairs that use the position as a context (the padded layout
        scores it once per pair)."""
        G, L, C = span.mask.shape
        R, B, b = C // 2, G * L, span_layout.block_size(L)
        J = L // b
        pairs, loss, _, t = span_pairs(x_rows, out_rows, span, tables)
        # uses[g, p, k]: the pairs with context p whose target is not noise word k of the span's pool
        uses = jnp.sum(pairs, axis=2, keepdims=True)                                    # [G J, b + 2R, 1]
        if skip_hits:
            pool = jnp.repeat(negs, J, axis=0)                                           # [G J, K]
            uses = uses - jnp.einsum("qpl,qlk->qpk", pairs, (t[:, :, None] == pool[:, None, :]).astype(x_rows.dtype))
        else:
            uses = jnp.broadcast_to(uses, (G * J, b + C, drawn))
        uses = span_layout.unblock(uses.reshape(G, J, b + C, drawn), R, L)                # [G, L + 2R, K]
        s_neg = jnp.einsum("gpn,gkn->gpk", x_rows.reshape(G, L + C, -1), out_rows[B:].reshape(G, drawn, -1))
        return loss + scale * jnp.sum(uses * jax.nn.softplus(shifted(s_neg, negs[:, None, :], tables)))

    def span_loss_per_target(x_rows, out_rows, span, negs, tables):
        """span_loss with k noise words per target (share "target"): a block's b + 2R positions
        times the output rows of its b targets' k noise words each, one [b + 2R, N] x [N, b k]
        product, each score weighted by the pair (position, target) it belongs to."""
        pairs, loss, x_blocks, t = span_pairs(x_rows, out_rows, span, tables)
        Q, w, b = pairs.shape
        noise = negs.reshape(Q, b, k)
        hit = (noise != t[:, :, None]).astype(x_rows.dtype) if skip_hits else jnp.ones((Q, b, k), x_rows.dtype)
        weight = (pairs[:, :, :, None] * hit[:, None, :, :]).reshape(Q, w, b * k)
        s_neg = jnp.einsum("qpn,qmn->qpm", x_blocks, out_rows[Q * b:].reshape(Q, b * k, -1))
        s_neg = shifted(s_neg, noise.reshape(Q, 1, b * k), tables)
        return loss + jnp.sum(weight * jax.nn.softplus(s_neg))

    def span_cbow_loss(x_rows, out_rows, span, negs, tables):
        """loss_rows for CBOW over spans: each target's mean of its contexts (`span_layout.context_sums`,
        one band product per block) scored against the target's output row and its noise words':
        its span's pool ([L, N] x [N, K] per span) or its own k."""
        G, L, _ = span.mask.shape
        B = G * L
        sums, count = span_layout.context_sums(x_rows, span)
        h = sums / jnp.maximum(count, 1.0)[:, None]
        if cbow_update == "sum":   # forward: the mean; backward: d h / d row_c = 1 (word2vec's rule)
            h = sums + jax.lax.stop_gradient(h - sums)
        weight = (count > 0).astype(h.dtype)
        t = span_layout.targets(span)
        s_pos = shifted(jnp.einsum("bn,bn->b", h, out_rows[:B]), t, tables)
        if share == "pool":
            s_neg = jnp.einsum("gln,gkn->glk", h.reshape(G, L, -1), out_rows[B:].reshape(G, drawn, -1)).reshape(B, drawn)
            noise_ids = jnp.repeat(negs, L, axis=0)                                      # [B, K]
        else:
            s_neg = jnp.einsum("bn,bkn->bk", h, out_rows[B:].reshape(B, drawn, -1))
            noise_ids = negs
        w_neg = weight[:, None] * ((noise_ids != t[:, None]).astype(h.dtype) if skip_hits else 1.0)
        return (jnp.sum(weight * jax.nn.softplus(-s_pos))
                + scale * jnp.sum(w_neg * jax.nn.softplus(shifted(s_neg, noise_ids, tables))))

    scorers = {}
    if form == "cbow" and share in ("pool", "target"):
        scorers[span_layout.SpanBatch] = (span_indices, span_cbow_loss)
    elif form == "context" and share == "pool":
        scorers[span_layout.SpanBatch] = (span_indices, span_loss)
    elif form == "context" and share == "target":
        scorers[span_layout.SpanBatch] = (span_indices, span_loss_per_target)
    return Objective(name, form, sample, indices, loss_rows, closed_form, MappingProxyType(scorers))


def make(form: str, options=None) -> Objective:
    return make_sampled("ns", form, options, noise=lambda table: table)


def tables(counts, options=None):
    return jnp.asarray(noise_table(counts, getattr(options, "noise_power", 0.75)))


SPEC = register(ObjectiveSpec(
    name="ns", summary="negative sampling (word2vec's -negative k)", make=make, tables=tables,
    options=("negative", "share_negatives", "noise_pool", "pool_group", "noise_power")))
