"""Optimizers for row-sparse steps: optax transformations applied to the rows a batch touches.

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

`cap_duplicates` and `clip_by_table_norm` need to know which rows the gradients belong to. They
are `optax.GradientTransformationExtraArgs` reading the extra arguments `indices` (the pytree of
row indices, None for a table given densely) and `counts` (how many nonzero-gradient occurrences
each gradient row stands for; `sparse_step` passes it once it has summed duplicates), so

    tx = optax.chain(cap_duplicates(64), clip_by_table_norm(1.0), make_optimizer("adam", sched))

is one transformation that `sparse_step` applies. Called on dense table gradients without
indices, they act on the tables as given (`counts` [V] then says how often each row was met).
"""

from __future__ import annotations

import inspect
import itertools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from sg_jax.errors import ConfigError


# ---------------------------------------------------------------------------------------------
# the optimizers, by name


OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {}


def register(name: str):
    """Add a factory `(learning_rate_schedule, *, options...) -> GradientTransformation`."""

    def deco(factory):
        OPTIMIZERS[name] = factory
        return factory

    return deco


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def check_unit_interval(name: str, value: float) -> None:
    """Raise ConfigError unless 0 <= value < 1 (a decay rate, a momentum)."""
    _check(isinstance(value, (int, float)) and 0 <= value < 1, f"{name} must be in [0, 1), got {value!r}")


def check_positive(name: str, value: float) -> None:
    """Raise ConfigError unless value is a finite number > 0 (a rate, an epsilon, a norm)."""
    _check(isinstance(value, (int, float)) and value > 0 and math.isfinite(value),
           f"{name} must be a positive number, got {value!r}")


@register("sgd")
def _sgd(learning_rate_schedule, *, momentum: float | None = None, nesterov: bool = False):
    """Plain SGD (word2vec's update; with momentum, a lazily updated trace per row)."""
    if momentum is not None:
        check_unit_interval("momentum", momentum)
    return optax.sgd(learning_rate_schedule, momentum=momentum, nesterov=nesterov)


@register("adagrad")
def _adagrad(learning_rate_schedule, *, initial_accumulator_value: float = 0.1, eps: float = 1e-7):
    """Adagrad. initial_accumulator_value: the squared-gradient sum a row starts from (0.1, as
    TensorFlow and optax; it bounds a rare word's first steps at lr * |g| / sqrt(0.1)).
    eps: added inside the square root."""
    _check(isinstance(initial_accumulator_value, (int, float)) and initial_accumulator_value >= 0,
           f"initial_accumulator_value must be >= 0, got {initial_accumulator_value!r}")
    check_positive("eps", eps)
    return optax.adagrad(learning_rate_schedule, initial_accumulator_value=initial_accumulator_value, eps=eps)


