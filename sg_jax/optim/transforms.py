"""Gradient transformations that need to know which rows the gradients belong to.

`cap_duplicates` and `clip_by_table_norm` are `optax.GradientTransformationExtraArgs` reading the
extra arguments `indices` (the pytree of row indices, None for a table given densely) and
`counts` (how many occurrences of its row each gradient row stands for; `sparse_step` passes it),
so

    tx = optax.chain(cap_duplicates(64), clip_by_table_norm(1.0), make_optimizer("adam", sched))

is one transformation that `sparse_step` applies. Called on dense table gradients without
indices, they act on the tables as given (`counts` [V] then says how often each row was met).

A row's occurrences in a step are the same quantity in every window layout: the number of times
the padded layout gathers it with a nonzero gradient for the step's predictions (one per target
for the target's row, one per (target, context) pair for the context's row, one per noise draw,
one per path node per prediction for hierarchical softmax; see `sg_jax.optim.rows`). A layout
that reads a row once for several of them (the span layout) says so through
`Layout.multiplicity`, so `--dup-cap` caps the same rows whichever layout a run uses.
The trust region, the per-row rule applied to updates, is in `sg_jax.optim.trust`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from sg_jax.optim.optimizers import check, check_positive
from sg_jax.optim.rows import active, groups, leaves_like, occurrences, per_row


def _table_sq_norm(g: jax.Array, idx: jax.Array | None) -> jax.Array:
    """Squared norm of the table gradient that rows g scatter into (rows met several times summed
    first, so opposite gradients of one row cancel)."""
    if idx is None:
        return jnp.sum(g * g)
    sums = jax.ops.segment_sum(g, groups(idx).group, num_segments=idx.shape[0])
    return jnp.sum(sums * sums)


def cap_duplicates(cap: float) -> optax.GradientTransformationExtraArgs:
    """Scale the gradient of a row met n > cap times in the batch by cap / n.

    A step applies the sum of a row's n gradients, all taken at the same parameters; sequential
    SGD (word2vec) would have moved the row between them. For rows met often (frequent words,
    the nodes near the root of the Huffman tree) the sum overshoots and can diverge; the cap
    bounds a row's step at `cap` average gradients. Rows met at most `cap` times are untouched.
    n is the row's occurrences as the module docstring defines them: its padded-layout gathers
    with a nonzero gradient (padded positions do not count), in every layout.

    Extra arguments of update: indices (per table: row indices [M], or None for a table given
    densely), counts (per table: the occurrences each gradient row stands for, summed here over
    the rows of one index; default: 1 per nonzero row). A dense table without counts is passed
    through.
    """
    check(isinstance(cap, (int, float)) and cap >= 1, f"dup_cap must be >= 1, got {cap!r}")

    def init(params):
        del params
        return optax.EmptyState()

    def update(updates, state, params=None, *, indices=None, counts=None, **extra_args):
        del params, extra_args
        treedef = jax.tree.structure(updates)
        out = []
        for g, idx, n in zip(treedef.flatten_up_to(updates), leaves_like(treedef, indices),
                             leaves_like(treedef, counts)):
            if idx is not None:
                n = occurrences(idx, active(g) if n is None else n)
            if n is not None:
                n = n.astype(g.dtype)
                g = g * per_row(jnp.minimum(1.0, cap / jnp.maximum(n, 1.0)), g)
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
        for g, idx in zip(grads, leaves_like(treedef, indices)):
            part = _table_sq_norm(g, idx)
            sq = part if sq is None else sq + part
        if sq is None:
            return updates, state
        scale = jnp.minimum(1.0, max_norm / jnp.maximum(jnp.sqrt(sq), 1e-30))
        return treedef.unflatten([g * scale.astype(g.dtype) for g in grads]), state

    return optax.GradientTransformationExtraArgs(init, update)
