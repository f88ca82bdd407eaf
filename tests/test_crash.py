"""kill -9 durability: `amqp-broker serve` as a subprocess, SIGKILLed at seeded random moments
while clients publish (with confirms) and consume; restarted on the same data dir; the queue is
drained and checked. The cycles and checks live in tests/helpers/crash.py (shared with the
longer tests/stress/crash_stress.py).

26 kill cycles in total, each 0.05-0.6 s after the load started (seeded: set CRASH_SEED to vary
the moments); the first cycle of each test counts that from the first confirm (and consumer
ack) instead, so that every test has something to check however slow the machine is. What
must hold (see the harness docstring for the exact definitions):

* every publish the broker confirmed is in the queue after the restart, unless the consumer had
  acked it: confirms come only after the commit;
* a message acked inside a transaction (tx.commit-ok received) never comes back;
* with plain basic.ack only the acks of the last moments before the kill may come back;
* the queue keeps publish order, has no duplicates, and the durable exchange, queue and binding
  survive every kill.
"""
from __future__ import annotations

import asyncio
import os
import time

import aiormq
import pytest
from pamqp import commands as spec

import helpers.crash as ch

pytestmark = pytest.mark.timeout(90)

SEED = int(os.environ.get("CRASH_SEED", "0"))


def _run(tmp_path, modes, seed):
    lines: list[str] = []
    t0 = time.monotonic()
    results = ch.run_cycles(tmp_path / "crash", modes, seed=seed + SEED, log=lines.append,
                            progress_cycles=1)
    elapsed = time.monotonic() - t0
    print("\n".join(lines))
    print(f"{len(results)} cycles in {elapsed:.1f}s")
    assert len(results) == len(modes)
    return results


def _assert_ok(tmp_path, results):
    bad = [r for r in results if r.failed]
    assert not bad, ch.failure_report(results, tmp_path / "crash" / "broker.log")


def test_kill9_publisher_confirmed_messages_survive(tmp_path):
    """(a) a publisher with confirms, no consumer: every confirmed number is there, in order."""
    results = _run(tmp_path, ["none"] * 10, seed=101)
    _assert_ok(tmp_path, results)
    assert sum(r.confirmed for r in results) > 0, "nothing was ever confirmed"
    assert all(r.recovered >= r.confirmed for r in results)


def test_kill9_tx_consumer_committed_acks_never_come_back(tmp_path):
    """(b) the same with a concurrent consumer acking in transactions: nothing acked-and-
    committed reappears; every confirmed number is in the queue or was acked."""
    results = _run(tmp_path, ["tx"] * 10, seed=202)
    _assert_ok(tmp_path, results)
    assert sum(r.acked for r in results) > 0, "the tx consumer never committed an ack"


def test_kill9_plain_ack_consumer_at_least_once(tmp_path):
    """(c) a consumer with plain basic.ack (no reply, so the last acks before the kill may be
    lost): still nothing confirmed is lost, and only recent acks come back."""
    results = _run(tmp_path, ["ack"] * 6, seed=303)
    _assert_ok(tmp_path, results)
    assert sum(r.acked for r in results) > 0


def test_kill9_recovers_durable_state_and_drops_transient_state(tmp_path):
    """One deterministic kill: durable definitions and persistent messages confirmed before it
    survive; transient messages, transient / exclusive / auto-delete queues do not."""
    broker = ch.BrokerProcess(tmp_path / "data", tmp_path / "broker.log")
    broker.start()

    async def before():
        conn = await aiormq.connect(broker.url)
        holder = await aiormq.connect(broker.url)  # owns the exclusive / auto-delete queues
        chan = await conn.channel()  # confirm mode
        hch = await holder.channel()
        await chan.exchange_declare("k-x", exchange_type="topic", durable=True)
        await chan.queue_declare("k-durable", durable=True, arguments={"x-max-length": 100})
        await chan.queue_bind("k-durable", "k-x", routing_key="a.#")
        await chan.queue_declare("k-transient", durable=False)
        await chan.queue_bind("k-transient", "k-x", routing_key="a.#")
        await hch.queue_declare("k-exclusive", durable=True, exclusive=True)
        await hch.queue_declare("k-autodelete", durable=True, auto_delete=True)
        await hch.basic_consume("k-autodelete", lambda m: None)
        for i in range(10):
            mode = 2 if i % 2 == 0 else 1
            r = await chan.basic_publish(b"m%d" % i, exchange="k-x", routing_key="a.b",
                                         properties=spec.Basic.Properties(delivery_mode=mode))
            assert isinstance(r, spec.Basic.Ack)
        # the kill comes right after the last confirm: no grace period
        broker.kill9()
        for c in (conn, holder):
            try:
                await asyncio.wait_for(c.close(), 2)
            except BaseException:
                pass

    async def after():
        conn = await aiormq.connect(broker.url)
        try:
            found = {}
            for q in ("k-durable", "k-transient", "k-exclusive", "k-autodelete"):
                chan = await conn.channel()
                try:
                    found[q] = (await chan.queue_declare(q, passive=True)).message_count
                except aiormq.exceptions.ChannelNotFoundEntity:
                    found[q] = None
            chan = await conn.channel()
            await chan.exchange_declare("k-x", passive=True)
            bodies = []
            while True:
                msg = await chan.basic_get("k-durable", no_ack=True)
                if not isinstance(msg.delivery, spec.Basic.GetOk):
                    break
                bodies.append(msg.body)
            # the recovered binding still routes
            r = await chan.basic_publish(b"after", exchange="k-x", routing_key="a.c", mandatory=True)
            assert isinstance(r, spec.Basic.Ack)
            got = await chan.basic_get("k-durable", no_ack=True)
            return found, bodies, got.body
        finally:
            await conn.close()

    try:
        asyncio.run(before())
        broker.start()
        found, bodies, routed = asyncio.run(after())
    finally:
        broker.stop()
    assert found == {"k-durable": 5, "k-transient": None, "k-exclusive": None, "k-autodelete": None}, (
        found, broker.log_tail())
    assert bodies == [b"m0", b"m2", b"m4", b"m6", b"m8"]
    assert routed == b"after"


def test_kill9_then_restart_is_not_blocked_by_a_stale_lock(tmp_path):
    """The data-dir lock of a SIGKILLed broker must not keep the next one from starting."""
    broker = ch.BrokerProcess(tmp_path / "data", tmp_path / "broker.log")
    try:
        for _ in range(3):
            broker.start()
            broker.kill9()
        broker.start()
        assert broker.running()
    finally:
        broker.stop()
