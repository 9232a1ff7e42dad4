"""The cost of the row trust region: the default step with `trust_region` 0 and B, timed in turn.

On a machine shared with other work a step's time drifts by tens of percent within a minute, so
the two steps are not timed one after the other but call by call in turn (the order alternating),
in one process, and each call's time is compared with the other step's call next to it: the
paired ratio's median and quartiles are the figure to quote. Both wall-clock time and process CPU
time are reported (the CPU time is less sensitive to other processes taking the cores).

    python benchmarks/bench_step.py                       # Brown, defaults, trust region 0 and 2
    python benchmarks/bench_step.py --bound 1 --rounds 10 --calls 8

Each call is `config.steps_per_call` steps (64 by default) of the runners of `sg_jax.parallel`, the first
call of each step (compilation) not counted.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time

import jax
import numpy as np

import common
from sg_jax import train
from sg_jax.config import Config
from sg_jax.runs import read_corpus
from sg_jax.step import init_state


@dataclasses.dataclass
class Timed:
    label: str
    run_steps: object
    tables: object
    state: object
    calls: list
    wall: list = dataclasses.field(default_factory=list)    # s/step of each timed call
    cpu: list = dataclasses.field(default_factory=list)


def prepare(label: str, config: Config, data, n_calls: int) -> Timed:
    """The jitted call of `config`, compiled, and its first n_calls calls of the run."""
    plan = train.make_plan(config, np.asarray(data.vocab.counts), data.encoded.ids, data.encoded.offsets)
    state = init_state(config, len(data.vocab.words), plan.optimizer)
    calls = train.Calls(config, plan, data.encoded.ids, data.encoded.offsets, np.asarray(state.key), train.Position())
    calls = [c for c, _ in zip(calls, range(n_calls + 1))]
    first = calls[0]
    state, _ = plan.run_steps(state, first.data, plan.tables, first.epoch_key, first.first, first.steps)
    jax.block_until_ready(state)
    return Timed(label, plan.run_steps, plan.tables, state, calls[1:])


def time_in_turn(steps: list[Timed], rounds: int) -> None:
    for r in range(rounds):
        for k in range(len(steps[0].calls)):
            for s in (steps if (r + k) % 2 == 0 else steps[::-1]):
                c = s.calls[k]
                wall, cpu = time.perf_counter(), time.process_time()
                s.state, _ = s.run_steps(s.state, c.data, s.tables, c.epoch_key, c.first, c.steps)
                jax.block_until_ready(s.state)
                s.wall.append((time.perf_counter() - wall) / c.done)
                s.cpu.append((time.process_time() - cpu) / c.done)


def quartiles(x) -> str:
    q = statistics.quantiles(x, n=4)
    return f"{q[1]:.3f} ({q[0]:.3f}-{q[2]:.3f})"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default="default", help='a path, "default" (Brown), "default-xN" (Brown N times '
                    'over: default-x5 is 5.8M tokens, 48,526 words) or "toy:..."')
    ap.add_argument("--bound", type=float, default=Config().trust_region, help="the trust region timed against 0")
    ap.add_argument("--rounds", type=int, default=6, help="passes over the calls")
    ap.add_argument("--calls", type=int, default=11, help="calls of each step per round")
    args = ap.parse_args(argv)

    base = Config()
    with tempfile.TemporaryDirectory() as tmp:
        data = read_corpus(base, common.repeated_corpus(args.corpus, tmp) or args.corpus)
    steps = [prepare(f"trust_region {b:g}", dataclasses.replace(base, trust_region=b), data, args.calls)
             for b in (0.0, args.bound)]
    load_before = os.getloadavg()
    time_in_turn(steps, args.rounds)
    load_after = os.getloadavg()

    info = common.machine()
    print(f"{info['cpu']}, {info['usable_cpus']} cpus, jax {info['jax']}, "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
          f"{len(steps[0].wall)} calls of {base.steps_per_call} steps each")
    for s in steps:
        print(f"{s.label:>18}: wall {1e3 * statistics.median(s.wall):.3f} ms/step, "
              f"cpu {1e3 * statistics.median(s.cpu):.3f} ms/step (medians)")
    zero, bounded = steps
    wall = [b / a for a, b in zip(zero.wall, bounded.wall)]
    cpu = [b / a for a, b in zip(zero.cpu, bounded.cpu)]
    print(f"paired ratio {bounded.label} / {zero.label}, median (quartiles): wall {quartiles(wall)}, "
          f"cpu {quartiles(cpu)}")


if __name__ == "__main__":
    main()
