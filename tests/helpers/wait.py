"""Waiting for a condition: tests poll for what they expect instead of sleeping a fixed time,
so a fast broker makes a fast test and a slow machine only makes it slower, never flaky."""
from __future__ import annotations

import time
from typing import Any, Callable

# How long a wait for something that must happen goes on before the test fails: a hang guard,
# never a claim about speed (CI is a shared, noisy 2-core machine running tests in parallel).
# A wait returns as soon as its condition holds, so a generous guard costs nothing.
HANG_GUARD = 15.0


def wait_until(pred: Callable[[], Any], timeout: float = HANG_GUARD, interval: float = 0.02) -> bool:
    """Call `pred` every `interval` seconds until it is true (True) or `timeout` passed (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
