"""The session engine's rules, driven without a socket (tests/helpers/engine.py): framing,
the handshake, which frame may come when, closing, timers, publisher confirms, transactions,
suspension. The same rules are checked against real servers through sockets elsewhere
(test_connection*.py run against the reference RabbitMQ too); here they are plain calls."""
from __future__ import annotations

import asyncio

from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader
from pamqp import heartbeat as pheartbeat

from amqp_broker.session import effects
from amqp_broker.session.engine import CLOSE_OK_TIMEOUT, HANDSHAKE_TIMEOUT, LINGER_TIMEOUT
from amqp_broker.session.states import CLOSED, CLOSING, OPENED, START_OK, TUNE_OK
from amqp_broker.storage import MemoryStore
from helpers.engine import EngineClient, make_broker


def _close_of(frames):
    closes = [obj for _ch, obj in frames if isinstance(obj, (C.Connection.Close, C.Channel.Close))]
    assert closes, frames
    close = closes[-1]
    return close.reply_code, close.reply_text, close.class_id, close.method_id


# -- protocol header and handshake -------------------------------------------------------------


def test_wrong_protocol_header_gets_ours_and_the_socket_closes():
    client = EngineClient()
    client.send_bytes(b"AMQP\x00\x00\x09\x00")
    assert client.frames() == [(None, b"AMQP\x00\x00\x09\x01")]
    assert client.effects == [effects.CLOSE_SOCKET]
    assert client.session.state == CLOSED


def test_header_may_arrive_in_pieces():
    client = EngineClient()
    client.send_bytes(b"AMQP\x00")
    assert client.frames() == []
    client.send_bytes(b"\x00\x09\x01")
    [(channel, start)] = client.frames()
    assert channel == 0 and isinstance(start, C.Connection.Start)
    assert start.server_properties["capabilities"]["publisher_confirms"] is True


def test_handshake_states_in_order():
    client = EngineClient()
    session = client.session
    client.send_bytes(b"AMQP\x00\x00\x09\x01")
    assert session.state == START_OK
    client.send(C.Connection.StartOk(mechanism="PLAIN", response="\x00guest\x00guest"))
    assert session.state == TUNE_OK
    tune = [obj for _c, obj in client.frames() if isinstance(obj, C.Connection.Tune)][0]
    assert (tune.channel_max, tune.frame_max, tune.heartbeat) == (2047, 131072, 60)
    client.send(C.Connection.TuneOk(channel_max=100, frame_max=8192, heartbeat=0))
    client.send(C.Connection.Open(virtual_host="/"))
    assert session.state == OPENED
    assert (session.channel_max, session.frame_max) == (100, 8192)
    assert isinstance(client.frames()[-1][1], C.Connection.OpenOk)


def test_wrong_password_without_capability_drops_the_socket():
    client = EngineClient()
    client.send_bytes(b"AMQP\x00\x00\x09\x01")
    client.send(C.Connection.StartOk(mechanism="PLAIN", response="\x00guest\x00nope"))
    client.frames()
    assert client.effects == [effects.CLOSE_SOCKET]


def test_wrong_password_with_capability_gets_403():
    client = EngineClient()
    client.send_bytes(b"AMQP\x00\x00\x09\x01")
    client.send(C.Connection.StartOk(client_properties={"capabilities": {"authentication_failure_close": True}},
                                     mechanism="PLAIN", response="\x00guest\x00nope"))
    code, text, _cls, _meth = _close_of(client.frames())
    assert code == 403 and text.startswith("ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN")


def test_tune_ok_above_the_offer_drops_the_socket():
    client = EngineClient()
    client.send_bytes(b"AMQP\x00\x00\x09\x01")
    client.send(C.Connection.StartOk(mechanism="PLAIN", response="\x00guest\x00guest"))
    client.send(C.Connection.TuneOk(channel_max=2047, frame_max=131072 * 2, heartbeat=0))
    client.frames()
    assert client.effects == [effects.CLOSE_SOCKET]


def test_unknown_vhost_is_530():
    client = EngineClient()
    client.send_bytes(b"AMQP\x00\x00\x09\x01")
    client.send(C.Connection.StartOk(mechanism="PLAIN", response="\x00guest\x00guest"))
    client.send(C.Connection.TuneOk(channel_max=2047, frame_max=131072, heartbeat=0))
    client.send(C.Connection.Open(virtual_host="nowhere"))
    assert _close_of(client.frames()) == (530, "NOT_ALLOWED - vhost nowhere not found", 10, 40)


def test_channel_frames_before_open_ok_are_505():
    client = EngineClient()
    client.send_bytes(b"AMQP\x00\x00\x09\x01")
    client.send(C.Channel.Open(), 1)
    code, _text, _c, _m = _close_of(client.frames())
    assert code == 505


