"""Closing a connection while the client's frames are still arriving: the client must get
connection.close-ok (or the server's connection.close) intact, never a TCP reset.

A socket closed with unread bytes in its receive buffer makes the kernel answer with RST, and a
reset can destroy data the client has not read yet. RabbitMQ sends close-ok and then discards
further frames until the client closes its side (rabbit_reader's closing state). Conformance
style: these run against the reference RabbitMQ too when AMQP_REFERENCE_URL is set.
"""
from __future__ import annotations

import socket
import threading

from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame, header

from helpers.raw import RawConnection

BURST = 20000  # 20 MB: more than the kernel buffers of a loopback connection hold
BODY = b"x" * 1024
_CLOSE = C.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0)


def _publishes(queue: str) -> bytes:
    one = b"".join((
        frame.marshal(C.Basic.Publish(exchange="", routing_key=queue), 1),
        frame.marshal(header.ContentHeader(0, len(BODY), C.Basic.Properties()), 1),
        frame.marshal(pbody.ContentBody(BODY), 1),
    ))
    return one * BURST


class _Sender(threading.Thread):
    """sendall from a thread, so the test can read while it writes; `error` is what the
    write ended with (a reset here is what a client library reports instead of close-ok)."""

    def __init__(self, sock: socket.socket, data: bytes):
        super().__init__(daemon=True)
        self.sock = sock
        self.data = data
        self.error: OSError | None = None
        self.start()

    def run(self) -> None:
        try:
            self.sock.sendall(self.data)
        except OSError as exc:
            self.error = exc

    def finished_cleanly(self) -> bool:
        self.join(20)
        return not self.is_alive() and self.error is None


def _read_until(conn: RawConnection, wanted) -> object:
    """Frames until one of type `wanted`; a reset on the way fails the test."""
    while True:
        _channel, obj = conn.recv_frame(timeout=10)
        if isinstance(obj, wanted):
            return obj


def _burst_then_close_ok(url: str, uid: str, close_first: bool):
    """Open, declare, then write a burst of publishes with connection.close ahead of it (as
    some clients' writers do: channel 0 jumps the queue) or behind it; read close-ok."""
    conn = RawConnection.connect(url, timeout=10)
    queue = f"close-burst-{uid}"
    conn.open_channel(1)
    conn.rpc(C.Queue.Declare(queue=queue, auto_delete=True), 1, C.Queue.DeclareOk)
    close = frame.marshal(_CLOSE, 0)
    data = close + _publishes(queue) if close_first else _publishes(queue) + close
    sender = _Sender(conn.sock, data)
    _read_until(conn, C.Connection.CloseOk)  # raises PeerClosed on a reset
    return conn, sender


def test_close_ahead_of_inflight_publishes_gets_close_ok_and_no_reset(amqp_url, uid):
    conn, sender = _burst_then_close_ok(amqp_url, uid, close_first=True)
    try:
        # the server read (and discarded) everything after close-ok: no write failed
        assert sender.finished_cleanly(), sender.error
    finally:
        conn.close()


def test_close_after_a_burst_gets_close_ok_and_no_reset(amqp_url, uid):
    conn, sender = _burst_then_close_ok(amqp_url, uid, close_first=False)
    try:
        assert sender.finished_cleanly(), sender.error
    finally:
        conn.close()


def test_after_close_ok_the_connection_ends_with_eof_not_a_reset(own_broker, uid):
    """Ours goes one step further than RabbitMQ (which closes its socket after close-ok, so
    a client that half-closes afterwards gets a reset): it shuts its sending side and reads
    on until the client's end of stream, so every ending is orderly."""
    for close_first in (True, False):
        conn, sender = _burst_then_close_ok(own_broker.url, uid, close_first)
        try:
            assert sender.finished_cleanly(), sender.error
            assert _ends_without_reset(conn)
        finally:
            conn.close()


def test_server_close_under_a_burst_arrives_intact(amqp_url, uid):
    """A connection error while publishes pour in: the server's connection.close arrives
    intact and, after our close-ok, the connection ends."""
    conn = RawConnection.connect(amqp_url, timeout=10)
    try:
        conn.open_channel(1)
        queue = f"close-error-{uid}"
        conn.rpc(C.Queue.Declare(queue=queue, auto_delete=True), 1, C.Queue.DeclareOk)
        bad = b"\x09\x00\x01\x00\x00\x00\x00\xce"  # a frame of unknown type 9
        sender = _Sender(conn.sock, bad + _publishes(queue))
        close = _read_until(conn, C.Connection.Close)
        assert close.reply_code == 501
        assert sender.finished_cleanly(), sender.error
        conn.send_frame(C.Connection.CloseOk(), 0)
        assert conn.wait_closed(10)
    finally:
        conn.close()


def _ends_without_reset(conn: RawConnection) -> bool:
    """After the closing handshake the client closes its sending side, as clients do; the
    server must then end the connection with an orderly EOF. A reset (ECONNRESET) means the
    server closed its socket with our bytes unread."""
    try:
        conn.sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    conn.sock.settimeout(10)
    try:
        while conn.sock.recv(65536):
            pass
    except ConnectionResetError:
        return False
    return True
