"""What an objective is, and the registry that makes a new one a single file.

Every objective is written once, as a loss over the *gathered rows* of the two tables:

    in_idx, out_idx = obj.indices(batch, aux, tables)       # flat int32 index vectors
    loss = obj.loss_rows(w_in[in_idx], w_out[out_idx], batch, aux, tables)

`out_idx is None` means "all of w_out" (the exact softmax needs every output vector). The dense
loss `objective_loss(obj, params, ...)` is the same function composed with the gather, so
`jax.grad` of it gives the full-table gradient the textbook derives (the transpose of a gather
is a scatter-add), while the trainer differentiates `loss_rows` directly and scatters the row
updates back: O(batch x dim) work per step, never a dense V x N gradient. Losses are *sums* over
the batch, so the learning rate is a per-example step size as in word2vec.

`aux` holds what an objective samples per step (noise words), drawn by `obj.sample(key, ...)`
outside the differentiated function, so the gradient checker can hold it fixed. `tables` holds
what it needs from the word counts (a noise table, a Huffman tree), built once on the host and
passed into jit as arguments.

An objective registers an `ObjectiveSpec` under its name (see `register`). The Config's
validation, the command line's choices and help, the trainer, the gradient checker and the sweep
all read `REGISTRY`; nothing else changes when an objective is added. See docs/extending.md.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import sg_jax.registry as registry
from sg_jax.architectures import Batch, route_input_grads
from sg_jax.model import Params


class Objective(NamedTuple):
    """An objective bound to an architecture's form and its options: pure functions."""

    name: str
    form: str        # "target", "context" or "cbow" (see sg_jax.architectures)
    sample: Callable[[jax.Array, Batch, Any], Any]
    indices: Callable[[Batch, Any, Any], tuple[jax.Array, jax.Array | None]]
    loss_rows: Callable[[jax.Array, jax.Array, Batch, Any, Any], jax.Array]
    closed_form: Callable[[Params, Batch, Any, Any], Params] | None = None  # hand-derived dE/dParams
    # the same loss over other batch types (e.g. the span layout's `SpanBatch`), by type:
    # {batch type: (indices(batch, aux, tables) -> (in_idx, out_idx), loss(in_rows, out_rows, batch, aux, tables))}
    scorers: Mapping[type, tuple[Callable, Callable]] = MappingProxyType({})
    reads_every_output_row: bool = False   # the spec's fact, bound by make_objective

    def scorer(self, batch_type: type) -> tuple[Callable, Callable] | None:
        """(indices, loss) for batches of `batch_type` (`Batch`: indices and loss_rows), or None
        when the objective cannot score them."""
        if batch_type is Batch:
            return self.indices, self.loss_rows
        return self.scorers.get(batch_type)


def _no_tables(counts: np.ndarray, options) -> None:
    return None


def _same_rows(vocab_size: int) -> int:
    return vocab_size


@dataclasses.dataclass(frozen=True)
class ObjectiveSpec:
    """A registered objective.

    make(form, options) -> Objective. `options` is the run's Config (or anything with the same
    attributes); an objective reads the fields it uses (e.g. `negative`, `share_negatives`,
    `noise_power`, `cbow_update`).
    tables(counts, options): what sample/loss read, from the word counts (None if nothing).
    out_rows(V): rows of w_out (V - 1 for the inner nodes of a Huffman tree).
    max_predictions(V): the most predictions one step may hold (a memory bound, e.g. the exact
    softmax's [B, V] scores), or None for no bound.
    reads_every_output_row: a step reads and updates every row of W' (the exact softmax), so W'
    is used densely and cannot be split by row or cut into sub-batches.
    sg_form: the skip-gram form used when the config says "auto".
    dup_cap: the duplicate-row cap of runs without the trust region (see sg_jax.optim.cap_duplicates,
      `Config.resolved_dup_cap`), or None.
    options: the Config fields it reads.
    """

    name: str
    summary: str
    make: Callable[[str, Any], Objective]
    tables: Callable[[np.ndarray, Any], Any] = _no_tables
    out_rows: Callable[[int], int] = _same_rows
    max_predictions: Callable[[int], int] | None = None
    reads_every_output_row: bool = False
    sg_form: str = "context"
    dup_cap: float | None = None
    options: tuple[str, ...] = ()     # the Config fields make/tables read (shown in help, varied by gradcheck)


REGISTRY: dict[str, ObjectiveSpec] = {}


def register(spec: ObjectiveSpec) -> ObjectiveSpec:
    """Add (or replace) an objective under `spec.name`."""
    return registry.add(REGISTRY, "an objective", spec.name, spec)


def get_spec(name: str) -> ObjectiveSpec:
    return registry.lookup(REGISTRY, "objective", name)


def gather_rows(params, obj: Objective, batch: Batch, aux, tables):
    """(in_rows, out_rows): the rows of w_in and w_out that the batch touches."""
    in_idx, out_idx = obj.indices(batch, aux, tables)
    out_rows = params.w_out if out_idx is None else params.w_out[out_idx]
    return params.w_in[in_idx], out_rows


def objective_loss(params, obj: Objective, batch: Batch, aux=None, tables=None) -> jax.Array:
    """The loss as a function of the full Params (for jax.grad against the derivations)."""
    in_rows, out_rows = gather_rows(params, obj, batch, aux, tables)
    return obj.loss_rows(in_rows, out_rows, batch, aux, tables)


def sigmoid(x):
    return 1.0 / (1.0 + jnp.exp(-x))


def sampled_grads(form: str, params: Params, batch: Batch, h, rows, err) -> Params:
    """Closed-form gradients of a sampled objective from output rows `rows` int[B, M] with errors
    `err` [B, H, M] (0 where unused): dE/dv'_x = sum e_x h and dE/dh = sum_x e_x v'_x."""
    v = params.w_out[rows]                                              # [B, M, N]
    grad_h = jnp.einsum("bhm,bmn->bhn", err, v)
    g_rows = jnp.einsum("bhm,bhn->bmn", err, h)
    g_out = jnp.zeros_like(params.w_out).at[rows.reshape(-1)].add(g_rows.reshape(-1, h.shape[-1]))
    return Params(route_input_grads(form, params.w_in, batch, grad_h), g_out)
