"""The management listener follows the broker's lifecycle (our broker only, in-process)."""
from __future__ import annotations

import asyncio
import urllib.parse

from amqp_broker import Broker
from helpers.process import port_open


async def test_no_listener_by_default():
    async with Broker(host="127.0.0.1", port=0) as broker:
        assert broker.mgmt_url is None


async def test_started_with_the_broker_and_stopped_with_it():
    broker = Broker(host="127.0.0.1", port=0, mgmt_port=0)
    await broker.start()
    url = broker.mgmt_url
    port = urllib.parse.urlsplit(url).port
    assert url == f"http://127.0.0.1:{port}" and port == broker.mgmt_port
    assert await asyncio.to_thread(port_open, port)
    await broker.stop()
    assert broker.mgmt_url is None
    assert not await asyncio.to_thread(port_open, port)
