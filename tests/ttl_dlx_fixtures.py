"""Fixtures shared by the dead-lettering / TTL / expiry tests: the `env` fixture (an Env from
dlx_common) and `dl_get`, the next message of a dead-letter queue with its wire types.
"""

from __future__ import annotations

import pytest

from amqp_typed import raw_get
from dlx_common import Env

@pytest.fixture
def env(amqp_url, uid):
    e = Env(amqp_url, uid)
    yield e
    e.close()


def dl_get(env: Env, queue: str, wait: float = 2.0):
    """The next message of a dead-letter queue, decoded with its wire types (polls)."""
    msg = raw_get(env.url, queue, wait=wait)
    assert msg is not None, f"nothing dead-lettered into {queue}"
    return msg
