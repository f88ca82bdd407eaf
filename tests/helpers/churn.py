"""Connection churn: clients that connect and go away in every way a client can, for the leak
tests (tests/test_churn_leaks.py, tests/stress/churn.py). Each kind leaves the broker with
something to clean up: a session, channels, consumers, an exclusive queue, a half-read frame,
a handshake that never finishes, a socket reset instead of closed.
"""
from __future__ import annotations

import socket
import struct

from pamqp import commands as C

from helpers.fuzz import method
from helpers.raw import RawConnection


def _clean(url: str) -> None:
    """Channels, an exclusive queue and a consumer, then connection.close / close-ok."""
    conn = RawConnection.connect(url)
    try:
        conn.open_channel(1)
        conn.open_channel(2)
        q = conn.rpc(C.Queue.Declare(queue="", exclusive=True), 1, C.Queue.DeclareOk).queue
        conn.rpc(C.Basic.Consume(queue=q), 2, C.Basic.ConsumeOk)
        conn.publish(1, b"churn", routing_key=q)
        conn.expect(C.Basic.Deliver, 2)
        conn.send_frame(C.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0), 0)
        while not isinstance(conn.recv_method()[1], C.Connection.CloseOk):
            pass  # the delivery's header and body come first
    finally:
        conn.close()


def _reset(url: str) -> None:
    """An open channel with an unacked delivery, then a TCP reset (a killed client)."""
    conn = RawConnection.connect(url)
    conn.open_channel(1)
    q = conn.rpc(C.Queue.Declare(queue="", exclusive=True), 1, C.Queue.DeclareOk).queue
    conn.rpc(C.Basic.Consume(queue=q), 1, C.Basic.ConsumeOk)
    conn.publish(1, b"churn", routing_key=q)
    conn.expect(C.Basic.Deliver, 1)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _hard_error(url: str) -> None:
    """A frame error: the broker closes with 501, the client answers close-ok."""
    conn = RawConnection.connect(url)
    try:
        conn.open_channel(1)
        conn.send_bytes(struct.pack(">BHI", 1, 1, 4) + b"\x00\x32\x00\x0a" + b"\x00")
        conn.expect_close()
        conn.wait_closed()
    finally:
        conn.close()


def _mid_handshake(url: str) -> None:
    """Protocol header and connection.start, then the client leaves (FIN)."""
    conn = RawConnection.from_url(url)
    try:
        conn.send_protocol_header()
        conn.expect(C.Connection.Start, 0)
    finally:
        conn.close()


def _mid_frame(url: str) -> None:
    """Half a queue.declare frame, then the client leaves."""
    conn = RawConnection.connect(url)
    try:
        conn.open_channel(1)
        conn.send_bytes(method(1, C.Queue.Declare, queue="", exclusive=True)[:9])
    finally:
        conn.close()


KINDS = [_clean, _reset, _hard_error, _mid_handshake, _mid_frame]


def churn_one(url: str, n: int) -> None:
    """The n-th connection of a churn run (the kinds take turns)."""
    KINDS[n % len(KINDS)](url)
