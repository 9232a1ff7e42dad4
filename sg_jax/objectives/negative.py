"""Negative sampling (Mikolov et al. 2013b, "Distributed Representations of Words and Phrases").

For a hidden vector h, a word w it should predict, and k noise words n_1..n_k drawn from the
unigram distribution raised to the 3/4 power,

    E = -log sigma(v'_w . h) - sum_i log sigma(-v'_{n_i} . h),

with -log sigma(x) = softplus(-x) for stability. As in the word2vec C tool, a noise word equal to
the word being predicted is skipped (its term is masked out).

Noise words come from a table in which word j fills a share of the slots proportional to
count_j^0.75 (word2vec's unigram table): one uniform integer per sample, O(1), inside jit.
`jax.random.categorical` would cost O(V) per sample.

Sharing of noise words (`share`):
  "none"   k fresh noise words for every (h, w) pair, as word2vec (per-pair estimator);
  "target" k noise words shared by the contexts of one target (Ji et al. 2016 share noise
           within a window): fewer rows to move, the same expected gradient;
  "batch"  k noise words shared by the whole batch: the scores become one [B, N] x [N, k]
           matrix product.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sg_jax.errors import ConfigError
from sg_jax.objectives import SHARING, Batch, Objective, hidden_and_predictions, input_indices, predicted_words

DEFAULT_TABLE_SIZE = 10_000_000


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
    p = counts**power
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


def make(arch: str, form: str, *, negative: int = 5, share: str = "none") -> Objective:
    if negative < 1:
        raise ConfigError(f"negative must be >= 1, got {negative}")
    if share not in SHARING:
        raise ConfigError(f"unknown negative sharing {share!r}; choose one of {', '.join(SHARING)}")
    k = negative

    def sample(key, batch: Batch, table):
        B, C = batch.contexts.shape
        H, P = {"sg": (1, C), "sgc": (C, 1), "cbow": (1, 1)}[form]
        shape = {"none": (B, H, P, k), "target": (B, k), "batch": (k,)}[share]
        return sample_negatives(key, table, shape)

    def indices(batch: Batch, negs, table):
        out_idx = jnp.concatenate([predicted_words(form, batch).reshape(-1), negs.reshape(-1)])
        return input_indices(form, batch), out_idx

    def loss_rows(in_rows, out_rows, batch: Batch, negs, table):
        h, predicted, weight = hidden_and_predictions(form, in_rows, batch)
        B, H, _ = h.shape
        P = predicted.shape[1]
        pos_rows = out_rows[: B * P].reshape(B, P, -1)
        neg_rows = out_rows[B * P :]
        s_pos = jnp.einsum("bhn,bpn->bhp", h, pos_rows)
        loss = jnp.sum(weight * jax.nn.softplus(-s_pos))
        if share == "none":
            s_neg = jnp.einsum("bhn,bhpkn->bhpk", h, neg_rows.reshape(B, H, P, k, -1))
            w_neg = weight[..., None] * (negs != predicted[:, None, :, None])
        else:
            # noise word j of group b serves every prediction of the group, except one equal to it
            noise = negs if share == "target" else jnp.broadcast_to(negs, (B, k))
            if share == "target":
                s_neg = jnp.einsum("bhn,bkn->bhk", h, neg_rows.reshape(B, k, -1))
            else:
                s_neg = jnp.einsum("bhn,kn->bhk", h, neg_rows)
            differs = (noise[:, None, :] != predicted[:, :, None]).astype(h.dtype)   # [B, P, k]
            w_neg = jnp.einsum("bhp,bpk->bhk", weight, differs)
        return loss + jnp.sum(w_neg * jax.nn.softplus(s_neg))

    return Objective(arch, "ns", form, sample, indices, loss_rows)
