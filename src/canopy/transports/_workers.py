"""The threads a blocking link runs calls and posts on: one more is made whenever every
one is busy (up to a limit), and a thread idle for a while ends.

Not ``concurrent.futures``: its threads never end until shutdown, and a thread
here must close the event loop it may have made for ``async def``
implementations before it ends.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from canopy.runtime._modes import close_thread_loop

log = logging.getLogger("canopy.transports")

IDLE_SECONDS = 30.0


class Workers:
    """A pool of threads made on demand; ``submit`` never waits for a thread to free up
    while fewer than ``limit`` exist, so a call blocked on a nested call cannot starve
    the callback that call is waiting for."""

    def __init__(self, name: str, limit: int, idle: float = IDLE_SECONDS) -> None:
        self._name = name
        self._limit = limit
        self._idle_seconds = idle
        self._tasks: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0  # threads waiting for a task that no submit has claimed yet
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on a pool thread; ``RuntimeError`` once the pool is closed."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is closed")
            start = False
            if self._idle:
                self._idle -= 1  # that waiting thread takes this task
            elif self._threads < self._limit:
                self._threads += 1
                start = True
            self._tasks.put((fn, args))
        if start:
            threading.Thread(target=self._work, name=self._name, daemon=True).start()

    def close(self) -> None:
        """Let each thread finish what it runs, then end; idempotent, never waits."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = self._threads
        for _ in range(threads):
            self._tasks.put(None)

    def _work(self) -> None:
        try:
            while True:
                try:
                    task = self._tasks.get(timeout=self._idle_seconds)
                except queue.Empty:
                    with self._lock:
                        if not self._idle:
                            continue  # a submit counted on this thread: its task is coming
                        self._idle -= 1
                        self._threads -= 1
                        return
                if task is None:
                    return
                fn, args = task
                del task
                try:
                    fn(*args)
                except Exception:
                    log.exception("%s: a task failed", self._name)
                del fn, args  # hold nothing of a finished call while idle
                with self._lock:
                    self._idle += 1
        finally:
            close_thread_loop()
