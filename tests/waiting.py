"""Waiting, bounded in time, for what another thread or process does."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Whether ``condition()`` came true within ``seconds``, looking every 5 ms. The bound
    only matters when something is wrong: a test asserts what this returns."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
