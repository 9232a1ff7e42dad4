"""What a window layout is, and the registry of them.

A layout decides how a step's batch is cut from the epoch (`sg_jax.data.epoch`): which targets a
step takes, how their contexts are laid out (padded slots, sub-batches per window, spans of
consecutive tokens), and how the step's loss and row indices are read from the objective. It is a
value registered under its name, as objectives and optimizers are: nothing outside this package
compares a layout's name, and a layout registered from anywhere (a test, a research script)
trains through the same runners.

A layout declares:
  batch_type       the batch it builds; the objective scores it through `Objective.scorer`
  refusal          why it cannot train a config (None: it can)
  auto_sharing     the noise sharing `share_negatives auto` resolves to with this layout
  auto_rank        its place when `window_layout auto` chooses (highest first that can train the
                   config); None: never chosen automatically
  chosen_automatically  whether `window_layout auto` may choose it for a config it can train (the
                   config's `layout_rules`: runs saved under older rules keep their layout)
  epoch_unit       what an epoch orders: 0 for tokens, L for runs of L consecutive tokens
  batch_size       the batch size rounded to what the layout can take
  make             the step's batch and the objective's draws for it
  scoring          the step's row indices and its loss as a function of the gathered rows
  hidden_norm      the largest norm of the hidden vectors the step scores W' against, where they are
                   not the rows of W it read (CBOW's means of contexts); the trust region's partner
                   norm for W'
  multiplicity     per gathered slot of W and W', how many occurrences of its row it stands for:
                   the padded layout's gathers (with a nonzero gradient) for the same predictions,
                   the one count per-row rules read (`sg_jax.optim.rows`); 1 each by default
  examples         what the step's loss sums over
  pool_group       the targets sharing one noise pool under `pool_group auto`
  pads_exactly     whether runs of different windows draw the same numbers when padded to a
                   common slot count (so that they can train together, `sg_jax.study.together`)
"""

from __future__ import annotations

from typing import Any, Callable

import jax

import sg_jax.registry as registry
from sg_jax.architectures import Batch, largest_hidden_norm, n_examples


# pool_group auto where the layout does not make the groups (the span layout's spans are its groups)
POOL_GROUP = 64


class Layout:
    """The padded layout's defaults for every hook; a layout overrides what differs."""

    name: str = ""
    summary: str = ""
    batch_type: type = Batch
    auto_sharing: str = "target"
    auto_rank: int | None = None

    def refusal(self, config, obj) -> str | None:
        """Why this layout cannot train `config` with its objective `obj`, or None."""
        if obj.scorer(self.batch_type) is None:
            return f"window_layout {self.name} needs an objective that scores its batches; {obj.name} does not"
        return None

    def chosen_automatically(self, config) -> bool:
        return True

    def epoch_unit(self, config, batch_size: int) -> int:
        return 0

    def batch_size(self, config, batch: int) -> int:
        return batch

    def make(self, config, obj, epoch, tables, step, k_window: jax.Array, k_sample: jax.Array, *,
             batch_size: int, slots: int | None, window) -> tuple[Any, Any]:
        """(batch, aux): the targets of batch `step` of the epoch's visiting order with their
        contexts (windows drawn from k_window), and the objective's draws for it (k_sample)."""
        raise NotImplementedError

    def scoring(self, obj, batch, aux, tables) -> tuple[jax.Array, jax.Array | None, Callable]:
        """(in indices, out indices or None for a dense W', loss(rows)): the rows of W and W' the
        step reads and its summed loss as a function of (in_rows, out_rows) gathered at them."""
        indices, loss_rows = obj.scorer(self.batch_type)
        in_idx, out_idx = indices(batch, aux, tables)

        def loss_of(rows):
            return loss_rows(rows[0], rows[1], batch, aux, tables)

        return in_idx, out_idx, loss_of

    def hidden_norm(self, obj, batch, in_rows: jax.Array) -> jax.Array | None:
        """The largest norm among the hidden vectors that the step scores rows of W' against, from
        the rows of W it read at `scoring`'s in indices, where they are not those rows (CBOW's
        means of contexts: `architectures.largest_hidden_norm`); None where they are."""
        return largest_hidden_norm(obj.form, in_rows, batch)

    def multiplicity(self, obj, batch) -> tuple[jax.Array | None, jax.Array | None]:
        """(for W, for W') int per slot of `scoring`'s indices: how many times the padded layout gathers
        the slot's row for the same predictions (a slot read once for several pairs stands for
        them all); None: 1 each, as here, where every slot is one gather."""
        return None, None

    def examples(self, obj, batch) -> jax.Array:
        return n_examples(obj.form, batch)

    def pads_exactly(self, config) -> bool:
        return True

    def pool_group(self, config) -> int:
        return POOL_GROUP


LAYOUTS: dict[str, Layout] = {}


def register(layout: Layout) -> Layout:
    """Add (or replace) a layout under `layout.name`; returns it."""
    return registry.add(LAYOUTS, "a layout", layout.name, layout)


def get_layout(name: str) -> Layout:
    return registry.lookup(LAYOUTS, "window layout", name, also=("auto",))


def choices() -> tuple[str, ...]:
    """window_layout's allowed values: auto and every registered layout."""
    return ("auto", *LAYOUTS)
