"""The training loop on the device: a run compiles its step once (no recompilation across epochs,
chunks or a resume), and a jitted call moves nothing between host and device once its arguments
are there."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sg_jax.train as train_module
from sg_jax.config import Config
from sg_jax.data.corpus import load_corpus
from sg_jax.step import init_state
from sg_jax.train import Position, make_plan, train


@pytest.fixture(scope="module")
def corpus():
    vocab, enc, _ = load_corpus("toy:groups", min_count=1)
    return vocab, enc


def _plans(monkeypatch):
    made = []

    def recording(*args, **kwargs):
        plan = make_plan(*args, **kwargs)
        made.append(plan)
        return plan

    monkeypatch.setattr(train_module, "make_plan", recording)
    return made


@pytest.mark.parametrize("layout", ["span", "padded"])
@pytest.mark.parametrize("compile_ahead", [True, False])
def test_a_run_compiles_its_step_once_across_epochs_chunks_and_a_resume(corpus, monkeypatch, layout, compile_ahead):
    """Each invocation compiles its call once: compiled ahead (sg_jax.parallel.ahead), the jitted
    function is then never compiled (a compiled program refuses other shapes rather than
    compiling again); without it, the jitted function compiles once."""
    import sg_jax.parallel.ahead as ahead

    vocab, enc = corpus
    plans = _plans(monkeypatch)
    made = []

    class Recorded(ahead.StepAhead):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(ahead, "StepAhead", Recorded)
    # small chunks: every epoch is several chunks, each a call of its own (the last one shorter)
    config = Config(dim=8, window=3, epochs=3, sample=0.0, batch_size=64, steps_per_call=4,
                    chunk_tokens=max(64, enc.n_tokens // 3), window_layout=layout)
    first = train(config, vocab.words, vocab.counts, enc.ids, enc.offsets, until_epoch=1, compile_ahead=compile_ahead)
    assert len(train_module.epochs.chunk_bounds(enc.offsets, config.chunk_tokens)) > 1
    train(config, vocab.words, vocab.counts, enc.ids, enc.offsets, state=first.state, position=first.position,
          compile_ahead=compile_ahead)
    assert len(plans) == 2 and len(first.history) > 2
    assert len(made) == (2 if compile_ahead else 0)
    for plan in plans:  # each invocation traced and compiled its call once
        assert plan.run_steps._cache_size() == (0 if compile_ahead else 1)
    assert all(step._compiled is not None for step in made)


def test_a_call_makes_no_implicit_transfer(corpus, monkeypatch):
    """The batches, noise words and updates are made on the device: under a guard that refuses every
    implicit host<->device transfer, a call whose arguments are already on the device runs."""
    vocab, enc = corpus
    config = Config(dim=8, window=3, epochs=1, sample=0.0, batch_size=32, steps_per_call=8)
    plan = make_plan(config, vocab.counts, enc.ids, enc.offsets)
    state = init_state(config, len(vocab), plan.optimizer)
    calls = train_module.Calls(config, plan, enc.ids, enc.offsets, np.asarray(state.key), Position())
    call = next(iter(calls))
    args = jax.device_put((call.data, plan.tables, call.epoch_key, jnp.int32(call.first), jnp.int32(call.steps)))
    jax.block_until_ready(args)
    with jax.transfer_guard("disallow"):
        new, stats = plan.run_steps(state, *args)
        jax.block_until_ready(new)
    assert int(new.step) == min(config.steps_per_call, call.steps)
    assert np.isfinite(np.asarray(stats.losses)).all()
