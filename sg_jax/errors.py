"""The project's exceptions: every error a user can cause is one of these.

The CLI catches `SgJaxError` and prints its message on one line (no traceback) with a non-zero
exit status; library users can catch the specific subclasses.
"""


class SgJaxError(Exception):
    """Base class: a problem with the user's input or configuration, not a bug."""


class CorpusError(SgJaxError):
    """The corpus is missing, unreadable, empty, not UTF-8, or yields no trainable words."""


class VocabError(SgJaxError, KeyError):
    """A word is not in the vocabulary, or the vocabulary is unusable (too small, empty).

    Also a KeyError, so that code written for dict-like word vectors (`except KeyError:`, as
    gensim's KeyedVectors raise) catches an unknown word."""

    def __str__(self) -> str:  # KeyError's str() would quote the message
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class ConfigError(SgJaxError):
    """A hyperparameter is out of range (window < 1, dim < 1, negative < 1, sample < 0, ...)."""


class FormatError(SgJaxError):
    """A vectors file or checkpoint is truncated, corrupted, or of an unknown format."""


class DivergenceError(SgJaxError):
    """Training produced NaN or Inf."""


QUOTE_LIMIT = 60  # characters of user data an error message shows


def quoted(value, limit: int = QUOTE_LIMIT) -> str:
    """`repr(value)` for an error message, shortened when long: a 50 MB word must not become a
    50 MB error line. Long values keep their first `limit` characters, then an ellipsis and the
    full length: 'aaaa…' (5,000,000 characters)."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) <= limit:
            return repr(bytes(value))
        return f"{bytes(value[:limit])!r}… ({len(value):,} bytes)"
    if not isinstance(value, str):  # numbers, lists, ...: their repr, shortened the same way
        text = repr(value)
        return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit] + '…'!r} ({len(value):,} characters)"


def quoted_list(values, most: int = 10) -> str:
    """Up to `most` values, each `quoted`, then how many more there are."""
    values = list(values)
    shown = ", ".join(map(quoted, values[:most]))
    return shown + (f" and {len(values) - most:,} more" if len(values) > most else "")
