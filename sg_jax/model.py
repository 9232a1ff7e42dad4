"""Model parameters: the two embedding tables of Skip-gram / CBOW, as a pytree.

The textbook (Rong 2014, "word2vec Parameter Learning Explained") writes the input matrix W as
V x N (row k is the input vector v_k of word k) and the output matrix W' as N x V (column j is
the output vector v'_j). sg_jax stores both as row tables so that a batch gathers rows:

    w_in[k]  = v_k   = W[k, :]
    w_out[j] = v'_j  = W'[:, j]      (so w_out == W'.T)

With hierarchical softmax the output vectors belong to the V - 1 inner nodes of the Huffman tree,
and w_out has V - 1 rows.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sg_jax.errors import ConfigError


class Params(NamedTuple):
    w_in: jax.Array   # [V, N] input vectors: the textbook W; row k embeds word k
    w_out: jax.Array  # [V, N] output vectors: the textbook W' transposed ([V - 1, N] for HS)


# W's initial rows: uniform in [-h/N, h/N) with h per name, W' zero. gensim 4 draws W twice as wide
# as the word2vec C tool (its `prep_vectors`); on the bundled corpus the wider start scores higher
# at 5 epochs (docs/devices.md), so it is the default.
UNIFORM_HALF_WIDTHS = {"gensim": 1.0, "word2vec": 0.5}
INITS = (*UNIFORM_HALF_WIDTHS, "normal")
DEFAULT_INIT = "gensim"   # Config.init's default (config.py cannot import this module: JAX)


def init_params(
    key: jax.Array,
    vocab_size: int,
    dim: int,
    *,
    out_rows: int | None = None,
    init: str = DEFAULT_INIT,
    scale: float = 0.1,
    dtype=jnp.float32,
) -> Params:
    """Initial parameters from an explicit PRNG key.

    init="gensim": W uniform in [-1/N, 1/N), W' zero (as gensim 4).
    init="word2vec": W uniform in [-0.5/N, 0.5/N), W' zero (as the word2vec C tool and gensim 3).
    init="normal": both tables normal with standard deviation `scale` (a zero W' makes the exact
    softmax's first gradient for W zero, which some experiments want to avoid).
    out_rows: rows of w_out (default vocab_size; vocab_size - 1 for hierarchical softmax).
    """
    if vocab_size < 1:
        raise ConfigError(f"vocabulary size must be >= 1, got {vocab_size}")
    if dim < 1:
        raise ConfigError(f"embedding dimension must be >= 1, got {dim}")
    if init not in INITS:
        raise ConfigError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    out_rows = vocab_size if out_rows is None else out_rows
    k_in, k_out = jax.random.split(key)
    if init in UNIFORM_HALF_WIDTHS:
        half = UNIFORM_HALF_WIDTHS[init] / dim
        w_in = jax.random.uniform(k_in, (vocab_size, dim), dtype, -half, half)
        w_out = jnp.zeros((max(out_rows, 1), dim), dtype)
    else:
        w_in = scale * jax.random.normal(k_in, (vocab_size, dim), dtype)
        w_out = scale * jax.random.normal(k_out, (max(out_rows, 1), dim), dtype)
    return Params(w_in=w_in, w_out=w_out)
