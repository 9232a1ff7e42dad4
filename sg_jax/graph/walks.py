"""Random walks as a training corpus: DeepWalk's uniform walks and node2vec's second-order walks.

A walk is a sentence of node ids: `walk_length` nodes, the start node first. Walk g (g = 0 ..
walks * n - 1) starts at node g mod n. Chunks of `chunk_walkers` walkers advance together on the
device, one CSR gather per walker and step, and each finished chunk is copied to the host (or to
a memory-mapped file) as an `EncodedCorpus`.

The walks are drawn by `sg_jax.graph.sampler`: first-order steps (DeepWalk, node2vec with
p = q = 1) and node2vec's exact rejection sampler, with positional randomness, so the walks are
the same for every chunk size and on every device. `WalkConfig` bounds what the sampler may be
asked (MAX_PROPOSALS, MIN_P).

Sizes are bounded before anything is allocated (`check_sizes`): a chunk of walkers must fit in the
memory of the device and of the host (the chunk shrinks to fit, which changes no walk, down to one
BLOCK of walkers, else the walk length is refused), and all the walks, walks x nodes x walk_length
node ids of 4 bytes, must fit in the memory limit or on the disk they spill to.

A walk stops early at a node with no out-neighbour (possible in directed graphs); a walk of one
node (an isolated start) gives no training pair and is not kept.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from sg_jax.data.corpus import EncodedCorpus, Vocab
from sg_jax.data.vocabulary import _NpyStream
from sg_jax.errors import ConfigError
from sg_jax.graph.csr import CSR, to_device
from sg_jax.graph.edgelist import GraphError
from sg_jax.graph.sampler import BLOCK, walk_chunk, walk_key

METHODS = ("deepwalk", "node2vec")
MAX_PROPOSALS = 1000  # node2vec: the most proposals one step may need on average, max(1, 1/q) * max(1, p, q)
MIN_P = 1e-6          # node2vec: 1/p at most 1e6 (< 2**20), within the weights' float32 headroom
CHUNK_BYTES_PER_NODE = 12  # one walker's memory per node of its walk in a chunk: the walks, their copies


@dataclasses.dataclass(frozen=True)
class WalkConfig:
    """How the walks are drawn. (chunk_walkers changes memory use only, never the walks.)"""

    method: str = "deepwalk"     # "deepwalk" (uniform / weight-proportional) or "node2vec"
    p: float = 1.0               # node2vec return parameter: weight 1/p on going back to the previous node
    q: float = 1.0               # node2vec in-out parameter: weight 1/q on moving away from the previous node
    walks: int = 10              # walks started from every node (R)
    walk_length: int = 80        # nodes per walk, the start included (L)
    chunk_walkers: int = 1 << 17  # walkers advanced together in one jitted call (device memory ~ 12 L bytes each)

    def validate(self) -> "WalkConfig":
        checks = [
            (self.method in METHODS, f"method must be one of {', '.join(METHODS)}, got {self.method!r}"),
            (_positive(self.p), f"p must be a finite number > 0, got {self.p}"),
            (_positive(self.q), f"q must be a finite number > 0, got {self.q}"),
            (self.method == "node2vec" or (self.p, self.q) == (1.0, 1.0),
             f"p and q are node2vec's parameters; deepwalk takes none (got p={self.p}, q={self.q})"),
            (self.walks >= 1, f"walks per node must be >= 1, got {self.walks}"),
            (self.walk_length >= 2, f"walk length must be >= 2 nodes, got {self.walk_length}"),
            (self.chunk_walkers >= BLOCK and self.chunk_walkers % BLOCK == 0,
             f"chunk_walkers must be a positive multiple of {BLOCK}, got {self.chunk_walkers}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.p < MIN_P:  # the checks that need p and q to be numbers > 0
            raise ConfigError(f"p must be >= {MIN_P:g} (the return weight 1/p is held in float32), got {self.p}")
        if self.proposals_bound() > MAX_PROPOSALS:
            bound = self.proposals_bound()
            shown = f"{bound:,.4g}" if math.isfinite(bound) else "more than 1e308"
            raise ConfigError(f"node2vec with p={self.p:g} and q={self.q:g} could need {shown} "
                              f"proposals for one step (max(1, 1/q) * max(1, p, q)); at most {MAX_PROPOSALS:,} are "
                              "allowed: bring p and q closer to 1")
        return self

    def proposals_bound(self) -> float:
        """The most proposals one node2vec step needs on average (the envelope over the smallest
        acceptance factor): max(1, 1/q) * max(1, p, q); 1 for first-order walks."""
        if self.method != "node2vec":
            return 1.0
        return max(1.0, 1.0 / self.q) * max(1.0, self.p, self.q)

    @property
    def first_order(self) -> bool:
        """True when the next node depends on the current one only (DeepWalk; node2vec p = q = 1)."""
        return self.method == "deepwalk" or (self.p == 1.0 and self.q == 1.0)

    def settings(self) -> dict:
        """What determines the walks (recorded in graph.json; a resume must match it)."""
        d = dataclasses.asdict(self)
        d.pop("chunk_walkers")
        return d


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def memory_available() -> int:
    """Bytes a chunk of walks may use: the smaller of the device's free memory (when the backend
    reports it) and the host's available memory (MemAvailable, else physical memory)."""
    host = None
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    host = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if host is None:
        try:
            host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (OSError, ValueError, AttributeError):
            host = 1 << 33
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # a backend without memory statistics
        stats = {}
    if "bytes_limit" in stats:
        return min(host, int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)))
    return host


