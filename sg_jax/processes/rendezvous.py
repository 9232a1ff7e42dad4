"""Several processes meet before JAX starts: a rendezvous of sg_jax's own over TCP.

jax.distributed's client ends the process from C++ (SIGABRT and a stack dump) when it cannot
reach the coordinator, when a peer is missing, and when a peer dies mid-run. So the processes of
a run first meet here, in Python, where every mismatch becomes one line:

* process 0 listens on the coordinator address (HOST:PORT); every other process connects and
  sends a hello: its process id, the number of processes it was given, a fingerprint of the
  options every process must share, and its refusal if it cannot start (its output directory
  holds a run, say);
* process 0 answers each connection with a welcome at once, and once all P - 1 hellos are in (or
  the timeout has passed) with one verdict for all: start (naming the port on which JAX's
  coordination service will listen: a free port process 0 picks on its host), or refuse (one
  line naming the cause: a process that never connected, a duplicate process id, a different
  number of processes or different options, a process that refused to start).

During the run the same connections carry heartbeats and each process's end
(`sg_jax.processes.link`). Messages are JSON objects, one per line (`sg_jax.processes.channel`).
"""

from __future__ import annotations

import dataclasses
import errno
import select
import socket
import time

from sg_jax.errors import ConfigError
from sg_jax.processes.channel import Channel, ProtocolError, family, free_port, next_message

PROTOCOL = "sg-jax-rendezvous/1"
MAX_TIMEOUT = 86_400.0  # seconds: a day
PORT_PROBE = 3.0  # seconds an sg-jax process 0 takes at most to welcome a connection
VERDICT_MARGIN = 5.0  # seconds a process waits for the verdict past process 0's own deadline


@dataclasses.dataclass(frozen=True)
class Hello:
    """What a process tells the others before the run starts."""

    process_id: int
    num_processes: int
    fingerprint: str  # of the options every process must share
    refusal: str | None = None  # why this process cannot start (a one-line message), or None
    resume_from: str | None = None  # what identifies the checkpoint it resumes (None: it starts afresh)


def check_launch(coordinator: str, num_processes, process_id, timeout) -> tuple[str, int]:
    """(host, port) of a valid launch; ConfigError naming the first bad value otherwise."""
    if not isinstance(num_processes, int) or num_processes < 1:
        raise ConfigError(f"num_processes must be >= 1, got {num_processes!r}")
    if not isinstance(process_id, int) or not 0 <= process_id < num_processes:
        raise ConfigError(f"process_id must be in [0, {num_processes - 1}], got {process_id!r}")
    host, _, port = str(coordinator).rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [::1]:1234
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"coordinator must be HOST:PORT, got {coordinator!r}")
    if not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT:
        raise ConfigError(f"the coordinator timeout must be > 0 and at most {MAX_TIMEOUT:,.0f} seconds, got {timeout}")
    return host, int(port)



@dataclasses.dataclass
class Meeting:
    """The processes met: JAX's coordinator address, and the connections kept for the run."""

    hello: Hello
    address: str  # HOST:PORT as given
    jax_coordinator: str  # HOST:PORT of JAX's coordination service
    channels: dict[int, Channel]  # process 0: every other process; the others: {0: process 0}
    listener: socket.socket | None = None  # process 0 keeps answering latecomers


def meet(coordinator: str, hello: Hello, timeout: float) -> Meeting:
    """Meet the other processes of the run at `coordinator` (process 0 serves it) within
    `timeout` seconds; ConfigError with the cause when the run cannot start. A process whose
    hello carries a refusal is told nothing new: it raises its own refusal once the others know."""
    host, port = check_launch(coordinator, hello.num_processes, hello.process_id, timeout)
    if hello.process_id == 0:
        return _serve(host, port, coordinator, hello, timeout)
    return _join(host, port, coordinator, hello, timeout)


def duplicate(process_id: int, address: str) -> str:
    return f"duplicate process id: two processes of the run at {address} were given process id {process_id}"


def _serve(host: str, port: int, address: str, hello: Hello, timeout: float) -> Meeting:
    deadline = time.monotonic() + timeout
    P = hello.num_processes
    try:
        listener = socket.create_server(("", port), family=family(host), backlog=max(16, 2 * P))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            _taken(host, port, address, hello)
        raise ConfigError(f"process 0 cannot serve the run at {address}: {e.strerror or e}") from None
    waiting: list[Channel] = []
    peers: dict[int, Channel] = {}
    refusals = {0: hello.refusal} if hello.refusal else {}
    try:
        while len(peers) < P - 1:
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [i for i in range(1, P) if i not in peers]
                names = ", ".join(map(str, missing))
                which = f"process {names} of {P} never connected" if len(missing) == 1 else \
                    f"processes {names} of {P} never connected"
                if refusals:
                    break
                _refuse_all(peers, f"process {names} of {P} never joined the run at {address} within {timeout:g} s")
                start = "no peer joined" if not peers else "not every process joined"
                raise ConfigError(f"{start} the run at {address} ({which} within {timeout:g} s)")
            for ready in select.select([listener, *waiting], [], [], min(left, 0.2))[0]:
                if ready is listener:
                    try:
                        sock, _ = listener.accept()
                    except OSError:
                        continue
                    channel = Channel(sock)
                    channel.send("welcome", protocol=PROTOCOL, remaining=deadline - time.monotonic())
                    waiting.append(channel)
                    continue
                try:
                    messages = ready.receive()
                except ProtocolError:
                    messages = []
                    ready.close()
                for message in messages:
                    if message["kind"] != "hello":
                        continue
                    other = hello_of(message)
                    if other is None:
                        ready.close()
                        break
                    problem = _mismatch(hello, other, peers, address)
                    if problem:
                        ready.send("refuse", reason=problem)
                        _refuse_all(peers, problem)
                        raise ConfigError(problem)
                    ready.process_id = other.process_id
                    peers[other.process_id] = ready
                    if other.refusal:
                        refusals[other.process_id] = other.refusal
                    break
                if ready.closed or ready.process_id is not None:
                    waiting.remove(ready)
        if refusals:
            first = min(refusals)
            problem = f"process {first} of {P} refused to start: {refusals[first]}"
            _refuse_all(peers, problem)
            raise ConfigError(hello.refusal or problem)
        jax_port = free_port(host)
        for channel in peers.values():
            channel.send("start", port=jax_port)
            channel.heard = time.monotonic()
    except BaseException:
        for channel in waiting:
            channel.close()
        listener.close()
        raise
    for channel in waiting:
        channel.close()
    return Meeting(hello, address, f"{address.rpartition(':')[0]}:{jax_port}", peers, listener)


