"""Assembling a publish from its frames: basic.publish, a content header, body frames.

One per channel. It enforces RabbitMQ's command-assembler rules (rabbit_command_assembler.erl)
and hands each complete message to the channel's publish step.
"""
from __future__ import annotations

from .. import codec, errors
from ..errors import AMQPError
from ..message import Message

MAX_MESSAGE_SIZE = 134217728  # RabbitMQ's default max_message_size

_BODY_EXPECTED = "expected content body, got non content body frame instead"
_HEADER_EXPECTED = "expected content header for class 60, got non content header frame instead"
_METHOD_EXPECTED = "expected method frame, got non method frame instead"
# What a closing channel expects next (`closing` / `skip_*`); a number >= 0 is body bytes.
_CLOSING_METHOD, _CLOSING_HEADER, _CLOSING_CUT = -1, -2, -3


class ContentAssembler:
    __slots__ = ("expecting", "has_header", "_publish", "_header", "_body", "_remaining", "_complete", "_max_size",
                 "_closing")

    def __init__(self, complete, max_size: int = MAX_MESSAGE_SIZE):
        self._complete = complete  # called with (Message, mandatory) when a publish is whole
        self._max_size = max_size  # the broker's max_message_size: a larger body is refused
        # plain flags, read by the engine for every frame of a channel (cheaper than properties)
        self.expecting = False  # a basic.publish waits for its content
        self.has_header = False  # ... and its header has arrived: body frames follow
        self._publish = None  # (exchange, routing_key, mandatory) while content is expected
        self._header = None
        self._body: list[bytes] = []
        self._remaining = 0
        self._closing = _CLOSING_METHOD

    def start(self, exchange: str, routing_key: str, mandatory: bool, immediate: bool) -> None:
        """basic.publish: its content frames follow."""
        if immediate:
            raise AMQPError(errors.NOT_IMPLEMENTED, "immediate=true", *codec.PUBLISH_IDS)
        self._publish = (exchange, routing_key, mandatory)
        self.expecting = True

    def header(self, payload: bytes) -> None:
        """A content header while a publish expects one (the engine checked that, and that it
        holds class-id, weight and body-size: 12 bytes); the property list is checked when the
        message is complete (RabbitMQ's order)."""
        if self._header is not None:
            raise AMQPError(errors.UNEXPECTED_FRAME, _BODY_EXPECTED)
        body_size = _header_body_size(payload)
        if body_size > self._max_size:  # the channel closes (cutting this publish short)
            raise errors.precondition(f"message size {body_size} is larger than configured max size {self._max_size}")
        if body_size == 0:
            self._finish(payload, b"")
            return
        self._header = payload
        self.has_header = True
        self._remaining = body_size

    def body(self, payload: bytes) -> None:
        """A body frame after the header (the engine checked)."""
        remaining = self._remaining - len(payload)
        if remaining == 0 and not self._body:
            # the common case, a body in one frame: _finish inlined (one call less per message)
            exchange, routing_key, mandatory = self._publish
            header = self._header
            self._publish = self._header = None
            self.expecting = self.has_header = False
            self._complete(Message(exchange, routing_key, header, payload), mandatory)
            return
        if remaining < 0:  # more body than announced
            raise AMQPError(errors.UNEXPECTED_FRAME, _BODY_EXPECTED)
        self._body.append(payload)
        self._remaining = remaining
        if remaining == 0:
            body = b"".join(self._body)
            self._body = []
            self._finish(self._header, body)

    def _finish(self, header: bytes, body: bytes) -> None:
        exchange, routing_key, mandatory = self._publish
        self._publish = None
        self._header = None
        self.expecting = self.has_header = False
        self._complete(Message(exchange, routing_key, header, body), mandatory)

    def reset(self) -> None:
        """The channel closed: a publish cut short is dropped."""
        self._publish = None
        self._header = None
        self.expecting = self.has_header = False
        self._body = []

    # -- a closing channel ----------------------------------------------------------------------
    # After our channel.close and until the client's close-ok, RabbitMQ's channel drops every
    # command, but its reader still assembles them (rabbit_command_assembler): a frame out of
    # sequence is a connection error there too. Exception: when the error cut a publish short
    # (we refuse an oversized body at its header, RabbitMQ only once it has it all), the rest
    # of that publish's content is dropped unchecked.

    def closing(self) -> None:
        """Our channel.close is out (call before `reset`): frames now go to the skip_ methods."""
        self._closing = _CLOSING_CUT if self.expecting else _CLOSING_METHOD

    def skip_method(self, is_publish: bool) -> None:
        """A method frame on the closing channel (raises if content was due)."""
        state = self._closing
        if state == _CLOSING_HEADER:
            raise AMQPError(errors.UNEXPECTED_FRAME, _HEADER_EXPECTED, *codec.PUBLISH_IDS)
        if state >= 0:
            raise AMQPError(errors.UNEXPECTED_FRAME, _BODY_EXPECTED, *codec.PUBLISH_IDS)
        self._closing = _CLOSING_HEADER if is_publish else _CLOSING_METHOD

    def skip_content(self, is_header: bool, payload: bytes) -> None:
        """A content header (of at least 12 bytes: the caller checked) or body frame on the
        closing channel."""
        state = self._closing
        if state == _CLOSING_CUT:
            return
        if state == _CLOSING_METHOD:
            raise AMQPError(errors.UNEXPECTED_FRAME, _METHOD_EXPECTED)
        if state == _CLOSING_HEADER:
            if not is_header:
                raise AMQPError(errors.UNEXPECTED_FRAME, _HEADER_EXPECTED, *codec.PUBLISH_IDS)
            body_size = _header_body_size(payload, codec.PUBLISH_IDS)
            self._closing = body_size if body_size else _CLOSING_METHOD
            return
        remaining = state - len(payload)
        if is_header or remaining < 0:
            raise AMQPError(errors.UNEXPECTED_FRAME, _BODY_EXPECTED, *codec.PUBLISH_IDS)
        self._closing = remaining if remaining else _CLOSING_METHOD


def _header_body_size(payload: bytes, ids: tuple = ()) -> int:
    """The body size of a content header of class basic with weight 0, as the command assembler
    requires; 505 otherwise (with the method ids RabbitMQ names there, if any)."""
    class_id, weight, body_size = codec.content_header_fields(payload, 0)
    if class_id != codec.CLASS_BASIC:
        raise AMQPError(
            errors.UNEXPECTED_FRAME, f"expected content header for class 60, got one for class {class_id} instead", *ids
        )
    if weight:
        raise AMQPError(errors.UNEXPECTED_FRAME, _HEADER_EXPECTED, *ids)
    return body_size
