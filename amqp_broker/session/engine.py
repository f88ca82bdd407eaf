"""The session engine: one client connection's AMQP state machine, sans-IO (the h11 shape).

Bytes go in (`receive`), bytes come out (`data_to_send`), and whatever else the connection needs
from the outside world is an effect in `effects` (close the socket, linger, suspend until the
disk answers, stop reading while the store is behind). Time comes in as an argument (`receive`
and `tick` take `now`; `wakeup_at` says when the engine next wants a `tick`), so every protocol
rule — framing errors, the handshake, which frame may come when, closing — is a plain function
call in a unit test. The asyncio side lives in amqp_broker/server.py.

Reading costs no task per frame: `receive` splits whole frames (codec.parse_frames), runs each
to completion against its channel, and the adapter writes everything produced with one write.
The two per-message methods, basic.publish and basic.ack, are recognised by their ids before any
generic decoding (the hot path); everything else is decoded and dispatched by AMQP class.
"""
from __future__ import annotations

import logging

from .. import codec, errors
from ..codec import BASIC_ACK, BASIC_PUBLISH, FRAME_BODY, FRAME_HEADER, FRAME_METHOD, FrameError
from ..errors import AMQPError
from . import effects, handshake, liveness, throttle
from .channel import ChannelSession
from .channel_mux import other_frame
from .frames import METHOD_EXPECTED, content_expected, decode_channel_method, not_on_a_channel
from .outbox import Outbox
from .states import CLOSED, CLOSING, HEADER, OPENED
from .timers import Timers

log = logging.getLogger("amqp_broker.connection")

HANDSHAKE_TIMEOUT = 10.0  # seconds from the socket's accept to connection.open
CLOSE_OK_TIMEOUT = 3.0  # after our connection.close, how long we wait for close-ok
LINGER_TIMEOUT = 30.0  # after close-ok, how long we wait for the peer to close its side



