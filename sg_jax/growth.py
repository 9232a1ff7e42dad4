"""Growing a trained model's vocabulary (gensim's `build_vocab(corpus, update=True)`).

`grow_vocab` merges the counts of new text into a vocabulary: known words add their new counts,
new words seen at least min_count times are appended (most frequent first), so every existing
word keeps its row. `grow_state` gives the training state rows for the new words: W's new rows
are drawn as the run's `init` draws W (by default uniform in +-1/N, as gensim's update_weights
does; from the run's key folded with the new size, so a second growth draws other numbers), W'
rows start at zero, and every optimizer
accumulator gets the rows a fresh state has; the existing rows of the tables and of the
optimizer state are kept as they are.

Hierarchical softmax is refused: its output rows are the inner nodes of a Huffman tree built from
the counts, and new words rebuild the tree, so the trained rows would belong to other nodes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import sg_jax.keys as keys
from sg_jax.config import Config
from sg_jax.data.corpus import Vocab
from sg_jax.errors import ConfigError
from sg_jax.model import init_params
from sg_jax.step import TrainState, make_optimizer, out_rows


def grow_vocab(vocab: Vocab, new: Vocab, min_count: int) -> Vocab:
    """`vocab` with the counts of `new` (all words of the new text, counted) added; new words
    seen at least min_count times appended in `new`'s order (frequency order)."""
    counts = np.array(vocab.counts, dtype=np.int64)
    added_words, added_counts = [], []
    for word, count in zip(new.words, new.counts.tolist()):
        if word in vocab:
            counts[vocab.index(word)] += count
        elif count >= min_count:
            added_words.append(word)
            added_counts.append(count)
    return Vocab.from_counts(vocab.words + tuple(added_words), np.concatenate([counts, added_counts]).astype(np.int64))


def grow_state(state: TrainState, config: Config, old_size: int, new_size: int) -> TrainState:
    """`state` of a vocabulary of old_size words, with rows for new_size - old_size new words."""
    if new_size == old_size:
        return state
    if config.objective == "hs":
        raise ConfigError("build_vocab(update=True) cannot grow a hierarchical-softmax model (hs=1): new words rebuild "
                          "the Huffman tree, whose inner nodes own the output vectors; train it on the full corpus")
    key = keys.growth_key(state.key, new_size, config.key_schedule)
    fresh = init_params(key, new_size, config.dim, out_rows=out_rows(config, new_size), init=config.init,
                        dtype=jnp.dtype(config.dtype))
    params = jax.tree.map(_extend, state.params, fresh)
    opt_state = jax.tree.map(_extend, state.opt_state, make_optimizer(config, 1).init(fresh))
    return TrainState(params, opt_state, state.step, state.key)


def _extend(old, fresh):
    """`old` with the extra leading rows of `fresh` appended (leaves of equal shape: `old`)."""
    old, fresh = jnp.asarray(old), jnp.asarray(fresh)
    if old.shape == fresh.shape:
        return old
    if old.ndim == 0 or old.shape[1:] != fresh.shape[1:] or old.shape[0] > fresh.shape[0]:
        raise ConfigError(f"cannot grow a state leaf of shape {old.shape} to {fresh.shape}")
    return jnp.concatenate([old, fresh[old.shape[0]:].astype(old.dtype)])
