"""The span layout: a step's targets are runs (spans) of consecutive kept tokens.

word2vec and gensim walk the corpus in order; the padded layout instead visits the targets of an
epoch in a random order, so a step gathers a separate row of W for every (target, context slot):
B x 2 x window rows, about half of them padding. When L targets are the consecutive positions
start .. start + L - 1, their contexts all lie in start - R .. start + L + R - 1 (R the context
slots per side), so the step gathers each position's row once, L + 2R rows per span, and its
gradients are scattered once per position too. A step takes G = B / L spans (`span_length`, 64)
from random places of the epoch: one long run of text per step would repeat a document's words
in one summed step.

The objective scores a span (`Objective.scorer(SpanBatch)`; negative sampling and NCE in
word2vec's form, see `sg_jax.objectives.negative`) as matrix products: the pair scores block by block (`blocks`:
b = 16 targets against their b + 2R positions, the window's pairs a band of the product, `band`),
and with pooled noise (`share_negatives pool`) each position once against its span's pool, since
a noise word's score depends on the context's row alone. The loss is exactly the padded layout's
over the same pairs and noise words (`as_batch` gives that batch; tests compare the two in
float64).

CBOW is scored over spans too: each target's sum of its context rows is the band of a block
times the block's position rows (`context_sums`), one product where the padded layout gathers a
row per (target, context slot), and its mean is scored against the target's output row and the
noise words' (its span's pool, or its own k).

The dynamic window, sentence boundaries and the end of the epoch are masks, as in the padded
layout. `shuffle` visits the epoch's spans (not its targets) in a random order; without it the
spans come in corpus order, as in word2vec.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sg_jax.architectures import Batch, longest_norm
from sg_jax.data.epoch import context_mask, context_reach, draw_windows, window_offsets
from sg_jax.data.layouts.base import Layout, register


class SpanBatch(NamedTuple):
    ids: jax.Array    # int32 [G, L + 2R] words at positions start_g - R .. start_g + L + R - 1 of each span
    mask: jax.Array   # bool  [G, L, 2R]  target l of span g and its context at offset window_offsets(R)[c] form a pair


def reach_of(span: SpanBatch) -> int:
    return span.mask.shape[-1] // 2


def targets(span: SpanBatch) -> jax.Array:
    """int32 [G * L]: the spans' target words, span after span."""
    L, R = span.mask.shape[1], reach_of(span)
    return span.ids[:, R:R + L].reshape(-1)


def contexts(rows: jax.Array, reach: int, length: int) -> jax.Array:
    """[G, L, 2R, ...]: the rows (or ids) of every (target, offset) context, as shifted slices of
    the spans' rows [G, L + 2R, ...]."""
    return jnp.stack([rows[:, reach + o: reach + o + length] for o in window_offsets(reach)], axis=2)


# targets per block of the pair scores: a block's [BLOCK + 2R] positions times its [BLOCK] targets, so
# a target's scores cost BLOCK + 2R dot products (most of them outside the window and weighted 0)
BLOCK = 16


def block_size(length: int) -> int:
    return BLOCK if length % BLOCK == 0 else length


