"""Hot-path actors: confirm publishers and consumers driven from the protocol callbacks."""
from __future__ import annotations

import abc
import struct
import time

from .client import Channel
from .errors import BenchError
from .wire import (P_CORRELATION_ID, P_DELIVERY_MODE, P_EXPIRATION, P_REPLY_TO, _shortstr,
                   _U32_unpack, _U64_pack, _U64_unpack, ack_frame, content_frames, method_publish,
                   parse_rpc_props)


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


class MessageConsumer(abc.ABC):
    """Collects whole messages (properties of interest + body); for RPC (not a throughput path).
    Subclasses say what to do with each message (on_message)."""

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

    @abc.abstractmethod
    def on_message(self, corr: bytes | None, reply_to: bytes | None, body: bytes) -> None:
        """One whole message: its correlation id, reply-to and body."""

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
