"""Permissions: per (vhost, user), the configure/write/read regular expressions RabbitMQ keeps
(rabbit_auth_backend_internal's user_permission), stored durably.

This module only keeps and serves them (`broker.permissions`); whether an operation is
allowed is decided by amqp_broker/access.py, called where the operation runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

FULL = ".*"  # what the default user gets on the default vhost


@dataclass(frozen=True)
class Permission:
    user: str
    vhost: str
    configure: str
    write: str
    read: str

    def as_json(self) -> dict:
        return {"user": self.user, "vhost": self.vhost, "configure": self.configure,
                "write": self.write, "read": self.read}


class InvalidRegex(ValueError):
    """A permission pattern that does not compile; `pattern` and `message` say which and why
    (RabbitMQ's reason is {invalid_regexp, Pattern, {Message, Offset}})."""

    def __init__(self, pattern: str, message: str, offset: int):
        super().__init__(f"invalid regular expression {pattern!r}: {message}")
        self.pattern = pattern
        self.message = message
        self.offset = offset


# Python's texts for the common mistakes -> PCRE's (Erlang's re), with where PCRE reports them
# (True: at the end of the pattern); other errors keep Python's text and position.
_PCRE_ERRORS = {
    "missing ), unterminated subpattern": ("missing )", True),
    "unterminated character set": ("missing terminating ] for character class", True),
    "unbalanced parenthesis": ("unmatched parentheses", False),
    "nothing to repeat": ("nothing to repeat", False),
}


def check_regex(pattern: str) -> None:
    """InvalidRegex unless `pattern` compiles."""
    try:
        re.compile(pattern)
    except re.error as exc:
        pos = exc.pos if exc.pos is not None else len(pattern)
        message, at_end = _PCRE_ERRORS.get(exc.msg, (exc.msg, False))
        raise InvalidRegex(pattern, message, len(pattern) if at_end else pos) from None


class Permissions:
    """Every (vhost, user) permission; changes are written to the store attached at start."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], Permission] = {}
        self.store = None

    def attach_store(self, store) -> None:
        self.store = store

    def load(self, rows) -> None:
        """Stored permissions at start: (user, vhost, configure, write, read) rows."""
        self._by_key = {(vhost, user): Permission(user, vhost, c, w, r) for user, vhost, c, w, r in rows}

    def set(self, user: str, vhost: str, configure: str, write: str, read: str) -> Permission:
        """Grant (or replace) a user's permissions on a vhost; InvalidRegex if a pattern does
        not compile (nothing changes then)."""
        for pattern in (configure, write, read):
            check_regex(pattern)
        perm = Permission(user, vhost, configure, write, read)
        self._by_key[(vhost, user)] = perm
        if self.store is not None:
            self.store.save_permission(user, vhost, configure, write, read)
        return perm

    def get(self, vhost: str, user: str) -> Permission | None:
        return self._by_key.get((vhost, user))

    def delete(self, vhost: str, user: str) -> bool:
        if self._by_key.pop((vhost, user), None) is None:
            return False
        if self.store is not None:
            self.store.delete_permission(user, vhost)
        return True

    def list(self, vhost: str | None = None, user: str | None = None) -> list[Permission]:
        """Sorted by vhost, then user; only those of `vhost` and/or `user` when given."""
        return [self._by_key[key] for key in sorted(self._by_key)
                if (vhost is None or key[0] == vhost) and (user is None or key[1] == user)]

    def forget_user(self, user: str) -> None:
        """The user is gone (the store already dropped its rows with the user)."""
        for key in [k for k in self._by_key if k[1] == user]:
            del self._by_key[key]

    def forget_vhost(self, vhost: str) -> None:
        """The vhost is gone (the store already dropped its rows with the vhost)."""
        for key in [k for k in self._by_key if k[0] == vhost]:
            del self._by_key[key]
