"""Limits shared by the readers and writers, so that what one part writes another can read.

MAX_WORD_CHARS: the longest word sg_jax keeps, in characters. The corpus reader drops longer
tokens (and counts them in `ReadStats.long_words`), so training never sees one; the vectors
writers refuse them and the readers refuse files that hold them. Real words, compounds and
URLs stay far below it; a longer "word" is an undelimited blob (base64, a DNA string).
"""

MAX_WORD_CHARS = 1000
MAX_WORD_BYTES = 4 * MAX_WORD_CHARS  # the most a word of MAX_WORD_CHARS can take in UTF-8
