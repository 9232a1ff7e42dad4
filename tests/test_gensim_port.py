"""A gensim script ported to sg_jax unchanged: the same steps run against gensim's Word2Vec and
sg_jax.Word2Vec on a tiny corpus give the same types, shapes and behaviours; numbers defined by
the vectors alone (similarities, evaluation scores of the same vectors) equal gensim's to 1e-6."""

from __future__ import annotations

import logging
import numbers

import jax
import numpy as np
import pytest

import sg_jax
from sg_jax.errors import ConfigError, CorpusError, SgJaxError, VocabError

gensim_models = pytest.importorskip("gensim.models")
pytest.importorskip("scipy")

TOPICS = [["king", "queen", "prince", "crown", "throne", "royal"], ["dog", "cat", "puppy", "kitten", "pet", "fur"],
          ["car", "road", "wheel", "engine", "drive", "fuel"], ["rain", "cloud", "storm", "wind", "sun", "sky"]]
FILLER = ["the", "a", "of", "and", "is"]


def make_corpus(n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(n):
        topic = TOPICS[rng.integers(len(TOPICS))]
        words = list(rng.choice(topic, 5)) + list(rng.choice(FILLER, 2))
        sentences.append([str(w) for w in rng.permutation(words)])
    return sentences


CORPUS = make_corpus(120, 0)
NEW = [["zebra", "lion", "king", "cat"], ["lion", "zebra", "dog", "fur"]] * 10  # two new words
SETTINGS = dict(vector_size=16, window=3, min_count=1, sg=1, epochs=2, seed=1, workers=1, sample=0.0)
PAIRS = "# word1\tword2\tscore\nking\tqueen\t9.0\ndog\tcat\t8.5\ncar\tengine\t7.0\nking\tcar\t1.0\n" \
        "rain\tstorm\t8.0\ncat\tsky\t0.5\npuppy\tkitten\t8.8\nroad\tthrone\t0.7\nKING\tcrown\t8.0\n" \
        "unicorn\tking\t5.0\nfuel\tdrive\t6.0\n"
ANALOGIES = ": royal\nking queen prince crown\nqueen king crown throne\nking prince queen unicorn\n" \
            ": animals\ndog cat puppy kitten\ncat dog kitten puppy\n: mixed\nking dog queen cat\ncar road engine fuel\n"


class Recorder:
    """gensim's callback protocol (CallbackAny2Vec's methods), recording what it sees."""

    def __init__(self):
        self.events = []

    def on_train_begin(self, model):
        self.events.append("train_begin")

    def on_epoch_begin(self, model):
        self.events.append("epoch_begin")

    def on_epoch_end(self, model):
        self.events.append("epoch_end")
        self.loss = model.get_latest_training_loss()
        self.vector_shape = model.wv["king"].shape

    def on_train_end(self, model):
        self.events.append("train_end")


def port(Word2Vec, tmp_path):
    """The gensim tutorial's steps, written once for either library; returns what they gave."""
    out = {}
    recorder = Recorder()
    model = Word2Vec(compute_loss=True, **SETTINGS)
    model.build_vocab(CORPUS)
    out["corpus_count"] = model.corpus_count
    model.train(CORPUS, total_examples=model.corpus_count, epochs=model.epochs, compute_loss=True,
                callbacks=[recorder])
    out["events"], out["loss"], out["callback_shape"] = list(recorder.events), recorder.loss, recorder.vector_shape
    out["str"] = str(model).split("<")[0] + "<" + str(model).split("<")[1].split(",")[0]
    wv = model.wv
    out["n_words"] = len(wv.index_to_key)
    out["counts"] = {w: wv.get_vecattr(w, "count") for w in wv.index_to_key}
    out["index_consistent"] = all(wv.key_to_index[w] == i for i, w in enumerate(wv.index_to_key))
    out["vector"] = (type(wv["king"]), wv["king"].dtype, wv["king"].shape, wv.vector_size, wv.vectors.shape)
    out["vectors"] = wv[["king", "dog", "car"]].shape
    out["norm"] = round(float(np.linalg.norm(wv.get_vector("king", norm=True))), 5)
    out["contains"] = ("king" in wv, "KING" in wv, "unicorn" in wv)
    with pytest.raises(KeyError):
        wv["unicorn"]
    top = wv.most_similar("king", topn=4)
    out["most_similar"] = (type(top), len(top), all(isinstance(w, str) and isinstance(s, float) for w, s in top),
                           "king" not in [w for w, _ in top])
    out["mixed"] = len(wv.most_similar(positive=["king", wv["queen"]], negative=["dog"], topn=3))
    out["by_vector"] = wv.similar_by_vector(wv["dog"], topn=1)[0][0]  # the word itself
    out["by_word"] = len(wv.similar_by_word("dog", topn=2))
    out["cosmul"] = len(wv.most_similar_cosmul(positive=["king", "cat"], negative=["dog"], topn=3))
    out["all_scores"] = wv.most_similar("king", topn=None).shape
    out["doesnt_match"] = wv.doesnt_match(["king", "queen", "prince", "fuel"]) in {"king", "queen", "prince", "fuel"}
    out["rank"] = isinstance(wv.rank("king", "queen"), int)
    out["closer_than"] = type(wv.closer_than("king", "queen"))
    out["distances"] = wv.distances("king", ["queen", "car"]).shape
    for name in ("similarity", "n_similarity", "distance"):
        value = getattr(wv, name)(*((["king"], ["queen", "crown"]) if name == "n_similarity" else ("king", "queen")))
        out[name] = isinstance(value, numbers.Real)
    (tmp_path / "pairs.tsv").write_text(PAIRS)
    (tmp_path / "analogies.txt").write_text(ANALOGIES)
    pearson, spearman, oov = wv.evaluate_word_pairs(str(tmp_path / "pairs.tsv"))
    out["pairs"] = (len(pearson), len(spearman), round(oov, 9))
    score, sections = wv.evaluate_word_analogies(str(tmp_path / "analogies.txt"))
    out["analogies"] = ([s["section"] for s in sections], sorted(sections[0]))

    before = wv.vectors.copy()
    model.build_vocab(NEW, update=True)
    out["grown"] = (len(model.wv.index_to_key), np.array_equal(model.wv.vectors[: len(before)], before),
                    model.wv.get_vecattr("king", "count"))
    model.train(NEW, total_examples=len(NEW), epochs=1)
    out["new_word_similar"] = len(model.wv.most_similar("zebra", topn=2))

    model.save(str(tmp_path / "model"))
    loaded = Word2Vec.load(str(tmp_path / "model"))
    out["loaded_equal"] = np.array_equal(loaded.wv.vectors, model.wv.vectors)
    loaded.train(CORPUS, total_examples=len(CORPUS), epochs=1)
    out["loaded_trains"] = not np.array_equal(loaded.wv.vectors, model.wv.vectors)
    model.wv.save_word2vec_format(str(tmp_path / "vectors.txt"), fvocab=str(tmp_path / "vocab.txt"))
    model.wv.save_word2vec_format(str(tmp_path / "vectors.bin"), binary=True)
    out["model"], out["folder"] = model, tmp_path
    return out


@pytest.fixture(scope="module")
def ported(tmp_path_factory):
    return (port(gensim_models.Word2Vec, tmp_path_factory.mktemp("gensim")),
            port(sg_jax.Word2Vec, tmp_path_factory.mktemp("sg_jax")))


def test_the_script_behaves_as_under_gensim(ported):
    theirs, ours = ported
    for key in theirs:
        if key not in ("loss", "model", "folder", "vector"):
            assert ours[key] == theirs[key], key
    assert ours["vector"][1:] == theirs["vector"][1:] and ours["vector"][0] is np.ndarray
    assert isinstance(ours["loss"], float) and ours["loss"] > 0 and theirs["loss"] > 0


def test_word2vec_files_cross_between_the_libraries(ported):
    for written in ported:  # each library's files, read by both
        folder, wv = written["folder"], written["model"].wv
        for name, binary in (("vectors.txt", False), ("vectors.bin", True)):
            fvocab = str(folder / "vocab.txt") if not binary else None
            mine = sg_jax.KeyedVectors.load_word2vec_format(str(folder / name), fvocab=fvocab, binary=binary)
            gensims = gensim_models.KeyedVectors.load_word2vec_format(str(folder / name), fvocab=fvocab, binary=binary)
            assert list(mine.index_to_key) == list(gensims.index_to_key)
            np.testing.assert_array_equal(mine.vectors, gensims.vectors)
            assert [mine.get_vecattr(w, "count") for w in mine.index_to_key] == \
                [gensims.get_vecattr(w, "count") for w in gensims.index_to_key]
            np.testing.assert_array_equal(mine[list(mine.index_to_key)], wv[list(mine.index_to_key)])


def same_pairs(ours, theirs):
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-6)


