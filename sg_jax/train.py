"""The epoch loop: plan a run, dispatch the jitted steps chunk by chunk, watch for divergence.

The host side only dispatches jitted calls (`sg_jax.parallel`'s runners, many steps each) and
reads one small vector of losses per call. It knows nothing about files or progress bars: a
caller passes `on_call(state, position, record)`, called after every jitted call (the run path
checkpoints from it, the command line draws its bar from it, a test collects the records).

A run stops with `DivergenceError` as soon as a call shows it has blown up: a non-finite loss, a
loss per example more than `LOSS_BLOWUP` times that of the run's first step (at word2vec's
initialisation the first losses are the uniform baseline, e.g. log V for the exact softmax or
(1 + k) log 2 for negative sampling), or a parameter larger than `PARAM_LIMIT` in magnitude
(embeddings trained by word2vec stay of order 1). Losses are summed on the host in float64.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import sg_jax.data.epoch as epochs
import sg_jax.interrupts as interrupts
import sg_jax.keys as keys
import sg_jax.parallel as parallel
import sg_jax.parallel.ahead as ahead
import sg_jax.parallel.sharded as sharded
import sg_jax.parallel.together as together_runs
from sg_jax.config import Config
from sg_jax.errors import CorpusError, DivergenceError
from sg_jax.mesh import make_mesh, replicate, resolve_devices
from sg_jax.objectives import Objective, get_spec
from sg_jax.resolved import Resolved, resolve
from sg_jax.step import TrainState, effective_batch_size, init_state, learning_rate_schedule, make_optimizer
from sg_jax.windows import keep_probability

LOSS_BLOWUP = 10.0   # a call's loss per example above this multiple of the first call's: diverged
PARAM_LIMIT = 1e4    # |parameter| above this: diverged

__all__ = ["Config", "Position", "Schedule", "TrainResult", "TrainState", "init_state", "make_optimizer", "make_plan",
           "train"]


@dataclasses.dataclass(frozen=True)
class Position:
    """Where the data pipeline stands: the next step of chunk `chunk` of epoch `epoch`."""

    epoch: int = 0
    chunk: int = 0
    step: int = 0


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The learning-rate decay in force: from optimizer step `start_step` (taken at the start of
    epoch `start_epoch`) linearly down over the epochs up to config.epochs. A fresh run is
    Schedule(0, 0); a finished run extended by more epochs decays again from its end."""

    start_step: int = 0
    start_epoch: int = 0


@dataclasses.dataclass
class TrainResult:
    state: TrainState
    config: Config
    words: tuple[str, ...]
    history: list[dict]       # one record per jitted call: step, epoch, loss (mean), lr, words
    seconds: float            # wall time of this invocation: its plan, tables, compilation and steps
    words_done: int           # raw corpus words processed in this invocation
    position: Position

    @property
    def words_per_second(self) -> float:
        return self.words_done / self.seconds if self.seconds > 0 else float("nan")

    @property
    def final_loss(self) -> float:
        return self.history[-1]["loss"] if self.history else float("nan")

    def vectors(self) -> np.ndarray:
        return np.asarray(self.state.params.w_in)


class Plan(NamedTuple):
    """Host-side facts about the run derived once from config, vocab and corpus."""

    obj: Objective
    optimizer: optax.GradientTransformation
    tables: Any
    keep_prob: jax.Array
    chunks: list
    batch_size: int
    total_steps: int          # optimizer steps the schedule in force spans
    run_steps: Any
    schedule: Schedule
    shards: Any = None        # sg_jax.parallel.sharded.RowShards of a run with tables sharded by row, else None
    resolved: Any = None      # sg_jax.resolved.Resolved: the run's choices


