"""Delayed delivery for ``x-delayed-message`` exchanges (rabbitmq-delayed-message-exchange).

A message published to such an exchange with a positive ``x-delay`` header is not routed: it
waits here and is routed through the exchange (as its ``x-delayed-type``) when it is due. The
plugin's behaviour, from its source (src/rabbit_exchange_type_delayed_message.erl,
src/rabbit_delayed_message.erl, src/rabbit_delayed_message_utils.erl), mirrored here:

* **Which messages wait** (``delay_message/2``, ``get_delay/1``): the first ``x-delay`` header,
  when it is an integer (any width), a double/float (truncated), or a string holding an integer
  (``binary_to_integer``: a string that is not one crashes the channel, which a client sees as
  connection.close 541 INTERNAL_ERROR); and only if ``0 < Delay =< 4294967295`` (Erlang's
  longest timer). Anything else -- absent, zero, negative, too long, another type -- is routed
  at once, untouched.
* **What the publisher sees** (``route/2`` answers ``[]`` for a held message): exactly what
  RabbitMQ does for an unroutable message. The alternate exchange, if any, gets it now; a
  ``mandatory`` publish is returned (312 NO_ROUTE) unless the alternate exchange took it, even
  though the message will be routed later (plugin README, "Limitations"; issue #7); a
  publisher confirm is sent at once, not when the message is routed. (The plugin acks after
  its Mnesia write; for a durable exchange ours waits for the store's commit, like every other
  confirm of this broker.)
* **What is delivered** (``swap_delay_header/1``, ``rabbit_misc:set_table_value/4``): when due,
  ``x-delay`` becomes ``-Delay`` (signedint) so the message is never delayed twice, and the
  headers table comes out sorted by key, as set_table_value leaves it. Routing then is the
  ordinary one (bindings as they are *then*, CC/BCC, alternate exchange); no basic.return is
  possible any more, so an unroutable message is dropped silently.
* **Durability**: the plugin keeps every held message in a disc table and routes the overdue
  ones when it starts. Here the messages of a *durable* exchange go to the store
  (``delayed_messages``, with their absolute due time) and are routed at that time after a
  restart, at once if it has passed; a transient exchange's held messages live in memory only
  (the exchange itself does not survive a restart).
* An exchange deleted while messages wait drops them: they are not routed through an exchange
  declared later under the same name. (Across a restart the rows are matched by name: a row
  whose exchange was deleted *and* declared again, durable and delayed, before the restart is
  routed through the new one; any other orphan row is dropped at start.)

Only the exchange a message is published to delays it: a delayed exchange reached through an
exchange-to-exchange binding or by dead-lettering routes at once (the plugin would delay there
too; not supported).
"""
from __future__ import annotations

import logging
import math
import re
import struct
from typing import TYPE_CHECKING

from . import errors, rawtable
from .expiry import now_ms
from .message import Message
from .publish import enqueue
from .properties import HEADERS, Properties, splice
from .queue_args import parse_expiration
from .tables import INT_LETTERS
from .routing import extra_keys, route

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker

log = logging.getLogger("amqp_broker.delayed")

X_DELAY = b"x-delay"
MAX_DELAY = 4294967295  # ?ERL_MAX_T: the longest Erlang timer, in ms
_X_DELAY_KEY = b"\x07x-delay"  # as the key appears on the wire (shortstr)
_ERLANG_INT = re.compile(r"[+-]?[0-9]+")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")
_F32 = struct.Struct(">f")


def _header_entries(header: bytes, props: Properties):
    span = props.spans[HEADERS]
    if span is None:
        return None
    return rawtable.entries(header[span[0] : span[1]])


def _delay_value(letter: str, raw: bytes) -> int | None:
    """rabbit_delayed_message_utils:get_delay_header/1 for one value: the delay, or None
    ("nodelay") when the field type is not one the plugin reads."""
    if letter in INT_LETTERS:
        return rawtable.read_long(letter, raw)
    if letter == "d":
        return math.trunc(_F64.unpack(raw)[0])
    if letter == "f":
        return math.trunc(_F32.unpack(raw)[0])
    if letter in ("S", "x"):
        text = raw[4:].decode("latin-1")
        if _ERLANG_INT.fullmatch(text) is None:
            # binary_to_integer(<<"...">>) raises badarg inside the channel process
            raise errors.InternalError(f"x-delay header {raw[4:]!r} is not an integer")
        digits = text.lstrip("+-").lstrip("0")
        if len(digits) > 12:  # beyond any delay (and int() refuses thousands of digits)
            return -(MAX_DELAY + 1) if text[0] == "-" else MAX_DELAY + 1
        return int(text)
    return None  # bool, decimal, timestamp, void, table, array: {error, nodelay}


def delay_of(msg: Message) -> int | None:
    """How long (ms) an x-delayed-message exchange holds `msg`; None to route it now."""
    header = msg.header
    if _X_DELAY_KEY not in header:  # cheap: most publishes carry no x-delay at all
        return None
    entries = _header_entries(header, msg.props)
    if not entries:
        return None
    index = rawtable.find(entries, X_DELAY)  # table_lookup: the first one counts
    if index < 0:
        return None
    _key, letter, raw = entries[index]
    delay = _delay_value(letter, raw)
    if delay is None or not 0 < delay <= MAX_DELAY:
        return None
    return delay