def test_numbers_of_the_same_vectors_equal_gensims(ported, tmp_path):
    wv = ported[1]["model"].wv
    kv = wv.to_gensim()
    assert isinstance(kv, gensim_models.KeyedVectors)
    assert list(kv.index_to_key) == list(wv.index_to_key)
    assert [kv.get_vecattr(w, "count") for w in kv.index_to_key] == [wv.get_vecattr(w, "count") for w in wv.index_to_key]
    v = wv["queen"] - wv["dog"]
    for pos, neg, topn, restrict in [("king", None, 5, None), (["king", "cat"], ["dog"], 6, None),
                                     ([v, "prince"], ["fuel"], 4, None), ([("king", 0.5), "cloud"], [("sun", 2.0)], 5, None),
                                     (["road"], None, 3, 12)]:
        same_pairs(wv.most_similar(pos, neg, topn=topn, restrict_vocab=restrict),
                   kv.most_similar(pos, neg, topn=topn, restrict_vocab=restrict))
    same_pairs(wv.most_similar_cosmul(["king", "cat"], ["dog"], topn=5), kv.most_similar_cosmul(["king", "cat"], ["dog"], topn=5))
    same_pairs(wv.similar_by_vector(v, topn=5), kv.similar_by_vector(v, topn=5))
    np.testing.assert_allclose(wv.most_similar("king", topn=None), kv.most_similar("king", topn=None), atol=1e-6)
    for name, args in [("similarity", ("king", "queen")), ("distance", ("car", "fuel")),
                       ("n_similarity", (["king", "queen"], ["dog", "cat", "fur"]))]:
        assert getattr(wv, name)(*args) == pytest.approx(float(getattr(kv, name)(*args)), abs=1e-6), name
    np.testing.assert_allclose(wv.distances("king"), kv.distances("king"), atol=1e-6)
    np.testing.assert_allclose(wv.distances(v, ["cat", "sun"]), kv.distances(v, ["cat", "sun"]), atol=1e-6)
    assert wv.rank("king", "fuel") == kv.rank("king", "fuel")
    assert wv.closer_than("dog", "road") == kv.closer_than("dog", "road")
    assert wv.doesnt_match(["king", "queen", "prince", "fuel"]) == kv.doesnt_match(["king", "queen", "prince", "fuel"])
    np.testing.assert_allclose(wv.get_vector("dog", norm=True), kv.get_vector("dog", norm=True), atol=1e-6)


