"""The management HTTP API under test: ours (a BrokerThread with mgmt_port=0) or, when
MGMT_REFERENCE_URL is set (e.g. http://guest:guest@127.0.0.1:15673/), a real RabbitMQ's, so
the same tests prove that what they expect is RabbitMQ's answer.

In reference mode the AMQP side of that RabbitMQ is AMQP_REFERENCE_URL (default
amqp://guest:guest@127.0.0.1:5673/). Names the tests create carry the `uid` suffix, as on the
shared AMQP reference (see tests/conftest.py).
"""
from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import pytest

from helpers.broker import BrokerThread
from helpers.wait import wait_until

MGMT_REFERENCE_URL = os.environ.get("MGMT_REFERENCE_URL")


@dataclass
class Reply:
    status: int
    text: str
    headers: dict  # names in lower case

    @property
    def json(self):
        return json.loads(self.text)


class Mgmt:
    """A tiny blocking client: `get/put/delete(path)` -> Reply, never raising on 4xx."""

    def __init__(self, base_url: str, amqp_url: str, own: BrokerThread | None = None):
        parts = urllib.parse.urlsplit(base_url)
        self.user = urllib.parse.unquote(parts.username or "guest")
        self.password = urllib.parse.unquote(parts.password or "guest")
        self.base = f"{parts.scheme}://{parts.hostname}:{parts.port}"
        self.amqp_url = amqp_url
        self.own = own  # our broker, None in reference mode

    def request(self, method: str, path: str, body=None, auth: tuple[str, str] | None | bool = True,
                headers: dict | None = None) -> Reply:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth is True:
            auth = (self.user, self.password)
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                return Reply(resp.status, resp.read().decode(), _lower(resp.headers))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read().decode(), _lower(exc.headers))

    def get(self, path: str, **kw) -> Reply:
        return self.request("GET", path, **kw)

    def put(self, path: str, body=None, **kw) -> Reply:
        return self.request("PUT", path, body if body is not None else {}, **kw)

    def delete(self, path: str, **kw) -> Reply:
        return self.request("DELETE", path, **kw)

    def post(self, path: str, body=None, **kw) -> Reply:
        return self.request("POST", path, body if body is not None else {}, **kw)

    def add_user(self, name: str, password: str, tags: tuple[str, ...]) -> None:
        """A user to log in with, created through the API (PUT /api/users/{name})."""
        reply = self.put(f"/api/users/{urllib.parse.quote(name, safe='')}",
                         {"password": password, "tags": ",".join(tags)})
        assert reply.status in (201, 204), reply

    def remove_user(self, name: str) -> None:
        self.delete(f"/api/users/{urllib.parse.quote(name, safe='')}")


def polled(mgmt: Mgmt, path: str, pred) -> dict:
    """GET `path` until `pred(body)` holds (statistics lag on RabbitMQ); the last body."""
    last = {}

    def check() -> bool:
        nonlocal last
        reply = mgmt.get(path)
        last = reply.json if reply.status == 200 else {}
        return bool(last) and pred(last)

    assert wait_until(check, interval=0.2), last
    return last


def _lower(headers) -> dict:
    return {k.lower(): v for k, v in headers.items()}


@pytest.fixture(scope="session")
def mgmt():
    """The management API under test (see the module docstring)."""
    if MGMT_REFERENCE_URL:
        yield Mgmt(MGMT_REFERENCE_URL, os.environ.get("AMQP_REFERENCE_URL", "amqp://guest:guest@127.0.0.1:5673/"))
        return
    with BrokerThread(mgmt_port=0) as bt:
        yield Mgmt(bt.broker.mgmt_url, bt.url, bt)
