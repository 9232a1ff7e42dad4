"""The trust region: each row's summed update bounded by how far it can move the step's scores.

A step applies the sum U_r of the updates of every occurrence of row r, all computed at the same
parameters; `trust_region` (an optax transformation, last in a chain) moves a row by U_r while
|U_r| * P <= bound, P the largest norm among the rows of the other table that the step read, and
by exactly bound / P along U_r beyond. `with_trust_region` builds such a chain as a
`TrustRegionChain`, which `sparse_step` applies more cheaply after its scatter-add
(`bound_row_moves`) when given the rows the step read. docs/devices.md has the measurements.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import optax

from sg_jax.optim.optimizers import check
from sg_jax.optim.rows import groups, leaves_like, per_row, row_axes


def held_scale(change: jax.Array, bound: float) -> jax.Array:
    """Per row, the factor that brings a move whose effect on the scores is `change` (|U_r| P)
    down to `bound`: 1 while change <= bound, bound / change beyond."""
    return jnp.where(change > bound, bound / jnp.where(change > 0, change, 1), 1)


def trust_region(bound: float) -> optax.GradientTransformationExtraArgs:
    """Scale each row's summed update so that it changes no score of the step by more than `bound`.

    Applied to updates (after the optimizer, last in a chain). A step applies the sum U_r of the
    updates of every occurrence of row r, all computed at the same parameters. Its effect on the
    score x . w_r of any row x of the other table in the step is at most |U_r| * max|x|
    (Cauchy-Schwarz). Sequential SGD, word2vec's, moves a row between its occurrences, and the
    logistic losses saturate, so its scores move by O(1) however often a row occurs; the summed step
    moves them by O(occurrences) and overshoots. This rule moves a row by its full summed update
    while |U_r| * max|x| <= bound, and along the same direction by exactly `bound` / max|x|
    beyond: rare rows keep word2vec's step, frequent rows never overshoot, whatever the batch, the
    vocabulary, the layout or the device count (docs/devices.md has the measurements).

    Extra arguments of update: indices (per table: row indices [M], or None for a dense table, whose
    rows are summed already) and partner_norms (per table: the largest norm among the rows of the
    *other* table that the step read: a scalar). Without partner_norms, updates pass unchanged.
    """
    check(isinstance(bound, (int, float)) and bound > 0 and math.isfinite(bound),
           f"trust_region must be a positive number, got {bound!r}")

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None, *, indices=None, partner_norms=None, **extra_args):
        del params, extra_args
        if partner_norms is None:
            return updates, state
        treedef = jax.tree.structure(updates)
        out = []
        for u, idx, x in zip(treedef.flatten_up_to(updates), leaves_like(treedef, indices),
                             treedef.flatten_up_to(partner_norms)):
            if idx is None:  # a dense table: each row's update is its sum already
                moved = jnp.sqrt(jnp.sum(u * u, axis=row_axes(u)))
            else:
                group = groups(idx).group
                sums = jax.ops.segment_sum(u, group, num_segments=idx.shape[0])
                moved = jnp.sqrt(jnp.sum(sums * sums, axis=row_axes(u)))[group]
            scale = held_scale(moved * x.astype(u.dtype), bound)
            out.append(u * per_row(scale.astype(u.dtype), u))
        return treedef.unflatten(out), state

    return optax.GradientTransformationExtraArgs(init, update)


def partner_norms(in_rows: jax.Array, out_rows: jax.Array,
                  hidden_norm: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """For a step's gathered rows of W and W', per table the largest row norm of the other table's
    rows: what `trust_region` multiplies a row's move by (a row of W is scored against rows of W',
    and the reverse). hidden_norm, where given, is W''s instead: the largest norm of the vectors its
    rows are scored against when those are not rows of W (CBOW's means of contexts). Returns (for
    W, for W'), scalars."""
    def largest(r):
        return jnp.sqrt(jnp.max(jnp.sum(r * r, axis=-1)))

    return largest(out_rows), largest(in_rows) if hidden_norm is None else hidden_norm


class TrustRegionChain(optax.GradientTransformationExtraArgs):
    """`optax.chain(*parts, trust_region(bound))` (the same init, update and state) that says its
    bound, so that `sparse_step` given the rows a step read can apply the rule after its scatter
    (`bound_row_moves`) instead of inside the chain. Built by `with_trust_region`."""

    def __new__(cls, parts, bound: float):
        chained = optax.chain(*parts, trust_region(bound))
        self = super().__new__(cls, chained.init, chained.update)
        self.bound = float(bound)
        return self


def with_trust_region(*parts: optax.GradientTransformation, bound: float) -> TrustRegionChain:
    """The transformations `parts` in turn, then `trust_region(bound)`, as one chain."""
    return TrustRegionChain(parts, bound)


def _row_sq_norms(blocks: list) -> list:
    """Per block [M_k, ...], the squared norm of each row: [M_k]. Blocks of one row shape and dtype
    are reduced together: one concatenation and one reduction, measured cheaper on a CPU than a
    reduction per block (each a separate pass and dispatch)."""
    flat = [b.reshape(b.shape[0], -1) for b in blocks]
    if len({(f.shape[1], f.dtype) for f in flat}) != 1:
        return [jnp.sum(f * f, axis=1) for f in flat]
    sq = jnp.sum(jnp.square(jnp.concatenate(flat)), axis=1)
    cuts = list(itertools.accumulate(f.shape[0] for f in flat))[:-1]
    return jnp.split(sq, cuts)


def bound_row_moves(params, before, indices, bound: float, *, hidden_norm=None):
    """The tables after a step, every row r it moved held to the trust region: moved by U_r (its
    summed update, read back from the table: new row - row before) while |U_r| * P <= bound, else
    by U_r * bound / (|U_r| * P), P the largest norm among the rows of the *other* table that the
    step read. The rule of `trust_region`, applied after the step's scatter-add rather than to the
    updates before it: a repeated row's updates are summed by the scatter itself (no sort, no
    segment sum), and the step's update arithmetic stays fused into its scatter.

    params: the two tables after the unbounded step (a pytree of two leaves: W, W'; each one's
      partner is the other).
    before: the matching rows the step read, before it: [M, ...] gathered at indices, or the whole
      table for a table used densely.
    indices: the matching int row indices [M] (any shape, read flat; repeats allowed; an index past
      the table's end is padding, ignored), None for a dense table.
    hidden_norm: the partner norm of the second table (W') where its rows are scored against
      vectors other than the first table's rows read (CBOW's means of contexts,
      `architectures.largest_hidden_norm`); None: the largest norm of those rows.
    The rows over the bound are rewritten under a `lax.cond` (one per table), so a step whose rows
    all lie within it pays for the check alone.
    """
    treedef = jax.tree.structure(params)
    tables = treedef.flatten_up_to(params)
    check(len(tables) == 2, f"bound_row_moves needs two tables (W and W'), got {len(tables)}")
    idxs = [None if i is None else i.reshape(-1) for i in leaves_like(treedef, indices)]
    olds = [old if i is None else old.reshape(i.shape + w.shape[1:])
            for w, i, old in zip(tables, idxs, treedef.flatten_up_to(before))]

    def read(w, i):
        return w if i is None else w.at[i].get(mode="fill", fill_value=0)

    # |U_r|^2 of every slot and |x|^2 of every row read, in one reduction
    sq = _row_sq_norms([read(w, i) - old for w, i, old in zip(tables, idxs, olds)] + olds)
    largest = [jnp.sqrt(jnp.max(x, initial=0)) for x in sq[2:]]     # per table: its rows' largest norm
    if hidden_norm is not None:   # W' is scored against these vectors, not against W's rows
        largest[0] = hidden_norm.astype(largest[0].dtype)
    out = []
    for k, (w, i, old, moved_sq) in enumerate(zip(tables, idxs, olds, sq[:2])):
        change = jnp.sqrt(moved_sq) * largest[1 - k].astype(moved_sq.dtype)   # |U_r| P, as trust_region
        over = change > bound
        if i is not None:
            over = over & (i < w.shape[0])
        scale = per_row((bound / jnp.where(over, change, 1)).astype(w.dtype), old)

        def held(w, i=i, old=old, over=over, scale=scale):
            fixed = old + (read(w, i) - old) * scale
            if i is None:
                return jnp.where(per_row(over, w), fixed, w)
            return w.at[jnp.where(over, i, w.shape[0])].set(fixed, mode="drop")

        out.append(jax.lax.cond(jnp.any(over), held, lambda w: w, w))
    return treedef.unflatten(out)
