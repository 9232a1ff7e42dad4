"""Skip-gram training examples on the host (numpy): which (target, context) pairs a window gives.

For a target at position i of a sentence, its contexts are the words at positions i + d for the
offsets d in -w..-1, 1..w that stay **inside the same sentence** (windows never cross sentence
boundaries). With word2vec's *dynamic* (reduced) window, each target first draws
b ~ Uniform{1..w} and keeps only |d| <= b, which weights near contexts more: offset d survives
with probability (w - d + 1) / w.

Everything here is vectorised over tokens (loops run over the 2w offsets only). Inputs are an
`EncodedCorpus` or a 1-D int array (treated as one sentence). Outputs are int32 word ids.
The on-device equivalent used in training lives in `sg_jax.data.epoch` and the layouts of `sg_jax.data.layouts`; these functions are the
reference it is tested against, and feed the exact-softmax and multi-context examples.
"""

from __future__ import annotations

import numpy as np

from sg_jax.data.corpus import EncodedCorpus
from sg_jax.errors import ConfigError, CorpusError

NO_PAIRS = "corpus yields no training pairs (every sentence has fewer than 2 words)"


def _check_window(window) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)):
        raise ConfigError(f"window must be an integer, got {window!r}")
    if window < 1:
        raise ConfigError(f"window must be >= 1, got {window}")
    return int(window)


def _ids_offsets(corpus) -> tuple[np.ndarray, np.ndarray]:
    """(ids int32[T], offsets int64[S + 1]) of an EncodedCorpus or of a 1-D id array."""
    if isinstance(corpus, EncodedCorpus):
        return np.asarray(corpus.ids), np.asarray(corpus.offsets)
    ids = np.asarray(corpus)
    if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise CorpusError(f"expected an EncodedCorpus or a 1-D array of word ids, got an array "
                          f"of shape {ids.shape} and dtype {ids.dtype}")
    return ids.astype(np.int32, copy=False), np.array([0, len(ids)], dtype=np.int64)


def _offsets_order(window: int) -> np.ndarray:
    """The 2w context offsets in column order: -w..-1, then 1..w."""
    return np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])


def context_groups(corpus, window: int, *, rng=None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each target with all its contexts, padded to the full window.

    Returns `targets` int32[T'], `contexts` int32[T', 2w] and `mask` bool[T', 2w]: column j
    holds the word at offset `(-w..-1, 1..w)[j]` from the target; positions outside the
    sentence (or beyond the drawn reduced window, when `rng` is given) have context 0 and mask
    False. Rows are in token order; targets with no context at all (one-word sentences) are
    left out, so T' <= T and every row has at least one True. `rng`: a numpy Generator (or
    seed) to draw word2vec's dynamic window b ~ Uniform{1..window} per target.

    The masked entries, row by row, are exactly the pairs of `skipgram_pairs` (fixed window) or
    `dynamic_window_pairs` (same rng state).
    """
    window = _check_window(window)
    ids, offsets = _ids_offsets(corpus)
    n = len(ids)
    lengths = np.diff(offsets)
    pos = np.arange(n, dtype=np.int64)
    start = np.repeat(offsets[:-1], lengths)  # first position of each token's sentence
    end = np.repeat(offsets[1:], lengths)  # one past its last position
    if rng is not None:
        reduced = np.random.default_rng(rng).integers(1, window + 1, size=n)
    contexts = np.zeros((n, 2 * window), dtype=np.int32)
    mask = np.zeros((n, 2 * window), dtype=bool)
    for j, d in enumerate(_offsets_order(window)):
        cpos = pos + d
        valid = (cpos >= start) & (cpos < end)
        if rng is not None:
            valid &= abs(d) <= reduced
        mask[:, j] = valid
        contexts[valid, j] = ids[cpos[valid]]
    has_context = mask.any(axis=1)
    if not has_context.any():
        raise CorpusError(NO_PAIRS)
    return ids[has_context], contexts[has_context], mask[has_context]


def _pairs(targets, contexts, mask) -> np.ndarray:
    # Boolean indexing walks the [T', 2w] arrays in row-major order, which gives the documented
    # pair order: by target position, then by offset -w..-1, 1..w.
    t = np.broadcast_to(targets[:, None], contexts.shape)[mask]
    return np.stack([t, contexts[mask]], axis=1).astype(np.int32, copy=False)


def skipgram_pairs(corpus, window: int) -> np.ndarray:
    """All (target, context) pairs of a fixed window: int32[P, 2].

    Every token is a target paired with each word up to `window` positions before and after it
    within its sentence. Order: by target position, then offset -w..-1, 1..w. A sentence of
    length L gives P = sum_{d=1..w} 2 * max(L - d, 0) pairs.
    """
    return _pairs(*context_groups(corpus, window))


def dynamic_window_pairs(corpus, window: int, rng) -> np.ndarray:
    """Pairs under word2vec's reduced window: int32[P, 2].

    For each target, b ~ Uniform{1..window} is drawn from `rng` (a numpy Generator or seed) and
    the target is paired with the words at offsets |d| <= b within its sentence. In a long
    sentence a target gets 2 * E[b] = window + 1 contexts on average (word2vec.c's
    `b = next_random % window`, Mikolov et al. 2013). Same order as `skipgram_pairs`.
    """
    if rng is None:
        raise ConfigError("dynamic_window_pairs needs an rng (numpy Generator or seed)")
    return _pairs(*context_groups(corpus, window, rng=rng))


def keep_probability(counts, sample: float) -> np.ndarray:
    """Probability of keeping each occurrence of word k under frequent-word subsampling.

    word2vec.c (Mikolov et al. 2013, "Distributed Representations of Words and Phrases"), with
    f = count of the word and t = sample * total count:

        p = (sqrt(f / t) + 1) * t / f,   clipped to [0, 1]

    so words with f <= ~2.6 t are always kept and very frequent ones are kept with probability
    ~ sqrt(t / f). `sample == 0` disables subsampling (all ones); words with count 0 get 1.
    `counts`: int[V]; returns float64[V].
    """
    if not np.isfinite(sample) or sample < 0:
        raise ConfigError(f"sample must be >= 0, got {sample}")
    f = np.asarray(counts, dtype=np.float64)
    if (f < 0).any():
        raise ConfigError("word counts must be >= 0")
    if sample == 0 or f.sum() == 0:
        return np.ones_like(f)
    t = sample * f.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (np.sqrt(f / t) + 1.0) * t / f
    return np.clip(np.where(f > 0, p, 1.0), 0.0, 1.0)


def window_stats(corpus, windows) -> list[dict]:
    """How many training pairs each window size gives, without building them.

    For each w in `windows`: `pairs` = sum over sentences and d = 1..w of 2 * max(L - d, 0)
    (what `skipgram_pairs` returns), `avg_contexts` = pairs / n_tokens (contexts per target),
    and `expected_dynamic_pairs` = the mean pair count under the dynamic window, where offset d
    survives with probability (w - d + 1) / w.
    """
    ids, offsets = _ids_offsets(corpus)
    lengths = np.diff(offsets)
    n_tokens = max(len(ids), 1)
    rows = []
    for window in windows:
        window = _check_window(window)
        d = np.arange(1, window + 1)
        per_offset = 2 * np.maximum(lengths[None, :] - d[:, None], 0).sum(axis=1)  # [w]
        pairs = int(per_offset.sum())
        expected = float((per_offset * (window - d + 1) / window).sum())
        rows.append({"window": window, "pairs": pairs, "avg_contexts": pairs / n_tokens,
                     "expected_dynamic_pairs": expected})
    return rows
