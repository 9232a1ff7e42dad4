"""Embeddings: query trained word vectors (nearest neighbours, analogies, odd-one-out).

All scoring is cosine similarity computed on the default JAX device as one matmul of the unit
vectors (computed once, at construction) against the query: `unit` is [V, N] float32 with each
row divided by its L2 norm, the norm clipped below at 1e-12 so that an all-zero vector has
cosine 0 with everything instead of NaN. Matmuls run at full float32 precision (no TF32/bf16
shortcuts) so rankings match a float32 CPU computation such as gensim's.

Query conventions follow the word2vec tools: a query is the normalised sum of the unit vectors
of the positive words minus those of the negative words, and the query words themselves are
never returned. `restrict_vocab=n` searches only the first n words (the n most frequent when the
vocabulary is frequency-ordered, as sg_jax's and word2vec's are).
"""

from __future__ import annotations

import functools
import os
from typing import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import sg_jax.formats as formats
from sg_jax.data.tokenizer import normalize_query
from sg_jax.errors import ConfigError, VocabError, quoted, quoted_list

METHODS = ("add", "mul")
MUL_EPS = 1e-3        # 3CosMul's epsilon (Levy & Goldberg 2014 use 0.001; gensim uses 1e-6)
_NORM_FLOOR = 1e-12
_SCORE_BUDGET = 1 << 25  # max elements of one [questions, candidates] score matrix (128 MiB)
_CANCEL = 1e-6  # a query shorter than this fraction of its terms' mean length has cancelled out

# The spellings a query is tried in when it is not in the vocabulary as typed, in order: what the
# reader makes of a token under each text option (vectors loaded from a file carry no options)
QUERY_FORMS = tuple(dict(lowercase=lower, normalize=norm, strip_diacritics=strip)
                    for strip in (False, True) for norm in (None, "NFC", "NFKC") for lower in (True, False)
                    if norm or strip or lower)


def _dot(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def _unit(x: jax.Array) -> jax.Array:
    """Rows of `x` [..., N] scaled to unit length (zero rows stay zero)."""
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), _NORM_FLOOR)


def _analogy_scores(cand: jax.Array, ua, ub, uc, method: str) -> jax.Array:
    """Scores [Q, n] of every candidate (rows of `cand` [n, N]) for questions a:b :: c:?.

    ua, ub, uc: [Q, N] unit vectors. add (3CosAdd): cos(x, b - a + c). mul (3CosMul): with
    cosines shifted to [0, 1] by (cos + 1) / 2, cos(x, b) * cos(x, c) / (cos(x, a) + MUL_EPS).
    """
    if method == "add":
        return _dot(_unit(ub - ua + uc), cand.T)
    sa, sb, sc = ((_dot(u, cand.T) + 1.0) / 2.0 for u in (ua, ub, uc))
    return sb * sc / (sa + MUL_EPS)


def _exclude(scores: jax.Array, *columns: jax.Array) -> jax.Array:
    """scores [Q, n] with column columns[j][q] of row q set to -inf (indices >= n ignored)."""
    rows = jnp.arange(scores.shape[0])
    for idx in columns:
        scores = scores.at[rows, idx].set(-jnp.inf, mode="drop")
    return scores


# Jitted kernels; `n` (the first n words are candidates), `k` and `method` are static.
_unit_rows = jax.jit(_unit)


@functools.partial(jax.jit, static_argnames=("n", "k"))
def _nearest_top_k(unit, q, exclude, n: int, k: int):
    """Top k of cos(x, q) over x in unit[:n] (q a unit vector [N]), the rows `exclude` left out
    (indices >= n ignored)."""
    scores = _dot(unit[:n], q)
    return jax.lax.top_k(scores.at[exclude].set(-jnp.inf, mode="drop"), k)


@functools.partial(jax.jit, static_argnames=("n", "k", "method"))
def _analogy_top_k(unit, a, b, c, n: int, k: int, method: str):
    """Top k answers (values [Q, k], indices [Q, k]) for questions a, b, c (indices [Q])."""
    scores = _analogy_scores(unit[:n], unit[a], unit[b], unit[c], method)
    return jax.lax.top_k(_exclude(scores, a, b, c), k)


@jax.jit
def _pair_cosine(unit, i, j):
    return _dot(unit[i], unit[j])


