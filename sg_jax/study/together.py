"""Runs trained together: several runs of a study as one compiled program.

Runs that differ only in window and dimension (same corpus, seed, learning rate and every other
setting) subsample and visit the corpus identically: their epochs draw the same keys. They can
therefore share the epoch's data and step keys, and train as one jitted call vmapped over a
leading run axis of their stacked TrainStates (the runner `sg_jax.parallel.together`):

- **windows** are padded to the widest run's context slots; the offsets beyond a run's own window
  are masked out, and its dynamic window b ~ U{1..window} is drawn from the same key as alone.
  This is exact when the objective's random draws do not depend on the slot count (noise shared
  per target or per batch, or the softmax and hierarchical objectives); with noise drawn per
  (target, context) pair, or `pairs` batches, only runs of equal windows are grouped.
- **dimensions** are padded with zeros in both tables. With zero padding the padded coordinates
  never move: the gradient of W[:, j] is a multiple of W'[:, j] and vice versa, both zero. Each
  run is initialised at its own dimension (the same draws as alone), then padded.

So a run trained together gives the vectors of the same run trained alone, up to the order of
floating-point sums (vmapped dot products and padded reductions may associate differently):
tests/test_together.py measures the difference. With several devices the run axis is sharded
over the mesh (each device trains its share of the runs, nothing is exchanged), which is how a
study uses every core of a CPU: each run is a one-device run (config.devices == 1), whatever the
study's device count.

`plan_groups` chooses the groups (a padded run costs the work of the widest window and largest
dimension in its group, so groups are chosen to waste little); `train_together` is the loop;
`run_together` is the run path (per-run directories, checkpoints and resume, as
`sg_jax.runs.run_training` writes them).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

import sg_jax.compile_cache as compile_cache
import sg_jax.interrupts as interrupts
from sg_jax.architectures import Batch
from sg_jax.config import Config
from sg_jax.errors import ConfigError, DivergenceError
from sg_jax.mesh import AXIS, make_mesh, replicate
from sg_jax.objectives import get_spec, make_objective
from sg_jax.run_files import CHECKPOINT, append_metrics, remove_outputs, write_metrics
from sg_jax.runs import Progress, RunOutput, finish_run, finished, load_progress, save_run
from sg_jax.resolved import resolve
from sg_jax.parallel.together import member, pad_state, unpad_state
from sg_jax.step import make_optimizer
from sg_jax.train import Calls, Position, Schedule, TrainResult, Watch, init_state, make_plan

# fields that may differ within a group
VARYING = ("window", "dim")
# per-step cost of a target relative to one context slot (the target's own and its noise words'
# rows are about half of a default step): the cost model for choosing groups
TARGET_COST = 12.0


def group_key(config: Config) -> str:
    """Runs with equal keys can train together (window and dimension may differ)."""
    d = config.to_dict()
    for name in VARYING + ("devices",):
        d.pop(name)
    return json.dumps(d, sort_keys=True)


def windows_pad_exactly(config: Config) -> bool:
    """Whether runs of different windows draw the same random numbers when padded to a common
    slot count (their objective's draws do not depend on the number of context slots)."""
    if not resolve(config, 1).layout.pads_exactly(config):
        return False

    obj = make_objective(config)
    counts = np.arange(8, 0, -1, dtype=np.int64) * 10
    tables = get_spec(config.objective).tables(counts, config)

    def shapes(slots):
        batch = Batch(jnp.zeros(4, jnp.int32), jnp.zeros((4, 2 * slots), jnp.int32), jnp.ones((4, 2 * slots), bool))
        out = jax.eval_shape(lambda k: obj.sample(k, batch, tables), jax.random.PRNGKey(0))
        return [x.shape for x in jax.tree.leaves(out)]

    return shapes(1) == shapes(3)


def run_cost(config: Config) -> float:
    return (TARGET_COST + 2 * config.window) * config.dim


def plan_groups(configs: Sequence[Config], size: int) -> list[list[int]]:
    """Indices of `configs` in groups of at most `size` runs that can train together, chosen
    greedily to waste little padding: each group starts from the costliest run left and adds the
    runs that raise its padded cost least. Groups come out costliest first."""
    if size < 1:
        raise ConfigError(f"together must be >= 1, got {size}")
    by_key: dict[tuple, list[int]] = {}
    pads: dict[str, bool] = {}  # windows_pad_exactly depends only on the group key: trace it once per key
    for i, c in enumerate(configs):
        shared = group_key(c)
        if shared not in pads:
            pads[shared] = windows_pad_exactly(c)
        by_key.setdefault((shared,) + (() if pads[shared] else (c.window,)), []).append(i)
    groups = []
    for members in by_key.values():
        left = sorted(members, key=lambda i: (-run_cost(configs[i]), i))
        while left:
            group = [left.pop(0)]
            while left and len(group) < size:
                def padded(j):
                    w = max(configs[i].window for i in group + [j])
                    d = max(configs[i].dim for i in group + [j])
                    return (len(group) + 1) * run_cost(dataclasses.replace(configs[j], window=w, dim=d))
                best = min(left, key=lambda j: (padded(j) - run_cost(configs[j]), left.index(j)))
                group.append(best)
                left.remove(best)
            groups.append(sorted(group))
    return groups


@dataclasses.dataclass
class Member:
    """One run of a group: its config, and where it starts (None: a fresh run)."""

    config: Config
    state: object = None
    history: list = dataclasses.field(default_factory=list)


def train_together(members: Sequence[Member], words, counts, ids: np.ndarray, offsets: np.ndarray, *,
                   position: Position = Position(), devices: int = 1, names: Sequence[str] | None = None,
                   on_call: Callable | None = None) -> list[TrainResult]:
    """Train the members' runs as one program from `position` (where all of them stand) to the
    end; each result equals the run trained alone on one device, up to the order of sums.

    devices: spread the runs over this many devices (the group is filled up to a multiple of it
    with copies of its first run, whose results are dropped).
    on_call(states, position, records): after every jitted call, with the stacked (padded)
    states and one history record per member.
    """
    configs = [resolve(m.config, 1).config for m in members]   # each a one-device run
    keys = {group_key(c) for c in configs}
    if len(keys) != 1:
        raise ConfigError("runs trained together must differ only in window and dimension")
    names = list(names) if names is not None else [f"run {i}" for i in range(len(configs))]
    wide = dataclasses.replace(configs[0], window=max(c.window for c in configs), dim=max(c.dim for c in configs))
    plan = make_plan(resolve(wide, 1), counts, ids, offsets, together=devices)
    V = len(words)
    wide_state = init_state(wide, V, plan.optimizer)
    own = [init_state(c, V, plan.optimizer) for c in configs]  # the runs' own shapes (and fresh starts)
    start = [m.state if m.state is not None else o for m, o in zip(members, own)]
    if any(int(s.step) != int(start[0].step) for s in start):
        raise ConfigError("runs trained together must stand at the same step")
    fill = (-len(configs)) % devices
    padded = [pad_state(s, wide_state) for s in start] + [pad_state(start[0], wide_state)] * fill
    states = jax.tree.map(lambda *xs: jnp.stack(xs), *padded)
    windows = jnp.asarray([c.window for c in configs] + [configs[0].window] * fill, jnp.int32)
    tables = plan.tables
    mesh = None
    if devices > 1:


        mesh = make_mesh(devices)
        runs_axis = NamedSharding(mesh, PartitionSpec(AXIS))
        states, windows = jax.device_put(states, runs_axis), jax.device_put(windows, runs_axis)
        tables = replicate(tables, mesh)
    base_key = np.asarray(start[0].key)
    calls = Calls(wide, plan, ids, offsets, base_key, position, mesh=mesh)
    watches = []
    for c, m in zip(configs, members):
        baseline = next((r["first_loss"] for r in m.history if r.get("first_loss") is not None), None)
        watches.append(Watch(c, plan, baseline, calls.words_total))
    for call in calls:
        interrupts.check()  # a Ctrl-C swallowed by a callback of the interpreter's is raised here
        states, stats = plan.run_steps(states, windows, call.data, tables, call.epoch_key, call.first, call.steps)
        losses, examples, max_abs = (np.asarray(x) for x in (stats.losses, stats.examples, stats.max_abs))
        step = int(states.step[0])
        records = []
        for i, watch in enumerate(watches):
            try:
                records.append(watch.after_call(losses[i], examples[i], float(max_abs[i]), step, call))
            except DivergenceError as e:
                raise DivergenceError(f"{names[i]}: {e}") from None
        if on_call is not None:
            on_call(states, call.next_position, records)
        del call   # its chunk's data is freed before the next chunk is made
    jax.block_until_ready(states)
    results = []
    for i, (c, watch) in enumerate(zip(configs, watches)):
        watch.check_examples(calls)
        state = unpad_state(member(states, i), own[i])
        results.append(TrainResult(state, c, tuple(words), watch.history, time.perf_counter() - watch.t0,
                                   watch.words_done, calls.position))
    return results


# ------------------------------------------------------------------------------ the run path


def run_together(configs: Sequence[Config], out_dirs: Sequence[Path], data, *, devices: int = 1,
                 names: Sequence[str] | None = None, checkpoint_seconds: float | None = 60.0,
                 write_vectors: bool = False, on_call: Callable | None = None) -> list:
    """Train runs together into their own directories, as `run_training(..., resume=True)` would
    one by one: each run resumes from its checkpoint (runs standing at different places train in
    separate groups), checkpoints every `checkpoint_seconds`, and ends with its outputs and
    manifest. Returns one `sg_jax.runs.RunOutput` per config, in order.

    on_call(i, words, loss): after every jitted call, for run i (its words so far and last loss).
    """
    names = list(names) if names is not None else [str(d) for d in out_dirs]
    compile_cache.enable()
    configs = [resolve(c, 1).config for c in configs]   # each a one-device run, as it records
    vocab = data.vocab
    starts: list[Progress | None] = []
    for config, out in zip(configs, out_dirs):
        ckpt = Path(out) / CHECKPOINT
        if ckpt.exists():
            progress, _ = load_progress(ckpt, config, vocab, data.fingerprint)
            write_metrics(Path(out), progress.history)  # the checkpoint's records: later ones are trained again
            starts.append(progress)
        else:
            if Path(out).exists():
                remove_outputs(Path(out))
            starts.append(None)
    outputs: list = [None] * len(configs)
    by_position: dict[Position, list[int]] = {}
    for i, p in enumerate(starts):
        if p is not None and finished(p, configs[i]):
            result = TrainResult(p.state, configs[i], tuple(vocab.words), p.history, 0.0, 0, p.position)
            finish_run(Path(out_dirs[i]), result, p, configs[i], data,
                       write_vectors=write_vectors)
            outputs[i] = RunOutput(result, vocab, data.stats, Path(out_dirs[i]), p.position, p, data)
            continue
        by_position.setdefault(p.position if p is not None else Position(), []).append(i)
    for position, group in by_position.items():
        members = [Member(configs[i],
                          starts[i].state if starts[i] is not None else None,
                          list(starts[i].history) if starts[i] is not None else []) for i in group]
        histories = [list(m.history) for m in members]
        templates = [jax.eval_shape(lambda c=m.config: init_state(c, len(vocab), _optimizer_of(c))) for m in members]
        last_save = {"time": time.monotonic()}

        def after(states, pos, records, group=group, members=members, histories=histories, last_save=last_save,
                  templates=templates):
            for j, (i, record) in enumerate(zip(group, records)):
                histories[j].append(record)
                append_metrics(Path(out_dirs[i]), record)
                if on_call is not None:
                    on_call(i, record["words"], record["loss"])
            if checkpoint_seconds is not None and time.monotonic() - last_save["time"] >= checkpoint_seconds:
                for j, i in enumerate(group):
                    state = unpad_state(member(states, j), templates[j])
                    save_run(Path(out_dirs[i]), Path(out_dirs[i]) / CHECKPOINT,
                          Progress(state, pos, histories[j]), members[j].config, data)
                last_save["time"] = time.monotonic()

        results = train_together(members, vocab.words, vocab.counts, data.encoded.ids, data.encoded.offsets,
                                 position=position, devices=devices, names=[names[i] for i in group], on_call=after)
        for j, (i, result) in enumerate(zip(group, results)):
            result.history = histories[j]
            final = Progress(result.state, result.position, histories[j], Schedule())
            finish_run(Path(out_dirs[i]), result, final, members[j].config, data, write_vectors=write_vectors)
            outputs[i] = RunOutput(result, vocab, data.stats, Path(out_dirs[i]), position, final, data)
    return outputs


def _optimizer_of(config: Config):

    return make_optimizer(config, 1)