def blocks(rows: jax.Array, reach: int, length: int) -> jax.Array:
    """[G, J, b + 2R, ...]: the spans' rows [G, L + 2R, ...] cut into J = L / b overlapping blocks
    of b = block_size(L) targets and their 2R neighbours."""
    b = block_size(length)
    return jnp.stack([rows[:, j * b: j * b + b + 2 * reach] for j in range(length // b)], axis=1)


def unblock(values: jax.Array, reach: int, length: int) -> jax.Array:
    """[G, L + 2R, ...]: per-block values [G, J, b + 2R, ...] summed back onto the spans'
    positions (the transpose of `blocks`)."""
    G, J, w = values.shape[:3]
    b = w - 2 * reach
    total = jnp.zeros((G, length + 2 * reach, *values.shape[3:]), values.dtype)
    for j in range(J):
        total = total.at[:, j * b: j * b + w].add(values[:, j])
    return total


def band(pair_weights: jax.Array) -> jax.Array:
    """[G, L + 2R, L]: pair_weights [G, L, 2R] placed at (context position, target): entry
    (g, l + R + o_c, l) holds pair_weights[g, l, c], every other entry is 0. With it a span's pair
    scores are one product of its position rows with its target rows."""
    L, C = pair_weights.shape[1:]
    R = C // 2
    place = np.zeros((C, L + C, L), np.float32)       # place[c, l + R + o_c, l] = 1
    for c, o in enumerate(window_offsets(R)):
        place[c, np.arange(L) + R + o, np.arange(L)] = 1.0
    return jnp.einsum("glc,cpl->gpl", pair_weights, jnp.asarray(place, pair_weights.dtype))


def block_pairs(rows: jax.Array, span: SpanBatch) -> tuple[jax.Array, jax.Array]:
    """(pairs [G J, b + 2R, b], row_blocks [G J, b + 2R, ...]): the spans' position rows
    [G (L + 2R), ...] cut into blocks (`blocks`) and each block's pairs as a band (`band`):
    pairs[q, p, l] is 1 where position p of block q is a context of its target l."""
    G, L, C = span.mask.shape
    row_blocks = blocks(rows.reshape(G, L + C, *rows.shape[1:]), C // 2, L)
    row_blocks = row_blocks.reshape(-1, *row_blocks.shape[2:])
    return band(span.mask.astype(rows.dtype).reshape(row_blocks.shape[0], -1, C)), row_blocks


def context_sums(rows: jax.Array, span: SpanBatch) -> tuple[jax.Array, jax.Array]:
    """(sums [G L, N], count [G L]): each target's sum of its context rows and how many contexts
    it has, from the spans' position rows [G (L + 2R), N]: one band product per block, where the
    padded layout gathers a row per (target, context slot)."""
    pairs, row_blocks = block_pairs(rows, span)
    sums = jnp.einsum("qpl,qpn->qln", pairs, row_blocks)
    return sums.reshape(-1, rows.shape[-1]), jnp.sum(pairs, axis=1).reshape(-1)


def context_means(rows: jax.Array, span: SpanBatch) -> jax.Array:
    """[G L, N]: each target's mean of its context rows (CBOW's hidden vector; 0 without contexts),
    as `architectures.context_means` over `as_batch(span)`."""
    sums, count = context_sums(rows, span)
    return sums / jnp.maximum(count, 1.0)[:, None]


def position_uses(span: SpanBatch) -> jax.Array:
    """int32 [G, L + 2R]: the pairs that use each position of the spans as their context (the
    transpose of `contexts` applied to the mask): the padded layout gathers a position's word this
    many times where the span layout reads its row once."""
    R = reach_of(span)
    mask = span.mask.astype(jnp.int32)
    return sum(jnp.pad(mask[:, :, c], ((0, 0), (R + o, R - o))) for c, o in enumerate(window_offsets(R)))


def as_batch(span: SpanBatch) -> Batch:
    """The same pairs in the padded layout: targets [G L], contexts [G L, 2R], mask [G L, 2R]."""
    G, L, C = span.mask.shape
    ctx = contexts(span.ids, reach_of(span), L)
    return Batch(targets(span), ctx.reshape(G * L, C), span.mask.reshape(G * L, C))


def spans_per_step(batch_size: int, length: int) -> tuple[int, int]:
    """(G, L): a step of batch_size targets as G spans of L = min(length, batch_size) targets
    (batch_size is a multiple of L: see step.effective_batch_size)."""
    L = min(length, batch_size)
    return max(1, batch_size // L), L


def make_span_batch(epoch, step: jax.Array, key: jax.Array, *, batch_size: int, length: int, window,
                    dynamic: bool, slots: int | None = None) -> SpanBatch:
    """Step `step`'s G = batch_size / L spans: spans epoch.order[step * G + g] of the epoch's kept
    tokens (span i holds positions i L .. i L + L - 1; `epoch.prepare_epoch` orders them), each
    target with word2vec's dynamic window b ~ U{1..window} (drawn from `key` as the padded layout
    draws it) and its contexts within the same sentence.

    slots and a traced `window` as in the padded layout's `make_batch`."""
    T = epoch.ids.shape[0]
    G, L = spans_per_step(batch_size, length)
    R = context_reach(window, slots)
    first = epoch.order[jnp.minimum(step * G + jnp.arange(G), T - 1)] * L                   # [G]
    pos = first[:, None] - R + jnp.arange(L + 2 * R)[None, :]                                # [G, L + 2R]
    inside = (pos >= 0) & (pos < T)
    pc = jnp.clip(pos, 0, T - 1)
    sent = jnp.where(inside, epoch.sent[pc], -1)
    b = draw_windows(key, G * L, window, dynamic).reshape(G, L)
    offs = jnp.asarray(window_offsets(R))
    t_sent = sent[:, R:R + L]
    real = (pos[:, R:R + L] < epoch.n) & (t_sent >= 0)
    return SpanBatch(epoch.ids[pc], context_mask(real, t_sent, contexts(sent, R, L), offs, b))


# the layout rules (Config.layout_rules) from which window_layout auto trains CBOW on spans
CBOW_SINCE_RULES = 2


class Span(Layout):
    name = "span"
    summary = "runs of span_length consecutive tokens, each position's row read once"
    batch_type = SpanBatch
    auto_sharing = "pool"
    auto_rank = 1   # chosen where it applies, with pooled noise

    def refusal(self, config, obj) -> str | None:
        if config.pairs or obj.scorer(SpanBatch) is None:
            got = "pairs=True" if config.pairs else (
                f"arch={config.arch}, objective={config.objective}, sg_form={config.resolved_sg_form}, "
                f"share_negatives={config.sharing}")
            return (f"window_layout=span needs skip-gram in word2vec's form (sg_form context) or CBOW, with a "
                    f"sampled objective, share_negatives pool or target, and target groups; got {got}")
        if config.pool_group not in (None, config.span_length):
            return (f"pool_group {config.pool_group} cannot be used with window_layout span: a span is the group "
                    f"that shares a pool, of span_length {config.span_length} targets (drop --pool-group)")
        return None

    def pool_group(self, config) -> int:
        return config.span_length   # a span shares one pool

    def chosen_automatically(self, config) -> bool:
        """CBOW joined the automatic choice with layout rules 2; runs saved before keep the padded layout."""
        return config.form != "cbow" or config.layout_rules >= CBOW_SINCE_RULES

    def epoch_unit(self, config, batch_size: int) -> int:
        return spans_per_step(batch_size, config.span_length)[1]

    def batch_size(self, config, batch: int) -> int:
        G, L = spans_per_step(batch, config.span_length)   # whole spans
        return G * L

    def make(self, config, obj, epoch, tables, step, k_window, k_sample, *, batch_size, slots, window):
        span = make_span_batch(epoch, step, k_window, batch_size=batch_size, length=config.span_length,
                               window=window, dynamic=config.dynamic_window, slots=slots)
        return span, obj.sample(k_sample, as_batch(span), tables)

    def hidden_norm(self, obj, batch, in_rows):
        """CBOW's hidden vectors are its means of contexts (skip-gram's are the rows read: None)."""
        if obj.form != "cbow":
            return None
        return longest_norm(context_means(in_rows, batch))

    def multiplicity(self, obj, batch):
        """The span scorers read W at the spans' positions (each used by `position_uses` pairs)
        and W' once per target and noise draw, as the padded layout does."""
        return position_uses(batch).reshape(-1), None


SPAN = register(Span())