def test_evaluation_scores_of_the_same_vectors_equal_gensims(ported, tmp_path):
    """The evaluators on one set of vectors written by sg_jax and read by gensim. (Vectors spread
    over all directions: a few epochs on the tiny corpus leave every cosine near 0.95, where
    float32 rounding alone moves a correlation by 1e-6.)"""
    trained = ported[1]["model"].wv
    rng = np.random.default_rng(3)
    wv = sg_jax.KeyedVectors(trained.index_to_key, rng.standard_normal(trained.vectors.shape), counts=trained.counts)
    wv.save_word2vec_format(str(tmp_path / "v.txt"), fvocab=str(tmp_path / "vocab.txt"))
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(tmp_path / "v.txt"), fvocab=str(tmp_path / "vocab.txt"))
    wv = sg_jax.KeyedVectors.load_word2vec_format(str(tmp_path / "v.txt"), fvocab=str(tmp_path / "vocab.txt"))
    assert list(kv.index_to_key) == list(wv.index_to_key)
    (tmp_path / "pairs.tsv").write_text(PAIRS)
    (tmp_path / "analogies.txt").write_text(ANALOGIES)
    for kwargs in [{}, {"case_insensitive": False}, {"dummy4unknown": True}, {"restrict_vocab": 15}]:
        ours, theirs = wv.evaluate_word_pairs(tmp_path / "pairs.tsv", **kwargs), \
            kv.evaluate_word_pairs(tmp_path / "pairs.tsv", **kwargs)
        np.testing.assert_allclose([*ours[0], *ours[1], ours[2]], [*theirs[0], *theirs[1], theirs[2]], atol=1e-6)
    for kwargs in [{}, {"case_insensitive": False}, {"dummy4unknown": True}, {"restrict_vocab": 20}]:
        score, sections = wv.evaluate_word_analogies(str(tmp_path / "analogies.txt"), **kwargs)
        their_score, their_sections = kv.evaluate_word_analogies(str(tmp_path / "analogies.txt"), **kwargs)
        assert score == pytest.approx(their_score, abs=1e-6)
        assert sections == their_sections
    # 3CosMul (gensim's evaluator always asks most_similar): each answer is most_similar_cosmul's best
    score, sections = wv.evaluate_word_analogies(str(tmp_path / "analogies.txt"),
                                                 similarity_function="most_similar_cosmul")
    answered = sections[-1]["correct"] + sections[-1]["incorrect"]
    hits = [kv.most_similar_cosmul([b.lower(), c.lower()], [a.lower()], topn=1)[0][0].upper() == d
            for a, b, c, d in answered]
    assert len(answered) == 6 and score == pytest.approx(sum(hits) / len(hits))


