"""Optimizers for row-sparse steps (minimal version: SGD, duplicate capping and clipping).

A step gathers the rows of the tables that a batch touches and differentiates the loss with
respect to those rows; `sparse_step` turns the row gradients into updates and scatters them back,
one scatter per table.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from sg_jax.errors import ConfigError

OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": lambda learning_rate: optax.sgd(learning_rate),
}


def make_optimizer(name: str, learning_rate, **options) -> optax.GradientTransformation:
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](learning_rate, **options)


def occurrences(idx: jax.Array, active: jax.Array) -> jax.Array:
    """For each position i, how many active positions hold the row idx[i]. O(M log M): a sort,
    no V-sized buffer."""
    key = jnp.where(active, idx, jnp.iinfo(idx.dtype).max)
    ordered = jnp.sort(key)
    return jnp.searchsorted(ordered, idx, side="right") - jnp.searchsorted(ordered, idx, side="left")


def cap_rows(g: jax.Array, idx: jax.Array, cap: float) -> jax.Array:
    """Scale the gradients of a row met n > cap times in the batch by cap / n."""
    active = jnp.any(g != 0, axis=-1)
    n = occurrences(idx, active).astype(g.dtype)
    return g * jnp.minimum(1.0, cap / jnp.maximum(n, 1.0))[:, None]


def table_grad_norm(g: jax.Array, idx: jax.Array | None) -> jax.Array:
    """Squared norm of the table gradient that the gathered-row gradients g [M, N] scatter into."""
    if idx is None:
        return jnp.sum(g * g)
    order = jnp.argsort(idx)
    sorted_idx = idx[order]
    segment = jnp.cumsum(jnp.concatenate([jnp.zeros(1, jnp.int32), (sorted_idx[1:] != sorted_idx[:-1]).astype(jnp.int32)]))
    sums = jax.ops.segment_sum(g[order], segment, num_segments=idx.shape[0])
    return jnp.sum(sums * sums)


def sparse_step(tx, params, opt_state, row_grads, indices, *, dup_cap=None, clip_norm=None):
    """Apply tx to row gradients and scatter-add the updates (SGD semantics)."""
    if dup_cap is not None:
        row_grads = type(row_grads)(*(g if i is None else cap_rows(g, i, dup_cap) for g, i in zip(row_grads, indices)))
    if clip_norm is not None:
        norm = jnp.sqrt(sum(table_grad_norm(g, i) for g, i in zip(row_grads, indices)))
        scale = jnp.minimum(1.0, clip_norm / jnp.maximum(norm, 1e-30)).astype(row_grads[0].dtype)
        row_grads = type(row_grads)(*(g * scale for g in row_grads))
    updates, opt_state = tx.update(row_grads, opt_state)
    new = [p + u if i is None else p.at[i].add(u) for p, u, i in zip(params, updates, indices)]
    return type(params)(*new), opt_state


def init_state(tx, params) -> Any:
    return tx.init(params)
