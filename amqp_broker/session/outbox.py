"""What a connection has to send, collected between two writes.

Frames are appended as they are produced and joined into one write by the adapter
(`drain`). Publisher confirms are not frames yet: channels with settled confirms are only
noted, and their confirms are coalesced (confirms.py) when the output is drained, so a burst
of publishes costs one basic.ack. While the engine handles a read, the adapter writes after it
anyway; output produced at any other time (a delivery caused by another connection, confirms
after a disk commit) calls `on_output` once, so the adapter schedules a single flush.
"""
from __future__ import annotations

from ..codec import HEARTBEAT_FRAME


def _no_wakeup() -> None:
    return None


class Outbox:
    __slots__ = ("_frames", "_confirm_channels", "receiving", "_wakeup_pending", "on_output", "sent_seen")

    def __init__(self) -> None:
        self._frames: list[bytes] = []
        self._confirm_channels: set = set()
        self.receiving = False  # the engine is handling a read: the adapter writes after it
        self._wakeup_pending = False
        self.on_output = _no_wakeup  # the adapter's "output is pending" callback
        self.sent_seen = False  # something was written since the last heartbeat tick

    def send(self, data: bytes) -> None:
        self._frames.append(data)
        if not self.receiving and not self._wakeup_pending:
            self._wakeup_pending = True
            self.on_output()

    def confirms_ready(self, channel) -> None:
        """`channel` has settled publisher confirms to send with the next write."""
        self._confirm_channels.add(channel)
        if not self.receiving and not self._wakeup_pending:
            self._wakeup_pending = True
            self.on_output()

    def drain(self) -> bytes:
        """Everything to write now, coalesced publisher confirms included."""
        self._wakeup_pending = False
        frames = self._frames
        if self._confirm_channels:
            for channel in self._confirm_channels:
                if channel.open:
                    frames.extend(channel.confirm_frames())
            self._confirm_channels.clear()
        if not frames:
            return b""
        self._frames = []
        if len(frames) == 1:
            if frames[0] is not HEARTBEAT_FRAME:  # our own heartbeat does not count as traffic
                self.sent_seen = True
            return frames[0]
        self.sent_seen = True
        return b"".join(frames)

    def forget_channel(self, channel) -> None:
        self._confirm_channels.discard(channel)

    def clear(self) -> None:
        self._frames = []
        self._confirm_channels.clear()