def test_first_training_is_train_models_run_bit_for_bit():
    model = sg_jax.Word2Vec(CORPUS, **SETTINGS)
    fields = {k: v for k, v in model.config.to_dict().items() if k not in ("devices", "sync_every")}
    native = sg_jax.train_model(CORPUS, **fields)
    np.testing.assert_array_equal(model.wv.vectors, native.wv.vectors)
    assert model.native.config == native.config
    assert model.config.arch == "sg" and model.config.dim == 16 and model.config.lowercase is False


def test_growing_the_vocabulary_keeps_rows_and_optimizer_state():
    model = sg_jax.Word2Vec(CORPUS, optimizer="adagrad", alpha=0.1, **SETTINGS)
    state = model.native.progress.state
    old = len(model.wv)
    model.build_vocab(NEW, update=True)
    grown = model.native.progress.state
    assert len(model.wv) == old + 2 and model.wv.index_to_key[-2:] == ("zebra", "lion")
    for before, after in zip(jax_leaves(state), jax_leaves(grown)):
        if np.ndim(before) and np.shape(before)[0] in (old,):
            np.testing.assert_array_equal(np.asarray(after)[:old], np.asarray(before))
    new_rows = model.wv.vectors[old:]
    assert np.all(np.abs(new_rows) <= 1.0 / 16) and np.any(new_rows != 0)   # as gensim 4's update_weights
    np.testing.assert_array_equal(np.asarray(grown.params.w_out)[old:], 0.0)
    assert model.wv.get_vecattr("king", "count") == sum(s.count("king") for s in CORPUS + NEW)


def jax_leaves(tree):
    import jax

    return jax.tree.leaves(tree)


def test_tokens_are_kept_as_given_and_queries_spelled_as_the_corpus():
    sentences = [["Paris", "café", "KING"], ["Paris", "café", "queen"]] * 10
    model = sg_jax.Word2Vec(sentences, vector_size=8, min_count=1, epochs=1, sample=0.0)
    assert "Paris" in model.wv and "paris" not in model.wv and "king" not in model.wv
    assert "cafe\u0301" in model.wv  # the corpus was read in NFC, so is the query
    native = sg_jax.train_model(sentences, dim=8, min_count=1, epochs=1, sample=0.0)  # lowercases by default
    assert "PARIS" in native.wv and "Paris" in native.wv
    assert sg_jax.Word2Vec(sentences, vector_size=8, min_count=1, epochs=1, sample=0.0, lowercase=True).wv.index_to_key[0] == "paris"


