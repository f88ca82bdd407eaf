"""A tiny synchronous raw-socket AMQP 0-9-1 client for frame-level tests.

It speaks just enough of the protocol to drive a broker frame by frame: the handshake
(PLAIN or AMQPLAIN), sending arbitrary frames or raw bytes, and reading whole frames back
(frames are buffered until complete before pamqp sees them: pamqp cannot decode a partial
frame).

    from helpers.raw import RawConnection

    with RawConnection.connect(amqp_url) as conn:      # handshake + connection.open
        conn.open_channel(1)
        conn.send_frame(commands.Queue.Declare(queue="x", passive=True), 1)
        assert conn.expect_channel_close(1)[0] == 404

Every read has a timeout; a peer that closes the socket raises `PeerClosed`.
"""
from __future__ import annotations

import socket
import struct
import time
from typing import Any
from urllib.parse import unquote, urlparse

from pamqp import body as pbody
from pamqp import commands, frame, header, heartbeat
from pamqp import encode as pencode

__all__ = [
    "AMQP_091_HEADER",
    "DEFAULT_CAPABILITIES",
    "FRAME_END",
    "PeerClosed",
    "RawConnection",
    "amqplain_response",
    "parse_url",
    "plain_response",
    "raw_frame",
]

AMQP_091_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = 0xCE

# What modern clients (pika, aiormq) advertise in client_properties.capabilities.
DEFAULT_CAPABILITIES: dict[str, Any] = {
    "authentication_failure_close": True,
    "basic.nack": True,
    "connection.blocked": True,
    "consumer_cancel_notify": True,
    "publisher_confirms": True,
}


def raw_frame(ftype: int, channel: int, payload: bytes, end: int = FRAME_END) -> bytes:
    """One frame's bytes, built by hand (no validation: tests send what pamqp would refuse)."""
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([end])


class PeerClosed(ConnectionError):
    """The server closed the TCP connection (EOF or reset)."""


def parse_url(url: str) -> dict[str, Any]:
    """host, port, user, password and vhost of an amqp:// URL (vhost defaults to '/')."""
    parts = urlparse(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5672,
        "user": unquote(parts.username) if parts.username else "guest",
        "password": unquote(parts.password) if parts.password else "guest",
        "vhost": unquote(path) if path else "/",
    }


def plain_response(user: str, password: str) -> str:
    return f"\x00{user}\x00{password}"


def amqplain_response(user: str, password: str) -> str:
    """AMQPLAIN response: a field table *without* its 4-byte length prefix.

    Returned as a latin-1 str so pamqp's longstr encoder (which utf-8 encodes) keeps the bytes
    intact as long as they are ASCII.
    """
    table = pencode.field_table({"LOGIN": user, "PASSWORD": password})[4:]
    return table.decode("latin-1")


