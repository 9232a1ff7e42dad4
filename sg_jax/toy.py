"""Toy corpora for examples, tests and sanity checks.

Two corpora, both small enough to train on in seconds:

* `SEEDS_SENTENCES`: the three-sentence example used in textbook treatments of Skip-gram
  ("the dog saw a cat", ...). Its alphabetical vocabulary is `a cat chased climbed dog saw the
  tree`, so 'cat' is index 1 and its one-hot vector is `0 1 0 0 0 0 0 0`.
* `five_groups_corpus()`: generated sentences over five semantic groups (`FIVE_GROUPS`). Words
  co-occur almost only with words of their own group, so any working Skip-gram trainer must
  place same-group words closer together than cross-group words. That is a clear, cheap
  end-to-end check that the objective and its gradients do what they should.

`sg_jax.data.corpus.iter_sentences` exposes these as the sources `"toy:seeds"` and `"toy:groups"`.
"""

from __future__ import annotations

import numpy as np

from sg_jax.errors import ConfigError

SEEDS_SENTENCES: list[str] = [
    "the dog saw a cat",
    "the dog chased the cat",
    "the cat climbed a tree",
]

# Eight words per group, no word in two groups: the co-occurrence signal is the only thing that
# ties a word to its group, so the trained geometry must come from the data.
FIVE_GROUPS: dict[str, list[str]] = {
    "royalty": ["king", "queen", "prince", "princess", "royal", "throne", "crown", "palace"],
    "people": ["man", "woman", "boy", "girl", "child", "person", "friend", "neighbor"],
    "animals": ["dog", "cat", "horse", "cow", "sheep", "bird", "pig", "goat"],
    "emotions": ["happy", "sad", "angry", "afraid", "joyful", "calm", "upset", "proud"],
    "movement": ["run", "walk", "jump", "swim", "climb", "crawl", "dance", "fly"],
}

# Shared words that appear in sentences of every group. They blur the group signal a little, as
# function words do in real text, without removing it.
FILLER_WORDS: list[str] = ["the", "a", "and"]


def seeds_corpus() -> list[list[str]]:
    """`SEEDS_SENTENCES` split into token lists: 3 sentences, 15 tokens, 8 distinct words."""
    return [s.split() for s in SEEDS_SENTENCES]


def five_groups_corpus(
    n_sentences: int = 2000,
    seed: int = 0,
    *,
    min_words: int = 4,
    max_words: int = 8,
    filler_rate: float = 0.25,
) -> list[list[str]]:
    """Generate `n_sentences` sentences whose content words all come from one group.

    Each sentence picks a group uniformly, then `k ~ Uniform{min_words..max_words}` distinct
    words of that group in random order; each gap then receives a filler word ("the", "a",
    "and") with probability `filler_rate`. Deterministic for a given `seed` (a
    `numpy.random.Generator`, so independent of global random state).

    Returns a list of token lists (about 6 content words + 1.5 fillers per sentence by default).
    """
    if n_sentences < 1:
        raise ConfigError(f"n_sentences must be >= 1, got {n_sentences}")
    largest = min(len(words) for words in FIVE_GROUPS.values())
    if not 1 <= min_words <= max_words <= largest:
        raise ConfigError(
            f"need 1 <= min_words <= max_words <= {largest}, got {min_words} and {max_words}"
        )
    if not 0.0 <= filler_rate <= 1.0:
        raise ConfigError(f"filler_rate must be in [0, 1], got {filler_rate}")
    rng = np.random.default_rng(seed)
    groups = list(FIVE_GROUPS.values())
    sentences = []
    for _ in range(n_sentences):
        words = groups[rng.integers(len(groups))]
        k = int(rng.integers(min_words, max_words + 1))
        picked = [words[i] for i in rng.permutation(len(words))[:k]]
        sentence = []
        for word in picked:
            if rng.random() < filler_rate:
                sentence.append(FILLER_WORDS[rng.integers(len(FILLER_WORDS))])
            sentence.append(word)
        sentences.append(sentence)
    return sentences


def group_of(word: str) -> str | None:
    """The `FIVE_GROUPS` key that contains `word`, or None (fillers and unknown words)."""
    for name, words in FIVE_GROUPS.items():
        if word in words:
            return name
    return None


# The named toy sources understood by `sg_jax.data.corpus.iter_sentences` ("toy:<name>").
TOY_CORPORA = {
    "seeds": seeds_corpus,
    "groups": five_groups_corpus,
}