def test_handshake_timeout_aborts():
    client = EngineClient()
    client.send_bytes(b"AMQP\x00\x00\x09\x01")
    client.advance(HANDSHAKE_TIMEOUT - 0.5)
    client.frames()
    assert client.effects == []
    client.advance(1)
    client.frames()
    assert client.effects == [effects.ABORT_SOCKET]


# -- framing ---------------------------------------------------------------------------------


def test_bad_frame_end_is_501():
    client = EngineClient().open()
    client.send_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00")
    code, text, _c, _m = _close_of(client.frames())
    assert (code, text) == (501, "FRAME_ERROR - type 8, all octets = <<>>: {invalid_frame_end_marker,0}")


def test_frame_larger_than_frame_max_is_501():
    client = EngineClient().open()
    client.send_bytes(b"\x03\x00\x01\x00\x10\x00\x00")
    code, text, _c, _m = _close_of(client.frames())
    assert code == 501 and "frame_too_large" in text


def test_frames_split_anywhere_are_reassembled():
    client = EngineClient().open()
    data = pframe.marshal(C.Queue.Declare(queue="q"), 1)
    for i in range(len(data)):
        client.send_bytes(data[i:i + 1])
    assert [type(obj) for _c, obj in client.frames()] == [C.Queue.DeclareOk]


def test_method_on_an_unopened_channel_is_504():
    client = EngineClient().open(channels=())
    client.send(C.Queue.Declare(queue="q"), 3)
    assert _close_of(client.frames()) == (504, "CHANNEL_ERROR - expected 'channel.open'", 50, 10)


def test_content_header_without_publish_is_505():
    client = EngineClient().open()
    client.send(pheader.ContentHeader(0, 5, C.Basic.Properties()), 1)
    assert _close_of(client.frames()) == (
        505, "UNEXPECTED_FRAME - expected method frame, got non method frame instead", 0, 0)


def test_method_while_content_is_expected_is_505_naming_the_publish():
    client = EngineClient().open()
    client.send(C.Basic.Publish(exchange="", routing_key="q"), 1)
    client.send(C.Queue.Declare(queue="q"), 1)
    assert _close_of(client.frames()) == (
        505, "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead",
        60, 40)


def test_heartbeat_on_a_channel_is_505():
    client = EngineClient().open()
    client.send_bytes(b"\x08\x00\x01\x00\x00\x00\x00\xce")
    code, _t, _c, _m = _close_of(client.frames())
    assert code == 505


# -- channel errors are soft --------------------------------------------------------------------


def test_soft_error_closes_only_the_channel():
    client = EngineClient().open(channels=(1, 2))
    client.send(C.Queue.Declare(queue="missing", passive=True), 1)
    frames = client.frames()
    assert _close_of(frames) == (404, "NOT_FOUND - no queue 'missing' in vhost '/'", 50, 10)
    assert frames[-1][0] == 1
    client.send(C.Queue.Declare(queue="other"), 2)  # channel 2 carries on
    assert isinstance(client.frames()[-1][1], C.Queue.DeclareOk)
    client.send(C.Queue.Declare(queue="other"), 1)  # ignored until close-ok
    assert client.frames() == []
    client.send(C.Channel.CloseOk(), 1)
    client.send(C.Channel.Open(), 1)
    assert isinstance(client.frames()[-1][1], C.Channel.OpenOk)


# -- closing ---------------------------------------------------------------------------------


def test_client_close_gets_close_ok_then_the_engine_lingers():
    client = EngineClient().open()
    client.send(C.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0))
    assert isinstance(client.frames()[-1][1], C.Connection.CloseOk)
    assert client.effects == [effects.LINGER]
    client.send(C.Queue.Declare(queue="late"), 1)  # discarded
    assert client.frames() == []
    client.advance(LINGER_TIMEOUT + 1)  # the peer never closed: now we do
    client.frames()
    assert client.effects[-1] == effects.CLOSE_SOCKET


def test_server_close_waits_for_close_ok_then_lingers():
    client = EngineClient().open()
    client.session.close(320, "CONNECTION_FORCED - shutdown")
    assert _close_of(client.frames())[0] == 320
    assert client.session.state == CLOSING
    client.send(C.Queue.Declare(queue="ignored"), 1)
    assert client.frames() == []
    client.send(C.Connection.CloseOk())
    client.frames()
    assert client.effects == [effects.LINGER]


def test_server_close_without_close_ok_closes_after_the_timeout():
    client = EngineClient().open()
    client.session.close(320, "CONNECTION_FORCED - shutdown")
    client.advance(CLOSE_OK_TIMEOUT + 0.1)
    client.frames()
    assert client.effects == [effects.CLOSE_SOCKET]