@register("adam")
def _adam(learning_rate_schedule, *, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """Adam (lazily: a row's moments move only at steps that touch it; the bias correction uses
    the global step, as LazyAdam). b1, b2: decay rates of the first and second moments;
    eps: added to the root of the second moment."""
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_positive("eps", eps)
    return optax.adam(learning_rate_schedule, b1=b1, b2=b2, eps=eps)


def make_optimizer(name: str, learning_rate_schedule, **options) -> optax.GradientTransformation:
    """The optimizer `name` (a key of OPTIMIZERS) with a learning rate (a float or an optax
    schedule: step -> rate) and the factory's keyword options."""
    _check(name in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    if not callable(learning_rate_schedule):
        check_positive("lr", learning_rate_schedule)
    factory = OPTIMIZERS[name]
    allowed = [p.name for p in inspect.signature(factory).parameters.values() if p.kind is p.KEYWORD_ONLY]
    for key in options:
        _check(key in allowed, f"optimizer {name!r} has no option {key!r}; "
                               f"its options are {', '.join(allowed) or 'none'}")
    return factory(learning_rate_schedule, **options)


# ---------------------------------------------------------------------------------------------
# row bookkeeping


def _leaves_like(treedef, tree) -> list:
    """The per-table entries of `tree` (a pytree with the tables' structure whose entries may be
    None), or all None when tree is None."""
    if tree is None:
        return [None] * treedef.num_leaves
    return treedef.flatten_up_to(tree)


def _row_axes(g: jax.Array) -> tuple[int, ...]:
    return tuple(range(1, g.ndim))


def _per_row(v: jax.Array, g: jax.Array) -> jax.Array:
    """A per-row vector [M] shaped to broadcast against rows g [M, ...]."""
    return v.reshape(v.shape + (1,) * (g.ndim - 1))


def _active(g: jax.Array) -> jax.Array:
    """int32 [M]: 1 where a gradient row is nonzero (a padded position's gradient is zero)."""
    return jnp.any(g != 0, axis=_row_axes(g)).astype(jnp.int32)


class _Groups(NamedTuple):
    ordered: jax.Array       # int [M] the indices, sorted
    first: jax.Array         # bool [M] ordered[k] opens a group of equal indices
    sorted_group: jax.Array  # int32 [M] the group of ordered[k] (groups numbered in sorted order)
    group: jax.Array         # int32 [M] the group of position i


def _groups(idx: jax.Array) -> _Groups:
    """Group the positions of equal indices: one sort of the keys and a binary search (on CPU, a
    sort that carries the permutation along, argsort, costs several times more)."""
    ordered = jnp.sort(idx)
    first = jnp.concatenate([ordered[:1] == ordered[:1], ordered[1:] != ordered[:-1]])
    sorted_group = jnp.cumsum(first.astype(jnp.int32)) - 1
    return _Groups(ordered, first, sorted_group, sorted_group[jnp.searchsorted(ordered, idx, side="left")])


def _occurrences(idx: jax.Array, weight: jax.Array) -> jax.Array:
    """For each position i, the sum of weight[j] over the positions j with idx[j] == idx[i]
    (O(M log M), no buffer the size of the table)."""
    group = _groups(idx).group
    return jax.ops.segment_sum(weight, group, num_segments=idx.shape[0])[group]


def _sum_rows(g: jax.Array, idx: jax.Array, n_rows: int):
    """Sum the gradient rows that share an index.

    Returns (rows int [M], sums [M, ...], counts int32 [M]): slot s holds the s-th distinct index
    and the sum of its rows; counts are its occurrences with a nonzero gradient. The slots past the
    number of distinct indices are padding: zero sums, and the row n_rows, one past the table, so
    that a gather with mode="fill" reads zeros there and a scatter with mode="drop" skips it.
    """
    M = idx.shape[0]
    groups = _groups(idx)
    sums = jax.ops.segment_sum(g, groups.group, num_segments=M)
    counts = jax.ops.segment_sum(_active(g), groups.group, num_segments=M)
    opens = jnp.where(groups.first, groups.sorted_group, M)
    rows = jnp.full((M,), n_rows, idx.dtype).at[opens].set(groups.ordered, mode="drop")
    return rows, sums, counts


# ---------------------------------------------------------------------------------------------
# the transformations that need the indices


def _table_sq_norm(g: jax.Array, idx: jax.Array | None) -> jax.Array:
    """Squared norm of the table gradient that rows g scatter into (rows met several times summed
    first, so opposite gradients of one row cancel)."""
    if idx is None:
        return jnp.sum(g * g)
    sums = jax.ops.segment_sum(g, _groups(idx).group, num_segments=idx.shape[0])
    return jnp.sum(sums * sums)


def cap_duplicates(cap: float) -> optax.GradientTransformationExtraArgs:
    """Scale the gradient of a row met n > cap times in the batch by cap / n.

    A step applies the sum of a row's n gradients, all taken at the same parameters; sequential
    SGD (word2vec) would have moved the row between them. For rows met often (frequent words,
    the nodes near the root of the Huffman tree) the sum overshoots and can diverge; the cap
    bounds a row's step at `cap` average gradients. Rows met at most `cap` times are untouched.
    Only occurrences with a nonzero gradient count (padded positions do not).

    Extra arguments of update: indices (per table: row indices [M], or None for a table given
    densely), counts (per table: the occurrences each gradient row stands for; default: 1 per
    nonzero row). A dense table without counts is passed through.
    """
    _check(isinstance(cap, (int, float)) and cap >= 1, f"dup_cap must be >= 1, got {cap!r}")

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None, *, indices=None, counts=None, **extra_args):
        del params, extra_args
        treedef = jax.tree.structure(updates)
        out = []
        for g, idx, n in zip(treedef.flatten_up_to(updates), _leaves_like(treedef, indices),
                             _leaves_like(treedef, counts)):
            if idx is not None:
                n = _occurrences(idx, _active(g) if n is None else n)
            if n is not None:
                n = n.astype(g.dtype)
                g = g * _per_row(jnp.minimum(1.0, cap / jnp.maximum(n, 1.0)), g)
            out.append(g)
        return treedef.unflatten(out), state

    return optax.GradientTransformationExtraArgs(init, update)


def clip_by_table_norm(max_norm: float) -> optax.GradientTransformationExtraArgs:
    """Scale all gradients by one factor so that the norm of their dense equivalent (every
    table, a row's occurrences summed) is at most max_norm; the update of plain SGD is then at
    most lr * max_norm. Extra argument of update: indices, as for `cap_duplicates`."""
    check_positive("clip_norm", max_norm)

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None, *, indices=None, **extra_args):
        del params, extra_args
        treedef = jax.tree.structure(updates)
        grads = treedef.flatten_up_to(updates)
        sq = None
        for g, idx in zip(grads, _leaves_like(treedef, indices)):
            part = _table_sq_norm(g, idx)
            sq = part if sq is None else sq + part
        if sq is None:
            return updates, state
        scale = jnp.minimum(1.0, max_norm / jnp.maximum(jnp.sqrt(sq), 1e-30))
        return treedef.unflatten([g * scale.astype(g.dtype) for g in grads]), state

    return optax.GradientTransformationExtraArgs(init, update)


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
    _check(isinstance(bound, (int, float)) and bound > 0 and math.isfinite(bound),
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
        for u, idx, x in zip(treedef.flatten_up_to(updates), _leaves_like(treedef, indices),
                             treedef.flatten_up_to(partner_norms)):
            if idx is None:  # a dense table: each row's update is its sum already
                moved = jnp.sqrt(jnp.sum(u * u, axis=_row_axes(u)))
            else:
                group = _groups(idx).group
                sums = jax.ops.segment_sum(u, group, num_segments=idx.shape[0])
                moved = jnp.sqrt(jnp.sum(sums * sums, axis=_row_axes(u)))[group]
            change = moved * x.astype(u.dtype)
            scale = jnp.where(change > bound, bound / jnp.where(change > 0, change, 1), 1)
            out.append(u * _per_row(scale.astype(u.dtype), u))
        return treedef.unflatten(out), state

    return optax.GradientTransformationExtraArgs(init, update)


def partner_norms(in_rows: jax.Array, out_rows: jax.Array) -> tuple[jax.Array, jax.Array]:
    """For a step's gathered rows of W and W', per table the largest row norm of the other table's
    rows: what `trust_region` multiplies a row's move by (a row of W is scored against rows of W',
    and the reverse). Returns (for W, for W'), scalars."""
    def largest(r):
        return jnp.sqrt(jnp.max(jnp.sum(r * r, axis=-1)))

    return largest(out_rows), largest(in_rows)


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


def bound_row_moves(params, before, indices, bound: float):
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
    The rows over the bound are rewritten under a `lax.cond` (one per table), so a step whose rows
    all lie within it pays for the check alone.
    """
    treedef = jax.tree.structure(params)
    tables = treedef.flatten_up_to(params)
    _check(len(tables) == 2, f"bound_row_moves needs two tables (W and W'), got {len(tables)}")
    idxs = [None if i is None else i.reshape(-1) for i in _leaves_like(treedef, indices)]
    olds = [old if i is None else old.reshape(i.shape + w.shape[1:])
            for w, i, old in zip(tables, idxs, treedef.flatten_up_to(before))]

    def read(w, i):
        return w if i is None else w.at[i].get(mode="fill", fill_value=0)

    # |U_r|^2 of every slot and |x|^2 of every row read, in one reduction
    sq = _row_sq_norms([read(w, i) - old for w, i, old in zip(tables, idxs, olds)] + olds)
    largest = [jnp.sqrt(jnp.max(x, initial=0)) for x in sq[2:]]     # per table: its rows' largest norm
    out = []
    for k, (w, i, old, moved_sq) in enumerate(zip(tables, idxs, olds, sq[:2])):
        change = jnp.sqrt(moved_sq) * largest[1 - k].astype(moved_sq.dtype)   # |U_r| P, as trust_region
        over = change > bound
        if i is not None:
            over = over & (i < w.shape[0])
        scale = _per_row((bound / jnp.where(over, change, 1)).astype(w.dtype), old)

        def held(w, i=i, old=old, over=over, scale=scale):
            fixed = old + (read(w, i) - old) * scale
            if i is None:
                return jnp.where(_per_row(over, w), fixed, w)
            return w.at[jnp.where(over, i, w.shape[0])].set(fixed, mode="drop")

        out.append(jax.lax.cond(jnp.any(over), held, lambda w: w, w))
    return treedef.unflatten(out)


# ---------------------------------------------------------------------------------------------
# the step


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
                sum_duplicates: bool | None = None, **extra_args):
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
    extra_args: passed on to tx.update (e.g. partner_norms for `trust_region`; given, the chain
      applies the rule itself and rows are not needed).
    """
    after = isinstance(tx, TrustRegionChain) and rows is not None and "partner_norms" not in extra_args
    tx = optax.with_extra_args_support(tx)
    found = sparse_row_updates(tx, params, opt_state, row_grads, indices, sum_duplicates=sum_duplicates,
                               **extra_args)

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
        new = bound_row_moves(new, rows, indices, tx.bound)
    return new, opt_state


def _whole_table_rows(treedef, tables, idx: list, first_rows):
    """The per-table row indices as the transformations see them (see sparse_row_updates)."""
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
                       sum_duplicates: bool | None = None, first_rows=None, **extra_args) -> RowUpdates:
    """sparse_step's work short of writing it into the tables and the state: `sparse_step` is
    this followed by a scatter-add of `updates` at `touched` and a scatter of the row state. A
    caller that combines several batches' updates (the sharded step, `sg_jax.sharded`) takes
    them from here. Rows at or past a table's end (padding) are dropped by the scatters.

    first_rows: per table, the index of its row 0 in a larger table it is a block of (the sharded
    step's shards), so that the transformations see every row by its index in the whole table
    (a per-row rule means the same row on every device); padding they see past every row."""
    tx = optax.with_extra_args_support(tx)
    treedef = jax.tree.structure(params)
    tables = treedef.flatten_up_to(params)
    grads = treedef.flatten_up_to(row_grads)
    idx = _leaves_like(treedef, indices)
    tags = row_state_tables(tx, opt_state, params)
    has_row_state = any(t >= 0 for t in jax.tree.leaves(tags))
    if sum_duplicates is None:
        sum_duplicates = has_row_state
    elif has_row_state and not sum_duplicates:
        raise ConfigError("sum_duplicates=False needs an optimizer without per-row state; this one keeps some")

    if not sum_duplicates:
        # word2vec's step: one scatter-add of the row updates per table, repeats and all
        rows = [w if i is None else w[i] for w, i in zip(tables, idx)]
        seen = indices if first_rows is None else _whole_table_rows(treedef, tables, idx, first_rows)
        updates, opt_state = tx.update(row_grads, opt_state, treedef.unflatten(rows), indices=seen,
                                       **extra_args)
        return RowUpdates(idx, treedef.flatten_up_to(updates), opt_state, tags)

    # per table: (rows touched, their summed gradients, occurrences); a dense table as it is
    summed = [(None, g, None) if i is None else _sum_rows(g, i, w.shape[0]) for w, g, i in zip(tables, grads, idx)]
    touched, sums, counts = (list(column) for column in zip(*summed))

    def gather(w, rows):
        return w if rows is None else w.at[rows].get(mode="fill", fill_value=0)

    row_state = jax.tree.map(lambda t, s: s if t < 0 else gather(s, touched[t]), tags, opt_state)
    rows = [gather(w, r) for w, r in zip(tables, touched)]
    updates, row_state = tx.update(treedef.unflatten(sums), row_state, treedef.unflatten(rows),
                                   indices=(treedef.unflatten(touched) if first_rows is None
                                            else _whole_table_rows(treedef, tables, touched, first_rows)),
                                   counts=treedef.unflatten(counts),
                                   **extra_args)
    return RowUpdates(touched, treedef.flatten_up_to(updates), row_state, tags)