class Session:
    def __init__(self, broker, peer: tuple | None = None, name: str = "?", now: float = 0.0):
        self.broker = broker  # vhosts, users, limits, reply-to registry, delayed delivery
        self.peer = peer
        self.name = name
        self.state = HEADER
        self.frame_max = broker.frame_max
        self.channel_max = broker.channel_max
        self.heartbeat = 0
        self.user = None
        self.vhost = None
        self.access = None  # the user's rights on the vhost (access.Access), from connection.open
        self.client_properties: dict = {}
        self.auth_mechanism: str | None = None  # the SASL mechanism the client logged in with
        # the CN of the client certificate a TLS handshake verified (the adapter sets it):
        # EXTERNAL is offered, and logs in as that user, only when there is one
        self.peer_cert_cn: str | None = None
        # wall-clock seconds of the accept, for the management API (the engine itself only
        # knows the loop time it is given); the adapter sets it
        self.connected_at: float | None = None
        self.capabilities: dict = {}
        self.exclusive_queues: set = set()
        self.channels: dict[int, ChannelSession] = {}
        self.write_paused = False  # the adapter's socket buffer is full
        self.effects: list = []
        self.outbox = Outbox()
        self.now = now
        self.timers = Timers(now + broker.handshake_timeout)
        self._buf = b""
        self._suspended = None  # (channel, continuation) to run when a Suspend effect completes
        self._held_frames: list = []
        self.store_is_behind = False  # the adapter was asked to wait for the store (backpressure.py)
        # resource alarms (throttle.py): the alarms in effect, whether this connection is
        # blocked (it published while one was), and whether it was told so
        self.resource_alarms: frozenset = frozenset()
        self.blocked = False
        self.blocked_sent = False

    # -- input ---------------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> None:
        """Bytes from the peer. Never raises: a bug in a handler costs this connection a 541,
        not the broker."""
        self.now = now
        try:
            self._receive(data)
        except Exception as exc:  # a bug must cost one connection, not the broker
            self._internal_failure(exc)

    def _receive(self, data: bytes) -> None:
        if self.state == CLOSED:
            return  # lingering: discard until the peer closes its side
        self.timers.received = True
        if self._suspended is not None:  # a handler waits for the disk: keep the bytes
            self._buf += data
            return
        if self._buf:
            data = self._buf + data
            self._buf = b""
        if self.state == HEADER:
            if len(data) < 8:
                self._buf = data
                return
            if not handshake.protocol_header(self, data[:8]):
                self.finish(effects.CLOSE_SOCKET)
                return
            data = data[8:]
        outbox = self.outbox
        outbox.receiving = True
        try:
            self._process(data)
        finally:
            outbox.receiving = False

    def _process(self, data: bytes) -> None:
        try:
            frames, offset = codec.parse_frames(data, 0, self.frame_max)
        except FrameError as exc:
            self.hard_error(AMQPError(exc.code, exc.explanation))
            return
        if offset < len(data):
            self._buf = data[offset:]
        self._run_frames(frames)

    def _run_frames(self, frames) -> None:
        channels = self.channels
        # the frame types as locals: compared for every frame, a global lookup each time adds up
        METHOD, HEADER, BODY = FRAME_METHOD, FRAME_HEADER, FRAME_BODY  # noqa: N806
        alarmed = self.resource_alarms  # fixed for a batch: alarms change between reads only
        for position, (ftype, number, payload) in enumerate(frames):
            if self._suspended is not None:
                self._held_frames = frames[position:]
                return
            if self.state >= CLOSING:
                if self.state == CLOSING:
                    handshake.while_closing(self, ftype, number, payload)
                continue
            channel = channels.get(number) if number else None
            index = 0
            try:
                if channel is None or not channel.open:
                    other_frame(self, ftype, number, channel, payload)  # rare: channel 0 etc.
                    continue
                if ftype == METHOD:
                    if len(payload) < 4:
                        raise codec.unknown_frame(ftype, payload)
                    content = channel.content
                    if content.expecting:
                        # content is expected: the method is not even decoded (as RabbitMQ's
                        # command assembler); the error names the publish
                        raise AMQPError(errors.UNEXPECTED_FRAME, content_expected(content), *codec.PUBLISH_IDS)
                    index = codec.method_index(payload)
                    if index == BASIC_PUBLISH:
                        content.start(*codec.decode_publish(payload))
                        if alarmed and not self.blocked:
                            throttle.publish_under_alarm(self)
                    elif index == BASIC_ACK:
                        channel.ack(*codec.decode_ack(payload))
                    else:
                        channel.handle_method(decode_channel_method(index, payload))
                elif ftype == BODY:
                    content = channel.content
                    if not content.has_header:
                        if content.expecting:
                            raise AMQPError(errors.UNEXPECTED_FRAME, content_expected(content), *codec.PUBLISH_IDS)
                        raise AMQPError(errors.UNEXPECTED_FRAME, METHOD_EXPECTED)
                    index = BASIC_PUBLISH
                    content.body(payload)
                elif ftype == HEADER:
                    if len(payload) < 12:
                        raise codec.unknown_frame(ftype, payload)
                    content = channel.content
                    if not content.expecting:
                        raise AMQPError(errors.UNEXPECTED_FRAME, METHOD_EXPECTED)
                    index = BASIC_PUBLISH
                    content.header(payload)
                else:
                    not_on_a_channel(ftype, payload)
            except FrameError as exc:
                self.hard_error(AMQPError(exc.code, exc.explanation))
                return
            except AMQPError as exc:
                if not exc.class_id and index and not exc.ids_fixed:
                    exc.class_id, exc.method_id = index >> 16, index & 0xFFFF
                if channel is None or not channel.open:
                    self.hard_error(exc)
                else:
                    self.channel_error(channel, exc)
                if self.state >= CLOSING:
                    return
            except Exception as exc:  # a bug must cost one connection, not the broker
                log.exception("internal error on channel %s of %s", number, self.name)
                self.hard_error(errors.InternalError(f"internal error: {exc!r}"))
                return

    def channel_closed(self, channel: ChannelSession) -> None:
        self.channels.pop(channel.number, None)
        self.outbox.forget_channel(channel)

    # -- errors and closing --------------------------------------------------------------------

    def channel_error(self, channel: ChannelSession, exc: AMQPError) -> None:
        if exc.hard:
            self.hard_error(exc)
            return
        log.debug("channel error on %s channel %s: %s", self.name, channel.number, exc.text)
        channel.content.closing()
        channel.teardown()
        self.send(handshake.channel_close(channel.number, exc))

    def hard_error(self, exc: AMQPError) -> None:
        # a bare text (541 INTERNAL_ERROR) keeps its detail for the log
        text = exc.text
        log.info("closing connection %s: %s", self.name,
                 text if exc.explanation in text else f"{text} ({exc.explanation})")
        self.close(exc.code, exc.text, exc.class_id, exc.method_id)

    def close(self, code: int, text: str, class_id: int = 0, method_id: int = 0) -> None:
        """Server-initiated connection.close; the socket closes on close-ok or a timeout."""
        if self.state >= CLOSING:
            return
        self._teardown_channels()
        self.state = CLOSING
        self.send(handshake.connection_close(code, text, class_id, method_id))
        self.timers.set_deadline(self.now + CLOSE_OK_TIMEOUT)

    def peer_closed(self) -> None:
        """The peer's connection.close: answer close-ok, then linger (see effects.Linger)."""
        self._teardown_channels()
        self.send(handshake.connection_close_ok())
        self.linger()

    def linger(self) -> None:
        """The closing handshake is complete (see effects.Linger)."""
        self.finish(effects.LINGER)
        self.timers.set_deadline(self.now + LINGER_TIMEOUT)

    def finish(self, effect) -> None:
        """The AMQP conversation is over: nothing more is read, `effect` ends the socket."""
        self.state = CLOSED
        self.timers.stop_heartbeat()
        self._suspended = None
        self._held_frames = []
        self._buf = b""
        self.effects.append(effect)

    def refuse(self) -> None:
        """Drop the connection without connection.close (what RabbitMQ does for a wrong
        mechanism, a tune-ok out of range, or a failed login from an old client)."""
        self._teardown_channels()
        self.finish(effects.CLOSE_SOCKET)

    def _internal_failure(self, exc: Exception) -> None:
        """Last resort for a bug anywhere in the frame handling: log it, close the connection
        with 541 (what RabbitMQ sends when a process of its own crashes), and drop the socket
        if even that fails. Other connections are untouched."""
        log.error("internal error on %s", self.name, exc_info=exc)
        self.outbox.receiving = False
        try:
            if self.state < CLOSING:
                self.hard_error(errors.InternalError(repr(exc)))
            elif self.state != CLOSED:
                self.finish(effects.CLOSE_SOCKET)
        except Exception:
            log.exception("cannot close %s cleanly, dropping it", self.name)
            self.finish(effects.ABORT_SOCKET)

    def _teardown_channels(self) -> None:
        for channel in list(self.channels.values()):
            channel.teardown()

    def connection_lost(self) -> None:
        """The socket is gone (whatever the reason): release everything the connection held."""
        self.state = CLOSED
        self._teardown_channels()
        self.channels.clear()
        if self.vhost is not None:
            self.vhost.connection_closed(self)
        self.outbox.clear()
        self.timers.set_deadline(None)
        self.timers.stop_heartbeat()

    # -- suspension (waiting for the disk) ------------------------------------------------------

    def suspend(self, channel: ChannelSession, awaitable, then) -> None:
        """Stop handling frames until `awaitable` is done, then run `then()` (for `channel`)
        and go on."""
        self._suspended = (channel, then)
        self.effects.append(effects.Suspend(awaitable))

    def resume(self, error: BaseException | None, now: float) -> None:
        """The awaitable of a Suspend effect finished (`error` if it failed)."""
        self.now = now
        suspended, self._suspended = self._suspended, None
        if suspended is None or self.state >= CLOSING:
            return
        channel, then = suspended
        self.outbox.receiving = True
        try:
            if channel.open:
                try:
                    if error is not None:
                        raise AMQPError(errors.INTERNAL_ERROR, f"internal error: {error!r}")
                    then()
                except AMQPError as exc:
                    self.channel_error(channel, exc)
            if self._suspended is None:  # then() may have suspended again
                held, self._held_frames = self._held_frames, []
                if held and self.state < CLOSING:
                    self._run_frames(held)
            if self._suspended is None and self._buf and self.state < CLOSING:
                data, self._buf = self._buf, b""
                self._process(data)
        except Exception as exc:
            self._internal_failure(exc)
        finally:
            self.outbox.receiving = False

    @property
    def suspended(self) -> bool:
        return self._suspended is not None

    # -- output ------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.outbox.send(data)

    def data_to_send(self) -> bytes:
        """Everything to write now (see outbox.Outbox.drain)."""
        return self.outbox.drain()

    # -- time ------------------------------------------------------------------------------------

    @property
    def wakeup_at(self) -> float | None:
        """When the adapter should call `tick` next (None: no timer needed)."""
        return self.timers.wakeup_at

    def start_heartbeat(self, seconds: int) -> None:
        self.heartbeat = seconds
        self.timers.start_heartbeat(self.now, seconds)

    def opened(self) -> None:
        self.state = OPENED
        self.timers.set_deadline(None)
        self.broker.churn.connections_opened += 1  # RabbitMQ counts connections past open

    def tick(self, now: float) -> None:
        """Called by the adapter at (or after) `wakeup_at` (rules: liveness.py)."""
        liveness.tick(self, now)
