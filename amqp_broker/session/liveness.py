"""What the passing of time does to a connection (the engine's `tick`): the handshake deadline,
the close-ok and linger deadlines, heartbeats sent and missed. A function of the Session it
acts on, like throttle.py, so each rule is one call with a chosen `now` in a unit test.
"""
from __future__ import annotations

import logging

from .. import codec
from . import effects
from .states import CLOSED, CLOSING, OPENED
from .timers import BEAT, DEADLINE, SILENT

log = logging.getLogger("amqp_broker.connection")


def tick(session, now: float) -> None:
    session.now = now
    outbox = session.outbox
    if session.blocked:  # not read while blocked: its silence is ours (rabbit_heartbeat:pause_monitor)
        session.timers.received = True
    due = session.timers.due(now, outbox.sent_seen)
    outbox.sent_seen = False
    if due & DEADLINE:
        if session.state < OPENED:
            log.info("handshake timeout on %s", session.name)
            session.finish(effects.ABORT_SOCKET)
        elif session.state == CLOSING:  # no close-ok in time
            session.finish(effects.CLOSE_SOCKET)
        elif session.state == CLOSED:  # the peer did not close after close-ok
            session.effects.append(effects.CLOSE_SOCKET)
    if session.state >= CLOSING:
        return
    if due & SILENT:
        log.warning("missed heartbeats from %s, closing it", session.name)
        session.finish(effects.ABORT_SOCKET)
    elif due & BEAT:
        outbox.send(codec.HEARTBEAT_FRAME)
