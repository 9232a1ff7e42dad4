"""Graphs in: edge-list files, networkx graphs and (src, dst[, weight]) arrays, validated.

An edge-list file has one edge a line, `a b` or `a b weight`, fields separated by any run of
spaces or tabs; node names are arbitrary strings without whitespace (`libc6`, `g++-12`). A line
whose first field starts with `#` is a comment, and so is the rest of a line from a field that
starts with `#` (so a node name cannot start with `#`). Blank lines are skipped. The file may be
gzip-compressed (detected by content) and must be UTF-8; it must be a regular file (a FIFO or a
device, which could be read forever, is refused before it is opened). Node names (and labels) are
normalised to NFC, as the corpus reader normalises words, so the composed and decomposed spellings
of "café" are one node.

What is done with every line, counted in `EdgeStats` and printed by the CLI:

* self-loops (`a a`) are dropped: a walk that stays in place adds nothing but the pair (a, a);
  the node itself is kept (it may have other edges, or it is isolated and reported as such);
* duplicate edges are merged into one edge; with `weighted`, their weights are summed (parallel
  edges of a multigraph carry their total weight). Undirected, `a b` and `b a` are the same edge;
* a third column without `weighted` is ignored (counted), as PecanPy and networkx do.

Refused with a one-line error naming the file and line (`GraphError`): an empty file or one
with no edge left, a line with one field or more than three, a NUL byte (a binary file), a weight
that is not a number, not finite, or not > 0, and (with `weighted`) an edge line without a weight.
Duplicate lines whose weights sum beyond float64 are refused naming the edge; weights the device's
float32 cannot hold are handled in `csr.build_csr`.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import re
import unicodedata
from pathlib import Path
from typing import Sequence

import numpy as np

from sg_jax.errors import FormatError, SgJaxError
from sg_jax.formats import _open

_WHITESPACE = re.compile(r"\s")


class GraphError(SgJaxError):
    """An edge list, a labels file or a graph given from Python is unusable."""


@dataclasses.dataclass
class EdgeStats:
    """What reading a graph saw and what it did with it (all counts)."""

    lines: int = 0            # physical lines (or edges given, for arrays and networkx graphs)
    comments: int = 0         # comment and blank lines
    edges_read: int = 0       # edge lines / entries before any dropping or merging
    self_loops: int = 0       # dropped
    duplicates: int = 0       # merged into an earlier edge (weights summed when weighted)
    ignored_weights: int = 0  # a third column on an unweighted read

    def summary(self) -> str:
        parts = [f"{self.edges_read:,} edge lines", f"{self.self_loops:,} self-loops dropped",
                 f"{self.duplicates:,} duplicate edges merged" + (" (weights summed)" if self.duplicates else "")]
        if self.ignored_weights:
            parts.append(f"{self.ignored_weights:,} third columns ignored (unweighted; pass --weighted to use them)")
        if self.comments:
            parts.append(f"{self.comments:,} comment/blank lines")
        return ", ".join(parts)


@dataclasses.dataclass(frozen=True, eq=False)
class Graph:
    """A validated simple graph: node k is `names[k]`; edge e joins src[e] -> dst[e] with weight[e].

    Edges are unique (an undirected edge is stored once, with src < dst) and have no self-loop;
    weights are float64 > 0 (all 1.0 when not `weighted`). Nodes are numbered in order of first
    appearance. Nodes without an edge (isolated) are allowed: they get no walk context.
    """

    names: tuple[str, ...]
    src: np.ndarray      # int64 [E]
    dst: np.ndarray      # int64 [E]
    weight: np.ndarray   # float64 [E]
    directed: bool
    weighted: bool
    stats: EdgeStats = dataclasses.field(default_factory=EdgeStats)

    @property
    def n_nodes(self) -> int:
        return len(self.names)

    @property
    def n_edges(self) -> int:
        return len(self.src)

    def degrees(self) -> np.ndarray:
        """int64 [n]: number of edges at each node (out- plus in-edges when directed)."""
        return (np.bincount(self.src, minlength=self.n_nodes) + np.bincount(self.dst, minlength=self.n_nodes))

    def isolated(self) -> list[str]:
        """Names of the nodes with no edge at all."""
        return [self.names[i] for i in np.flatnonzero(self.degrees() == 0)]

    def describe(self) -> str:
        kind = ("directed" if self.directed else "undirected") + (", weighted" if self.weighted else "")
        n_iso = int((self.degrees() == 0).sum())
        return (f"{self.n_nodes:,} nodes, {self.n_edges:,} edges ({kind})"
                + (f", {n_iso:,} isolated node(s)" if n_iso else ""))

    def edge_subset(self, keep: np.ndarray) -> "Graph":
        """The graph with the same nodes and only the edges where `keep` (bool [E]) is true."""
        keep = np.asarray(keep, dtype=bool)
        return Graph(self.names, self.src[keep], self.dst[keep], self.weight[keep], self.directed, self.weighted,
                     dataclasses.replace(self.stats))


def _canonical(names: Sequence[str], src: np.ndarray, dst: np.ndarray, weight: np.ndarray, directed: bool,
               weighted: bool, stats: EdgeStats, where: str) -> Graph:
    """Drop self-loops, merge duplicates (summing weights), keep first-appearance order of edges."""
    loops = src == dst
    stats.self_loops += int(loops.sum())
    src, dst, weight = src[~loops], dst[~loops], weight[~loops]
    if not directed:
        src, dst = np.minimum(src, dst), np.maximum(src, dst)
    n = max(len(names), 1)
    key = src * n + dst
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    stats.duplicates += len(key) - len(first)
    if len(first) < len(key):
        summed = np.bincount(inverse, weights=weight, minlength=len(first))
        order = np.argsort(first, kind="stable")  # keep the order in which edges first appeared
        src, dst, weight = src[first][order], dst[first][order], summed[order]
        if not np.isfinite(weight).all():
            e = int(np.argmax(~np.isfinite(weight)))
            raise GraphError(f"{where}: the duplicates of edge {names[src[e]]} {names[dst[e]]} have weights that sum "
                             "beyond float64's range")
    if len(src) == 0:
        raise GraphError(f"{where}: the graph has no edges"
                         + (f" ({stats.self_loops} self-loop(s) dropped)" if stats.self_loops else ""))
    return Graph(tuple(names), src.astype(np.int64), dst.astype(np.int64), weight.astype(np.float64), directed,
                 weighted, stats)


def _check_name(name: str, where: str) -> str:
    """`name` in NFC, or a GraphError if it is empty or holds whitespace or a NUL character."""
    if not name or _WHITESPACE.search(name):
        raise GraphError(f"{where}: node name {name!r} is empty or contains whitespace, which the vectors file "
                         "cannot hold")
    if "\x00" in name:
        raise GraphError(f"{where}: node name {name!r} holds a NUL character")
    return name if name.isascii() else unicodedata.normalize("NFC", name)


def _parse_weight(text: str, where: str) -> float:
    try:
        w = float(text)
    except ValueError:
        raise GraphError(f"{where}: weight {text!r} is not a number") from None
    if not math.isfinite(w) or w <= 0:
        raise GraphError(f"{where}: weight {text!r} must be a finite number > 0")
    return w


def _fields(raw: bytes, path: Path, line_no: int) -> list[str]:
    """The whitespace-separated fields of a line, up to the first field starting with '#'."""
    if b"\x00" in raw:
        raise GraphError(f"{path}:{line_no}: a NUL byte (byte {raw.index(0) + 1} of the line): a binary file, not text")
    try:
        fields = raw.decode("utf-8").split()
    except UnicodeDecodeError as e:
        raise GraphError(f"{path}:{line_no}: invalid UTF-8 (byte {e.start + 1} of the line)") from None
    if not raw.isascii():  # one spelling per name: NFC, as the corpus reader normalises words
        fields = [unicodedata.normalize("NFC", field) for field in fields]
    for i, field in enumerate(fields):
        if field.startswith("#"):
            return fields[:i]
    return fields


def _open_text(path: Path, what: str = "edge list"):
    """A binary reader of `path`, decompressing gzip. Only a regular file is opened (the vectors and
    checkpoint readers' rule, `formats._open`): a FIFO or a device could be read forever."""
    if not path.exists():
        raise GraphError(f"{what} not found: {path}")
    if path.is_dir():
        raise GraphError(f"{what} path is a directory, not a file: {path}")
    try:
        f = _open(path, what)
    except FormatError as e:
        raise GraphError(str(e)) from None
    with f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_edgelist(path: str | os.PathLike, *, directed: bool = False, weighted: bool = False) -> Graph:
    """Read and validate an edge-list file (format and handling in the module docstring)."""
    path = Path(path)
    stats = EdgeStats()
    index: dict[str, int] = {}
    src: list[int] = []
    dst: list[int] = []
    weights: list[float] = []
    try:
        with _open_text(path) as f:
            for line_no, raw in enumerate(f, 1):
                stats.lines += 1
                fields = _fields(raw, path, line_no)
                if not fields:
                    stats.comments += 1
                    continue
                if len(fields) == 1 or len(fields) > 3:
                    raise GraphError(f"{path}:{line_no}: expected 'a b' or 'a b weight', got {len(fields)} field(s): "
                                     f"{raw.decode('utf-8').strip()[:80]!r}")
                if weighted:
                    if len(fields) == 2:
                        raise GraphError(f"{path}:{line_no}: --weighted but the line has no weight")
                    weights.append(_parse_weight(fields[2], f"{path}:{line_no}"))
                elif len(fields) == 3:
                    stats.ignored_weights += 1
                for field, out in ((fields[0], src), (fields[1], dst)):
                    node = index.get(field)
                    if node is None:
                        node = index[field] = len(index)
                    out.append(node)
                stats.edges_read += 1
    except (OSError, EOFError) as e:
        raise GraphError(f"cannot read edge list {path}: {e}") from None
    if stats.edges_read == 0:
        raise GraphError(f"{path}: no edges (the file is empty or holds only comments)")
    w = np.asarray(weights, np.float64) if weighted else np.ones(len(src), np.float64)
    return _canonical(list(index), np.asarray(src, np.int64), np.asarray(dst, np.int64), w, directed, weighted,
                      stats, str(path))


def from_arrays(src, dst, weight=None, *, names: Sequence | None = None, directed: bool = False) -> Graph:
    """A graph from edge arrays. `src`/`dst`: node indices 0..n-1 (then `names`, if given, names them;
    default str(index)), or node names (str). `weight` (optional, > 0) makes the graph weighted."""
    src, dst = np.asarray(src), np.asarray(dst)
    if src.shape != dst.shape or src.ndim != 1:
        raise GraphError(f"src and dst must be 1-D arrays of one length, got shapes {src.shape} and {dst.shape}")
    if len(src) == 0:
        raise GraphError("the graph has no edges")
    stats = EdgeStats(lines=len(src), edges_read=len(src))
    if src.dtype.kind in "iu" and dst.dtype.kind in "iu":
        if min(src.min(), dst.min()) < 0:
            raise GraphError("node indices must be >= 0")
        n = int(max(src.max(), dst.max())) + 1
        if names is None:
            names = [str(i) for i in range(n)]
        elif len(names) < n:
            raise GraphError(f"{len(names)} names for node indices up to {n - 1}")
        names = [_check_name(str(x), "node names") for x in names]
        if len(set(names)) != len(names):
            raise GraphError("node names are not unique (in NFC)")
        s, d = src.astype(np.int64), dst.astype(np.int64)
    else:
        if names is not None:
            raise GraphError("give names only with integer node indices")
        index: dict[str, int] = {}
        ids = [[index.setdefault(_check_name(str(x), "edge arrays"), len(index)) for x in a] for a in (src, dst)]
        names = list(index)
        s, d = np.asarray(ids[0], np.int64), np.asarray(ids[1], np.int64)
    weighted = weight is not None
    if weighted:
        weight = np.asarray(weight, np.float64)
        if weight.shape != src.shape:
            raise GraphError(f"weight has shape {weight.shape}, expected {src.shape}")
        bad = ~(np.isfinite(weight) & (weight > 0))
        if bad.any():
            raise GraphError(f"edge {int(np.argmax(bad))}: weight {float(weight[bad][0])} must be a finite number > 0")
    else:
        weight = np.ones(len(s), np.float64)
    return _canonical(names, s, d, weight, directed, weighted, stats, "edge arrays")


def from_networkx(G, *, weight: str | None = None) -> Graph:
    """A networkx (Di)Graph; node names are str(node), in G's node order (isolated nodes kept).
    `weight`: the edge attribute holding weights (default: unweighted)."""
    names = [_check_name(str(v), "networkx graph") for v in G.nodes]
    if len(set(names)) != len(names):
        raise GraphError("two networkx nodes have the same name (str(node) in NFC)")
    index = {v: i for i, v in enumerate(G.nodes)}
    edges = list(G.edges(data=weight if weight else False))
    if not edges:
        raise GraphError("the networkx graph has no edges")
    s = np.array([index[e[0]] for e in edges], np.int64)
    d = np.array([index[e[1]] for e in edges], np.int64)
    w = None
    if weight:
        w = np.array([1.0 if e[2] is None else e[2] for e in edges], np.float64)
    g = from_arrays(s, d, w, names=names, directed=G.is_directed())
    return g


def read_labels(path: str | os.PathLike, graph: Graph) -> tuple[dict[str, str], int]:
    """`node<TAB>label` lines (any whitespace; `#` comments) -> ({node: label} for nodes of the graph,
    number of lines naming nodes not in the graph, which are skipped). A node listed twice with
    two labels, a line without a label, or a file naming no node of the graph is an error."""
    path = Path(path)
    known = set(graph.names)
    labels: dict[str, str] = {}
    unknown = 0
    try:
        with _open_text(path, "labels file") as f:
            for line_no, raw in enumerate(f, 1):
                fields = _fields(raw, path, line_no)
                if not fields:
                    continue
                if len(fields) != 2:
                    raise GraphError(f"{path}:{line_no}: expected 'node<TAB>label', got {len(fields)} field(s)")
                node, label = fields
                if node not in known:
                    unknown += 1
                    continue
                if labels.setdefault(node, label) != label:
                    raise GraphError(f"{path}:{line_no}: node {node!r} has two labels ({labels[node]!r}, {label!r})")
    except (OSError, EOFError) as e:
        raise GraphError(f"cannot read labels file {path}: {e}") from None
    if not labels:
        raise GraphError(f"{path}: no line names a node of the graph"
                         + (f" ({unknown} line(s) name unknown nodes)" if unknown else ""))
    return labels, unknown