# -- heartbeats -------------------------------------------------------------------------------


def test_idle_connection_gets_a_heartbeat_every_half_interval():
    client = EngineClient().open(heartbeat=10)
    heartbeat = pheartbeat.Heartbeat
    client.advance(5)  # the handshake's replies went out during this half interval
    assert client.frames() == []
    for _ in range(3):
        client.send_bytes(b"\x08\x00\x00\x00\x00\x00\x00\xce")  # the client's heartbeat
        client.advance(5)
        assert [type(obj) for _c, obj in client.frames()] == [heartbeat]
    assert client.effects == []


def test_silent_peer_is_dropped_after_two_intervals():
    client = EngineClient().open(heartbeat=10)
    client.advance(5)  # the tick that still saw the handshake's traffic
    for _ in range(3):  # three more half intervals of silence are tolerated
        client.advance(5)
        client.frames()
    assert client.effects == []
    client.advance(5)  # the fourth: two whole intervals without a byte
    client.frames()
    assert client.effects == [effects.ABORT_SOCKET]


# -- publishing, confirms, transactions ------------------------------------------------------


def test_confirms_are_numbered_from_one_and_coalesced():
    client = EngineClient().open()
    client.send(C.Confirm.Select(), 1)
    client.send(C.Queue.Declare(queue="q"), 1)
    client.frames()
    for i in range(3):
        client.publish(1, b"m%d" % i, "q")
    acks = [obj for _c, obj in client.frames() if isinstance(obj, C.Basic.Ack)]
    assert [(a.delivery_tag, a.multiple) for a in acks] == [(3, True)]


def test_unroutable_mandatory_is_returned_before_its_confirm():
    client = EngineClient().open()
    client.send(C.Confirm.Select(), 1)
    client.frames()
    client.publish(1, b"lost", "nowhere", mandatory=True)
    kinds = [type(obj).__name__ for _c, obj in client.frames()]
    assert kinds == ["Return", "ContentHeader", "ContentBody", "Ack"]


def test_tx_publish_is_invisible_until_commit():
    client = EngineClient().open()
    client.send(C.Queue.Declare(queue="q"), 1)
    client.send(C.Tx.Select(), 1)
    client.publish(1, b"in tx", "q")
    client.send(C.Queue.Declare(queue="q", passive=True), 1)
    declare_ok = [obj for _c, obj in client.frames() if isinstance(obj, C.Queue.DeclareOk)][-1]
    assert declare_ok.message_count == 0
    client.send(C.Tx.Commit(), 1)
    client.send(C.Queue.Declare(queue="q", passive=True), 1)
    frames = [obj for _c, obj in client.frames()]
    assert isinstance(frames[0], C.Tx.CommitOk) and frames[-1].message_count == 1


def test_delivery_and_ack_through_the_engine():
    client = EngineClient().open()
    client.send(C.Queue.Declare(queue="q"), 1)
    client.send(C.Basic.Consume(queue="q", consumer_tag="c"), 1)
    client.frames()
    client.publish(1, b"hello", "q")
    frames = [obj for _c, obj in client.frames()]
    deliver = frames[0]
    assert isinstance(deliver, C.Basic.Deliver) and deliver.delivery_tag == 1 and frames[2].value == b"hello"
    assert client.session.channels[1].unacked_count == 1
    client.send(C.Basic.Ack(delivery_tag=1), 1)
    assert client.session.channels[1].unacked_count == 0
    client.send(C.Basic.Ack(delivery_tag=9), 1)
    assert _close_of(client.frames()) == (406, "PRECONDITION_FAILED - unknown delivery tag 9", 60, 80)


async def test_tx_commit_with_a_persisting_store_suspends_until_the_commit():
    store = MemoryStore(persist_messages=True)
    await store.open()
    client = EngineClient(make_broker(store)).open()
    client.send(C.Queue.Declare(queue="dq", durable=True), 1)
    client.send(C.Tx.Select(), 1)
    client.publish(1, b"durable", "dq", properties=C.Basic.Properties(delivery_mode=2))
    client.frames()
    client.send(C.Tx.Commit(), 1)
    client.send(C.Queue.Declare(queue="dq", passive=True), 1)  # held behind the commit
    assert client.frames() == []
    [suspend] = client.effects
    assert isinstance(suspend, effects.Suspend) and client.session.suspended
    await asyncio.ensure_future(suspend.awaitable)
    client.session.resume(None, client.now)
    frames = [obj for _c, obj in client.frames()]
    assert [type(f) for f in frames] == [C.Tx.CommitOk, C.Queue.DeclareOk]
    assert frames[1].message_count == 1
    await store.close()
