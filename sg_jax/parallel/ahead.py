"""The step compiled ahead: a one-device run's jitted call compiled on a second thread, from the
shapes of its arguments, while the run initialises its tables and prepares its first epoch.

A run's first call waits for three compilations in turn on a CPU: the initialisation, the epoch's
preparation and the step (about 0.3, 0.6 and 1.3 s on the 2-core machine, benchmarks/README.md).
The step's arguments have shapes known before any of them is computed (the tables', the chunk's,
the keys'), so `StepAhead` lowers and compiles it on a worker thread from those shapes
(`jax.eval_shape`) while the main thread runs the other two; XLA compiles outside Python's
lock, so the work overlaps where a second core is free. The compiled program is the one the jitted
call would compile (the same function and argument types), and it goes through the same
persistent compilation cache, so a run's vectors do not depend on it (tests/test_train.py). Runs
on small corpora (chunks under `MIN_TOKENS` tokens) do without it unless asked.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable

import jax
import jax.numpy as jnp

import sg_jax.data.epoch as epochs
import sg_jax.keys as keys


# chunks of fewer tokens gain nothing: their epoch prepares in milliseconds, and in a process that
# has trained such shapes before (a test suite, a notebook) the initialisation and the preparation
# are compiled already, so the thread's own tracing is all it adds (about 0.15 s a run, measured)
MIN_TOKENS = 1 << 19


def worth_it(chunk_tokens: int) -> bool:
    """Whether a run whose largest chunk holds `chunk_tokens` tokens compiles its step ahead by
    default (`train(compile_ahead=None)`)."""
    return chunk_tokens >= MIN_TOKENS


def call_shapes(config, plan, make_state: Callable[[], Any], tokens: int, unit: int) -> tuple:
    """The abstract arguments of the run's call run_steps(state, epoch_data, tables, epoch_key,
    first_step, steps_in_epoch), for chunks padded to `tokens` tokens; make_state() builds the
    state (only its shapes are taken)."""
    state = jax.eval_shape(make_state)
    corpus = epochs.DeviceCorpus(*(jax.ShapeDtypeStruct((tokens,), jnp.int32),) * 2)
    chunk_key = jax.eval_shape(lambda: keys.chunk_key(keys.seed_key(0), 0, config.key_schedule))
    data_key = jax.eval_shape(lambda k: keys.data_key(k, config.key_schedule), chunk_key)
    prepare = functools.partial(epochs.prepare_epoch, shuffle=config.shuffle, unit=unit)
    data = jax.eval_shape(prepare, data_key, corpus, plan.keep_prob)
    return state, data, plan.tables, jax.eval_shape(keys.steps_key, chunk_key), 0, 1


class StepAhead:
    """run_steps, compiled on a daemon thread from `arguments()` (abstract arguments) as soon as
    it is made; calls wait for it and run the compiled program. A compilation that fails leaves
    the calls to the jitted function, which raises the same error where it applies."""

    def __init__(self, run_steps, arguments: Callable[[], tuple]):
        self.run_steps, self._compiled, self._error = run_steps, None, None

        def work():
            try:
                self._compiled = run_steps.lower(*arguments()).compile()
            except Exception as e:   # noqa: BLE001 - reported by the jitted call itself
                self._error = e

        self._thread = threading.Thread(target=work, name="sg_jax-compile-ahead", daemon=True)
        self._thread.start()

    def __call__(self, *args):
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return (self.run_steps if self._compiled is None else self._compiled)(*args)
