"""Training: Config, TrainState, the jitted sparse step, and the epoch loop.

One step (`make_step`) gathers the rows of W and W' that a batch touches, differentiates the
objective with respect to those rows with `jax.grad`, lets an optax transformation (SGD with
word2vec's linear decay) turn the gradients into updates, and scatter-adds them back: one
scatter per table, with the tables donated, so a step costs O(batch x dim) for the sampled
objectives. (The exact softmax touches every row of W' by definition and updates it densely.)

`run_steps` scans many steps inside one jitted call, the batches built on the device by
`sg_jax.pipeline`. The key schedule is positional: epoch e uses fold_in(key, e) and its step s
fold_in(fold_in(key, e), s), so a run resumed from a checkpoint draws exactly the numbers the
uninterrupted run would have drawn.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sg_jax.errors import ConfigError
from sg_jax.huffman import build_huffman
from sg_jax.model import Params, init_params
from sg_jax.objectives import ARCHS, OBJECTIVES, SHARING, Batch, Objective, get_objective, n_examples
from sg_jax.objectives.negative import noise_table
from sg_jax.objectives.softmax import max_batch_for_vocab
from sg_jax import pipeline


MAX_WINDOW = 2**30  # offsets and window draws are int32 on the device


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that determines a run. Defaults follow word2vec / gensim (skip-gram, NS)."""

    arch: str = "sg"              # "sg" (skip-gram) or "cbow"
    sg_form: str = "auto"         # skip-gram: "target" predicts contexts (textbook), "context"s predict the
                                  # target (word2vec C / gensim); auto: target for softmax, else context
    objective: str = "ns"         # "softmax" (exact), "ns" (negative sampling), "hs" (hierarchical)
    dim: int = 100                # N, embedding dimension
    window: int = 5               # max context offset
    dynamic_window: bool = True   # word2vec's reduced window: b ~ U{1..window} per target
    negative: int = 5             # k noise words per prediction (ns)
    share_negatives: str = "target"  # noise words drawn per "none" (pair), "target" (group) or "batch"
    sample: float = 1e-3          # subsampling threshold t (0 disables)
    min_count: int = 5
    max_vocab: int | None = None  # keep only the most frequent words
    epochs: int = 5
    lr: float | None = None       # None: 0.025 for sg, 0.05 for cbow (word2vec's defaults)
    min_lr_ratio: float = 1e-4    # the rate decays linearly to lr * min_lr_ratio
    batch_size: int = 1024        # targets per step (the exact softmax caps it to fit memory)
    pairs: bool = False           # batches of (target, context) pairs instead of target groups
    shuffle: bool = True          # visit the targets of an epoch in random order
    steps_per_call: int = 64      # steps scanned inside one jitted call
    chunk_tokens: int = 1 << 26   # corpus tokens held on the device at once
    clip_norm: float | None = None  # clip the norm of each step's (dense-equivalent) gradient
    dup_cap: float | None = None  # a row met n > dup_cap times in a batch moves by dup_cap/n of its summed
                                  # gradient; None: 64 for hierarchical softmax (its root is in every path), else off
    init: str = "word2vec"        # "word2vec" (W uniform +-0.5/N, W' = 0) or "normal"
    dtype: str = "float32"
    seed: int = 0

    @property
    def resolved_sg_form(self) -> str:
        if self.sg_form != "auto":
            return self.sg_form
        return "target" if self.objective == "softmax" else "context"

    @property
    def resolved_dup_cap(self) -> float | None:
        if self.dup_cap is not None:
            return self.dup_cap
        return 64.0 if self.objective == "hs" else None

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (0.025 if self.arch == "sg" else 0.05)

    def validate(self) -> "Config":
        checks = [
            (self.arch in ARCHS, f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}"),
            (self.objective in OBJECTIVES, f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}"),
            (self.sg_form in ("auto", "target", "context"), f"sg_form must be auto, target or context, got {self.sg_form!r}"),
            (self.share_negatives in SHARING, f"share_negatives must be one of {', '.join(SHARING)}, got {self.share_negatives!r}"),
            (self.dim >= 1, f"dim must be >= 1, got {self.dim}"),
            (self.window >= 1, f"window must be >= 1, got {self.window}"),
            (self.window <= MAX_WINDOW, f"window must be <= {MAX_WINDOW:,}, got {self.window:,}"),
            (self.negative >= 1, f"negative must be >= 1, got {self.negative}"),
            (self.sample >= 0, f"sample must be >= 0, got {self.sample}"),
            (self.min_count >= 1, f"min_count must be >= 1, got {self.min_count}"),
            (self.max_vocab is None or self.max_vocab >= 2, f"max_vocab must be >= 2, got {self.max_vocab}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.learning_rate > 0 and math.isfinite(self.learning_rate), f"lr must be a positive number, got {self.lr}"),
            (0 <= self.min_lr_ratio <= 1, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.steps_per_call >= 1, f"steps_per_call must be >= 1, got {self.steps_per_call}"),
            (self.chunk_tokens >= 2, f"chunk_tokens must be >= 2, got {self.chunk_tokens}"),
            (self.clip_norm is None or self.clip_norm > 0, f"clip_norm must be > 0, got {self.clip_norm}"),
            (self.dup_cap is None or self.dup_cap >= 1, f"dup_cap must be >= 1, got {self.dup_cap}"),
            (self.dtype in ("float32", "float64"), f"dtype must be float32 or float64, got {self.dtype!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self


class TrainState(NamedTuple):
    params: Params
    opt_state: Any
    step: jax.Array   # int32 [] optimizer steps taken
    key: jax.Array    # uint32 [2] the run's base key (never advanced: keys are positional)


def learning_rate_schedule(config: Config, total_steps: int):
    """word2vec's linear decay from lr to lr * min_lr_ratio over the run's steps."""
    lr = config.learning_rate
    return optax.linear_schedule(lr, lr * config.min_lr_ratio, max(total_steps, 1))


def make_optimizer(config: Config, total_steps: int) -> optax.GradientTransformation:
    """SGD with word2vec's linear decay from lr to lr * min_lr_ratio over the run."""
    return optax.sgd(learning_rate_schedule(config, total_steps))


def objective_tables(config: Config, counts: np.ndarray):
    """The tables an objective reads inside jit (passed as arguments, not closed over)."""
    if config.objective == "ns":
        return jnp.asarray(noise_table(counts))
    if config.objective == "hs":
        return jax.tree.map(jnp.asarray, build_huffman(counts))
    return None


def effective_batch_size(config: Config, vocab_size: int, slots: int | None = None) -> int:
    """Targets per step. A step applies the *sum* of the gradients of every occurrence of a row,
    so a batch never holds more targets than the vocabulary has words: with a tiny vocabulary
    each row would otherwise receive dozens of summed gradients per step and diverge. The exact
    softmax is further capped so that its [B, V] scores fit in memory."""
    batch = min(config.batch_size, max(vocab_size, 16))
    if config.objective != "softmax":
        return batch
    per_target = 1 if config.pairs else 2 * min(config.window, slots or config.window)
    return min(batch, max(1, max_batch_for_vocab(vocab_size) // per_target))


def init_state(config: Config, vocab_size: int, optimizer: optax.GradientTransformation) -> TrainState:
    dtype = jnp.dtype(config.dtype)
    key = jax.random.PRNGKey(config.seed)
    out_rows = vocab_size - 1 if config.objective == "hs" else vocab_size
    params = init_params(jax.random.fold_in(key, 0), vocab_size, config.dim, out_rows=out_rows,
                         init=config.init, dtype=dtype)
    # optax SGD keeps no per-parameter state, so the row-shaped gradients need no template
    # beyond their dtype; the schedule's step count is the only state.
    opt_state = optimizer.init((jnp.zeros((1, config.dim), dtype), jnp.zeros((1, config.dim), dtype)))
    return TrainState(params, opt_state, jnp.zeros((), jnp.int32), key)


def occurrences(idx: jax.Array, active: jax.Array) -> jax.Array:
    """For each position i, how many active positions hold the row idx[i]. O(M log M): a sort,
    no V-sized buffer."""
    key = jnp.where(active, idx, jnp.iinfo(idx.dtype).max)
    ordered = jnp.sort(key)
    return jnp.searchsorted(ordered, idx, side="right") - jnp.searchsorted(ordered, idx, side="left")


def cap_duplicates(g: jax.Array, idx: jax.Array, cap: float) -> jax.Array:
    """Scale the gradients of a row met n > cap times in the batch by cap / n.

    A step applies the sum of a row's n gradients, all taken at the same parameters; sequential
    SGD (word2vec) would have moved the row between them. For rows met often (frequent words,
    the nodes near the root of the Huffman tree) the sum overshoots and can diverge; the cap
    bounds a row's step at `cap` average gradients. Rows met at most `cap` times are untouched.
    """
    active = jnp.any(g != 0, axis=-1)
    n = occurrences(idx, active).astype(g.dtype)
    return g * jnp.minimum(1.0, cap / jnp.maximum(n, 1.0))[:, None]


def table_grad_norm(g: jax.Array, idx: jax.Array | None) -> jax.Array:
    """Squared norm of the table gradient that the gathered-row gradients g [M, N] scatter into:
    rows met several times are summed first (segment sums over the sorted indices)."""
    if idx is None:
        return jnp.sum(g * g)
    order = jnp.argsort(idx)
    sorted_idx = idx[order]
    segment = jnp.cumsum(jnp.concatenate([jnp.zeros(1, jnp.int32), (sorted_idx[1:] != sorted_idx[:-1]).astype(jnp.int32)]))
    sums = jax.ops.segment_sum(g[order], segment, num_segments=idx.shape[0])
    return jnp.sum(sums * sums)


def clip_table_grads(grads, in_idx, out_idx, max_norm: float):
    """Scale the batch's gradient so that the norm of its dense equivalent (both tables, rows
    summed over their occurrences) is at most max_norm; the update is then at most lr * max_norm."""
    norm = jnp.sqrt(table_grad_norm(grads[0], in_idx) + table_grad_norm(grads[1], out_idx))
    scale = jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-30)).astype(grads[0].dtype)
    return (grads[0] * scale, grads[1] * scale)


def sparse_update(state: TrainState, obj: Objective, optimizer, batch: Batch, aux, tables,
                  dup_cap: float | None = None, clip_norm: float | None = None):
    """One SGD step on the rows the batch touches. Returns (state, summed loss)."""
    in_idx, out_idx = obj.indices(batch, aux, tables)
    w_in, w_out = state.params
    rows = (w_in[in_idx], w_out if out_idx is None else w_out[out_idx])
    loss, grads = jax.value_and_grad(lambda r: obj.loss_rows(r[0], r[1], batch, aux, tables))(rows)
    if dup_cap is not None:
        grads = (cap_duplicates(grads[0], in_idx, dup_cap),
                 grads[1] if out_idx is None else cap_duplicates(grads[1], out_idx, dup_cap))
    if clip_norm is not None:
        grads = clip_table_grads(grads, in_idx, out_idx, clip_norm)
    updates, opt_state = optimizer.update(grads, state.opt_state, rows)
    w_in = w_in.at[in_idx].add(updates[0])
    w_out = w_out + updates[1] if out_idx is None else w_out.at[out_idx].add(updates[1])
    return TrainState(Params(w_in, w_out), opt_state, state.step + 1, state.key), loss


def make_run_steps(config: Config, obj: Objective, optimizer, batch_size: int, slots: int | None = None):
    """A jitted function running `config.steps_per_call` steps of one epoch chunk.

    run_steps(state, epoch_data, tables, epoch_key, first_step, steps_in_epoch)
      -> (state, losses f[S], examples f[S])
    Steps at or beyond steps_in_epoch are skipped (the state passes through unchanged).
    """
    S = config.steps_per_call

    def one_step(state, epoch, tables, epoch_key, s):
        k_window, k_sample = jax.random.split(jax.random.fold_in(epoch_key, s))
        batch = pipeline.make_batch(epoch, s, k_window, batch_size=batch_size, window=config.window,
                                    dynamic=config.dynamic_window, slots=slots)
        if config.pairs:
            batch = pipeline.as_pairs(batch)
        aux = obj.sample(k_sample, batch, tables)
        state, loss = sparse_update(state, obj, optimizer, batch, aux, tables, config.resolved_dup_cap,
                                    config.clip_norm)
        return state, loss, n_examples(config.arch, batch).astype(loss.dtype)

    @functools.partial(jax.jit, donate_argnums=(0,))
    def run_steps(state, epoch, tables, epoch_key, first_step, steps_in_epoch):
        def body(state, i):
            s = first_step + i

            def skip(state):
                zero = jnp.zeros((), state.params.w_in.dtype)
                return state, zero, zero

            return jax.lax.cond(s < steps_in_epoch, lambda st: one_step(st, epoch, tables, epoch_key, s),
                                skip, state), None

        def scan_body(state, i):
            (state, loss, count), _ = body(state, i)
            return state, (loss, count)

        state, (losses, counts) = jax.lax.scan(scan_body, state, jnp.arange(S))
        return state, losses, counts

    return run_steps


# ---------------------------------------------------------------------------------------------
# the epoch loop (host side: it only dispatches jitted calls and reads one loss vector per call)


@dataclasses.dataclass(frozen=True)
class Position:
    """Where the data pipeline stands: the next step of chunk `chunk` of epoch `epoch`."""

    epoch: int = 0
    chunk: int = 0
    step: int = 0


@dataclasses.dataclass
class TrainResult:
    state: TrainState
    config: Config
    words: tuple[str, ...]
    history: list[dict]       # one record per jitted call: step, epoch, loss (mean), lr, words
    seconds: float            # wall time of this invocation's training loop
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
    total_steps: int
    run_steps: Any


def make_plan(config: Config, counts: np.ndarray, ids: np.ndarray, offsets: np.ndarray) -> Plan:
    from sg_jax.windows import keep_probability

    config.validate()
    counts = np.asarray(counts)
    obj = get_objective(config.arch, config.objective, negative=config.negative, share=config.share_negatives,
                        sg_form=config.resolved_sg_form)
    tables = objective_tables(config, counts)
    keep = keep_probability(counts, config.sample)
    chunks = pipeline.chunk_bounds(offsets, config.chunk_tokens)
    # no context lies further away than the longest sentence allows
    slots = max(1, min(config.window, int(np.diff(np.asarray(offsets)).max(initial=2)) - 1))
    B = effective_batch_size(config, counts.size, slots)
    # word2vec decays the rate by words processed; a step visits B kept words, so the decay runs
    # over the expected number of steps (expected kept tokens = sum of keep probabilities).
    total = 0
    for start, end in chunks:
        expected = float(keep[np.asarray(ids[start:end])].sum())
        total += math.ceil(expected / B)
    total_steps = config.epochs * max(total, 1)
    optimizer = make_optimizer(config, total_steps)
    run_steps = make_run_steps(config, obj, optimizer, B, slots)
    return Plan(obj, optimizer, tables, jnp.asarray(keep, dtype=jnp.float32), chunks, B, total_steps, run_steps)


def train(config: Config, words, counts, ids: np.ndarray, offsets: np.ndarray, *, state: TrainState | None = None,
          position: Position = Position(), until_epoch: int | None = None, progress: bool = True,
          on_call=None) -> TrainResult:
    """Train on an encoded corpus (ids int32 [T], sentence offsets [S + 1]).

    state/position: resume from a checkpoint (None: a fresh run from `config.seed`).
    until_epoch: stop after this many epochs (the schedule still spans config.epochs), so a run
    can be split into several invocations with results identical to one.
    on_call(state, position, record): called after every jitted call (checkpointing hooks in here).
    """
    from sg_jax.errors import DivergenceError
    import time

    plan = make_plan(config, counts, ids, offsets)
    if state is None:
        state = init_state(config, len(words), plan.optimizer)
    last_epoch = config.epochs if until_epoch is None else min(until_epoch, config.epochs)
    chunk_words = [end - start for start, end in plan.chunks]
    bar = _progress_bar(progress, total=sum(chunk_words) * (last_epoch - position.epoch))
    history: list[dict] = []
    words_done, t0 = 0, time.perf_counter()
    last_finite = None
    lr_at = learning_rate_schedule(config, plan.total_steps)
    resident: dict = {}
    for epoch in range(position.epoch, last_epoch):
        for c, (start, end) in enumerate(plan.chunks):
            if epoch == position.epoch and c < position.chunk:
                continue
            first = position.step if (epoch == position.epoch and c == position.chunk) else 0
            if c not in resident:  # a corpus in one chunk goes to the device once, not every epoch
                dev = pipeline.to_device(ids, offsets, start, end, pad_to=max(chunk_words))
                resident = {c: dev} if len(plan.chunks) == 1 else {}
            else:
                dev = resident[c]
            key = jax.random.fold_in(state.key, epoch * len(plan.chunks) + c)
            data = pipeline.prepare_epoch(key, dev, plan.keep_prob, config.shuffle)
            steps = -(-int(data.n) // plan.batch_size)
            epoch_key = jax.random.fold_in(key, 1)
            for s0 in range(first, steps, config.steps_per_call):
                state, losses, counts_ = plan.run_steps(state, data, plan.tables, epoch_key, s0, steps)
                losses, counts_ = np.asarray(losses), np.asarray(counts_)
                done = min(config.steps_per_call, steps - s0)
                bad = ~np.isfinite(losses[:done])
                first_bad = int(np.argmax(bad)) if bad.any() else done
                seen = [j for j in range(first_bad) if counts_[j] > 0]
                if seen:  # the loss of the last finite step (a mean over its examples)
                    last_finite = round(float(losses[seen[-1]] / counts_[seen[-1]]), 6)
                if bad.any():
                    at = int(state.step) - done + int(np.argmax(bad)) + 1
                    raise DivergenceError(
                        f"training diverged at step {at}: the loss became {losses[np.argmax(bad)]} "
                        f"(last finite loss {last_finite if last_finite is not None else 'none'}); "
                        f"lower the learning rate (--lr, now {config.learning_rate}) or the batch size "
                        f"(--batch-size, now {plan.batch_size}), or set --clip-norm")
                n = float(counts_[:done].sum())
                loss = float(losses[:done].sum()) / n if n else float("nan")
                # raw corpus words covered: the chunk's words in proportion to its steps
                w = (chunk_words[c] * (s0 + done)) // max(steps, 1) - (chunk_words[c] * s0) // max(steps, 1)
                words_done += w
                pos = Position(epoch, c, s0 + done) if s0 + done < steps else _next(epoch, c, len(plan.chunks))
                progress_in_epoch = (c + (s0 + done) / max(steps, 1)) / len(plan.chunks)
                record = {"step": int(state.step), "epoch": epoch + progress_in_epoch, "loss": loss,
                          "examples": n, "lr": float(lr_at(int(state.step))), "words": words_done,
                          "seconds": time.perf_counter() - t0}
                history.append(record)
                if bar is not None:
                    bar.update(w)
                    bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                if on_call is not None:
                    on_call(state, pos, record)
            position = _next(epoch, c, len(plan.chunks))
    jax.block_until_ready(state.params)
    if bar is not None:
        bar.close()
    if history and not any(r["examples"] for r in history):
        from sg_jax.errors import CorpusError

        raise CorpusError(f"no training examples: subsampling (sample={config.sample}) and the window left no "
                          f"(target, context) pair in {sum(chunk_words)} tokens; use --sample 0 on a small corpus")
    return TrainResult(state, config, tuple(words), history, time.perf_counter() - t0, words_done, position)


def _next(epoch: int, chunk: int, n_chunks: int) -> Position:
    return Position(epoch, chunk + 1, 0) if chunk + 1 < n_chunks else Position(epoch + 1, 0, 0)


def _progress_bar(enabled: bool, total: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="word", unit_scale=True, desc="train", dynamic_ncols=True)
