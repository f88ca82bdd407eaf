#!/usr/bin/env python3
"""AMQP 0-9-1 load generator: measures any broker (ours, RabbitMQ) with the same cheap client.

The client is independent of the broker's code (it never imports amqp_broker). It is a small
hand-written asyncio client over raw sockets (uvloop when available):

* the handshake and rare methods (queue.declare, basic.consume, ...) are encoded and decoded
  with pamqp;
* the hot paths never touch pamqp: a publish (method + header + body frames) is built once and
  written in big batches (``frame * k`` in one ``transport.write``); incoming frames are split with
  one ``struct.unpack_from`` each and only basic.ack/nack (confirms) and basic.deliver + content
  header + body (consumers) are looked at, by offset; consumers ack with multiple=true.

Usage (see benchmarks/README.md)::

    python benchmarks/amqp_bench.py --url rabbitmq=amqp://guest:guest@127.0.0.1:5673/
    python benchmarks/amqp_bench.py --start-own --url rabbitmq=amqp://guest:guest@127.0.0.1:5673/
    python benchmarks/amqp_bench.py --start-own --scenario ttl   # TTL cost, expiry lateness

Function API (used by tests/test_benchmark_smoke.py)::

    result = await run_scenario("e2e", url, count=200, size=100)
    result["counts"]   # {"published": 200, "confirmed": 200, "nacked": 0, "delivered": 200}
    result["metrics"]  # {"msg/s": ..., "p50 ms": ..., "p99 ms": ..., "client CPU %": ...}
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from urllib.parse import unquote, urlparse

from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

__all__ = ["SCENARIOS", "ALL_SCENARIOS", "run_scenario", "BenchError", "BrokerClosed", "main"]

# --------------------------------------------------------------------------------------------
# Wire-level helpers (hot path: plain struct, no pamqp)

FRAME_END = b"\xce"
_FH = struct.Struct(">BHI")          # frame type, channel, payload size
_FH_unpack = _FH.unpack_from
_U32_unpack = struct.Struct(">I").unpack_from
_U64 = struct.Struct(">Q")
_U64_unpack = _U64.unpack_from
_U64_pack = _U64.pack
_ACK = struct.Struct(">BHIHHQB")     # method frame basic.ack: type, ch, size, class, method, tag, bits

M_DELIVER = (60 << 16) | 60
M_ACK = (60 << 16) | 80
M_NACK = (60 << 16) | 120

# basic properties flags
P_CONTENT_TYPE, P_CONTENT_ENCODING, P_HEADERS, P_DELIVERY_MODE = 1 << 15, 1 << 14, 1 << 13, 1 << 12
P_PRIORITY, P_CORRELATION_ID, P_REPLY_TO, P_EXPIRATION = 1 << 11, 1 << 10, 1 << 9, 1 << 8

DEFAULT_FRAME_MAX = 131072


def _shortstr(s: bytes) -> bytes:
    if len(s) > 255:
        raise ValueError(f"shortstr too long: {s[:40]!r}...")
    return bytes((len(s),)) + s


def method_publish(ch: int, exchange: bytes, routing_key: bytes) -> bytes:
    payload = struct.pack(">HHH", 60, 40, 0) + _shortstr(exchange) + _shortstr(routing_key) + b"\x00"
    return _FH.pack(1, ch, len(payload)) + payload + FRAME_END


def content_frames(ch: int, flags: int, props: bytes, body: bytes, frame_max: int) -> bytes:
    hp = struct.pack(">HHQH", 60, 0, len(body), flags) + props
    out = [_FH.pack(2, ch, len(hp)), hp, FRAME_END]
    step = frame_max - 8
    for i in range(0, len(body), step):
        chunk = body[i:i + step]
        out += [_FH.pack(3, ch, len(chunk)), chunk, FRAME_END]
    return b"".join(out)


def ack_frame(ch: int, tag: int, multiple: bool = True) -> bytes:
    return _ACK.pack(1, ch, 13, 60, 80, tag, 1 if multiple else 0) + FRAME_END


def parse_rpc_props(buf, p: int) -> tuple[bytes | None, bytes | None]:
    """(correlation_id, reply_to) from a content-header payload starting at p (class id)."""
    flags = (buf[p + 12] << 8) | buf[p + 13]
    i = p + 14
    if flags & P_CONTENT_TYPE:
        i += 1 + buf[i]
    if flags & P_CONTENT_ENCODING:
        i += 1 + buf[i]
    if flags & P_HEADERS:
        i += 4 + _U32_unpack(buf, i)[0]
    if flags & P_DELIVERY_MODE:
        i += 1
    if flags & P_PRIORITY:
        i += 1
    corr = reply_to = None
    if flags & P_CORRELATION_ID:
        n = buf[i]
        corr = bytes(buf[i + 1:i + 1 + n])
        i += 1 + n
    if flags & P_REPLY_TO:
        n = buf[i]
        reply_to = bytes(buf[i + 1:i + 1 + n])
    return corr, reply_to


# --------------------------------------------------------------------------------------------
# Errors


class BenchError(Exception):
    """The benchmark could not complete (timeout, stall, protocol error...)."""


class BrokerClosed(BenchError):
    """The broker closed the connection or a channel (reply code/text included)."""


def _describe_close(what: str, m) -> str:
    return (f"broker closed the {what}: {m.reply_code} {m.reply_text} "
            f"(caused by class {m.class_id} method {m.method_id})")


# --------------------------------------------------------------------------------------------
# Connection / channel


class Channel:
    __slots__ = ("conn", "id", "consumer", "publisher", "_waiter", "_expect")

    def __init__(self, conn: "Connection", ch_id: int):
        self.conn = conn
        self.id = ch_id
        self.consumer = None   # object with on_deliver / on_header / on_body
        self.publisher = None  # object with on_ack / on_nack
        self._waiter: asyncio.Future | None = None
        self._expect: tuple = ()

    async def call(self, method, expect):
        """Send a synchronous method and wait for its reply (one outstanding call per channel)."""
        conn = self.conn
        if conn.error is not None:
            raise conn.error
        fut = conn.loop.create_future()
        self._waiter, self._expect = fut, expect
        conn.write(pframe.marshal(method, self.id))
        try:
            return await asyncio.wait_for(fut, conn.op_timeout)
        except asyncio.TimeoutError:
            raise BenchError(f"no reply to {method.name} on channel {self.id} within "
                             f"{conn.op_timeout}s (broker {conn.host}:{conn.port})") from None
        finally:
            self._waiter = None

    def _on_method(self, m) -> None:
        w = self._waiter
        if w is not None and not w.done() and isinstance(m, self._expect):
            w.set_result(m)
        else:
            self.conn._fail(BenchError(f"unexpected {m.name} on channel {self.id}"))

    # convenience wrappers (rare methods, pamqp)
    async def queue_declare(self, queue="", durable=False, exclusive=False, auto_delete=False,
                            passive=False, arguments=None) -> C.Queue.DeclareOk:
        return await self.call(C.Queue.Declare(queue=queue, durable=durable, exclusive=exclusive,
                                               auto_delete=auto_delete, passive=passive,
                                               arguments=arguments),
                               (C.Queue.DeclareOk,))

    async def queue_delete(self, queue):
        return await self.call(C.Queue.Delete(queue=queue), (C.Queue.DeleteOk,))

    async def queue_bind(self, queue, exchange, routing_key=""):
        return await self.call(C.Queue.Bind(queue=queue, exchange=exchange, routing_key=routing_key),
                               (C.Queue.BindOk,))

    async def exchange_declare(self, exchange, exchange_type, durable=False):
        return await self.call(C.Exchange.Declare(exchange=exchange, exchange_type=exchange_type,
                                                  durable=durable), (C.Exchange.DeclareOk,))

    async def exchange_delete(self, exchange):
        return await self.call(C.Exchange.Delete(exchange=exchange), (C.Exchange.DeleteOk,))

    async def qos(self, prefetch_count):
        return await self.call(C.Basic.Qos(prefetch_count=prefetch_count), (C.Basic.QosOk,))

    async def confirm_select(self):
        return await self.call(C.Confirm.Select(), (C.Confirm.SelectOk,))

    async def consume(self, queue, consumer, no_ack=False, tag=None):
        """Register `consumer` *before* sending basic.consume (deliveries may follow consume-ok
        in the same read)."""
        self.consumer = consumer
        return await self.call(C.Basic.Consume(queue=queue, consumer_tag=tag or f"bench-{self.id}",
                                               no_ack=no_ack), (C.Basic.ConsumeOk,))


class Connection(asyncio.Protocol):
    """Minimal AMQP 0-9-1 client connection. Open with ``await Connection.open(url)``."""

    def __init__(self, loop, host, port, op_timeout=15.0):
        self.loop = loop
        self.host, self.port = host, port
        self.op_timeout = op_timeout
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._channels: list[Channel | None] = [None] * 64
        self._channels[0] = Channel(self, 0)
        self._next_ch = 1
        self.listeners: list = []      # objects with .flush(), called after every read
        self.frame_max = DEFAULT_FRAME_MAX
        self.error: BaseException | None = None
        self.closed = loop.create_future()
        self.closed.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._closing = False
        self._paused = False
        self.server_properties: dict = {}

    # ---- opening / closing
    @classmethod
    async def open(cls, url: str, op_timeout: float = 15.0, name: str = "amqp-bench") -> "Connection":
        u = urlparse(url)
        if u.scheme not in ("amqp", ""):
            raise BenchError(f"unsupported URL scheme {u.scheme!r} (only amqp://)")
        host, port = u.hostname or "127.0.0.1", u.port or 5672
        user, password = unquote(u.username or "guest"), unquote(u.password or "guest")
        vhost = unquote(u.path[1:]) if u.path and u.path != "/" else "/"
        vhost = vhost or "/"
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: cls(loop, host, port, op_timeout), host, port),
                op_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise BenchError(f"cannot connect to {host}:{port}: {exc!r}") from None
        try:
            await conn._handshake(user, password, vhost, name)
        except BaseException:
            conn.abort()
            raise
        return conn

    async def _handshake(self, user, password, vhost, name):
        ch0 = self._channels[0]
        fut = self.loop.create_future()
        ch0._waiter, ch0._expect = fut, (C.Connection.Start,)
        self.write(pheader.ProtocolHeader().marshal())
        start = await self._wait0(fut, "connection.start")
        self.server_properties = start.server_properties or {}
        if b"PLAIN" not in (start.mechanisms or b"").split() and "PLAIN" not in str(start.mechanisms):
            raise BenchError(f"broker does not offer PLAIN auth: {start.mechanisms!r}")
        caps = {"publisher_confirms": True, "consumer_cancel_notify": True, "basic.nack": True,
                "connection.blocked": True, "authentication_failure_close": True}
        fut = self.loop.create_future()
        ch0._waiter, ch0._expect = fut, (C.Connection.Tune,)
        self.write(pframe.marshal(C.Connection.StartOk(
            client_properties={"product": "amqp-bench", "connection_name": name, "capabilities": caps},
            mechanism="PLAIN", response=f"\0{user}\0{password}", locale="en_US"), 0))
        tune = await self._wait0(fut, "connection.tune")
        fm = tune.frame_max or DEFAULT_FRAME_MAX
        self.frame_max = min(fm, DEFAULT_FRAME_MAX)
        self._channel_max = tune.channel_max or 2047
        self.write(pframe.marshal(C.Connection.TuneOk(channel_max=min(self._channel_max, 2047),
                                                      frame_max=self.frame_max, heartbeat=0), 0))
        await ch0.call(C.Connection.Open(virtual_host=vhost), (C.Connection.OpenOk,))

    async def _wait0(self, fut, what):
        try:
            done, _ = await asyncio.wait([fut, self.closed], timeout=self.op_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._channels[0]._waiter = None
        if fut in done:
            return fut.result()
        if self.error is not None:
            raise self.error
        raise BenchError(f"no {what} from {self.host}:{self.port} within {self.op_timeout}s")

    async def channel(self) -> Channel:
        ch_id = self._next_ch
        self._next_ch += 1
        if ch_id >= len(self._channels):
            self._channels.extend([None] * len(self._channels))
        ch = Channel(self, ch_id)
        self._channels[ch_id] = ch
        await ch.call(C.Channel.Open(), (C.Channel.OpenOk,))
        return ch

    async def close(self, timeout: float = 5.0) -> None:
        """Graceful connection.close; never raises."""
        if self.transport is None or self.transport.is_closing() or self.error is not None:
            self.abort()
            return
        self._closing = True
        ch0 = self._channels[0]
        fut = self.loop.create_future()
        ch0._waiter, ch0._expect = fut, (C.Connection.CloseOk,)
        try:
            self.write(pframe.marshal(C.Connection.Close(reply_code=200, reply_text="bye"), 0))
            await asyncio.wait([fut, self.closed], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except Exception:
            pass
        self.abort()

    def abort(self) -> None:
        self._closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        if not self.closed.done():
            self.closed.set_result(None)

    # ---- asyncio.Protocol
    def connection_made(self, transport):
        self.transport = transport
        try:
            transport.set_write_buffer_limits(high=8 << 20)
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except Exception:
            pass

    def connection_lost(self, exc):
        if not self._closing:
            self._fail(BenchError(f"connection to {self.host}:{self.port} lost"
                                  + (f": {exc!r}" if exc else " (broker closed the socket)")))
        elif not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self):
        self._paused = True

    def resume_writing(self):
        self._paused = False
        for lst in self.listeners:
            lst.flush()

    def write(self, data) -> None:
        self.transport.write(data)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        for ch in self._channels:
            if ch is not None and ch._waiter is not None and not ch._waiter.done():
                ch._waiter.set_exception(exc)
        if not self.closed.done():
            self.closed.set_exception(exc)
        self._closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data):
        buf = self._buf
        if buf:
            buf += data
            work = buf
        else:
            work = data
        n = len(work)
        pos = 0
        chans = self._channels
        try:
            while n - pos >= 8:
                ftype, ch, size = _FH_unpack(work, pos)
                end = pos + 7 + size
                if end >= n:
                    break
                p = pos + 7
                if ftype == 3:
                    chans[ch].consumer.on_body(work, p, size)
                elif ftype == 1:
                    cm = _U32_unpack(work, p)[0]
                    if cm == M_DELIVER:
                        chans[ch].consumer.on_deliver(work, p, size)
                    elif cm == M_ACK:
                        chans[ch].publisher.on_ack(work, p)
                    elif cm == M_NACK:
                        chans[ch].publisher.on_nack(work, p)
                    else:
                        self._rare(ch, bytes(work[pos:end + 1]))
                elif ftype == 2:
                    chans[ch].consumer.on_header(work, p, size)
                elif ftype == 8:
                    pass  # heartbeat (we asked for none; ignore)
                elif work[pos:pos + 4] == b"AMQP":
                    raise BenchError(f"broker rejected the protocol version: {bytes(work[pos:pos + 8])!r}")
                else:
                    raise BenchError(f"unknown frame type {ftype} on channel {ch}")
                if work[end] != 0xCE:
                    raise BenchError(f"bad frame end byte {work[end]:#x} (type {ftype}, ch {ch})")
                pos = end + 1
            if work is buf:
                del buf[:pos]
            elif pos < n:
                self._buf = bytearray(data[pos:])
            if n - pos >= 4 and work[pos:pos + 4] == b"AMQP" and n - pos >= 8:
                raise BenchError(f"broker rejected the protocol version: {bytes(work[pos:pos + 8])!r}")
            for lst in self.listeners:
                lst.flush()
        except BenchError as exc:
            self._fail(exc)
        except (AttributeError, TypeError, IndexError) as exc:
            self._fail(BenchError(f"unexpected frame from broker (no handler): {exc!r}"))
        except Exception as exc:  # pragma: no cover - bug in the client itself
            self._fail(BenchError(f"client error while parsing frames: {exc!r}"))

    def _rare(self, ch_id: int, frame_bytes: bytes) -> None:
        try:
            _, _, m = pframe.unmarshal(frame_bytes)
        except Exception as exc:
            raise BenchError(f"cannot decode method frame on channel {ch_id}: {exc!r}") from None
        if isinstance(m, C.Connection.Close):
            try:
                self.write(pframe.marshal(C.Connection.CloseOk(), 0))
            except Exception:
                pass
            raise BrokerClosed(_describe_close("connection", m))
        if isinstance(m, C.Channel.Close):
            try:
                self.write(pframe.marshal(C.Channel.CloseOk(), ch_id))
            except Exception:
                pass
            raise BrokerClosed(_describe_close(f"channel {ch_id}", m))
        if isinstance(m, C.Connection.Blocked):
            print(f"warning: broker {self.host}:{self.port} blocked the connection: {m.reason}",
                  file=sys.stderr)
            return
        if isinstance(m, C.Connection.Unblocked):
            print(f"warning: broker {self.host}:{self.port} unblocked the connection", file=sys.stderr)
            return
        if isinstance(m, C.Channel.Flow):
            self.write(pframe.marshal(C.Channel.FlowOk(active=m.active), ch_id))
            return
        if isinstance(m, C.Basic.Cancel):
            raise BenchError(f"broker cancelled consumer {m.consumer_tag!r} on channel {ch_id}")
        if isinstance(m, C.Basic.Return):
            raise BenchError(f"broker returned a message: {m.reply_code} {m.reply_text} "
                             f"(exchange {m.exchange!r}, routing key {m.routing_key!r})")
        if isinstance(m, C.Connection.CloseOk) and self._closing:
            self.abort()
        chan = self._channels[ch_id] if ch_id < len(self._channels) else None
        if chan is None:
            raise BenchError(f"{m.name} on unknown channel {ch_id}")
        chan._on_method(m)


# --------------------------------------------------------------------------------------------
# Hot-path actors


class ConfirmPublisher:
    """Publishes `count` copies of a pre-built message with confirms, keeping at most `window`
    unconfirmed. With stamp=True the first 8 body bytes carry perf_counter_ns() of the write
    (one stamp per batch: the batch is written at once). With numbered=True they carry the
    message's sequence number instead (0, 1, 2, ...), so a consumer can check the order."""

    def __init__(self, chan: Channel, exchange: str, routing_key: str, size: int, count: int,
                 window: int, persistent: bool = False, stamp: bool = False, numbered: bool = False):
        self.chan, self.conn = chan, chan.conn
        self.count, self.window = count, max(1, window)
        self.min_batch = max(1, self.window // 10)
        self.published = self.acked = self.nacked = 0
        self.floor = 0            # every tag <= floor is resolved
        self.singles: set[int] = set()
        self.stamp = stamp and size >= 8
        self.numbered = numbered
        if numbered and size < 8:
            raise ValueError("numbered messages need a body of at least 8 bytes")
        body = bytes(size)
        flags, props = (P_DELIVERY_MODE, b"\x02") if persistent else (P_DELIVERY_MODE, b"\x01")
        msg = method_publish(chan.id, exchange.encode(), routing_key.encode()) + \
            content_frames(chan.id, flags, props, body, self.conn.frame_max)
        self.msg = msg
        if self.stamp or self.numbered:
            # locate the first body byte: method frame + header frame + 7-byte body frame header
            m_len = len(method_publish(chan.id, exchange.encode(), routing_key.encode()))
            h_len = 7 + 14 + len(props) + 1
            off = m_len + h_len + 7
            self._pre, self._post = msg[:off], msg[off + 8:]
        self.done = self.conn.loop.create_future()
        self.t0 = self.t_done = 0.0
        chan.publisher = self
        self.conn.listeners.append(self)

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self._fill(True)

    def _fill(self, force=False) -> None:
        k = min(self.window - (self.published - self.acked - self.nacked), self.count - self.published)
        if k <= 0 or (not force and k < self.min_batch and k < self.count - self.published):
            return
        self._write(k)

    def _write(self, k: int) -> None:
        """Write the next `k` messages in one transport.write."""
        if self.numbered:
            pre, post, pack, parts = self._pre, self._post, _U64_pack, []
            for i in range(self.published, self.published + k):
                parts += (pre, pack(i), post)
            self.conn.transport.write(b"".join(parts))
            self.published += k
            return
        if self.stamp:
            m = self._pre + _U64_pack(time.perf_counter_ns()) + self._post
        else:
            m = self.msg
        self.conn.transport.write(m * k if k > 1 else m)
        self.published += k

    def _resolve(self, buf, p) -> int:
        tag = _U64_unpack(buf, p + 4)[0]
        floor = self.floor
        if tag <= floor:
            return 0
        singles = self.singles
        if buf[p + 12] & 1:  # multiple
            n = tag - floor
            if singles:
                gone = [t for t in singles if t <= tag]
                n -= len(gone)
                singles.difference_update(gone)
            self.floor = tag
            return n
        if tag in singles:
            return 0
        if tag == floor + 1:
            floor = tag
            while singles and floor + 1 in singles:
                floor += 1
                singles.discard(floor)
            self.floor = floor
        else:
            singles.add(tag)
        return 1

    def on_ack(self, buf, p) -> None:
        self.acked += self._resolve(buf, p)

    def on_nack(self, buf, p) -> None:
        self.nacked += self._resolve(buf, p)

    def flush(self) -> None:
        if self.published < self.count:
            if not self.conn._paused:
                self._fill()
        elif self.acked + self.nacked >= self.count and not self.done.done():
            self.t_done = time.perf_counter()
            self.done.set_result(None)

    def progress(self):
        return self.published, self.acked, self.nacked


class CountingConsumer:
    """Counts deliveries; manual ack with multiple=true every `ack_every` messages; optionally
    records latency from the 8-byte perf_counter_ns stamp at the start of each body, or
    (check_order=True) checks that the 8-byte sequence numbers of a numbered publisher arrive
    as 0, 1, 2, ... (`disorder` counts the breaks)."""

    def __init__(self, chan: Channel, expected: int, ack_every: int, latency: bool = False,
                 no_ack: bool = False, check_order: bool = False):
        self.chan, self.conn = chan, chan.conn
        self.expected = expected
        self.ack_every = max(1, ack_every)
        self.no_ack = no_ack
        self.received = 0
        self.remaining = 0
        self.first = False
        self.last_tag = self.complete_tag = self.acked_tag = 0
        self.lat: list[int] | None = [] if latency else None
        self.check_order = check_order
        self.next_seq = 0
        self.disorder = 0
        self.done = self.conn.loop.create_future()
        self.t_first = self.t_done = 0.0
        self.conn.listeners.append(self)

    def on_deliver(self, buf, p, size):
        self.last_tag = _U64_unpack(buf, p + 5 + buf[p + 4])[0]

    def on_header(self, buf, p, size):
        bs = _U64_unpack(buf, p + 4)[0]
        if bs:
            self.remaining = bs
            self.first = True
        else:
            self.received += 1
            self.complete_tag = self.last_tag

    def on_body(self, buf, p, size):
        if self.first:
            self.first = False
            if self.lat is not None and size >= 8:
                self.lat.append(time.perf_counter_ns() - _U64_unpack(buf, p)[0])
            elif self.check_order:
                seq = _U64_unpack(buf, p)[0] if size >= 8 else -1
                if seq != self.next_seq:
                    self.disorder += 1
                self.next_seq = seq + 1
        self.remaining -= size
        if self.remaining <= 0:
            self.received += 1
            self.complete_tag = self.last_tag

    def flush(self):
        ct = self.complete_tag
        if not self.no_ack and ct > self.acked_tag and (
                ct - self.acked_tag >= self.ack_every or self.received >= self.expected):
            self.conn.transport.write(ack_frame(self.chan.id, ct, True))
            self.acked_tag = ct
        if self.received >= self.expected and not self.done.done():
            self.t_done = time.perf_counter()
            self.done.set_result(None)


class TtlPublisher(ConfirmPublisher):
    """Publishes one transient message per entry of `ttls` (milliseconds), with confirms. The body
    starts with perf_counter_ns() of the write (8 bytes; one stamp per batch, the batch is
    written at once) followed by the message's TTL (4 bytes), so a dead-letter consumer can tell
    when it was due. With per_message=True each message carries its TTL as the `expiration`
    property; otherwise the TTL is only recorded in the body (queue-level x-message-ttl, or
    none). The frames are built once per distinct TTL; a batch joins the templates it needs."""

    def __init__(self, chan: Channel, exchange: str, routing_key: str, size: int, ttls: list[int],
                 window: int, per_message: bool):
        size = max(12, size)
        super().__init__(chan, exchange, routing_key, size, len(ttls), window)
        method = method_publish(chan.id, exchange.encode(), routing_key.encode())
        templates = {}
        for ttl in set(ttls):
            flags, props = P_DELIVERY_MODE, b"\x01"
            if per_message:
                flags |= P_EXPIRATION
                props += _shortstr(str(ttl).encode())
            body = bytes(8) + struct.pack(">I", ttl) + bytes(size - 12)
            msg = method + content_frames(chan.id, flags, props, body, self.conn.frame_max)
            off = len(method) + 7 + 14 + len(props) + 1 + 7   # first body byte
            templates[ttl] = (msg[:off], msg[off + 8:])
        self._seq = [templates[t] for t in ttls]

    def _write(self, k: int) -> None:
        stamp = _U64_pack(time.perf_counter_ns())
        parts = []
        for pre, post in self._seq[self.published:self.published + k]:
            parts += (pre, stamp, post)
        self.conn.transport.write(b"".join(parts))
        self.published += k


class LatenessConsumer(CountingConsumer):
    """Counts dead-lettered messages from a TtlPublisher and records, per message, its expiry
    lateness in ns: arrival (perf_counter_ns when its body frame is parsed) - (publish stamp +
    TTL), both read from the first 12 body bytes; and the first and last arrival times."""

    def __init__(self, chan: Channel, expected: int, ack_every: int = 1, no_ack: bool = True):
        super().__init__(chan, expected, ack_every, no_ack=no_ack)
        self.late: list[int] = []
        self.t_first_ns = self.t_last_ns = 0

    def on_body(self, buf, p, size):
        if self.first:
            self.first = False
            now = self.t_last_ns = time.perf_counter_ns()
            if not self.t_first_ns:
                self.t_first_ns = now
            if size >= 12:
                self.late.append(now - _U64_unpack(buf, p)[0] - _U32_unpack(buf, p + 8)[0] * 1_000_000)
        self.remaining -= size
        if self.remaining <= 0:
            self.received += 1
            self.complete_tag = self.last_tag


class MessageConsumer:
    """Collects whole messages (properties of interest + body); for RPC (not a throughput path)."""

    def __init__(self, chan: Channel):
        self.chan, self.conn = chan, chan.conn
        self.tag = 0
        self.remaining = 0
        self.body = bytearray()
        self.corr = self.reply_to = None
        self.conn.listeners.append(self)

    def on_deliver(self, buf, p, size):
        self.tag = _U64_unpack(buf, p + 5 + buf[p + 4])[0]

    def on_header(self, buf, p, size):
        self.corr, self.reply_to = parse_rpc_props(buf, p)
        self.remaining = _U64_unpack(buf, p + 4)[0]
        self.body = bytearray()
        if not self.remaining:
            self.on_message(self.corr, self.reply_to, b"")

    def on_body(self, buf, p, size):
        self.body += buf[p:p + size]
        self.remaining -= size
        if self.remaining <= 0:
            self.on_message(self.corr, self.reply_to, bytes(self.body))

    def on_message(self, corr, reply_to, body):  # pragma: no cover - overridden
        raise NotImplementedError

    def flush(self):
        pass


class RpcResponder(MessageConsumer):
    """Replies to each request on the default exchange, routing key = reply_to; acks the request
    in the same write."""

    def __init__(self, chan):
        super().__init__(chan)
        self.handled = 0

    def on_message(self, corr, reply_to, body):
        if reply_to is None:
            raise BenchError("rpc request without reply_to")
        ch = self.chan.id
        flags, props = 0, b""
        if corr is not None:
            flags, props = P_CORRELATION_ID, _shortstr(corr)
        self.conn.transport.write(method_publish(ch, b"", reply_to)
                                  + content_frames(ch, flags, props, body, self.conn.frame_max)
                                  + ack_frame(ch, self.tag, False))
        self.handled += 1


class RpcClient(MessageConsumer):
    """Sends one request, waits for the reply, sends the next (all inside the protocol callback)."""

    def __init__(self, chan, server_queue: str, reply_to: str, size: int, count: int):
        super().__init__(chan)
        self.count = count
        self.sent = self.replies = self.mismatched = 0
        ch, fm = chan.id, self.conn.frame_max
        placeholder = b"\x01" * 16
        tpl = method_publish(ch, b"", server_queue.encode()) + content_frames(
            ch, P_CORRELATION_ID | P_REPLY_TO, _shortstr(placeholder) + _shortstr(reply_to.encode()),
            bytes(size), fm)
        i = tpl.index(placeholder)
        self._pre, self._post = tpl[:i], tpl[i + 16:]
        self.expect_corr = b""
        self.t_send = 0
        self.lat: list[int] = []
        self.done = self.conn.loop.create_future()
        self.t0 = self.t_done = 0.0

    def start(self):
        self.t0 = time.perf_counter()
        self._send()

    def _send(self):
        self.sent += 1
        self.expect_corr = b"%016x" % self.sent
        self.t_send = time.perf_counter_ns()
        self.conn.transport.write(self._pre + self.expect_corr + self._post)

    def on_message(self, corr, reply_to, body):
        now = time.perf_counter_ns()
        if corr != self.expect_corr:
            self.mismatched += 1
            return
        self.lat.append(now - self.t_send)
        self.replies += 1
        if self.replies < self.count:
            self._send()
        elif not self.done.done():
            self.t_done = time.perf_counter()
            self.done.set_result(None)


# --------------------------------------------------------------------------------------------
# Scenario plumbing


def _percentile(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    return sorted_vals[min(len(sorted_vals) - 1, int(q * (len(sorted_vals) - 1) + 0.5))]


def _lat_metrics(lat_ns: list[int]) -> dict:
    s = sorted(lat_ns)
    return {"p50 ms": _percentile(s, 0.50) / 1e6, "p99 ms": _percentile(s, 0.99) / 1e6}


def _proc_cpu(pid: int | None) -> float | None:
    """CPU seconds (user+sys) used so far by process `pid` (Linux /proc), or None."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _proc_rss_mb(pid: int | None) -> float | None:
    """Resident set size of process `pid` in MB (MiB, from VmRSS in /proc/<pid>/status), or None."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, IndexError, ValueError):
        return None
    return None


class RssSampler:
    """Samples a process's RSS every `interval` seconds in the background; `peak` is the highest
    sample since the last reset()."""

    def __init__(self, pid: int | None, interval: float = 0.25):
        self.pid = pid
        self.interval = interval
        self.peak: float | None = None
        self.last: float | None = None
        self._task: asyncio.Task | None = None

    def sample(self) -> float | None:
        v = _proc_rss_mb(self.pid)
        if v is not None:
            self.last = v
            self.peak = v if self.peak is None else max(self.peak, v)
        return v

    def reset(self) -> None:
        self.peak = None
        self.sample()

    async def _loop(self):
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> "RssSampler":
        if self.pid and self._task is None:
            self._task = asyncio.ensure_future(self._loop())
        return self

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class _Run:
    """Resources of one scenario run: connections, names to delete, timing/CPU sampling."""

    def __init__(self, url, timeout, stall_timeout, broker_pid=None):
        self.url = url
        self.timeout = timeout
        self.stall_timeout = stall_timeout
        self.broker_pid = broker_pid
        self.conns: list[Connection] = []
        self.queues: list[str] = []
        self.exchanges: list[str] = []
        self.admin: Channel | None = None
        self.uid = uuid.uuid4().hex[:8]
        self._cpu0 = self._wall0 = self._bcpu0 = None

    def name(self, what: str) -> str:
        return f"amqp-bench-{what}-{self.uid}"

    async def connect(self, label="bench") -> Connection:
        c = await Connection.open(self.url, name=f"amqp-bench {label}")
        self.conns.append(c)
        return c

    async def setup(self) -> Channel:
        conn = await self.connect("admin")
        self.admin = await conn.channel()
        return self.admin

    async def declare_queue(self, q, durable=False, arguments=None):
        await self.admin.queue_declare(q, durable=durable, arguments=arguments)
        self.queues.append(q)

    async def delete_queue(self, q):
        await self.admin.queue_delete(q)
        self.queues.remove(q)

    async def delete_exchange(self, x):
        await self.admin.exchange_delete(x)
        self.exchanges.remove(x)

    async def declare_exchange(self, x, typ, durable=False):
        await self.admin.exchange_declare(x, typ, durable=durable)
        self.exchanges.append(x)

    def start_clock(self):
        self._cpu0, self._wall0 = time.process_time(), time.perf_counter()
        self._bcpu0 = _proc_cpu(self.broker_pid)

    def stop_clock(self, metrics: dict):
        wall = time.perf_counter() - self._wall0
        metrics["client CPU %"] = 100.0 * (time.process_time() - self._cpu0) / wall if wall > 0 else 0.0
        b1 = _proc_cpu(self.broker_pid)
        if b1 is not None and self._bcpu0 is not None and wall > 0:
            metrics["broker CPU %"] = 100.0 * (b1 - self._bcpu0) / wall

    async def wait(self, futs, progress, describe):
        """Wait for `futs`; fail on connection error, overall timeout, or no progress for
        stall_timeout seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        last, last_change = progress(), loop.time()
        while True:
            for c in self.conns:
                if c.error is not None:
                    raise BenchError(f"{c.error} [progress: {describe()}]") from c.error
            pending = [f for f in futs if not f.done()]
            if not pending:
                for f in futs:
                    f.result()
                return
            await asyncio.wait(pending + [c.closed for c in self.conns if not c.closed.done()], timeout=1.0,
                               return_when=asyncio.FIRST_COMPLETED)
            now = loop.time()
            p = progress()
            if p != last:
                last, last_change = p, now
            elif now - last_change > self.stall_timeout:
                raise BenchError(f"stalled: no progress for {self.stall_timeout:.0f}s "
                                 f"[progress: {describe()}]")
            if now > deadline:
                raise BenchError(f"timed out after {self.timeout:.0f}s [progress: {describe()}]")

    async def cleanup(self):
        admin_conn = self.admin.conn if self.admin is not None else None
        for c in self.conns:
            if c is not admin_conn:
                await c.close(timeout=3)
        if not (self.queues or self.exchanges):
            if admin_conn is not None:
                await admin_conn.close(timeout=3)
            return
        ch = self.admin
        try:
            if admin_conn is None or admin_conn.error is not None:
                conn = await Connection.open(self.url, name="amqp-bench cleanup")
                self.conns.append(conn)
                admin_conn, ch = conn, await conn.channel()
            for q in self.queues:
                await ch.queue_delete(q)
            for x in self.exchanges:
                await ch.exchange_delete(x)
        except BenchError as exc:
            print(f"warning: cleanup failed ({self.url}): {exc}", file=sys.stderr)
        finally:
            if admin_conn is not None:
                await admin_conn.close(timeout=3)


def _result(name, url, elapsed, metrics, counts, **extra) -> dict:
    return {"scenario": name, "url": url, "elapsed_s": elapsed, "metrics": metrics,
            "counts": counts, **extra}


# --------------------------------------------------------------------------------------------
# Scenarios


async def _publish_confirm(r: _Run, o: dict, persistent: bool) -> dict:
    await r.setup()
    q = r.name("pub-p" if persistent else "pub")
    await r.declare_queue(q, durable=persistent)
    conn = await r.connect("publisher")
    ch = await conn.channel()
    await ch.confirm_select()
    pub = ConfirmPublisher(ch, "", q, o["size"], o["count"], o["window"], persistent=persistent)
    r.start_clock()
    pub.start()
    await r.wait([pub.done], pub.progress,
                 lambda: "published %d, confirmed %d, nacked %d" % pub.progress())
    el = pub.t_done - pub.t0
    m = {"msg/s": pub.acked / el}
    r.stop_clock(m)
    return _result("", r.url, el, m, {"published": pub.published, "confirmed": pub.acked,
                                      "nacked": pub.nacked})


async def _prefill(r: _Run, exchange, rk, count, size, window, persistent=False):
    conn = await r.connect("prefill")
    ch = await conn.channel()
    await ch.confirm_select()
    pub = ConfirmPublisher(ch, exchange, rk, size, count, max(window, 1000), persistent=persistent)
    pub.start()
    await r.wait([pub.done], pub.progress,
                 lambda: "prefill: published %d, confirmed %d, nacked %d" % pub.progress())
    if pub.nacked:
        raise BenchError(f"prefill: broker nacked {pub.nacked} messages")
    await conn.close()
    r.conns.remove(conn)
    return pub


async def _consume(r: _Run, o: dict) -> dict:
    admin = await r.setup()
    q = r.name("consume")
    await r.declare_queue(q)
    await _prefill(r, "", q, o["count"], o["size"], o["window"])
    ok = await admin.queue_declare(q, passive=True)
    if ok.message_count != o["count"]:
        raise BenchError(f"after prefill the queue holds {ok.message_count} messages, "
                         f"expected {o['count']}")
    conn = await r.connect("consumer")
    ch = await conn.channel()
    await ch.qos(o["prefetch"])
    cons = CountingConsumer(ch, o["count"], o["prefetch"] // 2)
    r.start_clock()
    t0 = time.perf_counter()
    await ch.consume(q, cons)
    await r.wait([cons.done], lambda: cons.received, lambda: f"received {cons.received}")
    el = cons.t_done - t0
    m = {"msg/s": cons.received / el}
    r.stop_clock(m)
    return _result("", r.url, el, m, {"published": o["count"], "confirmed": o["count"], "nacked": 0,
                                      "delivered": cons.received})


async def _e2e(r: _Run, o: dict, persistent: bool) -> dict:
    await r.setup()
    q = r.name("e2e-p" if persistent else "e2e")
    await r.declare_queue(q, durable=persistent)
    cconn = await r.connect("consumer")
    cch = await cconn.channel()
    await cch.qos(o["prefetch"])
    cons = CountingConsumer(cch, o["count"], o["prefetch"] // 2, latency=True)
    await cch.consume(q, cons)
    pconn = await r.connect("publisher")
    pch = await pconn.channel()
    await pch.confirm_select()
    pub = ConfirmPublisher(pch, "", q, max(8, o["size"]), o["count"], o["window"],
                           persistent=persistent, stamp=True)
    r.start_clock()
    pub.start()
    await r.wait([pub.done, cons.done], lambda: (pub.progress(), cons.received),
                 lambda: "published %d, confirmed %d, nacked %d" % pub.progress()
                 + f", received {cons.received}")
    el = max(pub.t_done, cons.t_done) - pub.t0
    m = {"msg/s": cons.received / (cons.t_done - pub.t0), **_lat_metrics(cons.lat)}
    r.stop_clock(m)
    return _result("", r.url, el, m, {"published": pub.published, "confirmed": pub.acked,
                                      "nacked": pub.nacked, "delivered": cons.received})


async def _fanout(r: _Run, o: dict) -> dict:
    await r.setup()
    nq = o["fanout_queues"]
    x = r.name("fanout")
    await r.declare_exchange(x, "fanout")
    qs = [r.name(f"fanout{i}") for i in range(nq)]
    for q in qs:
        await r.declare_queue(q)
        await r.admin.queue_bind(q, x)
    cconn = await r.connect("consumers")
    consumers = []
    for q in qs:
        ch = await cconn.channel()
        await ch.qos(o["prefetch"])
        c = CountingConsumer(ch, o["count"], o["prefetch"] // 2)
        await ch.consume(q, c)
        consumers.append(c)
    pconn = await r.connect("publisher")
    pch = await pconn.channel()
    await pch.confirm_select()
    pub = ConfirmPublisher(pch, x, "", o["size"], o["count"], o["window"])

    def delivered():
        return sum(c.received for c in consumers)

    r.start_clock()
    pub.start()
    await r.wait([pub.done] + [c.done for c in consumers], lambda: (pub.progress(), delivered()),
                 lambda: "published %d, confirmed %d, nacked %d" % pub.progress()
                 + f", delivered {delivered()} of {o['count'] * nq}")
    t_del = max(c.t_done for c in consumers)
    el = max(pub.t_done, t_del) - pub.t0
    m = {"publish msg/s": pub.acked / (pub.t_done - pub.t0), "deliver msg/s": delivered() / (t_del - pub.t0)}
    r.stop_clock(m)
    return _result("", r.url, el, m, {"published": pub.published, "confirmed": pub.acked,
                                      "nacked": pub.nacked, "delivered": delivered(),
                                      "expected_delivered": o["count"] * nq})


async def _rpc(r: _Run, o: dict, direct: bool) -> dict:
    await r.setup()
    sq = r.name("rpc-direct" if direct else "rpc")
    await r.declare_queue(sq)
    sconn = await r.connect("rpc server")
    sch = await sconn.channel()
    await sch.qos(100)
    responder = RpcResponder(sch)
    await sch.consume(sq, responder, no_ack=False)
    cconn = await r.connect("rpc client")
    cch = await cconn.channel()
    if direct:
        reply_to = "amq.rabbitmq.reply-to"
    else:
        ok = await cch.queue_declare("", exclusive=True, auto_delete=True)
        reply_to = ok.queue
    client = RpcClient(cch, sq, reply_to, o["size"], o["rpc_count"])
    await cch.consume(reply_to, client, no_ack=True)
    r.start_clock()
    client.start()
    await r.wait([client.done], lambda: client.replies,
                 lambda: f"requests sent {client.sent}, handled by server {responder.handled}, "
                         f"replies {client.replies}, mismatched {client.mismatched}")
    el = client.t_done - client.t0
    m = {"round trips/s": client.replies / el, **_lat_metrics(client.lat)}
    r.stop_clock(m)
    return _result("", r.url, el, m, {"published": client.sent, "confirmed": client.sent,
                                      "nacked": 0, "delivered": client.replies,
                                      "mismatched": client.mismatched})


async def _backlog(r: _Run, o: dict) -> dict:
    """Publish `count` numbered persistent messages with confirms into a durable queue with no
    consumer, sampling the broker's RSS; then consume them all, checking count and order."""
    admin = await r.setup()
    q = r.name("backlog")
    await r.declare_queue(q, durable=True)
    n = o["count"]
    rss = RssSampler(r.broker_pid)
    m: dict = {}
    rss_start = rss.sample()
    if rss_start is not None:
        m["RSS before MB"] = rss_start
    rss.start()
    try:
        pconn = await r.connect("publisher")
        pch = await pconn.channel()
        await pch.confirm_select()
        pub = ConfirmPublisher(pch, "", q, max(8, o["size"]), n, o["window"], persistent=True,
                               numbered=True)
        rss.reset()
        r.start_clock()
        pub.start()
        await r.wait([pub.done], pub.progress,
                     lambda: "published %d, confirmed %d, nacked %d" % pub.progress()
                     + (f", broker RSS {rss.last:.0f} MB" if rss.last is not None else ""))
        el_pub = pub.t_done - pub.t0
        m["publish msg/s"] = pub.acked / el_pub
        rss.sample()
        if rss.peak is not None:
            m["peak RSS publish MB"] = rss.peak
        await pconn.close()
        r.conns.remove(pconn)
        await asyncio.sleep(1.0)  # let the broker settle (write-behind, GC) before the end sample
        if rss.sample() is not None:
            m["RSS after publish MB"] = rss.last
        ok = await admin.queue_declare(q, passive=True)
        if ok.message_count != pub.acked:
            raise BenchError(f"after publishing the queue holds {ok.message_count} messages, "
                             f"{pub.acked} were confirmed")
        if r.broker_pid:
            print(f"    backlog of {n:,}: broker RSS {m.get('RSS after publish MB', float('nan')):.0f} MB "
                  f"(peak {m.get('peak RSS publish MB', float('nan')):.0f} MB while publishing)",
                  file=sys.stderr, flush=True)

        cconn = await r.connect("consumer")
        cch = await cconn.channel()
        await cch.qos(o["prefetch"])
        cons = CountingConsumer(cch, pub.acked, o["prefetch"] // 2, check_order=True)
        rss.reset()
        t0 = time.perf_counter()
        await cch.consume(q, cons)
        await r.wait([cons.done], lambda: cons.received,
                     lambda: f"received {cons.received} of {pub.acked}"
                     + (f", broker RSS {rss.last:.0f} MB" if rss.last is not None else ""))
        el_cons = cons.t_done - t0
        m["consume msg/s"] = cons.received / el_cons
        rss.sample()
        if rss.peak is not None:
            m["peak RSS consume MB"] = rss.peak
        r.stop_clock(m)
    finally:
        rss.stop()
    if cons.disorder:
        raise BenchError(f"consumed {cons.received} messages, {cons.disorder} out of order "
                         f"(publish {m['publish msg/s']:.0f} msg/s, consume {m['consume msg/s']:.0f} msg/s)")
    return _result("", r.url, el_pub + el_cons, m,
                   {"published": pub.published, "confirmed": pub.acked, "nacked": pub.nacked,
                    "delivered": cons.received, "out_of_order": cons.disorder})


EARLY_TOLERANCE_MS = 5.0   # a dead-letter arriving more than this before its due time is "early"


def ttl_values(lo: int, hi: int, distinct: int) -> list[int]:
    """`distinct` TTLs (ms) evenly spaced from lo to hi inclusive."""
    if lo <= 0 or hi < lo:
        raise ValueError(f"bad TTL range {lo}..{hi} ms")
    if distinct <= 1 or hi == lo:
        return [lo]
    return sorted({round(lo + (hi - lo) * i / (distinct - 1)) for i in range(distinct)})


async def _ttl_publish(r: _Run, queue: str, ttls: list[int], per_message: bool, o: dict,
                       clock: bool = False) -> TtlPublisher:
    """Publish one message per TTL into `queue` on a fresh connection; returns the finished
    publisher (t0..t_done is first write to last confirm)."""
    conn = await r.connect("publisher")
    ch = await conn.channel()
    await ch.confirm_select()
    pub = TtlPublisher(ch, "", queue, o["size"], ttls, o["window"], per_message)
    if clock:
        r.start_clock()
    pub.start()
    await r.wait([pub.done], pub.progress,
                 lambda: f"{queue}: " + "published %d, confirmed %d, nacked %d" % pub.progress())
    await conn.close()
    r.conns.remove(conn)
    return pub


async def _ttl_plain(r: _Run, label: str, ttls: list[int], o: dict) -> TtlPublisher:
    q = r.name(label)
    await r.declare_queue(q)
    pub = await _ttl_publish(r, q, ttls, False, o)
    await r.delete_queue(q)
    rate = pub.acked / (pub.t_done - pub.t0)
    print(f"    {label}: {rate:,.0f} msg/s", file=sys.stderr, flush=True)
    return pub


async def _ttl_expiring(r: _Run, label: str, ttls: list[int], per_message: bool,
                        queue_ttl: int | None, o: dict, m: dict) -> dict:
    """Publish into a queue whose x-dead-letter-exchange is a fanout exchange bound to a
    dead-letter queue, consumed (no-ack) from the start; then wait until every message has been
    dead-lettered, or until the last confirm + max TTL + ttl_margin. Fills `m` with the publish
    rate and the lateness of the dead-letters; returns the counts."""
    n = len(ttls)
    dlx, dlq, q = r.name(f"{label}-dlx"), r.name(f"{label}-dlq"), r.name(label)
    await r.declare_exchange(dlx, "fanout")
    await r.declare_queue(dlq)
    await r.admin.queue_bind(dlq, dlx)
    args = {"x-dead-letter-exchange": dlx}
    if queue_ttl is not None:
        args["x-message-ttl"] = queue_ttl
    await r.declare_queue(q, arguments=args)
    cconn = await r.connect("dead-letter consumer")
    cch = await cconn.channel()
    cons = LatenessConsumer(cch, n)
    await cch.consume(dlq, cons, no_ack=True)
    pub = await _ttl_publish(r, q, ttls, per_message, o, clock=(label == "ttl"))
    if label == "ttl":
        r.stop_clock(m)   # CPU over the timed publish of the mixed-TTL run
    rate = pub.acked / (pub.t_done - pub.t0)
    prefix = "" if label == "ttl" else label + " "
    m[f"{prefix}publish msg/s"] = rate

    # bounded wait for the dead-letters: RabbitMQ expires per-message TTLs only at the head of
    # the queue, so with mixed TTLs some arrive late; never wait for ever
    loop = asyncio.get_running_loop()
    deadline = loop.time() - (time.perf_counter() - pub.t_done) + max(ttls) / 1000 + o["ttl_margin"]
    while not cons.done.done():
        for c in r.conns:
            if c.error is not None:
                raise BenchError(f"{c.error} [progress: {label}: {cons.received} of {n} "
                                 f"dead-lettered]") from c.error
        left = deadline - loop.time()
        if left <= 0:
            break
        await asyncio.wait([cons.done] + [c.closed for c in r.conns if not c.closed.done()],
                           timeout=min(1.0, left), return_when=asyncio.FIRST_COMPLETED)
    left_in_queue = (await r.admin.queue_declare(q, passive=True)).message_count
    await cconn.close()
    r.conns.remove(cconn)
    await r.delete_queue(q)
    await r.delete_queue(dlq)
    await r.delete_exchange(dlx)

    m[f"{prefix}dead-lettered"] = cons.received
    if cons.received > 1 and cons.t_last_ns > cons.t_first_ns:
        m[f"{prefix}dead-letter msg/s"] = (cons.received - 1) / ((cons.t_last_ns - cons.t_first_ns) / 1e9)
    late = sorted(cons.late)
    early = sum(1 for v in late if v < -EARLY_TOLERANCE_MS * 1e6)
    if late:
        m[f"{prefix}lateness p50 ms"] = _percentile(late, 0.50) / 1e6
        m[f"{prefix}lateness p99 ms"] = _percentile(late, 0.99) / 1e6
        m[f"{prefix}lateness max ms"] = late[-1] / 1e6
    m[f"{prefix}early"] = early
    msg = (f"    {label}: {rate:,.0f} msg/s; dead-lettered {cons.received:,} of {n:,}"
           + (f", lateness p50 {late[len(late) // 2] / 1e6:.1f} ms, max {late[-1] / 1e6:.1f} ms"
              if late else "")
           + (f", {early} early" if early else "")
           + (f", {left_in_queue:,} still in the queue" if left_in_queue else ""))
    print(msg, file=sys.stderr, flush=True)
    return {"published": pub.published, "confirmed": pub.acked, "nacked": pub.nacked,
            "dead_lettered": cons.received, "early": early, "left_in_queue": left_in_queue,
            "min_lateness_ms": late[0] / 1e6 if late else None}


async def _ttl(r: _Run, o: dict) -> dict:
    """Per-publish cost of TTLs and expiry lateness: see the README (scenario `ttl`)."""
    await r.setup()
    n = o["count"]
    values = ttl_values(o["ttl_min"], o["ttl_max"], o["ttl_distinct"])
    mixed = random.Random(o["ttl_seed"]).choices(values, k=n)
    queue_ttl = (o["ttl_min"] + o["ttl_max"]) // 2
    t0 = time.perf_counter()
    m: dict = {}
    # plain publish twice, before and after the TTL runs; the faster one is the baseline, so
    # that warm-up (heap growth...) cannot flatter the ratio
    plain1 = await _ttl_plain(r, "ttl-plain", [queue_ttl] * n, o)
    c_mixed = await _ttl_expiring(r, "ttl", mixed, True, None, o, m)
    c_queue = await _ttl_expiring(r, "queue-ttl", [queue_ttl] * n, False, queue_ttl, o, m)
    plain2 = await _ttl_plain(r, "ttl-plain2", [queue_ttl] * n, o)
    plain_rates = [p.acked / (p.t_done - p.t0) for p in (plain1, plain2)]
    base = max(plain_rates)
    out = {"plain publish msg/s": base}
    out.update(m)
    out["ttl publish / plain publish"] = m["publish msg/s"] / base
    out["queue-ttl publish / plain publish"] = m["queue-ttl publish msg/s"] / base
    out["ttl publish msg/s"] = out.pop("publish msg/s")
    order = [k for k, _ in METRICS["ttl"]]
    out = {**{k: out[k] for k in order if k in out}, **{k: v for k, v in out.items() if k not in order}}
    pubs = (plain1, plain2)
    counts = {"published": n,
              "confirmed": min([p.acked for p in pubs] + [c_mixed["confirmed"], c_queue["confirmed"]]),
              "nacked": sum(p.nacked for p in pubs) + c_mixed["nacked"] + c_queue["nacked"],
              "dead_lettered": c_mixed["dead_lettered"], "early": c_mixed["early"],
              "left_in_queue": c_mixed["left_in_queue"],
              "queue_ttl_dead_lettered": c_queue["dead_lettered"], "queue_ttl_early": c_queue["early"],
              "queue_ttl_left_in_queue": c_queue["left_in_queue"]}
    return _result("", r.url, time.perf_counter() - t0, out, counts,
                   plain_publish_runs=plain_rates, ttl_values_ms=values, queue_ttl_ms=queue_ttl,
                   ttl_margin_s=o["ttl_margin"],
                   min_lateness_ms={"ttl": c_mixed["min_lateness_ms"],
                                    "queue-ttl": c_queue["min_lateness_ms"]})


SCENARIOS = {
    "publish-confirm": lambda r, o: _publish_confirm(r, o, False),
    "publish-confirm-persistent": lambda r, o: _publish_confirm(r, o, True),
    "consume": _consume,
    "e2e": lambda r, o: _e2e(r, o, False),
    "e2e-persistent": lambda r, o: _e2e(r, o, True),
    "fanout": _fanout,
    "rpc": lambda r, o: _rpc(r, o, False),
    "rpc-direct": lambda r, o: _rpc(r, o, True),
    "backlog": _backlog,
    "ttl": _ttl,
}
#: what `--scenario all` runs (rpc-direct uses RabbitMQ's amq.rabbitmq.reply-to extension; add it
#: explicitly or with --direct-reply-to; backlog takes minutes: --scenario backlog; ttl spends
#: most of its time waiting for TTLs to run out: --scenario ttl)
ALL_SCENARIOS = ["publish-confirm", "publish-confirm-persistent", "consume", "e2e", "fanout",
                 "rpc", "e2e-persistent"]

#: (metric, higher is better) in display order
METRICS = {
    "publish-confirm": [("msg/s", True)],
    "publish-confirm-persistent": [("msg/s", True)],
    "consume": [("msg/s", True)],
    "e2e": [("msg/s", True), ("p50 ms", False), ("p99 ms", False)],
    "e2e-persistent": [("msg/s", True), ("p50 ms", False), ("p99 ms", False)],
    "fanout": [("publish msg/s", True), ("deliver msg/s", True)],
    "rpc": [("round trips/s", True), ("p50 ms", False), ("p99 ms", False)],
    "rpc-direct": [("round trips/s", True), ("p50 ms", False), ("p99 ms", False)],
    "backlog": [("publish msg/s", True), ("consume msg/s", True), ("peak RSS publish MB", False),
                ("RSS after publish MB", False), ("peak RSS consume MB", False)],
    "ttl": [("plain publish msg/s", True),
            ("ttl publish msg/s", True), ("ttl publish / plain publish", True),
            ("dead-lettered", True), ("dead-letter msg/s", True), ("lateness p50 ms", False), ("lateness p99 ms", False),
            ("lateness max ms", False), ("early", False),
            ("queue-ttl publish msg/s", True), ("queue-ttl publish / plain publish", True),
            ("queue-ttl dead-lettered", True), ("queue-ttl dead-letter msg/s", True),
            ("queue-ttl lateness p50 ms", False),
            ("queue-ttl lateness p99 ms", False), ("queue-ttl lateness max ms", False),
            ("queue-ttl early", False)],
}
INFO_METRICS = [("client CPU %", False), ("broker CPU %", False),
                ("RSS before MB", False)]  # shown, never ratio'd


async def run_scenario(name: str, url: str, count: int = 200_000, size: int = 100, *,
                       window: int = 1000, prefetch: int = 1000, fanout_queues: int = 10,
                       rpc_count: int | None = None, timeout: float = 300.0,
                       stall_timeout: float = 30.0, broker_pid: int | None = None,
                       ttl_min: int = 2000, ttl_max: int = 8000, ttl_distinct: int = 25,
                       ttl_seed: int = 1, ttl_margin: float = 15.0) -> dict:
    """Run one scenario against `url`; returns {"scenario", "url", "elapsed_s", "metrics",
    "counts"}. Raises BenchError (or BrokerClosed) if the broker misbehaves; queues/exchanges
    created by the run are deleted in any case (best effort). The ttl_* options are for `ttl`:
    per-message TTLs are drawn (seeded) from `ttl_distinct` values spread over
    ttl_min..ttl_max ms, and dead-letters are awaited until max TTL + ttl_margin seconds after
    the last confirm."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    o = {"count": count, "size": size, "window": window, "prefetch": max(1, prefetch),
         "fanout_queues": fanout_queues, "rpc_count": rpc_count if rpc_count else count,
         "ttl_min": ttl_min, "ttl_max": ttl_max, "ttl_distinct": ttl_distinct,
         "ttl_seed": ttl_seed, "ttl_margin": ttl_margin}
    if name == "ttl":
        ttl_values(ttl_min, ttl_max, ttl_distinct)  # validate before connecting
    r = _Run(url, timeout, stall_timeout, broker_pid)
    try:
        res = await asyncio.wait_for(SCENARIOS[name](r, o), timeout + 60)
    except asyncio.TimeoutError:
        raise BenchError(f"{name}: timed out (setup or teardown hung)") from None
    finally:
        try:
            await asyncio.wait_for(r.cleanup(), 30)
        except Exception as exc:
            print(f"warning: cleanup after {name} failed: {exc!r}", file=sys.stderr)
    res["scenario"] = name
    return res


# --------------------------------------------------------------------------------------------
# CLI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnBroker:
    """`amqp-broker serve` as a subprocess on a free port with a temporary data dir."""

    def __init__(self, command: str | None = None):
        self.port = _free_port()
        self.tmp = tempfile.TemporaryDirectory(prefix="amqp-bench-broker-")
        self.log_path = os.path.join(self.tmp.name, "broker.log")
        if command:
            cmd = command.format(host="127.0.0.1", port=self.port, data_dir=self.tmp.name).split()
        else:
            exe = shutil.which("amqp-broker") or os.path.join(os.path.dirname(sys.executable), "amqp-broker")
            if not os.path.exists(exe):
                raise BenchError("--start-own: no `amqp-broker` executable found (pip install -e . "
                                 "in the venv, or pass --own-command)")
            cmd = [exe, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--data-dir", os.path.join(self.tmp.name, "data")]
        self.cmd = cmd
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout=30.0) -> "OwnBroker":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"own broker exited with {self.proc.returncode} before listening:\n"
                                 + self.log_tail())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    print(f"own broker listening at {self.url} (pid {self.proc.pid}): "
                          f"{' '.join(self.cmd)}", file=sys.stderr)
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise BenchError(f"own broker did not accept connections on port {self.port} within "
                         f"{timeout:.0f}s:\n" + self.log_tail())

    def log_tail(self, n=30) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                print("own broker ignored SIGTERM for 15s; killing it", file=sys.stderr)
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.returncode not in (0, -signal.SIGTERM, None):
            print(f"own broker exited with {self.proc.returncode}; log tail:\n{self.log_tail()}",
                  file=sys.stderr)
        try:
            self._log.close()
        except Exception:
            pass
        self.tmp.cleanup()


def _aggregate(runs: list[dict], pick: str) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {}
    keys = {k for r in ok for k in r["metrics"]}
    higher = {k: h for ms in METRICS.values() for k, h in ms}
    out = {}
    for k in keys:
        vals = [r["metrics"][k] for r in ok if k in r["metrics"]]
        if pick == "best" and k in higher:
            out[k] = max(vals) if higher[k] else min(vals)
        else:
            out[k] = statistics.median(vals)
    return out


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def render_table(scenarios, names, agg, errors) -> str:
    hdr = ["scenario", "metric"] + names
    ratio_names = [f"{names[0]} / {n}" for n in names[1:]]
    hdr += ratio_names
    lines = ["| " + " | ".join(hdr) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(hdr) - 2)) + "|"]
    for sc in scenarios:
        for metric, higher in METRICS[sc] + INFO_METRICS:
            vals = [agg.get((sc, n), {}).get(metric) for n in names]
            info = (metric, higher) in INFO_METRICS
            if info and all(v is None for v in vals):
                continue
            cells = []
            for n, v in zip(names, vals):
                cells.append("ERROR" if (sc, n) in errors and v is None else _fmt(v))
            ratios = []
            for v in vals[1:]:
                if info or vals[0] is None or v is None or v == 0:
                    ratios.append("")
                else:
                    ratios.append(f"{vals[0] / v:.2f}")
            label = metric + ("" if info else (" ↑" if higher else " ↓"))
            lines.append("| " + " | ".join([sc, label] + cells + ratios) + " |")
    return "\n".join(lines)


async def _amain(args, urls) -> int:
    scenarios = []
    for s in args.scenario.split(","):
        s = s.strip()
        if s == "all":
            scenarios += [x for x in ALL_SCENARIOS if x not in scenarios]
        elif s in SCENARIOS:
            if s not in scenarios:
                scenarios.append(s)
        elif s:
            print(f"unknown scenario {s!r}; choose from all, {', '.join(SCENARIOS)}", file=sys.stderr)
            return 2
    if args.direct_reply_to and "rpc-direct" not in scenarios:
        scenarios.append("rpc-direct")
    names = [n for n, _ in urls]
    pids = dict(args.broker_pid)
    runs: dict[tuple[str, str], list[dict]] = {}
    errors: dict[tuple[str, str], str] = {}
    for sc in scenarios:
        for rep in range(args.repeat):
            for name, url in urls:
                count = _cli_count(sc, args)
                print(f"[{sc} #{rep + 1}] {name} ({url}) count={count} ...", file=sys.stderr, flush=True)
                try:
                    res = await run_scenario(sc, url, count, args.size, window=args.window,
                                             prefetch=args.prefetch, fanout_queues=args.fanout_queues,
                                             timeout=args.timeout, stall_timeout=args.stall_timeout,
                                             broker_pid=pids.get(name), ttl_min=args.ttl_min,
                                             ttl_max=args.ttl_max, ttl_distinct=args.ttl_distinct,
                                             ttl_seed=args.ttl_seed, ttl_margin=args.ttl_margin)
                    bad = _count_problems(res)
                    if bad:
                        res["warning"] = bad
                        print(f"    WARNING: {bad}", file=sys.stderr)
                    print("    " + ", ".join(f"{k}={_fmt(v)}" for k, v in res["metrics"].items())
                          + f"  ({res['elapsed_s']:.2f}s)", file=sys.stderr, flush=True)
                except BenchError as exc:
                    res = {"scenario": sc, "url": url, "error": str(exc)}
                    errors[(sc, name)] = str(exc)
                    print(f"    ERROR: {exc}", file=sys.stderr, flush=True)
                res["name"] = name
                res["repeat"] = rep
                runs.setdefault((sc, name), []).append(res)
    agg = {key: _aggregate(rs, args.pick) for key, rs in runs.items()}
    print()
    print(f"count={args.count} (fanout: {_cli_count('fanout', args)} x {args.fanout_queues} queues, "
          f"rpc: {_cli_count('rpc', args)}"
          + (f", backlog: {args.backlog_count}" if "backlog" in scenarios else "")
          + (f", ttl: {args.ttl_count} with TTLs {args.ttl_min}-{args.ttl_max} ms "
             f"({args.ttl_distinct} values, seed {args.ttl_seed}), queue-ttl "
             f"{(args.ttl_min + args.ttl_max) // 2} ms" if "ttl" in scenarios else "")
          + f") size={args.size}B window={args.window} "
          f"prefetch={args.prefetch} repeat={args.repeat} ({args.pick}); "
          f"↑ higher is better, ↓ lower is better")
    print()
    print(render_table(scenarios, names, agg, errors))
    if errors:
        print()
        print("Errors:")
        for (sc, n), e in errors.items():
            print(f"- {sc} on {n}: {e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k not in ("url",)},
                       "urls": dict(urls),
                       "runs": [r for rs in runs.values() for r in rs],
                       "summary": {f"{sc}|{n}": m for (sc, n), m in agg.items()}}, f, indent=2)
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 1 if errors else 0


def _cli_count(sc: str, args) -> int:
    """Messages (publishes / round trips) for one scenario run from the CLI."""
    if sc.startswith("rpc"):
        return args.rpc_count or min(args.count, 20_000)
    if sc == "fanout":
        return args.fanout_count or max(1, args.count // max(1, args.fanout_queues))
    if sc == "backlog":
        return args.backlog_count
    if sc == "ttl":
        return args.ttl_count
    return args.count


def _count_problems(res: dict) -> str:
    c = res["counts"]
    probs = []
    if c.get("nacked"):
        probs.append(f"{c['nacked']} nacked")
    if c.get("confirmed") is not None and c.get("published") is not None and c["confirmed"] + c.get("nacked", 0) < c["published"]:
        probs.append(f"only {c['confirmed']} of {c['published']} confirmed")
    if c.get("mismatched"):
        probs.append(f"{c['mismatched']} replies with wrong correlation id")
    if c.get("out_of_order"):
        probs.append(f"{c['out_of_order']} delivered out of order")
    if res.get("scenario") == "backlog" and c.get("delivered") is not None and c["delivered"] != c["confirmed"]:
        probs.append(f"{c['delivered']} of {c['confirmed']} confirmed messages delivered")
    if res.get("scenario") == "ttl":
        for pre, label in (("", "ttl"), ("queue_ttl_", "queue-ttl")):
            if c[pre + "dead_lettered"] != c["published"]:
                probs.append(f"{label}: {c[pre + 'dead_lettered']} of {c['published']} dead-lettered "
                             f"within max TTL + {res.get('ttl_margin_s', '?')} s")
            if c[pre + "early"]:
                probs.append(f"{label}: {c[pre + 'early']} dead-lettered more than "
                             f"{EARLY_TOLERANCE_MS:g} ms before their TTL")
    return ", ".join(probs)


def _parse_kv(s: str) -> tuple[str, str]:
    if "=" in s and not s.startswith("amqp"):
        k, v = s.split("=", 1)
        return k, v
    return urlparse(s).netloc.rsplit("@", 1)[-1], s


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", action="append", default=[], type=_parse_kv, metavar="NAME=URL",
                   help="broker to measure (repeatable; the first is the numerator of the ratios)")
    p.add_argument("--start-own", action="store_true",
                   help="start `amqp-broker serve` on a free port and measure it first, as 'amqp-broker'")
    p.add_argument("--own-command", default=None,
                   help="command for --start-own, with {host} {port} {data_dir} placeholders")
    p.add_argument("--scenario", default="all",
                   help=f"comma list of: all, {', '.join(SCENARIOS)} (default all = "
                        f"{', '.join(ALL_SCENARIOS)})")
    p.add_argument("--direct-reply-to", action="store_true", help="also run rpc-direct")
    p.add_argument("--count", type=int, default=200_000, help="messages per scenario (default 200000)")
    p.add_argument("--rpc-count", type=int, default=None,
                   help="round trips for rpc scenarios (default min(count, 20000))")
    p.add_argument("--size", type=int, default=100, help="body bytes (default 100)")
    p.add_argument("--window", type=int, default=1000, help="unconfirmed publishes in flight")
    p.add_argument("--prefetch", type=int, default=1000, help="consumer prefetch (acks every prefetch/2)")
    p.add_argument("--backlog-count", type=int, default=2_000_000,
                   help="messages in the backlog scenario (default 2000000)")
    p.add_argument("--ttl-count", type=int, default=100_000,
                   help="messages per run in the ttl scenario (default 100000)")
    p.add_argument("--ttl-min", type=int, default=2000, help="ttl: shortest per-message TTL, ms")
    p.add_argument("--ttl-max", type=int, default=8000, help="ttl: longest per-message TTL, ms")
    p.add_argument("--ttl-distinct", type=int, default=25,
                   help="ttl: distinct TTL values, evenly spread over min..max (default 25)")
    p.add_argument("--ttl-seed", type=int, default=1, help="ttl: seed of the TTL draw")
    p.add_argument("--ttl-margin", type=float, default=15.0,
                   help="ttl: wait for dead-letters until max TTL + this many seconds after the "
                        "last confirm (default 15)")
    p.add_argument("--fanout-queues", type=int, default=10)
    p.add_argument("--fanout-count", type=int, default=None,
                   help="publishes for fanout (default count / fanout-queues, so that about "
                        "`count` messages are delivered)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--pick", choices=["median", "best"], default="median",
                   help="how to combine --repeat runs")
    p.add_argument("--timeout", type=float, default=900.0,
                   help="overall limit per scenario run, seconds (hangs are caught sooner by "
                        "--stall-timeout)")
    p.add_argument("--stall-timeout", type=float, default=30.0,
                   help="fail a run when nothing progresses for this long")
    p.add_argument("--broker-pid", action="append", default=[], type=_parse_kv, metavar="NAME=PID",
                   help="also report that process's CPU use (e.g. rabbitmq=$(pgrep -f beam.smp))")
    p.add_argument("--json", default=None, help="write all runs and the summary to this file")
    p.add_argument("--no-uvloop", action="store_true")
    args = p.parse_args(argv)
    args.broker_pid = [(k, int(v)) for k, v in args.broker_pid]
    urls = list(args.url)
    own = None
    if args.start_own:
        try:
            own = OwnBroker(args.own_command).start()
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        urls.insert(0, ("amqp-broker", own.url))
        args.broker_pid.append(("amqp-broker", own.proc.pid))
    if not urls:
        p.error("give at least one --url NAME=URL or --start-own")
    if len({n for n, _ in urls}) != len(urls):
        p.error("--url names must be distinct")
    loop_factory = None
    if not args.no_uvloop:
        try:
            import uvloop
            loop_factory = uvloop.new_event_loop
        except ImportError:
            pass
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(_amain(args, urls))
    except KeyboardInterrupt:
        return 130
    finally:
        if own is not None:
            own.stop()


if __name__ == "__main__":
    sys.exit(main())