def test_wv_is_built_once_and_model_reprs_are_short():
    model = sg_jax.train_model(CORPUS, dim=8, epochs=1, min_count=1)
    assert model.wv is model.wv
    assert len(repr(model)) < 120 and repr(model).startswith("Model<vocab=")
    w2v = sg_jax.Word2Vec(CORPUS, vector_size=8, min_count=1, epochs=1)
    assert w2v.wv is w2v.wv
    assert str(w2v) == f"Word2Vec<vocab={len(w2v.wv)}, vector_size=8, alpha=0.025>"


def test_the_other_queries_equal_gensims(ported, tmp_path):
    """norms, get_normed_vectors, cosine_similarities, most_similar_to_given,
    relative_cosine_similarity and words_closer_than on one set of vectors, against gensim's."""
    trained = ported[1]["model"].wv
    rng = np.random.default_rng(5)
    wv = sg_jax.KeyedVectors(trained.index_to_key, rng.standard_normal(trained.vectors.shape), counts=trained.counts)
    kv = wv.to_gensim()
    np.testing.assert_allclose(wv.norms, np.linalg.norm(kv.vectors, axis=1), rtol=1e-6)
    np.testing.assert_allclose(wv.get_normed_vectors(), kv.get_normed_vectors(), atol=1e-6)
    assert wv.fill_norms() is None
    with pytest.warns(DeprecationWarning, match="get_normed_vectors"):
        wv.init_sims()
    with pytest.raises(ConfigError, match="immutable"), pytest.warns(DeprecationWarning):
        wv.init_sims(replace=True)
    np.testing.assert_allclose(wv.cosine_similarities(wv["king"], wv[["queen", "dog", "car"]]),
                               kv.cosine_similarities(kv["king"], kv[["queen", "dog", "car"]]), atol=1e-6)
    for key, keys in [("king", ["queen", "dog", "car"]), ("dog", ["cat", "king", "fuel", "road"])]:
        assert wv.most_similar_to_given(key, keys) == kv.most_similar_to_given(key, keys)
    for a, b, n in [("king", "queen", 10), ("dog", "cat", 3)]:
        assert wv.relative_cosine_similarity(a, b, n) == pytest.approx(kv.relative_cosine_similarity(a, b, n), rel=1e-5)
    assert sorted(wv.words_closer_than("king", "dog")) == sorted(kv.closer_than("king", "dog"))


def test_predict_output_word_is_gensims_softmax(ported):
    """The same input and output vectors in gensim's Word2Vec give the same words and
    probabilities; an hs model has syn1 but no syn1neg, and cannot predict."""
    model = ported[1]["model"]
    assert model.syn1neg.shape == model.wv.vectors.shape and not hasattr(model, "syn1")
    theirs = gensim_models.Word2Vec(vector_size=model.vector_size, min_count=1, negative=5)
    theirs.wv, theirs.syn1neg = model.wv.to_gensim(), np.array(model.syn1neg)
    for context in (["king", "queen"], ["dog", "unicorn", "cat", "fur"]):
        ours, expected = model.predict_output_word(context, topn=4), theirs.predict_output_word(context, topn=4)
        assert [w for w, _ in ours] == [w for w, _ in expected]
        np.testing.assert_allclose([p for _, p in ours], [p for _, p in expected], rtol=1e-4)
    assert model.predict_output_word(["unicorn"]) is None
    hs = sg_jax.Word2Vec(CORPUS, vector_size=8, min_count=1, epochs=1, hs=1, negative=0, sample=0.0)
    assert hs.syn1.shape == (len(hs.wv) - 1, 8) and not hasattr(hs, "syn1neg")
    with pytest.raises(ConfigError, match="hierarchical softmax"):
        hs.predict_output_word(["king"])


