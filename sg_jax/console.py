"""The command line's edges with the process: one-line usage errors, a stdout that survives its
reader going away, leaving at once on an interrupt, and a progress bar drawn from the training
loop's callback. `sg_jax.cli` (and the graph command's runs) use these; the training library
itself reports progress only through callbacks.
"""

from __future__ import annotations

import argparse
import os
import sys

INTERRUPTED = 130  # the exit status of a program stopped by SIGINT (128 + 2)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors (its own and its subcommands') are the promised one line,
    `sg-jax: error: ...` and exit status 2, not a usage block (--help still shows the usage)."""

    def error(self, message: str):
        if len(message) > 300:  # it can quote a huge argument
            message = f"{message[:300]}… ({len(message):,} characters)"
        self.exit(2, f"sg-jax: error: {' '.join(message.split())}\n")


class QuietStdout:
    """sys.stdout that survives its reader going away (`sg-jax train ... | head -0`): the first
    BrokenPipeError points the descriptor at /dev/null, and the work and its exit status go on
    as if the output had been read. Other attributes are the wrapped stream's."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._discard()
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard()

    def _discard(self):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # no descriptor (a test's capture stream)
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


def exit_now(code: int) -> None:
    """Flush stdout and stderr and end the process without the interpreter's teardown.

    JAX compiles on background threads; tearing its runtime down (the client's destructor, run
    by the final garbage collection) while a compilation is in flight crashes the process with
    SIGSEGV. After an interrupt nothing is left to clean up: every output is written atomically
    (an interrupted write removes its temporary file as the interrupt unwinds) and runs.jsonl
    lines are appended whole.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def progress_callback(enabled: bool, desc: str = "train"):
    """An on_call callback drawing a tqdm bar of words (None when disabled); returns (callback, close)."""
    if not enabled:
        return None, lambda: None
    from tqdm.auto import tqdm  # heavy: tqdm loads only when a bar is shown

    bar = {"bar": None, "seen": 0}

    def on_call(state, position, record):
        if bar["bar"] is None:
            bar["bar"] = tqdm(total=record["words_total"], unit="word", unit_scale=True, desc=desc,
                              dynamic_ncols=True)
        bar["bar"].update(record["words"] - bar["seen"])
        bar["seen"] = record["words"]
        bar["bar"].set_postfix(loss=f"{record['loss']:.4f}", refresh=False)

    def close():
        if bar["bar"] is not None:
            bar["bar"].close()

    return on_call, close


def read_progress_callback(enabled: bool, desc: str = "read"):
    """An on_read(bytes_read, file_bytes) callback drawing a tqdm bar of the corpus file's bytes,
    shown only for files large enough to take a while (None when disabled); returns (callback,
    close)."""
    if not enabled:
        return None, lambda: None
    from tqdm.auto import tqdm  # heavy: tqdm loads only when a bar is shown

    bar = {"bar": None, "seen": 0}

    def on_read(done: int, total: int):
        if bar["bar"] is None:
            if total < READ_BAR_BYTES:
                return
            bar["bar"] = tqdm(total=total, unit="B", unit_scale=True, desc=desc, dynamic_ncols=True)
        bar["bar"].update(done - bar["seen"])
        bar["seen"] = done

    def close():
        if bar["bar"] is not None:
            bar["bar"].close()

    return on_read, close


READ_BAR_BYTES = 32 << 20  # smaller files are read in about a second
