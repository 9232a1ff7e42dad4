"""The Huffman tree of hierarchical softmax (Morin & Bengio 2005; Mikolov et al. 2013b).

Each word is a leaf; its probability is the product of binary decisions along the path from the
root, one per inner node. Frequent words get short paths, so the expected path length is about
the entropy of the unigram distribution. There are V - 1 inner nodes, numbered 0..V-2 (the root
is V - 2); inner node i owns row i of w_out.

The paths are padded to the longest one and returned as arrays, so the loss is a fixed-shape
gather inside jit:

    points[w, l]  inner node at depth l on the path of word w (root first)
    codes[w, l]   1 if the path turns right at that node, else 0 (word2vec's binary code)
    mask[w, l]    True for l < length of w's path
"""

from __future__ import annotations

import heapq
from typing import NamedTuple

import numpy as np

from sg_jax.errors import ConfigError


class HuffmanTree(NamedTuple):
    points: np.ndarray  # int32 [V, L]
    codes: np.ndarray   # int8  [V, L]
    mask: np.ndarray    # bool  [V, L]


def build_huffman(counts) -> HuffmanTree:
    """Huffman codes for words with these counts (ties broken by node id: deterministic)."""
    counts = np.asarray(counts, dtype=np.int64)
    V = counts.size
    if V < 2:
        raise ConfigError(f"hierarchical softmax needs a vocabulary of at least 2 words, got {V}")
    # node ids: leaves 0..V-1, inner nodes V..2V-2
    heap = [(int(c), i) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    parent = np.zeros(2 * V - 1, dtype=np.int64)
    right = np.zeros(2 * V - 1, dtype=np.int8)
    next_id = V
    while len(heap) > 1:
        c1, a = heapq.heappop(heap)
        c2, b = heapq.heappop(heap)
        parent[a], parent[b] = next_id, next_id
        right[b] = 1                      # the larger of the two takes code 1, as word2vec
        heapq.heappush(heap, (c1 + c2, next_id))
        next_id += 1
    root = 2 * V - 2
    paths, bits = [], []
    for w in range(V):
        nodes, code, n = [], [], w
        while n != root:
            code.append(right[n])
            n = parent[n]
            nodes.append(n - V)
        paths.append(nodes[::-1])
        bits.append(code[::-1])
    L = max(len(p) for p in paths)
    points = np.zeros((V, L), dtype=np.int32)
    codes = np.zeros((V, L), dtype=np.int8)
    mask = np.zeros((V, L), dtype=bool)
    for w, (p, c) in enumerate(zip(paths, bits)):
        points[w, : len(p)] = p
        codes[w, : len(c)] = c
        mask[w, : len(p)] = True
    return HuffmanTree(points, codes, mask)