def _refuse_all(peers: dict[int, Channel], reason: str) -> None:
    for channel in peers.values():
        channel.send("refuse", reason=reason)
        channel.close()


def hello_of(message: dict) -> Hello | None:
    try:
        hello = Hello(**{f.name: message[f.name] for f in dataclasses.fields(Hello)})
    except (KeyError, TypeError):
        return None
    ok = (type(hello.process_id) is int and type(hello.num_processes) is int and isinstance(hello.fingerprint, str)
          and all(v is None or isinstance(v, str) for v in (hello.refusal, hello.resume_from)))
    return hello if ok else None


def _mismatch(mine: Hello, other: Hello, peers: dict, address: str) -> str | None:
    """Why `other` cannot join process 0's run (None if it can)."""
    if other.process_id == 0 or other.process_id in peers:
        return duplicate(other.process_id, address)
    if other.num_processes != mine.num_processes:
        return (f"the processes disagree on the number of processes: process {other.process_id} was given "
                f"{other.num_processes}, process 0 {mine.num_processes}")
    if not 0 < other.process_id < mine.num_processes:
        return f"process id {other.process_id} is out of range for {mine.num_processes} processes"
    if other.fingerprint != mine.fingerprint:
        return (f"the processes disagree on the options: process {other.process_id} was started with other "
                f"options than process 0; start every process with the same options")
    if other.resume_from != mine.resume_from:
        held = ("no checkpoint to resume, process 0's does" if other.resume_from is None else
                "a checkpoint to resume, process 0's none" if mine.resume_from is None else
                "another checkpoint than process 0's")
        return (f"the processes disagree on the run to resume: process {other.process_id}'s output directory holds "
                f"{held}; resume every process from the same checkpoint")
    return None


def _taken(host: str, port: int, address: str, hello: Hello) -> None:
    """Process 0 found its port taken: by another process 0 of sg-jax, or by another program."""
    try:
        channel = Channel(socket.create_connection((host, port), timeout=PORT_PROBE))
    except OSError:
        channel = None
    if channel is not None:
        channel.send("hello", **dataclasses.asdict(hello))
        welcome = next_message(channel, time.monotonic() + PORT_PROBE)
        channel.close()
        if welcome is not None and welcome.get("protocol") == PROTOCOL:
            raise ConfigError(duplicate(0, address))
    raise ConfigError(f"the coordinator port {address} is in use by another program; choose another port")


def _join(host: str, port: int, address: str, hello: Hello, timeout: float) -> Meeting:
    deadline = time.monotonic() + timeout
    who = f"process {hello.process_id} of {hello.num_processes}"
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=max(0.1, min(2.0, deadline - time.monotonic())))
            break
        except OSError as e:
            if time.monotonic() >= deadline:
                raise ConfigError(f"{who} could not join the run at {address} within {timeout:g} s "
                                  f"(the coordinator does not answer: {e.strerror or e})") from None
            time.sleep(0.2)
    channel = Channel(sock, 0)
    channel.send("hello", **dataclasses.asdict(hello))
    in_use = f"{who} could not join the run at {address}: the port is in use by another program"
    try:
        welcome = next_message(channel, deadline)
        if welcome is None:
            raise ConfigError(f"{in_use} (it did not answer within {timeout:g} s)" if not channel.closed
                              else f"{in_use} (it closed the connection)")
        if welcome.get("kind") != "welcome" or welcome.get("protocol") != PROTOCOL:
            raise ConfigError(f"{in_use} (it answered something else)")
        if hello.refusal:  # process 0 has it: this process says its own reason
            raise ConfigError(hello.refusal)
        remaining = welcome.get("remaining")
        remaining = min(float(remaining), MAX_TIMEOUT) if isinstance(remaining, (int, float)) else timeout
        verdict = next_message(channel, time.monotonic() + remaining + VERDICT_MARGIN)
    except ProtocolError:
        channel.close()
        raise ConfigError(f"{in_use} (it answered something else)") from None
    except BaseException:
        channel.close()
        raise
    if verdict is None or verdict.get("kind") not in ("start", "refuse"):
        channel.close()
        raise ConfigError(f"{who}: process 0 ended before the run at {address} started" if channel.closed else
                          f"{who}: process 0 did not start the run at {address} in time")
    if verdict["kind"] == "refuse":
        channel.close()
        raise ConfigError(str(verdict.get("reason"))[:500])
    jax_port = verdict.get("port")
    if type(jax_port) is not int or not 0 < jax_port < 65536:
        channel.close()
        raise ConfigError(f"{in_use} (it answered something else)")
    channel.heard = time.monotonic()
    return Meeting(hello, address, f"{address.rpartition(':')[0]}:{jax_port}", {0: channel})
