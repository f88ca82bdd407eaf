"""Drive the sans-IO session engine directly: bytes in, frames and effects out, time as a
number. No socket, no thread, no event loop (except where a test awaits the store) — so each
protocol rule is a fast, deterministic test."""
from __future__ import annotations

from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader
from pamqp import body as pbody

from amqp_broker import Broker
from amqp_broker.expiry import Expirer
from amqp_broker.permissions import FULL
from amqp_broker.session import Session
from amqp_broker.storage import MemoryStore
from amqp_broker.vhost import VHost

PEER = ("127.0.0.1", 40000)


def make_broker(store=None) -> Broker:
    """A broker object with its vhost set up as start() would, but no listener."""
    broker = Broker(store=store or MemoryStore())
    broker.expirer = Expirer()
    vhost = VHost("/", broker.store, broker.expirer)
    vhost.policies = broker.policies
    broker.vhosts["/"] = vhost
    for user in broker.users.users.values():  # as start() grants the default users (_recover_users)
        broker.permissions.set(user.name, "/", FULL, FULL, FULL)
    return broker


class EngineClient:
    """One client connection to a Session, at a clock the test moves."""

    def __init__(self, broker: Broker | None = None, now: float = 1000.0):
        self.broker = broker or make_broker()
        self.now = now
        self.session = Session(self.broker, PEER, "test", now)
        self.effects: list = []
        self._pending = b""

    # -- input ----------------------------------------------------------------------------

    def send_bytes(self, data: bytes) -> None:
        self.session.receive(data, self.now)

    def send(self, obj, channel: int = 0) -> None:
        self.send_bytes(pframe.marshal(obj, channel))

    def publish(self, channel: int, body: bytes, routing_key: str, exchange: str = "",
                properties: C.Basic.Properties | None = None, **kw) -> None:
        self.send_bytes(b"".join((
            pframe.marshal(C.Basic.Publish(exchange=exchange, routing_key=routing_key, **kw), channel),
            pframe.marshal(pheader.ContentHeader(0, len(body), properties or C.Basic.Properties()), channel),
            pframe.marshal(pbody.ContentBody(body), channel) if body else b"",
        )))

    def advance(self, seconds: float) -> None:
        """Move the clock and tick the engine, as the adapter's timer would."""
        self.now += seconds
        wakeup = self.session.wakeup_at
        if wakeup is not None and self.now >= wakeup:
            self.session.tick(self.now)

    # -- output ---------------------------------------------------------------------------

    def output(self) -> bytes:
        data = self.session.data_to_send()
        self.effects.extend(self.session.effects)
        self.session.effects.clear()
        return data

    def frames(self) -> list:
        """Everything sent since the last call, as (channel, pamqp object) pairs."""
        data = self._pending + self.output()
        out = []
        while data:
            if data[:4] == b"AMQP":
                out.append((None, data[:8]))
                data = data[8:]
                continue
            try:
                consumed, channel, obj = pframe.unmarshal(data)
            except Exception:  # an incomplete frame: keep it for the next call
                break
            out.append((channel, obj))
            data = data[consumed:]
        self._pending = data
        return out

    # -- handshake ------------------------------------------------------------------------

    def open(self, heartbeat: int = 0, channels=(1,)) -> "EngineClient":
        self.send_bytes(b"AMQP\x00\x00\x09\x01")
        self.send(C.Connection.StartOk(client_properties={"capabilities": {"consumer_cancel_notify": True}},
                                       mechanism="PLAIN", response="\x00guest\x00guest"))
        self.send(C.Connection.TuneOk(channel_max=2047, frame_max=131072, heartbeat=heartbeat))
        self.send(C.Connection.Open(virtual_host="/"))
        for number in channels:
            self.send(C.Channel.Open(), number)
        self.frames()
        return self