def make_plan(run: Config | Resolved, counts: np.ndarray, ids: np.ndarray, offsets: np.ndarray,
              schedule: Schedule = Schedule(), together: int = 0) -> Plan:
    """The host-side plan of a resolved run (`sg_jax.resolved.resolve`; a Config is resolved on
    its own device count). together=D > 0: the plan of runs trained together on D devices
    (`sg_jax.study.together`), each a one-device run of the resolved config's settings (the
    group's widest window and dimension)."""
    resolved = run if isinstance(run, Resolved) else resolve(run)
    config, obj, n = resolved.config, resolved.objective, resolved.devices
    counts = np.asarray(counts)
    tables = get_spec(config.objective).tables(counts, config)
    keep = keep_probability(counts, config.sample)
    chunks = epochs.chunk_bounds(offsets, config.chunk_tokens)
    # no context lies further away than the longest sentence allows
    slots = max(1, min(config.window, int(np.diff(np.asarray(offsets)).max(initial=2)) - 1))
    B = effective_batch_size(config, counts.size, slots, devices=n, layout=resolved.layout)
    # word2vec decays the rate by words processed; a step visits B kept words per device, so the decay runs
    # over the expected number of steps (expected kept tokens = sum of keep probabilities).
    per_epoch = 0
    for start, end in chunks:
        expected = float(keep[epochs.read_tokens(ids, start, end)].sum())
        per_epoch += math.ceil(expected / (B * n))
    total_steps = (config.epochs - schedule.start_epoch) * max(per_epoch, 1)
    optimizer = make_optimizer(config, total_steps, schedule.start_step)
    if together:
        run_steps, shards = together_runs.make(resolved, optimizer, B, slots, devices=together), None
    else:
        runner = parallel.make_runner(resolved, optimizer, B, slots, counts.size)
        run_steps, shards = runner.run_steps, runner.shards
    return Plan(obj, optimizer, tables, jnp.asarray(keep, dtype=jnp.float32), chunks, B, total_steps, run_steps,
                schedule, shards, resolved)


def divergence(losses: np.ndarray, examples: np.ndarray, max_abs: float,
               baseline: float | None) -> tuple[int, str] | None:
    """(index of the first bad step in the call, why) if a call's results show a blown-up run,
    else None. losses/examples: the call's steps; max_abs: the parameters' size after the call."""
    bad = ~np.isfinite(losses)
    if baseline:
        per = losses.astype(np.float64) / np.maximum(examples.astype(np.float64), 1.0)
        bad |= (examples > 0) & (per > LOSS_BLOWUP * baseline)
    if bad.any():
        j = int(np.argmax(bad))
        if not np.isfinite(losses[j]):
            return j, f"the loss became {losses[j]}"
        return j, (f"the loss per example rose to {losses[j] / examples[j]:.4g}, over {LOSS_BLOWUP:g}x the "
                   f"first steps' {baseline:.4g}")
    if not math.isfinite(max_abs) or max_abs > PARAM_LIMIT:
        return len(losses) - 1, f"a parameter reached {max_abs:.3g} (limit {PARAM_LIMIT:.0e})"
    return None


