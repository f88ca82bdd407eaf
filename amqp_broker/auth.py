"""Users and SASL mechanisms (PLAIN, AMQPLAIN; EXTERNAL on TLS connections), sans-IO.

As in RabbitMQ's default configuration, the `guest` user may log in only from loopback
addresses (`loopback_users`), so a broker started with the embedded default is not an open
door on a network.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os

from . import tables

MECHANISMS = ("PLAIN", "AMQPLAIN")
# rabbitmq_auth_mechanism_ssl: log in as the user a verified client certificate names (its
# subject's CN); offered only on a TLS connection that presented such a certificate
EXTERNAL = "EXTERNAL"


def offered_mechanisms(peer_cert_cn: str | None) -> tuple[str, ...]:
    """The mechanisms connection.start offers: EXTERNAL too when a verified client
    certificate named someone (its CN)."""
    return MECHANISMS if peer_cert_cn is None else MECHANISMS + (EXTERNAL,)


class AuthError(Exception):
    """Login refused (bad credentials, unknown user, or guest from a remote address)."""


SHA256 = "rabbit_password_hashing_sha256"  # RabbitMQ's default, and ours for new passwords
SHA512 = "rabbit_password_hashing_sha512"
MD5 = "rabbit_password_hashing_md5"
# rabbit_password_hashing_*: each hashes salt + UTF-8 password with one digest
HASHING_ALGORITHMS = {SHA256: hashlib.sha256, SHA512: hashlib.sha512, MD5: hashlib.md5}
SALT_BYTES = 4  # rabbit_password:generate_salt/0


class BadPasswordHash(ValueError):
    """An imported password hash that is not base64 (RabbitMQ: {not_base64, Hash})."""


def _hash(password: str, salt: bytes, algorithm: str = SHA256) -> bytes:
    return HASHING_ALGORITHMS[algorithm](salt + password.encode("utf-8")).digest()


def decode_password_hash(text: str) -> bytes:
    """A `password_hash` as RabbitMQ exports it (base64 of salt + digest) -> its bytes."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise BadPasswordHash(text) from None


class User:
    """A user with RabbitMQ's password hash: a 4-byte salt and digest(salt + password).

    An empty hash means the user has no password: it cannot log in with one (RabbitMQ's
    `clear_password`, e.g. a user meant for certificate logins). A hashing algorithm this
    broker does not know keeps its hash for export but can never log in.
    """

    __slots__ = ("name", "salt", "password_hash", "hashing_algorithm", "tags")

    def __init__(self, name: str, password: str | None, tags=("administrator",)):
        self.name = name
        self.hashing_algorithm = SHA256
        self.tags = tuple(tags)
        self.set_password(password)

    @classmethod
    def from_hash(cls, name: str, rabbit_hash: bytes, algorithm: str = SHA256, tags=()) -> "User":
        """A user with an imported hash (salt + digest, as in RabbitMQ's definitions)."""
        user = cls.__new__(cls)
        user.name, user.tags, user.hashing_algorithm = name, tuple(tags), algorithm
        user.salt, user.password_hash = bytes(rabbit_hash[:SALT_BYTES]), bytes(rabbit_hash[SALT_BYTES:])
        return user

    def set_password(self, password: str | None) -> None:
        """A new password (None: no password at all), hashed with SHA-256 as RabbitMQ does."""
        self.hashing_algorithm = SHA256
        if password is None:
            self.salt, self.password_hash = b"", b""
            return
        self.salt = os.urandom(SALT_BYTES)
        self.password_hash = _hash(password, self.salt)

    @property
    def rabbit_hash(self) -> bytes:
        """salt + digest: RabbitMQ's password_hash before base64."""
        return self.salt + self.password_hash

    @property
    def exported_hash(self) -> str:
        """The `password_hash` field of RabbitMQ's user JSON ("" without a password)."""
        return base64.b64encode(self.rabbit_hash).decode("ascii")

    def check(self, password: str) -> bool:
        if not self.password_hash or self.hashing_algorithm not in HASHING_ALGORITHMS:
            return False
        return hmac.compare_digest(_hash(password, self.salt, self.hashing_algorithm), self.password_hash)


class UserStore:
    """The broker's users. Changes are written to the store attached at start (attach_store),
    so users created before the broker starts are the first start's defaults."""

    def __init__(self, users: dict[str, str] | None = None, loopback_users=("guest",)):
        if users is None:
            users = {"guest": "guest"}
        self.users = {name: User(name, pw) for name, pw in users.items()}
        self.loopback_users = set(loopback_users)
        self.store = None

    def attach_store(self, store) -> None:
        self.store = store

    def add(self, name: str, password: str | None, tags=("administrator",)) -> User:
        """Create or replace a user with a password (None: no password)."""
        return self.put(User(name, password, tags))

    def put(self, user: User) -> User:
        """Create or replace `user`, durably."""
        self.users[user.name] = user
        self.save(user)
        return user

    def save(self, user: User) -> None:
        """Write a changed user to the store."""
        if self.store is not None:
            self.store.save_user(user.name, user.salt, user.password_hash, ",".join(user.tags),
                                 user.hashing_algorithm)

    def delete(self, name: str) -> bool:
        """Forget a user (the store forgets its permissions too); False if there was none."""
        if self.users.pop(name, None) is None:
            return False
        if self.store is not None:
            self.store.delete_user(name)
        return True

    def load(self, rows) -> None:
        """Replace the users with stored ones: (name, salt, password_hash, tags,
        hashing_algorithm) rows."""
        self.users = {}
        for name, salt, password_hash, tags, algorithm in rows:
            user = User.from_hash(name, b"", algorithm, (t for t in tags.split(",") if t))
            user.salt, user.password_hash = bytes(salt), bytes(password_hash)  # exactly as stored
            self.users[name] = user

    def authenticate(self, mechanism: str, response, peer_host: str | None) -> User:
        username, password = parse_response(mechanism, response)
        user = self.users.get(username)
        if user is None or not user.check(password):
            raise AuthError(f"user '{username}' - invalid credentials")
        return self._from_loopback(user, peer_host)

    def authenticate_external(self, peer_cert_cn: str | None, peer_host: str | None) -> User:
        """EXTERNAL: the user the verified client certificate's CN names. The certificate is
        the credential, so no password is checked (a user without one may log in), but the
        user must exist, and loopback-only users stay loopback-only (as in RabbitMQ, whose
        reader checks loopback_users whatever the mechanism)."""
        if peer_cert_cn is None:
            raise AuthError("EXTERNAL login without a verified client certificate")
        user = self.users.get(peer_cert_cn)
        if user is None:
            raise AuthError(f"user '{peer_cert_cn}' (client certificate CN) - no such user")
        return self._from_loopback(user, peer_host)

    def _from_loopback(self, user: User, peer_host: str | None) -> User:
        if user.name in self.loopback_users and not is_loopback(peer_host):
            raise AuthError(f"user '{user.name}' can only connect via localhost")
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
