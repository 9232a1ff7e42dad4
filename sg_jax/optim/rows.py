"""Row bookkeeping for gradients given as rows: which rows repeat, their sums, their counts.

A step's gradient for a table is a small [M, ...] array of row gradients and the int row indices
[M] they came from (a row met several times appears several times). These helpers group the
positions of equal indices with one sort (static sizes, no buffer the size of the table), and
shape per-row quantities to broadcast against the rows.

A row's occurrences in a step are one quantity whatever the window layout: the number of times the
padded layout would gather it, with a nonzero gradient, for the same predictions (one per target
for the target's row, one per (target, context) pair for the context's row, one per noise draw,
one per path node per prediction). A layout that gathers a row once for several of those (the span
layout reads each position once for all the pairs that use it) gives each gathered slot its
multiplicity (`Layout.multiplicity`); `slot_counts` turns it into the occurrences each gradient
row stands for.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


def leaves_like(treedef, tree) -> list:
    """The per-table entries of `tree` (a pytree with the tables' structure whose entries may be
    None), or all None when tree is None."""
    if tree is None:
        return [None] * treedef.num_leaves
    return treedef.flatten_up_to(tree)


def row_axes(g: jax.Array) -> tuple[int, ...]:
    """The axes of rows g [M, ...] past the first: those a per-row reduction sums over."""
    return tuple(range(1, g.ndim))


def per_row(v: jax.Array, g: jax.Array) -> jax.Array:
    """A per-row vector [M] shaped to broadcast against rows g [M, ...]."""
    return v.reshape(v.shape + (1,) * (g.ndim - 1))


def active(g: jax.Array) -> jax.Array:
    """int32 [M]: 1 where a gradient row is nonzero (a padded position's gradient is zero)."""
    return jnp.any(g != 0, axis=row_axes(g)).astype(jnp.int32)


def slot_counts(g: jax.Array, multiplicity: jax.Array | None = None) -> jax.Array:
    """int32 [M]: the occurrences each gradient row of g [M, ...] stands for: its multiplicity
    (int [M], the padded layout's gathers the slot stands for; None: 1 each) where the row is
    nonzero, 0 where it is zero."""
    n = active(g)
    return n if multiplicity is None else n * multiplicity.astype(jnp.int32)


class Groups(NamedTuple):
    ordered: jax.Array       # int [M] the indices, sorted
    first: jax.Array         # bool [M] ordered[k] opens a group of equal indices
    sorted_group: jax.Array  # int32 [M] the group of ordered[k] (groups numbered in sorted order)
    group: jax.Array         # int32 [M] the group of position i


def groups(idx: jax.Array) -> Groups:
    """Group the positions of equal indices: one sort of the keys and a binary search (on CPU, a
    sort that carries the permutation along, argsort, costs several times more)."""
    ordered = jnp.sort(idx)
    first = jnp.concatenate([ordered[:1] == ordered[:1], ordered[1:] != ordered[:-1]])
    sorted_group = jnp.cumsum(first.astype(jnp.int32)) - 1
    return Groups(ordered, first, sorted_group, sorted_group[jnp.searchsorted(ordered, idx, side="left")])


def occurrences(idx: jax.Array, weight: jax.Array) -> jax.Array:
    """For each position i, the sum of weight[j] over the positions j with idx[j] == idx[i]
    (O(M log M), no buffer the size of the table)."""
    group = groups(idx).group
    return jax.ops.segment_sum(weight, group, num_segments=idx.shape[0])[group]


def sum_rows(g: jax.Array, idx: jax.Array, n_rows: int, multiplicity: jax.Array | None = None):
    """Sum the gradient rows that share an index.

    Returns (rows int [M], sums [M, ...], counts int32 [M]): slot s holds the s-th distinct index
    and the sum of its rows; counts are its occurrences, the `slot_counts` of its rows summed
    (multiplicity: per gradient row, as there; None: 1 each). The slots past the
    number of distinct indices are padding: zero sums, and the row n_rows, one past the table, so
    that a gather with mode="fill" reads zeros there and a scatter with mode="drop" skips it.
    """
    M = idx.shape[0]
    grouped = groups(idx)
    sums = jax.ops.segment_sum(g, grouped.group, num_segments=M)
    counts = jax.ops.segment_sum(slot_counts(g, multiplicity), grouped.group, num_segments=M)
    opens = jnp.where(grouped.first, grouped.sorted_group, M)
    rows = jnp.full((M,), n_rows, idx.dtype).at[opens].set(grouped.ordered, mode="drop")
    return rows, sums, counts
