"""The connection class (channel zero): start / tune / open, close, update-secret, and the
frames the engine sends for connection and channel lifecycle. Functions of the Session they
act on, so each rule is one call in a unit test."""
from __future__ import annotations

import logging
import platform
import socket

from pamqp import commands as C

from .. import __version__, access, codec, errors
from ..auth import EXTERNAL, AuthError, offered_mechanisms
from ..codec import FRAME_HEARTBEAT, FRAME_METHOD
from ..errors import AMQPError
from ..vhost_limits import check_connection_limit
from .states import OPEN, OPENED, START_OK, STATE_NAMES, TUNE_OK

log = logging.getLogger("amqp_broker.connection")

FRAME_MIN_SIZE = 4096

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



def server_properties() -> dict:
    return {
        "capabilities": {name: True for name in CAPABILITIES},
        "cluster_name": f"amqp-broker@{socket.gethostname()}",
        "copyright": "Copyright (c) the amqp-broker authors",
        "information": "Licensed under the MIT license. An AMQP 0-9-1 broker in Python.",
        "platform": f"Python {platform.python_version()}",
        "product": "amqp-broker",
        "version": __version__,
    }


def protocol_header(session, header: bytes) -> bool:
    """The 8-byte protocol header. Ours: answer connection.start. Another protocol or version:
    answer with our header (the caller then closes), as the spec says."""
    if header not in codec.ACCEPTED_HEADERS:
        session.send(codec.PROTOCOL_HEADER)
        return False
    session.state = START_OK
    session.send(start_frame(offered_mechanisms(session.peer_cert_cn)))
    return True


def start_frame(mechanisms=offered_mechanisms(None)) -> bytes:
    return codec.encode(
        0, C.Connection.Start, version_major=0, version_minor=9,
        server_properties=server_properties(), mechanisms=" ".join(mechanisms), locales="en_US",
    )


def connection_close(code: int, text: str, class_id: int, method_id: int) -> bytes:
    return codec.encode(0, C.Connection.Close, reply_code=code, reply_text=text,
                        class_id=class_id, method_id=method_id)


def connection_close_ok() -> bytes:
    return codec.encode(0, C.Connection.CloseOk)


def channel_open_ok(number: int) -> bytes:
    return codec.encode(number, C.Channel.OpenOk)


def channel_close(number: int, exc: AMQPError) -> bytes:
    return codec.encode(number, C.Channel.Close, reply_code=exc.code, reply_text=exc.text,
                        class_id=exc.class_id, method_id=exc.method_id)


def channel_close_ok(number: int) -> bytes:
    return codec.encode(number, C.Channel.CloseOk)


def channel_zero(session, ftype: int, payload: bytes) -> None:
    """A frame on channel zero (the caller checked it is well-formed)."""
    if ftype == FRAME_HEARTBEAT:
        return
    if ftype != FRAME_METHOD:  # content on channel zero
        raise AMQPError(errors.UNEXPECTED_FRAME, f"type {ftype}, {codec.payload_snippet(payload)}")
    index = codec.method_index(payload)
    try:
        obj = codec.decode_method(payload)
    except KeyError:
        raise AMQPError(errors.COMMAND_INVALID, f"unknown method {index >> 16}/{index & 0xFFFF}") from None
    except codec.MalformedUtf8:
        # on channel zero RabbitMQ names the method
        raise AMQPError(errors.FRAME_ERROR, codec.MALFORMED_UTF8, index >> 16, index & 0xFFFF) from None
    except AMQPError as exc:
        # fields that do not parse crash RabbitMQ's reader here: 541, bare, as it answers
        raise errors.InternalError(exc.explanation) from None
    try:
        _connection_method(session, obj)
    except AMQPError as exc:
        if not exc.class_id and not exc.ids_fixed:
            exc.class_id, exc.method_id = index >> 16, index & 0xFFFF
        raise


