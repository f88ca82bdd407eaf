"""A connection's clock, with time as an argument: one deadline (handshake, close-ok, linger)
and the heartbeat ticks. The engine asks `due(now)` when the adapter's single timer fires;
`wakeup_at` is when that timer should fire next."""
from __future__ import annotations

DEADLINE = 1  # the deadline passed
BEAT = 2  # send a heartbeat: nothing else went out during the last half interval
SILENT = 4  # nothing came in for two heartbeat intervals: the peer is gone


class Timers:
    __slots__ = ("deadline", "_beat_at", "_interval", "_missed", "received", "wakeup_at")

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self._beat_at: float | None = None
        self._interval = 0.0
        self._missed = 0
        self.received = True  # something came in since the last tick
        self.wakeup_at = deadline

    def set_deadline(self, when: float | None) -> None:
        self.deadline = when
        self._update()

    def start_heartbeat(self, now: float, seconds: int) -> None:
        """Heartbeats as negotiated in tune-ok: tick every half interval, send a heartbeat when
        nothing else went out, give up after two intervals of silence (four ticks)."""
        if seconds:
            self._interval = seconds / 2
            self._beat_at = now + self._interval
            self._update()

    def stop_heartbeat(self) -> None:
        self._beat_at = None
        self._update()

    def due(self, now: float, sent: bool) -> int:
        """What is due at `now` (DEADLINE | BEAT | SILENT flags); `sent`: did anything go out
        since the last tick."""
        flags = 0
        if self.deadline is not None and now >= self.deadline:
            self.deadline = None
            flags = DEADLINE
        beat = self._beat_at
        if beat is not None and now >= beat:
            if not sent:
                flags |= BEAT
            self._missed = 0 if self.received else self._missed + 1
            self.received = False
            if self._missed >= 4:
                flags |= SILENT
                self._beat_at = None
            else:
                self._beat_at = now + self._interval
        self._update()
        return flags

    def _update(self) -> None:
        times = [t for t in (self.deadline, self._beat_at) if t is not None]
        self.wakeup_at = min(times) if times else None
