"""The walk kernels inside jit: DeepWalk's first-order steps and node2vec's rejection sampler.

First-order walks (DeepWalk, and node2vec with p = q = 1, whose second-order factor is then 1 for
every neighbour) draw the next node uniformly among the out-neighbours, or in proportion to the
edge weights (a binary search of u * row total in the row's running sums): a `lax.scan` over the
steps.

node2vec with other (p, q) samples the exact second-order distribution by rejection, as KnightKing
(Yang et al. 2019) and PecanPy's on-the-fly mode do without precomputed per-edge tables: at node v,
coming from t, propose x with probability w(v, x) / W(v) and accept it with probability
f(t, x) / F, where f = 1/p if x = t, 1 if x is an out-neighbour of t (a binary search in t's sorted
row), else 1/q, and the envelope F = max(1, 1/q). When 1/p > F the return edge gets the extra mass
(1/p - F) w(v, t) as a separate "outlier" region that is accepted at once (KnightKing's outlier
folding), so a small p does not slow the walk down. Accepted mass of x is w(v, x) f(t, x): the
normalised node2vec transition probability, exactly. Each walker advances at its own pace (a
rejected walker retries, an accepted one moves on) inside a `lax.while_loop` that ends when every
walker has its `walk_length` nodes, so a chunk costs about the walk length times the mean number of
proposals, not the worst walker's number per step. A proposal is accepted with probability at least
min(1/p, 1, 1/q) / F, so a step needs at most max(1, 1/q) * max(1, p, q) proposals on average; that
bound is capped (MAX_PROPOSALS, checked in `WalkConfig.validate`), so every (p, q) accepted ends in
bounded time, and the sampler stays exact. 1/p is carried in float32 next to the weights' 2**100
of headroom (`csr.TOP_EXPONENT`), hence p >= MIN_P.

Randomness is positional: walker g draws its uniforms for its i-th proposal from
fold_in(fold_in(walk key, g // BLOCK), i)[g % BLOCK], whatever the chunk it is in, so the walks are
the same for every chunk size (a multiple of BLOCK) and on every device. A walk stops early at a
node with no out-neighbour (possible in directed graphs). `sg_jax.graph.walks` holds the walks' configuration
and turns the chunks into a training corpus.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from sg_jax.graph.csr import CSR, DeviceCSR, to_device

# `config` below is a `sg_jax.graph.walks.WalkConfig` (walks imports this module, so it is not imported here)


BLOCK = 1024          # walkers that share one random-number key per proposal
WALK_STREAM = 0x5EED  # fold_in(PRNGKey(seed), WALK_STREAM): the walks' key, apart from training's keys


def _lower_bound(a: jax.Array, lo: jax.Array, hi: jax.Array, value: jax.Array, n_iter: int,
                 strict: bool = False) -> jax.Array:
    """Per walker, the first index in [lo, hi) with a[idx] >= value (> value if strict), or hi:
    a bisection of n_iter >= log2(hi - lo + 1) fixed, vectorised rounds."""
    last = a.shape[0] - 1
    for _ in range(n_iter):
        mid = (lo + hi) // 2
        probe = a[jnp.minimum(mid, last)]
        right = (lo < hi) & ((probe <= value) if strict else (probe < value))
        lo, hi = jnp.where(right, mid + 1, lo), jnp.where(right, hi, jnp.where(lo < hi, mid, hi))
    return lo


def _sample_neighbour(g: DeviceCSR, start, deg, mass, *, weighted: bool, n_iter: int):
    """(neighbour, its index in the CSR arrays) at position `mass` in [0, W(v)) of the row (W = degree
    when unweighted)."""
    if weighted:
        pos = _lower_bound(g.cumw, start, start + deg, mass, n_iter, strict=True)
    else:
        pos = start + mass.astype(jnp.int32)
    pos = jnp.clip(pos, start, start + jnp.maximum(deg, 1) - 1)
    return g.indices[pos], pos


def _edge_weight(g: DeviceCSR, a, b, n_iter: int):
    """w(a -> b), 0 where there is no such edge (a binary search in a's row)."""
    start, end = g.indptr[a], g.indptr[a + 1]
    at = _lower_bound(g.indices, start, end, b, n_iter)
    last = g.indices.shape[0] - 1
    return jnp.where((at < end) & (g.indices[jnp.minimum(at, last)] == b), g.weights[jnp.minimum(at, last)], 0.0)


def _row_total(g: DeviceCSR, start, deg, weighted: bool):
    if weighted:
        return jnp.where(deg > 0, g.cumw[jnp.maximum(start + deg - 1, 0)], 0.0)
    return deg.astype(jnp.float32)


def _uniforms(block_keys: jax.Array, i, n: int) -> jax.Array:
    """[M, n] uniforms for proposal i of every walker of the chunk (positional, see module doc)."""
    u = jax.vmap(lambda k: jax.random.uniform(jax.random.fold_in(k, i), (BLOCK, n)))(block_keys)
    return u.reshape(-1, n)


@functools.partial(jax.jit, static_argnames=("length", "weighted", "n_iter"))
def _first_order_chunk(g: DeviceCSR, block_keys, starts, valid, *, length: int, weighted: bool, n_iter: int):
    """[M, length] walks (-1 after a dead end, and for padding walkers)."""

    def step(carry, i):
        cur, alive = carry
        u = _uniforms(block_keys, i, 1)[:, 0]
        start = g.indptr[cur]
        deg = g.indptr[cur + 1] - start
        alive = alive & (deg > 0)
        mass = u * _row_total(g, start, deg, weighted)
        x, _ = _sample_neighbour(g, start, deg, mass, weighted=weighted, n_iter=n_iter)
        cur = jnp.where(alive, x, cur)
        return (cur, alive), jnp.where(alive, x, -1)

    _, cols = jax.lax.scan(step, (starts, valid), jnp.arange(length - 1))
    return jnp.concatenate([jnp.where(valid, starts, -1)[:, None], cols.T], axis=1)


@functools.partial(jax.jit, static_argnames=("length", "weighted", "directed", "n_iter", "outlier"))
def _second_order_chunk(g: DeviceCSR, block_keys, starts, valid, prevs, inv_p, inv_q, *, length: int, weighted: bool,
                        directed: bool, n_iter: int, outlier: bool):
    """node2vec walks by rejection sampling with outlier folding; returns ([M, length] walks, proposals).
    prevs: the node each walker is taken to have come from (-1: none, a walk's start). The return
    edge's weight w(v, t) is, on an undirected graph, that of the edge just walked (carried along,
    no search); on a directed graph it is searched in v's row."""
    M = starts.shape[0]
    env = jnp.maximum(1.0, inv_q)  # outlier (static): inv_p > env
    rows = jnp.arange(M)
    walks = jnp.full((M, length), -1, jnp.int32).at[:, 0].set(jnp.where(valid, starts, -1))
    pos = jnp.where(valid, 1, length).astype(jnp.int32)
    w_last = _edge_weight(g, starts, jnp.maximum(prevs, 0), n_iter) if outlier and not directed else \
        jnp.zeros(M, jnp.float32)

    def body(state):
        i, cur, prev, pos, walks, w_last = state
        active = pos < length
        u = _uniforms(block_keys, i, 2)
        start = g.indptr[cur]
        end = g.indptr[cur + 1]
        deg = end - start
        dead = active & (deg == 0)
        total = _row_total(g, start, deg, weighted)
        has_prev = prev >= 0
        t = jnp.maximum(prev, 0)
        if outlier:  # the return edge's mass above the envelope, w(v, t) (1/p - F)
            w_back = jnp.where(has_prev, w_last if not directed else _edge_weight(g, cur, t, n_iter), 0.0)
            main = jnp.where(has_prev, env, 1.0) * total
            r = u[:, 0] * (main + (inv_p - env) * w_back)
            in_main = r < main
            mass = r / jnp.where(has_prev, env, 1.0)
        else:
            in_main = jnp.ones(M, bool)
            mass = u[:, 0] * total
        x, at = _sample_neighbour(g, start, deg, mass, weighted=weighted, n_iter=n_iter)
        x = jnp.where(in_main, x, t)
        # f(t, x): 1/p back to t, 1 to a neighbour of t, 1/q further away (capped at F in the main region)
        t_start, t_end = g.indptr[t], g.indptr[t + 1]
        found = _lower_bound(g.indices, t_start, t_end, x, n_iter)
        near = (found < t_end) & (g.indices[jnp.minimum(found, g.indices.shape[0] - 1)] == x)
        f = jnp.where(x == t, jnp.minimum(inv_p, env), jnp.where(near, 1.0, inv_q))
        accept = active & ~dead & (~has_prev | ~in_main | (u[:, 1] * env < f))
        walks = walks.at[rows, jnp.where(accept, pos, length)].set(x, mode="drop")
        prev = jnp.where(accept, cur, prev)
        cur = jnp.where(accept, x, cur)
        pos = jnp.where(accept, pos + 1, jnp.where(dead, length, pos))
        if outlier and not directed:  # the weight of the edge just walked: w(x, v) = w(v, x)
            w_last = jnp.where(accept, jnp.where(in_main, g.weights[at], w_back), w_last)
        return i + 1, cur, prev, pos, walks, w_last

    state = (jnp.zeros((), jnp.int32), starts, prevs, pos, walks, w_last)
    i, _, _, _, walks, _ = jax.lax.while_loop(lambda s: jnp.any(s[3] < length), body, state)
    return walks, i


def walk_chunk(g: DeviceCSR, key: jax.Array, first_walk: int, n_walkers: int, n_walks: int, n_nodes: int,
               config, weighted: bool, directed: bool, max_degree: int, *, starts=None, prevs=None):
    """Walks first_walk .. first_walk + n_walkers - 1 (those >= n_walks are padding, all -1) as a
    device array [n_walkers, walk_length] (dispatched asynchronously). Walk g starts at node g mod n,
    or at starts[g - first_walk] having come from prevs[g - first_walk] (tests of one transition)."""
    g_ids = first_walk + np.arange(n_walkers, dtype=np.int64)
    valid = g_ids < n_walks
    if starts is None:
        starts = np.where(valid, g_ids % n_nodes, 0)
    starts = np.asarray(starts, np.int32)
    prevs = np.full(n_walkers, -1, np.int32) if prevs is None else np.asarray(prevs, np.int32)
    block_keys = jax.vmap(lambda b: jax.random.fold_in(key, b))(jnp.asarray(g_ids[::BLOCK] // BLOCK, jnp.uint32))
    n_iter = max(1, math.ceil(math.log2(max_degree + 1)) + 1)
    common = dict(length=config.walk_length, weighted=weighted, n_iter=n_iter)
    if config.first_order:
        return _first_order_chunk(g, block_keys, jnp.asarray(starts), jnp.asarray(valid), **common)
    inv_p, inv_q = 1.0 / config.p, 1.0 / config.q
    walks, _ = _second_order_chunk(g, block_keys, jnp.asarray(starts), jnp.asarray(valid), jnp.asarray(prevs),
                                   jnp.float32(inv_p), jnp.float32(inv_q), outlier=inv_p > max(1.0, inv_q),
                                   directed=directed, **common)
    return walks


def walk_key(seed: int) -> jax.Array:
    return jax.random.fold_in(jax.random.PRNGKey(seed), WALK_STREAM)


def next_node_counts(csr: CSR, prev: int, cur: int, n_walkers: int, config, seed: int) -> np.ndarray:
    """int64 [n]: where n_walkers walkers at `cur`, having come from `prev` (-1: a walk's first step),
    go next under `config` (one step of the same jitted kernel the walks use). For tests."""
    config = dataclasses.replace(config, walk_length=2).validate()
    M = -(-n_walkers // BLOCK) * BLOCK
    prevs = np.full(M, prev, np.int32)
    walks = walk_chunk(to_device(csr), walk_key(seed), 0, M, n_walkers, csr.n_nodes, config, csr.weighted,
                       csr.directed, csr.max_degree, starts=np.full(M, cur, np.int32), prevs=prevs)
    nxt = np.asarray(walks)[:n_walkers, 1]
    return np.bincount(nxt[nxt >= 0], minlength=csr.n_nodes)
