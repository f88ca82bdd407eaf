"""Connection churn leaks nothing: after 300 connections opened and closed in every way
(helpers.churn: clean close with channels, consumers and an exclusive queue; TCP reset with an
unacked delivery; a frame error; a handshake abandoned; a frame cut in half), the broker holds
as many connections, asyncio tasks and file descriptors as before. Our broker only (it counts
in the broker's process). The counts are polled until they settle (the broker cleans up as it
sees each socket end), never timed. The 10,000-connection version with RSS figures is
tests/stress/churn.py.
"""
from __future__ import annotations

import asyncio
import os

import pytest

from helpers.churn import churn_one
from helpers.robust import broker_log  # noqa: F401 - pytest fixture
from helpers.robust import assert_broker_healthy, broker_log_errors, describe_record
from helpers.wait import wait_until

pytestmark = pytest.mark.timeout(300)


async def _task_count() -> int:
    """asyncio tasks on the broker's loop, not counting this one."""
    return len(asyncio.all_tasks()) - 1


def _fds() -> int:
    """File descriptors of this process (the broker runs in a thread of it)."""
    return len(os.listdir("/proc/self/fd"))


def test_churn_of_300_connections_leaks_no_tasks_or_descriptors(own_broker, uid, broker_log):
    url = own_broker.url
    for n in range(10):  # warm-up: first-use allocations are not leaks
        churn_one(url, n)
    assert wait_until(lambda: not own_broker.broker.connections)
    tasks_before = own_broker.call(_task_count)
    fds_before = _fds()
    for n in range(300):
        churn_one(url, n)
    assert wait_until(lambda: not own_broker.broker.connections), len(own_broker.broker.connections)
    assert wait_until(lambda: own_broker.call(_task_count) <= tasks_before), (
        own_broker.call(_task_count), tasks_before)
    assert wait_until(lambda: _fds() <= fds_before), (_fds(), fds_before)
    errors = broker_log_errors(broker_log.records)
    assert not errors, describe_record(errors[0])
    assert_broker_healthy(own_broker, uid)
