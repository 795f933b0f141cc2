"""A zone's object tables: what it exports (stubs) and what it imports (remote objects).

Theory of operation, and the invariants every other module relies on:

- A ``Stub`` is one local object exported to other zones. It counts references
  per holding zone and per kind. While any zone holds a shared reference the
  stub keeps the object alive; with none it holds it only weakly, so an
  optimistic reference never keeps an object alive. The stub ends when the
  object is gone or nobody holds it; optimistic holders are then told.
- A ``RemoteObject`` is one object of another zone as this zone sees it. It
  holds at most one remote reference of each kind, whatever the number of
  local proxies: copies of a proxy send nothing, the first proxy of a kind
  takes the reference and the last one gives it back. Every reference a peer
  sends beyond the one held is returned at once.
- The same (zone, object) always maps to the same ``RemoteObject``, and the same
  (interface, kind) on it to the same live proxy: identity.
- References pass through zones. A zone that hands a remote object on to a
  neighbour other than its owner lends it: ``RemoteObject.lent`` counts, per
  neighbour and kind, the references it passed on, and the zone keeps holding
  its own reference upstream while it has proxies or loans of that kind. Every
  count therefore lives between two neighbours: an owner counts the neighbour
  that holds (or passes on) its object, whoever is further away. Calls,
  releases and casts for the object that arrive from a borrower are forwarded
  over ``RemoteObject.link``, the link the zone's own reference came by, so a
  reference is always given back the way it came.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from canopy.wire import RefKind

SHARED = int(RefKind.SHARED)
OPTIMISTIC = int(RefKind.OPTIMISTIC)


@dataclass(slots=True, eq=False)
class Stub:
    """One exported object: its id, the interfaces it implements, who holds it."""

    object_id: int
    key: int  # id() of the object, its key in Tables.stub_of
    ref: weakref.ref[Any]
    interfaces: frozenset[int]
    strong: Any = None
    holders: dict[int, list[int]] = field(default_factory=dict)  # zone -> [shared, optimistic]

    @property
    def target(self) -> Any:
        return self.strong if self.strong is not None else self.ref()

    def add(self, zone: int, kind: int, count: int = 1) -> None:
        counts = self.holders.setdefault(zone, [0, 0])
        counts[kind] += count
        if kind == SHARED and self.strong is None:
            self.strong = self.ref()

    def remove(self, zone: int, kind: int) -> bool:
        """Drop one reference; False when ``zone`` held none of that kind."""
        counts = self.holders.get(zone)
        if counts is None or counts[kind] <= 0:
            return False
        counts[kind] -= 1
        if counts == [0, 0]:
            del self.holders[zone]
        if self.shared_count() == 0:
            self.strong = None
        return True

    def shared_count(self) -> int:
        return sum(c[SHARED] for c in self.holders.values())

    def held_by(self, zone: int) -> bool:
        return zone in self.holders

    def optimistic_holders(self) -> list[int]:
        return [z for z, c in self.holders.items() if c[OPTIMISTIC] > 0]


@dataclass(slots=True, eq=False)
class RemoteObject:
    """An object of another zone, as this zone holds it."""

    zone: int
    object_id: int
    link: Any  # the link that leads to the owner
    held: list[bool] = field(default_factory=lambda: [False, False])
    live: list[int] = field(default_factory=lambda: [0, 0])  # local proxies per kind
    proxies: dict[tuple[int, int], weakref.ref[Any]] = field(default_factory=dict)
    gone: bool = False
    lent: dict[int, list[int]] = field(default_factory=dict)  # neighbour -> [shared, optimistic]
    pinned: int = 0  # requests for it passed on and not yet answered
    watches: list[Any] | None = None  # on_gone's, told once when it is gone

    def proxy(self, interface: int, kind: int) -> Any:
        ref = self.proxies.get((interface, kind))
        return ref() if ref is not None else None

    def lend(self, zone: int, kind: int) -> None:
        self.lent.setdefault(zone, [0, 0])[kind] += 1

    def unlend(self, zone: int, kind: int) -> bool:
        """Take back one loan to ``zone``; False when it had none of that kind."""
        counts = self.lent.get(zone)
        if counts is None or counts[kind] <= 0:
            return False
        counts[kind] -= 1
        if counts == [0, 0]:
            del self.lent[zone]
        return True

    def in_use(self, kind: int) -> bool:
        """Whether a proxy here or a loan to a neighbour still needs the ``kind`` reference."""
        return self.live[kind] > 0 or self.pinned > 0 or any(c[kind] for c in self.lent.values())

    def unused(self) -> bool:
        return not any(self.live) and not self.lent and not any(self.held) and not self.pinned


class Tables:
    """The two tables of one zone, and the ids it gives its objects."""

    def __init__(self) -> None:
        self.stubs: dict[int, Stub] = {}
        self.stub_of: dict[int, Stub] = {}  # id(object) -> stub, for identity
        self.remotes: dict[tuple[int, int], RemoteObject] = {}
        self.next_object = 1  # the id the next new stub gets

    def export(self, obj: Any, interfaces: frozenset[int], on_gone: Callable[[Stub], None]) -> Stub:
        stub = self.stub_of.get(id(obj))
        if stub is not None and stub.target is obj:
            return stub
        object_id = self.next_object
        self.next_object += 1

        def died(_: weakref.ref[Any]) -> None:
            on_gone(stub_ref)

        stub_ref = Stub(object_id, id(obj), weakref.ref(obj, died), interfaces)
        self.stubs[object_id] = stub_ref
        self.stub_of[id(obj)] = stub_ref
        return stub_ref

    def forget(self, stub: Stub) -> None:
        if self.stubs.get(stub.object_id) is stub:
            del self.stubs[stub.object_id]
        if self.stub_of.get(stub.key) is stub:
            del self.stub_of[stub.key]

    def remote(self, zone: int, object_id: int, link: Any) -> RemoteObject:
        key = (zone, object_id)
        found = self.remotes.get(key)
        if found is None or found.gone:
            found = RemoteObject(zone, object_id, link)
            self.remotes[key] = found
        return found
