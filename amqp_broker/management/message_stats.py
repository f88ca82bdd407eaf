"""`message_stats` (and the overview's `churn_rates`) in rabbitmq_management's shape: every
count next to its `<name>_details: {"rate": per second}`.

RabbitMQ only shows a group of statistics once something happened in it: a queue has no
`message_stats` until a message reached it, `publish` appears with the first publish, the
delivery group (ack, deliver, deliver_get, ..., redeliver) with the first delivery or get, and
an exchange's `publish_in` / `publish_out` each with their first message. The same rule here.
The counts are read now; the rates come from the sampler's last readings (stats.Sampler), 0.0
until it has two of them.
"""
from __future__ import annotations

import datetime

from ..stats import (
    CHURN_KEYS, EXCHANGE_KEYS, QUEUE_KEYS, VHOST_KEYS, churn_counts, consumed_with_ack, exchange_counts,
    queue_counts, sum_tuples,
)

# the delivery group of a queue, in RabbitMQ's (alphabetical) order
_QUEUE_DELIVERY = ("ack", "deliver", "deliver_get", "deliver_no_ack", "get", "get_empty", "get_no_ack", "redeliver")
# a vhost's (and the overview's) groups: what channels publish, what they deliver
_PUBLISH_GROUP = ("publish", "confirm", "return_unroutable", "drop_unroutable")
_DELIVERY_GROUP = ("get", "get_no_ack", "deliver", "deliver_no_ack", "redeliver", "ack", "deliver_get", "get_empty")


def _with_deliver(keys: tuple, values: tuple | None) -> dict | None:
    """Queue counters (QUEUE_KEYS order) as a dict, plus the derived `deliver`."""
    if values is None:
        return None
    out = dict(zip(keys, values))
    out["deliver"] = max(0, consumed_with_ack(values))  # rates are rounded: never below 0
    return out


def _render(groups, counts: dict, rates: dict | None) -> dict:
    """The groups in which something happened, each count with its rate."""
    return {k: v for group in groups if any(counts[key] for key in group)
            for k, v in _pairs(group, counts, rates)}


def _pairs(keys, counts: dict, rates: dict | None):
    for key in keys:
        yield key, counts[key]
        yield key + "_details", {"rate": float(rates[key]) if rates is not None else 0.0}


def _rates(samples, keys: tuple) -> dict | None:
    rates = samples.rates() if samples is not None else None
    return dict(zip(keys, rates)) if rates is not None else None


def queue_message_stats(queue) -> dict:
    """`{"message_stats": ...}` for a queue's JSON, or {} before anything happened in it."""
    counts = _with_deliver(QUEUE_KEYS, queue_counts(queue))
    samples = queue.stats_samples
    rates = samples.rates() if samples is not None else None
    body = _render((("publish",), _QUEUE_DELIVERY), counts, _with_deliver(QUEUE_KEYS, rates))
    return {"message_stats": body} if body else {}


def queue_activity(queue) -> dict:
    """`idle_since` (only while the queue is idle, in RabbitMQ 3.10's format) and
    `consumer_utilisation`/`consumer_capacity`, from the sampler's readings; {} before any."""
    samples = queue.stats_samples
    if samples is None:
        return {}
    utilisation = samples.utilisation()
    body = {"consumer_utilisation": utilisation, "consumer_capacity": utilisation}
    if samples.idle_since is not None:
        moment = datetime.datetime.fromtimestamp(samples.idle_since, datetime.timezone.utc)
        body["idle_since"] = moment.isoformat(timespec="milliseconds")
    return body


def exchange_message_stats(exchange) -> dict:
    """`{"message_stats": {publish_in, publish_out}}` for an exchange, {} before any publish."""
    counts = dict(zip(EXCHANGE_KEYS, exchange_counts(exchange)))
    body = _render((("publish_in",), ("publish_out",)), counts, _rates(exchange.stats_samples, EXCHANGE_KEYS))
    return {"message_stats": body} if body else {}


def vhost_message_stats(vhost) -> dict:
    """`{"message_stats": ...}` for a vhost: what its channels published and were delivered,
    deleted queues and exchanges included; {} while nothing happened."""
    counts = dict(zip(VHOST_KEYS, vhost.stats.totals(vhost.queues.values(), vhost.exchanges.values())))
    body = _render((_PUBLISH_GROUP, _DELIVERY_GROUP), counts, _rates(vhost.stats.samples, VHOST_KEYS))
    return {"message_stats": body} if body else {}


def overview_message_stats(broker) -> dict:
    """The overview's `message_stats` (always there, maybe empty) and `churn_rates`."""
    vhosts = broker.vhosts.values()
    totals = sum_tuples((v.stats.totals(v.queues.values(), v.exchanges.values()) for v in vhosts), len(VHOST_KEYS))
    sampler = broker.stats_sampler
    message_stats = _render((_PUBLISH_GROUP, _DELIVERY_GROUP), dict(zip(VHOST_KEYS, totals)),
                            _rates(sampler.overview, VHOST_KEYS))
    churn = dict(zip(CHURN_KEYS, churn_counts(broker.churn, broker.vhosts)))
    # churn_rates is there from the start, zeros included
    churn_rates = dict(_pairs(sorted(CHURN_KEYS), churn, _rates(sampler.churn_samples, CHURN_KEYS)))
    return {"message_stats": message_stats, "churn_rates": churn_rates}
