"""The graph as compressed sparse rows (CSR), on the host and on the device.

Row v lists the out-neighbours of v (both endpoints' rows hold an undirected edge), sorted by node
id so that "is x a neighbour of t" is a binary search. Weighted graphs also carry, per row, the
running sum of the row's edge weights (float32, accumulated in float64 and restarted at every row
so that a hub's row keeps its precision): sampling a neighbour in proportion to its weight is a
binary search of u * total in that row.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from sg_jax.graph.edgelist import Graph, GraphError

MAX_ENTRIES = 2**31 - 1  # indices into the rows are int32 on the device


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
    """CSR of `graph` (both directions of every edge when undirected)."""
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
    total = np.cumsum(w)
    row_start = np.repeat(indptr[:-1], np.diff(indptr))
    before = np.where(row_start > 0, total[np.maximum(row_start - 1, 0)], 0.0)
    cumw = total - before  # row-restarted running sums (float64, then float32)
    return CSR(indptr.astype(np.int32), dst.astype(np.int32), w.astype(np.float32), cumw.astype(np.float32),
               graph.weighted, graph.directed)


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
