"""Minimal asyncio AMQP 0-9-1 client: connection and channels (pamqp for the handshake
and rare methods, raw frames on the hot paths)."""
from __future__ import annotations

import asyncio
import socket
import sys
from urllib.parse import unquote, urlparse

from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

from .errors import BenchError, BrokerClosed, _describe_close
from .wire import DEFAULT_FRAME_MAX, M_ACK, M_DELIVER, M_NACK, _FH_unpack, _U32_unpack


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