@jax.jit
def _odd_one_out(unit, idx):
    units = unit[idx]
    return jnp.argmin(_dot(units, _unit(units.mean(axis=0))))


def _is_positive_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 1


def _check_k(k) -> int:
    if not _is_positive_int(k):
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigError(f"unknown analogy method {method!r}; choose one of {', '.join(METHODS)}")
    return method


class Embeddings:
    """Word vectors with a query API; treat instances as immutable.

    words: V distinct non-empty strings; vectors: [V, N] (numpy or jax; stored as float32).
    """

    # A query that cancels out (most_similar("a", negative=["a"])) would score every word 0 and
    # answer with arbitrary words: it is refused. A query of zero vectors alone (a word whose row
    # is zero) scores every word 0 here, as its cosine is defined to be; KeyedVectors refuses that
    # too, as gensim users expect of a zero query.
    refuse_cancelled = False

    def __init__(self, words: Iterable[str], vectors) -> None:
        words = tuple(words)
        arr = np.array(vectors, dtype=np.float32)  # a private copy
        if arr.ndim != 2:
            raise ConfigError(f"vectors must be a [V, N] matrix, got shape {arr.shape}")
        if len(words) != arr.shape[0]:
            raise ConfigError(f"{len(words)} words but {arr.shape[0]} vectors")
        if not words or arr.shape[1] == 0:
            raise VocabError(f"no vectors to query (shape {arr.shape})")
        index: dict[str, int] = {}
        for i, w in enumerate(words):
            if not isinstance(w, str) or not w:
                raise VocabError(f"word {i} is {quoted(w)}; words must be non-empty strings")
            if index.setdefault(w, i) != i:
                raise VocabError(f"duplicate word {quoted(w)} (rows {index[w]} and {i})")
        finite = np.isfinite(arr).all(axis=1)
        if not finite.all():  # one NaN would rank first (or last) in every query
            i = int(np.argmin(finite))
            bad = arr[i][~np.isfinite(arr[i])][0]
            raise ConfigError(f"vectors row {i + 1} (word {quoted(words[i])}) holds {bad}; "
                              f"NaN and infinite values are refused")
        arr.flags.writeable = False
        self._words, self._vectors, self._index = words, arr, index
        self._unit = _unit_rows(jnp.asarray(arr))

    # ------------------------------------------------------------------ construction and files

    @classmethod
    def load(cls, path: str | os.PathLike, binary: bool | None = None, *, limit: int | None = None):
        """Read a word2vec text or binary file (see `sg_jax.formats.load_word2vec`)."""
        words, vectors = formats.load_word2vec(path, binary, limit=limit)
        return cls(words, vectors)

    def save(self, path: str | os.PathLike, binary: bool = False) -> None:
        """Write the raw (not normalised) vectors in word2vec text or binary format, atomically."""
        (formats.save_word2vec_binary if binary else formats.save_word2vec_text)(path, self._words, self._vectors)

    # ------------------------------------------------------------------ lookup

    @property
    def words(self) -> tuple[str, ...]:
        return self._words

    @property
    def vectors(self) -> np.ndarray:
        """The raw vectors [V, N] float32 (read-only)."""
        return self._vectors

    @property
    def unit_vectors(self) -> jax.Array:
        """The L2-normalised vectors [V, N] float32 on the default device."""
        return self._unit

    @functools.cached_property
    def norms(self) -> np.ndarray:
        """float32 [V], read-only: the L2 norm of each raw vector (computed once: the vectors are
        immutable, so `wv.norms[i]` in a loop does not recompute all V of them)."""
        norms = np.linalg.norm(self._vectors, axis=1).astype(np.float32)
        norms.flags.writeable = False
        return norms

    def get_normed_vectors(self) -> np.ndarray:
        """The unit vectors [V, N] float32 on the host (a copy; gensim's name)."""
        return self._unit_host.copy()

    @property
    def dim(self) -> int:
        return self._vectors.shape[1]

    def __len__(self) -> int:
        return len(self._words)

    def __contains__(self, word) -> bool:
        return self._lookup(word) is not None

    def __getitem__(self, word: str) -> np.ndarray:
        """`emb["king"]`: the raw vector of a word, as gensim's KeyedVectors."""
        return self.vector(word)

    def _lookup(self, word) -> int | None:
        """The row of `word` or, when only another spelling of it is known, of the first of the
        forms a corpus reader could have made of it (`QUERY_FORMS`): lowercased (training lowercases
        by default, so "King" finds "king"), normalised to NFC or NFKC (a word typed with its
        combining marks in another order), stripped of Arabic and Hebrew diacritics."""
        if not isinstance(word, str):
            return None
        i = self._index.get(word)
        if i is not None:
            return i
        for options in QUERY_FORMS:
            i = self._index.get(normalize_query(word, **options))
            if i is not None:
                return i
        return None

    def __repr__(self) -> str:
        return f"Embeddings({len(self)} words, dim {self.dim})"

    def indices(self, words: Iterable[str]) -> list[int]:
        """Row indices of `words`; VocabError naming every unknown word."""
        words = list(words)
        rows = [self._lookup(w) for w in words]
        missing = list(dict.fromkeys(w for w, i in zip(words, rows) if i is None))
        if missing:
            noun = "word" if len(missing) == 1 else "words"
            raise VocabError(f"unknown {noun}: {quoted_list(missing)}")
        return rows

    def index(self, word: str) -> int:
        return self.indices([word])[0]

    def vector(self, word: str) -> np.ndarray:
        """The raw vector [N] float32 of `word` (a copy)."""
        return self._vectors[self.index(word)].copy()

    # ------------------------------------------------------------------ queries

    def _n_candidates(self, restrict_vocab) -> int:
        if restrict_vocab is None:
            return len(self)
        if not _is_positive_int(restrict_vocab):
            raise ConfigError(f"restrict_vocab must be a positive integer, got {restrict_vocab!r}")
        return min(int(restrict_vocab), len(self))

    def _k_left(self, k: int, n: int, query: Sequence[int]) -> int:
        """k, capped by the number of candidates left once the query words are excluded."""
        return min(k, n - len({i for i in query if i < n}))

    @staticmethod
    def _bucket(k: int, n: int) -> int:
        """k rounded up to a power of two (at most n), so kernels compile for few distinct k."""
        return min(n, 1 << (k - 1).bit_length())

    def _pairs(self, values: jax.Array, idx: jax.Array) -> list[tuple[str, float]]:
        idx, values = np.asarray(idx).tolist(), np.asarray(values).tolist()
        return [(self._words[i], float(v)) for i, v in zip(idx, values)]

    def most_similar(
        self, positive: str | Sequence[str] = (), negative: str | Sequence[str] = (), k: int = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]]:
        """The k words with the highest cosine to unit(sum of positive units - sum of negative units).

        Returns [(word, cosine)] best first, never one of the query words.
        """
        positive = [positive] if isinstance(positive, str) else list(positive)
        negative = [negative] if isinstance(negative, str) else list(negative)
        k, n = _check_k(k), self._n_candidates(restrict_vocab)
        if not positive and not negative:
            raise ConfigError("most_similar needs at least one positive or negative word")
        idx = self.indices(positive + negative)
        weights = [1.0] * len(positive) + [-1.0] * len(negative)
        q = self._combined([self._unit_host[i] for i in idx], weights, idx, "most_similar")
        return self._nearest(q, idx, n, k)

    @functools.cached_property
    def _unit_host(self) -> np.ndarray:
        """The unit vectors [V, N] float32 on the host (queries are combined there)."""
        return np.asarray(self._unit)

    def _combined(self, vecs, weights, rows, what: str) -> np.ndarray:
        """The unit vector [N] float32 along the weighted mean of `vecs` (gensim's query: word
        terms are unit vectors). A mean that is (numerically) zero, as in most_similar("a",
        negative=["a"]), would score every word 0: refused where `refuse_cancelled`."""
        weights = np.asarray(weights, np.float32)
        vecs = np.stack([np.asarray(v, np.float32) for v in vecs])
        total = max(float(np.abs(weights).sum()), 1e-30)
        mean = (weights[:, None] * vecs).sum(axis=0) / total
        length = float(np.linalg.norm(mean))
        scale = float((np.abs(weights) * np.linalg.norm(vecs, axis=1)).sum()) / total
        if not length > _CANCEL * scale and (scale > 0 or self.refuse_cancelled):
            named = f" ({quoted_list(dict.fromkeys(self._words[i] for i in rows))})" if rows else ""
            raise ConfigError(f"{what}: the query{named} is the zero vector (its terms cancel out, or are zero), "
                              f"which no word is similar to")
        return (mean / max(length, _NORM_FLOOR)).astype(np.float32)

    def _nearest(self, q: np.ndarray, rows, n: int, k: int) -> list[tuple[str, float]]:
        """The k words of the first n nearest (cosine) to the unit vector q, `rows` left out."""
        rows = [int(i) for i in rows]
        k = self._k_left(k, n, rows)
        if k <= 0:
            return []
        # pad the excluded rows to a power-of-two length with index n (outside the candidates)
        size = 1 << max(len(rows) - 1, 0).bit_length()
        exclude = jnp.asarray(rows + [n] * (size - len(rows)), jnp.int32)
        values, top = _nearest_top_k(self._unit, jnp.asarray(q), exclude, n, self._bucket(k, n))
        return self._pairs(values[:k], top[:k])

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        return float(_pair_cosine(self._unit, *self.indices([a, b])))

    def doesnt_match(self, words: Sequence[str]) -> str:
        """The word whose vector has the lowest cosine to the mean of the words' unit vectors."""
        words = [words] if isinstance(words, str) else list(words)
        if len(words) < 2:
            raise ConfigError(f"doesnt_match needs at least two words, got {len(words)}")
        return words[int(_odd_one_out(self._unit, jnp.asarray(self.indices(words), jnp.int32)))]

    def analogy(
        self, a: str, b: str, c: str, k: int = 1, method: str = "add", restrict_vocab: int | None = None
    ) -> list[tuple[str, float]]:
        """a is to b as c is to ?: the k best answers [(word, score)], never a, b or c.

        method "add" scores are cosines with unit(b - a + c) (3CosAdd); "mul" scores are 3CosMul
        values (see `_analogy_scores`).
        """
        k, n, method = _check_k(k), self._n_candidates(restrict_vocab), _check_method(method)
        idx = self.indices([a, b, c])
        k = self._k_left(k, n, idx)
        if k <= 0:
            return []
        a_, b_, c_ = (jnp.asarray([i], jnp.int32) for i in idx)
        values, top = _analogy_top_k(self._unit, a_, b_, c_, n, self._bucket(k, n), method)
        return self._pairs(values[0, :k], top[0, :k])

    def analogy_batch(
        self, a_idx, b_idx, c_idx, method: str = "add", restrict_vocab: int | None = None,
        chunk_size: int = 1024,
    ) -> np.ndarray:
        """Top-1 answers for many questions: int32 [Q] indices, given a, b, c indices [Q] each.

        Runs on device in chunks of at most `chunk_size` questions (fewer when the vocabulary is
        large, to keep each [chunk, n] score matrix under 128 MiB); all chunks share one shape
        (the last is padded) so the scorer compiles once per call. A question whose a, b, c
        are all of the n candidates (n <= 3) has no answer left and gets one of them.
        """
        method, n = _check_method(method), self._n_candidates(restrict_vocab)
        a, b, c = (np.asarray(x, dtype=np.int64).reshape(-1) for x in (a_idx, b_idx, c_idx))
        if not a.shape == b.shape == c.shape:
            raise ConfigError(f"a, b, c index arrays differ in length: {a.size}, {b.size}, {c.size}")
        q = a.size
        if q == 0:
            return np.zeros(0, np.int32)
        for arr in (a, b, c):
            if arr.min() < 0 or arr.max() >= len(self):
                raise ConfigError(f"question word index out of range [0, {len(self)})")
        chunk = max(1, min(int(chunk_size), _SCORE_BUDGET // n, q))
        pad = -q % chunk
        a, b, c = (jnp.asarray(np.pad(x, (0, pad)).astype(np.int32)) for x in (a, b, c))
        out = []
        for s in range(0, q + pad, chunk):
            part = slice(s, s + chunk)
            out.append(_analogy_top_k(self._unit, a[part], b[part], c[part], n, 1, method)[1][:, 0])
        return np.asarray(jnp.concatenate(out)).astype(np.int32)[:q]
