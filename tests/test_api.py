"""The model API: one-call training, gensim-style queries, save/load, training more; the run
directory rules (a finished run is not overwritten silently; a finished run is extended)."""

import numpy as np
import pytest

import sg_jax
from sg_jax import cli
from sg_jax.errors import ConfigError
from sg_jax.formats import load_word2vec
from sg_jax.run_files import verify_manifest

TOY = dict(dim=8, epochs=2, sample=0.0, min_count=1, batch_size=64, steps_per_call=8)


def test_train_model_matches_the_command_line_bit_for_bit(tmp_path):
    model = sg_jax.train_model("toy:groups", **TOY)
    assert cli.main(["train", "--corpus", "toy:groups", "--out", str(tmp_path / "cli"), "--dim", "8", "--epochs", "2",
                     "--sample", "0", "--min-count", "1", "--batch-size", "64", "--steps-per-call", "8",
                     "--quiet"]) == 0
    words, vectors = load_word2vec(tmp_path / "cli" / "vectors.txt")
    assert list(words) == list(model.wv.words)
    np.testing.assert_array_equal(vectors, model.wv.vectors)


def test_queries_as_gensim_users_expect():
    model = sg_jax.train_model([["the", "king", "rules"], ["the", "queen", "rules"]] * 20, dim=4, epochs=1,
                               min_count=1, sample=0.0)
    assert model.wv["king"].shape == (4,)
    np.testing.assert_array_equal(model.wv["King"], model.wv["king"])  # training lowercased
    neighbours = model.wv.most_similar("king", k=2)
    assert len(neighbours) == 2 and all(w != "king" for w, _ in neighbours)


def test_unknown_options_are_named():
    with pytest.raises(ConfigError, match="unknown option.*windw"):
        sg_jax.train_model("toy:groups", windw=3)


def test_save_load_and_train_more_equal_one_longer_run(tmp_path):
    """Training 2 epochs, saving, loading and training 1 more gives exactly what resuming a
    finished 2-epoch run with --epochs 3 gives (both decay the rate again over the new epoch)."""
    model = sg_jax.train_model("toy:groups", **TOY)
    model.save(tmp_path / "m")
    assert verify_manifest(tmp_path / "m") == []
    loaded = sg_jax.load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.wv.vectors, model.wv.vectors)
    np.testing.assert_array_equal(sg_jax.Model.load(tmp_path / "m").wv.vectors, model.wv.vectors)
    np.testing.assert_array_equal(loaded.output_vectors, model.output_vectors)
    assert loaded.config == model.config and loaded.epochs_trained == 2
    loaded.train_more(epochs=1)
    assert loaded.config.epochs == 3 and loaded.epochs_trained == 3
    assert not np.array_equal(loaded.wv.vectors, model.wv.vectors)

    argv = ["train", "--corpus", "toy:groups", "--out", str(tmp_path / "cli"), "--dim", "8", "--sample", "0",
            "--min-count", "1", "--batch-size", "64", "--steps-per-call", "8", "--quiet"]
    assert cli.main([*argv, "--epochs", "2"]) == 0
    assert cli.main([*argv, "--epochs", "3", "--resume"]) == 0
    _, extended = load_word2vec(tmp_path / "cli" / "vectors.txt")
    np.testing.assert_array_equal(extended, loaded.wv.vectors)


def test_train_more_on_new_text_keeps_the_vocabulary():
    model = sg_jax.train_model("toy:groups", **TOY)
    words = model.wv.words
    before = model.wv.vectors.copy()
    text = [list(words[:6]) + ["unknownword"], list(words[6:12])] * 30
    model.train_more(text, epochs=1)
    assert model.wv.words == words
    assert not np.array_equal(model.wv.vectors, before)


def test_a_finished_run_is_not_overwritten_silently(tmp_path, capsys):
    argv = ["train", "--corpus", "toy:groups", "--out", str(tmp_path / "r"), "--dim", "4", "--epochs", "1",
            "--sample", "0", "--min-count", "1", "--quiet"]
    assert cli.main(argv) == 0
    before = (tmp_path / "r" / "vectors.txt").read_bytes()
    capsys.readouterr()
    assert cli.main([*argv[:-1], "--seed", "3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a run" in err and "--overwrite" in err
    assert (tmp_path / "r" / "vectors.txt").read_bytes() == before
    assert cli.main([*argv, "--seed", "3", "--overwrite"]) == 0
    assert (tmp_path / "r" / "vectors.txt").read_bytes() != before
    assert verify_manifest(tmp_path / "r") == []


def test_an_unfinished_run_cannot_change_its_epochs(tmp_path, capsys):
    argv = ["train", "--corpus", "toy:groups", "--out", str(tmp_path / "r"), "--dim", "4", "--sample", "0",
            "--min-count", "1", "--quiet"]
    assert cli.main([*argv, "--epochs", "3", "--stop-after-epoch", "1"]) == 0
    capsys.readouterr()
    assert cli.main([*argv, "--epochs", "4", "--resume"]) == 2
    assert "only once it has finished" in capsys.readouterr().err
