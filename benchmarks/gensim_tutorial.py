"""gensim's Word2Vec tutorial steps on the bundled Brown corpus, run by gensim or by sg_jax with
the same script (the import is the only difference); docs/gensim.md quotes the output.

    python benchmarks/gensim_tutorial.py gensim
    python benchmarks/gensim_tutorial.py sg_jax
"""

import sys
import time

from sg_jax.data.text import iter_sentences
from sg_jax.evaluation import GOOGLE_ANALOGIES, WORDSIM353


def main(lib: str) -> int:
    if lib == "gensim":
        from gensim.models import Word2Vec
    elif lib == "sg_jax":
        from sg_jax import Word2Vec
    else:
        print("usage: gensim_tutorial.py gensim|sg_jax", file=sys.stderr)
        return 2
    sentences = list(iter_sentences("default"))  # the same lowercased token lists for both
    t = time.perf_counter()
    model = Word2Vec(sentences, vector_size=100, window=5, min_count=5, sg=1, workers=2, epochs=5, seed=1)
    print(f"[{lib}] trained in {time.perf_counter() - t:.1f} s")
    print(model)
    top = model.wv.most_similar("president", topn=5)
    print("most_similar('president', topn=5):", [(w, round(float(s), 3)) for w, s in top])
    print("similarity('man', 'woman'):", round(float(model.wv.similarity("man", "woman")), 3))
    print("doesnt_match(['breakfast', 'cereal', 'dinner', 'lunch']):",
          model.wv.doesnt_match(["breakfast", "cereal", "dinner", "lunch"]))
    top = model.wv.most_similar(positive=["woman", "king"], negative=["man"], topn=3)
    print("most_similar(positive=['woman', 'king'], negative=['man'], topn=3):",
          [(w, round(float(s), 3)) for w, s in top])
    (pearson, _), (spearman, _), oov = model.wv.evaluate_word_pairs(WORDSIM353)
    print(f"evaluate_word_pairs(wordsim353): pearson {pearson:.3f}, spearman {spearman:.3f}, oov {oov:.1f}%")
    score, _ = model.wv.evaluate_word_analogies(GOOGLE_ANALOGIES)
    print(f"evaluate_word_analogies(questions-words): {score:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
