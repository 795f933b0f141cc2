"""The process's one watchdog thread: runs a function at a time, for deadlines that no
blocked thread can wake itself for (a caller blocked reading its socket past its
call's deadline, a link's keepalive).

Scheduling is a dictionary entry under a lock, so a call can afford one for its
deadline; the thread wakes only for the earliest entry, starts on the first
one and ends when nothing has been due for a while.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable

log = logging.getLogger("canopy.transports")

IDLE_SECONDS = 5.0


class Watchdog:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._due: dict[int, tuple[float, Callable[[], None]]] = {}
        self._tokens = itertools.count(1)
        self._next = math.inf  # when the thread wakes next
        self._running = False

    def at(self, when: float, fn: Callable[[], None]) -> int:
        """Run ``fn`` on the watchdog thread at ``time.monotonic()`` ``when``; the token
        cancels it. ``fn`` must be quick and must not raise."""
        with self._cond:
            token = next(self._tokens)
            self._due[token] = (when, fn)
            if when < self._next:
                self._next = when
                if self._running:
                    self._cond.notify()
                else:
                    self._running = True
                    threading.Thread(target=self._run, name="canopy-watchdog", daemon=True).start()
        return token

    def cancel(self, token: int) -> None:
        with self._cond:
            self._due.pop(token, None)

    def _run(self) -> None:
        cond = self._cond
        with cond:
            idle_since = time.monotonic()
            while True:
                now = time.monotonic()
                fire = [t for t, (when, _) in self._due.items() if when <= now]
                calls = [self._due.pop(t)[1] for t in fire]
                self._next = min((when for when, _ in self._due.values()), default=math.inf)
                if calls:
                    cond.release()
                    try:
                        for fn in calls:
                            try:
                                fn()
                            except Exception:
                                log.exception("a watchdog task failed")
                    finally:
                        cond.acquire()
                    idle_since = time.monotonic()
                    continue
                if not self._due:
                    if now - idle_since >= IDLE_SECONDS:
                        self._running = False
                        self._next = math.inf
                        return
                    cond.wait(IDLE_SECONDS)
                    continue
                idle_since = now
                cond.wait(self._next - now)


WATCHDOG = Watchdog()
