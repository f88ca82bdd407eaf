"""Consuming: message bodies (large, split into frame_max frames, empty) and properties that
round-trip through the broker (pika, aio-pika, byte-exact with the raw client), user-id and
expiration validation.

Every expectation here was checked against a real RabbitMQ 3.x (run with AMQP_REFERENCE_URL).
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import os
import struct

import aio_pika
import pika
import pika.exceptions
import pytest
import pamqp.decode
import pamqp.encode
from pamqp import commands

from helpers.pika_client import conn, queue  # noqa: F401 - pytest fixtures
from helpers.pika_client import pump, ready_count, url_user, wait_ready
from helpers.raw_content import raw  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------------------------
# bodies
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [131072 - 8, 131072 - 7, 300 * 1024, 1024 * 1024])
def test_large_body_integrity_consume(conn, queue, size):
    q = queue()
    body = os.urandom(size)
    ch = conn.channel()
    ch.basic_publish("", q, body)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
    assert pump(conn, lambda: got, timeout=5)
    assert len(got[0]) == size
    assert hashlib.sha256(got[0]).digest() == hashlib.sha256(body).digest()


def test_large_body_integrity_get(conn, queue):
    q = queue()
    bodies = [os.urandom(300 * 1024), os.urandom(1024 * 1024), b"small"]
    ch = conn.channel()
    for b in bodies:
        ch.basic_publish("", q, b)
    got = [ch.basic_get(q, auto_ack=True)[2] for _ in bodies]
    assert got == bodies


def test_large_body_is_split_into_frame_max_frames(raw, queue):
    q = queue()
    raw.open_channel(1)
    body = os.urandom(300 * 1024)
    raw.publish(1, "", q, body)
    raw.send(1, commands.Basic.Get(queue=q, no_ack=True))
    raw.expect(1, commands.Basic.GetOk)
    ftype, _, _hdr = raw.recv_frame()
    assert ftype == 2
    sizes = []
    total = 0
    while total < len(body):
        ftype, _, chunk = raw.recv_frame()
        assert ftype == 3
        sizes.append(len(chunk))
        total += len(chunk)
    assert max(sizes) <= raw.frame_max - 8
    assert sizes[:-1] == [raw.frame_max - 8] * (len(sizes) - 1)


async def test_large_body_aio_pika(amqp_url, uid):
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(f"test-consume-aio-big-{uid}", auto_delete=True)
        body = os.urandom(1024 * 1024 + 17)
        await ch.default_exchange.publish(aio_pika.Message(body), routing_key=q.name)
        async with q.iterator() as it:
            async for m in it:
                async with m.process():
                    assert m.body == body
                break


def test_empty_body(conn, queue):
    q = queue()
    ch = conn.channel()
    ch.basic_publish("", q, b"", pika.BasicProperties(content_type="text/plain"))
    ch.basic_publish("", q, b"")
    m, p, b = ch.basic_get(q, auto_ack=True)
    assert b == b"" and p.content_type == "text/plain"
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
    assert pump(conn, lambda: got)
    assert got == [b""]


def test_empty_body_has_no_body_frame(raw, queue):
    q = queue()
    raw.open_channel(1)
    raw.publish(1, "", q, b"")
    raw.publish(1, "", q, b"after")
    raw.send(1, commands.Basic.Get(queue=q, no_ack=True))
    raw.expect(1, commands.Basic.GetOk)
    _props, body = raw.read_content(1)
    assert body == b""
    # next frame is the next method, not an empty body frame
    raw.send(1, commands.Basic.Get(queue=q, no_ack=True))
    raw.expect(1, commands.Basic.GetOk)
    assert raw.read_content(1)[1] == b"after"


# --------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------

def full_pika_properties(user: str) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json",
        content_encoding="gzip",
        headers={
            "str": "héllo wörld",
            "int_small": 7,
            "int_neg": -1,
            "int32_max": 2**31 - 1,
            "int32_min": -(2**31),
            "int64_big": 2**40 + 3,
            "int64_max": 2**63 - 1,
            "int64_min": -(2**63),
            "bool_t": True,
            "bool_f": False,
            "decimal": decimal.Decimal("3.14"),
            "timestamp": datetime.datetime(2024, 5, 17, 12, 30, 45, tzinfo=datetime.timezone.utc),
            "bytes": b"\x00\x01\xfe\xff",
            "void": None,
            "array": [1, "two", [3, 4], {"k": "v"}, True, None],
            "nested": {"a": {"b": {"c": [1, 2, {"d": "deep"}]}}, "e": 2**33},
            "empty_table": {},
            "empty_array": [],
            "empty_str": "",
        },
        delivery_mode=2,
        priority=5,
        correlation_id="corr-123",
        reply_to="reply-queue",
        expiration="315360000000",
        message_id="msg-1",
        timestamp=1_700_000_000,
        type="my.type",
        user_id=user,
        app_id="the-app",
    )


def props_dict(p: pika.BasicProperties) -> dict:
    return {k: getattr(p, k) for k in (
        "content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id",
        "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id")}


def test_properties_round_trip_pika_consume(conn, queue, amqp_url):
    q = queue()
    sent = full_pika_properties(url_user(amqp_url))
    ch = conn.channel()
    ch.basic_publish("", q, b"payload", sent)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((p, b)), auto_ack=True)
    assert pump(conn, lambda: got)
    props, body = got[0]
    assert body == b"payload"
    assert props_dict(props) == props_dict(sent)


def test_properties_round_trip_pika_get(conn, queue, amqp_url):
    q = queue()
    sent = full_pika_properties(url_user(amqp_url))
    ch = conn.channel()
    ch.basic_publish("", q, b"payload", sent)
    _m, props, body = ch.basic_get(q, auto_ack=True)
    assert body == b"payload"
    assert props_dict(props) == props_dict(sent)


def test_no_properties_stay_absent(conn, queue):
    q = queue()
    ch = conn.channel()
    ch.basic_publish("", q, b"bare")
    _m, p, _b = ch.basic_get(q, auto_ack=True)
    assert all(v is None for v in props_dict(p).values())


async def test_properties_round_trip_aio_pika(amqp_url, uid):
    user = url_user(amqp_url)
    headers = {
        "float": 1.25,
        "double": 3.141592653589793,
        "neg_float": -0.5,
        "int": 42,
        "big": 2**62,
        "bool": True,
        "str": "text",
        "list": [1, 2.5, "x", [True]],
        "table": {"inner": {"x": 1}},
        "decimal": decimal.Decimal("1.5"),
    }
    ts = datetime.datetime(2023, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(f"test-consume-aio-props-{uid}", auto_delete=True)
        msg = aio_pika.Message(
            b"body", headers=headers, content_type="text/x", content_encoding="utf-8",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT, priority=9, correlation_id="cid",
            reply_to="rq", expiration=86400, message_id="mid", timestamp=ts, type="t",
            user_id=user, app_id="aid")
        await ch.default_exchange.publish(msg, routing_key=q.name)
        got = await q.get(timeout=5, no_ack=True)
        assert got.body == b"body"
        assert got.content_type == "text/x" and got.content_encoding == "utf-8"
        assert got.delivery_mode == aio_pika.DeliveryMode.PERSISTENT and got.priority == 9
        assert got.correlation_id == "cid" and got.reply_to == "rq" and got.message_id == "mid"
        assert got.type == "t" and got.user_id == user and got.app_id == "aid"
        assert got.expiration == 86400
        assert got.timestamp == ts
        # what the client library itself makes of an encode/decode round trip (pamqp sends
        # Python floats as 32-bit 'f'): the broker must not change anything on top of that
        expected = pamqp.decode.field_table(pamqp.encode.field_table(headers))[1]
        await q.delete(if_empty=False)
        assert got.headers == expected


# Field-table encoding by hand: every field type RabbitMQ's table parser knows (3.x).
def _ss(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">B", len(b)) + b


def _ls(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _table(items: list[tuple[str, bytes]]) -> bytes:
    return _ls(b"".join(_ss(k) + v for k, v in items))


ALL_FIELD_VALUES = [
    ("t", b"t\x01"),
    ("b", b"b" + struct.pack(">b", -5)),
    ("B", b"B" + struct.pack(">B", 250)),
    ("s", b"s" + struct.pack(">h", -300)),
    ("u", b"u" + struct.pack(">H", 65000)),
    ("I", b"I" + struct.pack(">i", -70000)),
    ("i", b"i" + struct.pack(">I", 4_000_000_000)),
    ("l", b"l" + struct.pack(">q", -(2**62))),
    ("L", b"L" + struct.pack(">Q", 2**63 + 5)),
    ("f", b"f" + struct.pack(">f", 1.5)),
    ("d", b"d" + struct.pack(">d", 3.141592653589793)),
    ("D", b"D" + struct.pack(">Bi", 2, 12345)),
    ("S", b"S" + _ls("héllo".encode())),
    ("S-binary", b"S" + _ls(b"\xff\xfe\x00not utf8")),
    ("T", b"T" + struct.pack(">Q", 1_700_000_000)),
    ("V", b"V"),
    ("x", b"x" + _ls(b"\x00\xff\x01")),
    ("A", b"A" + _ls(b"I" + struct.pack(">i", 1) + b"S" + _ls(b"two") + b"A" + _ls(b"t\x00"))),
    ("F", b"F" + _table([("inner", b"F" + _table([("deep", b"l" + struct.pack(">q", 2**40))]))])),
    ("long-key-" + "k" * 100, b"S" + _ls(b"v")),
]


def raw_properties(user: str) -> bytes:
    """Every basic property set (flags 0xFFF8, no cluster-id), in wire order."""
    flags = 0
    for bit in range(15, 2, -1):
        flags |= 1 << bit
    return b"".join([
        struct.pack(">H", flags),
        _ss("application/octet-stream"),      # content-type
        _ss("identity"),                      # content-encoding
        _table(ALL_FIELD_VALUES),             # headers
        struct.pack(">B", 2),                 # delivery-mode
        struct.pack(">B", 3),                 # priority
        _ss("corr"),                          # correlation-id
        _ss("reply"),                         # reply-to
        _ss("315360000000"),                  # expiration
        _ss("mid-1"),                         # message-id
        struct.pack(">Q", 1_700_000_123),     # timestamp
        _ss("kind"),                          # type
        _ss(user),                            # user-id
        _ss("app"),                           # app-id
    ])


@pytest.mark.parametrize("via", ["get", "consume"])
def test_properties_are_byte_exact_through_the_broker(raw, queue, amqp_url, via):
    q = queue()
    props = raw_properties(url_user(amqp_url))
    raw.open_channel(1)
    raw.publish(1, "", q, b"exact", props_raw=props)
    if via == "get":
        raw.send(1, commands.Basic.Get(queue=q, no_ack=True))
        raw.expect(1, commands.Basic.GetOk)
    else:
        raw.send(1, commands.Basic.Consume(queue=q, consumer_tag="c", no_ack=True))
        raw.expect(1, commands.Basic.ConsumeOk)
        raw.expect(1, commands.Basic.Deliver)
    got_props, body = raw.read_content(1)
    assert body == b"exact"
    assert got_props == props


def test_headers_byte_exact_to_pika_consumer(raw, queue, conn):
    """A pika consumer decodes the hand-encoded table the way it was written."""
    q = queue()
    raw.open_channel(1)
    props = struct.pack(">H", 1 << 13) + _table([
        ("b", b"b" + struct.pack(">b", -5)),
        ("s", b"s" + struct.pack(">h", -300)),
        ("I", b"I" + struct.pack(">i", -70000)),
        ("l", b"l" + struct.pack(">q", -(2**62))),
        ("t", b"t\x01"),
        ("S", b"S" + _ls(b"str")),
    ])
    raw.publish(1, "", q, b"x", props_raw=props)
    ch = conn.channel()
    assert wait_ready(ch, q, 1) == 1
    _m, p, _b = ch.basic_get(q, auto_ack=True)
    assert p.headers == {"b": -5, "s": -300, "I": -70000, "l": -(2**62), "t": True, "S": "str"}


def test_user_id_matching_login_is_accepted(conn, queue, amqp_url):
    q = queue()
    user = url_user(amqp_url)
    ch = conn.channel()
    ch.basic_publish("", q, b"x", pika.BasicProperties(user_id=user))
    _m, p, _b = ch.basic_get(q, auto_ack=True)
    assert p.user_id == user


def test_wrong_user_id_is_rejected(conn, queue, amqp_url):
    q = queue()
    user = url_user(amqp_url)
    ch = conn.channel()
    ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="mallory"))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, passive=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == \
        f"PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was '{user}'"
    assert ready_count(conn.channel(), q) == 0


@pytest.mark.parametrize("expiration", ["0", "86400000", "4294967296", "315360000000"])
def test_valid_expiration_round_trips(conn, queue, expiration):
    q = queue()
    ch = conn.channel()
    ch.basic_publish("", q, b"x", pika.BasicProperties(expiration=expiration))
    ch.basic_publish("", q, b"y")
    if expiration == "0":
        # expires at once unless delivered immediately: gone from an idle queue
        _m, p, b = ch.basic_get(q, auto_ack=True)
        assert b == b"y"
        return
    _m, p, b = ch.basic_get(q, auto_ack=True)
    assert (b, p.expiration) == (b"x", expiration)


@pytest.mark.parametrize("expiration,detail", [
    ("315360000001", "{value_too_large,315360000001}"),
    ("-1", "{value_negative,-1}"),
    ("abc", "no_integer"),
    ("", "no_integer"),
])
def test_invalid_expiration_is_rejected(conn, queue, expiration, detail):
    q = queue()
    ch = conn.channel()
    ch.basic_publish("", q, b"x", pika.BasicProperties(expiration=expiration))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, passive=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == f"PRECONDITION_FAILED - invalid expiration '{expiration}': {detail}"
