"""Proxies: local stand-ins for objects of other zones.

A proxy class is made once per (interface class, mode): a subclass of the
generated interface whose methods send calls, so ``isinstance(proxy,
i_calculator)`` holds and a blocking proxy type-checks as the interface
itself. A proxy owns nothing but its place in the zone's tables; when the last
Python reference to it goes, its destructor hands the zone its release.

An optimistic reference that comes home to the zone owning its object is no proxy
but a ``LocalOptimistic``: it calls the object directly and holds it only weakly,
as an optimistic proxy does from another zone.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from canopy.errors import ObjectGone
from canopy.generated import Interface
from canopy.runtime._plans import MethodPlan, interface_of, plan
from canopy.runtime._tables import OPTIMISTIC, RemoteObject
from canopy.runtime._zone import Service, _reachable


class Proxy:
    """Mixin of every proxy class; the attributes are prefixed so no IDL name can clash."""

    _canopy_zone: Service
    _canopy_remote: RemoteObject
    _canopy_kind: int
    _canopy_interface: int
    _canopy_closed: bool

    def __repr__(self) -> str:
        r = self._canopy_remote
        kind = "optimistic" if self._canopy_kind else "shared"
        return (
            f"<{type(self).__qualname__} {kind} proxy of object {r.object_id} in zone {r.zone:#x}>"
        )

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        close(self)

    def __del__(self) -> None:
        try:
            if not self._canopy_closed:
                self._canopy_zone.proxy_died(self._canopy_remote, self._canopy_kind)
        except AttributeError:  # a proxy that never finished construction
            pass


def close(proxy: Any) -> None:
    """Give up this proxy's reference now rather than when Python collects it."""
    if not isinstance(proxy, Proxy):
        raise TypeError(f"{proxy!r} is not a Canopy proxy")
    if proxy._canopy_closed:
        return
    proxy._canopy_closed = True
    proxy._canopy_zone.proxy_died(proxy._canopy_remote, proxy._canopy_kind)


async def adrain(proxy: Any) -> None:
    """Wait until the link that ``proxy``'s calls and posts take has written what it
    holds down to ``POST_HIGH_WATER`` (64 KiB), as ``asyncio.StreamWriter.drain`` does.

    An asyncio ``[post]`` never waits: a poster faster than its peer reads piles its
    frames up in its link, which is closed past ``max_pending_write_bytes``. Awaiting
    this every few posts keeps the poster at the peer's pace instead. It returns at
    once over an in-process link and for an object of this zone; a closed proxy or an
    object whose link is gone raises what a call would.
    """
    if isinstance(proxy, Interface) and not isinstance(proxy, Proxy):
        return  # the object itself, in this zone: nothing travels
    if not isinstance(proxy, Proxy):
        raise TypeError(f"{proxy!r} is not a Canopy proxy")
    link = _reachable(proxy, "drain").link
    await link.drained()


_classes: dict[tuple[type[Interface], str], type[Any]] = {}


def proxy_class(cls: type[Interface], zone: Service) -> type[Any]:
    key = (cls, zone.mode.name)
    found = _classes.get(key)
    if found is None:
        mode = zone.mode
        found = _classes[key] = _stand_in(cls, Proxy, "proxy", lambda _, p: mode.proxy_method(p))
    return found


def _stand_in(
    cls: type[Interface], base: type[Any], suffix: str, method: Callable[[str, MethodPlan], Any]
) -> type[Any]:
    """``cls`` with ``base`` before it, each of its methods made by ``method(python name,
    plan)``: the proxy classes and the local optimistic stand-ins."""
    methods = {name: method(name, p) for name, p in plan(cls).by_name.items()}
    found: type[Any] = type(f"{cls.__name__}_{suffix}", (base, cls), methods)
    found.__qualname__ = f"{cls.__qualname__}.{suffix}"
    found.__abstractmethods__ = frozenset()
    return found


def new_proxy(zone: Service, remote: RemoteObject, cls: type[Interface], kind: int) -> Any:
    info = interface_of(cls)
    assert info is not None  # noqa: S101 - callers pass generated interfaces
    klass = proxy_class(cls, zone)
    proxy = object.__new__(klass)
    proxy._canopy_zone = zone
    proxy._canopy_remote = remote
    proxy._canopy_kind = kind
    proxy._canopy_interface = info.id
    proxy._canopy_closed = False
    remote.live[kind] += 1
    remote.proxies[(info.id, kind)] = weakref.ref(proxy)
    return proxy


class LocalOptimistic:
    """An optimistic reference to an object of the holder's own zone. A call goes
    straight to the object, as through the object itself, while something else keeps
    it alive; once it has died, a call raises ``ObjectGone``. Passing it on passes an
    optimistic reference to the object, and fails the same way once it has died."""

    _canopy_zone: Service
    _canopy_weak: weakref.ref[Any]
    _canopy_object: int  # the object's id in its zone
    _canopy_kind = OPTIMISTIC

    def __repr__(self) -> str:
        state = "gone" if self._canopy_weak() is None else "live"
        return (
            f"<{type(self).__qualname__} optimistic reference to object {self._canopy_object} "
            f"of zone {self._canopy_zone.id:#x} ({state})>"
        )

    def _canopy_target(self, what: str) -> Any:
        target = self._canopy_weak()
        if target is None:
            raise ObjectGone(
                f"{what} on object {self._canopy_object} of zone {self._canopy_zone.name!r}: "
                "the object no longer exists"
            )
        return target


def _forward(name: str, p: MethodPlan) -> Any:
    qualified = p.qualified_name

    def method(self: LocalOptimistic, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._canopy_target(qualified), name)(*args, **kwargs)

    method.__name__ = name
    return method


_weak_classes: dict[type[Interface], type[Any]] = {}


def local_optimistic(zone: Service, object_id: int, target: Any, cls: type[Interface]) -> Any:
    """A new weak stand-in for ``target``, an object of ``zone``, as interface ``cls``."""
    klass = _weak_classes.get(cls)
    if klass is None:
        klass = _weak_classes[cls] = _stand_in(cls, LocalOptimistic, "optimistic", _forward)
    found = object.__new__(klass)
    found._canopy_zone = zone
    found._canopy_weak = weakref.ref(target)
    found._canopy_object = object_id
    return found