def _size(n: float) -> str:
    units = ("bytes", "KB", "MB", "GB", "TB", "PB")
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n, i = n / 1000, i + 1
    return f"{n:,.0f} bytes" if i == 0 else f"{n:,.1f} {units[i]}"


def check_sizes(config: WalkConfig, n_nodes: int, *, memory: int, memory_limit: int,
                spill_dir: str | Path | None) -> tuple[int, bool]:
    """(walkers per chunk, whether the walks spill to disk) for `config` on n_nodes nodes, or a
    ConfigError saying what is too large and the limit: a chunk of BLOCK walkers must fit in half of
    `memory` (two chunks are in flight, one drawn while the other is encoded), all the walks in
    `memory_limit` bytes or else on the free disk of `spill_dir`."""
    L = config.walk_length
    total = config.walks * n_nodes
    per_walker = CHUNK_BYTES_PER_NODE * L
    fit = memory // 2 // per_walker // BLOCK * BLOCK
    if fit < BLOCK:
        longest = memory // 2 // (CHUNK_BYTES_PER_NODE * BLOCK)
        raise ConfigError(f"walk length {L:,} is too long: a chunk of {BLOCK:,} walkers would need "
                          f"{_size(2 * per_walker * BLOCK)} of memory, over the {_size(memory)} available; at most "
                          f"{longest:,} nodes per walk fit")
    walkers = min(config.chunk_walkers, fit, -(-total // BLOCK) * BLOCK)
    on_disk = total * L * 4 > memory_limit
    need = total * (L * 4 + 8)  # on disk: int32 node ids, an int64 offset per walk (walks ending early take less)
    if on_disk and spill_dir is not None:
        existing = Path(spill_dir).absolute()
        while not existing.exists() and existing != existing.parent:  # the spill directory is made later
            existing = existing.parent
        free = shutil.disk_usage(existing).free
        if need > free:
            most = free // (n_nodes * (L * 4 + 8))
            raise ConfigError(f"the walks are too large: {config.walks:,} walks per node x {n_nodes:,} nodes x "
                              f"{L:,} nodes per walk take up to {_size(need)}, more than the {_size(free)} free on "
                              f"the disk they spill to (under {Path(spill_dir).absolute().parent}); at most {most:,} "
                              "walks per node of this length fit")
    return walkers, on_disk


# ---------------------------------------------------------------------------------------------
# the host side: chunks -> an encoded corpus, node vocabulary


@dataclasses.dataclass
class WalkCorpus:
    """Walks as a training corpus: vocabulary of the visited nodes, the encoded walks, and what
    was left out."""

    vocab: Vocab                # visited nodes, by visit count (descending), ties by name
    encoded: EncodedCorpus      # one sentence per kept walk (>= 2 nodes), ids in `vocab`
    unvisited: list[str]        # nodes in no kept walk (isolated nodes): they get no vector
    walks_started: int
    walks_kept: int             # walks with >= 2 nodes
    steps: int                  # walk steps taken (nodes after the start), over all walks
    seconds: float              # wall time of the walks (device work, copies and encoding)
    on_disk: bool

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> str:
        return (f"{self.walks_started:,} walks ({self.walks_kept:,} of >= 2 nodes), {self.encoded.n_tokens:,} nodes "
                f"in all, {self.steps:,} steps in {self.seconds:.2f} s ({self.steps_per_second:,.0f} steps/s)"
                + (", spilled to disk" if self.on_disk else ""))


def generate_walks(csr: CSR, names, config: WalkConfig, seed: int, *, spill_dir: str | Path | None = None,
                   memory_limit: int = 1 << 30, progress: Callable[[int, int], None] | None = None) -> WalkCorpus:
    """All walks of `config` on `csr` (node k named names[k]) keyed by `seed`.

    The walks are held in memory when they take at most `memory_limit` bytes (4 per node), else
    streamed into spill_dir/ids.npy and offsets.npy and memory-mapped (spill_dir is
    required then). Sizes that do not fit are refused first (`check_sizes`).
    progress(walks_done, walks_total) is called after each chunk.
    """
    config.validate()
    n = csr.n_nodes
    if len(names) != n:
        raise GraphError(f"{len(names)} names for {n} nodes")
    if csr.indices.size == 0:
        raise GraphError("the graph has no edges: no walk can leave its start node")
    t0 = time.perf_counter()
    total = config.walks * n
    M, on_disk = check_sizes(config, n, memory=memory_available(), memory_limit=memory_limit, spill_dir=spill_dir)
    if on_disk and spill_dir is None:
        raise ConfigError(f"the walks need {total * config.walk_length * 4 / 2**30:.1f} GiB, over the memory "
                          f"limit of {memory_limit / 2**30:.1f} GiB: give a directory to spill them to")
    g = to_device(csr)
    key = walk_key(seed)
    sink = _Sink(Path(spill_dir) if on_disk else None)
    counts = np.zeros(n, np.int64)
    kept = 0
    pending = walk_chunk(g, key, 0, M, total, n, config, csr.weighted, csr.directed, csr.max_degree)
    try:
        for first in range(0, total, M):
            walks = np.asarray(pending)
            if first + M < total:  # the device draws the next chunk while the host encodes this one
                pending = walk_chunk(g, key, first + M, M, total, n, config, csr.weighted, csr.directed,
                                     csr.max_degree)
            lengths = (walks >= 0).sum(axis=1)
            keep = lengths >= 2
            ids = walks[keep].ravel()
            ids = ids[ids >= 0]  # -1 only pads the tail of a walk, so row order is kept
            counts += np.bincount(ids, minlength=n)
            kept += int(keep.sum())
            sink.append(ids, lengths[keep])
            if progress is not None:
                progress(min(first + M, total), total)
        visited = np.flatnonzero(counts)
        if visited.size < 2:
            raise GraphError(f"the walks visit {visited.size} node(s); training needs at least 2")
        # vocabulary order: visit count descending, ties by name (as a word vocabulary)
        order = sorted(visited.tolist(), key=lambda v: (-counts[v], names[v]))
        perm = np.full(n, -1, np.int32)
        perm[order] = np.arange(len(order), dtype=np.int32)
        encoded = sink.finish(perm)
    except BaseException:
        sink.abort()
        raise
    vocab = Vocab.from_counts([names[v] for v in order], counts[order])
    unvisited = [names[v] for v in np.flatnonzero(counts == 0)]
    steps = int(encoded.n_tokens) - kept
    return WalkCorpus(vocab, encoded, unvisited, total, kept, steps, time.perf_counter() - t0, on_disk)


class _Sink:
    """Collects encoded walks in memory, or streams them to ids.npy / offsets.npy in a directory."""

    def __init__(self, directory: Path | None):
        self.directory, self.total = directory, 0
        self.ids: list[np.ndarray] = []
        self.lengths: list[np.ndarray] = []
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self.files = [open(directory / "ids.npy", "w+b"), open(directory / "offsets.npy", "w+b")]
            self.id_stream, self.offset_stream = _NpyStream(self.files[0], np.int32), _NpyStream(self.files[1], np.int64)
            self.offset_stream.append(np.zeros(1, np.int64))

    def append(self, ids: np.ndarray, lengths: np.ndarray) -> None:
        if self.directory is None:
            self.ids.append(ids.astype(np.int32, copy=False))
            self.lengths.append(lengths.astype(np.int64))
        else:
            self.id_stream.append(ids)
            self.offset_stream.append(self.total + np.cumsum(lengths, dtype=np.int64))
        self.total += int(lengths.sum())

    def finish(self, perm: np.ndarray) -> EncodedCorpus:
        """The corpus with node ids mapped through perm (node id -> vocabulary id)."""
        if self.directory is None:
            ids = perm[np.concatenate(self.ids)]
            offsets = np.concatenate([[0], np.cumsum(np.concatenate(self.lengths))]).astype(np.int64)
            return EncodedCorpus(ids, offsets)
        self.id_stream.close()
        self.offset_stream.close()
        for f in self.files:
            f.close()
        ids = np.load(self.directory / "ids.npy", mmap_mode="r+")
        for a in range(0, len(ids), 1 << 24):  # remap in place, 64 MiB at a time
            ids[a:a + (1 << 24)] = perm[ids[a:a + (1 << 24)]]
        ids.flush()
        del ids
        return EncodedCorpus.load(self.directory, mmap=True)

    def abort(self) -> None:
        if self.directory is not None:
            for f in self.files:
                f.close()
