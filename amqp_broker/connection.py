"""One client connection: the socket side of the broker.

An asyncio.Protocol, so reading costs no task per frame: `data_received` splits whole frames
(codec.parse_frames), runs each one to completion against the channel, and writes everything
that produced (replies, deliveries, coalesced confirms) with one transport.write at the end.
Output produced outside a read (a delivery caused by another connection's publish) is flushed
once per event-loop iteration.

The handshake (protocol header, start/start-ok, tune/tune-ok, open) and the rules about which
frame may arrive when are enforced here; channel-scoped work is delegated to Channel.
"""
from __future__ import annotations

import asyncio
import logging
import platform
import socket

from pamqp import commands as C

from . import __version__, codec, errors
from .auth import MECHANISMS, AuthError
from .channel import CLOSED, CLOSING, OPEN, Channel
from .codec import BASIC_ACK, BASIC_PUBLISH, FrameError
from .errors import AMQPError

log = logging.getLogger("amqp_broker.connection")

HANDSHAKE_TIMEOUT = 10.0
CLOSE_OK_TIMEOUT = 3.0
FRAME_MIN_SIZE = 4096

# connection states
S_HEADER, S_START_OK, S_TUNE_OK, S_OPEN, S_OPENED, S_CLOSING, S_CLOSED = range(7)

CAPABILITIES = (
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "consumer_priorities",
    "authentication_failure_close",
    "per_consumer_qos",
    "direct_reply_to",
)


def server_properties() -> dict:
    return {
        "capabilities": {name: True for name in CAPABILITIES},
        "cluster_name": f"amqp-broker@{socket.gethostname()}",
        "copyright": "Copyright (c) the amqp-broker authors",
        "information": "Licensed under the MIT license. An AMQP 0-9-1 broker in Python.",
        "platform": f"Python {platform.python_version()}",
        "product": "amqp-broker",
        "version": __version__,
    }


