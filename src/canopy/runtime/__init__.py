"""Zones and objects: services, proxies, stubs, reference counting, both modes.

``Zone`` is the blocking face and ``AsyncZone`` the asyncio one; both are the
same ``Service`` underneath. A zone makes child zones in the same process
(``child``), each behind a local link that marshals through the wire layer.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any, Self, TypeVar

from canopy.generated import Interface
from canopy.runtime._modes import ASYNCIO, BLOCKING, acast, cast
from canopy.runtime._plans import interface_class, interface_of
from canopy.runtime._proxy import Proxy, close
from canopy.runtime._zone import Service
from canopy.wire import Encoding, Limits, ObjectRef

I = TypeVar("I", bound=Interface)  # noqa: E741 - reads as "interface"


class _Zone(Service):
    def _child(
        self,
        child: _Zone,
        factory: Callable[[Any], Interface],
        interface: type[Interface],
        encodings: tuple[Encoding, ...],
    ) -> Any:
        from canopy.transports.local import join

        info = interface_of(interface)
        if info is None:
            raise TypeError(f"{interface!r} is not a generated Canopy interface")
        root = factory(child)
        if not isinstance(root, interface):
            raise TypeError(
                f"the factory of zone {child.name!r} returned {type(root).__qualname__}, "
                f"which does not implement {info.name}"
            )
        near, _ = join(self, child, root, info.id, encodings)
        with self.inside():
            return self.object_for(ObjectRef(child.id, near.root[0], info.id, 0), near, interface)

    def collect(self) -> None:
        """Collect garbage now and send the releases it produced, in this zone and every
        zone of this process linked to it (tests, shutdown)."""
        gc.collect()
        for zone in self._local_zones():
            zone.flush()

    def _local_zones(self) -> list[Service]:
        found: list[Service] = [self]
        for zone in found:
            for link in list(zone.links.values()):
                other = getattr(getattr(link, "other", None), "zone", None)
                if isinstance(other, Service) and other not in found:
                    found.append(other)
        return found

    def close(self) -> None:
        """Close every link; peers see every reference across them released."""
        for link in list(self.links.values()):
            close_link = getattr(link, "close", None)
            if close_link is not None:
                close_link()
        self.links.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Zone(_Zone):
    """A zone whose proxies block: ``proxy.add(1, 2)`` returns the result."""

    def __init__(
        self, name: str = "zone", *, zone_id: int | None = None, limits: Limits | None = None
    ) -> None:
        super().__init__(name, BLOCKING, zone_id=zone_id, limits=limits)

    def child(
        self,
        name: str,
        factory: Callable[[Zone], Interface],
        interface: Callable[..., I],
        *,
        encodings: tuple[Encoding, ...] = (Encoding.BINARY,),
    ) -> I:
        """Create a child zone in this process serving ``factory(child)``; return a proxy.

        Calls to the proxy are marshalled through the wire layer exactly as
        across a network; the child zone lives while references into it do.
        """
        cls = interface_class(interface)
        result: I = self._child(Zone(name, limits=self.limits), factory, cls, encodings)
        return result


class AsyncZone(_Zone):
    """A zone whose proxies are awaited: ``await proxy.add(1, 2)``."""

    def __init__(
        self, name: str = "zone", *, zone_id: int | None = None, limits: Limits | None = None
    ) -> None:
        super().__init__(name, ASYNCIO, zone_id=zone_id, limits=limits)

    async def child(
        self,
        name: str,
        factory: Callable[[AsyncZone], Interface],
        interface: type[Interface],
        *,
        encodings: tuple[Encoding, ...] = (Encoding.BINARY,),
    ) -> Any:
        """Create a child zone in this process serving ``factory(child)``; return a proxy."""
        return self._child(AsyncZone(name, limits=self.limits), factory, interface, encodings)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


__all__ = ["AsyncZone", "Proxy", "Service", "Zone", "acast", "cast", "close"]