def swap_delay_header(header: bytes) -> bytes:
    """The header a due message is routed with: x-delay = -Delay (signedint), and the table
    sorted by key, as rabbit_misc:set_table_value/4 leaves it."""
    props = Properties.checked(header)
    entries = _header_entries(header, props)
    if not entries:
        return header
    index = rawtable.find(entries, X_DELAY)
    if index < 0:
        return header
    delay = _delay_value(entries[index][1], entries[index][2])
    if delay is None:
        return header
    value = -delay
    if -(1 << 31) <= value:
        entries[index] = (X_DELAY, "I", _I32.pack(value))
    else:  # beyond a signedint (delays over 2**31 ms, about 24.8 days)
        entries[index] = (X_DELAY, "l", _I64.pack(value))
    entries.sort(key=lambda entry: entry[0])  # lists:keysort/2: stable, bytewise
    return splice(header, props, HEADERS, rawtable.table(entries))


class _Held:
    __slots__ = ("vhost", "exchange", "routing_key", "due_at", "header", "body", "row_id")

    def __init__(self, vhost: str, exchange, routing_key: str, due_at: int, header: bytes,
                 body: bytes, row_id: int | None):
        self.vhost = vhost
        self.exchange = exchange  # the Exchange object: a deleted exchange's messages drop
        self.routing_key = routing_key
        self.due_at = due_at
        self.header = header
        self.body = body
        self.row_id = row_id  # its row in the store (durable exchange), or None


class DelayedDelivery:
    """Messages held by x-delayed-message exchanges until they are due (one per broker)."""

    def __init__(self, broker: "Broker"):
        self.broker = broker
        self._held: dict[int, _Held] = {}
        self._next_key = 1

    delay_of = staticmethod(delay_of)  # for the channel, without an import on its hot path

    def __len__(self) -> int:
        return len(self._held)

    def count(self, vhost: str, exchange: str) -> int:
        """Messages an exchange holds (the plugin's `messages_delayed` info item)."""
        return sum(1 for h in self._held.values() if h.vhost == vhost and h.exchange.name == exchange)

    def hold(self, vhost, exchange, msg: Message, delay_ms: int) -> bool:
        """Keep `msg`, published to `exchange`, until `delay_ms` from now.

        True when it was written to a store that persists messages: the publisher's confirm
        must then wait for that store's commit (Channel._hold_until_committed).
        """
        header = msg.header
        if b"\x02CC" in header or b"\x03BCC" in header:
            # CC/BCC are read (and refused when malformed) at publish time, as in RabbitMQ
            # where they become the message's routing keys before any exchange sees it; the
            # alternate exchange, tried now, routes with them too.
            msg.extra_keys = extra_keys(msg.headers())
        due_at = now_ms() + delay_ms
        row_id = None
        store = vhost.store
        if exchange.durable and store is not None:
            row_id = store.add_delayed(None, vhost.name, exchange.name, msg.routing_key, due_at,
                                       header, msg.body)
        self._add(_Held(vhost.name, exchange, msg.routing_key, due_at, header, msg.body, row_id))
        return row_id is not None and store.persists_messages

    def load(self, rows) -> None:
        """Recovery: (id, vhost, exchange, routing key, due at, header, body) rows from the
        store, each scheduled at its original due time (overdue ones at once)."""
        store = self.broker.store
        for row_id, vhost_name, exchange_name, routing_key, due_at, header, body in rows:
            vhost = self.broker.vhosts.get(vhost_name)
            exchange = vhost.exchanges.get(exchange_name) if vhost is not None else None
            if exchange is None or not exchange.delayed:
                store.remove_delayed(row_id)  # its exchange is gone: so is the message
                continue
            self._add(_Held(vhost_name, exchange, routing_key, due_at, bytes(header), bytes(body), row_id))

    def _add(self, held: _Held) -> None:
        key = self._next_key
        self._next_key = key + 1
        self._held[key] = held
        self.broker.expirer.schedule(held.due_at, DelayedDelivery._due, self, key)

    def _due(self, key: int) -> None:
        held = self._held.pop(key, None)
        if held is None:
            return
        vhost = self.broker.vhosts.get(held.vhost)
        if vhost is None:
            return
        if held.row_id is not None and vhost.store is not None:
            # in the same batch as the queue entries it becomes: one transaction
            vhost.store.remove_delayed(held.row_id)
        exchange = vhost.exchanges.get(held.exchange.name)
        if exchange is not held.exchange:
            return  # the exchange was deleted meanwhile: the message goes with it
        try:
            self._route(vhost, exchange, held)
        except errors.AMQPError as exc:  # nobody to tell: the publisher is long gone
            log.warning("delayed message to %r dropped: %s", exchange.name, exc.explanation)

    @staticmethod
    def _route(vhost, exchange, held: _Held) -> None:
        header = swap_delay_header(held.header)
        msg = Message(exchange.name, held.routing_key, header, held.body)
        props = msg.props
        msg.persistent = props.delivery_mode == 2
        if props.expiration is not None:
            msg.ttl = parse_expiration(props.expiration)
        queues = route(vhost, exchange, msg)
        if queues:
            enqueue(msg, queues)
