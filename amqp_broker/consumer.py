"""A consumer: one basic.consume on one channel, and the credit rules that gate delivery."""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import codec

if TYPE_CHECKING:  # pragma: no cover
    from .channel import Channel
    from .queue import Queue, QueueEntry


class Consumer:
    __slots__ = (
        "channel",
        "queue",
        "tag",
        "ctag",
        "no_ack",
        "exclusive",
        "prefetch",
        "unacked",
        "priority",
        "arguments",
    )

    def __init__(
        self,
        channel: "Channel",
        queue: "Queue",
        tag: str,
        no_ack: bool,
        exclusive: bool,
        prefetch: int,
        arguments: dict | None = None,
    ):
        self.channel = channel
        self.queue = queue
        self.tag = tag
        self.ctag = codec.shortstr(tag)  # encoded once: it goes into every basic.deliver
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.prefetch = prefetch  # basic.qos(global=false) in force when it was created
        self.unacked = 0
        self.arguments = arguments or {}
        self.priority = 0

    def can_take(self) -> bool:
        """Credit check: socket not backed up, and both prefetch limits (per consumer and
        per channel, as RabbitMQ enforces both) leave room."""
        channel = self.channel
        if channel.paused:
            return False
        if self.no_ack:
            return True
        if self.prefetch and self.unacked >= self.prefetch:
            return False
        limit = channel.global_prefetch
        if limit and channel.unacked_count >= limit:
            return False
        return True

    def deliver(self, entry: "QueueEntry") -> None:
        self.channel.deliver(self, entry)

    def __repr__(self) -> str:
        return f"<Consumer {self.tag!r} on {self.queue.name!r}>"
