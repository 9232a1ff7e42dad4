"""Bundled graphs (sg_jax/data/graphs/, provenance in its README.md) and planted-partition generators.

    karate   Zachary's karate club: 34 members, 78 ties; labels: the two factions after the split
    lesmis   Les Misérables co-appearance: 77 characters, 254 weighted edges (chapters shared)
    sbm      a stochastic block model: 4 blocks of 50 nodes (p_in 0.2, p_out 0.01); labels: the blocks
    lfr      an LFR benchmark graph (250 nodes, mu 0.1); labels: the planted communities

The files were written from networkx by `write_bundled` (`python -m sg_jax.graph.datasets DIR`), so
they stay the same whatever networkx version is installed. The CLI takes these names wherever it
takes an edge-list path (`--edges karate`); a file of that name in the working directory wins.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sg_jax.atomic import atomic_write_text
from sg_jax.graph.edgelist import Graph, GraphError, from_arrays

DATA = Path(__file__).resolve().parent.parent / "data" / "graphs"
BUNDLED = {  # name: (weighted, has labels)
    "karate": (False, True),
    "lesmis": (True, False),
    "sbm": (False, True),
    "lfr": (False, True),
}
SBM = dict(sizes=[50, 50, 50, 50], p_in=0.2, p_out=0.01, seed=7)
LFR = dict(n=250, tau1=3, tau2=1.5, mu=0.1, average_degree=5, min_community=20, seed=10)  # networkx's example


def bundled(name: str) -> tuple[Path, Path | None, bool]:
    """(edge-list path, labels path or None, weighted) of a bundled graph."""
    if name not in BUNDLED:
        raise GraphError(f"unknown bundled graph {name!r}; known: {', '.join(BUNDLED)}")
    weighted, labelled = BUNDLED[name]
    return DATA / f"{name}.edges", (DATA / f"{name}.labels") if labelled else None, weighted


def resolve(edges: str) -> tuple[Path, Path | None, bool | None]:
    """An --edges argument -> (path, bundled labels or None, bundled weightedness or None)."""
    if edges in BUNDLED and not Path(edges).exists():
        return bundled(edges)
    return Path(edges), None, None


def _write(directory: Path, name: str, edges, labels=None, header: str = "") -> None:
    lines = [f"# {line}\n" for line in header.strip().splitlines()]
    lines += [" ".join(map(str, e)) + "\n" for e in edges]
    atomic_write_text(directory / f"{name}.edges", "".join(lines))
    if labels is not None:
        atomic_write_text(directory / f"{name}.labels", "".join(f"{n}\t{lab}\n" for n, lab in labels))


def write_bundled(directory: str | Path = DATA) -> None:
    """Write the bundled graphs from networkx into `directory`."""
    import networkx as nx  # heavy: networkx loads only to regenerate the bundled files

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    G = nx.karate_club_graph()
    _write(directory, "karate", sorted(G.edges()),
           [(v, G.nodes[v]["club"].replace(". ", "")) for v in G.nodes],
           "Zachary's karate club (W. W. Zachary, J. Anthropol. Res. 33, 452-473, 1977), from "
           f"networkx {nx.__version__} karate_club_graph(); labels: the 'club' attribute.")
    G = nx.les_miserables_graph()
    _write(directory, "lesmis", sorted((a, b, int(d["weight"])) for a, b, d in G.edges(data=True)),
           None, "Les Miserables co-appearance network (D. E. Knuth, The Stanford GraphBase, 1993), from "
           f"networkx {nx.__version__} les_miserables_graph(); weight: chapters in which both appear.")
    s = SBM
    k = len(s["sizes"])
    P = [[s["p_in"] if i == j else s["p_out"] for j in range(k)] for i in range(k)]
    G = nx.stochastic_block_model(s["sizes"], P, seed=s["seed"])
    _write(directory, "sbm", sorted(G.edges()), [(v, f"b{G.nodes[v]['block']}") for v in G.nodes],
           f"stochastic_block_model({s['sizes']}, p_in={s['p_in']}, p_out={s['p_out']}, seed={s['seed']}) "
           f"from networkx {nx.__version__}; labels: the planted blocks.")
    G = nx.LFR_benchmark_graph(**LFR)
    firsts = {v: min(G.nodes[v]["community"]) for v in G.nodes}
    _write(directory, "lfr", sorted(G.edges()), [(v, f"c{firsts[v]}") for v in G.nodes],
           f"LFR_benchmark_graph({', '.join(f'{k}={v}' for k, v in LFR.items())}) from networkx {nx.__version__}; "
           "labels: the planted communities (named by their smallest node).")


def planted_partition(n: int, m: int, communities: int, mu: float = 0.2, exponent: float = 2.5,
                      seed: int = 0) -> tuple[Graph, dict[str, str]]:
    """A large planted-partition graph in numpy (networkx is too slow past ~1M edges): n nodes in
    `communities` equal blocks, m edge draws (duplicates and self-loops are then merged/dropped),
    endpoints drawn in proportion to a Pareto degree propensity (tail `exponent`, as in a
    Chung-Lu graph), the second endpoint in the first one's block with probability 1 - mu.
    Returns the graph and {node: block}. Nodes are named n0, n1, ..."""
    rng = np.random.default_rng(seed)
    theta = rng.pareto(exponent - 1, n) + 1.0
    block = np.arange(n) % communities
    cdf = np.cumsum(theta) / theta.sum()
    src = np.minimum(np.searchsorted(cdf, rng.random(m)), n - 1)
    # within a block: the block's nodes are b, b + k, b + 2k, ...; draw by their own propensities
    per_block = [np.flatnonzero(block == b) for b in range(communities)]
    cdfs = [np.cumsum(theta[ix]) / theta[ix].sum() for ix in per_block]
    dst = np.minimum(np.searchsorted(cdf, rng.random(m)), n - 1)
    inside = rng.random(m) >= mu
    for b in range(communities):
        sel = np.flatnonzero(inside & (block[src] == b))
        dst[sel] = per_block[b][np.minimum(np.searchsorted(cdfs[b], rng.random(len(sel))), len(per_block[b]) - 1)]
    names = [f"n{i}" for i in range(n)]
    graph = from_arrays(src, dst, names=names)
    return graph, {names[i]: f"b{block[i]}" for i in range(n)}


if __name__ == "__main__":
    write_bundled(sys.argv[1] if len(sys.argv) > 1 else DATA)
