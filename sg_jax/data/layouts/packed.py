"""The packed layout: one sub-batch per drawn window b, with 2b context slots each.

The padded layout gives every target 2 x window slots although word2vec's dynamic window uses
b ~ U{1..window} of them on each side. Here a step deals its targets to `window` sub-batches, one
per b, so it gathers and scatters B (window + 1) slots instead of 2 B window. The sub-batches'
rows are gathered in one gather and updated in one scatter per table (`scoring`), and their
losses summed.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from sg_jax.architectures import Batch, largest_hidden_norm
from sg_jax.data.epoch import EpochData, context_mask, positions, window_offsets
from sg_jax.data.layouts.base import Layout, register


def make_packed_batches(epoch: EpochData, step: jax.Array, key: jax.Array, *, batch_size: int, window: int,
                        slots: int | None = None) -> tuple[Batch, ...]:
    """The step's targets in `window` sub-batches without window padding: sub-batch b (1..window)
    holds about batch_size / window targets whose dynamic window is b, with 2b context slots.

    Each target's window is still uniform over 1..window: the targets arrive in a random order
    (the epoch is shuffled) and a random permutation per step deals them to the sub-batches, so
    the windows are drawn without replacement within a step (exactly B / window of each) instead
    of independently.
    """
    T = epoch.ids.shape[0]
    reach = min(window, slots or window)
    deal = jax.random.permutation(key, batch_size)
    bounds = np.linspace(0, batch_size, window + 1).round().astype(int)
    batches = []
    for b in range(1, window + 1):
        j = deal[bounds[b - 1]:bounds[b]]
        i = step * batch_size + j
        p = epoch.order[jnp.minimum(i, T - 1)]
        offs = jnp.asarray(window_offsets(min(b, reach)))
        qc, context_sent = positions(epoch, p, offs)
        mask = context_mask(i < epoch.n, epoch.sent[p], context_sent, offs, None)
        batches.append(Batch(epoch.ids[p], epoch.ids[qc], mask))
    return tuple(batches)


def joined_scoring(obj, batches, auxes, tables):
    """(in indices, out indices, loss of the rows) of several sub-batches as one: their indices
    flattened and concatenated, so that a step gathers and scatters each table once."""
    parts = [obj.indices(b, a, tables) for b, a in zip(batches, auxes)]
    shapes = [(i.shape, o.shape) for i, o in parts]

    def cut(flat, which):
        out, start = [], 0
        for shape in shapes:
            n = math.prod(shape[which])
            out.append(flat[start:start + n].reshape(shape[which] + flat.shape[1:]))
            start += n
        return out

    def loss_of(rows):
        r_in, r_out = cut(rows[0], 0), cut(rows[1], 1)
        return sum(obj.loss_rows(i, o, b, a, tables) for i, o, b, a in zip(r_in, r_out, batches, auxes))

    in_idx = jnp.concatenate([i.reshape(-1) for i, _ in parts])
    out_idx = jnp.concatenate([o.reshape(-1) for _, o in parts])
    return in_idx, out_idx, loss_of


class Packed(Layout):
    name = "packed"
    summary = "one sub-batch per drawn window b with 2b slots: no window padding"

    def refusal(self, config, obj) -> str | None:
        clash = next((c for c, bad in (("dynamic_window=False", not config.dynamic_window),
                                       ("shuffle=False", not config.shuffle), ("pairs=True", config.pairs),
                                       (f"objective={config.objective} (it scores every output row)",
                                        obj.reads_every_output_row)) if bad), None)
        if clash:
            return (f"window_layout=packed needs the dynamic window, shuffled targets, target groups and a "
                    f"sampled objective; got {clash}")
        return None

    def make(self, config, obj, epoch, tables, step, k_window, k_sample, *, batch_size, slots, window):
        batches = make_packed_batches(epoch, step, k_window, batch_size=batch_size, window=config.window,
                                      slots=slots)
        keys = jax.random.split(k_sample, len(batches))
        return batches, tuple(obj.sample(k, b, tables) for k, b in zip(keys, batches))

    def scoring(self, obj, batch, aux, tables):
        return joined_scoring(obj, batch, aux, tables)

    def examples(self, obj, batch) -> jax.Array:
        return sum(super(Packed, self).examples(obj, b) for b in batch)

    def hidden_norm(self, obj, batch, in_rows):
        if obj.form != "cbow":
            return None
        sizes = [math.prod(b.contexts.shape) for b in batch]
        parts = jnp.split(in_rows, list(itertools.accumulate(sizes))[:-1])
        return jnp.max(jnp.stack([largest_hidden_norm(obj.form, r, b) for r, b in zip(parts, batch)]))

    def pads_exactly(self, config) -> bool:
        return False   # the sub-batches have the window's shapes


PACKED = register(Packed())
