"""What the session engine asks its I/O adapter to do, besides sending bytes.

The engine never touches a socket, a timer or the event loop: it appends effects to
`Session.effects` and the adapter (amqp_broker/server.py) carries them out. Most read batches
produce none, so the adapter only looks when the list is non-empty.
"""
from __future__ import annotations


class Effect:
    __slots__ = ()


class CloseSocket(Effect):
    """Send what is pending, then close the socket now (a refused handshake, a timeout after
    our connection.close). Unread input may make the kernel answer with a reset: only used
    where RabbitMQ drops the socket too."""

    __slots__ = ()


class AbortSocket(Effect):
    """Drop the socket at once, pending output included (handshake or heartbeat timeout)."""

    __slots__ = ()


class Linger(Effect):
    """The AMQP conversation is over (close-ok sent or received): send what is pending, shut
    the sending side, and keep reading — discarding — until the peer closes its side. Closing
    with unread bytes in the receive buffer makes the kernel send a TCP reset, which a client
    whose publishes were still in flight would see instead of close-ok (RabbitMQ discards
    frames after close-ok in the same way, until the client closes or a timeout)."""

    __slots__ = ()


class Suspend(Effect):
    """Stop reading until `awaitable` is done, then call `Session.resume(error)`. For the few
    replies that must wait for the disk (tx.commit-ok, a basic.get of a paged-out message);
    later frames wait too, so replies keep their order."""

    __slots__ = ("awaitable",)

    def __init__(self, awaitable):
        self.awaitable = awaitable


class StoreBehind(Effect):
    """The store has more unwritten data than it wants: stop reading this client until the
    store's `on_caught_up` fires (TCP backpressure instead of buffering in memory)."""

    __slots__ = ()


class AlarmBlock(Effect):
    """A resource alarm is in effect and this connection published: stop reading it until
    the alarms clear (rabbit_reader's `blocked` state: nothing more is read, not even acks)."""

    __slots__ = ()


class AlarmUnblock(Effect):
    """The resource alarms cleared: read this connection again."""

    __slots__ = ()


CLOSE_SOCKET = CloseSocket()
ABORT_SOCKET = AbortSocket()
LINGER = Linger()
STORE_BEHIND = StoreBehind()
ALARM_BLOCK = AlarmBlock()
ALARM_UNBLOCK = AlarmUnblock()
