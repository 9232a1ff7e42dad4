"""The model API a gensim user expects: train in one call, query, save, reload, keep training.

    import sg_jax
    model = sg_jax.train_model("corpus.txt", dim=100, window=5, epochs=5)   # or token lists
    model.wv["king"]                       # the vector of a word (numpy, float32)
    model.wv.most_similar("king", k=5)     # [(word, cosine), ...]
    model.save("runs/my_model")            # vectors.txt, checkpoint, config, metrics, manifest
    model = sg_jax.load_model("runs/my_model")
    model.train_more(epochs=2)             # two more epochs, the rate decaying again over them
    model.train_more(["more", "text"], epochs=1)  # new text, the same vocabulary

Everything goes through the one run path (`sg_jax.runs.run_training`), so a model trained here
is the model `sg-jax train` would train with the same config, bit for bit, and a saved model is a
run directory that `sg-jax train --resume` continues.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

import sg_jax.formats as formats
from sg_jax.atomic import atomic_write_text
from sg_jax.config import Config
from sg_jax.data.corpus import DEFAULT_CORPUS, Vocab, encode_corpus
from sg_jax.keyed_vectors import KeyedVectors
from sg_jax.errors import ConfigError, CorpusError, quoted
from sg_jax.run_files import CHECKPOINT, CONFIG, replace_run, write_manifest, write_metrics
from sg_jax.runs import (CheckpointPolicy, Corpus, Progress, RunOutput, corpus_identity, load_progress,
                         read_checkpoint_meta, run_training, save_train_checkpoint)
from sg_jax.train import Position, Schedule


@dataclasses.dataclass
class Model:
    """A trained model: config, vocabulary, the full training state and its log."""

    config: Config
    vocab: Vocab
    progress: Progress
    corpus_fingerprint: str

    @property
    def wv(self) -> KeyedVectors:
        """The input vectors (W) with gensim's KeyedVectors API (`wv["word"]`, `wv.most_similar(...)`),
        built once per state of the model (queries are spelled as the run read its corpus)."""
        cached, w_in = self._wv, self.progress.state.params.w_in
        if cached is None or cached[0] is not w_in:
            cached = self._wv = (w_in, KeyedVectors(self.vocab.words, np.asarray(w_in), counts=self.vocab.counts,
                                                    text=self.config))
        return cached[1]

    @property
    def output_vectors(self) -> np.ndarray:
        """W' (stored transposed: row j is the output vector of word j, or of inner node j for hs)."""
        return np.asarray(self.progress.state.params.w_out)

    @property
    def history(self) -> list[dict]:
        return self.progress.history

    @property
    def epochs_trained(self) -> int:
        return self.progress.position.epoch

    # ------------------------------------------------------------------ files

    def save(self, out_dir, *, binary: bool = False) -> Path:
        """Write the model as a run directory: into a new directory beside it, then moved in, so a
        failure leaves no partial directory and the files of a run saved there before (its
        vectors.bin, say) never stay beside this model's."""
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"cannot save the model to {out}: it exists and is not a directory")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            new = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".saving", dir=out.parent))
        except OSError as e:
            raise ConfigError(f"cannot save the model to {out}: {e.strerror or e}") from None
        try:
            self._write(new, binary)
            if out.exists():
                replace_run(new, out)
            else:
                os.rename(new, out)
        except OSError as e:
            raise ConfigError(f"cannot save the model to {out}: {e.strerror or e}") from None
        finally:
            shutil.rmtree(new, ignore_errors=True)
        return out

    def _write(self, out: Path, binary: bool) -> None:
        """The run directory's files, manifest last."""
        atomic_write_text(out / CONFIG, json.dumps(self.config.to_dict(), indent=2) + "\n")
        source = self._source if isinstance(self._source, str) else str(self._source) \
            if isinstance(self._source, Path) else None
        save_train_checkpoint(out / CHECKPOINT, self.progress, self.config, self.vocab, self.corpus_fingerprint,
                              source)
        vectors = np.asarray(self.progress.state.params.w_in)
        formats.save_word2vec_text(out / "vectors.txt", self.vocab.words, vectors)
        if binary:
            formats.save_word2vec_binary(out / "vectors.bin", self.vocab.words, vectors)
        write_metrics(out, self.history)
        write_manifest(out, self.config, self.corpus_fingerprint)

    # ------------------------------------------------------------------ more training

    def train_more(self, corpus=None, *, epochs: int = 1, out_dir=None, log=lambda s: None, on_call=None) -> "Model":
        """Train `epochs` more epochs, in place, and return self.

        corpus=None continues on the corpus the model was trained on (pass it again if it was an
        in-memory iterable); new text is encoded with the model's vocabulary (unknown words are
        dropped) and its fingerprint replaces the old one. The learning rate decays again from
        `lr` over the new epochs, as a second call to gensim's train() does."""
        if not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(f"epochs must be a whole number >= 1, got {epochs!r}")
        if self.progress.position != Position(self.config.epochs, 0, 0):
            raise ConfigError("the model's training has not finished; resume it before training more")
        config = dataclasses.replace(self.config, epochs=self.config.epochs + epochs)
        source = corpus if corpus is not None else self._source
        if source is None:
            raise ConfigError("the model does not know its corpus: pass the corpus to train_more")
        encoded = encode_corpus(source, self.vocab, lowercase=config.lowercase, errors=config.encoding_errors,
                                normalize=config.normalize, strip_diacritics=config.strip_diacritics)
        data = Corpus(self.vocab, encoded, None, *corpus_identity(source, encoded))
        start = Progress(self.progress.state, self.progress.position, list(self.progress.history),
                         Schedule(start_step=int(self.progress.state.step), start_epoch=self.config.epochs))
        output = run_training(config, source, out_dir, loaded=data, start=start, log=log, on_call=on_call,
                              checkpoint=CheckpointPolicy() if out_dir is not None else None)
        self.config, self.progress, self.corpus_fingerprint = config, output.progress, data.fingerprint
        return self

    _source: object = dataclasses.field(default=None, repr=False)
    _wv: tuple | None = dataclasses.field(default=None, repr=False, compare=False)

    @staticmethod
    def load(out_dir) -> "Model":
        """A model saved by `Model.save` (the same as `sg_jax.load_model`)."""
        return load_model(out_dir)

    def __repr__(self) -> str:
        return (f"Model<vocab={len(self.vocab)}, vector_size={self.config.dim}, arch={self.config.arch}, "
                f"objective={self.config.objective}, epochs={self.epochs_trained}>")


