"""Ctrl-C that is never lost.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives. When
that is a callback the interpreter runs on its own (a garbage-collection callback, a finaliser),
the exception is printed as "ignored" and dropped, and a long run carries on. The command line
installs `handler`, which remembers the interrupt before raising it, and an unraisable-exception
hook that drops such a swallowed interrupt silently (instead of printing a traceback); the training
loops call `check()` between jitted calls, so the interrupt is raised again at the next call
boundary. Without the handler installed, `check()` never raises.
"""

from __future__ import annotations

import signal
import sys

_pending = False


def handler(signum, frame) -> None:
    """A SIGINT handler: remember the interrupt, then raise KeyboardInterrupt as Python's does."""
    global _pending
    _pending = True
    raise KeyboardInterrupt


def _unraisable(hook):
    def unraisable(info) -> None:
        if _pending and info.exc_type is KeyboardInterrupt:
            return  # our interrupt, raised where it could not propagate: `check()` raises it again
        hook(info)

    return unraisable


def install() -> None:
    """Use `handler` for SIGINT, unless SIGINT is ignored (a job started in the background)."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, handler)
        sys.unraisablehook = _unraisable(sys.unraisablehook)


def check() -> None:
    """Raise KeyboardInterrupt if an interrupt arrived and was swallowed before it reached a caller."""
    if _pending:
        raise KeyboardInterrupt
