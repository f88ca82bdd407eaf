"""Helpers of the connection-level tests (test_connection*.py): the capabilities a broker
announces, the `raw` fixture (a factory of raw clients) and URL rewriting.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from helpers.raw import RawConnection, parse_url

CAPABILITIES = (
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "consumer_priorities",
    "authentication_failure_close",
    "per_consumer_qos",
    "direct_reply_to",
)


@pytest.fixture
def raw(amqp_url):
    """Factory for RawConnection objects, all closed at teardown.

    raw() -> connected, opened (connection.open-ok received); raw(handshake=False) -> bare socket.
    Other keyword arguments go to RawConnection.handshake.
    """
    made: list[RawConnection] = []

    def make(handshake: bool = True, timeout: float = 5.0, **kw) -> RawConnection:
        if handshake:
            conn = RawConnection.connect(amqp_url, timeout=timeout, **kw)
        else:
            conn = RawConnection.from_url(amqp_url, timeout=timeout)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


def url_with(amqp_url, user=None, password=None, vhost=None) -> str:
    p = parse_url(amqp_url)
    return "amqp://{}:{}@{}:{}/{}".format(
        quote(user or p["user"], safe=""),
        quote(password or p["password"], safe=""),
        p["host"],
        p["port"],
        quote(vhost if vhost is not None else p["vhost"], safe=""),
    )