def train(config: Config | Resolved, words, counts, ids: np.ndarray, offsets: np.ndarray, *, state: TrainState | None = None,
          position: Position = Position(), until_epoch: int | None = None, schedule: Schedule = Schedule(),
          baseline: float | None = None, on_call: Callable | None = None, compile_ahead: bool | None = None) -> TrainResult:
    """Train on an encoded corpus (ids int32 [T], sentence offsets [S + 1]).

    config: a Config (resolved here, on its device count over every process:
    `sg_jax.mesh.resolve_devices`), or a run resolved already (`sg_jax.resolved.resolve`).

    state/position: resume from a checkpoint (None: a fresh run from `config.seed`).
    until_epoch: stop after this many epochs (the schedule still spans config.epochs), so a run
    can be split into several invocations with results identical to one.
    schedule: the learning-rate decay in force (see `Schedule`).
    baseline: the loss per example of the run's first step (None: taken from this invocation's).
    on_call(state, position, record): called after every jitted call. With tables sharded by row
    (config.shard_tables), that state is the devices' padded shards (`sharded.host_state` gives
    the saved form) and the result's state is gathered to the host, unpadded.
    compile_ahead: on one device, compile the step on a second thread while the tables are
    initialised and the first epoch prepared (`sg_jax.parallel.ahead`; the same vectors either way);
    None: where the corpus is large enough to gain from it (`ahead.worth_it`).
    """
    t0 = time.perf_counter()   # the run's clock: what the step's compilation overlaps is inside it
    resolved = config if isinstance(config, Resolved) else resolve(config, resolve_devices(config.devices))
    config = resolved.config
    plan = make_plan(resolved, counts, ids, offsets, schedule)
    n_dev, shards = config.devices, plan.shards
    mesh = make_mesh(n_dev) if n_dev > 1 else None
    run_steps = plan.run_steps
    tokens = max((end - start for start, end in plan.chunks), default=0)
    if (ahead.worth_it(tokens) if compile_ahead is None else compile_ahead) and mesh is None and shards is None:
        given = state
        make_state = (lambda: given) if given is not None else (lambda: init_state(config, len(words), plan.optimizer))
        unit = resolved.layout.epoch_unit(config, plan.batch_size)
        run_steps = ahead.StepAhead(plan.run_steps, lambda: ahead.call_shapes(config, plan, make_state, tokens, unit))
    if shards is not None:  # each device holds its block of rows, never the whole tables
        sharded.check_processes()
        state = shards.init() if state is None else shards.shard(state)
    elif state is None:
        state = init_state(config, len(words), plan.optimizer)
    tables = plan.tables
    base_key = np.asarray(state.key)  # a host copy: keys are made on each process's own device
    if mesh is not None:  # one copy on every device, once: the calls then move nothing
        state = state if shards is not None else replicate(state, mesh)
        tables = replicate(tables, mesh)
    calls = Calls(config, plan, ids, offsets, base_key, position, until_epoch, mesh, n_dev)
    watch = Watch(config, plan, baseline, calls.words_total, t0)
    for call in calls:
        interrupts.check()  # a Ctrl-C swallowed by a callback of the interpreter's is raised here
        state, stats = run_steps(state, call.data, tables, call.epoch_key, call.first, call.steps)
        record = watch.after_call(np.asarray(stats.losses), np.asarray(stats.examples), float(stats.max_abs),
                                  int(state.step), call)
        if on_call is not None:
            on_call(state, call.next_position, record)
        del call   # its chunk's data is freed before the next chunk is made
    jax.block_until_ready(state.params)
    if shards is not None:
        state = sharded.host_state(state, config, len(words))
    watch.check_examples(calls)
    return TrainResult(state, config, tuple(words), watch.history, time.perf_counter() - watch.t0, watch.words_done,
                       calls.position)


@dataclasses.dataclass(frozen=True)
class Call:
    """One jitted call's place in the run: steps [first, first + steps_per_call) of a chunk."""

    epoch: int
    chunk: int
    first: int
    steps: int            # steps in this chunk's epoch
    done: int             # steps this call takes
    words: int            # raw corpus words this call covers
    progress: float       # fraction of the epoch done after the call
    next_position: Position
    data: Any
    epoch_key: Any


