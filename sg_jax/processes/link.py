"""During a multi-process run: heartbeats every second both ways over the connections the
rendezvous opened, and the end of each process with its cause. Process 0 relays what it hears to
the others, so a process that ends, whose connection closes, or that stays silent for the
timeout ends the run for every process (`sg_jax.processes.supervisor` acts on it)."""

from __future__ import annotations

import dataclasses
import select
import time

from sg_jax.processes.channel import Channel, ProtocolError
from sg_jax.processes.rendezvous import PROTOCOL, Meeting, duplicate, hello_of


@dataclasses.dataclass(frozen=True)
class End:
    """A process ended: `status` is its exit status (None: it vanished or fell silent)."""

    process_id: int
    status: int | None
    why: str  # "was interrupted", "stopped answering (no heartbeat for 5 s)", ...


class Link:
    """The meeting's connections during the run: heartbeats every `interval` seconds both ways;
    `poll` reports the processes that ended (process 0 relays every end to the others);
    `announce` tells the others this process ends. A process silent for `silence` seconds is
    reported as ended."""

    def __init__(self, meeting: Meeting, silence: float):
        self.meeting = meeting
        self.silence = silence
        self.interval = min(1.0, silence / 5)
        self.channels = dict(meeting.channels)  # the processes still heard from
        self.late: list[Channel] = []  # latecomers process 0 turns away
        self.beaten = 0.0

    @property
    def hub(self) -> bool:
        return self.meeting.hello.process_id == 0

    def beat(self) -> None:
        if time.monotonic() - self.beaten >= self.interval:
            self.beaten = time.monotonic()
            for channel in self.channels.values():
                channel.send("beat")

    def poll(self, wait: float) -> list[End]:
        """Wait up to `wait` seconds; the ends heard of (or detected) meanwhile."""
        self.beat()
        ends = [self._lost(pid, "is gone (its connection closed mid-run)")
                for pid, channel in list(self.channels.items()) if channel.closed]  # a send failed
        self.late = [channel for channel in self.late if not channel.closed]
        listener = self.meeting.listener
        watched = [*self.channels.values(), *self.late, *([listener] if listener is not None else [])]
        ready = select.select(watched, [], [], wait)[0] if watched else time.sleep(wait) or []
        for item in ready:
            if item is listener:
                self._latecomer()
            elif item in self.late:
                self._turn_away(item)
            else:
                ends += self._read(item)
        now = time.monotonic()
        for pid, channel in list(self.channels.items()):
            if pid in self.channels and now - channel.heard > self.silence:
                ends.append(self._lost(pid, f"stopped answering (no heartbeat for {self.silence:g} s)"))
        return ends

    def _read(self, channel: Channel) -> list[End]:
        pid = channel.process_id
        try:
            messages = channel.receive()
        except ProtocolError:
            messages = []
            channel.close()
        ends = []
        for message in messages:
            if message["kind"] != "end":
                continue
            status = message.get("status")
            end = End(message.get("process_id", pid) if not self.hub else pid,
                      status if type(status) is int else None, str(message.get("why", "ended"))[:300])
            if type(end.process_id) is not int:
                continue
            ends.append(end)
            if end.process_id == pid:
                self.channels.pop(pid, None)
                channel.close()
            if self.hub:
                self._relay(end)
        if channel.closed and self.channels.get(pid) is channel:
            ends.append(self._lost(pid, "is gone (its connection closed mid-run)"))
        return ends

    def _lost(self, pid: int, why: str) -> End:
        channel = self.channels.pop(pid)
        channel.close()
        end = End(pid, None, why)
        if self.hub:
            self._relay(end)
        return end

    def _relay(self, end: End) -> None:
        for pid, channel in self.channels.items():
            if pid != end.process_id:
                channel.send("end", process_id=end.process_id, status=end.status, why=end.why)

    def announce(self, status: int, why: str) -> None:
        """Tell the others this process ends, and close the connections."""
        for channel in self.channels.values():
            channel.send("end", process_id=self.meeting.hello.process_id, status=status, why=why)
            channel.close()
        self.channels.clear()
        self.close()

    def close(self) -> None:
        for channel in [*self.channels.values(), *self.late]:
            channel.close()
        if self.meeting.listener is not None:
            self.meeting.listener.close()
            self.meeting.listener = None

    def _latecomer(self) -> None:
        try:
            sock, _ = self.meeting.listener.accept()
        except OSError:
            return
        channel = Channel(sock)
        channel.send("welcome", protocol=PROTOCOL, remaining=0)
        self.late.append(channel)

    def _turn_away(self, channel: Channel) -> None:
        try:
            messages = channel.receive()
        except ProtocolError:
            messages = []
            channel.close()
        for message in messages:
            other = hello_of(message) if message["kind"] == "hello" else None
            if other is not None:
                channel.send("refuse", reason=duplicate(other.process_id, self.meeting.address)
                             + " (the run has started with every process)")
                channel.close()
        if channel.closed:
            self.late.remove(channel)
