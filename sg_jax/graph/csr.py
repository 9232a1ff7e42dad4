"""The graph as compressed sparse rows (CSR), on the host and on the device.

Row v lists the out-neighbours of v (both endpoints' rows hold an undirected edge), sorted by node
id so that "is x a neighbour of t" is a binary search. Weighted graphs also carry, per row, the
running sum of the row's edge weights (float32, accumulated in float64 within the row alone, so
that no row's sums depend on another row's weights): sampling a neighbour in proportion to its
weight is a binary search of u * total in that row.

The device holds weights in float32. When the graph's weights do not fit float32 as they are (a
row total above 2**TOP_EXPONENT, or an edge lighter than float32's smallest normal number), every
weight is multiplied by one power of two. That is exact (a power-of-two factor only shifts the
exponent while every value stays a normal number) and changes no walk: a walk reads only ratios of
weights, which a common factor cancels. The 2**(128 - TOP_EXPONENT) of headroom above the largest
row total is for node2vec's factors (1/p, 1/q, bounded in `walks.WalkConfig`). Weights spanning
more than float32's range are refused, naming the two edges.
"""

from __future__ import annotations

import hashlib
import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from sg_jax.graph.edgelist import Graph, GraphError

MAX_ENTRIES = 2**31 - 1  # indices into the rows are int32 on the device
TOP_EXPONENT = 100       # row totals are kept below 2**100 (float32 reaches 2**128)
MIN_EXPONENT = -126      # weights are kept at or above 2**-126, float32's smallest normal number


class CSR(NamedTuple):
    """Host CSR: row v is indices[indptr[v]:indptr[v + 1]] (sorted), with weights and cumw alike."""

    indptr: np.ndarray   # int32 [n + 1]
    indices: np.ndarray  # int32 [m] neighbour ids
    weights: np.ndarray  # float32 [m] edge weights (all 1 when unweighted)
    cumw: np.ndarray     # float32 [m] running sum of the row's weights, restarted at each row
    weighted: bool
    directed: bool

    @property
    def n_nodes(self) -> int:
        return len(self.indptr) - 1

    @property
    def max_degree(self) -> int:
        return int(np.diff(self.indptr).max(initial=0))

    def out_degree(self) -> np.ndarray:
        return np.diff(self.indptr)


class DeviceCSR(NamedTuple):
    """The arrays a walk reads inside jit (a pytree of device arrays)."""

    indptr: jnp.ndarray   # int32 [n + 1]
    indices: jnp.ndarray  # int32 [m]
    weights: jnp.ndarray  # float32 [m]
    cumw: jnp.ndarray     # float32 [m]


def build_csr(graph: Graph) -> CSR:
    """CSR of `graph` (both directions of every edge when undirected); weights scaled by a power
    of two if float32 needs it (see the module docstring)."""
    src, dst, w = graph.src, graph.dst, graph.weight
    if not graph.directed:
        src, dst, w = np.concatenate([src, dst]), np.concatenate([dst, src]), np.concatenate([w, w])
    if len(src) > MAX_ENTRIES:
        raise GraphError(f"the graph has {len(src):,} adjacency entries; at most {MAX_ENTRIES:,} are supported")
    n = graph.n_nodes
    order = np.lexsort((dst, src))  # by row, then by neighbour id
    src, dst, w = src[order], dst[order], w[order]
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    w, cumw = _float32_weights(graph, indptr, src, dst, w)
    return CSR(indptr.astype(np.int32), dst.astype(np.int32), w, cumw, graph.weighted, graph.directed)


def row_cumsum(indptr: np.ndarray, w: np.ndarray) -> np.ndarray:
    """float64 [m]: each row's running sum of its own weights, as np.cumsum of the row alone gives it.
    Rows of one degree are summed together as the rows of a matrix."""
    deg = np.diff(indptr)
    out = np.empty(len(w), np.float64)
    by_degree = np.argsort(deg, kind="stable")
    sorted_deg = deg[by_degree]
    bounds = np.flatnonzero(np.diff(sorted_deg)) + 1
    for rows in np.split(by_degree, bounds):
        d = int(deg[rows[0]]) if len(rows) else 0
        if d == 0:
            continue
        at = indptr[rows][:, None] + np.arange(d)  # [rows, d] positions of these rows' entries
        out[at] = np.cumsum(w[at], axis=1)
    return out


def _float32_weights(graph: Graph, indptr, src, dst, w) -> tuple[np.ndarray, np.ndarray]:
    """(float32 weights, float32 row running sums), scaled by 2**shift so that every row total is
    below 2**TOP_EXPONENT and every weight at least 2**MIN_EXPONENT."""
    if len(w) == 0:
        return w.astype(np.float32), w.astype(np.float32)
    _, e_max = np.frexp(w.max())                  # the heaviest weight is below 2**e_max
    unit = np.ldexp(w, -int(e_max))               # exact: the span check below refuses any underflow
    cumw = row_cumsum(indptr, unit)               # totals < degree: no overflow
    totals = cumw[indptr[1:][np.diff(indptr) > 0] - 1]
    _, e_total = np.frexp(totals.max())
    hi = int(e_total) + int(e_max)                # the largest row total is below 2**hi
    lightest = int(np.argmin(w))
    _, e_min = np.frexp(w[lightest])
    lo = int(e_min) - 1                           # the lightest weight is at least 2**lo
    if hi - lo > TOP_EXPONENT - MIN_EXPONENT:
        heaviest = int(np.argmax(totals))
        row = int(np.flatnonzero(np.diff(indptr) > 0)[heaviest])
        names = graph.names
        try:
            total = f"{math.ldexp(float(totals[heaviest]), int(e_max)):g}"
        except OverflowError:
            total = "more than 1.8e+308"
        raise GraphError(f"the edge weights span more than float32 can hold: edge {names[src[lightest]]} "
                         f"{names[dst[lightest]]} weighs {w[lightest]:g} while node {names[row]}'s edges weigh "
                         f"{total} together (a ratio over 2^{TOP_EXPONENT - MIN_EXPONENT})")
    shift = 0
    if hi > TOP_EXPONENT:
        shift = TOP_EXPONENT - hi
    elif lo < MIN_EXPONENT:
        shift = MIN_EXPONENT - lo
    scale = int(e_max) + shift
    return np.ldexp(unit, scale).astype(np.float32), np.ldexp(cumw, scale).astype(np.float32)


def to_device(csr: CSR) -> DeviceCSR:
    return DeviceCSR(jnp.asarray(csr.indptr), jnp.asarray(csr.indices), jnp.asarray(csr.weights),
                     jnp.asarray(csr.cumw))


def fingerprint(graph: Graph) -> str:
    """Hex sha256 of the graph as read: node names in order, edges, weights, directedness."""
    h = hashlib.sha256()
    h.update(f"directed={graph.directed} weighted={graph.weighted} n={graph.n_nodes}\n".encode())
    h.update("\x1f".join(graph.names).encode("utf-8", "surrogatepass"))
    for a in (graph.src, graph.dst):
        h.update(np.ascontiguousarray(a, dtype="<i8").tobytes())
    if graph.weighted:
        h.update(np.ascontiguousarray(graph.weight, dtype="<f8").tobytes())
    return h.hexdigest()
