"""Watching for an object's end: ``on_gone`` tells the application, once, that the object
behind a reference was destroyed or can no longer be reached.

A zone marks a remote object gone when its owner says it died (the notice an
optimistic holder gets) or when the link its reference came by fails, and then
hands each ``Watch`` to its watcher's context: the event loop it subscribed on
(asyncio), or the process's one notice thread (blocking). That is never inside a
zone's lock, a destructor or a link's read, so a callback may make calls, even
blocking ones, and a call through the gone reference raises ``ObjectGone``. Nothing
here is on the call path: a zone looks at its watches only when an object ends.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, cast

from canopy.runtime._modes import _awaitable, _run_coroutine
from canopy.runtime._proxy import LocalOptimistic, Proxy

log = logging.getLogger("canopy.runtime")
P = TypeVar("P")

_PENDING, _FIRED, _CANCELLED = range(3)


class Watch:
    """One ``on_gone`` subscription. It holds its reference weakly: it ends with it."""

    __slots__ = ("__weakref__", "_anchor", "callback", "loop", "ref", "state")

    def __init__(
        self, ref: Any, callback: Callable[[Any], object], loop: asyncio.AbstractEventLoop | None
    ) -> None:
        self.ref = weakref.ref(ref)
        self.callback = callback
        self.loop = loop  # None: the notice thread runs it
        self.state = _PENDING
        self._anchor: weakref.ref[Any] | None = None  # a local object's death calls fire

    def fire(self) -> None:
        """Schedule the callback (once). Any thread, possibly under a zone's lock: this
        runs nothing of the application's."""
        if self.state != _PENDING:
            return
        self.state = _FIRED
        if self.loop is None:
            NOTICES.put(self._run)
            return
        try:
            self.loop.call_soon_threadsafe(self._run)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            log.debug("on_gone: the loop of %r is closed; its callback is dropped", self)

    def cancel(self) -> None:
        self.state = _CANCELLED

    def _run(self) -> None:
        if self.state == _CANCELLED:
            return
        ref = self.ref()
        if ref is None or getattr(ref, "_canopy_closed", False):
            return  # given up meanwhile: nobody is interested any more
        try:
            result = self.callback(ref)
            if _awaitable(result):
                if self.loop is None:
                    _run_coroutine(result)
                else:
                    _keep(self.loop.create_task(_logged(self.callback, result)))
        except Exception:
            log.exception("canopy.on_gone: callback %r failed", self.callback)


async def _logged(callback: object, awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("canopy.on_gone: callback %r failed", callback)


_tasks: set[asyncio.Task[None]] = set()


def _keep(task: asyncio.Task[None]) -> None:
    """Hold a callback's task until it ends (the loop holds tasks only weakly)."""
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


class _Notices:
    """The thread that runs blocking zones' ``on_gone`` callbacks, one at a time, in the
    order their notices came; started with the first."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = False

    def put(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)
        if not self._started:
            with self._lock:
                if not self._started:
                    self._started = True
                    threading.Thread(target=self._run, name="canopy-on-gone", daemon=True).start()

    def _run(self) -> None:
        while True:
            fn = self._queue.get()
            fn()  # Watch._run logs what a callback raises
            del fn  # hold nothing of a finished callback while idle


NOTICES = _Notices()


def on_gone(ref: P, callback: Callable[[P], object]) -> Callable[[], None]:
    """Call ``callback(ref)`` once, when the object behind ``ref`` (a shared or an
    optimistic reference) is destroyed or can no longer be reached; returns a function
    that cancels it.

    An asyncio zone's callback runs on the event loop ``on_gone`` was called on, a
    blocking zone's on Canopy's notice thread (one per process, callbacks in order),
    never inside a call; ``async def`` callbacks are awaited. If the object is gone
    already, the callback is scheduled at once. The watch holds ``ref`` weakly: it
    ends, uncalled, when ``ref`` is collected or closed (the callback is handed
    ``ref``, so it need not hold it: one that holds a shared proxy keeps its object
    alive). A blocking zone linked to a peer by a stream learns of the end when it
    next reads from that link.
    """
    if isinstance(ref, Proxy):
        zone: Any = ref._canopy_zone
    elif isinstance(ref, LocalOptimistic):
        zone = ref._canopy_zone
    else:
        raise TypeError(
            f"{ref!r} is not a Canopy reference: an object of this zone lives as long as "
            "it is held, and only proxies and optimistic references can end under you"
        )
    loop = None
    if zone.mode.name == "asyncio":
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "canopy.on_gone: call it on the event loop of the proxy's zone, where its "
                "callback will run"
            ) from None
    watch = Watch(ref, callback, loop)
    if isinstance(ref, LocalOptimistic):
        return _watch_local(ref, watch)
    remote = cast(Proxy, ref)._canopy_remote
    with zone._lock:
        if remote.gone:
            watch.fire()
        else:
            live = [w for w in remote.watches or () if w.state == _PENDING and w.ref()]
            remote.watches = live
            remote.watches.append(watch)

    def cancel() -> None:
        watch.cancel()
        with zone._lock:
            if remote.watches and watch in remote.watches:
                remote.watches.remove(watch)

    return cancel


def _watch_local(ref: LocalOptimistic, watch: Watch) -> Callable[[], None]:
    """A weak stand-in's object ends when Python collects it."""
    target = ref._canopy_weak()
    if target is None:
        watch.fire()
        return watch.cancel
    weak_watch = weakref.ref(watch)

    def died(_: object) -> None:
        found = weak_watch()
        if found is not None:
            found.fire()

    # The stand-in holds its watches, each watch the weak reference that calls it
    # back: all three end together.
    watch._anchor = weakref.ref(target, died)
    watches: list[Watch] = ref.__dict__.setdefault("_canopy_watches", [])
    watches[:] = [w for w in watches if w.state == _PENDING]
    watches.append(watch)
    return watch.cancel
