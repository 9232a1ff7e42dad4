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

from typing import NamedTuple

import numpy as np

from sg_jax.errors import ConfigError


class HuffmanTree(NamedTuple):
    points: np.ndarray  # int32 [V, L]
    codes: np.ndarray   # int8  [V, L]
    mask: np.ndarray    # bool  [V, L]


def build_huffman(counts) -> HuffmanTree:
    """Huffman codes for words with these counts, built as the word2vec C tool builds them.

    word2vec's CreateBinaryTree walks two queues in O(V): the leaves in order of decreasing
    count (from the rarest up), and the inner nodes in the order they are made (their counts
    never decrease). Each merge takes the two smallest heads, preferring the inner node when a
    leaf's count ties with it, and the second one taken gets code 1. Words with equal counts are
    taken in vocabulary order among themselves (the later word first), so with a vocabulary
    sorted by decreasing count (sg_jax's default, and word2vec's) the tree is word2vec's.
    """
    counts = np.asarray(counts, dtype=np.int64)
    V = counts.size
    if V < 2:
        raise ConfigError(f"hierarchical softmax needs a vocabulary of at least 2 words, got {V}")
    # leaves by decreasing count, ties in vocabulary order: leaf queue position i -> word order[i]
    order = np.argsort(-counts, kind="stable")
    leaf_count = counts[order]
    inner_count = np.zeros(V - 1, dtype=np.int64)
    # node ids: leaves 0..V-1 (word ids), inner nodes V..2V-2 in the order they are made
    parent = np.zeros(2 * V - 1, dtype=np.int64)
    right = np.zeros(2 * V - 1, dtype=np.int8)
    pos1, pos2 = V - 1, 0   # next leaf (from the rarest) and next inner node to take
    for a in range(V - 1):
        taken = []
        for _ in range(2):
            if pos1 >= 0 and (pos2 >= a or leaf_count[pos1] < inner_count[pos2]):
                taken.append((int(order[pos1]), int(leaf_count[pos1])))
                pos1 -= 1
            else:
                taken.append((V + pos2, int(inner_count[pos2])))
                pos2 += 1
        (first, c1), (second, c2) = taken
        inner_count[a] = c1 + c2
        parent[first], parent[second] = V + a, V + a
        right[second] = 1
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
