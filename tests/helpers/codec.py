"""Helpers of the codec unit tests (test_codec_unit*.py): sample values (delivery tags, channels,
names) and method payload builders checked against pamqp (frames: helpers.raw.raw_frame).
"""

from __future__ import annotations

from pamqp import frame as pframe

TAGS = [0, 1, 2, 255, 256, 2**16, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63,
        2**64 - 2, 2**64 - 1]
CHANNELS = [1, 2, 255, 256, 2047, 65535]
# names pamqp's validate() accepts (so pamqp can build the reference frame)
EXCHANGES = ["", "amq.direct", "x", "a-b_c.d:e@f#g,h/i+j k", "e" * 127]
ROUTING_KEYS = ["", "rk", "a.b.c", "#", "*.x.#", "k" * 200, "r" * 255]
CONSUMER_TAGS = ["c", "ctag-1", "amq.ctag-AbCdEf0123456789_-", "t" * 255]


def s64(tag: int) -> int:
    """pamqp packs AMQP's (unsigned) longlong with a *signed* struct ('>q'), so it cannot take
    delivery tags >= 2**63. The signed number with the same 8 bytes lets pamqp build (and
    decode) the reference frame for every tag up to 2**64-1."""
    return tag - 2**64 if tag >= 2**63 else tag


def method_payload(obj) -> bytes:
    """The payload of pamqp's method frame (class/method id + arguments)."""
    return pframe.marshal(obj, 1)[7:-1]


def pamqp_unmarshal(data: bytes):
    consumed, channel, obj = pframe.unmarshal(data)
    assert consumed == len(data)
    return channel, obj
