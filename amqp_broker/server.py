"""The asyncio side of a client connection: sockets, timers and backpressure around the
sans-IO session engine (amqp_broker/session/engine.py).

An asyncio.Protocol, so reading costs no task per frame: each read is handed to the engine
whole, and everything it produced is written with one transport.write. Output produced outside
a read (a delivery caused by another connection's publish, confirms after a disk commit) makes
the engine call `on_output`, which schedules one flush per event-loop iteration.

What the adapter owns and the engine may not touch: the transport (writes, pausing reads,
closing), the one timer the engine asks for (`wakeup_at`: handshake and close timeouts,
heartbeats), awaiting the disk for a suspended channel, and subscribing to the store's
"caught up" signal while publishers are held back.
"""
from __future__ import annotations

import asyncio
import logging
import time

from .session import Session, backpressure, effects, throttle
from .tls import ConnectionTLS

log = logging.getLogger("amqp_broker.connection")

_SUSPENDED, _STORE, _ALARM = "suspended", "store", "alarm"  # why reading is paused


class ClientConnection(asyncio.Protocol):
    def __init__(self, broker):
        self.broker = broker
        self.loop = broker.loop
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.tls: ConnectionTLS | None = None  # None: plain TCP
        self.closed_event = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._reading_paused: set[str] = set()
        self._lingering = False

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        name = f"{_fmt(peer)} -> {_fmt(sock)}" if peer and sock else "?"
        self.session = Session(self.broker, peer, name, self.loop.time())
        self.session.connected_at = time.time()
        # on a TLS listener asyncio calls connection_made once the handshake is done, so the
        # verified client certificate (if any) is known here; the engine only gets its CN
        self.tls = ConnectionTLS.of(transport)
        if self.tls is not None:
            self.session.peer_cert_cn = self.tls.peer_cn
        self.session.outbox.on_output = self._schedule_flush
        transport.set_write_buffer_limits(high=1 << 20)
        self.broker.connections.add(self)
        if self.broker.alarms.active:
            throttle.alarms_changed(self.session, self.broker.alarms.active)
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # after close-ok: discard until the peer closes (effects.Linger)
        self.session.receive(data, self.loop.time())
        self._flush()

    def connection_lost(self, exc) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.session.connection_lost()
        self.broker.connections.discard(self)
        if self.session.vhost is not None:  # it was open (counted by Session.opened)
            self.broker.churn.connections_closed += 1
        self.closed_event.set()

    def pause_writing(self) -> None:
        backpressure.pause_writing(self.session)

    def resume_writing(self) -> None:
        backpressure.resume_writing(self.session)
        self._flush()

    # -- driving the engine ----------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write what the engine produced, carry out its effects, follow its timer."""
        session = self.session
        transport = self.transport
        out = session.data_to_send()
        if out and not transport.is_closing():
            transport.write(out)
        if session.effects:
            todo, session.effects = session.effects, []
            for effect in todo:
                self._apply(effect)
        if session.wakeup_at != self._timer_at:
            self._arm_timer()

    def _apply(self, effect) -> None:
        transport = self.transport
        if isinstance(effect, effects.Suspend):
            self._pause_reading(_SUSPENDED)
            future = asyncio.ensure_future(effect.awaitable)
            future.add_done_callback(self._suspension_done)
        elif effect is effects.STORE_BEHIND:
            self._pause_reading(_STORE)
            self.session.vhost.store.on_caught_up(self._store_caught_up)
        elif effect is effects.ALARM_BLOCK:
            self._pause_reading(_ALARM)
        elif effect is effects.ALARM_UNBLOCK:
            self._resume_reading(_ALARM)
        elif effect is effects.LINGER:
            self._lingering = True
            self._reading_paused.clear()  # read on, to see the peer's end of stream
            if not transport.is_closing():
                transport.resume_reading()
                if transport.can_write_eof():
                    transport.write_eof()
                else:
                    transport.close()
        elif effect is effects.CLOSE_SOCKET:
            transport.close()
        elif effect is effects.ABORT_SOCKET:
            transport.abort()

    def _suspension_done(self, future: asyncio.Future) -> None:
        error = None if future.cancelled() else future.exception()
        self.session.resume(error, self.loop.time())
        self._flush()
        if not self.session.suspended:
            self._resume_reading(_SUSPENDED)

    def _store_caught_up(self) -> None:
        backpressure.store_caught_up(self.session)
        self._resume_reading(_STORE)

    def _pause_reading(self, why: str) -> None:
        if not self._reading_paused and not self.transport.is_closing():
            self.transport.pause_reading()
        self._reading_paused.add(why)

    def _resume_reading(self, why: str) -> None:
        if why not in self._reading_paused:
            return
        self._reading_paused.discard(why)
        if not self._reading_paused and not self.transport.is_closing():
            self.transport.resume_reading()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self._timer_at = self.session.wakeup_at
        if when is not None:
            self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.session.tick(self.loop.time())
        self._flush()

    # -- used by the broker --------------------------------------------------------------------

    def close(self, code: int, text: str) -> None:
        """Server-initiated connection.close (shutdown); the socket closes on close-ok."""
        self.session.now = self.loop.time()
        self.session.close(code, text)
        self._flush()

    def resource_alarm(self, active: frozenset) -> None:
        """The broker's resource alarms changed (see session/throttle.py)."""
        if self.session is None or self.transport is None or self.transport.is_closing():
            return
        throttle.alarms_changed(self.session, active)
        self._flush()

    def abort(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


def _fmt(addr) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