def while_closing(session, ftype: int, number: int, payload: bytes) -> None:
    """After our connection.close only close-ok / a crossing close count; everything else,
    malformed or not, is ignored (rabbit_reader in state closing)."""
    if ftype != FRAME_METHOD or number != 0 or len(payload) < 4:
        return
    index = codec.method_index(payload)
    if index == codec.CONNECTION_CLOSE_OK:
        session.linger()
    elif index == codec.CONNECTION_CLOSE:  # crossing ours
        session.send(connection_close_ok())
        session.linger()


def _connection_method(session, obj) -> None:
    state = session.state
    kind = type(obj)
    if state == START_OK and kind is C.Connection.StartOk:
        _start_ok(session, obj)
    elif state == TUNE_OK and kind is C.Connection.TuneOk:
        _tune_ok(session, obj)
    elif state == OPEN and kind is C.Connection.Open:
        _open(session, obj)
    elif kind is C.Connection.Close:
        session.peer_closed()
    elif state == OPENED and kind is C.Connection.UpdateSecret:
        session.send(codec.encode(0, C.Connection.UpdateSecretOk))
    elif state == OPENED and kind in (C.Connection.Blocked, C.Connection.Unblocked):
        pass
    else:
        raise AMQPError(
            errors.CHANNEL_ERROR, f"unexpected method in connection state {STATE_NAMES.get(state, 'running')}"
        )


def _start_ok(session, obj) -> None:
    session.client_properties = obj.client_properties or {}
    caps = session.client_properties.get("capabilities")
    session.capabilities = caps if isinstance(caps, dict) else {}
    mechanism = obj.mechanism or ""
    if mechanism not in offered_mechanisms(session.peer_cert_cn):
        log.warning("login refused on %s: unsupported mechanism %r", session.name, mechanism)
        session.refuse()  # RabbitMQ drops the socket without connection.close
        return
    broker = session.broker
    try:
        peer_host = session.peer[0] if session.peer else None
        if mechanism == EXTERNAL:  # the client certificate is the credential
            session.user = broker.users.authenticate_external(session.peer_cert_cn, peer_host)
        else:
            session.user = broker.users.authenticate(mechanism, obj.response, peer_host)
    except AuthError as exc:
        log.warning("login refused on %s: %s", session.name, exc)
        if session.capabilities.get("authentication_failure_close"):
            session.hard_error(
                AMQPError(
                    errors.ACCESS_REFUSED,
                    f"Login was refused using authentication mechanism {mechanism}. "
                    "For details see the broker logfile.",
                )
            )
        else:
            session.refuse()
        return
    session.auth_mechanism = mechanism
    session.state = TUNE_OK
    session.send(
        codec.encode(0, C.Connection.Tune, channel_max=broker.channel_max,
                     frame_max=broker.frame_max, heartbeat=broker.heartbeat)
    )


def _tune_ok(session, obj) -> None:
    # Values above what the server proposed (0 means "unlimited", so above too) or a
    # frame_max below the 4096 minimum: RabbitMQ drops the socket without connection.close.
    broker = session.broker
    frame_max, channel_max = obj.frame_max, obj.channel_max
    if (
        frame_max == 0 or frame_max > broker.frame_max or frame_max < FRAME_MIN_SIZE
        or channel_max == 0 or channel_max > broker.channel_max
    ):
        log.warning("refusing tune-ok from %s: frame_max=%s channel_max=%s", session.name, frame_max, channel_max)
        session.refuse()
        return
    session.frame_max = frame_max
    session.channel_max = channel_max
    session.state = OPEN
    session.start_heartbeat(obj.heartbeat)


def _open(session, obj) -> None:
    vhost = session.broker.vhosts.get(obj.virtual_host)
    if vhost is None:
        raise AMQPError(errors.NOT_ALLOWED, f"vhost {obj.virtual_host} not found")
    check_connection_limit(session.broker, vhost, session.user.name)  # before access, as rabbit_reader
    permissions, user = session.broker.permissions, session.user.name
    access.check_vhost(permissions, vhost.name, user)
    session.access = access.Access(permissions, vhost.name, user)
    session.vhost = vhost
    session.opened()
    session.send(codec.encode(0, C.Connection.OpenOk))
    log.debug("connection %s opened vhost %s as %s", session.name, vhost.name, session.user.name)
