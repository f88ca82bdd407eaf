"""Users and SASL mechanisms (PLAIN, AMQPLAIN), sans-IO.

As in RabbitMQ's default configuration, the `guest` user may log in only from loopback
addresses (`loopback_users`), so a broker started with the embedded default is not an open
door on a network.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os

from . import tables

MECHANISMS = ("PLAIN", "AMQPLAIN")


class AuthError(Exception):
    """Login refused (bad credentials, unknown user, or guest from a remote address)."""


def _hash(password: str, salt: bytes) -> bytes:
    # RabbitMQ's default is salted SHA-256 too (rabbit_password_hashing_sha256)
    return hashlib.sha256(salt + password.encode("utf-8")).digest()


class User:
    __slots__ = ("name", "salt", "password_hash", "tags")

    def __init__(self, name: str, password: str, tags=("administrator",)):
        self.name = name
        self.salt = os.urandom(4)
        self.password_hash = _hash(password, self.salt)
        self.tags = tuple(tags)

    def check(self, password: str) -> bool:
        return hmac.compare_digest(_hash(password, self.salt), self.password_hash)


class UserStore:
    def __init__(self, users: dict[str, str] | None = None, loopback_users=("guest",)):
        if users is None:
            users = {"guest": "guest"}
        self.users = {name: User(name, pw) for name, pw in users.items()}
        self.loopback_users = set(loopback_users)

    def add(self, name: str, password: str, tags=("administrator",)) -> None:
        self.users[name] = User(name, password, tags)

    def load(self, rows) -> None:
        """Replace the users with stored ones: (name, salt, password_hash, tags) rows."""
        self.users = {}
        for name, salt, password_hash, tags in rows:
            user = User.__new__(User)
            user.name, user.salt, user.password_hash = name, bytes(salt), bytes(password_hash)
            user.tags = tuple(t for t in tags.split(",") if t)
            self.users[name] = user

    def authenticate(self, mechanism: str, response, peer_host: str | None) -> User:
        username, password = parse_response(mechanism, response)
        user = self.users.get(username)
        if user is None or not user.check(password):
            raise AuthError(f"user '{username}' - invalid credentials")
        if username in self.loopback_users and not is_loopback(peer_host):
            raise AuthError(f"user '{username}' can only connect via localhost")
        return user


def is_loopback(host: str | None) -> bool:
    if host is None:  # unix socket or in-process transport
        return True
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def _text(value) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def parse_response(mechanism: str, response) -> tuple[str, str]:
    """-> (username, password). Raises AuthError on a malformed response."""
    raw = response.encode("utf-8", "surrogateescape") if isinstance(response, str) else bytes(response or b"")
    if mechanism == "PLAIN":
        parts = raw.split(b"\x00")
        if len(parts) != 3:
            raise AuthError("malformed PLAIN response")
        return parts[1].decode("utf-8", "replace"), parts[2].decode("utf-8", "replace")
    if mechanism == "AMQPLAIN":
        # a field table without its 4-byte length prefix
        try:
            table = tables.decode_table_body(raw)
        except tables.TableError as exc:  # a malformed table is a refused login, not a crash
            raise AuthError("malformed AMQPLAIN response") from exc
        if "LOGIN" not in table or "PASSWORD" not in table:
            raise AuthError("AMQPLAIN response lacks LOGIN or PASSWORD")
        return _text(table["LOGIN"]), _text(table["PASSWORD"])
    raise AuthError(f"unsupported mechanism {mechanism}")
