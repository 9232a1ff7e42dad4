"""The rest of gensim 4's word-vector queries, for `KeyedVectors` and `Word2Vec`:
`cosine_similarities`, `most_similar_to_given`, `relative_cosine_similarity` and
`predict_output_word`. Each follows gensim's definition, argument names and return types; the
methods of `KeyedVectors` and `Word2Vec` call these functions.
"""

from __future__ import annotations

import logging

import numpy as np

from sg_jax.errors import ConfigError

logger = logging.getLogger("sg_jax")


def cosine_similarities(vector_1, vectors_all) -> np.ndarray:
    """The cosine of `vector_1` [N] with each row of `vectors_all` [M, N]: float [M] (gensim's
    static method; the cosine with a zero vector is NaN, as there)."""
    v = np.asarray(vector_1)
    rows = np.asarray(vectors_all)
    if rows.ndim != 2 or v.shape != rows.shape[1:]:
        raise ConfigError(f"cosine_similarities needs a vector [N] and vectors [M, N], got shapes {v.shape} and "
                          f"{rows.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        return rows @ v / (np.linalg.norm(rows, axis=1) * np.linalg.norm(v))


def most_similar_to_given(kv, key1: str, keys_list) -> str:
    """The key of `keys_list` whose vector is closest (cosine) to key1's; the first on a tie."""
    keys = list(keys_list)
    if not keys:
        raise ConfigError("most_similar_to_given needs at least one key to choose from")
    return keys[int(np.argmin(kv.distances(key1, keys)))]


def relative_cosine_similarity(kv, wa: str, wb: str, topn: int = 10) -> float:
    """cos(wa, wb) over the sum of the cosines of wa's topn nearest words (Leeuwenberg et al.
    2016, "A minimally supervised approach for synonym extraction with word embeddings")."""
    nearest = kv.most_similar(wa, topn=topn)
    if not nearest:
        raise ConfigError(f"relative_cosine_similarity needs topn >= 1 and another word, got topn={topn!r}")
    return float(kv.similarity(wa, wb)) / sum(score for _, score in nearest)


def predict_output_word(kv, output_vectors: np.ndarray, context_words_list, topn: int = 10, mean: bool = True):
    """gensim's `Word2Vec.predict_output_word`: the topn words of a softmax over the vocabulary of
    the output vectors' scores against the context words' input vectors (their mean, or their sum
    with mean=False: gensim's cbow_mean), as [(word, probability)] most probable first; None (and a
    warning) when no context word is known."""
    rows = [kv.get_index(w) for w in context_words_list if isinstance(w, str) and kv.has_index_for(w)]
    if not rows:
        logger.warning("predict_output_word: none of the context words %r is in the vocabulary", context_words_list)
        return None
    h = np.sum(np.asarray(kv.vectors)[rows].astype(np.float64), axis=0)   # the context rows only, in float64
    if mean:
        h /= len(rows)
    scores = np.asarray(output_vectors, np.float64) @ h
    prob = np.exp(scores - scores.max())
    prob /= prob.sum()
    top = np.argsort(-prob, kind="stable")[:max(int(topn), 0)]
    return [(kv.index_to_key[i], float(prob[i])) for i in top.tolist()]
