"""The session layer: AMQP bytes in, calls on the domain (vhosts, exchanges, queues), bytes out.

`engine.Session` is the sans-IO connection state machine; `channel.ChannelSession` holds one
channel's state; the methods of each AMQP class live in a module of their own. The asyncio
adapter that owns sockets and timers is amqp_broker/server.py.
"""
from .engine import Session

__all__ = ["Session"]
