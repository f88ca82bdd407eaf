"""A minimal raw AMQP client (pamqp for method frames, raw bytes otherwise) for what the client
libraries hide: server-generated consumer tags, byte-exact content headers. Used by the
consuming tests through the `raw` fixture.
"""

from __future__ import annotations

import socket
import struct
from urllib.parse import unquote, urlparse

import pytest
from pamqp import commands
from pamqp import frame as pframe
from pamqp import header as pheader

# --------------------------------------------------------------------------------------------
# a minimal raw AMQP client, for what the libraries hide
# --------------------------------------------------------------------------------------------

FRAME_END = b"\xce"


class Raw:
    """Synchronous AMQP 0-9-1 client over a socket: pamqp for method frames, raw bytes otherwise."""

    def __init__(self, url: str, timeout: float = 5.0):
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 5672), timeout=timeout)
        self.buf = b""
        self.sock.sendall(b"AMQP\x00\x00\x09\x01")
        self.expect(0, commands.Connection.Start)
        user, pw = unquote(u.username or "guest"), unquote(u.password or "guest")
        caps = {"publisher_confirms": True, "consumer_cancel_notify": True, "basic.nack": True,
                "exchange_exchange_bindings": True, "connection.blocked": True,
                "authentication_failure_close": True, "per_consumer_qos": True}
        self.send(0, commands.Connection.StartOk(
            client_properties={"product": "raw-test", "capabilities": caps},
            mechanism="PLAIN", response=f"\0{user}\0{pw}", locale="en_US"))
        tune = self.expect(0, commands.Connection.Tune)
        self.frame_max = tune.frame_max
        self.send(0, commands.Connection.TuneOk(channel_max=tune.channel_max,
                                                frame_max=tune.frame_max, heartbeat=0))
        vhost = unquote(u.path[1:]) if u.path and u.path != "/" else "/"
        self.send(0, commands.Connection.Open(virtual_host=vhost))
        self.expect(0, commands.Connection.OpenOk)

    def send(self, ch: int, method) -> None:
        self.sock.sendall(pframe.marshal(method, ch))

    def send_raw(self, ftype: int, ch: int, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">BHI", ftype, ch, len(payload)) + payload + FRAME_END)

    def recv_frame(self) -> tuple[int, int, bytes]:
        while True:
            if len(self.buf) >= 7:
                ftype, ch, size = struct.unpack(">BHI", self.buf[:7])
                if len(self.buf) >= 8 + size:
                    payload = self.buf[7:7 + size]
                    assert self.buf[7 + size:8 + size] == FRAME_END
                    self.buf = self.buf[8 + size:]
                    if ftype == 8:
                        continue
                    return ftype, ch, payload
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("socket closed by peer")
            self.buf += data

    def recv(self):
        ftype, ch, payload = self.recv_frame()
        assert ftype == 1, f"expected a method frame, got type {ftype}"
        _, _, obj = pframe.unmarshal(struct.pack(">BHI", ftype, ch, len(payload)) + payload + FRAME_END)
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
            self.sock.sendall(pframe.marshal(pheader.ContentHeader(0, len(body), commands.Basic.Properties()), ch))
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
        self.sock.close()


@pytest.fixture
def raw(amqp_url):
    r = Raw(amqp_url)
    yield r
    r.close()
