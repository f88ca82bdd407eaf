"""Waiting for a condition: tests poll for what they expect instead of sleeping a fixed time,
so a fast broker makes a fast test and a slow machine only makes it slower, never flaky."""
from __future__ import annotations

import time
from typing import Any, Callable


def wait_until(pred: Callable[[], Any], timeout: float = 2.0, interval: float = 0.02) -> bool:
    """Call `pred` every `interval` seconds until it is true (True) or `timeout` passed (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
