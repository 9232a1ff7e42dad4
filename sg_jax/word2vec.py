"""Word2Vec: gensim 4's `Word2Vec` class over sg_jax's one run path.

    from sg_jax import Word2Vec                   # instead of: from gensim.models import Word2Vec
    model = Word2Vec(sentences, vector_size=100, window=5, min_count=1, sg=1, epochs=5)
    model.wv.most_similar("king", topn=5)
    model.build_vocab(more_sentences, update=True)
    model.train(more_sentences, total_examples=len(more_sentences), epochs=model.epochs)
    model.save("word2vec.model"); model = Word2Vec.load("word2vec.model")

The constructor takes gensim's argument names and defaults; each is mapped to a `Config` field
(`sg_jax.gensim_args`) or, where sg_jax has no such behaviour, refused with a one-line error that
names the sg_jax way. A few of gensim's arguments only tune its worker threads and are accepted
and ignored: `workers` (sg_jax runs the step on a device; `devices=` spreads it over several,
docs/devices.md), `batch_words` (the size of a thread's job), `compute_loss` (the loss is always
recorded) and `comment`. Any other keyword is a Config field (`lowercase=True`, `batch_size=`,
`devices=`, ...). Token lists are kept as given: no lowercasing unless `lowercase=True`.

Training goes through `sg_jax.runs.run_training`, as `train_model` and `sg-jax train` do: the
first train() after build_vocab() is the run `train_model` would train with the same Config, bit
for bit; each later train() continues it with the rate decaying again from alpha to min_alpha
over the new epochs, as a second call to gensim's train() does.

`save(path)` writes a directory: the run directory `Model.save` writes (vectors.txt, the
checkpoint that `sg-jax train --resume` continues, config, metrics, manifest) plus word2vec.json
(the gensim-only settings). Callbacks, as in gensim 4, belong to the call that trains
(`Word2Vec(corpus, callbacks=...)`, `train(..., callbacks=...)`) and are not kept.

Progress is logged through `logging.getLogger("sg_jax")` at INFO, as gensim logs through its
own logger; nothing is printed unless logging is configured.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

import sg_jax.gensim_extras as gensim_extras
from sg_jax.api import Model, load_model
from sg_jax.atomic import atomic_write_text
from sg_jax.config import Config
from sg_jax.data.corpus import encode_corpus, load_corpus
from sg_jax.errors import ConfigError, FormatError, quoted
from sg_jax.gensim_args import gensim_config, gensim_corpus
from sg_jax.growth import grow_state, grow_vocab
from sg_jax.keyed_vectors import KeyedVectors
from sg_jax.runs import Corpus, Progress, check_trainable, corpus_identity, read_corpus, run_training
from sg_jax.parallel.sharded import host_state
from sg_jax.train import Position, Schedule, init_state, make_optimizer

logger = logging.getLogger("sg_jax")

EXTRA_FILE = "word2vec.json"


class _Epochs:
    """One train() call's per-call hook: epoch boundaries (callbacks, the epoch's summed loss)
    and gensim-style progress lines in the log."""

    def __init__(self, owner: "Word2Vec", first: int, last: int, callbacks, report_delay: float):
        self.owner, self.epoch, self.last, self.callbacks = owner, first, last, callbacks
        self.report_delay, self.loss, self.words = report_delay, 0.0, 0
        self.reported = self.started = time.perf_counter()
        self.epoch_words = 0

    def begin(self) -> None:
        self.loss, self.started, self.epoch_words = 0.0, time.perf_counter(), 0
        for cb in self.callbacks:
            getattr(cb, "on_epoch_begin", _nothing)(self.owner)

    def end(self, state) -> None:
        took = time.perf_counter() - self.started
        self.owner._latest_loss = float(self.loss)
        self.owner._live = state
        logger.info("EPOCH %d: training on %d raw words took %.1fs, %.0f words/s, loss %.6g", self.epoch,
                    self.epoch_words, took, self.epoch_words / took if took > 0 else float("nan"), self.loss)
        for cb in self.callbacks:
            getattr(cb, "on_epoch_end", _nothing)(self.owner)
        self.epoch += 1

    def __call__(self, state, position: Position, record: dict) -> None:
        if record["examples"]:
            self.loss += record["loss"] * record["examples"]  # the call's summed loss, in float64
        self.epoch_words += record["words"] - self.words
        self.words = record["words"]
        now = time.perf_counter()
        if now - self.reported >= self.report_delay and position.epoch == self.epoch:
            self.reported = now
            logger.info("EPOCH %d - PROGRESS: at %.2f%% examples, %.0f words/s", self.epoch,
                        100.0 * (record["epoch"] - self.epoch), record["words"] / max(record["seconds"], 1e-9))
        while self.epoch < min(position.epoch, self.last):  # epochs that ended with this call
            self.end(state)
            if self.epoch < self.last:
                self.begin()


def _nothing(model) -> None:
    del model


class Word2Vec:
    """gensim 4's Word2Vec: the same constructor, build_vocab, train, wv, save/load, callbacks,
    get_latest_training_loss; trained by sg_jax (see the module doc)."""

    def __init__(self, sentences=None, corpus_file=None, vector_size=100, alpha=0.025, window=5, min_count=5,
                 max_vocab_size=None, sample=1e-3, seed=1, workers=3, min_alpha=0.0001, sg=0, hs=0, negative=5,
                 ns_exponent=0.75, cbow_mean=1, hashfxn=hash, epochs=5, null_word=0, trim_rule=None, sorted_vocab=1,
                 batch_words=10000, compute_loss=False, callbacks=(), comment=None, max_final_vocab=None,
                 shrink_windows=True, **options):
        self.config = gensim_config(
            vector_size=vector_size, alpha=alpha, window=window, min_count=min_count, max_vocab_size=max_vocab_size,
            sample=sample, seed=seed, workers=workers, min_alpha=min_alpha, sg=sg, hs=hs, negative=negative,
            ns_exponent=ns_exponent, cbow_mean=cbow_mean, hashfxn=hashfxn, epochs=epochs, null_word=null_word,
            trim_rule=trim_rule, sorted_vocab=sorted_vocab, batch_words=batch_words, max_final_vocab=max_final_vocab,
            shrink_windows=shrink_windows, **options)
        self.vector_size, self.alpha, self.min_alpha, self.window = vector_size, alpha, min_alpha, window
        self.min_count, self.sample, self.seed, self.epochs = min_count, sample, seed, epochs
        self.sg, self.hs, self.negative, self.ns_exponent, self.cbow_mean = sg, hs, negative, ns_exponent, cbow_mean
        self.workers, self.batch_words, self.compute_loss, self.comment = workers, batch_words, compute_loss, comment
        self.max_final_vocab, self.shrink_windows = max_final_vocab, shrink_windows
        self.corpus_count = self.corpus_total_words = 0
        self.train_count, self.total_train_time = 0, 0.0
        self._model: Model | None = None
        self._built = None        # (the corpus build_vocab read, its Corpus): train() on it again reads nothing
        self._latest_loss = 0.0
        self._live = None         # the training state at the last epoch's end, while train() runs
        self._live_wv = None
        if sentences is not None or corpus_file is not None:
            self.build_vocab(sentences, corpus_file)
            self.train(sentences, corpus_file, total_examples=self.corpus_count, epochs=self.epochs,
                       callbacks=callbacks)
        elif callbacks:
            logger.warning("callbacks are not kept by the model (as in gensim 4): pass them to the call that "
                           "trains, Word2Vec(corpus, callbacks=...) or train(..., callbacks=...); these are ignored")

    # ------------------------------------------------------------------ vocabulary

    def build_vocab(self, corpus_iterable=None, corpus_file=None, update=False, progress_per=10000,
                    keep_raw_vocab=False, trim_rule=None, **kwargs):
        """Read the corpus and build the vocabulary (update=True: add the new words of this corpus
        to the trained model's, their rows initialised as word2vec does; every existing row and
        the optimizer state are kept)."""
        del progress_per, keep_raw_vocab
        if trim_rule is not None:
            raise ConfigError("trim_rule: sg_jax keeps words by min_count and max_final_vocab; filter the corpus's "
                              "tokens before training instead")
        if kwargs:
            raise ConfigError(f"build_vocab: unknown argument(s) {', '.join(sorted(kwargs))}")
        source = gensim_corpus(corpus_iterable, corpus_file, "build_vocab")
        key = corpus_file if corpus_file is not None else corpus_iterable
        logger.info("collecting all words and their counts")
        if not update:
            data = read_corpus(self.config, source)
            state = init_state(self.config, len(data.vocab), make_optimizer(self.config, 1))
            self._model = Model(self.config, data.vocab, Progress(state, Position(), [], Schedule()), data.fingerprint)
        else:
            if self._model is None:
                raise ConfigError("build_vocab(update=True) needs a model with a vocabulary: call build_vocab first")
            model, config = self._model, self._model.config
            opts = dict(lowercase=config.lowercase, errors=config.encoding_errors, normalize=config.normalize)
            counted, _, _ = load_corpus(source, min_count=1, **opts)
            vocab = grow_vocab(model.vocab, counted, config.min_count)
            logger.info("updating the vocabulary: %d new words (%d in all)", len(vocab) - len(model.vocab), len(vocab))
            model.progress.state = grow_state(model.progress.state, config, len(model.vocab), len(vocab))
            model.vocab, model._wv = vocab, None  # the counts changed, if not the rows
            encoded = encode_corpus(source, vocab, **opts)
            check_trainable(vocab, encoded, config)
            data = Corpus(vocab, encoded, None, *corpus_identity(source, encoded))
        self._model._source = source
        self._built = (key, data)
        self.corpus_count = data.stats.sentences if data.stats is not None else data.encoded.n_sentences
        self.corpus_total_words = data.stats.tokens if data.stats is not None else data.encoded.n_tokens
        self._live, self._live_wv = None, None
        logger.info("collected %d raw words in %d sentences; min_count=%d keeps %d unique words",
                    self.corpus_total_words, self.corpus_count, self.config.min_count, len(self._model.vocab))

    # ------------------------------------------------------------------ training

    def train(self, corpus_iterable=None, corpus_file=None, total_examples=None, total_words=None, epochs=None,
              start_alpha=None, end_alpha=None, word_count=0, queue_factor=2, report_delay=1.0, compute_loss=False,
              callbacks=(), **kwargs):
        """Train `epochs` epochs on the corpus (gensim asks for epochs and for total_examples or
        total_words, and so does this). Returns (trained words, raw words), as gensim does."""
        del word_count, queue_factor, compute_loss  # thread tuning; the loss is always recorded
        if kwargs:
            raise ConfigError(f"train: unknown argument(s) {', '.join(sorted(kwargs))}")
        if self._model is None:
            raise ConfigError("train() needs a vocabulary: call build_vocab() first, as gensim does")
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise ConfigError(f"train() needs an explicit epochs count >= 1 (e.g. epochs=model.epochs), got "
                              f"{quoted(epochs)}")
        if total_examples is None and total_words is None:
            raise ConfigError("train() needs total_examples or total_words (e.g. total_examples=model.corpus_count)")
        model = self._model
        trained = model.progress.position.epoch
        if model.progress.position != Position(trained, 0, 0):
            raise ConfigError("the model's training stopped inside an epoch; it cannot be continued here")
        config = dataclasses.replace(model.config, epochs=trained + epochs)
        if start_alpha is not None or end_alpha is not None:
            lr = float(start_alpha if start_alpha is not None else config.learning_rate)
            low = float(end_alpha if end_alpha is not None else config.learning_rate * config.min_lr_ratio)
            if not lr > 0 or not 0 <= low <= lr:
                raise ConfigError(f"start_alpha and end_alpha must satisfy 0 <= end_alpha <= start_alpha, 0 < "
                                  f"start_alpha; got {start_alpha!r}, {end_alpha!r}")
            config = dataclasses.replace(config, lr=lr, min_lr_ratio=low / lr)
        source, data = self._training_data(corpus_iterable, corpus_file, config)
        if total_examples is not None and total_examples != data.encoded.n_sentences and \
                total_examples != self.corpus_count:
            logger.warning("train(): total_examples=%s, but the corpus has %d sentences", total_examples,
                           data.encoded.n_sentences)
        callbacks = tuple(callbacks)
        hook = _Epochs(self, trained, config.epochs, callbacks, report_delay)
        logger.info("training %s on %d tokens in %d sentences for %d epoch(s): arch=%s, objective=%s, window=%d",
                    self, data.encoded.n_tokens, data.encoded.n_sentences, epochs, config.arch, config.objective,
                    config.window)
        for cb in callbacks:
            getattr(cb, "on_train_begin", _nothing)(self)
        hook.begin()
        start = Progress(model.progress.state, model.progress.position, list(model.progress.history),
                         Schedule(start_step=int(model.progress.state.step), start_epoch=trained))
        started = time.perf_counter()
        try:
            output = run_training(config, source, None, loaded=data, start=start, log=logger.info, on_call=hook,
                                  checkpoint=None)
        finally:
            self._live, self._live_wv = None, None
        seconds = time.perf_counter() - started
        model.config, model.progress, model.corpus_fingerprint = output.result.config, output.progress, data.fingerprint
        self.config = dataclasses.replace(output.result.config, epochs=self.config.epochs)
        while hook.epoch < config.epochs:  # epochs that had no step (nothing left after subsampling)
            hook.end(output.progress.state)
            if hook.epoch < config.epochs:
                hook.begin()
        self._live = None
        self.train_count += 1
        self.total_train_time += seconds
        words = output.result.words_done
        logger.info("training on %d raw words took %.1fs, %.0f words/s", words, seconds,
                    words / seconds if seconds > 0 else float("nan"))
        for cb in callbacks:
            getattr(cb, "on_train_end", _nothing)(self)
        return words, words

    def _training_data(self, corpus_iterable, corpus_file, config: Config) -> tuple[object, Corpus]:
        """The corpus of a train() call, encoded with the model's vocabulary (the one build_vocab
        read is not read again)."""
        key = corpus_file if corpus_file is not None else corpus_iterable
        if self._built is not None and key is not None and self._built[0] is key:
            return self._model._source, self._built[1]
        source = gensim_corpus(corpus_iterable, corpus_file, "train")
        vocab = self._model.vocab
        encoded = encode_corpus(source, vocab, lowercase=config.lowercase, errors=config.encoding_errors,
                                normalize=config.normalize)
        check_trainable(vocab, encoded, config)
        return source, Corpus(vocab, encoded, None, *corpus_identity(source, encoded))

    def get_latest_training_loss(self) -> float:
        """The summed loss (float64) of the latest finished epoch: the sum over its examples of
        each example's loss (0.0 before any training)."""
        return self._latest_loss

    # ------------------------------------------------------------------ vectors

    @property
    def wv(self) -> KeyedVectors:
        """The word vectors (during train(), in a callback: those at the end of the last epoch)."""
        if self._live is None and self._model is not None:
            return self._model.wv
        if self._live is not None:
            if self._live_wv is None or self._live_wv[0] is not self._live:
                model = self._model
                vectors = np.asarray(self._live_tables().w_in)
                self._live_wv = (self._live, KeyedVectors(model.vocab.words, vectors, counts=model.vocab.counts,
                                                          text=model.config))
            return self._live_wv[1]
        if self._model is None:
            raise ConfigError("the model has no vectors yet: call build_vocab() and train() first")
        return self._model.wv

    def _output_vectors(self, name: str, hs: bool) -> np.ndarray:
        """W' (read-only) where the objective's output rows are words (hs=False) or tree nodes (hs=True)."""
        model = self.native
        if (model.config.objective == "hs") != hs:
            raise AttributeError(f"{name}: this model trained objective {model.config.objective}, whose output vectors "
                                 f"are {'tree nodes' if model.config.objective == 'hs' else 'words'} (syn1neg: words, "
                                 f"syn1: hierarchical softmax's nodes)")
        return model.output_vectors if self._live is None else np.asarray(self._live_tables().w_out)

    def _live_tables(self):
        """The tables of the state a callback sees during train(), gathered and unpadded where sharded."""
        model = self._model
        state = host_state(self._live, model.config, len(model.vocab)) if model.config.shard_tables else self._live
        return state.params

    @property
    def syn1neg(self) -> np.ndarray:
        """The output vectors [V, N] of the words (negative sampling, NCE or the full softmax)."""
        return self._output_vectors("syn1neg", hs=False)

    @property
    def syn1(self) -> np.ndarray:
        """Hierarchical softmax's output vectors [V - 1, N] of the Huffman tree's inner nodes."""
        return self._output_vectors("syn1", hs=True)

    def predict_output_word(self, context_words_list, topn=10):
        """The topn words most probable in the middle of `context_words_list`, as gensim computes it
        for negative sampling: [(word, probability)], None when no context word is known."""
        if self.native.config.objective == "hs":
            raise ConfigError("predict_output_word needs the output vectors of words; this model trained hierarchical "
                              "softmax (as in gensim, only models with negative sampling can predict)")
        return gensim_extras.predict_output_word(self.wv, self.syn1neg, context_words_list, topn, bool(self.cbow_mean))

    @property
    def native(self) -> Model:
        """The sg_jax Model underneath (config, vocabulary, training state, history)."""
        if self._model is None:
            raise ConfigError("the model has no vocabulary yet: call build_vocab() first")
        return self._model

    def __str__(self) -> str:
        vocab = len(self._model.vocab) if self._model is not None else 0
        return f"Word2Vec<vocab={vocab}, vector_size={self.vector_size}, alpha={self.alpha}>"

    __repr__ = __str__

    # ------------------------------------------------------------------ files

    def save(self, fname) -> Path:
        """Write the model as a directory (see the module doc); returns its path."""
        out = self.native.save(fname)
        extra = {"epochs": self.epochs, "vector_size": self.vector_size, "alpha": self.alpha,
                 "min_alpha": self.min_alpha, "window": self.window, "min_count": self.min_count,
                 "sample": self.sample, "seed": self.seed, "sg": self.sg, "hs": self.hs, "negative": self.negative,
                 "ns_exponent": self.ns_exponent, "cbow_mean": self.cbow_mean, "workers": self.workers,
                 "batch_words": self.batch_words, "compute_loss": self.compute_loss, "comment": self.comment,
                 "max_final_vocab": self.max_final_vocab, "shrink_windows": self.shrink_windows,
                 "corpus_count": self.corpus_count, "corpus_total_words": self.corpus_total_words,
                 "train_count": self.train_count, "total_train_time": self.total_train_time,
                 "latest_training_loss": self._latest_loss, "config": self.config.to_dict()}
        atomic_write_text(out / EXTRA_FILE, json.dumps(extra, indent=2) + "\n")
        return out

    @classmethod
    def load(cls, fname) -> "Word2Vec":
        """A model written by `save` (or any sg_jax run directory: then with gensim's defaults for
        the settings a run does not record)."""
        model = load_model(fname)
        path = Path(fname) / EXTRA_FILE
        extra = {}
        if path.exists():
            try:
                extra = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(extra, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as e:
                raise FormatError(f"{path} is damaged: {e}") from None
        self = cls.__new__(cls)
        defaults = {"epochs": model.config.epochs, "vector_size": model.config.dim, "alpha": model.config.learning_rate,
                    "min_alpha": model.config.learning_rate * model.config.min_lr_ratio, "window": model.config.window,
                    "min_count": model.config.min_count, "sample": model.config.sample, "seed": model.config.seed,
                    "sg": int(model.config.arch == "sg"), "hs": int(model.config.objective == "hs"),
                    "negative": model.config.negative, "ns_exponent": model.config.noise_power, "cbow_mean": 1,
                    "workers": 3, "batch_words": 10000, "compute_loss": False, "comment": None,
                    "max_final_vocab": model.config.max_vocab, "shrink_windows": model.config.dynamic_window,
                    "corpus_count": 0, "corpus_total_words": 0, "train_count": 0, "total_train_time": 0.0}
        for name, value in defaults.items():
            setattr(self, name, extra.get(name, value))
        config = extra.get("config")
        self.config = Config.from_dict(config, where=str(path)) if isinstance(config, dict) else \
            dataclasses.replace(model.config, epochs=self.epochs)
        self._model, self._built, self._live, self._live_wv = model, None, None, None
        self._latest_loss = float(extra.get("latest_training_loss", 0.0))
        return self
