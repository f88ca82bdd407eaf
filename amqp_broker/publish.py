"""The one publish path: route a complete message and put it into the queues it reaches.

Every message enters queues here, whoever publishes it: a client's channel
(session/publishing.py, after its checks), an x-delayed-message exchange when a held message
falls due (delayed.py), and dead-lettering (deadletter.py, which routes with its own keys and
drops cycles first). What the caller must do next — confirm, nack, return, wait for the disk —
comes back as a few bit flags, so the common case allocates nothing.
"""
from __future__ import annotations

from .message import Message
from .properties import strip_header
from .routing import route

ROUTED = 1  # at least one queue (or a delayed exchange) took the message
REJECTED = 2  # some queue refused it (x-overflow reject-publish): nack under confirms
STORED = 4  # written to the store: a confirm must wait for the commit that holds it


def publish(vhost, exchange, msg: Message, delayed) -> int:
    """Route `msg`, published to `exchange` of `vhost`, and enqueue it. `delayed` is the
    broker's DelayedDelivery, which holds messages of x-delayed-message exchanges."""
    exchange.stats_in += 1  # message statistics (stats.py): publish_in / publish_out
    if exchange.delayed:
        delay = delayed.delay_of(msg)
        if delay is not None:
            # held until due. As with the plugin, the publish counts as unroutable now
            # (basic.return if mandatory); unlike the plugin (its issue #36) the alternate
            # exchange does not get a second copy now: the message is delivered once, when due.
            return STORED if delayed.hold(vhost, exchange, msg, delay) else 0
    queues = route(vhost, exchange, msg)
    if not queues:
        return 0
    exchange.stats_out += len(queues)
    # enqueue() inlined: this is every client publish, and a call costs as much as the loop
    if b"\x03BCC" in msg.header:
        msg = without_bcc(msg)
    flags = ROUTED
    for queue in queues:
        if not queue.enqueue(msg):
            flags = ROUTED | REJECTED
    if msg.store_id is not None:  # a durable queue wrote it
        flags |= STORED
    return flags


def enqueue(msg: Message, queues) -> int:
    """Put a routed message into its queues -> REJECTED / STORED flags."""
    if b"\x03BCC" in msg.header:
        msg = without_bcc(msg)
    flags = 0
    for queue in queues:
        if not queue.enqueue(msg):
            flags = REJECTED
    if msg.store_id is not None:  # a durable queue wrote it
        flags |= STORED
    return flags


def without_bcc(msg: Message) -> Message:
    """BCC is routing information only: strip it before any queue sees the message (its
    entry is cut out of the raw headers table; every other byte stays as published)."""
    header = strip_header(msg.header, msg.props, b"BCC")
    if header is None:
        return msg
    clone = msg.copy()
    clone.replace_header(header)
    return clone
