"""Frames for channels that are not open: channel zero, channels never opened, and channels
we are closing. The rules are RabbitMQ's (rabbit_reader, rabbit_channel): a frame that cannot
be a frame at all is `unknown_frame` whatever the state; before connection.open-ok only channel
zero may speak; a channel must be opened with channel.open; after our channel.close only
close-ok (or a crossing close) counts."""
from __future__ import annotations

from .. import codec, errors
from ..codec import FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD
from ..errors import AMQPError
from . import handshake
from .channel import ChannelSession
from .frames import METHOD_EXPECTED, decode_channel_method, not_on_a_channel
from .states import OPENED


def other_frame(session, ftype: int, number: int, channel, payload: bytes) -> None:
    """Raises AMQPError / FrameError for what is not allowed."""
    if ftype == FRAME_METHOD:
        if len(payload) < 4:
            raise codec.unknown_frame(ftype, payload)
    elif ftype == FRAME_HEARTBEAT:
        if payload:
            raise codec.unknown_frame(ftype, payload)
    elif ftype == FRAME_HEADER:
        if len(payload) < 12:
            raise codec.unknown_frame(ftype, payload)
    elif ftype != FRAME_BODY:
        raise codec.unknown_frame(ftype, payload)
    if number == 0:
        handshake.channel_zero(session, ftype, payload)
    elif session.state < OPENED:
        raise AMQPError(errors.UNEXPECTED_FRAME, f"type {ftype}, {codec.payload_snippet(payload)}")
    elif channel is None:
        _unopened(session, ftype, number, payload)
    else:
        _closing_channel(session, channel, ftype, payload)


def _closing_channel(session, channel: ChannelSession, ftype: int, payload: bytes) -> None:
    """RabbitMQ's channel drops every command but channel.open (a connection error) and
    close/close-ok; its reader still decodes methods (an undecodable or unknown one is a
    connection error) and checks the content frame sequence (ContentAssembler.skip_*)."""
    if ftype == FRAME_HEARTBEAT:
        not_on_a_channel(ftype, payload)
    content = channel.content
    if ftype != FRAME_METHOD:
        content.skip_content(ftype == FRAME_HEADER, payload)
        return
    index = codec.method_index(payload)
    content.skip_method(index == codec.BASIC_PUBLISH)
    ids = (index >> 16, index & 0xFFFF)
    if decode_channel_method(index, payload, unknown_ok=True) is None:
        raise AMQPError(errors.COMMAND_INVALID, f"unknown method {ids[0]}/{ids[1]}", *ids)
    if index == codec.CHANNEL_CLOSE_OK:
        session.channels.pop(channel.number, None)
    elif index == codec.CHANNEL_CLOSE:  # crossing ours
        session.send(handshake.channel_close_ok(channel.number))
    elif index == codec.CHANNEL_OPEN:
        raise AMQPError(errors.CHANNEL_ERROR, "second 'channel.open' seen", *ids)


def _unopened(session, ftype: int, number: int, payload: bytes) -> None:
    if ftype == FRAME_HEARTBEAT:
        not_on_a_channel(ftype, payload)
    if ftype != FRAME_METHOD:
        raise AMQPError(errors.UNEXPECTED_FRAME, METHOD_EXPECTED)
    index = codec.method_index(payload)
    decode_channel_method(index, payload, unknown_ok=True)  # decoded first, as RabbitMQ does
    if index != codec.CHANNEL_OPEN:
        raise AMQPError(errors.CHANNEL_ERROR, "expected 'channel.open'", index >> 16, index & 0xFFFF)
    # channel_max limits how many channels are open, not their numbers (as RabbitMQ)
    channels = session.channels
    if len(channels) >= session.channel_max:
        raise AMQPError(
            errors.NOT_ALLOWED,
            f"number of channels opened ({len(channels)}) has reached the "
            f"negotiated channel_max ({session.channel_max})",
        )
    channels[number] = ChannelSession(session, number)
    session.send(handshake.channel_open_ok(number))
