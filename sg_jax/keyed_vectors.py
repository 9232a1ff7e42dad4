"""KeyedVectors: word vectors with gensim 4's `KeyedVectors` interface, over `Embeddings`.

Code written for gensim's `model.wv` runs on sg_jax's: `wv["king"]`, `wv[["a", "b"]]`,
`"king" in wv`, `get_vector(key, norm=)`, `key_to_index`, `index_to_key`, `vectors`,
`vector_size`, `get_vecattr(key, "count")`, `most_similar(positive=, negative=, topn=,
restrict_vocab=)` with words, vectors, (word or vector, weight) pairs and mixes of them,
`most_similar_cosmul`, `similar_by_word`, `similar_by_vector`, `similarity`, `n_similarity`,
`distance`, `distances`, `doesnt_match`, `rank`, `closer_than`, `most_similar_to_given`, `norms`,
`relative_cosine_similarity`, `cosine_similarities`, `get_normed_vectors`, `evaluate_word_pairs`,
`evaluate_word_analogies`, `save_word2vec_format`, `load_word2vec_format`; `to_gensim()` hands the
vectors to gensim itself. Arguments, defaults and return shapes are gensim's; scores are cosines of
the same float32 vectors, so they agree with gensim's to float32 rounding.

Where sg_jax differs, it is stricter (docs/gensim.md): an unknown word raises `VocabError`, which
is a KeyError; a query whose vectors cancel out (`most_similar("a", negative=["a"])`) is refused
instead of ranking every word at 0.0; a query that is neither a word nor a vector is a one-line
error; keys are words (str), never row numbers.

Lookups spell a query as the corpus was read: vectors that come with their run's text options
(`text=`, a Config) apply its Unicode normalisation, and lowercase only if the run lowercased;
vectors without them (read from a file) fall back to the lowercase form of an unknown word.
"""

from __future__ import annotations

import logging
import warnings
from numbers import Integral, Real
from types import MappingProxyType
import jax
import numpy as np

import sg_jax.formats as formats
import sg_jax.gensim_evaluation as gensim_evaluation
import sg_jax.gensim_extras as gensim_extras
from sg_jax.atomic import atomic_write_text
from sg_jax.data.text import query_normalizer
from sg_jax.embeddings import Embeddings
from sg_jax.errors import ConfigError, VocabError, quoted, quoted_list

logger = logging.getLogger("sg_jax")

COSMUL_EPS = 1e-6  # gensim's most_similar_cosmul epsilon (sg_jax's analogy method "mul" uses 1e-3)


def _is_vector(x) -> bool:
    return isinstance(x, (np.ndarray, jax.Array)) and x.ndim == 1