def test_query_errors_are_one_line():
    model = sg_jax.Word2Vec(CORPUS, vector_size=8, min_count=1, epochs=1)
    wv = model.wv
    with pytest.raises(ConfigError, match="is the zero vector") as e:
        wv.most_similar("king", negative=["king"])
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"123 \(int\) is not a query"):
        wv.most_similar(123)
    with pytest.raises(ConfigError, match="8 finite numbers"):
        wv.most_similar(np.ones(3))
    with pytest.raises(KeyError, match="unknown word: 'unicorn'"):
        wv.similarity("king", "unicorn")
    with pytest.raises(VocabError):
        wv.get_vector("unicorn")
    assert wv.most_similar("king", topn=0) == [] and len(wv.most_similar("king", k=2)) == 2


def test_word_pairs_too_few_to_correlate_are_one_line_errors(tmp_path):
    """A correlation needs two scored pairs: with one (gensim passes it to scipy, which raises) or
    none, evaluate_word_pairs says how many it could score and why."""
    wv = sg_jax.Word2Vec(CORPUS, vector_size=8, min_count=1, epochs=1).wv
    one = tmp_path / "one.tsv"
    one.write_text("king\tqueen\t9.0\nking\tunicorn\t2.0\nunicorn\tzebra\t1.0\n")
    with pytest.raises(ConfigError, match=r"only one pair of .* could be scored \(2 have an unknown word\)") as e:
        wv.evaluate_word_pairs(one)
    assert "\n" not in str(e.value)
    none = tmp_path / "none.tsv"
    none.write_text("unicorn\tzebra\t1.0\n")
    with pytest.raises(ConfigError, match="no pair of"):
        wv.evaluate_word_pairs(none)
    one.write_text("king\tqueen\t9.0\ndog\tcat\t8.0\n")   # two pairs: scored
    assert wv.evaluate_word_pairs(one)[2] == 0.0


@pytest.mark.parametrize("kwargs,message", [
    (dict(max_vocab_size=100), "max_final_vocab"),
    (dict(hs=1), "hs=1 with negative=5"),
    (dict(hs=0, negative=0), "no objective"),
    (dict(cbow_mean=0), "averages"),
    (dict(trim_rule=lambda w, c, m: 1), "trim_rule"),
    (dict(null_word=1), "null_word"),
    (dict(sorted_vocab=0), "sorted"),
    (dict(dim=16), "vector_size= instead of dim="),
    (dict(vector_size=0), "^vector_size must be >= 1"),
    (dict(alpha=0.01, min_alpha=0.1), "min_alpha"),
    (dict(windw=3), "unknown option"),
])
def test_refused_arguments_name_the_sg_jax_way(kwargs, message):
    with pytest.raises(ConfigError, match=message) as e:
        sg_jax.Word2Vec(**kwargs)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("call,message", [
    (lambda: sg_jax.Word2Vec("the king rules", min_count=1), "is a string"),
    (lambda: sg_jax.Word2Vec((s for s in CORPUS), min_count=1), "generator"),
    (lambda: sg_jax.Word2Vec(123), "iterable of token lists"),
    (lambda: sg_jax.train_model(123), "got int 123"),
    (lambda: sg_jax.train_model("the king rules"), "is not a file"),
    (lambda: sg_jax.train_model([["a", "b"], 5]), "sentence 2"),
    (lambda: sg_jax.train_model(iter([["a", "b"], 5]), epochs=1, min_count=1), "sentence 2"),
    (lambda: sg_jax.train_model(iter([["a", "b"], ["c"]])), "one-shot iterator"),
])
def test_bad_corpora_are_one_line_errors(call, message):
    with pytest.raises(CorpusError, match=message) as e:
        call()
    assert "\n" not in str(e.value) and isinstance(e.value, SgJaxError)


