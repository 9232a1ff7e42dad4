"""sg_jax: Skip-gram word embeddings (word2vec) in functional JAX.

    import sg_jax
    model = sg_jax.train_model("default", dim=100, epochs=5)   # the bundled Brown corpus
    model.wv.most_similar("king")

The flow, one concept per module: data (text, Vocab, encoding) -> pipeline (on-device
batches) -> architectures (how a batch becomes hidden vectors and predictions) -> objectives
(registered losses) -> step (the jitted sparse step; optim: optimizers for row-sparse steps) ->
train (the epoch loop) -> runs (a run on disk: the one run path) -> api (Model, train_model,
load_model). Around them: config (Config, the single source of options), gradcheck, embeddings
(queries), evaluation (WordSim-353, analogies), formats and checkpoint (files), study (the sweep)
and cli (the command line). See docs/architecture.md.
"""

import logging

from sg_jax.config import Config
from sg_jax.version import __version__

# the library logs progress to logging.getLogger("sg_jax") at INFO and prints nothing unless the
# application configures logging (logging.basicConfig(level=logging.INFO) shows it)
logging.getLogger("sg_jax").addHandler(logging.NullHandler())

__all__ = ["Config", "KeyedVectors", "Model", "Word2Vec", "load_model", "normalize_query", "train_model",
           "__version__"]


def __getattr__(name):  # the API is imported on first use, so `import sg_jax` stays light
    if name in ("Model", "load_model", "train_model"):
        from sg_jax import api  # JAX must not start yet: the command line imports sg_jax before it sets XLA_FLAGS

        return getattr(api, name)
    if name == "KeyedVectors":
        from sg_jax.keyed_vectors import KeyedVectors  # JAX must not start yet (as above)

        return KeyedVectors
    if name == "Word2Vec":
        from sg_jax.word2vec import Word2Vec  # JAX must not start yet (as above)

        return Word2Vec
    if name == "normalize_query":  # a query through exactly what a corpus token goes through
        # heavy: the tokenizer builds its Unicode tables on import (about 50 ms)
        from sg_jax.data.tokenizer import normalize_query

        return normalize_query
    raise AttributeError(f"module 'sg_jax' has no attribute {name!r}")
