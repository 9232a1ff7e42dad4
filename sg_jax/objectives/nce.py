"""Noise-contrastive estimation (Gutmann & Hyvärinen 2010; Mnih & Teh 2012), the loss of
TensorFlow's word2vec tutorial (`tf.nn.nce_loss`).

NCE turns density estimation into classifying the true word against k noise words drawn from a
known distribution q (here the unigram distribution raised to `noise_power`, from word2vec's
noise table). With the model's unnormalised score u_w = v'_w . h and the partition function
fixed at 1 (Mnih & Teh 2012 found that self-normalisation works), the posterior that w came from
the data rather than the noise is sigma(u_w - log(k q_w)), so

    E = -log sigma(u_w - log(k q_w)) - sum_i log sigma(-(u_{n_i} - log(k q_{n_i}))).

Negative sampling is the special case k q_w = 1 (no shift): NCE's shift is what makes its
optimum the true conditional distribution rather than a shifted PMI. Unlike word2vec's negative
sampling, a noise word equal to the true word is not skipped (nor does `nce_loss` by default).
The hand derivation is negative sampling's with the shifted scores.

This file is the whole objective: it registers itself, and the configuration, the command line,
the trainer, the gradient checker and the sweep pick it up from the registry.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from sg_jax.objectives.base import ObjectiveSpec, register
from sg_jax.objectives.negative import make_sampled, noise_table, noise_weights


def tables(counts, options=None):
    """(noise table, log(k q_w) per word), q the noise distribution the table draws from."""
    power = getattr(options, "noise_power", 0.75)
    k = getattr(options, "negative", 5)
    p = noise_weights(counts, power)
    log_kq = np.log(k) + np.log(p) - np.log(p.sum())
    return jnp.asarray(noise_table(counts, power)), jnp.asarray(log_kq, jnp.float32)


def make(form: str, options=None):
    return make_sampled("nce", form, options, noise=lambda t: t[0], shift=lambda t: t[1],
                        skip_hits=False)


SPEC = register(ObjectiveSpec(
    name="nce", summary="noise-contrastive estimation (TensorFlow's nce_loss)", make=make, tables=tables,
    options=("negative", "share_negatives", "noise_pool", "pool_group", "noise_power")))
