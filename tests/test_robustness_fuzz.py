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

import pytest

from helpers.fuzz import SEED, fuzz_inputs
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
from helpers.fuzz_world import check_canary, delete_new_objects, fuzz_setup, vhost_names

pytestmark = pytest.mark.timeout(120)


# =============================================================================================
# 1-3. The fuzzer, with a bystander and a canary queue


def test_fuzz_after_handshake(own_broker, uid, broker_log):
    url = own_broker.url
    vhost = own_broker.broker.vhosts["/"]
    before = vhost_names(vhost)
    bodies = fuzz_setup(url, uid)
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
    report += check_canary(url, uid, bodies)
    if (bystander.is_alive() or bystander.errors or bystander.received != bystander.sent
            or bystander.received < 20):
        report.append(f"the bystander connection was affected: {bystander.errors} "
                      f"(sent {bystander.sent}, received {bystander.received})")
    delete_new_objects(url, vhost, before)
    try:
        assert_broker_healthy(own_broker, uid)
    except Exception as exc:  # noqa: BLE001
        report.append(f"the broker is not healthy after the fuzz: {exc!r}")
    summary = "\n".join(f"  {k}: {v}" for k, v in sorted(outcomes.items()))
    assert not report, "robustness failures:\n" + "\n".join(report) + "\noutcomes:\n" + summary
