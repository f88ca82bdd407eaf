"""A published message, as the broker holds it.

One Message object is shared by every queue it was routed to (fanout to ten queues keeps one
body in memory). What varies per queue (position, redelivered flag) lives in QueueEntry.

The content header is kept as the raw bytes the publisher sent, so consumers receive exactly
what was published; the few properties the broker reads are peeked lazily.
"""
from __future__ import annotations

from . import codec
from .properties import Properties


class Message:
    __slots__ = (
        "exchange",
        "routing_key",
        "header",
        "body",
        "_props",
        "_xrk",
        "_frames_key",
        "_frames",
        "persistent",
        "store_id",
        "ttl",
        "extra_keys",
    )

    def __init__(self, exchange: str, routing_key: str, header: bytes, body: bytes):
        self.exchange = exchange
        self.routing_key = routing_key
        self.header = header
        self.body = body
        self._props = None
        self._xrk = None
        self._frames_key = None
        self._frames = None
        self.persistent = False
        self.store_id = None  # set by a durable store when the message is written
        self.ttl = None  # per-message TTL in ms (the `expiration` property), if any
        self.extra_keys = None  # CC and BCC routing keys it was routed with (dead-lettering)

    @property
    def props(self) -> Properties:
        props = self._props
        if props is None:
            props = self._props = Properties(self.header)
        return props

    def adopt_properties(self, props: Properties) -> None:
        """Keep properties already parsed from this very header (the publish checks did)."""
        self._props = props

    @property
    def body_size(self) -> int:
        return len(self.body)

    def headers(self):
        """Decoded headers table (None when absent). Only the headers exchange, CC/BCC and
        dead-lettering need it, so nothing else pays for decoding it."""
        return self.props.headers(self.header)

    def replace_header(self, header: bytes) -> None:
        """The broker changed a property (see properties.splice): drop cached encodings."""
        self.header = header
        self._props = None
        self._frames_key = None
        self._frames = None

    @property
    def xrk(self) -> bytes:
        """exchange + routing key as encoded in deliver/get-ok/return, built once."""
        xrk = self._xrk
        if xrk is None:
            xrk = self._xrk = codec.exchange_routing_key(self.exchange, self.routing_key)
        return xrk

    def content(self, channel: int, frame_max: int) -> bytes:
        """Content header + body frames for `channel`; the last encoding is cached because
        consumers almost always sit on the same channel number (1)."""
        key = (channel, frame_max)
        if self._frames_key == key:
            return self._frames
        frames = codec.content_frames(channel, self.header, self.body, frame_max)
        self._frames_key = key
        self._frames = frames
        return frames

    def copy(self) -> "Message":
        """A distinct message with the same content (for routes that change its header)."""
        clone = Message(self.exchange, self.routing_key, self.header, self.body)
        clone.persistent = self.persistent
        clone.ttl = self.ttl
        clone.extra_keys = self.extra_keys
        return clone
