"""The padded layout: each target with 2 x window context slots, masked where the dynamic window,
the sentence or the epoch ends (about half of them at word2vec's b ~ U{1..window}).

A step takes B targets of the epoch's visiting order (shuffled, or in corpus order) and gathers a
row of W for every (target, slot): the simplest layout, the one every objective and every
architecture can train, and the reference the other layouts are tested against. With `pairs`, the
same pairs come as a batch of one context each.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sg_jax.architectures import Batch
from sg_jax.data.epoch import EpochData, context_mask, context_reach, draw_windows, positions, window_offsets
from sg_jax.data.layouts.base import Layout, register


def make_batch(epoch: EpochData, step: jax.Array, key: jax.Array, *, batch_size: int, window,
               dynamic: bool, slots: int | None = None) -> Batch:
    """Targets order[step*B : (step+1)*B] with their contexts; padding targets have no context.

    slots: context offsets looked at on each side (default `window`, see `epoch.context_reach`); window
    may be a traced integer when `slots` is given (the offsets beyond a run's window are masked).
    """
    T = epoch.ids.shape[0]
    i = step * batch_size + jnp.arange(batch_size)
    real = i < epoch.n
    p = epoch.order[jnp.minimum(i, T - 1)]
    offs = jnp.asarray(window_offsets(context_reach(window, slots)))
    b = draw_windows(key, batch_size, window, dynamic)
    qc, context_sent = positions(epoch, p, offs)
    return Batch(epoch.ids[p], epoch.ids[qc], context_mask(real, epoch.sent[p], context_sent, offs, b))


def as_pairs(batch: Batch) -> Batch:
    """The same (target, context) pairs as a batch of one context each (C = 1)."""
    B, C = batch.contexts.shape
    return Batch(jnp.repeat(batch.targets, C), batch.contexts.reshape(B * C, 1), batch.mask.reshape(B * C, 1))


class Padded(Layout):
    name = "padded"
    summary = "2 x window slots per target, about half of them masked padding"
    auto_rank = 0   # the fallback: it trains every objective and architecture

    def make(self, config, obj, epoch, tables, step, k_window, k_sample, *, batch_size, slots, window):
        batch = make_batch(epoch, step, k_window, batch_size=batch_size, window=window,
                           dynamic=config.dynamic_window, slots=slots)
        if config.pairs:
            batch = as_pairs(batch)
        return batch, obj.sample(k_sample, batch, tables)

    def pads_exactly(self, config) -> bool:
        return not config.pairs   # pairs have one slot each: a wider window makes more of them


PADDED = register(Padded())
