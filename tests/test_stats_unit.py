"""Message statistics, sans IO: the counters (amqp_broker/stats.py) as the broker core
increments them, the sampler's rates with a fake clock, and the `message_stats` formatting
rules (amqp_broker/management/message_stats.py) that RabbitMQ's answers show."""
from __future__ import annotations

import struct

from amqp_broker.args import Arguments
from amqp_broker.expiry import Expirer
from amqp_broker.management.message_stats import (
    exchange_message_stats, overview_message_stats, queue_activity, queue_message_stats, vhost_message_stats,
)
from amqp_broker.message import Message
from amqp_broker.publish import publish
from amqp_broker.stats import (
    AT_MOST_ONCE, DISABLED, QUEUE_KEYS, RATE_WINDOW, VHOST_KEYS, Churn, QueueSamples, Sampler, Samples,
    VHostCounters, queue_counts,
)
from amqp_broker.vhost import VHost

from helpers.engine import make_broker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def new_vhost() -> VHost:
    return VHost("/", expirer=Expirer())


def declare(vhost: VHost, name: str, **arguments):
    queue, _count, _consumers = vhost.declare_queue(name, False, False, False, False,
                                                    Arguments.from_plain(arguments), None)
    return queue


def send(vhost: VHost, exchange: str, key: str, body: bytes = b"x") -> int:
    header = struct.pack(">HHQH", 60, 0, len(body), 0)  # basic class, no properties
    return publish(vhost, vhost.exchanges[exchange], Message(exchange, key, header, body), None)


# -- counters ------------------------------------------------------------------------------------

def test_publish_counts_per_exchange_in_and_out_per_queue_copy():
    vhost = new_vhost()
    q1, q2 = declare(vhost, "q1"), declare(vhost, "q2")
    vhost.bind("amq.fanout", "q1", True, "", {}, None)
    vhost.bind("amq.fanout", "q2", True, "", {}, None)
    for _ in range(5):
        send(vhost, "amq.fanout", "")
    send(vhost, "amq.direct", "nowhere")
    fanout, direct = vhost.exchanges["amq.fanout"], vhost.exchanges["amq.direct"]
    assert (fanout.stats_in, fanout.stats_out) == (5, 10)  # RabbitMQ: publish_out counts copies
    assert (direct.stats_in, direct.stats_out) == (1, 0)
    assert q1.stats_published == q2.stats_published == 5


def test_queue_counters_deliver_get_is_every_delivery_and_redeliver_counts_flagged_ones():
    vhost = new_vhost()
    queue = declare(vhost, "q")
    for _ in range(3):
        send(vhost, "", "q")
    first = queue.take()
    queue.requeue([first])  # back, marked redelivered
    again = queue.take()
    assert again is first and again.redelivered
    queue.take()
    assert queue.stats_delivered == 3
    assert queue.stats_redeliver == 1


def test_dead_lettering_counts_by_reason_and_strategy():
    vhost = new_vhost()
    vhost.declare_exchange("dlx", "fanout", False, False, False, False, Arguments.from_plain({}))
    with_dlx = declare(vhost, "with-dlx", **{"x-dead-letter-exchange": "dlx", "x-message-ttl": 0})
    missing_dlx = declare(vhost, "missing-dlx", **{"x-dead-letter-exchange": "nope", "x-max-length": 1})
    plain = declare(vhost, "plain", **{"x-max-length": 1})
    send(vhost, "", "with-dlx")  # expires on arrival (ttl 0, no consumer)
    for _ in range(3):
        send(vhost, "", "missing-dlx")  # drop-head: 2 dropped, the exchange does not exist
        send(vhost, "", "plain")
    entry = plain.take()
    plain.reject(entry)
    assert with_dlx.stats_dead_lettered == {("expired", AT_MOST_ONCE): 1}
    assert missing_dlx.stats_dead_lettered == {("maxlen", DISABLED): 2}
    assert plain.stats_dead_lettered == {("maxlen", DISABLED): 2, ("rejected", DISABLED): 1}


