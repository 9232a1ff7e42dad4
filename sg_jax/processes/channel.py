"""The connections several processes keep before and during a run: JSON objects, one per line,
over TCP (`sg_jax.processes.rendezvous` and `sg_jax.processes.link` speak through them)."""

from __future__ import annotations

import json
import select
import socket
import time

MAX_LINE = 1 << 16  # bytes: the longest message


class ProtocolError(Exception):
    """The other end does not speak this protocol."""


class Channel:
    """One TCP connection carrying JSON lines; `heard` is when it last received anything."""

    def __init__(self, sock: socket.socket, process_id: int | None = None):
        self.sock = sock
        self.sock.settimeout(2.0)  # for sends; reads happen when select says the socket is readable
        self.process_id = process_id
        self.buffer = b""
        self.inbox: list[dict] = []  # messages received but not yet taken (by `_next`)
        self.closed = False
        self.heard = time.monotonic()

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, kind: str, **fields) -> None:
        if self.closed:
            return
        try:
            self.sock.sendall((json.dumps({"kind": kind, **fields}) + "\n").encode())
        except OSError:
            self.close()

    def receive(self) -> list[dict]:
        """The complete messages that have arrived (call when readable); sets `closed` on EOF."""
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, socket.timeout):
            return []
        except OSError:
            data = b""
        if not data:
            self.close()
            return []
        self.heard = time.monotonic()
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        if len(self.buffer) > MAX_LINE:
            raise ProtocolError("line too long")
        messages = []
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                raise ProtocolError("not JSON") from None
            if not isinstance(message, dict) or not isinstance(message.get("kind"), str):
                raise ProtocolError("not a message")
            messages.append(message)
        return messages

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass


def next_message(channel: Channel, deadline: float) -> dict | None:
    """The next message, or None when the deadline passes or the connection closes."""
    while not channel.inbox:
        left = deadline - time.monotonic()
        if left <= 0 or channel.closed:
            return None
        if select.select([channel], [], [], min(left, 0.2))[0]:
            channel.inbox += channel.receive()
    return channel.inbox.pop(0)


def family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str) -> int:
    with socket.socket(family(host)) as s:
        s.bind(("", 0))
        return s.getsockname()[1]
