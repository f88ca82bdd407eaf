"""Robustness: bad input never crashes the broker, never hangs, never touches anyone else.

The project guide's rule under test: "Bad input always gets a clear error — the AMQP reply code
and text RabbitMQ would send — and never loses or corrupts stored data, never crashes the
broker, never affects other connections."

These tests are about OUR broker (they look at its thread, its log and its internals), so they
use `own_broker` and never the reference server. (Shared machinery: fuzz_frames.py,
helpers/robust.py; the other parts: test_robustness_fuzz.py, test_robustness_clients.py,
test_robustness_cases.py.)

1-3. A seeded, bounded fuzzer (600 connections, a few seconds): after a correct handshake +
  channel.open it sends random bytes, well-formed frames of random types/channels/sizes, every
  pamqp method with random or mutated fields (flipped bytes, truncations, lying shortstr and
  table lengths), scrambled publish/header/body sequences with lying body sizes and malformed
  property lists, and huge declared sizes. Each input is followed by a probe (channel.open on
  a fresh channel): the broker must answer the probe, or close the channel/connection with a
  well-formed close carrying a sensible code and RabbitMQ-style text, or close the socket; it
  may stay silent only when the input ended inside a frame (which swallows the probe), and
  then padding that completes the frame must get its 501. Meanwhile a pika "bystander"
  publishes and consumes continuously and must see every message intact, a "canary" queue's
  messages must survive untouched, and the broker must log no error of its own (an "internal
  error" log line / 541 means a bug in the broker).

A failing fuzz case is reported with its seed and case number: `_replay(seed, n)` rebuilds
exactly the same bytes and `drive(url, data)` sends them again.
"""

from __future__ import annotations

import collections
import time

import pika
import pika.exceptions
import pytest
from pamqp import commands as C

from helpers.raw import RawConnection
from helpers.fuzz import SEED, fuzz_inputs, method
from helpers.robust import broker_log  # noqa: F401 - pytest fixture
from helpers.robust import (
    Bystander,
    Verdict,
    assert_broker_healthy,
    broker_log_errors,
    bug_key,
    describe_record,
    drive,
)
from helpers.pika_client import connect

pytestmark = pytest.mark.timeout(120)


# =============================================================================================
# 1-3. The fuzzer, with a bystander and a canary queue


def _fuzz_setup(url: str, uid: str) -> list[bytes]:
    """Exchanges/queues the fuzz cases route to, and a canary queue whose messages must
    survive everything. Returns the canary bodies."""
    conn = connect(url)
    try:
        ch = conn.channel()
        ch.queue_declare("fuzz-sink", arguments={"x-max-length": 50})
        ch.exchange_declare("fuzz-h", "headers")
        ch.exchange_declare("fuzz-f", "fanout")
        ch.exchange_declare("fuzz-t", "topic")
        ch.queue_bind("fuzz-sink", "fuzz-h", arguments={"x-match": "any", "k": 1})
        ch.queue_bind("fuzz-sink", "fuzz-h")
        ch.queue_bind("fuzz-sink", "fuzz-f")
        ch.queue_bind("fuzz-sink", "fuzz-t", "#")
        ch.confirm_delivery()
        canary = f"canary-{uid}"
        ch.queue_declare(canary, durable=True)
        bodies = [f"canary {i} ".encode() * (i + 1) + bytes(range(256)) for i in range(20)]
        for i, b in enumerate(bodies):
            ch.basic_publish("", canary, b, pika.BasicProperties(
                message_id=f"c{i}", headers={"i": i, "s": "x" * i}, delivery_mode=2,
                priority=i % 10, correlation_id="corr", timestamp=1700000000 + i))
        return bodies
    finally:
        conn.close()


def _check_canary(url: str, uid: str, bodies: list[bytes]) -> list[str]:
    """The canary queue's messages, published before the fuzz, must be exactly as they were."""
    problems = []
    conn = connect(url)
    try:
        ch = conn.channel()
        canary = f"canary-{uid}"
        count = ch.queue_declare(canary, passive=True).method.message_count
        if count != len(bodies):
            problems.append(f"canary queue holds {count} messages, expected {len(bodies)}")
        for i, expected in enumerate(bodies):
            method_frame, props, got = ch.basic_get(canary, auto_ack=True)
            if method_frame is None:
                problems.append(f"canary message {i} lost")
                break
            if (got != expected or props.message_id != f"c{i}" or props.headers != {"i": i, "s": "x" * i}
                    or props.delivery_mode != 2 or props.priority != i % 10
                    or props.timestamp != 1700000000 + i or method_frame.redelivered):
                problems.append(f"canary message {i} altered: {got[:30]!r} {props}")
    finally:
        if conn.is_open:
            conn.close()
    return problems


