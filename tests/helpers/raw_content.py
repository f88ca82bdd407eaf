"""A raw AMQP client for what the client libraries hide: server-generated consumer tags and
byte-exact content headers. Used by the consuming tests through the `raw` fixture.

It is a thin layer over helpers.raw.RawConnection with the calling convention those tests use
(channel first: `send(ch, method)`, `expect(ch, cls)`) and frames read as raw bytes, so that a
content header comes back exactly as the broker sent it.
"""

from __future__ import annotations

import struct

import pytest
from pamqp import commands
from pamqp import frame as pframe
from pamqp import header as pheader

from helpers.raw import RawConnection, raw_frame

# What the consuming tests announce: every capability they may rely on.
CAPABILITIES = {"publisher_confirms": True, "consumer_cancel_notify": True, "basic.nack": True,
                "exchange_exchange_bindings": True, "connection.blocked": True,
                "authentication_failure_close": True, "per_consumer_qos": True}


class Raw:
    """Synchronous AMQP 0-9-1 client over a socket: pamqp for method frames, raw bytes otherwise."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.conn = RawConnection.connect(url, timeout=timeout, capabilities=CAPABILITIES,
                                          client_properties={"product": "raw-test"}, heartbeat=0)
        self.sock = self.conn.sock
        self.frame_max = self.conn.frame_max

    def send(self, ch: int, method) -> None:
        self.conn.send_frame(method, ch)

    def send_raw(self, ftype: int, ch: int, payload: bytes) -> None:
        self.conn.send_bytes(raw_frame(ftype, ch, payload))

    def recv_frame(self) -> tuple[int, int, bytes]:
        """Next frame other than a heartbeat, as (type, channel, payload)."""
        while True:
            ftype, ch, payload = self.conn.recv_raw_frame(self.conn.deadline())
            if ftype != 8:
                return ftype, ch, payload

    def recv(self):
        ftype, ch, payload = self.recv_frame()
        assert ftype == 1, f"expected a method frame, got type {ftype}"
        _, _, obj = pframe.unmarshal(raw_frame(ftype, ch, payload))
        return ch, obj

    def expect(self, ch: int, cls):
        got_ch, obj = self.recv()
        assert got_ch == ch and isinstance(obj, cls), (got_ch, obj, getattr(obj, "reply_text", None))
        return obj

    def open_channel(self, ch: int) -> None:
        self.send(ch, commands.Channel.Open())
        self.expect(ch, commands.Channel.OpenOk)

    def publish(self, ch: int, exchange: str, rk: str, body: bytes, props_raw: bytes | None = None) -> None:
        self.send(ch, commands.Basic.Publish(exchange=exchange, routing_key=rk))
        if props_raw is None:
            self.conn.send_frame(pheader.ContentHeader(0, len(body), commands.Basic.Properties()), ch)
        else:
            self.send_raw(2, ch, struct.pack(">HHQ", 60, 0, len(body)) + props_raw)
        step = self.frame_max - 8
        for i in range(0, len(body), step):
            self.send_raw(3, ch, body[i:i + step])

    def read_content(self, ch: int) -> tuple[bytes, bytes]:
        """After basic.deliver / get-ok / return: (raw property bytes after body size, body)."""
        ftype, c, payload = self.recv_frame()
        assert ftype == 2 and c == ch, (ftype, c)
        class_id, _weight, size = struct.unpack(">HHQ", payload[:12])
        assert class_id == 60
        body = b""
        while len(body) < size:
            ftype, c, chunk = self.recv_frame()
            assert ftype == 3 and c == ch
            body += chunk
        return payload[12:], body

    def close(self) -> None:
        try:
            self.send(0, commands.Connection.Close(reply_code=200, reply_text="bye"))
            while True:
                _, obj = self.recv()
                if isinstance(obj, commands.Connection.CloseOk):
                    break
        except Exception:
            pass
        self.conn.close()


@pytest.fixture
def raw(amqp_url):
    r = Raw(amqp_url)
    yield r
    r.close()
