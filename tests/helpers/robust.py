"""Shared machinery of the robustness tests: driving one fuzz case and judging the broker's
answer, the pika bystander, broker-log checks (`broker_log` fixture) and broker-state helpers.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time

import pika
import pytest
from pamqp import commands as C

from helpers.broker import BrokerThread
from helpers.fuzz import (
    CHANNEL_CLOSE_CODES,
    CONNECTION_CLOSE_CODES,
    FRAME_MAX,
    PROBE_CHANNEL,
    REPLY_NAMES,
    method,
    missing_bytes,
)
from helpers.pika_client import connect
from helpers.raw import PeerClosed, RawConnection
from helpers.wait import HANG_GUARD, wait_until

# =============================================================================================
# Driving one case


class Verdict:
    def __init__(self):
        self.outcome = ""
        self.problems: list[str] = []


class BadFrame(Exception):
    """The broker sent bytes that are not a valid AMQP frame."""


_INTERESTING = {C.Connection.Close.index, C.Connection.CloseOk.index, C.Channel.Close.index,
                C.Channel.OpenOk.index, C.Basic.QosOk.index}


def recv_frame(conn: RawConnection, timeout: float):
    """Next frame as (type, channel, obj-or-payload). The frames that matter to the verdict
    (closes, open-ok, qos-ok) are decoded with pamqp and must decode; the rest is left raw:
    a delivered message carries the publisher's content header byte for byte (as RabbitMQ
    does), which pamqp may be unable to decode. Raises socket.timeout or PeerClosed."""
    deadline = time.monotonic() + timeout
    while len(conn.buf) < 7:
        conn.fill(deadline)
    ftype, channel, size = struct.unpack_from(">BHI", conn.buf, 0)
    if ftype not in (1, 2, 3, 8):
        raise BadFrame(f"frame type {ftype} from the broker")
    if size > FRAME_MAX:
        raise BadFrame(f"frame of {size} bytes from the broker (frame_max {FRAME_MAX})")
    while len(conn.buf) < 8 + size:
        conn.fill(deadline)
    raw = bytes(conn.buf[: 8 + size])
    del conn.buf[: 8 + size]
    if raw[-1] != 0xCE:
        raise BadFrame(f"bad frame-end {raw[-1]:#x} from the broker")
    payload = raw[7:-1]
    if ftype == 1:
        if size < 4:
            raise BadFrame(f"method frame of {size} bytes from the broker")
        index = struct.unpack_from(">I", payload)[0]
        if index not in C.INDEX_MAPPING:
            raise BadFrame(f"unknown method {index:#x} from the broker")
        if index in _INTERESTING:
            try:
                return ftype, channel, _decode_method(index, payload)
            except Exception as exc:  # noqa: BLE001
                raise BadFrame(f"undecodable {C.INDEX_MAPPING[index].name} from the broker: {exc!r}") from None
    return ftype, channel, payload


def _decode_method(index: int, payload: bytes):
    """A pamqp method object; close methods are decoded here because their reply text may
    quote a name that is not UTF-8 byte for byte, as RabbitMQ does (pamqp refuses those):
    such bytes come back as surrogate escapes."""
    cls = C.INDEX_MAPPING[index]
    obj = cls.__new__(cls)
    if cls in (C.Connection.Close, C.Channel.Close):
        code, length = struct.unpack_from(">HB", payload, 4)
        end = 7 + length
        if end + 4 != len(payload):
            raise ValueError(f"{cls.name} payload of {len(payload)} bytes for a {length}-byte text")
        obj.reply_code = code
        obj.reply_text = payload[7:end].decode("utf-8", "surrogateescape")
        obj.class_id, obj.method_id = struct.unpack_from(">HH", payload, end)
        return obj
    obj.unmarshal(payload[4:])
    return obj


def drive(url: str, data: bytes) -> Verdict:
    """Handshake, channel.open 1, send `data` + a probe, and judge what comes back."""
    v = Verdict()
    conn = RawConnection.connect(url, timeout=HANG_GUARD)
    try:
        conn.open_channel(1)
        probe = method(PROBE_CHANNEL, C.Channel.Open)
        partial = missing_bytes(data + probe)
        try:
            conn.send_bytes(data + probe)
        except OSError:
            pass  # the broker may already have given up on us; the reads below tell
        deadline = time.monotonic() + (0.3 if partial else HANG_GUARD)
        padded = False
        while True:
            try:
                _t, ch, obj = recv_frame(conn, max(0.001, deadline - time.monotonic()))
            except (socket.timeout, TimeoutError):
                if padded or not partial:
                    v.problems.append(
                        "no answer: neither open-ok for the probe nor a close, socket still open"
                        + (" (even after padding the incomplete frame)" if padded else "")
                    )
                    v.outcome = "hang"
                    return v
                # The input ended inside a frame, so the probe was swallowed into it: complete
                # that frame with zeros (a bad frame-end), which must get 501 or a close.
                try:
                    conn.send_bytes(b"\x00" * partial)
                except OSError:
                    pass
                padded = True
                deadline = time.monotonic() + HANG_GUARD
                continue
            except PeerClosed:
                # Allowed (RabbitMQ itself drops the socket on an unknown class/method id); a
                # drop caused by an exception escaping the broker shows up in its log instead.
                v.outcome = "socket closed without connection.close"
                return v
            except BadFrame as exc:
                v.outcome = "bad frame"
                v.problems.append(f"the broker sent an invalid frame: {exc}")
                return v
            except OSError as exc:
                v.outcome = "socket error"
                v.problems.append(f"socket error {exc!r} without connection.close")
                return v
            if isinstance(obj, C.Connection.Close):
                if ch != 0:
                    v.problems.append(f"connection.close on channel {ch}")
                bad = _check_close(obj, channel_level=False)
                if bad:
                    v.problems.append(bad)
                v.outcome = f"connection.close {obj.reply_code}" + (" after padding" if padded else "")
                try:
                    conn.send_frame(C.Connection.CloseOk(), 0)
                except OSError:
                    pass
                if not conn.wait_closed(HANG_GUARD):
                    v.problems.append("socket not closed after connection.close-ok")
                return v
            if isinstance(obj, C.Connection.CloseOk):
                v.outcome = "closed by the input's own connection.close"
                conn.wait_closed(HANG_GUARD)
                return v
            if isinstance(obj, C.Channel.Close):
                bad = _check_close(obj, channel_level=True)
                if bad:
                    v.problems.append(bad)
                if ch == PROBE_CHANNEL:
                    v.problems.append("the probe's channel.open was answered by channel.close")
                try:
                    conn.send_frame(C.Channel.CloseOk(), ch)
                except OSError:
                    pass
                continue  # the probe is still to be answered
            if isinstance(obj, C.Channel.OpenOk) and ch == PROBE_CHANNEL:
                v.outcome = "answered" if not padded else "answered after padding"
                if padded:
                    v.problems.append("padding a frame should have caused a 501")
                return v
            # anything else (declare-ok, deliveries, returns, heartbeats...) is fine
    finally:
        conn.close()


def _check_close(obj, channel_level: bool) -> str | None:
    code, text = obj.reply_code, obj.reply_text or ""
    allowed = CHANNEL_CLOSE_CODES if channel_level else CONNECTION_CLOSE_CODES
    kind = "channel.close" if channel_level else "connection.close"
    if not channel_level and (code, text) == (541, "INTERNAL_ERROR"):
        return None  # RabbitMQ's own answer to an undecodable property list (see below)
    if code not in allowed:
        return f"{kind} with code {code} {text!r}"
    if not text.startswith(f"{REPLY_NAMES[code]} - "):
        return f"{kind} {code} with a reply text not in RabbitMQ's 'NAME - explanation' form: {text!r}"
    return None


# =============================================================================================
# Fixtures and helpers


def broker_log_errors(records) -> list[logging.LogRecord]:
    """ERROR records from the broker ("amqp_broker.*") or from asyncio on its behalf (an
    exception escaping a protocol callback is logged by asyncio, then the socket is dropped)."""
    return [
        r for r in records
        if r.levelno >= logging.ERROR and (r.name.startswith("amqp_broker") or r.name == "asyncio")
    ]


def describe_record(record: logging.LogRecord) -> str:
    text = record.getMessage().splitlines()[0]
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        tb = exc.__traceback__
        where = ""
        while tb is not None:
            where = f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno} " \
                    f"in {tb.tb_frame.f_code.co_name}"
            tb = tb.tb_next
        text += f" -- {type(exc).__name__}: {exc} (raised at {where})"
    return text


def bug_key(record: logging.LogRecord) -> str:
    """Groups log records by exception type and the last three frames of its traceback (one
    key per distinct bug)."""
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        frames = []
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            frames.append(f"{code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}({code.co_name})")
            tb = tb.tb_next
        return f"{type(exc).__name__} at " + " <- ".join(reversed(frames[-3:]))
    return record.getMessage()[:80]


@pytest.fixture
def broker_log(caplog):
    """Captures ERROR records of the broker (logger "amqp_broker") and of asyncio."""
    caplog.set_level(logging.ERROR, logger="amqp_broker")
    caplog.set_level(logging.ERROR, logger="asyncio")
    return caplog


class Bystander(threading.Thread):
    """A well-behaved pika client publishing and consuming round trips in a loop; it must
    see every message, intact and in order, and never an error. Its progress is counted
    (`received`), never timed: how fast a round trip is depends on the machine."""

    def __init__(self, url: str, name: str, pause: float = 0.002):
        super().__init__(name=f"bystander-{name}", daemon=True)
        self.url = url
        self.queue = f"bystander-{name}"
        self.pause = pause
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.sent = 0
        self.received = 0
        self.errors: list[str] = []

    def run(self) -> None:
        conn = None
        try:
            conn = connect(self.url)
            ch = conn.channel()
            ch.confirm_delivery()
            ch.queue_declare(self.queue, exclusive=True)
            gen = ch.consume(self.queue, auto_ack=False, inactivity_timeout=HANG_GUARD)
            self.ready.set()
            while not self.stop_event.is_set():
                n = self.sent
                payload = f"bystander message {n}".encode() * 3
                ch.basic_publish("", self.queue, payload, pika.BasicProperties(
                    message_id=str(n), headers={"n": n}, delivery_mode=2))
                self.sent += 1
                method_frame, props, got = next(gen)
                if method_frame is None:
                    self.errors.append(f"message {n} not delivered within {HANG_GUARD} s")
                    return
                if got != payload or props.message_id != str(n) or props.headers != {"n": n}:
                    self.errors.append(f"message {n} came back altered: {got[:40]!r} {props}")
                    return
                ch.basic_ack(method_frame.delivery_tag)
                self.received += 1
                if self.pause:
                    time.sleep(self.pause)
            ch.cancel()
            ch.queue_delete(self.queue)
        except Exception as exc:  # noqa: BLE001 - reported by check()
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.ready.set()
            if conn is not None and conn.is_open:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass

    def __enter__(self) -> "Bystander":
        self.start()
        assert self.ready.wait(10), "bystander did not start"
        assert not self.errors, self.errors
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.join(2 * HANG_GUARD)

    def wait_round_trips(self, n: int) -> bool:
        """Wait until `n` round trips were completed in all (a hang guard, not a speed
        bound): "others are served meanwhile" as a count of what happened."""
        wait_until(lambda: self.received >= n or self.errors or not self.is_alive())
        return self.received >= n

    def check(self, min_round_trips: int = 1) -> None:
        assert not self.is_alive(), "bystander did not stop"
        assert not self.errors, f"the bystander connection was affected: {self.errors}"
        assert self.received == self.sent, (self.sent, self.received)
        assert self.received >= min_round_trips, self.received


def hard_close(conn: RawConnection) -> None:
    """Drop the TCP connection with a RST, as a killed process would."""
    try:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    conn.close()


def broker_conn_for(own_broker: BrokerThread, raw: RawConnection):
    """The broker's ClientConnection serving `raw` (matched by the client's address)."""
    local = raw.sock.getsockname()[:2]
    for conn in list(own_broker.broker.connections):
        peer = conn.session.peer
        if peer and tuple(peer[:2]) == tuple(local):
            return conn
    return None


def assert_broker_healthy(own_broker: BrokerThread, uid: str) -> None:
    """The broker thread runs and a brand-new client can declare, publish and get."""
    assert own_broker.is_alive(), "the broker thread died"
    conn = connect(own_broker.url)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        q = f"health-{uid}"
        ch.queue_declare(q, exclusive=True)
        ch.basic_publish("", q, b"still alive", pika.BasicProperties(content_type="text/plain"))
        method_frame, props, got = ch.basic_get(q, auto_ack=True)
        assert method_frame is not None and got == b"still alive"
        assert props.content_type == "text/plain"
    finally:
        conn.close()
