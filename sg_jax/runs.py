"""A training run on disk: corpus in; vectors, checkpoints and a metrics log out.

`run_training` is what `sg-jax train` and the sweep call. It reads the corpus, builds the
vocabulary, trains (resuming from `DIR/checkpoint.sgjax` when asked), checkpoints at an
interval of steps or seconds, and writes every output atomically:

    DIR/vectors.txt        word2vec text format (DIR/vectors.bin with binary=True)
    DIR/checkpoint.sgjax   the full TrainState, data-pipeline position, config and vocabulary
    DIR/metrics.jsonl      one JSON object per jitted call (step, epoch, loss, lr, words, seconds)
    DIR/config.json        the run's configuration
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from sg_jax import checkpoint, formats
from sg_jax.atomic import atomic_write_text
from sg_jax.corpus import ReadStats, Vocab, load_corpus
from sg_jax.errors import ConfigError, CorpusError, FormatError, VocabError, quoted
from sg_jax.train import Config, Position, TrainResult, TrainState, init_state, make_optimizer, train
from sg_jax.windows import NO_PAIRS

CHECKPOINT = "checkpoint.sgjax"
CHECKPOINT_KIND = "sg_jax-train"


@dataclasses.dataclass(frozen=True)
class CheckpointPolicy:
    every_steps: int | None = None      # checkpoint after a call that passes a multiple of this
    every_seconds: float | None = 600.0  # ... or when this long has passed since the last one

    def __post_init__(self):
        if self.every_steps is not None and self.every_steps < 1:
            raise ConfigError(f"checkpoint interval must be >= 1 step, got {self.every_steps}")
        if self.every_seconds is not None and not self.every_seconds > 0:  # NaN too
            raise ConfigError(f"checkpoint interval must be > 0 seconds, got {self.every_seconds}")


@dataclasses.dataclass
class RunOutput:
    result: TrainResult
    vocab: Vocab
    stats: ReadStats | None
    out_dir: Path
    resumed_from: Position | None


def config_to_dict(config: Config) -> dict:
    return dataclasses.asdict(config)


def config_from_dict(d: dict, where: str = "config") -> Config:
    """The Config saved as `d`; FormatError naming a field that is unknown (a newer sg_jax wrote
    it: its meaning cannot be honoured) or missing (the file was edited or damaged)."""
    if not isinstance(d, dict):
        raise FormatError(f"{where} is not a JSON object")
    known = [f.name for f in dataclasses.fields(Config)]
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise FormatError(f"{where} has unknown field{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(map(quoted, unknown))} (written by a newer sg_jax?)")
    missing = [k for k in known if k not in d]
    if missing:
        raise FormatError(f"{where} lacks the field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    return Config(**d)


def _position_from_dict(d, where: str) -> Position:
    if not isinstance(d, dict):
        raise FormatError(f"{where} is not a JSON object")
    names = [f.name for f in dataclasses.fields(Position)]
    for key in d:
        if key not in names:
            raise FormatError(f"{where} has an unknown field {quoted(key)}")
    for key in names:
        value = d.get(key)
        if key not in d:
            raise FormatError(f"{where} lacks the field {key}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise FormatError(f"{where}: {key} is {quoted(json.dumps(value))}, not a whole number >= 0")
    return Position(**d)


def save_train_checkpoint(path, state: TrainState, position: Position, config: Config, vocab: Vocab,
                          history: list[dict]) -> None:
    meta = {"kind": CHECKPOINT_KIND, "config": config_to_dict(config), "position": dataclasses.asdict(position),
            "vocab": vocab.to_dict(), "history": history}
    checkpoint.save_checkpoint(path, state, meta)


def load_train_checkpoint(path, config: Config, vocab: Vocab):
    """(state, position, history) from a checkpoint of a run with this config and vocabulary."""
    meta = checkpoint.load_checkpoint_meta(path)
    if not isinstance(meta, dict) or meta.get("kind") != CHECKPOINT_KIND:
        raise FormatError(f"{path} is not a training checkpoint")
    for key in ("config", "position", "vocab"):
        if key not in meta:
            raise FormatError(f"checkpoint {path} lacks the field {key}")
    history = meta.get("history", [])
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise FormatError(f"checkpoint {path}: history is not a list of JSON objects")
    saved = config_from_dict(meta["config"], f"checkpoint {path}: config")
    position = _position_from_dict(meta["position"], f"checkpoint {path}: position")
    diff = [f.name for f in dataclasses.fields(Config) if getattr(saved, f.name) != getattr(config, f.name)]
    if diff:
        shown = ", ".join(f"{n}={getattr(saved, n)!r} (now {getattr(config, n)!r})" for n in diff)
        raise ConfigError(f"cannot resume {path}: the config differs: {shown}")
    if not isinstance(meta["vocab"], dict):
        raise FormatError(f"checkpoint {path}: vocab is not a JSON object")
    if Vocab.from_dict(meta["vocab"]) != vocab:
        raise ConfigError(f"cannot resume {path}: the corpus gives a different vocabulary than the checkpoint's")
    template = init_state(config, len(vocab), make_optimizer(config, 1))
    state, _ = checkpoint.load_checkpoint(path, template=template)
    return state, position, history


def check_trainable(vocab: Vocab, encoded, config: Config) -> None:
    """Refuse, before anything is written, a corpus that cannot give a single training example."""
    if len(vocab) < 2:
        raise VocabError(f"the vocabulary has only 1 word ({vocab.words[0]!r}) after min_count={config.min_count}; "
                         f"training needs at least 2 distinct words")
    if not (np.diff(np.asarray(encoded.offsets)) >= 2).any():
        raise CorpusError(NO_PAIRS)


def run_training(config: Config, corpus, out_dir, *, binary: bool = False, resume: bool = False,
                 until_epoch: int | None = None, checkpoint: CheckpointPolicy | None = CheckpointPolicy(),
                 lowercase: bool = True, encoding_errors: str = "strict", progress: bool = True,
                 log: Callable[[str], None] = print, loaded=None, normalize: str | None = "NFC") -> RunOutput:
    """Train `config` on `corpus` (path, "default", "toy:...", or token lists) into out_dir.

    loaded: an already-built (vocab, encoded corpus, stats) to skip reading the corpus again.
    """
    config.validate()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a directory")
    if loaded is None:
        vocab, encoded, stats = load_corpus(corpus, min_count=config.min_count, max_size=config.max_vocab,
                                            lowercase=lowercase, errors=encoding_errors, normalize=normalize)
    else:
        vocab, encoded, stats = loaded
    check_trainable(vocab, encoded, config)
    if stats is not None:
        log(f"corpus: {stats.summary()}")
    log(f"vocabulary: {len(vocab)} words (min_count={config.min_count}, max_vocab={config.max_vocab}); "
        f"{encoded.n_tokens} tokens in {encoded.n_sentences} sentences")

    ckpt = out / CHECKPOINT
    state, position, history = None, Position(), []
    if resume and ckpt.exists():
        state, position, history = load_train_checkpoint(ckpt, config, vocab)
        log(f"resuming from {ckpt} at epoch {position.epoch}, step {position.step} of chunk {position.chunk}")
    resumed_from = position if state is not None else None
    last_save = {"time": time.monotonic(), "step": 0 if state is None else int(state.step)}
    history = list(history)

    def on_call(state, pos, record):
        history.append(record)
        if checkpoint is None:
            return
        step = record["step"]
        due_steps = checkpoint.every_steps and step // checkpoint.every_steps > last_save["step"] // checkpoint.every_steps
        due_time = checkpoint.every_seconds and time.monotonic() - last_save["time"] >= checkpoint.every_seconds
        if due_steps or due_time:
            _save(out, ckpt, state, pos, config, vocab, history)
            last_save.update(time=time.monotonic(), step=step)

    result = train(config, vocab.words, vocab.counts, encoded.ids, encoded.offsets, state=state, position=position,
                   until_epoch=until_epoch, progress=progress, on_call=on_call)
    result.history = history
    vectors = result.vectors()
    if not np.all(np.isfinite(vectors)):
        raise_divergence(result)
    if checkpoint is not None or resume:
        _save(out, ckpt, result.state, result.position, config, vocab, history)
    else:
        _save(out, None, result.state, result.position, config, vocab, history)
    formats.save_word2vec_text(out / "vectors.txt", vocab.words, vectors)
    if binary:
        formats.save_word2vec_binary(out / "vectors.bin", vocab.words, vectors)
    atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    return RunOutput(result, vocab, stats, out, resumed_from)


def _save(out: Path, ckpt, state, position, config, vocab, history) -> None:
    """Write config.json and (if ckpt) the checkpoint; nothing is written before training has
    produced something worth keeping, so a run that fails early leaves no files behind."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.json", json.dumps(config_to_dict(config), indent=2) + "\n")
    if ckpt is not None:
        save_train_checkpoint(ckpt, state, position, config, vocab, history)


def raise_divergence(result: TrainResult):
    from sg_jax.errors import DivergenceError

    raise DivergenceError(f"training diverged: the embeddings hold NaN or Inf after step {int(result.state.step)}; "
                          f"lower the learning rate (--lr) or set --clip-norm")
