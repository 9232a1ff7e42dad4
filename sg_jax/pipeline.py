"""The on-device data pipeline: subsampling, shuffling, dynamic windows and batches inside jit.

The encoded corpus lives on the device as two int32 vectors (word ids and the sentence each
token belongs to). Once per epoch `prepare_epoch` draws word2vec's subsampling (a token of word w
is kept with probability keep[w]), compacts the kept tokens (so, as in word2vec, the window spans
the surviving words) and orders the target positions (shuffled, or in corpus order). Each
training step then calls `make_batch`, which gathers B targets and their up to 2 * window
contexts within the same sentence, with the dynamic window b ~ U{1..window} of word2vec, as a
padded, masked `Batch`. Nothing crosses the host boundary but one integer per epoch (the number
of kept tokens), so a `lax.scan` over many steps runs without Python in the loop.

A corpus larger than device memory is cut into chunks of whole sentences (`chunk_bounds`) and
each chunk is sent, subsampled and consumed in turn.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sg_jax.architectures import Batch


class DeviceCorpus(NamedTuple):
    ids: jax.Array   # int32 [T] word ids
    sent: jax.Array  # int32 [T] sentence number of each token (non-decreasing)


class EpochData(NamedTuple):
    ids: jax.Array    # int32 [T] kept tokens first, in corpus order; the tail is padding
    sent: jax.Array   # int32 [T] their sentence numbers; -1 on the padding
    order: jax.Array  # int32 [T] target positions in visiting order; the first n are real
    n: jax.Array      # int32 []  number of kept tokens


def chunk_bounds(offsets: np.ndarray, max_tokens: int) -> list[tuple[int, int]]:
    """Split sentences (offsets [S + 1]) into runs of at most max_tokens tokens, as (start, end)
    token ranges. A sentence longer than max_tokens forms a chunk of its own."""
    offsets = np.asarray(offsets, dtype=np.int64)
    bounds, start = [], 0
    total = int(offsets[-1])
    while start < total:
        # last sentence boundary not past start + max_tokens (at least one sentence)
        j = int(np.searchsorted(offsets, start + max_tokens, side="right")) - 1
        end = int(offsets[j]) if offsets[j] > start else int(offsets[np.searchsorted(offsets, start, side="right")])
        bounds.append((start, end))
        start = end
    return bounds


def to_device(ids: np.ndarray, offsets: np.ndarray, start: int, end: int, pad_to: int | None = None) -> DeviceCorpus:
    """Tokens [start, end) of an encoded corpus (whole sentences) as a DeviceCorpus, padded to
    `pad_to` tokens (sentence -1, never kept) so that chunks of any length share one compile."""
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    first = int(np.searchsorted(offsets, start, side="right")) - 1
    last = int(np.searchsorted(offsets, end, side="left"))
    size = max(end - start, pad_to or 0)
    chunk_ids = np.zeros(size, dtype=np.int32)
    chunk_ids[: end - start] = ids[start:end]
    sent = np.full(size, -1, dtype=np.int32)
    sent[: end - start] = np.repeat(np.arange(last - first, dtype=np.int32), lengths[first:last])
    return DeviceCorpus(jnp.asarray(chunk_ids), jnp.asarray(sent))


@functools.partial(jax.jit, static_argnames=("shuffle", "span"))
def prepare_epoch(key: jax.Array, corpus: DeviceCorpus, keep_prob: jax.Array, shuffle: bool,
                  span: int = 0) -> EpochData:
    """Subsample, compact and order one epoch's tokens (one jitted call, O(T log T)).

    span = L > 0 (the span layout, `sg_jax.span`): `order` orders the epoch's spans of L
    consecutive kept tokens instead of its tokens (the first ceil(n / L) entries are real)."""
    T = corpus.ids.shape[0]
    k_keep, k_order = jax.random.split(key)
    keep = (jax.random.uniform(k_keep, (T,)) < keep_prob[corpus.ids]) & (corpus.sent >= 0)
    n = jnp.sum(keep, dtype=jnp.int32)
    (pos,) = jnp.nonzero(keep, size=T, fill_value=0)
    real = jnp.arange(T) < n
    ids = jnp.where(real, corpus.ids[pos], 0)
    sent = jnp.where(real, corpus.sent[pos], -1)
    if span and shuffle:  # order the ceil(T / L) spans only; the entries after them are never real
        S = -(-T // span)
        spans = jnp.argsort(jnp.where(jnp.arange(S) < (n + span - 1) // span, jax.random.uniform(k_order, (S,)), 2.0))
        order = jnp.concatenate([spans.astype(jnp.int32), jnp.arange(S, T, dtype=jnp.int32)])
    elif shuffle:
        order = jnp.argsort(jnp.where(real, jax.random.uniform(k_order, (T,)), 2.0)).astype(jnp.int32)
    else:
        order = jnp.arange(T, dtype=jnp.int32)
    return EpochData(ids, sent, order, n)


def window_offsets(window: int) -> np.ndarray:
    """The 2 * window context offsets -window..-1, 1..window."""
    return np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)]).astype(np.int32)


def make_batch(epoch: EpochData, step: jax.Array, key: jax.Array, *, batch_size: int, window: int,
               dynamic: bool, slots: int | None = None) -> Batch:
    """Targets order[step*B : (step+1)*B] with their contexts; padding targets have no context.

    slots: context offsets looked at on each side (default `window`). A window longer than every
    sentence needs only (longest sentence - 1) slots: the pairs are the same, the memory is not.
    window may be a traced integer when `slots` is given (runs of several windows trained together
    share the widest run's slots; the offsets beyond a run's window are masked out).
    """
    T = epoch.ids.shape[0]
    i = step * batch_size + jnp.arange(batch_size)
    real = i < epoch.n
    p = epoch.order[jnp.minimum(i, T - 1)]
    reach = slots if not isinstance(window, int) else min(window, slots or window)
    offs = jnp.asarray(window_offsets(reach))
    if dynamic:  # word2vec: effective window b uniform in 1..window, per target
        b = jax.random.randint(key, (batch_size,), 1, window + 1)
    else:
        b = jnp.full((batch_size,), window)
    q = p[:, None] + offs[None, :]
    qc = jnp.clip(q, 0, T - 1)
    mask = (real[:, None] & (q >= 0) & (q < T) & (jnp.abs(offs)[None, :] <= b[:, None])
            & (epoch.sent[qc] == epoch.sent[p][:, None]))
    return Batch(epoch.ids[p], epoch.ids[qc], mask)


def make_packed_batches(epoch: EpochData, step: jax.Array, key: jax.Array, *, batch_size: int, window: int,
                        slots: int | None = None) -> tuple[Batch, ...]:
    """The step's targets in `window` sub-batches without window padding: sub-batch b (1..window)
    holds about batch_size / window targets whose dynamic window is b, with 2b context slots, so
    the step gathers and scatters the contexts a target can have (B (window + 1) slots instead of
    2 B window).

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
        real = i < epoch.n
        p = epoch.order[jnp.minimum(i, T - 1)]
        offs = jnp.asarray(window_offsets(min(b, reach)))
        q = p[:, None] + offs[None, :]
        qc = jnp.clip(q, 0, T - 1)
        mask = real[:, None] & (q >= 0) & (q < T) & (epoch.sent[qc] == epoch.sent[p][:, None])
        batches.append(Batch(epoch.ids[p], epoch.ids[qc], mask))
    return tuple(batches)


def as_pairs(batch: Batch) -> Batch:
    """The same (target, context) pairs as a batch of one context each (C = 1)."""
    B, C = batch.contexts.shape
    return Batch(jnp.repeat(batch.targets, C), batch.contexts.reshape(B * C, 1), batch.mask.reshape(B * C, 1))
