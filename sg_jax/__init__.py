"""sg_jax: Skip-gram word embeddings (word2vec) in functional JAX.

Modules, one concept each: corpus (reading, Vocab, encoding), windows (host-side pairs),
model (Params), objectives (softmax, negative sampling, hierarchical softmax), derivations (the
hand-derived gradients and check_gradients), pipeline (on-device batches), train (Config,
TrainState, the jitted step), runs (a run on disk), embeddings (queries), benchmarks
(WordSim-353, Google analogies), io (word2vec formats, checkpoints), sweep, cli.
"""

__version__ = "0.1.0"