def test_deleted_queues_and_exchanges_keep_counting_in_the_vhost_totals():
    vhost = new_vhost()
    queue = declare(vhost, "q", **{"x-max-length": 1})
    vhost.declare_exchange("x", "fanout", False, False, False, False, Arguments.from_plain({}))
    vhost.bind("x", "q", True, "", {}, None)
    send(vhost, "x", "")
    send(vhost, "x", "")  # drops the first (maxlen, no dlx)
    queue.take()
    before = dict(zip(VHOST_KEYS, vhost.stats.totals(vhost.queues.values(), vhost.exchanges.values())))
    dead_before = vhost.stats.dead_lettered(vhost.queues.values())
    vhost.delete_queue("q", False, False, None)
    vhost.delete_exchange("x", False)
    after = dict(zip(VHOST_KEYS, vhost.stats.totals(vhost.queues.values(), vhost.exchanges.values())))
    assert after == before
    assert before["publish"] == 2 and before["queue_publish"] == 2 and before["deliver_get"] == 1
    assert vhost.stats.dead_lettered(vhost.queues.values()) == dead_before == {("maxlen", DISABLED): 1}
    assert (vhost.stats.queues_declared, vhost.stats.queues_created, vhost.stats.queues_deleted) == (1, 1, 1)


def test_deliver_is_consume_with_ack_derived_from_the_other_counts():
    counters = VHostCounters()

    class FakeQueue:
        stats_published, stats_delivered, stats_deliver_no_ack = 10, 9, 2
        stats_get, stats_get_no_ack, stats_get_empty, stats_ack, stats_redeliver = 3, 1, 4, 5, 1
        stats_dead_lettered: dict = {}

    totals = dict(zip(VHOST_KEYS, counters.totals([FakeQueue()], [])))
    assert totals["deliver"] == 9 - 2 - 3 - 1
    assert totals["deliver_get"] == 9 and totals["get_empty"] == 4 and totals["ack"] == 5


# -- sampler and rates ------------------------------------------------------------------------

def test_rates_need_two_samples_and_are_the_change_per_second_over_the_window():
    samples = Samples()
    assert samples.rates() is None
    samples.add(10.0, (0, 5))
    assert samples.rates() is None
    samples.add(11.0, (4, 5))
    assert samples.rates() == (4.0, 0.0)
    for second in range(12, 20):  # the ring keeps the last RATE_WINDOW intervals
        samples.add(float(second), (4 + (second - 11) * 2, 5))
    assert samples.rates() == (2.0, 0.0)


def test_a_counter_that_went_down_has_no_negative_rate():
    samples = Samples()
    samples.add(1.0, (10,))
    samples.add(2.0, (3,))
    assert samples.rates() == (0.0,)


def test_sampler_reads_every_queue_exchange_vhost_and_the_overview():
    vhost = new_vhost()
    queue = declare(vhost, "q")
    clock = Clock()
    churn = Churn()
    sampler = Sampler({"/": vhost}, churn, clock)
    sampler.sample()
    for _ in range(6):
        send(vhost, "", "q")
    churn.connections_opened += 2
    clock.now += 2.0
    sampler.sample()
    assert dict(zip(QUEUE_KEYS, queue.stats_samples.rates()))["publish"] == 3.0
    assert vhost.exchanges[""].stats_samples.rates()[0] == 3.0  # publish_in
    assert dict(zip(VHOST_KEYS, vhost.stats.samples.rates()))["publish"] == 3.0
    assert dict(zip(VHOST_KEYS, sampler.overview.rates()))["queue_publish"] == 3.0
    assert sampler.churn_samples.rates()[0] == 1.0


def test_queue_is_idle_since_its_last_change():
    samples = QueueSamples()
    samples.observe(1.0, 1000.0, (1, 0), consumers=0, ready=1)
    assert samples.idle_since is None  # one reading: nothing to compare yet
    samples.observe(2.0, 1001.0, (2, 0), consumers=0, ready=2)
    assert samples.idle_since is None
    samples.observe(3.0, 1002.0, (2, 0), consumers=0, ready=2)
    samples.observe(4.0, 1003.0, (2, 0), consumers=0, ready=2)
    assert samples.idle_since == 1001.0  # the reading of the last change
    samples.observe(5.0, 1004.0, (2, 1), consumers=0, ready=1)
    assert samples.idle_since is None


