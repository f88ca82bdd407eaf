"""AMQP errors as RabbitMQ raises them.

A soft error closes one channel (channel.close); a hard error closes the whole connection
(connection.close). Which is which is fixed by the reply code, exactly as in RabbitMQ's
rabbit_binary_generator / amqp-rabbitmq-0.9.1.json, so the domain code raises by code and never
has to know which kind of close it causes.
"""
from __future__ import annotations

import codecs

REPLY_NAMES = {
    200: "OK",
    311: "CONTENT_TOO_LARGE",
    312: "NO_ROUTE",
    313: "NO_CONSUMERS",
    320: "CONNECTION_FORCED",
    402: "INVALID_PATH",
    403: "ACCESS_REFUSED",
    404: "NOT_FOUND",
    405: "RESOURCE_LOCKED",
    406: "PRECONDITION_FAILED",
    501: "FRAME_ERROR",
    502: "SYNTAX_ERROR",
    503: "COMMAND_INVALID",
    504: "CHANNEL_ERROR",
    505: "UNEXPECTED_FRAME",
    506: "RESOURCE_ERROR",
    530: "NOT_ALLOWED",
    540: "NOT_IMPLEMENTED",
    541: "INTERNAL_ERROR",
}

SOFT_CODES = frozenset({311, 312, 313, 403, 404, 405, 406})

CONTENT_TOO_LARGE = 311
NO_ROUTE = 312
CONNECTION_FORCED = 320
ACCESS_REFUSED = 403
NOT_FOUND = 404
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406
FRAME_ERROR = 501
SYNTAX_ERROR = 502
COMMAND_INVALID = 503
CHANNEL_ERROR = 504
UNEXPECTED_FRAME = 505
RESOURCE_ERROR = 506
NOT_ALLOWED = 530
NOT_IMPLEMENTED = 540
INTERNAL_ERROR = 541


def reply_text(code: int, explanation: str) -> str:
    """`NAME - explanation`, cut as RabbitMQ cuts it (252 bytes, then '...').

    Names quoted in the explanation may hold bytes that are not UTF-8 (surrogate escapes, as
    the decoders keep them); they go out byte for byte, as RabbitMQ sends them.
    """
    text = f"{REPLY_NAMES[code]} - {explanation}"
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) > 255:
        # a character cut in two is dropped (an incremental decoder holds it back); stray
        # non-UTF-8 bytes before it stay
        text = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(raw[:252]) + "..."
    return text


class AMQPError(Exception):
    """An error to report to the peer. `class_id`/`method_id` name the failing method; the
    dispatcher fills them in when the raising code did not know them."""

    # True when class_id/method_id are final even if 0 (the dispatcher must not fill them in)
    ids_fixed = False

    def __init__(self, code: int, explanation: str, class_id: int = 0, method_id: int = 0):
        super().__init__(explanation)
        self.code = code
        self.explanation = explanation
        self.class_id = class_id
        self.method_id = method_id

    @property
    def hard(self) -> bool:
        return self.code not in SOFT_CODES

    @property
    def text(self) -> str:
        return reply_text(self.code, self.explanation)

    def __repr__(self) -> str:
        return f"AMQPError({self.code}, {self.text!r}, {self.class_id}, {self.method_id})"


class InternalError(AMQPError):
    """What a client sees when a RabbitMQ channel process crashes, e.g. on a property list it
    cannot decode: connection.close 541 with the bare text "INTERNAL_ERROR" and class/method 0.
    `detail` is for our log only."""

    ids_fixed = True

    def __init__(self, detail: str = ""):
        super().__init__(INTERNAL_ERROR, detail)

    @property
    def text(self) -> str:
        return REPLY_NAMES[INTERNAL_ERROR]


def resource(kind: str, name: str, vhost: str) -> str:
    """How RabbitMQ names a resource in reply texts: queue 'x' in vhost '/'."""
    return f"{kind} '{name}' in vhost '{vhost}'"


def not_found(kind: str, name: str, vhost: str) -> AMQPError:
    return AMQPError(NOT_FOUND, f"no {resource(kind, name, vhost)}")


def precondition(explanation: str) -> AMQPError:
    return AMQPError(PRECONDITION_FAILED, explanation)


def access_refused(explanation: str) -> AMQPError:
    return AMQPError(ACCESS_REFUSED, explanation)


def resource_locked(name: str, vhost: str) -> AMQPError:
    return AMQPError(
        RESOURCE_LOCKED,
        f"cannot obtain exclusive access to locked {resource('queue', name, vhost)}. It could be "
        "originally declared on another connection or the exclusive property value does not "
        "match that of the original declaration.",
    )