class Connection(asyncio.Protocol):
    def __init__(self, broker):
        self.broker = broker
        self.loop = broker.loop
        self.transport: asyncio.Transport | None = None
        self.state = S_HEADER
        self._buf = b""
        self.frame_max = broker.frame_max
        self.channel_max = broker.channel_max
        self.heartbeat = 0
        self.channels: dict[int, Channel] = {}
        self._out: list[bytes] = []
        self._receiving = False
        self._flush_scheduled = False
        self._confirm_channels: set[Channel] = set()
        self.write_paused = False
        self.user = None
        self.vhost = None
        self.client_properties: dict = {}
        self.capabilities: dict = {}
        self.exclusive_queues: set = set()
        self.peer: tuple | None = None
        self.name = "?"
        self._suspended = False
        self._store_paused = False  # reading paused until the store's backlog drains
        self._held_frames: list = []
        self._recv_seen = True
        self._sent_seen = False
        self._missed_ticks = 0
        self._heartbeat_timer = None
        self._deadline_timer = None
        self.closed_event = asyncio.Event()

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.peer = peer
        if peer and sock:
            self.name = f"{_fmt(peer)} -> {_fmt(sock)}"
        transport.set_write_buffer_limits(high=1 << 20)
        self.broker.connections.add(self)
        self._deadline_timer = self.loop.call_later(HANDSHAKE_TIMEOUT, self._handshake_timeout)

    def connection_lost(self, exc) -> None:
        if self.state == S_CLOSED:
            return
        self.state = S_CLOSED
        self._cleanup()

    def pause_writing(self) -> None:
        self.write_paused = True
        for channel in self.channels.values():
            channel.paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        for channel in list(self.channels.values()):
            if channel.state == OPEN:
                channel.resume()

    def data_received(self, data: bytes) -> None:
        try:
            self._data_received(data)
        except Exception as exc:  # never let an exception escape into asyncio's transport
            self._internal_failure(exc)

    def _internal_failure(self, exc: Exception) -> None:
        """Last resort for a bug anywhere in the frame handling: log it, close the connection
        with 541 (what RabbitMQ sends when a process of its own crashes), and drop the socket
        if even that fails. Other connections are untouched."""
        log.error("internal error on %s", self.name, exc_info=exc)
        self._receiving = False
        try:
            if self.state < S_CLOSING:
                self._hard_error(errors.InternalError(repr(exc)))
            else:
                self._abort()
        except Exception:
            log.exception("cannot close %s cleanly, dropping it", self.name)
            if self.transport is not None:
                self.transport.abort()
            self.state = max(self.state, S_CLOSING)

    def _data_received(self, data: bytes) -> None:
        if self.state == S_CLOSED:
            return
        self._recv_seen = True
        if self._suspended:  # a handler is waiting (disk): keep the bytes for later
            self._buf += data
            return
        if self._buf:
            data = self._buf + data
            self._buf = b""
        if self.state == S_HEADER:
            if len(data) < 8:
                self._buf = data
                return
            if data[:8] not in codec.ACCEPTED_HEADERS:
                # wrong protocol or version: answer with ours and close, as the spec says
                self.transport.write(codec.PROTOCOL_HEADER)
                self._abort()
                return
            data = data[8:]
            self.state = S_START_OK
            self.send(
                codec.encode(
                    0, C.Connection.Start, version_major=0, version_minor=9,
                    server_properties=server_properties(),
                    mechanisms=" ".join(MECHANISMS), locales="en_US",
                )
            )
        self._receiving = True
        try:
            self._process(data)
        finally:
            self._receiving = False
        self._flush()

    # -- frame loop ----------------------------------------------------------------------------

    def _process(self, data: bytes) -> None:
        try:
            frames, offset = codec.parse_frames(data, 0, self.frame_max)
        except FrameError as exc:
            self._hard_error(AMQPError(exc.code, exc.explanation))
            return
        if offset < len(data):
            self._buf = data[offset:]
        self._run_frames(frames)

    def suspend(self, channel: Channel, awaitable, then) -> None:
        """Stop handling frames until `awaitable` is done, then run `then()` and go on.

        For the few replies that must wait for the disk (tx.commit-ok, a basic.get whose
        message is paged out). Frames after it wait too, so replies keep their order.
        """
        self._suspended = True
        if self.transport is not None:
            self.transport.pause_reading()
        future = asyncio.ensure_future(awaitable)
        future.add_done_callback(lambda fut: self._resume(channel, fut, then))

    def pause_for_store(self) -> None:
        """The store is backlogged: stop reading from this client until it catches up (flow
        control; the store only signals, it never touches a transport)."""
        if self._store_paused or self.transport is None:
            return
        self._store_paused = True
        self.transport.pause_reading()
        self.broker.store.on_caught_up(self._store_caught_up)

    def _store_caught_up(self) -> None:
        self._store_paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _resume(self, channel: Channel, future, then) -> None:
        self._suspended = False
        if self.state >= S_CLOSING:
            return
        self._receiving = True
        try:
            if channel.state == OPEN:
                try:
                    if future.exception() is not None:
                        raise AMQPError(errors.INTERNAL_ERROR, f"internal error: {future.exception()!r}")
                    then()
                except AMQPError as exc:
                    self._error(channel, exc)
            if not self._suspended:  # then() may have suspended again
                held, self._held_frames = self._held_frames, []
                if held and self.state < S_CLOSING:
                    self._run_frames(held)
            if not self._suspended and self._buf and self.state < S_CLOSING:
                data, self._buf = self._buf, b""
                self._process(data)
        finally:
            self._receiving = False
        self._flush()
        if not self._suspended and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _run_frames(self, frames) -> None:
        channels = self.channels
        for position, (ftype, number, payload) in enumerate(frames):
            if self._suspended:
                self._held_frames = frames[position:]
                return
            if self.state >= S_CLOSING:
                self._while_closing(ftype, number, payload)
                continue
            channel = channels.get(number) if number else None
            index = 0
            try:
                if channel is None or channel.state != OPEN:
                    # rare: channel zero, unopened or closing channels
                    self._other_frame(ftype, number, channel, payload)
                    continue
                if ftype == 1:
                    if len(payload) < 4:
                        raise codec.unknown_frame(ftype, payload)
                    if channel._publish is not None:
                        # content is expected: the method is not even decoded (as RabbitMQ's
                        # command assembler); the error names the publish
                        raise AMQPError(errors.UNEXPECTED_FRAME, _content_expected(channel), 60, 40)
                    index = codec.method_index(payload)
                    if index == BASIC_PUBLISH:
                        channel.start_publish(*codec.decode_publish(payload))
                    elif index == BASIC_ACK:
                        channel.ack(*codec.decode_ack(payload))
                    else:
                        channel.handle_method(_decode_method(index, payload), payload)
                elif ftype == 3:
                    if channel._header is None:
                        if channel._publish is not None:
                            raise AMQPError(errors.UNEXPECTED_FRAME, _content_expected(channel), 60, 40)
                        raise AMQPError(errors.UNEXPECTED_FRAME, _METHOD_EXPECTED)
                    index = BASIC_PUBLISH
                    channel.content_body(payload)
                elif ftype == 2:
                    if len(payload) < 12:
                        raise codec.unknown_frame(ftype, payload)
                    if channel._publish is None:
                        raise AMQPError(errors.UNEXPECTED_FRAME, _METHOD_EXPECTED)
                    index = BASIC_PUBLISH
                    channel.content_header(payload)
                else:
                    _not_on_a_channel(ftype, payload)
            except FrameError as exc:
                self._hard_error(AMQPError(exc.code, exc.explanation))
                return
            except AMQPError as exc:
                if not exc.class_id and index and not exc.ids_fixed:
                    exc.class_id, exc.method_id = index >> 16, index & 0xFFFF
                if channel is None or channel.state != OPEN:
                    self._hard_error(exc)
                else:
                    self._error(channel, exc)
                if self.state >= S_CLOSING:
                    return
            except Exception as exc:  # a bug must cost one connection, not the broker
                log.exception("internal error on channel %s of %s", number, self.name)
                self._hard_error(errors.InternalError(f"internal error: {exc!r}"))
                return

    def _other_frame(self, ftype: int, number: int, channel, payload: bytes) -> None:
        """Frames for channel zero, a channel not open, or one we are closing. As in
        rabbit_reader, a frame that cannot be a frame at all (a method shorter than its
        class/method ids, a heartbeat with a payload, a content header shorter than 12 bytes,
        an unknown type) is `unknown_frame` whatever the state; raises AMQPError/FrameError."""
        if ftype == 1:
            if len(payload) < 4:
                raise codec.unknown_frame(ftype, payload)
        elif ftype == 8:
            if payload:
                raise codec.unknown_frame(ftype, payload)
        elif ftype == 2:
            if len(payload) < 12:
                raise codec.unknown_frame(ftype, payload)
        elif ftype != 3:
            raise codec.unknown_frame(ftype, payload)
        if number == 0:
            self._channel_zero(ftype, payload)
        elif self.state < S_OPENED:  # nothing but channel zero before connection.open-ok
            raise AMQPError(errors.UNEXPECTED_FRAME, f"type {ftype}, {codec.payload_snippet(payload)}")
        elif channel is None:
            self._unopened(ftype, number, payload)
        else:
            self._closing_channel(channel, ftype, payload)

    def _error(self, channel: Channel, exc: AMQPError) -> None:
        if exc.hard:
            self._hard_error(exc)
            return
        log.debug("channel error on %s channel %s: %s", self.name, channel.number, exc.text)
        channel.teardown()
        channel.state = CLOSING
        self.send(
            codec.encode(
                channel.number, C.Channel.Close, reply_code=exc.code, reply_text=exc.text,
                class_id=exc.class_id, method_id=exc.method_id,
            )
        )

    def _closing_channel(self, channel: Channel, ftype: int, payload: bytes) -> None:
        """After we sent channel.close, only close-ok (or the peer's own close) matters. Methods
        are still decoded (RabbitMQ's reader does: an undecodable one is a connection error);
        content frames of a publish cut short by the error are dropped."""
        if ftype == 8:
            _not_on_a_channel(ftype, payload)
        if ftype != 1:
            return
        index = codec.method_index(payload)
        _decode_method(index, payload, unknown_ok=True)
        if index == 0x00140029:  # channel.close-ok
            self.channels.pop(channel.number, None)
        elif index == 0x00140028:  # channel.close crossing ours
            self.send(codec.encode(channel.number, C.Channel.CloseOk))

    def _unopened(self, ftype: int, number: int, payload: bytes) -> None:
        if ftype == 8:
            _not_on_a_channel(ftype, payload)
        if ftype != 1:
            raise AMQPError(errors.UNEXPECTED_FRAME, _METHOD_EXPECTED)
        index = codec.method_index(payload)
        _decode_method(index, payload, unknown_ok=True)  # decoded first, as RabbitMQ does
        if index == 0x0014000A:  # channel.open
            # channel_max limits how many channels are open, not their numbers (as RabbitMQ)
            if len(self.channels) >= self.channel_max:
                raise AMQPError(
                    errors.NOT_ALLOWED,
                    f"number of channels opened ({len(self.channels)}) has reached the "
                    f"negotiated channel_max ({self.channel_max})",
                )
            self.channels[number] = Channel(self, number)
            self.send(codec.encode(number, C.Channel.OpenOk))
            return
        raise AMQPError(errors.CHANNEL_ERROR, "expected 'channel.open'", index >> 16, index & 0xFFFF)

    def channel_closed(self, channel: Channel) -> None:
        self.channels.pop(channel.number, None)
        self._confirm_channels.discard(channel)

    # -- channel zero: handshake and connection methods -------------------------------------------

    def _channel_zero(self, ftype: int, payload: bytes) -> None:
        if ftype == 8:
            return
        if ftype != 1:  # content on channel zero
            raise AMQPError(errors.UNEXPECTED_FRAME, f"type {ftype}, {codec.payload_snippet(payload)}")
        index = codec.method_index(payload)
        try:
            obj = codec.decode_method(payload)
        except KeyError:
            raise AMQPError(errors.COMMAND_INVALID, f"unknown method {index >> 16}/{index & 0xFFFF}") from None
        except codec.MalformedUtf8:
            # on channel zero RabbitMQ names the method
            raise AMQPError(errors.FRAME_ERROR, codec.MALFORMED_UTF8, index >> 16, index & 0xFFFF) from None
        except AMQPError as exc:
            # fields that do not parse crash RabbitMQ's reader here: 541, bare, as it answers
            raise errors.InternalError(exc.explanation) from None
        try:
            self._connection_method(obj)
        except AMQPError as exc:
            if not exc.class_id and not exc.ids_fixed:
                exc.class_id, exc.method_id = index >> 16, index & 0xFFFF
            raise

    def _connection_method(self, obj) -> None:
        state = self.state
        kind = type(obj)
        if state == S_START_OK and kind is C.Connection.StartOk:
            self._start_ok(obj)
        elif state == S_TUNE_OK and kind is C.Connection.TuneOk:
            self._tune_ok(obj)
        elif state == S_OPEN and kind is C.Connection.Open:
            self._open(obj)
        elif kind is C.Connection.Close:
            self._cleanup_channels()
            self.send(codec.encode(0, C.Connection.CloseOk))
            self._flush()
            self.state = S_CLOSING
            self.transport.close()
        elif state == S_OPENED and kind is C.Connection.UpdateSecret:
            self.send(codec.encode(0, C.Connection.UpdateSecretOk))
        elif state == S_OPENED and kind in (C.Connection.Blocked, C.Connection.Unblocked):
            pass
        else:
            raise AMQPError(
                errors.CHANNEL_ERROR, f"unexpected method in connection state {_STATE_NAMES.get(state, 'running')}"
            )

    def _start_ok(self, obj) -> None:
        self.client_properties = obj.client_properties or {}
        caps = self.client_properties.get("capabilities")
        self.capabilities = caps if isinstance(caps, dict) else {}
        mechanism = obj.mechanism or ""
        if mechanism not in MECHANISMS:
            log.warning("login refused on %s: unsupported mechanism %r", self.name, mechanism)
            self._abort()  # RabbitMQ drops the socket without connection.close
            return
        try:
            self.user = self.broker.users.authenticate(mechanism, obj.response, _host(self.peer))
        except AuthError as exc:
            log.warning("login refused on %s: %s", self.name, exc)
            if self.capabilities.get("authentication_failure_close"):
                self._hard_error(
                    AMQPError(
                        errors.ACCESS_REFUSED,
                        f"Login was refused using authentication mechanism {mechanism}. "
                        "For details see the broker logfile.",
                    )
                )
            else:
                self._abort()
            return
        self.state = S_TUNE_OK
        self.send(
            codec.encode(
                0, C.Connection.Tune, channel_max=self.broker.channel_max,
                frame_max=self.broker.frame_max, heartbeat=self.broker.heartbeat,
            )
        )

    def _tune_ok(self, obj) -> None:
        # Values above what the server proposed (0 means "unlimited", so above too) or a
        # frame_max below the 4096 minimum: RabbitMQ drops the socket without connection.close.
        frame_max, channel_max = obj.frame_max, obj.channel_max
        if (
            frame_max == 0 or frame_max > self.broker.frame_max or frame_max < FRAME_MIN_SIZE
            or channel_max == 0 or channel_max > self.broker.channel_max
        ):
            log.warning("refusing tune-ok from %s: frame_max=%s channel_max=%s", self.name, frame_max, channel_max)
            self._abort()
            return
        self.frame_max = frame_max
        self.channel_max = channel_max
        self.heartbeat = obj.heartbeat
        self.state = S_OPEN
        if self.heartbeat:
            interval = self.heartbeat / 2
            self._heartbeat_timer = self.loop.call_later(interval, self._heartbeat_tick)

    def _open(self, obj) -> None:
        vhost = self.broker.vhosts.get(obj.virtual_host)
        if vhost is None:
            raise AMQPError(errors.NOT_ALLOWED, f"vhost {obj.virtual_host} not found")
        self.vhost = vhost
        self.state = S_OPENED
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        self.send(codec.encode(0, C.Connection.OpenOk))
        log.debug("connection %s opened vhost %s as %s", self.name, vhost.name, self.user.name)

    # -- closing -----------------------------------------------------------------------------------

    def _while_closing(self, ftype: int, number: int, payload: bytes) -> None:
        """After connection.close (sent or received) only close-ok / a crossing close count;
        everything else, malformed or not, is ignored (rabbit_reader in state closing)."""
        if ftype != 1 or number != 0 or len(payload) < 4:
            return
        index = codec.method_index(payload)
        if index == 0x000A0033:  # connection.close-ok
            self._abort(graceful=True)
        elif index == 0x000A0032:  # connection.close crossing ours
            self.send(codec.encode(0, C.Connection.CloseOk))
            self._flush()
            self._abort(graceful=True)

    def _hard_error(self, exc: AMQPError) -> None:
        text = exc.text
        # a bare text (541 INTERNAL_ERROR) keeps its detail for the log
        log.info("closing connection %s: %s", self.name,
                 text if exc.explanation in text else f"{text} ({exc.explanation})")
        self.close(exc.code, exc.text, exc.class_id, exc.method_id)

    def close(self, code: int, text: str, class_id: int = 0, method_id: int = 0) -> None:
        """Server-initiated connection.close; the socket closes on close-ok or a timeout."""
        if self.state >= S_CLOSING:
            return
        self._cleanup_channels()
        self.state = S_CLOSING
        self.send(
            codec.encode(0, C.Connection.Close, reply_code=code, reply_text=text,
                         class_id=class_id, method_id=method_id)
        )
        self._flush()
        self._deadline_timer = self.loop.call_later(CLOSE_OK_TIMEOUT, self._abort)

    def _abort(self, graceful: bool = False) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if graceful:
                self.transport.close()
            else:
                self._flush()
                self.transport.close()
        self.state = max(self.state, S_CLOSING)

    def _handshake_timeout(self) -> None:
        self._deadline_timer = None
        if self.state < S_OPENED:
            log.info("handshake timeout on %s", self.name)
            if self.transport is not None:
                self.transport.abort()

    def _heartbeat_tick(self) -> None:
        if self.state >= S_CLOSING:
            return
        if not self._sent_seen:
            self.transport.write(codec.HEARTBEAT_FRAME)
        self._sent_seen = False
        if self._recv_seen:
            self._missed_ticks = 0
        else:
            self._missed_ticks += 1
        self._recv_seen = False
        if self._missed_ticks >= 4:  # ticks are half an interval: two intervals of silence
            log.warning("missed heartbeats from %s, closing it", self.name)
            self.transport.abort()
            return
        self._heartbeat_timer = self.loop.call_later(self.heartbeat / 2, self._heartbeat_tick)

    def _cleanup_channels(self) -> None:
        for channel in list(self.channels.values()):
            channel.teardown()
        self._confirm_channels.clear()

    def _cleanup(self) -> None:
        for timer in (self._heartbeat_timer, self._deadline_timer):
            if timer is not None:
                timer.cancel()
        self._cleanup_channels()
        self.channels.clear()
        if self.vhost is not None:
            self.vhost.connection_closed(self)
        self.broker.connections.discard(self)
        self._out = []
        self.closed_event.set()

    # -- output ------------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self._out.append(data)
        if not self._receiving and not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def confirms_ready(self, channel: Channel) -> None:
        self._confirm_channels.add(channel)
        if not self._receiving and not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._confirm_channels:
            for channel in self._confirm_channels:
                if channel.state == OPEN and channel.confirm is not None:
                    self._out.extend(channel.confirm_frames())
            self._confirm_channels.clear()
        if self._out and self.transport is not None and not self.transport.is_closing():
            out = self._out
            self._out = []
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            self._sent_seen = True
        else:
            self._out = []


_METHOD_EXPECTED = "expected method frame, got non method frame instead"


def _content_expected(channel: Channel) -> str:
    if channel._header is not None:
        return "expected content body, got non content body frame instead"
    return "expected content header for class 60, got non content header frame instead"


def _not_on_a_channel(ftype: int, payload: bytes):
    """A heartbeat (or an unknown frame type) on a channel other than zero."""
    if ftype == 8 and not payload:
        raise AMQPError(errors.UNEXPECTED_FRAME, f"type 8, {codec.payload_snippet(payload)}")
    raise codec.unknown_frame(ftype, payload)


def _decode_method(index: int, payload: bytes, unknown_ok: bool = False):
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


_STATE_NAMES = {S_START_OK: "starting", S_TUNE_OK: "tuning", S_OPEN: "opening", S_OPENED: "running"}


def _host(peer) -> str | None:
    if not peer:
        return None
    return peer[0]


def _fmt(addr) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


__all__ = ["Connection", "CLOSED"]