def _names(table: dict) -> set:
    for _ in range(50):  # the broker thread may be changing it right now
        try:
            return set(table)
        except RuntimeError:
            time.sleep(0.01)
    return set(table)


def _delete_objects(url: str, queues, exchanges) -> None:
    """Delete queues and exchanges by name (the fuzz must not leave anything behind on a
    broker other tests share)."""
    conn = RawConnection.connect(url, timeout=10)
    try:
        conn.open_channel(1)
        todo = [(C.Queue.Delete, {"queue": q}, C.Queue.DeleteOk) for q in queues]
        todo += [(C.Exchange.Delete, {"exchange": x}, C.Exchange.DeleteOk) for x in exchanges]
        for cls, kw, ok in todo:
            conn.send_bytes(method(1, cls, **kw))
            while True:
                _ch, obj = conn.recv_method()
                if isinstance(obj, ok):
                    break
                if isinstance(obj, C.Channel.Close):
                    conn.send_frame(C.Channel.CloseOk(), 1)
                    conn.open_channel(1)
                    break
    finally:
        conn.close()


def test_fuzz_after_handshake(own_broker, uid, broker_log):
    url = own_broker.url
    vhost = own_broker.broker.vhosts["/"]
    queues_before, exchanges_before = _names(vhost.queues), _names(vhost.exchanges)
    bodies = _fuzz_setup(url, uid)
    problems: dict[str, list[str]] = collections.defaultdict(list)  # problem -> cases
    internal: dict[str, list[str]] = collections.defaultdict(list)  # bug key -> cases
    samples: dict[str, str] = {}
    outcomes: collections.Counter = collections.Counter()
    with Bystander(url, uid) as bystander:
        seen = 0
        for n, category, data in fuzz_inputs():
            label = f"case {n} ({category}, seed {SEED}): {data[:48].hex()}" + (
                f"... ({len(data)} bytes)" if len(data) > 48 else "")
            try:
                verdict = drive(url, data)
            except Exception as exc:  # noqa: BLE001 - handshake/channel.open failed: a problem too
                verdict = Verdict()
                verdict.outcome = "setup failed"
                verdict.problems.append(f"handshake or channel.open failed: {exc!r}")
            outcomes[f"{category}: {verdict.outcome.split(' after')[0]}"] += 1
            for problem in verdict.problems:
                problems[problem].append(label)
            records = broker_log_errors(broker_log.records[seen:])
            seen = len(broker_log.records)
            for record in records:
                key = bug_key(record)
                internal[key].append(label)
                samples.setdefault(key, describe_record(record))
        # the bystander is served all along: at least 20 round trips while the fuzz ran (the
        # fuzz itself is not timed: how long it takes depends on the machine)
        bystander.wait_round_trips(20)
    report = []
    for key, cases in internal.items():
        report.append(f"BROKER ERROR LOGGED x{len(cases)}: {samples[key]}\n    {key}\n    first input: {cases[0]}")
    for problem, cases in problems.items():
        report.append(f"{problem} x{len(cases)}\n    first input: {cases[0]}")
    report += _check_canary(url, uid, bodies)
    if (bystander.is_alive() or bystander.errors or bystander.received != bystander.sent
            or bystander.received < 20):
        report.append(f"the bystander connection was affected: {bystander.errors} "
                      f"(sent {bystander.sent}, received {bystander.received})")
    _delete_objects(url, _names(vhost.queues) - queues_before, _names(vhost.exchanges) - exchanges_before)
    try:
        assert_broker_healthy(own_broker, uid)
    except Exception as exc:  # noqa: BLE001
        report.append(f"the broker is not healthy after the fuzz: {exc!r}")
    summary = "\n".join(f"  {k}: {v}" for k, v in sorted(outcomes.items()))
    assert not report, "robustness failures:\n" + "\n".join(report) + "\noutcomes:\n" + summary