def test_consumer_utilisation_is_the_share_of_readings_consumers_kept_up():
    samples = QueueSamples()
    assert samples.utilisation() == 0.0
    samples.observe(1.0, 1.0, (0,), consumers=0, ready=0)  # no consumer: cannot deliver
    samples.observe(2.0, 2.0, (0,), consumers=1, ready=0)  # consumer, nothing waiting
    samples.observe(3.0, 3.0, (0,), consumers=1, ready=5)  # messages wait: consumers are full
    samples.observe(4.0, 4.0, (0,), consumers=1, ready=0)
    assert samples.utilisation() == 0.5
    for second in range(5, 5 + RATE_WINDOW):
        samples.observe(float(second), float(second), (0,), consumers=2, ready=0)
    assert samples.utilisation() == 1.0


def test_queue_activity_in_the_management_json():
    vhost = new_vhost()
    queue = declare(vhost, "q")
    assert queue_activity(queue) == {}  # the sampler has not read it yet
    clock = Clock()
    sampler = Sampler({"/": vhost}, Churn(), clock, wall=lambda: 1_800_000_000.25)
    sampler.sample()
    clock.now += 1.0
    sampler.sample()
    assert queue_activity(queue) == {"consumer_utilisation": 0.0, "consumer_capacity": 0.0,
                                     "idle_since": "2027-01-15T08:00:00.250+00:00"}


def test_sampler_timer_starts_and_stops():
    import asyncio

    async def run():
        sampler = Sampler({"/": new_vhost()}, Churn())
        sampler.start(asyncio.get_running_loop())
        assert len(sampler.overview.ring) == 1  # a first reading at once
        sampler.stop()
        sampler.stop()  # idempotent

    asyncio.run(run())


# -- message_stats formatting ---------------------------------------------------------------

def test_a_queue_without_activity_has_no_message_stats_then_groups_appear():
    vhost = new_vhost()
    queue = declare(vhost, "q")
    assert queue_message_stats(queue) == {}
    send(vhost, "", "q")
    assert queue_message_stats(queue) == {"message_stats": {"publish": 1, "publish_details": {"rate": 0.0}}}
    queue.stats_get_no_ack += 1
    queue.stats_delivered += 1
    stats = queue_message_stats(queue)["message_stats"]
    assert set(stats) == {"publish", "publish_details"} | {
        k for key in ("ack", "deliver", "deliver_get", "deliver_no_ack", "get", "get_empty", "get_no_ack", "redeliver")
        for k in (key, key + "_details")
    }
    assert (stats["get_no_ack"], stats["deliver_get"], stats["deliver"], stats["ack"]) == (1, 1, 0, 0)


def test_exchange_message_stats_show_publish_in_and_out_separately():
    vhost = new_vhost()
    assert exchange_message_stats(vhost.exchanges["amq.direct"]) == {}
    send(vhost, "amq.direct", "nowhere")
    assert exchange_message_stats(vhost.exchanges["amq.direct"]) == {
        "message_stats": {"publish_in": 1, "publish_in_details": {"rate": 0.0}}}


def test_rates_come_from_the_samples():
    vhost = new_vhost()
    queue = declare(vhost, "q")
    clock = Clock()
    sampler = Sampler({"/": vhost}, Churn(), clock)
    sampler.sample()
    for _ in range(4):
        send(vhost, "", "q")
    clock.now += 4.0
    sampler.sample()
    assert queue_message_stats(queue)["message_stats"]["publish_details"] == {"rate": 1.0}
    assert vhost_message_stats(vhost)["message_stats"]["publish_details"] == {"rate": 1.0}


def test_vhost_and_overview_message_stats_and_churn_rates():
    broker = make_broker()
    vhost = broker.vhosts["/"]
    assert vhost_message_stats(vhost) == {}
    body = overview_message_stats(broker)
    assert body["message_stats"] == {}
    assert set(body["churn_rates"]) == {
        k for key in ("channel_closed", "channel_created", "connection_closed", "connection_created",
                      "queue_created", "queue_declared", "queue_deleted") for k in (key, key + "_details")}
    declare(vhost, "q")
    send(vhost, "", "q")
    stats = vhost_message_stats(vhost)["message_stats"]
    assert (stats["publish"], stats["confirm"], stats["drop_unroutable"], stats["return_unroutable"]) == (1, 0, 0, 0)
    assert "deliver_get" not in stats  # the delivery group: nothing delivered yet
    assert overview_message_stats(broker)["churn_rates"]["queue_created"] == 1
    assert queue_counts(vhost.queues["q"])[0] == 1
