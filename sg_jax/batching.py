"""The batch size `batch_size auto` resolves to, from the learning rate and the noise words.

A step applies the summed gradients of every occurrence of a row, all computed at the same
parameters. The trust region (`sg_jax.optim.trust`) bounds how far that sum moves any score, so
no batch diverges; but below that bound the sum still departs from word2vec's sequential updates
by about lr x k per occurrence, and on the bundled corpus skip-gram with 15 noise words lost
WordSim-353 at lr 0.05 and 0.1 with 1,024 targets a step (0.363 and 0.383 against a shuffled-
reading gensim's 0.387 and 0.425) and kept it with 512 and 256 (0.379 and 0.406;
benchmarks/README.md). So auto takes AUTO_BATCH targets, halved while lr x k x batch exceeds
MAX_LOAD, the load of k = 5 at lr 0.1 with 1,024 targets, where the step still meets gensim, down
to MIN_AUTO_BATCH. Every default and every k <= 10 at lr <= 0.05 keeps 1,024. hs has no noise
words: 1,024. An explicit batch_size is always taken as given.
"""

AUTO_BATCH = 1024
MIN_AUTO_BATCH = 256
MAX_LOAD = 0.1 * 5 * 1024   # lr x noise words x targets a step


def auto_batch_size(config) -> int:
    """Targets a step for `batch_size auto`: AUTO_BATCH, halved while the config's learning rate x
    its noise words (k for an objective that draws them, else none) x the batch exceeds MAX_LOAD,
    never below MIN_AUTO_BATCH."""
    from sg_jax.objectives import get_spec  # JAX must not start yet: see sg_jax.options

    load = config.learning_rate * (config.negative if "negative" in get_spec(config.objective).options else 0)
    batch = AUTO_BATCH
    while batch > MIN_AUTO_BATCH and load * batch > MAX_LOAD * (1 + 1e-9):
        batch //= 2
    return batch
