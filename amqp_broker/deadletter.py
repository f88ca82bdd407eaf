"""Dead-lettering, as RabbitMQ 3.10's rabbit_dead_letter does it.

A message that dies in a queue (rejected without requeue, expired, dropped by a length limit)
is republished to the queue's dead-letter exchange with an `x-death` header describing the
death. The header layout is RabbitMQ's exactly (field names, AMQP types, order, counts),
because applications parse it. Every other header is kept byte for byte (see rawtable.py).
"""
from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING

from . import rawtable
from .message import Message
from .publish import enqueue
from .routing import route_keys
from .properties import EXPIRATION, HEADERS, Properties, splice_many
from .tables import INT_LETTERS

if TYPE_CHECKING:  # pragma: no cover
    from .queue import Queue

log = logging.getLogger("amqp_broker.deadletter")

X_DEATH = b"x-death"
_QUEUE = b"queue"
_REASON = b"reason"
_COUNT = b"count"


def death_routing_keys(msg: Message) -> list[str]:
    """The keys the message was routed with: publish key, then CC and BCC keys."""
    return [msg.routing_key] + list(msg.extra_keys or ())


def header_cc(entries: list) -> list[str]:
    index = rawtable.find(entries, b"CC")
    if index < 0 or entries[index][1] != "A":
        return []
    return [rawtable.read_longstr(raw) for letter, raw in rawtable.items(entries[index][2]) if letter == "S"]


def rewrite_header(header: bytes, reason: str, queue: str, exchange: str, routing_key: str,
                   now: int, drop_cc: bool) -> tuple[bytes, list[tuple[str | None, str | None]]]:
    """The content header of the dead-lettered copy: x-death updated, expiration moved into
    x-death's original-expiration, CC removed when the queue sets a dead-letter routing key.
    Also returns the deaths recorded in the new x-death, newest first, as (queue, reason)
    pairs, for cycle detection without parsing the header again."""
    props = Properties.checked(header)
    span = props.spans[HEADERS]
    entries = rawtable.entries(header[span[0] : span[1]]) if span else []
    keys = [routing_key] + header_cc(entries)
    info = [
        (_REASON, "S", rawtable.longstr(reason)),
        (_QUEUE, "S", rawtable.longstr(queue)),
        (b"time", "T", rawtable.timestamp(now)),
        (b"exchange", "S", rawtable.longstr(exchange)),
        (b"routing-keys", "A", rawtable.array([("S", rawtable.longstr(k)) for k in keys])),
    ]
    if props.expiration is not None:
        info.append((b"original-expiration", "S", rawtable.longstr(props.expiration)))
    index = rawtable.find(entries, X_DEATH)
    if index < 0 or entries[index][1] != "A":
        # First death: the x-first-death-* headers are added and never change afterwards.
        if index >= 0:
            del entries[index]
        entries += [
            (b"x-first-death-exchange", "S", rawtable.longstr(exchange)),
            (b"x-first-death-queue", "S", rawtable.longstr(queue)),
            (b"x-first-death-reason", "S", rawtable.longstr(reason)),
        ]
        death = [(_COUNT, "l", rawtable.long(1))] + info
        entries.append((X_DEATH, "A", rawtable.array([("F", rawtable.table(death))])))
        deaths = [(queue, reason)]
    else:
        match = None
        others = []
        deaths = [(queue, reason)]
        for letter, raw in rawtable.items(entries[index][2]):
            if letter != "F":
                others.append((letter, raw))
                deaths.append((None, None))  # not a death record: ends cycle detection
                continue
            fields = rawtable.entries(raw)
            old = (_field_str(fields, _QUEUE), _field_str(fields, _REASON))
            if match is None and old == (queue, reason):
                match = fields
                continue
            others.append((letter, raw))
            deaths.append(old)
        if match is None:
            death = [(_COUNT, "l", rawtable.long(1))] + info
        else:
            # the same {queue, reason} again: count + 1, first-death values kept
            death = []
            for key, letter, raw in match:
                if key == _COUNT and letter in INT_LETTERS:
                    raw, letter = rawtable.long(rawtable.read_long(letter, raw) + 1), "l"
                death.append((key, letter, raw))
        death.sort(key=_key_of)  # rabbit_misc:sort_field_table
        entries[index] = (X_DEATH, "A", rawtable.array([("F", rawtable.table(death))] + others))
    if drop_cc:
        cc = rawtable.find(entries, b"CC")
        if cc >= 0:
            del entries[cc]
    # RabbitMQ re-sorts the whole headers table (bytewise by key) when it dead-letters
    entries.sort(key=_key_of)
    changes = {HEADERS: rawtable.table(entries)}
    if props.expiration is not None:
        changes[EXPIRATION] = None
    return splice_many(header, props, changes), deaths


def _key_of(entry) -> bytes:
    return entry[0]


def _field_str(fields, key: bytes) -> str | None:
    index = rawtable.find(fields, key)
    if index < 0 or fields[index][1] != "S":
        return None
    return rawtable.read_longstr(fields[index][2])


def is_cycle(queue: str, deaths: list[tuple[str | None, str | None]]) -> bool:
    """rabbit_dead_letter:is_cycle/2: `queue` already appears in x-death and every death from
    the newest back to it was automatic (not a reject): republishing would loop forever."""
    for dead_queue, reason in deaths:
        if reason is None or reason == "rejected":
            return False
        if dead_queue == queue:
            return True
    return False


@functools.lru_cache(maxsize=256)
def _rewritten(header: bytes, reason: str, queue: str, exchange: str, routing_key: str, second: int,
               drop_cc: bool):
    """rewrite_header, memoised: it is a pure function of its arguments, and messages that
    die together usually carry identical headers (same properties, same second in x-death's
    `time`), so each distinct header is rewritten once."""
    return rewrite_header(header, reason, queue, exchange, routing_key, second, drop_cc)


def dead_letter(queue: "Queue", msg: Message, reason: str) -> bool:
    """Republish `msg`, which died in `queue`, to the queue's dead-letter exchange. False when
    the message is dropped instead (no such exchange: RabbitMQ's `disabled` strategy)."""
    dlx_name = queue.dlx
    if dlx_name is None:
        return False
    vhost = queue.vhost
    exchange = vhost.exchanges.get(dlx_name)
    if exchange is None:
        return False  # a missing dead-letter exchange drops the message, silently, as RabbitMQ
    dlrk = queue.dlrk
    keys = [dlrk] if dlrk is not None else death_routing_keys(msg)
    try:
        header, deaths = _rewritten(msg.header, reason, queue.name, msg.exchange, msg.routing_key,
                                    int(time.time()), dlrk is not None)
    except (ValueError, IndexError) as exc:
        log.warning("cannot dead-letter a message from %r (malformed headers: %s)", queue.name, exc)
        return False
    dead = Message(dlx_name, keys[0], header, msg.body)
    dead.persistent = msg.persistent
    dead.extra_keys = keys[1:] or None
    targets = route_keys(vhost, exchange, dead, keys)
    if reason != "rejected":
        kept = [q for q in targets if not is_cycle(q.name, deaths)]
        if len(kept) != len(targets):
            log.warning("Message dropped. Dead-letter queues cycle detected: %s",
                        [q.name for q in targets if q not in kept])
        targets = kept
    if targets:
        enqueue(dead, targets)
    return True