def _from_output(output: RunOutput, source) -> Model:
    model = Model(output.result.config, output.vocab, output.progress, output.corpus.fingerprint)
    model._source = source if _rereadable(source) else None
    return model


def train_model(corpus, *, out_dir=None, log=None, on_call=None, **config) -> Model:
    """Train a model in one call: `corpus` is a path (text or .gz, one sentence per line),
    "default" (the bundled Brown corpus), "toy:groups", a list of token lists or an iterable of
    them; keyword arguments are Config fields (dim=, window=, epochs=, objective=, ...). With
    out_dir the run is also written there as `sg-jax train --out` writes it (vectors, checkpoint,
    config, metrics, manifest), so `load_model(out_dir)` reads it back. log: a function given each
    progress line (default: logging.getLogger("sg_jax") at INFO, silent unless logging is
    configured). For gensim's argument names, see `sg_jax.Word2Vec`."""
    unknown = sorted(set(config) - {f.name for f in dataclasses.fields(Config)})
    if unknown:
        raise ConfigError(f"unknown option(s): {', '.join(unknown)}; see sg_jax.Config for the fields "
                          f"(sg_jax.Word2Vec takes gensim's names)")
    cfg = Config(**config).validate()
    corpus = check_corpus(corpus)
    if log is None:
        log = logging.getLogger("sg_jax").info
    output = run_training(cfg, corpus, out_dir, log=log, on_call=on_call, checkpoint=CheckpointPolicy())
    return _from_output(output, corpus)


def check_corpus(corpus):
    """`corpus` as train_model reads it, or a one-line CorpusError: a string is a path or a
    corpus name (not text); lists of sentences are checked here; any other iterable is passed
    on as it is, to be streamed by the reader (never held in memory), which names a bad
    sentence and refuses a one-shot iterator (a generator) for more than one epoch."""
    if isinstance(corpus, str):
        if corpus != DEFAULT_CORPUS and not corpus.startswith("toy:") and not Path(corpus).exists() \
                and any(c.isspace() for c in corpus):
            raise CorpusError(f"corpus {quoted(corpus)} is not a file: a string corpus is a path or a corpus name "
                              f"('default', 'toy:NAME'); pass text as token lists, e.g. [line.split() for line in lines]")
        return corpus
    if isinstance(corpus, Path):
        return corpus
    if isinstance(corpus, (bytes, bytearray)) or not hasattr(corpus, "__iter__"):
        raise CorpusError(f"corpus must be a path, a corpus name or an iterable of token lists, got "
                          f"{type(corpus).__name__} {quoted(corpus)}")
    if isinstance(corpus, (list, tuple)):
        for n, s in enumerate(corpus, 1):
            if not isinstance(s, str) and (isinstance(s, (bytes, bytearray)) or not hasattr(s, "__iter__")):
                raise CorpusError(f"sentence {n} of the corpus is {quoted(s)} ({type(s).__name__}), "
                                  "not a list of tokens")
    return corpus


def _rereadable(source) -> bool:
    """Whether train_more can read `source` again: a path, a name, a list, or an iterable whose
    __iter__ starts over (not a one-shot iterator, which is its own iterator)."""
    if isinstance(source, (str, Path, list, tuple)):
        return True
    try:
        return hasattr(source, "__iter__") and iter(source) is not source
    except TypeError:
        return False


def load_model(out_dir) -> Model:
    """A model saved by `Model.save` or written by `sg-jax train --out` (from its checkpoint)."""
    out = Path(out_dir)
    path = out / CHECKPOINT
    if not path.exists():
        raise ConfigError(f"{out} holds no model: {CHECKPOINT} is missing")
    config, vocab, meta = read_checkpoint_meta(path)
    fingerprint = meta.get("corpus_fingerprint") or ""
    progress, config = load_progress(path, config, vocab, fingerprint)
    model = Model(config, vocab, progress, fingerprint)
    source = meta.get("corpus_source")
    if isinstance(source, str) and not source.startswith("<"):
        model._source = source  # train_more() without a corpus reads it again
    return model