class KeyedVectors(Embeddings):
    """Word vectors with gensim's KeyedVectors interface (and sg_jax's `Embeddings` one).

    words: V distinct words; vectors: [V, N]; counts: the words' corpus counts (None: V - row,
    as gensim gives vectors read from a file); text: the run's text options (see the module doc).
    """

    refuse_cancelled = True

    def __init__(self, words, vectors, *, counts=None, text=None) -> None:
        super().__init__(words, vectors)
        if counts is not None:
            counts = np.array(counts, dtype=np.int64).reshape(-1)
            if counts.size != len(self):
                raise ConfigError(f"{len(self)} words but {counts.size} counts")
            counts.flags.writeable = False
        self._counts = counts
        self._text = text
        self._normal = query_normalizer(text) if text is not None else None

    @classmethod
    def from_embeddings(cls, emb: Embeddings) -> "KeyedVectors":
        return emb if isinstance(emb, KeyedVectors) else cls(emb.words, emb.vectors)

    # ------------------------------------------------------------------ lookup

    def _lookup(self, word) -> int | None:
        if not isinstance(word, str):
            return None
        i = self._index.get(word)
        if i is not None or self._normal is None:
            return i if i is not None else self._index.get(word.lower())
        spelled = self._normal(word)
        return self._index.get(spelled) if spelled is not None else None

    def _row(self, key) -> int:
        if not isinstance(key, str):
            raise VocabError(f"a key is a word (str), got {type(key).__name__} {quoted(key)}")
        i = self._lookup(key)
        if i is None:
            raise VocabError(f"unknown word: {quoted(key)}")
        return i

    def __getitem__(self, key_or_keys) -> np.ndarray:
        """The raw vector [N] float32 of a word, or [len(keys), N] (a new array) for a list of
        words. A word's vector is a read-only view into the vectors, as cheap as gensim's view
        (whose writes would change the model; here they raise): copy it to change it."""
        if isinstance(key_or_keys, str):
            i = self._index.get(key_or_keys)
            return self._vectors[i if i is not None else self._row(key_or_keys)]
        if isinstance(key_or_keys, (list, tuple, np.ndarray)):
            keys = list(key_or_keys)
            if not keys:
                return np.zeros((0, self.dim), np.float32)
            return self._vectors[self.indices(keys)]
        return self._vectors[self._row(key_or_keys)]

    def indices(self, words) -> list[int]:
        words = list(words)
        bad = next((w for w in words if not isinstance(w, str)), None)
        if bad is not None:
            raise VocabError(f"a key is a word (str), got {type(bad).__name__} {quoted(bad)}")
        return super().indices(words)

    def get_vector(self, key: str, norm: bool = False) -> np.ndarray:
        """The vector [N] float32 of `key` (a copy): raw, or scaled to unit length with norm=True."""
        i = self._row(key)
        return self._unit_host[i].copy() if norm else self._vectors[i].copy()

    def get_index(self, key: str, default=None) -> int:
        i = self._lookup(key)
        if i is not None:
            return i
        if default is not None:
            return default
        raise VocabError(f"unknown word: {quoted(key)}")

    def has_index_for(self, key) -> bool:
        return self._lookup(key) is not None

    @property
    def key_to_index(self):
        """word -> row (a read-only mapping)."""
        return MappingProxyType(self._index)

    @property
    def index_to_key(self) -> tuple[str, ...]:
        """The words, row by row (a tuple: the vectors are immutable)."""
        return self._words

    @property
    def vector_size(self) -> int:
        return self.dim

    @property
    def counts(self) -> np.ndarray:
        """int64 [V]: the words' corpus counts (V - row when the vectors came without counts)."""
        if self._counts is None:
            return np.arange(len(self), 0, -1, dtype=np.int64)
        return self._counts

    def get_vecattr(self, key: str, attr: str) -> int:
        if attr != "count":
            raise ConfigError(f"get_vecattr knows the attribute 'count', got {quoted(attr)}")
        return int(self.counts[self._row(key)])

    def __repr__(self) -> str:
        return f"KeyedVectors<vector_size={self.dim}, {len(self)} keys>"

    # ------------------------------------------------------------------ queries

    def _terms(self, value, sign: float, what: str) -> list[tuple[object, float]]:
        """gensim's query items: words, vectors [N] and (word or vector, weight) pairs -> a list of
        (row index or vector, weight). A pair's weight replaces the default sign, as in gensim."""
        if value is None:
            return []
        if isinstance(value, str) or _is_vector(value):
            value = [value]
        elif isinstance(value, (np.ndarray, jax.Array)) and value.ndim == 2:
            value = list(value)
        elif not isinstance(value, (list, tuple)):
            raise ConfigError(f"{what}: {quoted(value)} ({type(value).__name__}) is not a query; a query is a word (str), a "
                              f"vector of {self.dim} numbers, a (word or vector, weight) pair, or a list of them")
        terms, unknown = [], []
        for item in value:
            weight = sign
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Real) \
                    and (isinstance(item[0], str) or _is_vector(item[0])):
                item, weight = item
            if isinstance(item, str):
                i = self._lookup(item)
                if i is None:
                    unknown.append(item)
                terms.append((i, float(weight)))
            elif _is_vector(item):
                vec = np.asarray(item, np.float32)
                if vec.shape != (self.dim,) or not np.isfinite(vec).all():
                    raise ConfigError(f"{what}: a query vector must hold {self.dim} finite numbers, got shape "
                                      f"{vec.shape}")
                terms.append((vec, float(weight)))
            else:
                raise ConfigError(f"{what}: {quoted(item)} ({type(item).__name__}) is not a query; a query is a word (str), "
                                  f"a vector of {self.dim} numbers or a (word or vector, weight) pair")
        if unknown:
            unknown = list(dict.fromkeys(unknown))
            raise VocabError(f"unknown word{'s' if len(unknown) > 1 else ''}: {quoted_list(unknown)}")
        return terms

    def _query(self, positive, negative, what: str) -> tuple[np.ndarray, list[int]]:
        """(unit query vector [N], rows of the query's words): gensim's weighted mean of the words'
        unit vectors and the raw query vectors, refused when it cancels out."""
        terms = self._terms(positive, 1.0, f"{what} positive") + self._terms(negative, -1.0, f"{what} negative")
        if not terms:
            raise ConfigError(f"{what} needs at least one positive or negative word or vector")
        rows = [t for t, _ in terms if isinstance(t, int)]
        vecs = [self._unit_host[t] if isinstance(t, int) else t for t, _ in terms]
        return self._combined(vecs, [w for _, w in terms], rows, what), rows

    @staticmethod
    def _topn(topn, k) -> int | None:
        if k is not None:
            if topn != 10:
                raise ConfigError("give topn or its alias k, not both")
            topn = k
        if topn is None:
            return None
        if not isinstance(topn, Integral) or isinstance(topn, bool):
            raise ConfigError(f"topn must be a whole number or None, got {quoted(topn)}")
        return int(topn)

    def most_similar(self, positive=None, negative=None, topn=10, restrict_vocab=None, *, k=None):
        """The topn words most similar (cosine) to the weighted mean of the query's unit word
        vectors and raw vectors: [(word, cosine)] best first, never a query word. topn=None: the
        cosines of every candidate word (float32 [n]); topn < 1: []. k is an alias of topn."""
        topn = self._topn(topn, k)
        if topn is not None and topn < 1:
            return []
        n = self._n_candidates(restrict_vocab)
        q, rows = self._query(positive, negative, "most_similar")
        if topn is None:
            return np.asarray(self._unit_host[:n] @ q)
        return self._nearest(q, rows, n, topn)

    def similar_by_word(self, word: str, topn=10, restrict_vocab=None):
        return self.most_similar(positive=[word], topn=topn, restrict_vocab=restrict_vocab)

    def similar_by_vector(self, vector, topn=10, restrict_vocab=None):
        return self.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)

    def similar_by_key(self, key: str, topn=10, restrict_vocab=None):
        return self.similar_by_word(key, topn, restrict_vocab)

    def most_similar_cosmul(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """3CosMul (Levy & Goldberg 2014) as gensim computes it: the product of the positive
        terms' shifted cosines (1 + cos) / 2 over the product of the negative ones' + 1e-6. Word
        terms are unit vectors, vector terms are used as given; query words are never returned."""
        topn = self._topn(topn, None)
        if topn is not None and topn < 1:
            return []
        n = self._n_candidates(restrict_vocab)
        pos = self._terms(positive, 1.0, "most_similar_cosmul positive")
        neg = self._terms(negative, 1.0, "most_similar_cosmul negative")
        if not pos:
            raise ConfigError("most_similar_cosmul needs at least one positive word or vector")
        unit = self._unit_host[:n]

        def shifted(terms):
            return [(1.0 + unit @ (self._unit_host[t] if isinstance(t, int) else t)) / 2.0 for t, _ in terms]

        scores = np.prod(shifted(pos), axis=0) / (np.prod(shifted(neg), axis=0) + COSMUL_EPS) if neg \
            else np.prod(shifted(pos), axis=0) / (1.0 + COSMUL_EPS)
        scores = scores.astype(np.float32)
        if topn is None:
            return scores
        rows = {t for t, _ in pos + neg if isinstance(t, int)}
        order = np.argsort(-scores, kind="stable")[: topn + len(rows)]
        return [(self._words[i], float(scores[i])) for i in order.tolist() if i not in rows][:topn]

    def n_similarity(self, ws1, ws2) -> float:
        """Cosine of the means of two lists of words' raw vectors."""
        ws1, ws2 = list(ws1), list(ws2)
        if not ws1 or not ws2:
            raise ConfigError("n_similarity needs at least one word in each list")
        m1, m2 = (self._vectors[self.indices(ws)].mean(axis=0) for ws in (ws1, ws2))
        n1, n2 = np.linalg.norm(m1), np.linalg.norm(m2)
        if n1 == 0 or n2 == 0:
            return 0.0
        return float(np.dot(m1 / n1, m2 / n2))

    def distance(self, w1: str, w2: str) -> float:
        """1 - cosine similarity."""
        return 1.0 - self.similarity(w1, w2)

    def distances(self, word_or_vector, other_words=()) -> np.ndarray:
        """float32 [len(other_words)] (every word when empty): 1 - cosine with `word_or_vector`."""
        if isinstance(word_or_vector, str):
            u = self._unit_host[self._row(word_or_vector)]
        else:
            (u, _), = self._terms([word_or_vector], 1.0, "distances")
            u = u / max(float(np.linalg.norm(u)), 1e-12)
        others = self._unit_host if not len(other_words) else self._unit_host[self.indices(other_words)]
        return (1.0 - others @ u).astype(np.float32)

    def closer_than(self, key1: str, key2: str) -> list[str]:
        """The words closer to key1 than key2 is (key1 itself left out), in row order."""
        d = self.distances(key1)
        i, j = self._row(key1), self._row(key2)
        return [self._words[r] for r in np.flatnonzero(d < d[j]).tolist() if r != i]

    words_closer_than = closer_than   # gensim's older name
    cosine_similarities = staticmethod(gensim_extras.cosine_similarities)

    def most_similar_to_given(self, key1: str, keys_list) -> str:
        return gensim_extras.most_similar_to_given(self, key1, keys_list)

    def relative_cosine_similarity(self, wa: str, wb: str, topn: int = 10) -> float:
        return gensim_extras.relative_cosine_similarity(self, wa, wb, topn)

    def fill_norms(self, force: bool = False) -> None:
        """gensim's cache of `norms`: nothing to do, the immutable vectors' norms are computed on use."""

    def init_sims(self, replace: bool = False) -> None:
        """gensim 3's name for fill_norms (deprecated there too); replace=True cannot change the vectors."""
        warnings.warn("init_sims is deprecated: use get_normed_vectors()", DeprecationWarning, stacklevel=2)
        if replace:
            raise ConfigError("init_sims(replace=True): sg_jax's vectors are immutable; use get_normed_vectors()")

    def rank(self, key1: str, key2: str) -> int:
        """key2's rank among key1's neighbours (1: the nearest)."""
        return len(self.closer_than(key1, key2)) + 1

    def doesnt_match(self, words) -> str:
        """The word furthest (cosine) from the mean of the words' unit vectors; unknown words are
        left out with a warning, as gensim does."""
        words = [words] if isinstance(words, str) else list(words)
        used = [w for w in words if isinstance(w, str) and self._lookup(w) is not None]
        if len(used) != len(words):
            logger.warning("vectors for words %s are not present in the model, ignoring these words",
                           sorted(set(map(str, words)) - set(used)))
        if not used:
            raise ConfigError("doesnt_match: none of the words has a vector")
        units = self._unit_host[[self._lookup(w) for w in used]]
        mean = units.mean(axis=0)
        mean = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return sorted(zip((units @ mean).tolist(), used), reverse=True)[-1][1]

    # ------------------------------------------------------------------ evaluation (sg_jax.gensim_evaluation)

    def evaluate_word_pairs(self, pairs, delimiter="\t", encoding="utf8", restrict_vocab=300000,
                            case_insensitive=True, dummy4unknown=False):
        """Correlation of the cosines with human scores over a file of "word1<delimiter>word2
        <delimiter>score" lines ('#' lines are comments): ((pearson, p-value), (spearman,
        p-value), percentage of pairs with an unknown word), as gensim returns them."""
        return gensim_evaluation.evaluate_word_pairs(self, pairs, delimiter, encoding, restrict_vocab,
                                                     case_insensitive, dummy4unknown)

    def evaluate_word_analogies(self, analogies, restrict_vocab=300000, case_insensitive=True, dummy4unknown=False,
                                similarity_function="most_similar"):
        """Top-1 accuracy on analogy questions "a b c d" under ": section" lines, as gensim
        computes it: (accuracy, [{"section", "correct", "incorrect"}, ..., the total]), questions
        with a word outside the first restrict_vocab words skipped (or counted wrong with
        dummy4unknown). 3CosAdd ("most_similar") runs batched on the device; "most_similar_cosmul"
        asks most_similar_cosmul question by question."""
        return gensim_evaluation.evaluate_word_analogies(self, analogies, restrict_vocab, case_insensitive,
                                                         dummy4unknown, similarity_function)

    # ------------------------------------------------------------------ files and gensim

    def save_word2vec_format(self, fname, fvocab=None, binary=False, total_vec=None, write_header=True,
                             prefix="", append=False, sort_attr="count") -> None:
        """Write the vectors in word2vec text (or binary) format, most frequent words first, and
        with fvocab a "word count" line per word; each file atomically."""
        for name, value, default in (("total_vec", total_vec, None), ("write_header", write_header, True),
                                     ("prefix", prefix, ""), ("append", append, False), ("sort_attr", sort_attr, "count")):
            if value != default:
                raise ConfigError(f"save_word2vec_format: sg_jax writes whole word2vec files; {name}={quoted(value)} "
                                  f"is not supported")
        order = np.argsort(-self.counts, kind="stable")
        words = [self._words[i] for i in order.tolist()]
        if fvocab is not None:
            atomic_write_text(fvocab, "".join(f"{w} {int(self.counts[i])}\n" for w, i in zip(words, order.tolist())))
        (formats.save_word2vec_binary if binary else formats.save_word2vec_text)(fname, words, self._vectors[order])

    @classmethod
    def load_word2vec_format(cls, fname, fvocab=None, binary=False, encoding="utf8", unicode_errors="strict",
                             limit=None, datatype=np.float32, no_header=False) -> "KeyedVectors":
        """Read a word2vec text (binary=True: binary) file; counts from fvocab when given."""
        for name, ok in (("encoding", str(encoding).lower().replace("-", "") == "utf8"),
                         ("unicode_errors", unicode_errors == "strict"), ("no_header", no_header is False),
                         ("datatype", np.dtype(datatype) == np.float32)):
            if not ok:
                raise ConfigError(f"load_word2vec_format: sg_jax reads UTF-8 word2vec files with a header as float32; "
                                  f"{name} cannot be changed")
        words, vectors = formats.load_word2vec(fname, bool(binary), limit=limit)
        counts = None
        if fvocab is not None:
            known = formats.load_word_counts(fvocab)
            counts = [known.get(w, 0) for w in words]
        return cls(words, vectors, counts=counts)

    def to_gensim(self):
        """These vectors (and counts) as a gensim KeyedVectors (gensim must be installed)."""
        try:
            from gensim.models import KeyedVectors as GensimKeyedVectors  # optional dependency
        except ImportError:
            raise ConfigError("to_gensim needs gensim, which is not installed (pip install gensim)") from None
        kv = GensimKeyedVectors(self.dim, count=0, dtype=np.float32)
        kv.add_vectors(list(self._words), self._vectors.copy())
        kv.allocate_vecattrs(["count"], [np.int64])  # (add_vectors' extras= fails in gensim 4.4)
        kv.expandos["count"][:] = self.counts
        return kv
