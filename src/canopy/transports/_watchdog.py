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


STALL_AFTER = 0.002
"""Seconds a reader may run a call itself before another thread takes over reading."""
AWAKE_SECONDS = 1.0


class Stalls:
    """Watches readers that run what they read themselves, and tells one that has been
    at it for ``after`` seconds, so that someone else reads its link meanwhile.

    A reader that ran each call on another thread would add a thread hand-over to
    every round trip; one that runs it itself leaves nobody reading until it is done,
    which is fine for a quick call and a stall for a slow or blocked one. Marking a
    run costs a dictionary entry; the thread polls only while runs are marked (and
    a second after), and sleeps on its condition otherwise.
    """

    def __init__(self, after: float = STALL_AFTER) -> None:
        self._after = after
        self._cond = threading.Condition(threading.Lock())
        self._runs: dict[int, tuple[float, Callable[[], None]]] = {}
        self._tokens = itertools.count(1)
        self._awake = False
        self._started = False

    def begin(self, on_stall: Callable[[], None]) -> int:
        """A run starts; ``on_stall()`` if it is still going on later. The token ends it."""
        token = next(self._tokens)
        self._runs[token] = (time.monotonic(), on_stall)
        if not self._awake:
            with self._cond:
                if not self._awake:
                    self._awake = True
                    if self._started:
                        self._cond.notify()
                    else:
                        self._started = True
                        threading.Thread(
                            target=self._run, name="canopy-stalls", daemon=True
                        ).start()
        return token

    def end(self, token: int) -> None:
        self._runs.pop(token, None)

    def _run(self) -> None:
        quiet_since = time.monotonic()
        while True:
            time.sleep(self._after)
            now = time.monotonic()
            if self._runs:
                quiet_since = now
            for token, (since, on_stall) in list(self._runs.items()):
                # Told once per run; a run that has just ended is not told at all.
                if now - since >= self._after and self._runs.pop(token, None) is not None:
                    try:
                        on_stall()
                    except Exception:
                        log.exception("a stalled reader could not be relieved")
            if now - quiet_since < AWAKE_SECONDS:
                continue
            with self._cond:
                # A run marked before ``_awake`` turned false saw the thread awake and did
                # not wake it: it is in ``_runs``. Every wait turns it false again, as
                # the run that woke this thread may have ended already.
                while not self._runs:
                    self._awake = False
                    self._cond.wait()
                self._awake = True
            quiet_since = time.monotonic()


STALLS = Stalls()