def test_train_needs_vocabulary_epochs_and_a_count():
    model = sg_jax.Word2Vec(vector_size=8, min_count=1)
    with pytest.raises(ConfigError, match="build_vocab"):
        model.train(CORPUS, total_examples=len(CORPUS), epochs=1)
    model.build_vocab(CORPUS)
    with pytest.raises(ConfigError, match="epochs"):
        model.train(CORPUS, total_examples=len(CORPUS))
    with pytest.raises(ConfigError, match="total_examples"):
        model.train(CORPUS, epochs=1)


def test_progress_is_logged_only_when_logging_is_configured(caplog, capsys):
    with caplog.at_level(logging.INFO, logger="sg_jax"):
        model = sg_jax.Word2Vec(CORPUS, vector_size=8, min_count=1, epochs=2)
    messages = [r.getMessage() for r in caplog.records if r.name == "sg_jax"]
    assert any(m.startswith("EPOCH 0:") for m in messages) and any(m.startswith("EPOCH 1:") for m in messages)
    assert any(m.startswith("collected ") for m in messages)
    caplog.clear()
    model.train(CORPUS, total_examples=len(CORPUS), epochs=1)
    assert capsys.readouterr().err == ""
    assert model.get_latest_training_loss() > 0


def test_a_command_line_run_loads_as_a_word2vec(tmp_path):
    from sg_jax import cli

    out = tmp_path / "run"
    assert cli.main(["train", "--corpus", "toy:groups", "--out", str(out), "--dim", "8", "--epochs", "1",
                     "--sample", "0", "--min-count", "1", "--quiet"]) == 0
    model = sg_jax.Word2Vec.load(str(out))
    words = sg_jax.KeyedVectors.load_word2vec_format(str(out / "vectors.txt")).index_to_key
    assert model.wv.index_to_key == words and model.vector_size == 8 and model.sg == 1
    before = model.wv.vectors.copy()
    model.train(corpus_file="toy:groups", total_examples=1, epochs=1)
    assert model.native.epochs_trained == 2 and not np.array_equal(before, model.wv.vectors)


def test_a_zero_query_is_refused():
    vectors = np.array([[0, 0], [1, 0], [0, 2]], np.float32)
    wv = sg_jax.KeyedVectors(["zero", "a", "b"], vectors)
    for query in (dict(positive="zero"), dict(positive=["a"], negative=["a"]), dict(positive=[np.zeros(2)])):
        with pytest.raises(ConfigError, match="is the zero vector"):
            wv.most_similar(**query)
    assert [w for w, _ in wv.most_similar(["a"], negative=["b"])] == ["zero"]  # not the query words
    from sg_jax.embeddings import Embeddings  # the command line's queries: a cancelled query refused too,

    emb = Embeddings(["zero", "a", "b"], vectors)  # a zero row still scores 0 against every word
    with pytest.raises(ConfigError, match="is the zero vector"):
        emb.most_similar(["a"], negative=["a"], k=1)
    assert [s for _, s in emb.most_similar("zero", k=2)] == [0.0, 0.0]


def test_the_default_initial_vectors_are_drawn_as_gensims():
    """W starts as gensim 4 starts it (uniform in [-1/N, 1/N), twice the word2vec C tool's width) and
    W' at zero: held against the tables of a gensim Word2Vec whose vocabulary was built and not trained."""
    from scipy.stats import ks_2samp

    from sg_jax.model import init_params

    words = [f"w{i}" for i in range(600)]
    peer = gensim_models.Word2Vec(vector_size=16, min_count=1, seed=0)
    peer.build_vocab([words])
    theirs = np.asarray(peer.wv.vectors).ravel()
    params = init_params(jax.random.PRNGKey(0), len(words), 16)
    ours = np.asarray(params.w_in).ravel()
    assert np.all(np.abs(ours) <= 1 / 16) and np.abs(ours).max() > 0.99 / 16
    assert ks_2samp(ours, theirs).pvalue > 1e-3
    narrow = np.asarray(init_params(jax.random.PRNGKey(0), len(words), 16, init="word2vec").w_in).ravel()
    assert ks_2samp(narrow, theirs).pvalue < 1e-9     # the test tells the two widths apart
    np.testing.assert_array_equal(np.asarray(params.w_out), np.asarray(peer.syn1neg))
