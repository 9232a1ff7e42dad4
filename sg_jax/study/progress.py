"""Progress of a whole study, counted in training words across all its runs.

The total is the sum over the runs still to do of corpus tokens × epochs, so the bar's rate and
estimate cover the study rather than one run. On a terminal it is one tqdm bar that the
per-run lines are written above; anywhere else (a log file, a pipe, CI) it is one plain line per
finished run, with no escape codes or carriage returns:

    [3/20] w1_d100_s0: ... | 15% of the study's words, 1.2 min so far, about 6.8 min left

The estimate is the time so far per word done times the words left; it includes the evaluation
and compilation time the runs so far took, and runs with larger windows or dimensions cost more
per word than the early ones, so it errs low early in a grid ordered by window.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


class StudyProgress:
    """The study's progress bar (`enabled`), drawn on `stream` (stdout) when it is a terminal, else a
    line per finished run given to `log` (None: printed to `stream`)."""

    def __init__(self, total_words: int, n_runs: int, *, enabled: bool = True, stream: TextIO | None = None,
                 log: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self.total_words, self.n_runs = int(total_words), int(n_runs)
        self.words, self.runs_done = 0, 0
        stream = sys.stdout if stream is None else stream
        if log is None:  # progress was asked for: off a terminal, a plain line per run on the stream
            def log(line: str) -> None:
                print(line, file=stream, flush=True)
        self.enabled, self.log, self.clock = enabled, log, clock
        self.start = clock()
        self.bar = None
        if enabled and _is_terminal(stream):
            from tqdm.auto import tqdm  # heavy: tqdm loads only when a bar is shown

            self.bar = tqdm(total=self.total_words, unit="word", unit_scale=True, desc=f"study ({n_runs} runs)",
                            file=stream, dynamic_ncols=True, leave=True)

    def advance(self, words: int, loss: float | None = None, run: str | None = None) -> None:
        """`words` more training words done (by the run `run`, whose last loss is `loss`)."""
        self.words += int(words)
        if self.bar is not None:
            self.bar.update(int(words))
            if run is not None and loss is not None:
                self.bar.set_postfix_str(f"{run} loss {loss:.4f}", refresh=False)

    def estimate(self) -> tuple[float, float]:
        """(seconds so far, seconds left at the pace so far); NaN left before any word is done."""
        elapsed = self.clock() - self.start
        if self.words <= 0:
            return elapsed, float("nan")
        return elapsed, elapsed / self.words * max(self.total_words - self.words, 0)

    def run_done(self, line: str) -> None:
        """A run finished: `line` describes it."""
        self.runs_done += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(line)
            return
        elapsed, left = self.estimate()
        share = 100.0 * self.words / self.total_words if self.total_words else 100.0
        tail = f", about {left / 60:.1f} min left" if self.runs_done < self.n_runs and left == left else ""
        self.log(f"[{self.runs_done}/{self.n_runs}] {line} | {share:.0f}% of the study's words, "
                 f"{elapsed / 60:.1f} min so far{tail}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
