"""Frame-level rules shared by the engine's states: RabbitMQ's texts for frames that arrive
where they may not, and the strict decoding of channel methods."""
from __future__ import annotations

from .. import codec, errors
from ..codec import FRAME_HEARTBEAT, FrameError
from ..errors import AMQPError

METHOD_EXPECTED = "expected method frame, got non method frame instead"


def content_expected(content) -> str:
    """The text for a frame that is not the content a publish still waits for."""
    if content.has_header:
        return "expected content body, got non content body frame instead"
    return "expected content header for class 60, got non content header frame instead"


def not_on_a_channel(ftype: int, payload: bytes):
    """A heartbeat (or an unknown frame type) on a channel other than zero: always raises."""
    if ftype == FRAME_HEARTBEAT and not payload:
        raise AMQPError(errors.UNEXPECTED_FRAME, f"type 8, {codec.payload_snippet(payload)}")
    raise codec.unknown_frame(ftype, payload)


def decode_channel_method(index: int, payload: bytes, unknown_ok: bool = False):
    """A channel method (pamqp object). Fields that do not parse: 501 `cannot decode`
    naming the method; a short string not UTF-8: 501 with class/method 0, as RabbitMQ."""
    try:
        return codec.decode_method(payload)
    except KeyError:
        if unknown_ok:
            return None
        raise AMQPError(errors.COMMAND_INVALID, f"unknown method {index >> 16}/{index & 0xFFFF}") from None
    except codec.MalformedUtf8:
        raise FrameError(errors.FRAME_ERROR, codec.MALFORMED_UTF8) from None
