"""A process of a multi-process run, supervised: JAX runs in a child process, where an abort
cannot reach the user.

The process the user started (the supervisor) meets the other processes first
(`sg_jax.processes.rendezvous`), then starts the same command again as a child process that joins
jax.distributed and trains, and watches two things until it ends:

* the child: a child that ends with its own one-line error (exit status 2) or an interrupt
  (130) has said what happened; a child killed by a signal (JAX's runtime ends the process with
  SIGABRT when it loses a peer) is reported in one line instead of its stack dump;
* the other processes (`sg_jax.processes.link`): when one ends, closes its connection or falls silent
  for the coordinator timeout, the child is stopped and one line names the process and the
  cause. A peer that reported an error gives the child `GRACE` seconds to end with its own
  message first (the processes usually fail together, each with the same line). The children
  give jax.distributed `JOIN_TIMEOUT` seconds (or the timeout, if longer) to join them: the
  processes are known to be there, and the supervisors watch each other meanwhile.

So every process ends within the coordinator timeout plus a margin (docs/devices.md) with one
line on stderr. SIGINT and SIGTERM are passed to the child (which runs in its own session, so a
terminal's Ctrl-C reaches it once, through the supervisor) and announced to the other processes.
A child whose supervisor dies (SIGKILL) ends itself: it watches a pipe only the supervisor holds.

In the child, Python's own output (the one-line errors, the progress bar) goes straight to the
user's stderr; what C++ writes to file descriptor 2 (the runtime's log and stack dumps) and
tracebacks go to the supervisor, which shows them only when they are what happened (a Python
bug's traceback) or when the run succeeds (warnings).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback

from sg_jax.errors import ConfigError
from sg_jax.processes.link import End, Link
from sg_jax.processes.rendezvous import Hello, meet

ENV = "SG_JAX_SUPERVISED"  # set in the child: {"coordinator": JAX's HOST:PORT, "timeout", "watch_fd", "stderr_fd"}
# seconds the children give jax.distributed to join them: every process is known to be there, and
# a child that starts slowly (importing JAX on a loaded machine) must not fail a short timeout
JOIN_TIMEOUT = 60.0
GRACE = 5.0  # seconds a child gets to end by itself (after a peer's error, an interrupt, SIGTERM)
NEWS_WAIT = 2.0  # seconds to wait for news of the peers after the child ended abnormally
KEEP = 1 << 18  # bytes of the child's descriptor-2 output kept (the last ones)
FAILED = 2  # the exit status of a one-line failure, as for every error a user can cause
_SIGNAL_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


def say(message: str) -> None:
    print(f"sg-jax: error: {message}", file=sys.stderr, flush=True)


def run(argv: list[str], coordinator: str, hello: Hello, timeout: float) -> int:
    """Meet the other processes, then train in a supervised child: `python -m sg_jax *argv`.
    Returns the exit status; a failure to start raises ConfigError (one line). A process that
    cannot start (hello.refusal) says so at once, tells the others, and returns FAILED."""
    if hello.refusal:
        say(hello.refusal)
    try:
        meeting = meet(coordinator, hello, timeout)
    except ConfigError:
        if hello.refusal:
            return FAILED
        raise
    link = Link(meeting, silence=timeout)
    try:
        return Supervisor(link, argv, meeting.jax_coordinator).run()
    finally:
        link.close()


class Supervisor:
    def __init__(self, link: Link, argv: list[str], jax_coordinator: str):
        self.link = link
        self.argv = argv
        self.jax_coordinator = jax_coordinator
        hello = link.meeting.hello
        self.me = f"process {hello.process_id} of {hello.num_processes}"
        self.num_processes = hello.num_processes
        self.signal: int | None = None
        self.output = bytearray()  # the child's descriptor 2, its last KEEP bytes

    # -------------------------------------------------------------------- the child

    def _start(self) -> subprocess.Popen:
        watch_read, self._watch = os.pipe()  # the child's end reads EOF when this process is gone
        stderr = os.dup(2)
        spec = {"coordinator": self.jax_coordinator, "timeout": max(self.link.silence, JOIN_TIMEOUT),
                "watch_fd": watch_read, "stderr_fd": stderr}
        env = {**os.environ, ENV: json.dumps(spec)}
        try:
            child = subprocess.Popen([sys.executable, "-m", "sg_jax", *self.argv], env=env, stderr=subprocess.PIPE,
                                     pass_fds=(watch_read, stderr), start_new_session=True)
        finally:
            os.close(watch_read)
            os.close(stderr)
        self._reader = threading.Thread(target=self._read, args=(child.stderr,), daemon=True)
        self._reader.start()
        return child

    def _read(self, stream) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            self.output += chunk
            if len(self.output) > 2 * KEEP:
                del self.output[:-KEEP]

    def _captured(self) -> str:
        self._reader.join(timeout=2.0)
        return bytes(self.output[-KEEP:]).decode("utf-8", "replace")

    def _stop_child(self, child: subprocess.Popen, signum: int | None = None) -> int:
        """Send `signum` (None: SIGKILL at once) and wait GRACE seconds before SIGKILL."""
        if signum is not None and child.poll() is None:
            child.send_signal(signum)
            try:
                return child.wait(timeout=GRACE)
            except subprocess.TimeoutExpired:
                pass
        if child.poll() is None:
            child.kill()
        return child.wait()

    # -------------------------------------------------------------------- the watch

    def run(self) -> int:
        handlers = {s: signal.signal(s, self._on_signal) for s in _SIGNAL_STATUS}
        child = self._start()
        try:
            while True:
                status = child.poll()
                if status is not None:
                    return self._child_ended(status)
                if self.signal is not None:
                    return self._signalled(child)
                failed = [end for end in self.link.poll(0.2) if end.status != 0]
                if failed:
                    return self._peer_ended(child, failed[0])
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            os.close(self._watch)
            for s, handler in handlers.items():
                signal.signal(s, handler)

    def _on_signal(self, signum, frame) -> None:
        self.signal = signum

    def _signalled(self, child: subprocess.Popen) -> int:
        signum = self.signal
        interrupted = signum == signal.SIGINT
        self.link.announce(_SIGNAL_STATUS[signum], "was interrupted" if interrupted else "was terminated (SIGTERM)")
        status = self._stop_child(child, signum)
        if interrupted and status != 130:  # the child did not get to say it
            print("sg-jax: interrupted", file=sys.stderr, flush=True)
        return _SIGNAL_STATUS[signum]

    def _peer_ended(self, child: subprocess.Popen, end: End) -> int:
        if end.status == FAILED:  # it reported an error: this child may be ending with the same one
            try:
                if child.wait(timeout=GRACE) == FAILED:
                    self.link.announce(FAILED, "stopped with an error (exit status 2)")
                    return FAILED
            except subprocess.TimeoutExpired:
                pass
        self._stop_child(child)
        message = self._peer_message(end)
        self.link.announce(FAILED, f"stopped because {message}")
        raise ConfigError(message)

    def _peer_message(self, end: End) -> str:
        who = f"process {end.process_id} of {self.num_processes}" + (" (the coordinator)" if end.process_id == 0 else "")
        return f"a peer died: {who} {end.why}" if end.status is None else f"a peer ended the run: {who} {end.why}"

    def _child_ended(self, status: int) -> int:
        if status == 0:
            sys.stderr.write(self._captured())  # the runtime's warnings, as an unsupervised run shows them
            self.link.announce(0, "finished")
            return 0
        if status in (FAILED, 130):  # the child said what happened, in one line
            self.link.announce(status, "stopped with an error (exit status 2)" if status == FAILED else "was interrupted")
            return status
        deadline = time.monotonic() + NEWS_WAIT  # its peers may have died first: that is the cause
        failed: list[End] = []
        while not failed and time.monotonic() < deadline:
            failed = [end for end in self.link.poll(0.2) if end.status != 0]
        how = _how(status)
        if failed:
            message = self._peer_message(failed[0])
            self.link.announce(FAILED, f"stopped because {message}")
            raise ConfigError(message)
        self.link.announce(FAILED, f"stopped: its training process {how}")
        captured = self._captured()
        if status == 1 and "Traceback" in captured:  # a Python error that is not the user's: show it whole
            sys.stderr.write(captured)
            return 1
        detail = _runtime_message(captured)
        raise ConfigError(f"the training process of {self.me} {how}" + (f": {detail}" if detail else ""))


def _how(status: int) -> str:
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"ended with exit status {status}"


def _runtime_message(text: str) -> str:
    """The first fatal or error line of the runtime's log, without its prefix; else ''."""
    for pattern in (r"^F\d{4} [\d:.]+\s+\d+ [^\]]*\] (.+)$", r"^E\d{4} [\d:.]+\s+\d+ [^\]]*\] (.+)$",
                    r"^(Fatal Python error: .+)$"):
        m = re.search(pattern, text, re.MULTILINE)
        if m:
            return m.group(1).strip()[:200]
    return ""


# ------------------------------------------------------------------------------ in the child


_child: dict | None = None


def supervised() -> dict | None:
    """In a child started by a supervisor, its settings ({"coordinator": JAX's HOST:PORT, ...});
    None in a process nobody supervises."""
    return _child


def child_setup(environ=os.environ) -> dict | None:
    """In a child started by a supervisor (before anything is printed): point Python's stderr at
    the user's, send tracebacks to the supervisor, and end this process when the supervisor is
    gone. Returns `supervised()`."""
    global _child
    text = environ.get(ENV)
    if not text:
        return _child
    spec = json.loads(text)
    del environ[ENV]  # not for this process's own children
    captured = sys.stderr
    sys.stderr = open(spec["stderr_fd"], "w", buffering=1, encoding="utf-8", errors="backslashreplace")

    def excepthook(kind, value, tb):
        traceback.print_exception(kind, value, tb, file=captured)
        captured.flush()

    sys.excepthook = excepthook

    def watch(fd: int) -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        os._exit(1)  # the supervisor is gone: nobody is left to report to

    threading.Thread(target=watch, args=(spec["watch_fd"],), daemon=True).start()
    _child = spec
    return spec
