"""Blocking publishers during a resource alarm (amqp_broker/alarms.py), as rabbit_reader's
throttle: functions of the Session they act on, so each rule is one call in a unit test.

A connection is only blocked once it publishes while an alarm is in effect: the publish is
handled, the rest of the bytes already read too, then nothing more is read (the adapter pauses
the socket) until no alarm is left. Clients that said they understand connection.blocked (the
`connection.blocked` capability) are told, with rabbit_reader's reason, and told again with
connection.unblocked. Connections that only consume are never blocked.
"""
from __future__ import annotations

import logging

from pamqp import commands as C

from .. import codec
from ..alarms import blocked_reason
from . import effects
from .states import CLOSING

log = logging.getLogger("amqp_broker.connection")


def alarms_changed(session, active: frozenset) -> None:
    """The broker's alarms changed (rabbit_reader:conserve_resources/3)."""
    session.resource_alarms = active
    if session.blocked and not active:
        session.blocked = False
        session.effects.append(effects.ALARM_UNBLOCK)
        if session.blocked_sent:
            session.blocked_sent = False
            if session.state < CLOSING:
                session.send(codec.encode(0, C.Connection.Unblocked))


def publish_under_alarm(session) -> None:
    """A basic.publish arrived while an alarm is in effect: block the connection."""
    session.blocked = True
    session.effects.append(effects.ALARM_BLOCK)
    reason = blocked_reason(session.resource_alarms)
    if session.capabilities.get("connection.blocked") is True:
        session.blocked_sent = True
        session.send(codec.encode(0, C.Connection.Blocked, reason=reason))
    log.info("connection %s blocked: %s", session.name, reason)
