"""The sparse step: optax transformations applied to the rows a batch touches.

A step differentiates the loss with respect to the *gathered* rows of each table, so its
gradient for a table is a small [M, N] array of row gradients plus the int32 row indices [M]
they came from (a row met several times appears several times). `sparse_step` applies any
elementwise optax transformation to such gradients with the lazy semantics of sparse Adam
(TensorFlow's LazyAdam, PyTorch's SparseAdam):

1. the gradients of a repeated row are summed (a sort and a segment sum over the M indices:
   static sizes, no V-sized temporary);
2. only the touched rows of the optimizer state (Adam's mu and nu, Adagrad's accumulator: the
   state leaves that `optax.tree_map_params` finds to be copies of the parameters) are gathered,
   updated by `tx.update` and written back; scalar state such as the step count advances once
   per step;
3. the touched parameter rows receive the update (a scatter-add); untouched rows keep their
   parameters and their state.

A transformation without per-parameter state (SGD, a schedule, a scale) is linear in the
gradient, so its row updates are scatter-added directly, without the sort: one scatter per table
per step, the arithmetic of the plain word2vec step.

The transformations that read the rows' indices (`cap_duplicates`, `clip_by_table_norm`, the
trust region) receive them from the step as the extra arguments `indices` and `counts`: per
gradient row (per touched row once duplicates are summed), the row's occurrences in the step as
`sg_jax.optim.rows` defines them (the padded layout's gathers with a nonzero gradient, whatever the
layout: `multiplicity` says how many of them each gathered slot stands for).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from sg_jax.errors import ConfigError
from sg_jax.optim.rows import leaves_like, slot_counts, sum_rows
from sg_jax.optim.trust import TrustRegionChain, bound_row_moves


def row_state_tables(tx: optax.GradientTransformation, opt_state, params) -> Any:
    """A pytree shaped like opt_state holding, for each leaf, the position (in the flattened
    params) of the table it is a per-parameter copy of, or -1 for other state (step counts).
    Raises ConfigError for a per-parameter leaf that is not row-wise (a factored state)."""
    treedef = jax.tree.structure(params)
    tables = treedef.flatten_up_to(params)
    position = treedef.unflatten(list(range(treedef.num_leaves)))
    tags = optax.tree_map_params(tx, lambda _, t: t, opt_state, position,
                                 transform_non_params=lambda v: jax.tree.map(lambda _: -1, v))
    for tag, leaf in zip(jax.tree.leaves(tags), jax.tree.leaves(opt_state)):
        if tag >= 0 and jnp.shape(leaf) != jnp.shape(tables[tag]):
            raise ConfigError(f"optimizer state leaf of shape {jnp.shape(leaf)} is not row-wise for the table "
                              f"of shape {jnp.shape(tables[tag])}: sparse steps need an elementwise optimizer")
    return tags


def sparse_step(tx: optax.GradientTransformation, params, opt_state, row_grads, indices, *, rows=None,
                sum_duplicates: bool | None = None, multiplicity=None, hidden_norm=None, **extra_args):
    """Apply tx to the rows a batch touches. Returns (params, opt_state).

    params: a pytree of tables (e.g. Params(w_in [V, N], w_out [V', N])).
    row_grads: the matching pytree of gradients with respect to the gathered rows ([M, N] for a
      table gathered with indices [M]; the full table's gradient for a table used densely).
    indices: the matching pytree of int32 row indices [M] (repeats allowed), None for a table used
      densely (the exact softmax's w_out). Indices must be >= 0; an index >= the table's rows is
      ignored (a way to mark padding).
    opt_state: tx.init(params).
    sum_duplicates: sum the gradients of repeated rows before tx sees them, and update the state of
      touched rows only (lazy semantics). Default: when tx keeps per-parameter state. Without it the
      row updates are scatter-added as they come, which equals the summed form for transformations
      linear in the gradient (SGD, scales, schedules); pass True for a stateless nonlinear one.
    rows: the matching rows the step read (the gathered rows row_grads are gradients at; the whole
      table for a dense one). With a `TrustRegionChain` tx, its trust region is applied after the
      scatter-add (`bound_row_moves`, the partner norms taken from these rows) rather than inside
      the chain: the same rule, at a fraction of the cost.
    hidden_norm: with rows, the partner norm of the second table (W') where its rows are scored
      against vectors other than the first table's rows read (CBOW's means of contexts); None: the
      largest norm of those rows.
    multiplicity: the matching pytree of int [M] (None, or None for a table: 1 each): how many
      occurrences of its row each gathered slot stands for (`Layout.multiplicity`); the `counts`
      the transformations see are these where a gradient row is nonzero (`rows.slot_counts`).
    extra_args: passed on to tx.update (e.g. partner_norms for `trust_region`; given, the chain
      applies the rule itself and rows are not needed).
    """
    after = isinstance(tx, TrustRegionChain) and rows is not None and "partner_norms" not in extra_args
    tx = optax.with_extra_args_support(tx)
    found = sparse_row_updates(tx, params, opt_state, row_grads, indices, sum_duplicates=sum_duplicates,
                               multiplicity=multiplicity, **extra_args)

    def put_state(t, old, new):
        if t < 0 or found.touched[t] is None:
            return new
        return old.at[found.touched[t]].set(new, mode="drop")

    opt_state = jax.tree.map(put_state, found.tags, opt_state, found.row_state)
    treedef = jax.tree.structure(params)
    new = [w + u if r is None else w.at[r].add(u, mode="drop")
           for w, u, r in zip(treedef.flatten_up_to(params), found.updates, found.touched)]
    new = treedef.unflatten(new)
    if after:  # the chain passed the updates unbounded (no partner_norms): hold the rows now
        new = bound_row_moves(new, rows, indices, tx.bound, hidden_norm=hidden_norm)
    return new, opt_state


def _whole_table_rows(treedef, tables, idx: list, first_rows):
    """The per-table row indices as the transformations see them (see sparse_row_updates)."""
    if first_rows is None:
        return treedef.unflatten(idx)
    return treedef.unflatten([
        None if i is None else jnp.where(i < w.shape[0], i + first, jnp.iinfo(i.dtype).max)
        for w, i, first in zip(tables, idx, treedef.flatten_up_to(first_rows))])


class RowUpdates(NamedTuple):
    """What a sparse step writes, before it is written (see `sparse_row_updates`)."""

    touched: list     # per table (flattened params order): int rows [M] the updates go to; None for a dense table
    updates: list     # per table: the update rows [M, ...] (the whole table's update for a dense one)
    row_state: Any    # opt_state, each per-row leaf replaced by the new state of its table's touched rows
    tags: Any         # row_state_tables(tx, opt_state, params)


def sparse_row_updates(tx: optax.GradientTransformation, params, opt_state, row_grads, indices, *,
                       sum_duplicates: bool | None = None, first_rows=None, multiplicity=None,
                       **extra_args) -> RowUpdates:
    """sparse_step's work short of writing it into the tables and the state: `sparse_step` is
    this followed by a scatter-add of `updates` at `touched` and a scatter of the row state. A
    caller that combines several batches' updates (the sharded step, `sg_jax.parallel.sharded`) takes
    them from here. Rows at or past a table's end (padding) are dropped by the scatters.

    first_rows: per table, the index of its row 0 in a larger table it is a block of (the sharded
    step's shards), so that the transformations see every row by its index in the whole table
    (a per-row rule means the same row on every device); padding they see past every row.
    multiplicity: as for `sparse_step`."""
    tx = optax.with_extra_args_support(tx)
    treedef = jax.tree.structure(params)
    tables = treedef.flatten_up_to(params)
    grads = treedef.flatten_up_to(row_grads)
    idx = leaves_like(treedef, indices)
    mult = leaves_like(treedef, multiplicity)
    tags = row_state_tables(tx, opt_state, params)
    has_row_state = any(t >= 0 for t in jax.tree.leaves(tags))
    if sum_duplicates is None:
        sum_duplicates = has_row_state
    elif has_row_state and not sum_duplicates:
        raise ConfigError("sum_duplicates=False needs an optimizer without per-row state; this one keeps some")

    if not sum_duplicates:
        # word2vec's step: one scatter-add of the row updates per table, repeats and all
        rows = [w if i is None else w[i] for w, i in zip(tables, idx)]
        seen = _whole_table_rows(treedef, tables, idx, first_rows)
        counts = [None if i is None else slot_counts(g, m) for g, i, m in zip(grads, idx, mult)]
        updates, opt_state = tx.update(row_grads, opt_state, treedef.unflatten(rows), indices=seen,
                                       counts=treedef.unflatten(counts), **extra_args)
        return RowUpdates(idx, treedef.flatten_up_to(updates), opt_state, tags)

    # per table: (rows touched, their summed gradients, occurrences); a dense table as it is
    summed = [(None, g, None) if i is None else sum_rows(g, i, w.shape[0], m)
              for w, g, i, m in zip(tables, grads, idx, mult)]
    touched, sums, counts = (list(column) for column in zip(*summed))

    def gather(w, rows):
        return w if rows is None else w.at[rows].get(mode="fill", fill_value=0)

    row_state = jax.tree.map(lambda t, s: s if t < 0 else gather(s, touched[t]), tags, opt_state)
    rows = [gather(w, r) for w, r in zip(tables, touched)]
    updates, row_state = tx.update(treedef.unflatten(sums), row_state, treedef.unflatten(rows),
                                   indices=_whole_table_rows(treedef, tables, touched, first_rows),
                                   counts=treedef.unflatten(counts),
                                   **extra_args)
    return RowUpdates(touched, treedef.flatten_up_to(updates), row_state, tags)
