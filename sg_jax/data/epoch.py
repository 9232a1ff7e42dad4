"""The epoch on the device: subsampling, shuffling, and the window helpers every layout uses.

The encoded corpus lives on the device as two int32 vectors (word ids and the sentence each
token belongs to). Once per epoch `prepare_epoch` draws word2vec's subsampling (a token of word w
is kept with probability keep[w]), compacts the kept tokens (so, as in word2vec, the window spans
the surviving words) and orders the target positions (shuffled, or in corpus order). Each
training step then cuts its batch from it as the run's window layout says
(`sg_jax.data.layouts`), with the context offsets, dynamic window and masks defined here once.
Nothing crosses the host boundary but one integer per epoch (the number
of kept tokens), so a `lax.scan` over many steps runs without Python in the loop.

A corpus larger than device memory is cut into chunks of whole sentences (`chunk_bounds`) and
each chunk is read (`read_tokens`), sent, subsampled and consumed in turn, so that a run's memory
is bounded by its chunk, not by the corpus.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sg_jax.data.vocabulary import read_tokens


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
    first = int(np.searchsorted(offsets, start, side="right")) - 1
    last = int(np.searchsorted(offsets, end, side="left"))
    lengths = np.diff(read_tokens(offsets, first, last + 1).astype(np.int64))   # the chunk's sentences only
    size = max(end - start, pad_to or 0)
    chunk_ids = np.zeros(size, dtype=np.int32)
    chunk_ids[: end - start] = read_tokens(ids, start, end)
    sent = np.full(size, -1, dtype=np.int32)
    sent[: end - start] = np.repeat(np.arange(last - first, dtype=np.int32), lengths)
    return DeviceCorpus(jnp.asarray(chunk_ids), jnp.asarray(sent))


@functools.partial(jax.jit, static_argnames=("shuffle", "unit"))
def prepare_epoch(key: jax.Array, corpus: DeviceCorpus, keep_prob: jax.Array, shuffle: bool,
                  unit: int = 0) -> EpochData:
    """Subsample, compact and order one epoch's tokens (one jitted call, O(T log T)).

    unit = L > 0 (a layout whose steps read runs of L consecutive tokens, such as the span
    layout): `order` orders the epoch's runs of L kept tokens instead of its tokens (the first
    ceil(n / L) entries are real)."""
    T = corpus.ids.shape[0]
    k_keep, k_order = jax.random.split(key)
    keep = (jax.random.uniform(k_keep, (T,)) < keep_prob[corpus.ids]) & (corpus.sent >= 0)
    n = jnp.sum(keep, dtype=jnp.int32)
    (pos,) = jnp.nonzero(keep, size=T, fill_value=0)
    real = jnp.arange(T) < n
    ids = jnp.where(real, corpus.ids[pos], 0)
    sent = jnp.where(real, corpus.sent[pos], -1)
    if unit and shuffle:  # order the ceil(T / L) runs only; the entries after them are never real
        S = -(-T // unit)
        spans = jnp.argsort(jnp.where(jnp.arange(S) < (n + unit - 1) // unit, jax.random.uniform(k_order, (S,)), 2.0))
        order = jnp.concatenate([spans.astype(jnp.int32), jnp.arange(S, T, dtype=jnp.int32)])
    elif shuffle:
        order = jnp.argsort(jnp.where(real, jax.random.uniform(k_order, (T,)), 2.0)).astype(jnp.int32)
    else:
        order = jnp.arange(T, dtype=jnp.int32)
    return EpochData(ids, sent, order, n)


def window_offsets(reach: int) -> np.ndarray:
    """The 2 * reach context offsets -reach..-1, 1..reach: the slot order of every layout."""
    return np.concatenate([np.arange(-reach, 0), np.arange(1, reach + 1)]).astype(np.int32)


def context_reach(window, slots: int | None) -> int:
    """Context slots per side: the window, or `slots` where fewer suffice (a window longer than
    every sentence needs only the longest sentence's length - 1) or the window is traced (runs of
    several windows trained together share the widest run's slots)."""
    return slots if not isinstance(window, int) else min(window, slots or window)


def draw_windows(key: jax.Array, n: int, window, dynamic: bool) -> jax.Array:
    """int32 [n]: each target's window, word2vec's b ~ U{1..window} when dynamic, else window."""
    if dynamic:
        return jax.random.randint(key, (n,), 1, window + 1)
    return jnp.full((n,), window)


def context_mask(real: jax.Array, target_sent: jax.Array, context_sent: jax.Array, offs: jax.Array,
                 b: jax.Array | None) -> jax.Array:
    """bool [..., C]: the (target, context slot) pairs that exist: a real target, a context in the
    same sentence (positions outside the epoch or on its padding carry sentence -1, which no
    target has) and, with b given, within the target's window |offset| <= b."""
    mask = real[..., None] & (context_sent == target_sent[..., None])
    if b is not None:
        mask &= jnp.abs(offs) <= b[..., None]
    return mask


def positions(epoch: EpochData, p: jax.Array, offs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(clipped context positions, their sentence numbers, -1 outside the epoch) of targets at
    positions p [...] and offsets offs [C]."""
    T = epoch.ids.shape[0]
    q = p[..., None] + offs
    qc = jnp.clip(q, 0, T - 1)
    return qc, jnp.where((q >= 0) & (q < T), epoch.sent[qc], -1)
