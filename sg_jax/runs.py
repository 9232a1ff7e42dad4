"""A training run: corpus in; vectors, checkpoints and a metrics log out. The one run path.

`run_training` is what `sg-jax train`, the sweep and the Python API (`sg_jax.train_model`) call.
It reads the corpus, builds the vocabulary, trains (resuming from `DIR/checkpoint.sgjax` when
asked, or continuing a model held in memory), checkpoints at an interval of steps or seconds,
appends each jitted call's record to the metrics log as the call completes, and writes every
other output atomically (the files and their manifest: `sg_jax.run_files`):

    DIR/vectors.txt        word2vec text format (DIR/vectors.bin with binary=True)
    DIR/checkpoint.sgjax   the full TrainState, data-pipeline position, schedule, config, vocabulary,
                           the corpus fingerprint and the training log
    DIR/metrics.jsonl      one JSON object per jitted call (step, epoch, loss, lr, words, seconds)
    DIR/config.json        the run's configuration
    DIR/run.json           written last: the run's id and the sha256 of every file above, so a set
                           of files that belong together can be told from a mixture

A directory holds one run. Training into a directory that holds a finished run is refused unless
the caller resumes it (`resume=True`; with more epochs than it had, the run is extended) or
overwrites it (`overwrite=True`: the old run's files are removed first, so a crash can never
leave old and new files side by side). With `out_dir=None` nothing is written. The library says
nothing unless given a `log` callback (the command line passes its console printer).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np

import sg_jax.checkpoint as ckpt_io
import sg_jax.compile_cache as compile_cache
import sg_jax.formats as formats
import sg_jax.parallel.sharded as sharded
from sg_jax.atomic import atomic_write_text
from sg_jax.config import RESOLVED_AUTO, Config, is_auto
from sg_jax.data.corpus import EncodedCorpus, ReadStats, Vocab, corpus_fingerprint, load_corpus
from sg_jax.data.encoded import CACHE_ENV, is_encoded, read_manifest
from sg_jax.errors import ConfigError, CorpusError, DivergenceError, FormatError, VocabError, quoted
from sg_jax.mesh import agree_across_processes, resolve_devices
from sg_jax.objectives import get_spec
from sg_jax.resolved import Resolved, resolve
from sg_jax.run_files import (CHECKPOINT, CONFIG, MANIFEST, METRICS, append_metrics, refuse_finished_run,
                              remove_outputs, write_manifest, write_metrics)
from sg_jax.train import Position, Schedule, TrainResult, TrainState, init_state, make_optimizer, train
from sg_jax.windows import NO_PAIRS

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


@dataclasses.dataclass(frozen=True)
class Corpus:
    """A corpus read and encoded for training, with where it came from."""

    vocab: Vocab
    encoded: EncodedCorpus
    stats: ReadStats | None
    fingerprint: str
    source: str


@dataclasses.dataclass
class Progress:
    """Where a run stands: what a checkpoint holds besides the config and the vocabulary."""

    state: TrainState
    position: Position
    history: list[dict]
    schedule: Schedule = Schedule()


@dataclasses.dataclass
class RunOutput:
    result: TrainResult
    vocab: Vocab
    stats: ReadStats | None
    out_dir: Path | None
    resumed_from: Position | None
    progress: Progress
    corpus: Corpus


def read_corpus(config: Config, corpus, on_read: Callable[[int, int], None] | None = None) -> Corpus:
    """Read and encode `corpus` (a path, "default", "toy:...", token lists or an iterable of them).
    A one-shot iterator (a generator) is refused for more than one epoch: a run must be able to
    read its corpus again (to resume or train more), so pass a list or a restartable iterable (a
    class whose __iter__ starts over), which is streamed and never held in memory.
    on_read(bytes_read, file_bytes): called while a file is read."""
    if config.epochs > 1 and _one_shot(corpus):
        raise CorpusError(f"the corpus is a one-shot iterator ({type(corpus).__name__}), which can be read only "
                          f"once, but epochs={config.epochs}: pass a list, a file path or a restartable iterable "
                          "(an object whose __iter__ starts over)")
    vocab, encoded, stats = load_corpus(corpus, min_count=config.min_count, max_size=config.max_vocab,
                                        lowercase=config.lowercase, errors=config.encoding_errors,
                                        normalize=config.normalize, strip_diacritics=config.strip_diacritics,
                                        on_progress=on_read, cache_dir=os.environ.get(CACHE_ENV) or None)
    check_trainable(vocab, encoded, config)
    return Corpus(vocab, encoded, stats, *corpus_identity(corpus, encoded))


def _one_shot(source) -> bool:
    """Whether `source` is an iterator that can be read only once (gensim's test: iter(x) is x)."""
    if isinstance(source, (str, bytes, os.PathLike, list, tuple)) or not hasattr(source, "__iter__"):
        return False
    return iter(source) is source


def corpus_identity(source, encoded: EncodedCorpus) -> tuple[str, str]:
    """(fingerprint, name) of a corpus: the sha256 of a file's bytes or of token lists, or, for
    another iterable, of what was encoded from it (a block at a time: the ids may be a memory
    map)."""
    if isinstance(source, (str, Path)) and is_encoded(source):  # the fingerprint of the corpus it holds
        fingerprint = read_manifest(source)["fingerprint"]
    elif isinstance(source, (str, Path, list, tuple)):
        fingerprint = corpus_fingerprint(source)
    else:
        h = hashlib.sha256()
        for array in (encoded.ids, encoded.offsets):
            for i in range(0, len(array), 1 << 22):
                h.update(np.ascontiguousarray(array[i:i + (1 << 22)]).tobytes())
        fingerprint = h.hexdigest()
    name = source if isinstance(source, str) else str(source) if isinstance(source, Path) else "<in-memory corpus>"
    return fingerprint, name


def check_trainable(vocab: Vocab, encoded, config: Config) -> None:
    """Refuse, before anything is written, a corpus that cannot give a single training example."""
    if len(vocab) < 2:
        raise VocabError(f"the vocabulary has only 1 word ({vocab.words[0]!r}) after min_count={config.min_count}; "
                         f"training needs at least 2 distinct words")
    if not (np.diff(np.asarray(encoded.offsets)) >= 2).any():
        raise CorpusError(NO_PAIRS)


# ------------------------------------------------------------------------------ checkpoints


def save_train_checkpoint(path, progress: Progress, config: Config, vocab: Vocab, fingerprint: str,
                          source: str | None = None) -> None:
    meta = {"kind": CHECKPOINT_KIND, "config": config.to_dict(), "position": dataclasses.asdict(progress.position),
            "schedule": dataclasses.asdict(progress.schedule), "vocab": vocab.to_dict(),
            "corpus_fingerprint": fingerprint, "corpus_source": source, "history": progress.history}
    state = progress.state
    if config.shard_tables:  # the devices' padded shards, gathered: the replicated layout's form
        state = sharded.host_state(state, config, len(vocab))
    ckpt_io.save_checkpoint(path, state, meta)


def read_checkpoint_meta(path) -> tuple[Config, Vocab, dict]:
    """(saved config, saved vocabulary, metadata) of a training checkpoint, validated."""
    meta = ckpt_io.load_checkpoint_meta(path)
    if not isinstance(meta, dict) or meta.get("kind") != CHECKPOINT_KIND:
        raise FormatError(f"{path} is not a training checkpoint")
    for name in ("config", "position", "vocab"):
        if name not in meta:
            raise FormatError(f"checkpoint {path} lacks the field {name}")
    config = Config.from_dict(meta["config"], where=f"checkpoint {path}: config")
    _counters(meta["position"], Position, f"checkpoint {path}: position")
    _counters(meta.get("schedule", {}), Schedule, f"checkpoint {path}: schedule")
    history = meta.get("history", [])
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise FormatError(f"checkpoint {path}: history is not a list of JSON objects")
    for name, kind, what in (("vocab", dict, "a JSON object"), ("corpus_fingerprint", (str, type(None)), "a string")):
        if not isinstance(meta.get(name), kind):
            raise FormatError(f"checkpoint {path}: {name} is not {what}")
    try:
        vocab = Vocab.from_dict(meta["vocab"])
    except (TypeError, ValueError, KeyError) as e:
        raise FormatError(f"checkpoint {path}: vocab is damaged ({type(e).__name__}: {quoted(str(e))})") from None
    return config, vocab, meta


def _counters(d, kind, where: str) -> None:
    """Refuse a position or schedule record with unknown, missing or non-counter fields."""
    if not isinstance(d, dict):
        raise FormatError(f"{where} is not a JSON object")
    names = [f.name for f in dataclasses.fields(kind)]
    for key in d:
        if key not in names:
            raise FormatError(f"{where} has an unknown field {quoted(key)}")
    for key in names:
        if key not in d and kind is Position:
            raise FormatError(f"{where} lacks the field {key}")
        value = d.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise FormatError(f"{where}: {key} is {quoted(json.dumps(value))}, not a whole number >= 0")


def load_progress(path, config: Config, vocab: Vocab, fingerprint: str) -> tuple[Progress, Config]:
    """The progress saved in a checkpoint of a run with this config (or the same config with more
    epochs: an extension of a finished run), vocabulary and corpus. Returns (progress, config the
    checkpoint's schedule belongs to)."""
    saved, saved_vocab, meta = read_checkpoint_meta(path)
    # options left auto resume with what auto chose when the run was trained
    config = dataclasses.replace(config, **{name: getattr(saved, name) for name in RESOLVED_AUTO
                                            if is_auto(getattr(config, name))})
    position = Position(**meta["position"])
    schedule = Schedule(**meta.get("schedule", {}))
    diff = [f.name for f in dataclasses.fields(Config) if getattr(saved, f.name) != getattr(config, f.name)]
    extend = diff == ["epochs"] and config.epochs > saved.epochs and position == Position(saved.epochs, 0, 0)
    if diff and not extend:
        shown = ", ".join(f"{n}={getattr(saved, n)!r} (now {getattr(config, n)!r})" for n in diff)
        hint = " (a run can be extended by more epochs only once it has finished)" if diff == ["epochs"] else ""
        raise ConfigError(f"cannot resume {path}: the config differs: {shown}{hint}")
    if saved_vocab != vocab:
        raise ConfigError(f"cannot resume {path}: the corpus gives a different vocabulary than the checkpoint's")
    theirs = meta.get("corpus_fingerprint")
    if theirs is not None and theirs != fingerprint:
        raise ConfigError(f"cannot resume {path}: it was trained on a different corpus "
                          f"(sha256 {theirs[:16]}…, now {fingerprint[:16]}…)")
    if saved.shard_tables:  # read to the host, to be re-sharded: never the whole tables on one device
        template = sharded.host_template(saved, len(vocab))
    else:
        template = init_state(saved, len(vocab), make_optimizer(saved, 1))
    state, _ = ckpt_io.load_checkpoint(path, template=template)
    history = list(meta.get("history", []))
    if extend:
        schedule = Schedule(start_step=int(state.step), start_epoch=saved.epochs)
    return Progress(state, position, history, schedule), config


def finished(progress: Progress, config: Config) -> bool:
    return progress.position == Position(config.epochs, 0, 0)


# ------------------------------------------------------------------------------ the run


def run_training(config: Config, corpus, out_dir=None, *, binary: bool = False, resume: bool = False,
                 overwrite: bool = False, until_epoch: int | None = None,
                 checkpoint: CheckpointPolicy | None = CheckpointPolicy(), on_call: Callable | None = None,
                 log: Callable[[str], None] | None = None, loaded: Corpus | None = None,
                 start: Progress | None = None, write_vectors: bool = True,
                 on_read: Callable[[int, int], None] | None = None) -> RunOutput:
    """Train `config` on `corpus` into out_dir (None: in memory only).

    loaded: an already-read `Corpus` (skips reading `corpus` again).
    start: continue from this in-memory progress (the model API's train_more) instead of a
    checkpoint. on_call(state, position, record): called after every jitted call, once its
    record is in DIR/metrics.jsonl. on_read(bytes_read, file_bytes): called while the corpus file
    is read. log: given each progress line (None: silent).
    """
    log = log or (lambda line: None)
    config = dataclasses.replace(config.validate(), devices=resolve_devices(config.devices))
    compile_cache.enable()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a directory")
    if out is not None and start is None and not resume and not overwrite:
        refuse_finished_run(out)  # before the corpus is read: that can take long
    data = loaded if loaded is not None else read_corpus(config, corpus, on_read)
    vocab, encoded = data.vocab, data.encoded
    _agree(config, data)
    writer = _writes()  # several processes train one model; process 0 writes it
    if data.stats is not None:
        log(f"corpus: {data.stats.summary()}")
    log(f"vocabulary: {len(vocab)} words (min_count={config.min_count}, max_vocab={config.max_vocab}); "
        f"{encoded.n_tokens} tokens in {encoded.n_sentences} sentences")

    ckpt = out / CHECKPOINT if out is not None else None
    progress = start
    if progress is None and ckpt is not None and ckpt.exists():
        if resume:
            progress, config = load_progress(ckpt, config, vocab, data.fingerprint)
            if finished(progress, config):
                log(f"{out} holds a finished run of {config.epochs} epoch(s); nothing to do")
            else:
                log(f"resuming from {ckpt} at epoch {progress.position.epoch}, step {progress.position.step} "
                    f"of chunk {progress.position.chunk}")
        elif not overwrite:
            raise ConfigError(f"{out} already holds a run ({CHECKPOINT}); resume it (--resume), "
                              f"overwrite it (--overwrite) or choose another output directory")
    elif out is not None and not resume and not overwrite and (out / MANIFEST).exists():
        raise ConfigError(f"{out} already holds a run ({MANIFEST}); overwrite it (--overwrite) "
                          f"or choose another output directory")
    resumed_from = progress.position if progress is not None else None
    resolved = resolve(config, config.devices)  # every choice of the run, made once: what it records
    config = resolved.config
    log(describe_devices(resolved))
    history = list(progress.history) if progress is not None else []
    metrics = out if out is not None and writer else None
    made_dir = out is not None and not out.exists()
    if metrics is not None:
        if progress is None:
            remove_outputs(out)  # never leave an old run's files beside the new run's
        else:
            if not finished(progress, config):  # its files are about to change: no manifest claims them
                (out / MANIFEST).unlink(missing_ok=True)
            write_metrics(out, history)  # the checkpoint's records: later ones are trained again
    schedule = progress.schedule if progress is not None else Schedule()
    last_save = {"time": time.monotonic(), "step": int(progress.state.step) if progress is not None else 0,
                 "saved": progress is not None}

    def after_call(state, pos, record):
        history.append(record)
        if metrics is not None:
            append_metrics(metrics, record)
        if on_call is not None:
            on_call(state, pos, record)
        if checkpoint is None or ckpt is None or not writer:
            return
        step = record["step"]
        due_steps = checkpoint.every_steps and step // checkpoint.every_steps > last_save["step"] // checkpoint.every_steps
        due_time = checkpoint.every_seconds and time.monotonic() - last_save["time"] >= checkpoint.every_seconds
        if due_steps or due_time:
            save_run(out, ckpt, Progress(state, pos, history, schedule), config, data)
            last_save.update(time=time.monotonic(), step=step, saved=True)

    baseline = next((r["first_loss"] for r in history if r.get("first_loss") is not None), None)
    try:
        result = train(resolved, vocab.words, vocab.counts, encoded.ids, encoded.offsets,
                       state=progress.state if progress is not None else None,
                       position=progress.position if progress is not None else Position(), until_epoch=until_epoch,
                       schedule=schedule, baseline=baseline, on_call=after_call)
    except BaseException:
        if metrics is not None and not last_save["saved"]:  # a fresh run with nothing to resume from
            (metrics / METRICS).unlink(missing_ok=True)
            if made_dir and metrics.is_dir() and not any(metrics.iterdir()):
                metrics.rmdir()
        raise
    result.history = history
    final = Progress(result.state, result.position, history, schedule)
    finish_run(out if writer else None, result, final, config, data, keep_checkpoint=checkpoint is not None or resume,
               write_vectors=write_vectors, binary=binary)
    return RunOutput(result, vocab, data.stats, out, resumed_from, final, data)


def describe_devices(resolved: Resolved) -> str:
    """How a run uses its devices, in one log line: the count, the tables' layout, the step's
    window layout and how noise words are shared."""
    config, n = resolved.config, resolved.devices
    if n == 1:
        tables = "1 device" + (" (shard_tables has nothing to split on one device)" if config.shard_tables else "")
    elif config.shard_tables:
        tables = f"{n} devices, tables sharded by row over them (every step synchronous)"
    else:
        tables = (f"{n} devices, a replica of the tables on each, synced every {resolved.sync_every} step(s) "
                  f"(sync_combine {config.sync_combine})")
    draws_noise = "share_negatives" in get_spec(config.objective).options
    noise = f"noise words {resolved.sharing}-shared" if draws_noise else config.objective
    return f"devices: {tables}; window layout {resolved.layout.name}; {noise}"


def finish_run(out: Path | None, result: TrainResult, final: Progress, config: Config, data: Corpus, *,
               keep_checkpoint: bool = True, write_vectors: bool = True, binary: bool = False) -> None:
    """Refuse non-finite vectors, then write a trained run's outputs into `out` (None: nothing is
    written): config, checkpoint, vectors, metrics, and last the manifest."""
    vectors = result.vectors()
    if not np.all(np.isfinite(vectors)):
        raise DivergenceError(f"training diverged: the embeddings hold NaN or Inf after step "
                              f"{int(result.state.step)}; lower the learning rate (lr) or set clip_norm")
    if out is None:
        return
    save_run(out, out / CHECKPOINT if keep_checkpoint else None, final, config, data)
    if write_vectors:
        formats.save_word2vec_text(out / "vectors.txt", data.vocab.words, vectors)
        if binary:
            formats.save_word2vec_binary(out / "vectors.bin", data.vocab.words, vectors)
    write_metrics(out, final.history)  # what was appended call by call, now whole and atomic
    write_manifest(out, config, data.fingerprint)


def _writes() -> bool:
    return jax.process_index() == 0


def _agree(config: Config, data: Corpus) -> None:
    """In a multi-process run, refuse processes that see a different corpus, vocabulary or config."""
    agree_across_processes("corpus", data.fingerprint)
    agree_across_processes("vocabulary", "\x1f".join(data.vocab.words) + repr(np.asarray(data.vocab.counts).tolist()))
    agree_across_processes("configuration", json.dumps(config.to_dict(), sort_keys=True))


def save_run(out: Path, ckpt: Path | None, progress: Progress, config: Config, data: Corpus) -> None:
    """Write DIR/config.json and (if ckpt) the checkpoint of `progress` at ckpt: what a run saves
    at its checkpoint interval and at its end. Only the metrics log is written before the first
    save (and removed again when a fresh run fails before it: `run_training`), so a run that fails
    early leaves no files behind."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG, json.dumps(config.to_dict(), indent=2) + "\n")
    if ckpt is not None:
        save_train_checkpoint(ckpt, progress, config, data.vocab, data.fingerprint, data.source)
