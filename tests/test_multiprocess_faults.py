"""Several processes that fail end cleanly: `python -m sg_jax train` processes on 127.0.0.1, each
ending within the coordinator timeout plus the stated margin (docs/devices.md) with one line on
stderr naming the cause (no traceback, no stack dump), a non-zero exit, nothing written. Also
the device counts and XLA_FLAGS that would hang or abort JAX before it starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 4  # --coordinator-timeout of these runs, seconds
MARGIN = 10  # seconds: the margin docs/devices.md states (process start-up included)
LIMIT = 180  # no subprocess may take longer than this
ARGS = ["--epochs", "1", "--dim", "8", "--window", "2", "--batch-size", "32", "--min-count", "1",
        "--steps-per-call", "4", "--quiet", "--devices", "2"]
DUMPS = ("Traceback", "SIGABRT", "Check failure", "Fatal Python error", "*** ", "stack trace", "Segmentation")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, zipf_text) -> Path:
    path = tmp_path_factory.mktemp("faults") / "corpus.txt"
    zipf_text(path, n_tokens=3_000, vocab=100)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A `python -m sg_jax` process whose output is read as it comes (its pipes never fill)."""

    def __init__(self, argv, env=None):
        env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1", "PYTHONPATH": str(ROOT),
               **(env or {})}
        self.started = time.monotonic()
        self.p = subprocess.Popen([sys.executable, "-m", "sg_jax", *map(str, argv)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        self.out, self.err = [], []
        self.readers = [threading.Thread(target=self._read, args=(s, b), daemon=True)
                        for s, b in ((self.p.stdout, self.out), (self.p.stderr, self.err))]
        for r in self.readers:
            r.start()

    @staticmethod
    def _read(stream, into):
        for line in stream:
            into.append(line)

    def wait_for_output(self, text: str, within: float) -> None:
        deadline = time.monotonic() + within
        while not any(text in line for line in self.out):
            assert self.p.poll() is None, "".join(self.err)[-2000:]
            assert time.monotonic() < deadline, f"no {text!r} within {within} s"
            time.sleep(0.1)

    def finish(self, within: float = LIMIT) -> tuple[int, str, float]:
        """(exit status, stderr, seconds since it started)."""
        try:
            code = self.p.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running after {within} s; stderr: {''.join(self.err)[-2000:]}") from None
        for r in self.readers:
            r.join(timeout=10)
        return code, "".join(self.err), time.monotonic() - self.started

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.p.pid}/task/{self.p.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def procs():
    started: list[Proc] = []

    def start(argv, env=None) -> Proc:
        started.append(Proc(argv, env))
        return started[-1]

    yield start
    for proc in started:
        if proc.p.poll() is None:
            os.kill(proc.p.pid, signal.SIGCONT)
        proc.kill()


def launch(corpus, out, address, process_id, processes=2, extra=()):
    return ["train", "--corpus", corpus, "--out", out, *ARGS, "--coordinator", address,
            "--num-processes", processes, "--process-id", process_id, "--coordinator-timeout", TIMEOUT, *extra]


def one_line(err: str, *parts: str) -> None:
    assert err.startswith("sg-jax: error: ") and err.count("\n") == 1, err[-3000:]
    assert not any(dump in err for dump in DUMPS), err
    for part in parts:
        assert part in err, err


def gone(pids: list[int], within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


# ------------------------------------------------------------------------------ before JAX starts


def test_a_device_count_beyond_what_a_cpu_simulates_is_refused_at_once(procs, corpus, tmp_path):
    """--devices 100000 used to hang making 100,000 host devices."""
    code, err, seconds = procs(["train", "--corpus", corpus, "--out", tmp_path / "out", *ARGS[:-2],
                                "--devices", "100000"], env={"XLA_FLAGS": ""}).finish()
    assert code == 2
    one_line(err, "devices=100000", "at most 256")
    code, err, _ = procs(["train", "--corpus", corpus, "--out", tmp_path / "out", *ARGS],
                         env={"XLA_FLAGS": "--xla_force_host_platform_device_count=100000"}).finish()
    assert code == 2
    one_line(err, "xla_force_host_platform_device_count=100000", "256")
    assert not (tmp_path / "out").exists() and seconds < 60


def test_an_unknown_xla_flag_is_refused_in_one_line(procs, corpus, tmp_path):
    """XLA ends the process over a flag it does not know (a fatal log line and exit)."""
    code, err, _ = procs(["train", "--corpus", corpus, "--out", tmp_path / "out", *ARGS],
                         env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2 --xla_no_such_flag=1"}).finish()
    assert code == 2
    one_line(err, "XLA_FLAGS", "--xla_no_such_flag=1")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ the processes meet


def test_process_0_alone_ends_within_the_timeout(procs, corpus, tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    code, err, seconds = procs(launch(corpus, tmp_path / "out", address, 0)).finish()
    assert code == 2
    one_line(err, f"no peer joined the run at {address}", f"(process 1 of 2 never connected within {TIMEOUT} s)")
    assert TIMEOUT <= seconds < TIMEOUT + MARGIN
    assert not (tmp_path / "out").exists()


def test_a_port_held_by_another_program_ends_both(procs, corpus, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as other:  # listens, never answers
        address = f"127.0.0.1:{other.getsockname()[1]}"
        runs = [procs(launch(corpus, tmp_path / f"out{i}", address, i)) for i in range(2)]
        results = [run.finish() for run in runs]
    for code, err, seconds in results:
        assert code == 2 and seconds < TIMEOUT + MARGIN
        one_line(err, address, "in use by another program")
    assert not (tmp_path / "out0").exists() and not (tmp_path / "out1").exists()


@pytest.mark.parametrize("ids,processes,message", [
    ((0, 0), (2, 2), "duplicate process id: two processes of the run at {address} were given process id 0"),
    ((0, 1), (2, 3), "the processes disagree on the number of processes: process 1 was given 3, process 0 2"),
])
def test_mismatched_launches_end_every_process_with_the_cause(procs, corpus, tmp_path, ids, processes, message):
    address = f"127.0.0.1:{_free_port()}"
    first = procs(launch(corpus, tmp_path / "out", address, ids[0], processes[0]))
    time.sleep(0.5)  # the first serves the address
    second = procs(launch(corpus, tmp_path / "out", address, ids[1], processes[1]))
    for code, err, seconds in (first.finish(), second.finish()):
        assert code == 2 and seconds < MARGIN
        one_line(err, message.format(address=address))
    assert not (tmp_path / "out").exists()


def test_a_finished_run_in_process_0s_out_ends_both_at_once(procs, corpus, tmp_path):
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "run.json").write_text("{}\n")
    address = f"127.0.0.1:{_free_port()}"
    runs = [procs(launch(corpus, out, address, i, extra=["--coordinator-timeout", "60"]))
            for i, out in enumerate([tmp_path / "done", tmp_path / "fresh"])]
    (code0, err0, s0), (code1, err1, s1) = [run.finish() for run in runs]
    assert code0 == code1 == 2 and max(s0, s1) < MARGIN  # long before the timeout of 60 s
    one_line(err0, "already holds a run (run.json)")
    one_line(err1, "process 0 of 2 refused to start", "already holds a run (run.json)")
    assert sorted(os.listdir(tmp_path / "done")) == ["run.json"] and not (tmp_path / "fresh").exists()


def test_sigterm_ends_a_process_waiting_for_its_peers(procs, corpus, tmp_path):
    port = _free_port()
    run = procs(launch(corpus, tmp_path / "out", f"127.0.0.1:{port}", 0, extra=["--coordinator-timeout", "60"]))
    deadline = time.monotonic() + 60
    while True:  # until it listens
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and run.p.poll() is None
            time.sleep(0.1)
    sent = time.monotonic()
    run.p.send_signal(signal.SIGTERM)
    code, err, _ = run.finish(within=30)
    assert code != 0 and time.monotonic() - sent < 5
    assert not any(dump in err for dump in DUMPS), err


# ------------------------------------------------------------------------------ mid-run


def _mid_run(procs, corpus, tmp_path, processes: int = 2) -> list[Proc]:
    """`processes` processes, returned once the JAX runtime has joined them and their collectives
    run (gloo reports its connections on stdout) or they have trained a step (a checkpoint)."""
    address = f"127.0.0.1:{_free_port()}"
    runs = [procs(launch(corpus, tmp_path / f"out{i}", address, i, processes,
                         extra=["--epochs", "200", "--checkpoint-every-steps", "1"])) for i in range(processes)]
    deadline = time.monotonic() + 120
    while not (any("[Gloo]" in line for line in runs[0].out) or (tmp_path / "out0" / "checkpoint.sgjax").exists()):
        for run in runs:
            assert run.p.poll() is None, "".join(run.err)[-3000:]
        assert time.monotonic() < deadline, "the run did not start within 120 s"
        time.sleep(0.1)
    return runs


def test_the_coordinator_killed_mid_run_ends_the_worker_in_one_line(procs, corpus, tmp_path):
    coordinator, worker = _mid_run(procs, corpus, tmp_path)
    children = coordinator.children()
    killed = time.monotonic()
    coordinator.kill()
    code, err, _ = worker.finish()
    assert code == 2 and time.monotonic() - killed < MARGIN
    one_line(err, "a peer died: process 0 of 2 (the coordinator) is gone")
    assert children and gone(children)  # its training process did not outlive it


@pytest.mark.parametrize("how", ["kill", "interrupt", "terminate", "freeze"])
def test_a_peer_killed_interrupted_or_frozen_ends_the_survivor_in_time(procs, corpus, tmp_path, how):
    survivor, peer = _mid_run(procs, corpus, tmp_path)
    children = survivor.children()
    hit = time.monotonic()
    peer.p.send_signal({"kill": signal.SIGKILL, "interrupt": signal.SIGINT, "terminate": signal.SIGTERM,
                        "freeze": signal.SIGSTOP}[how])
    code, err, _ = survivor.finish()
    took = time.monotonic() - hit
    assert code == 2, err[-3000:]
    if how == "freeze":  # silent for the timeout
        assert TIMEOUT - 1.5 <= took < TIMEOUT + MARGIN  # silent since its last heartbeat, up to 1 s before
        one_line(err, f"a peer died: process 1 of 2 stopped answering (no heartbeat for {TIMEOUT} s)")
        os.kill(peer.p.pid, signal.SIGCONT)
        peer_code, peer_err, _ = peer.finish(within=60)
        assert peer_code == 2
        one_line(peer_err, "process 0 of 2 (the coordinator)")
    else:
        assert took < MARGIN
        one_line(err, {"kill": "a peer died: process 1 of 2 is gone (its connection closed mid-run)",
                       "interrupt": "a peer ended the run: process 1 of 2 was interrupted",
                       "terminate": "a peer ended the run: process 1 of 2 was terminated (SIGTERM)"}[how])
    if how in ("interrupt", "terminate"):  # it ends at once too, quietly for SIGTERM
        peer_code, peer_err, _ = peer.finish(within=60)
        assert (peer_code, peer_err) == ((130, "sg-jax: interrupted\n") if how == "interrupt" else (143, "")), peer_err
    assert children and gone(children)
    assert not (tmp_path / "out0" / "vectors.txt").exists()


# ------------------------------------------------------------------------------ the rendezvous itself


def _meet_all(address, hellos, timeout=3.0, delay=0.0):
    """meet() for each hello in its own thread (the first serves): each one's Meeting or error."""
    from sg_jax.processes.rendezvous import meet

    results = {}

    def one(i, hello):
        try:
            results[i] = meet(address, hello, timeout)
        except Exception as e:  # noqa: BLE001 (the error is the result)
            results[i] = e

    threads = [threading.Thread(target=one, args=(i, h)) for i, h in enumerate(hellos)]
    for t in threads:
        t.start()
        time.sleep(delay)
    for t in threads:
        t.join(timeout=30)
    return [results[i] for i in range(len(hellos))]


def test_three_processes_meet_and_a_missing_one_is_named():
    from sg_jax.errors import ConfigError
    from sg_jax.processes.rendezvous import Hello

    address = f"127.0.0.1:{_free_port()}"
    met = _meet_all(address, [Hello(i, 3, "f") for i in range(3)], delay=0.2)
    ports = {m.jax_coordinator for m in met}
    assert len(ports) == 1 and ports.pop().startswith("127.0.0.1:") and sorted(met[0].channels) == [1, 2]
    for m in met:
        for channel in m.channels.values():
            channel.close()
        if m.listener is not None:
            m.listener.close()
    address = f"127.0.0.1:{_free_port()}"
    started = time.monotonic()
    hub, peer = _meet_all(address, [Hello(0, 3, "f"), Hello(2, 3, "f")], timeout=1.0, delay=0.2)
    assert time.monotonic() - started < 1.0 + 3
    assert isinstance(hub, ConfigError) and str(hub) == \
        f"not every process joined the run at {address} (process 1 of 3 never connected within 1 s)"
    assert isinstance(peer, ConfigError) and str(peer) == \
        f"process 1 of 3 never joined the run at {address} within 1 s"


def test_a_process_that_refuses_or_differs_ends_every_process_with_its_cause():
    from sg_jax.processes.rendezvous import Hello

    address = f"127.0.0.1:{_free_port()}"
    hub, peer = _meet_all(address, [Hello(0, 2, "f"), Hello(1, 2, "f", refusal="out/ holds a run")], delay=0.2)
    assert str(hub) == "process 1 of 2 refused to start: out/ holds a run" and str(peer) == "out/ holds a run"
    address = f"127.0.0.1:{_free_port()}"
    hub, peer = _meet_all(address, [Hello(0, 2, "f"), Hello(1, 2, "g")], delay=0.2)
    assert str(hub) == str(peer) == ("the processes disagree on the options: process 1 was started with other "
                                     "options than process 0; start every process with the same options")


def test_a_latecomer_is_turned_away_and_heartbeats_carry_each_end():
    from sg_jax.processes.link import Link
    from sg_jax.processes.rendezvous import Hello

    address = f"127.0.0.1:{_free_port()}"
    hub, peer = _meet_all(address, [Hello(0, 2, "f"), Hello(1, 2, "f")], delay=0.2)
    hub_link, peer_link = Link(hub, silence=2.0), Link(peer, silence=2.0)
    late = []
    threading.Thread(target=lambda: late.extend(_meet_all(address, [Hello(1, 2, "f")]))).start()
    for _ in range(10):  # heartbeats both ways for 2 s: nobody is reported
        assert hub_link.poll(0.2) == [] and peer_link.poll(0.0) == []
    assert str(late[0]) == (f"duplicate process id: two processes of the run at {address} were given "
                            f"process id 1 (the run has started with every process)")
    peer_link.announce(130, "was interrupted")
    [end] = hub_link.poll(0.5)
    assert (end.process_id, end.status, end.why) == (1, 130, "was interrupted")
    hub_link.close()


def test_a_port_answered_by_something_else_is_named_in_use():
    from sg_jax.processes.rendezvous import Hello

    with socket.create_server(("127.0.0.1", 0)) as other:
        address = f"127.0.0.1:{other.getsockname()[1]}"

        def answer():
            conn, _ = other.accept()
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            time.sleep(1)
            conn.close()

        threading.Thread(target=answer, daemon=True).start()
        started = time.monotonic()
        [peer] = _meet_all(address, [Hello(1, 2, "f")], timeout=5.0)
    assert time.monotonic() - started < 3
    assert str(peer) == f"process 1 of 2 could not join the run at {address}: the port is in use by another program " \
                        f"(it answered something else)"


def test_processes_resuming_different_checkpoints_are_refused_before_jax_starts(tmp_path):
    """One process resuming a checkpoint while another starts afresh used to train different
    numbers of steps and wait in a collective for ever."""
    from sg_jax.processes.rendezvous import Hello
    from sg_jax.run_files import checkpoint_identity

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    (tmp_path / "a" / "checkpoint.sgjax").write_bytes(b"SGJAXCKP" + bytes(range(40)) + b"payload")
    (tmp_path / "b" / "checkpoint.sgjax").write_bytes(b"SGJAXCKP" + bytes(range(1, 41)) + b"payload")
    a, b, none = (checkpoint_identity(tmp_path / d) for d in "abc")
    assert a and b and a != b and none is None and checkpoint_identity(tmp_path / "missing") is None
    for mine, theirs, held in [(a, none, "no checkpoint to resume, process 0's does"),
                               (none, a, "a checkpoint to resume, process 0's none"),
                               (a, b, "another checkpoint than process 0's")]:
        address = f"127.0.0.1:{_free_port()}"
        hub, peer = _meet_all(address, [Hello(0, 2, "f", resume_from=mine), Hello(1, 2, "f", resume_from=theirs)],
                              delay=0.2)
        assert str(hub) == str(peer) == (f"the processes disagree on the run to resume: process 1's output directory "
                                         f"holds {held}; resume every process from the same checkpoint")
    address = f"127.0.0.1:{_free_port()}"
    met = _meet_all(address, [Hello(0, 2, "f", resume_from=a), Hello(1, 2, "f", resume_from=a)], delay=0.2)
    assert all(m.jax_coordinator == met[0].jax_coordinator for m in met)
    for m in met:
        for channel in m.channels.values():
            channel.close()
        if m.listener is not None:
            m.listener.close()