class Calls:
    """The jitted calls of a run from `position` to `until_epoch` (default config.epochs): each
    epoch chunk's data is subsampled and ordered on the device, then cut into calls."""

    def __init__(self, config: Config, plan: Plan, ids, offsets, base_key, position: Position,
                 until_epoch: int | None = None, mesh=None, n_dev: int = 1):
        self.config, self.plan, self.ids, self.offsets = config, plan, ids, offsets
        self.base_key, self.position, self.mesh, self.n_dev = base_key, position, mesh, n_dev
        self.last_epoch = config.epochs if until_epoch is None else min(until_epoch, config.epochs)
        self.chunk_words = [end - start for start, end in plan.chunks]
        self.unit = plan.resolved.layout.epoch_unit(config, plan.batch_size)  # what an epoch orders
        self.words_total = (sum(self.chunk_words) * (self.last_epoch - position.epoch)
                            - _words_before(position, self.chunk_words))

    def __iter__(self):
        plan, config, position = self.plan, self.config, self.position
        n_chunks = len(plan.chunks)
        resident: dict = {}
        data = dev = None
        for epoch in range(position.epoch, self.last_epoch):
            for c, (start, end) in enumerate(plan.chunks):
                if epoch == position.epoch and c < position.chunk:
                    continue
                first = position.step if (epoch == position.epoch and c == position.chunk) else 0
                if c not in resident:  # a corpus in one chunk goes to the device once, not every epoch
                    data = dev = None   # the last chunk's arrays freed before this one's are made (memory)
                    dev = epochs.to_device(self.ids, self.offsets, start, end, pad_to=max(self.chunk_words))
                    resident = {c: dev} if n_chunks == 1 else {}
                else:
                    dev = resident[c]
                key = keys.chunk_key(self.base_key, epoch * n_chunks + c, config.key_schedule)
                data = None   # the last epoch's data freed before this one's is made
                data = epochs.prepare_epoch(keys.data_key(key, config.key_schedule), dev, plan.keep_prob, config.shuffle,
                                            self.unit)
                steps = -(-int(data.n) // (plan.batch_size * self.n_dev))
                epoch_key = keys.steps_key(key)
                if self.mesh is not None:
                    data, epoch_key = replicate(data, self.mesh), replicate(epoch_key, self.mesh)
                cw, per = self.chunk_words[c], max(steps, 1)
                for s0 in range(first, steps, config.steps_per_call):
                    done = min(config.steps_per_call, steps - s0)
                    # raw corpus words covered: the chunk's words in proportion to its steps
                    words = (cw * (s0 + done)) // per - (cw * s0) // per
                    nxt = Position(epoch, c, s0 + done) if s0 + done < steps else _next(epoch, c, n_chunks)
                    yield Call(epoch, c, s0, steps, done, words, (c + (s0 + done) / per) / n_chunks, nxt, data,
                               epoch_key)
                self.position = _next(epoch, c, n_chunks)


class Watch:
    """One run's per-call bookkeeping: the divergence checks and the history records."""

    def __init__(self, config: Config, plan: Plan, baseline: float | None, words_total: int,
                 t0: float | None = None):
        self.config, self.plan, self.baseline, self.words_total = config, plan, baseline, words_total
        self.lr_at = learning_rate_schedule(config, plan.total_steps, plan.schedule.start_step)
        self.history: list[dict] = []
        self.words_done, self.t0 = 0, time.perf_counter() if t0 is None else t0
        self.last_finite = None

    def after_call(self, losses: np.ndarray, examples: np.ndarray, max_abs: float, step: int, call: Call) -> dict:
        """The record of a call (raises DivergenceError if the call shows a blown-up run)."""
        done = call.done
        losses, examples_ = losses[:done], examples[:done]
        n = float(examples_.sum())
        if self.baseline is None and n:  # the first step's loss per example: the run's scale
            j = int(np.argmax(examples_ > 0))
            self.baseline = float(losses[j]) / float(examples_[j]) if np.isfinite(losses[j]) else None
        problem = divergence(losses, examples_, max_abs, self.baseline)
        if problem:
            at, why = problem
            finite = [j for j in range(at) if examples_[j] > 0]
            if finite:
                self.last_finite = round(float(losses[finite[-1]]) / float(examples_[finite[-1]]), 6)
            raise DivergenceError(
                f"training diverged at step {step - done + at + 1}: {why} (last finite loss "
                f"{self.last_finite if self.last_finite is not None else 'none'}); lower the learning rate "
                f"(lr, now {self.config.learning_rate}) or the batch size (batch_size, now {self.plan.batch_size}), "
                f"or set clip_norm")
        seen = [j for j in range(done) if examples_[j] > 0]
        if seen:  # the loss of the last step (a mean over its examples), for the divergence message
            self.last_finite = round(float(losses[seen[-1]]) / float(examples_[seen[-1]]), 6)
        loss = float(losses.astype(np.float64).sum()) / n if n else float("nan")
        self.words_done += call.words
        record = {"step": step, "epoch": call.epoch + call.progress, "loss": loss, "first_loss": self.baseline,
                  "examples": n, "lr": float(self.lr_at(step)), "words": self.words_done,
                  "words_total": self.words_total, "seconds": time.perf_counter() - self.t0}
        self.history.append(record)
        return record

    def check_examples(self, calls: Calls) -> None:
        if self.history and not any(r["examples"] for r in self.history):
            raise CorpusError(f"no training examples: subsampling (sample={self.config.sample}) and the window left "
                              f"no (target, context) pair in {sum(calls.chunk_words)} tokens; use sample 0 on a "
                              f"small corpus")


def _words_before(position: Position, chunk_words: list[int]) -> int:
    """Raw words of position.epoch already covered before `position` (resuming mid-epoch)."""
    return sum(chunk_words[: position.chunk])


def _next(epoch: int, chunk: int, n_chunks: int) -> Position:
    return Position(epoch, chunk + 1, 0) if chunk + 1 < n_chunks else Position(epoch + 1, 0, 0)
