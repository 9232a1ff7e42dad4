"""gensim's Word2Vec arguments as sg_jax's: the Config of the constructor's arguments
(`gensim_config`) and the corpus of a call (`gensim_corpus`).

Each gensim argument maps to a `Config` field (`GENSIM_NAMES`) or, where sg_jax has no such
behaviour, is refused with a one-line error that names the sg_jax way (see `sg_jax.word2vec`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from types import GeneratorType

from sg_jax.config import Config
from sg_jax.data.corpus import DEFAULT_CORPUS
from sg_jax.errors import ConfigError, CorpusError, quoted

# gensim's constructor arguments -> the Config fields they set (refused as keyword options, so a
# setting has one name)
GENSIM_NAMES = {"vector_size": "dim", "alpha": "lr", "min_alpha": "min_lr_ratio", "window": "window",
                "min_count": "min_count", "sample": "sample", "seed": "seed", "sg": "arch", "hs": "objective",
                "negative": "negative", "ns_exponent": "noise_power", "cbow_mean": "cbow_update", "epochs": "epochs",
                "max_final_vocab": "max_vocab", "shrink_windows": "dynamic_window"}


def gensim_config(*, vector_size=100, alpha=0.025, window=5, min_count=5, max_vocab_size=None, sample=1e-3, seed=1,
                  workers=3, min_alpha=0.0001, sg=0, hs=0, negative=5, ns_exponent=0.75, cbow_mean=1, hashfxn=hash,
                  epochs=5, null_word=0, trim_rule=None, sorted_vocab=1, batch_words=10000,
                  max_final_vocab=None, shrink_windows=True, **options) -> Config:
    """The Config of gensim's Word2Vec arguments (gensim's defaults) and sg_jax Config fields."""
    refusals = [
        (max_vocab_size is not None, "max_vocab_size (gensim's memory cap while counting) has no sg_jax equivalent: "
                                     "sg_jax counts every word exactly; cap the vocabulary with max_final_vocab"),
        (hashfxn is not hash, "hashfxn: sg_jax draws the initial vectors from seed=, not from a hash of each word"),
        (null_word != 0, "null_word: sg_jax masks CBOW's missing context words instead of padding with a null word"),
        (trim_rule is not None, "trim_rule: sg_jax keeps words by min_count and max_final_vocab; filter the corpus's "
                                "tokens before training instead"),
        (not sorted_vocab, "sorted_vocab=0: sg_jax's vocabulary is always sorted by frequency"),
        (sg not in (0, 1) or isinstance(sg, bool), f"sg must be 0 (CBOW) or 1 (skip-gram), got {quoted(sg)}"),
        (hs not in (0, 1) or isinstance(hs, bool), f"hs must be 0 or 1, got {quoted(hs)}"),
        (hs == 1 and negative, f"hs=1 with negative={negative}: gensim trains both objectives at once, sg_jax one; "
                               f"set negative=0 for hierarchical softmax, or hs=0 for negative sampling"),
        (hs == 0 and negative == 0, "hs=0 with negative=0 leaves no objective: set negative >= 1, or hs=1"),
        (sg == 0 and cbow_mean == 0, "cbow_mean=0 (CBOW on the sum of the context vectors): sg_jax's CBOW averages "
                                     "them (cbow_mean=1)"),
        (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1,
         f"workers must be a whole number >= 1, got {quoted(workers)}"),
    ]
    for bad, message in refusals:
        if bad:
            raise ConfigError(message)
    del batch_words  # gensim's job size for its worker threads; sg_jax's step takes batch_size targets
    clash = sorted(set(options) & set(GENSIM_NAMES.values()))
    if clash:
        names = {v: k for k, v in GENSIM_NAMES.items()}
        raise ConfigError("Word2Vec takes gensim's names: " + ", ".join(f"{names[c]}= instead of {c}=" for c in clash))
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(Config)})
    if unknown:
        raise ConfigError(f"unknown option(s): {', '.join(unknown)}; Word2Vec takes gensim's arguments and "
                          f"sg_jax.Config fields")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha > 0:
        raise ConfigError(f"alpha must be a positive number, got {quoted(alpha)}")
    if not isinstance(min_alpha, (int, float)) or isinstance(min_alpha, bool) or not 0 <= min_alpha <= alpha:
        raise ConfigError(f"min_alpha must be a number in [0, alpha={alpha}], got {quoted(min_alpha)}")
    fields = dict(dim=vector_size, lr=float(alpha), min_lr_ratio=float(min_alpha) / float(alpha), window=window,
                  min_count=max(min_count, 1) if isinstance(min_count, int) else min_count, sample=sample,
                  seed=seed, arch="sg" if sg else "cbow", objective="hs" if hs else "ns",
                  noise_power=ns_exponent, cbow_update="sum", epochs=epochs, max_vocab=max_final_vocab,
                  dynamic_window=shrink_windows, lowercase=False)
    if not hs:
        fields["negative"] = negative
    fields.update(options)
    try:
        return Config(**fields).validate()
    except ConfigError as e:  # name gensim's argument, not the field it maps to
        message = str(e)
        for gensim_name, field in GENSIM_NAMES.items():
            if field not in options and message.startswith(field + " ") and not (field == "negative" and hs):
                message = gensim_name + message[len(field):]
                break
        raise ConfigError(message) from None


def gensim_corpus(corpus_iterable, corpus_file, what: str):
    """The corpus of a call: a path or a bundled corpus's name ("default", "toy:NAME") as
    corpus_file, or the token lists of a re-iterable corpus."""
    if corpus_iterable is None and corpus_file is None:
        raise ConfigError(f"{what} needs a corpus: corpus_iterable (token lists) or corpus_file (a path)")
    if corpus_iterable is not None and corpus_file is not None:
        raise ConfigError(f"{what} takes corpus_iterable or corpus_file, not both")
    if corpus_file is not None:
        if isinstance(corpus_file, str) and (corpus_file == DEFAULT_CORPUS or corpus_file.startswith("toy:")):
            return corpus_file  # a bundled corpus, by name
        if not isinstance(corpus_file, (str, os.PathLike)) or not Path(corpus_file).is_file():
            raise CorpusError(f"corpus_file must be the path of a text file, got {quoted(str(corpus_file))}")
        return str(corpus_file)
    if isinstance(corpus_iterable, (str, bytes, bytearray)):
        raise CorpusError(f"corpus_iterable is a string ({quoted(corpus_iterable)}), not token lists: pass "
                          f"[line.split() for line in lines], or a file's path as corpus_file=")
    if isinstance(corpus_iterable, GeneratorType):
        raise CorpusError("corpus_iterable is a generator, which can be read only once; Word2Vec reads the corpus "
                          "for the vocabulary and again for every epoch: pass a list or a re-iterable object")
    if not hasattr(corpus_iterable, "__iter__"):
        raise CorpusError(f"corpus_iterable must be an iterable of token lists, got {type(corpus_iterable).__name__} "
                          f"{quoted(corpus_iterable)}")
    if iter(corpus_iterable) is corpus_iterable:
        raise CorpusError(f"corpus_iterable is a one-shot iterator ({type(corpus_iterable).__name__}), which can be "
                          "read only once: pass a list or a re-iterable object (a class whose __iter__ starts over)")
    if isinstance(corpus_iterable, (list, tuple)):
        for n, sentence in enumerate(corpus_iterable, 1):
            if not isinstance(sentence, str) and (isinstance(sentence, (bytes, bytearray))
                                                  or not hasattr(sentence, "__iter__")):
                raise CorpusError(f"sentence {n} of corpus_iterable is {quoted(sentence)} "
                                  f"({type(sentence).__name__}), not a list of tokens")
    # a list is read as it is; any other re-iterable corpus is streamed by the reader at every
    # pass (vocabulary, encoding), never held in memory
    return corpus_iterable
