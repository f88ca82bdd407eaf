"""Routing inside a vhost: from the exchange a message is published to, to the queues it
reaches - exchange-to-exchange bindings followed with cycles cut, CC/BCC sender-selected keys,
alternate exchanges when nothing routes, the default exchange's implicit bindings. Exchanges
only map a key to their direct destinations (exchanges/); this walks the graph.

A destination is a queue unless it is an Exchange: queue.py imports the publish path, which
calls this module, so it cannot import Queue. On the hot path: one call per publish, with fast
paths for the common case of queues behind one exchange.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import errors
from .exchanges import Exchange

if TYPE_CHECKING:  # pragma: no cover
    from .queue import Queue
from .tables import field_type

DEFAULT_EXCHANGE = ""
_CC = b"\x02CC"
_BCC = b"\x03BCC"


def route(vhost, exchange: Exchange, msg) -> list[Queue]:
    """Every queue `msg` goes to: exchange-to-exchange bindings followed with cycles cut,
    CC/BCC keys added, alternate exchanges tried when nothing routes. Each queue once."""
    routing_key = msg.routing_key
    header = msg.header
    keys = None
    headers = None
    if (_CC in header or _BCC in header) or exchange.uses_headers:
        headers = msg.headers()
        keys = extra_keys(headers)
        msg.extra_keys = keys
    if exchange.name == DEFAULT_EXCHANGE:
        return _route_default(vhost, routing_key, keys)
    if keys is None:
        dests = exchange.route(routing_key, headers)
        # fast path: only queues behind one exchange (already distinct)
        for dest in dests:
            if isinstance(dest, Exchange):
                break
        else:
            if dests:
                return list(dests)
            return _alternate(vhost, exchange, msg, headers)
    result = _walk(exchange, [routing_key] + (keys or []), headers)
    if result:
        return result
    return _alternate(vhost, exchange, msg, headers)


def route_keys(vhost, exchange: Exchange, msg, keys: list[str]) -> list[Queue]:
    """Route with an explicit list of routing keys (dead-lettering)."""
    headers = msg.headers() if exchange.uses_headers else None
    if exchange.name == DEFAULT_EXCHANGE:
        return _route_default(vhost, keys[0], keys[1:])
    if len(keys) == 1:  # fast path: one key, only queues behind the exchange
        dests = exchange.route(keys[0], headers)
        if dests and not any(isinstance(dest, Exchange) for dest in dests):
            return list(dests)
    result = _walk(exchange, keys, headers)
    if result:
        return result
    return _alternate(vhost, exchange, msg, headers, keys)


def _route_default(vhost, routing_key, keys) -> list[Queue]:
    queue = vhost.queues.get(routing_key)
    if not keys:
        return [queue] if queue is not None else []
    out = []
    for key in [routing_key] + keys:
        q = vhost.queues.get(key)
        if q is not None and q not in out:
            out.append(q)
    return out


def _walk(exchange: Exchange, keys: list[str], headers) -> list[Queue]:
    seen_ex = {exchange}
    pending = [exchange]
    out: dict[Queue, None] = {}
    while pending:
        ex = pending.pop()
        for key in keys:
            for dest in ex.route(key, headers):
                if not isinstance(dest, Exchange):  # a queue
                    out[dest] = None
                elif dest not in seen_ex:
                    seen_ex.add(dest)
                    pending.append(dest)
    return list(out)


def _alternate(vhost, exchange: Exchange, msg, headers, keys=None) -> list[Queue]:
    """Alternate exchanges, followed until one routes (or a cycle / missing AE)."""
    if keys is None:
        keys = [msg.routing_key] + list(msg.extra_keys or ())
    seen = {exchange.name}
    ex = exchange
    while True:
        ae_name = ex.alternate
        if not isinstance(ae_name, str) or ae_name in seen:
            return []
        seen.add(ae_name)
        ae = vhost.exchanges.get(ae_name)
        if ae is None:
            return []
        if ae.uses_headers and headers is None:
            headers = msg.headers()
        result = _walk(ae, keys, headers)
        if result:
            return result
        ex = ae


def extra_keys(headers) -> list[str] | None:
    """CC and BCC routing keys (arrays of strings) from the headers table."""
    if not headers:
        return None
    keys = []
    for name in ("CC", "BCC"):
        if name not in headers:
            continue
        value = headers[name]
        if not isinstance(value, list):
            raise errors.precondition(
                f'invalid message: {{unacceptable_type_in_header,"{name}",{field_type(value)}}}'
            )
        # only longstr elements count (rabbit_basic:header_routes); one that is not UTF-8
        # keeps its bytes as surrogate escapes
        keys.extend(
            v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v
            for v in value if isinstance(v, (str, bytes))
        )
    return keys or None