class RawConnection:
    """One TCP connection to the broker, driven frame by frame."""

    def __init__(self, host: str, port: int, timeout: float = 5.0):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.start: commands.Connection.Start | None = None
        self.tune: commands.Connection.Tune | None = None
        self.frame_max = 131072
        self.closed_by_peer = False

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_url(cls, url: str, timeout: float = 5.0) -> "RawConnection":
        p = parse_url(url)
        return cls(p["host"], p["port"], timeout=timeout)

    @classmethod
    def connect(cls, url: str, *, timeout: float = 5.0, **handshake_kw) -> "RawConnection":
        """Open a socket and run the whole handshake (through connection.open-ok)."""
        conn = cls.from_url(url, timeout=timeout)
        p = parse_url(url)
        handshake_kw.setdefault("user", p["user"])
        handshake_kw.setdefault("password", p["password"])
        handshake_kw.setdefault("vhost", p["vhost"])
        try:
            conn.handshake(**handshake_kw)
        except BaseException:
            conn.close()
            raise
        return conn

    def __enter__(self) -> "RawConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    # ------------------------------------------------------------------ sending
    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, obj, channel: int = 0) -> None:
        """Marshal and send one frame (method, ContentHeader, ContentBody, Heartbeat)."""
        self.sock.sendall(frame.marshal(obj, channel))

    send_method = send_frame

    def send_frames(self, frames: list[tuple[Any, int]]) -> None:
        self.sock.sendall(b"".join(frame.marshal(obj, ch) for obj, ch in frames))

    def send_heartbeat(self) -> None:
        self.sock.sendall(frame.marshal(heartbeat.Heartbeat(), 0))

    def publish(
        self,
        channel: int,
        body: bytes,
        exchange: str = "",
        routing_key: str = "",
        properties: commands.Basic.Properties | None = None,
        **publish_kw,
    ) -> None:
        """basic.publish + content header + body frames, cut to frame_max."""
        frames = [
            frame.marshal(
                commands.Basic.Publish(exchange=exchange, routing_key=routing_key, **publish_kw),
                channel,
            ),
            frame.marshal(
                header.ContentHeader(0, len(body), properties or commands.Basic.Properties()),
                channel,
            ),
        ]
        chunk = max(1, self.frame_max - 8)
        for i in range(0, len(body), chunk):
            frames.append(frame.marshal(pbody.ContentBody(body[i : i + chunk]), channel))
        self.sock.sendall(b"".join(frames))

    # ------------------------------------------------------------------ receiving
    def fill(self, deadline: float) -> None:
        """Read what the socket has into `buf` (waiting until `deadline` at most)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out waiting for data")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError as exc:
            self.closed_by_peer = True
            raise PeerClosed("connection reset by peer") from exc
        if not data:
            self.closed_by_peer = True
            raise PeerClosed("connection closed by peer")
        self.buf += data

    def recv_exact(self, n: int, timeout: float | None = None) -> bytes:
        """Exactly n raw bytes (used e.g. for the 8-byte protocol header reply)."""
        deadline = self.deadline(timeout)
        while len(self.buf) < n:
            self.fill(deadline)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def deadline(self, timeout: float | None = None) -> float:
        """The monotonic time a read started now gives up at (`timeout` or the default)."""
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def recv_raw_frame(self, deadline: float) -> tuple[int, int, bytes]:
        """Next whole frame as (type, channel, payload), not decoded: for frames pamqp would
        decode differently from the wire (typed tables, byte-exact content headers)."""
        while len(self.buf) < 7:
            self.fill(deadline)
        ftype, channel, size = struct.unpack(">BHI", bytes(self.buf[:7]))
        total = 7 + size + 1
        while len(self.buf) < total:
            self.fill(deadline)
        raw = bytes(self.buf[:total])
        del self.buf[:total]
        if raw[-1] != FRAME_END:
            raise AssertionError(f"server sent a frame with bad frame-end {raw[-1]:#x}")
        return ftype, channel, raw[7:-1]

    def recv_frame(self, timeout: float | None = None) -> tuple[int, Any]:
        """Next whole frame as (channel, obj). Raises socket.timeout or PeerClosed."""
        deadline = self.deadline(timeout)
        while len(self.buf) < 7:
            self.fill(deadline)
        if self.buf[:4] == b"AMQP":
            while len(self.buf) < 8:
                self.fill(deadline)
            consumed, channel, obj = frame.unmarshal(bytes(self.buf[:8]))
            del self.buf[:8]
            return channel, obj
        ftype, channel, payload = self.recv_raw_frame(deadline)
        raw = raw_frame(ftype, channel, payload)
        consumed, channel, obj = frame.unmarshal(raw)
        assert consumed == len(raw), (consumed, len(raw))
        return channel, obj

    def recv_method(
        self, timeout: float | None = None, skip_heartbeats: bool = True
    ) -> tuple[int, Any]:
        """Next frame that is not a heartbeat (unless skip_heartbeats=False)."""
        deadline = self.deadline(timeout)
        while True:
            channel, obj = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if skip_heartbeats and isinstance(obj, heartbeat.Heartbeat):
                continue
            return channel, obj

    def expect(self, cls, channel: int | None = None, timeout: float | None = None):
        """Read the next non-heartbeat frame and assert it is `cls` (on `channel`)."""
        ch, obj = self.recv_method(timeout)
        if not isinstance(obj, cls) or (channel is not None and ch != channel):
            detail = ""
            if isinstance(obj, (commands.Connection.Close, commands.Channel.Close)):
                detail = f" ({obj.reply_code} {obj.reply_text!r})"
            raise AssertionError(
                f"expected {getattr(cls, 'name', cls)} on channel {channel}, "
                f"got {getattr(obj, 'name', type(obj).__name__)} on channel {ch}{detail}"
            )
        return obj

    def rpc(self, method, channel: int = 1, reply_cls=None, timeout: float | None = None):
        """Send a synchronous method and return its reply (asserting its class if given)."""
        self.send_frame(method, channel)
        if reply_cls is None:
            return self.recv_method(timeout)[1]
        return self.expect(reply_cls, channel, timeout)

    def expect_close(
        self, timeout: float | None = None, send_close_ok: bool = True
    ) -> tuple[int, str, int, int]:
        """Wait for connection.close (skipping other frames); reply close-ok.

        Returns (reply_code, reply_text, class_id, method_id).
        """
        deadline = self.deadline(timeout)
        while True:
            ch, obj = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if isinstance(obj, commands.Connection.Close):
                assert ch == 0, f"connection.close on channel {ch}"
                if send_close_ok:
                    try:
                        self.send_frame(commands.Connection.CloseOk(), 0)
                    except OSError:
                        pass
                return obj.reply_code, obj.reply_text, obj.class_id, obj.method_id

    def expect_channel_close(
        self, channel: int, timeout: float | None = None, send_close_ok: bool = True
    ) -> tuple[int, str, int, int]:
        """Wait for channel.close on `channel` (skipping other frames); reply close-ok.

        Fails if a connection.close arrives instead.
        """
        deadline = self.deadline(timeout)
        while True:
            ch, obj = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if isinstance(obj, commands.Connection.Close):
                raise AssertionError(
                    f"expected channel.close on {channel}, got connection.close "
                    f"{obj.reply_code} {obj.reply_text!r}"
                )
            if isinstance(obj, commands.Channel.Close) and ch == channel:
                if send_close_ok:
                    self.send_frame(commands.Channel.CloseOk(), channel)
                return obj.reply_code, obj.reply_text, obj.class_id, obj.method_id

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """Drain until the server closes the socket. True if it did within timeout."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.fill(deadline)
                self.buf.clear()
        except PeerClosed:
            return True
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            return True

    # ------------------------------------------------------------------ handshake
    def send_protocol_header(self, data: bytes = AMQP_091_HEADER) -> None:
        self.send_bytes(data)

    def handshake(
        self,
        user: str = "guest",
        password: str = "guest",
        vhost: str = "/",
        *,
        mechanism: str = "PLAIN",
        response: str | None = None,
        capabilities: dict[str, Any] | None = None,
        client_properties: dict[str, Any] | None = None,
        channel_max: int | None = None,
        frame_max: int | None = None,
        heartbeat: int | None = None,
        open: bool = True,
    ) -> tuple[commands.Connection.Start, commands.Connection.Tune]:
        """Protocol header → start/start-ok → tune/tune-ok → open/open-ok.

        channel_max/frame_max/heartbeat default to the server's Tune values. With open=False
        stops after tune-ok (before connection.open). Returns (Start, Tune).
        """
        self.send_protocol_header()
        self.start = self.expect(commands.Connection.Start, 0)
        props = dict(client_properties or {"product": "amqp_raw", "platform": "python"})
        props.setdefault(
            "capabilities", DEFAULT_CAPABILITIES if capabilities is None else capabilities
        )
        if response is None:
            response = (
                amqplain_response(user, password)
                if mechanism == "AMQPLAIN"
                else plain_response(user, password)
            )
        self.send_frame(
            commands.Connection.StartOk(
                client_properties=props, mechanism=mechanism, response=response, locale="en_US"
            ),
            0,
        )
        self.tune = self.expect(commands.Connection.Tune, 0)
        cm = self.tune.channel_max if channel_max is None else channel_max
        fm = self.tune.frame_max if frame_max is None else frame_max
        hb = self.tune.heartbeat if heartbeat is None else heartbeat
        self.frame_max = fm or 131072
        self.send_frame(commands.Connection.TuneOk(channel_max=cm, frame_max=fm, heartbeat=hb), 0)
        if open:
            self.send_frame(commands.Connection.Open(virtual_host=vhost), 0)
            self.expect(commands.Connection.OpenOk, 0)
        return self.start, self.tune

    # ------------------------------------------------------------------ helpers
    def open_channel(self, channel: int = 1) -> commands.Channel.OpenOk:
        return self.rpc(commands.Channel.Open(), channel, commands.Channel.OpenOk)

    def close_channel(self, channel: int = 1) -> None:
        self.rpc(
            commands.Channel.Close(reply_code=200, reply_text="Normal shutdown", class_id=0, method_id=0),
            channel,
            commands.Channel.CloseOk,
        )

    def close_connection(self) -> None:
        """Client-initiated connection.close; waits for close-ok."""
        self.send_frame(
            commands.Connection.Close(reply_code=200, reply_text="Normal shutdown", class_id=0, method_id=0),
            0,
        )
        self.expect(commands.Connection.CloseOk, 0)
