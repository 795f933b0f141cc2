"""Telemetry: one observer interface that sees what crosses which boundary.

An ``Observer`` attached with ``attach`` receives an ``Event`` for zones created and
closed, links up and down, proxies and stubs created and destroyed, casts,
add_refs and releases, posts, and calls: a call is an ``Event`` too, and the
observer may return a ``Span`` for it, on the caller's side (``client_call``)
and on the callee's (``server_call``). A client span's ``trace`` travels with
the call, on every transport, and reaches the callee's ``server_call``: that is
how ``canopy.telemetry.otel`` makes a chain of calls across zones, processes and
machines one OpenTelemetry trace, and how ``Recorder`` draws a sequence diagram.

With no observer attached, the cost on the call path is one check per call on
each side (``bench/telemetry_cost.py`` measures it).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from canopy.runtime._zone import Service

__all__ = ["Event", "Observer", "Span", "attach", "attached", "detach", "observing"]


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened in ``zone`` (its id and name), with the zone at the other
    end of it (``peer``) when there is one.

    ``kind`` is one of: ``zone_created``, ``zone_closed``, ``link_up``,
    ``link_down``, ``stub_created``, ``stub_destroyed``, ``proxy_created``,
    ``proxy_released``, ``call``, ``reply``, ``post``, ``cast``, ``add_ref``,
    ``release``. A call's events come in pairs: ``call`` then ``reply`` on the
    caller's side (``side`` "client") and on the callee's ("server"), with the
    same ``call_id`` on each side; ``error`` is the reply's error code (0: none).
    """

    kind: str
    zone: int
    zone_name: str
    peer: int = 0
    object: int = 0
    interface: str = ""
    method: str = ""
    side: str = ""
    call_id: int = 0
    error: int = 0
    detail: str = ""


class Span:
    """What an observer keeps of one call while it runs (an OpenTelemetry span, say)."""

    trace: str = ""
    """The caller's side: the context to send along with the call ("" for none)."""

    def enter(self) -> Any:
        """The callee's side: make the span current while the implementation runs;
        returns what ``leave`` needs."""
        return None

    def leave(self, token: Any) -> None:
        pass

    def end(self, error: BaseException | None = None, code: int = 0) -> None:
        """The call is over; ``error`` (and its code) if it failed."""


class Observer:
    """Sees what happens in the zones it is attached to. Every method does nothing by
    default: override what you need. Methods run on the thread (or event loop) the
    runtime is on and must not block or make calls."""

    def event(self, event: Event) -> None:
        pass

    def client_call(self, event: Event) -> Span | None:
        """A call is about to be sent (``event.kind`` "call", ``side`` "client")."""
        self.event(event)
        return None

    def server_call(self, event: Event, trace: str) -> Span | None:
        """A call is about to run (``side`` "server"); ``trace`` is the caller's."""
        self.event(event)
        return None


_zones: weakref.WeakSet[Service] = weakref.WeakSet()
_lock = threading.Lock()
_default: Observer | None = None


def attach(observer: Observer) -> None:
    """Observe every zone of this process, the ones that exist and the ones to come."""
    global _default
    with _lock:
        _default = observer
        for zone in list(_zones):
            zone.observer = observer


def detach() -> None:
    """Stop observing; the call path goes back to its one check."""
    global _default
    with _lock:
        _default = None
        for zone in list(_zones):
            zone.observer = None


def attached() -> Observer | None:
    return _default


_O = TypeVar("_O", bound="Observer")


@contextmanager
def observing(observer: _O) -> Iterator[_O]:
    """``attach`` for the duration of a block (then the observer attached before, if any)."""
    before = _default
    attach(observer)
    try:
        yield observer
    finally:
        if before is None:
            detach()
        else:
            attach(before)


def register(zone: Service) -> Observer | None:
    """A new zone joins: the observer it starts with (the runtime calls this)."""
    with _lock:
        _zones.add(zone)
        return _default
