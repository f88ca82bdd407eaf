"""The last-resort guards of the frame loop (our broker only): a bug while handling a frame
costs that one connection a 541 INTERNAL_ERROR, never the broker, never other connections, and
never an exception escaping asyncio's data_received (which asyncio would log as "Fatal error"
and answer by dropping the socket without a word)."""
from __future__ import annotations

import logging

from pamqp import commands as C

from amqp_broker.session.channel import ChannelSession
from amqp_broker.session.engine import Session
from helpers.raw import RawConnection


def _boom(*_args, **_kwargs):
    raise RuntimeError("injected bug")


def _check_guarded(own_broker, caplog, monkeypatch, target, name):
    caplog.set_level(logging.ERROR)
    bystander = RawConnection.connect(own_broker.url)
    conn = RawConnection.connect(own_broker.url)
    try:
        bystander.open_channel(1)
        conn.open_channel(1)
        monkeypatch.setattr(target, name, _boom)
        conn.send_frame(C.Basic.Qos(prefetch_count=1), 1)
        assert conn.expect_close() == (541, "INTERNAL_ERROR", 0, 0)
        assert conn.wait_closed(5)
        monkeypatch.undo()
        assert not [r for r in caplog.records if r.name == "asyncio"]
        assert any("injected bug" in (r.exc_text or "") or (r.exc_info and "injected bug" in str(r.exc_info[1]))
                   for r in caplog.records if r.name.startswith("amqp_broker"))
        # the broker and the other connection carry on
        bystander.rpc(C.Basic.Qos(prefetch_count=2), 1, C.Basic.QosOk)
        fresh = RawConnection.connect(own_broker.url)
        fresh.open_channel(1)
        fresh.close()
    finally:
        monkeypatch.undo()
        conn.close()
        bystander.close()
    assert own_broker.is_alive()


def test_bug_in_a_method_handler_closes_only_that_connection(own_broker, caplog, monkeypatch):
    _check_guarded(own_broker, caplog, monkeypatch, ChannelSession, "handle_method")


def test_bug_anywhere_in_data_received_closes_only_that_connection(own_broker, caplog, monkeypatch):
    _check_guarded(own_broker, caplog, monkeypatch, Session, "_run_frames")
