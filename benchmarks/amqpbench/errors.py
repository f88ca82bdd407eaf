"""Benchmark errors."""
from __future__ import annotations


class BenchError(Exception):
    """The benchmark could not complete (timeout, stall, protocol error...)."""


class BrokerClosed(BenchError):
    """The broker closed the connection or a channel (reply code/text included)."""


def _describe_close(what: str, m) -> str:
    return (f"broker closed the {what}: {m.reply_code} {m.reply_text} "
            f"(caused by class {m.class_id} method {m.method_id})")
