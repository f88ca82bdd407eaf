"""Backpressure between a connection and the world around it, as functions of the Session
(like throttle.py, which blocks publishers during a resource alarm):

- the adapter's socket buffer is full: consumers on this connection stop getting deliveries
  until it drains (so a slow reader never makes the broker buffer without bound);
- the store is behind on disk writes: the adapter is asked, once per episode, to stop reading
  publishers until the store catches up (see effects.StoreBehind).
"""
from __future__ import annotations

from . import effects


def pause_writing(session) -> None:
    session.write_paused = True
    for channel in session.channels.values():
        channel.paused = True


def resume_writing(session) -> None:
    session.write_paused = False
    for channel in list(session.channels.values()):
        if channel.open:
            channel.resume()


def store_behind(session) -> None:
    if not session.store_is_behind:
        session.store_is_behind = True
        session.effects.append(effects.STORE_BEHIND)


def store_caught_up(session) -> None:
    session.store_is_behind = False
