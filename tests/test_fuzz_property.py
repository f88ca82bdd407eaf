"""Property test (hypothesis): any stream of random or mutated frames, sent after a correct
handshake + channel.open, ends in normal operation or in a close with a legal code.

For every generated stream (helpers.fuzz_strategies.frame_streams) helpers.robust.drive sends
it plus a probe (channel.open on a fresh channel) and judges the answer: the probe is answered,
or a channel/connection is closed with a code allowed for bad input (helpers.fuzz's
CHANNEL_CLOSE_CODES / CONNECTION_CLOSE_CODES) in RabbitMQ's "NAME - explanation" form, or the
socket is dropped (RabbitMQ drops it on an unknown class/method id). Never a hang, never a
malformed frame from the broker, never an error in the broker's log.

Meanwhile a well-behaved pika client (helpers.robust.Bystander) publishes and consumes on its
own connection and must see every message intact, and a canary queue's messages must survive.
Our broker only (it looks at the broker's log and thread). Bounded: a modest max_examples and no
timed assertion (deadline=None), so a slow machine only makes it slower.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from helpers.fuzz_strategies import frame_streams
from helpers.fuzz_world import check_canary, delete_new_objects, fuzz_setup, vhost_names
from helpers.robust import broker_log  # noqa: F401 - pytest fixture
from helpers.robust import (
    Bystander,
    assert_broker_healthy,
    broker_log_errors,
    describe_record,
    drive,
)

pytestmark = pytest.mark.timeout(300)


def test_random_frame_streams_end_in_service_or_a_legal_close(own_broker, uid, broker_log):
    url = own_broker.url
    vhost = own_broker.broker.vhosts["/"]
    before = vhost_names(vhost)
    bodies = fuzz_setup(url, uid)
    outcomes: set[str] = set()
    try:
        with Bystander(url, f"{uid}-property") as bystander:

            @settings(max_examples=150, deadline=None, database=None, derandomize=True,
                      suppress_health_check=[HealthCheck.function_scoped_fixture,
                                             HealthCheck.too_slow, HealthCheck.data_too_large])
            @given(frame_streams())
            def stream_is_handled(data: bytes) -> None:
                seen = len(broker_log.records)
                verdict = drive(url, data)
                outcomes.add(verdict.outcome)
                assert not verdict.problems, (verdict.outcome, verdict.problems)
                errors = broker_log_errors(broker_log.records[seen:])
                assert not errors, describe_record(errors[0])
                assert own_broker.is_alive(), "the broker thread died"

            stream_is_handled()
            assert bystander.wait_round_trips(bystander.received + 3), bystander.errors
        bystander.check(min_round_trips=3)
        assert not check_canary(url, uid, bodies)
        # more than one way of ending was exercised (the streams are not all alike)
        assert len(outcomes) > 2, outcomes
    finally:
        delete_new_objects(url, vhost, before)
    assert_broker_healthy(own_broker, uid)
