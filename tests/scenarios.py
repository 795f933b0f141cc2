"""The routing and lifetime scenarios' objects and fixture (SCENARIOS.md, section 0).

The implementations are ``async def`` and run unchanged in both modes. The
fixture, ``Tree``, hides the mode the way the behaviour suite's harness does:
``t.do(proxy.method, args)`` returns the result whether proxies block or must be
awaited. ``Tree.close`` drops everything and returns what any zone still
holds: end condition C0 is that it returns ``{}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import canopy
from canopy.runtime import AsyncZone, Zone, acast, cast
from canopy.runtime._zone import Service

s: Any = canopy.load_idl(Path(__file__).with_name("scenarios.idl")).scenarios

MODES = ("blocking", "asyncio")
BIG = bytes(range(256)) * 391  # 100,096 bytes: an echo large enough to need a big frame
_names = itertools.count(1)


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _cast(zone: Service, proxy: Any, cls: Any) -> Any:
    if zone.mode.name == "asyncio":
        return await acast(proxy, cls)
    return cast(proxy, cls)


def call_in(loop: asyncio.AbstractEventLoop | None, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``'s result in either mode: called on ``loop`` and awaited (asyncio), or
    called here (blocking), a coroutine it returns (an implementation of this zone's)
    run to completion."""
    if loop is not None:  # called on the running loop, as an application would

        async def call() -> Any:
            return await _maybe(fn(*args))

        return loop.run_until_complete(call())
    result = fn(*args)
    return asyncio.run(_maybe(result)) if inspect.isawaitable(result) else result


async def drain_tasks() -> None:
    """End every other task of the running loop (the links' consumers, which wait for
    messages as long as their links live), and wait until they have."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


class Baz(s.i_baz, s.i_bar):  # type: ignore[misc]
    async def callback(self, value: int) -> None:
        pass

    async def blob_test(self, data: bytes) -> bytes:
        return data

    async def do_something_else(self, value: int) -> None:
        pass


class Foo(s.i_foo):  # type: ignore[misc]
    def __init__(self, zone: Service) -> None:
        self.zone = zone
        self.messages: list[int] = []

    async def create_baz_interface(self) -> Any:
        return Baz()

    async def call_baz_interface(self, baz: Any) -> None:
        if baz is None:
            return
        await baz.callback(22)
        await _cast(self.zone, baz, s.i_baz)
        await _cast(self.zone, baz, s.i_bar)
        small = b"\x01\x02\x03\x04"
        assert await baz.blob_test(small) == small
        assert await baz.blob_test(BIG) == BIG

    async def do_something_in_val(self, value: int) -> None:
        pass

    async def record_message(self, message_id: int) -> None:
        self.messages.append(message_id)

    async def get_recorded_messages(self) -> list[int]:
        return list(self.messages)

    async def clear_recorded_messages(self) -> None:
        self.messages.clear()


class Host(s.i_host):  # type: ignore[misc]
    def __init__(self) -> None:
        self.apps: dict[str, Any] = {}

    async def set_app(self, name: str, app: Any) -> None:
        self.apps[name] = app

    async def look_up_app(self, name: str) -> Any:
        return self.apps.get(name)

    async def unload_app(self, name: str) -> None:
        self.apps.pop(name, None)


class Example(s.i_example):  # type: ignore[misc]
    def __init__(self, zone: Service) -> None:
        self.zone = zone
        self.host: Any = None
        self.cached: Any = None
        self.optimistic: Any = None

    async def add(self, a: int, b: int) -> int:
        return a + b

    async def create_foo(self) -> Any:
        return Foo(self.zone)

    async def create_baz(self) -> Any:
        return Baz()

    async def create_example_in_subordinate_zone(self, host: Any) -> Any:
        name = f"{self.zone.name}.{next(_names)}"
        child = await _maybe(self.zone.child(name, Example, s.i_example))  # type: ignore[attr-defined]
        if host is not None:
            await child.set_host(host)
        return child

    async def create_example_in_subordinate_zone_and_set_in_host(
        self, name: str, host: Any
    ) -> None:
        child = await self.create_example_in_subordinate_zone(host)
        await host.set_app(name, child)

    async def send_interface_back(self, value: Any) -> Any:
        return value

    async def give_interface(self, baz: Any) -> None:
        await baz.callback(22)
        with contextlib.suppress(canopy.InvalidCast):  # the answer is not checked
            await _cast(self.zone, baz, s.i_bar)

    async def receive_interface(self) -> Any:
        return Foo(self.zone)

    async def set_host(self, host: Any) -> None:
        self.host = host

    async def get_host(self) -> Any:
        return self.host

    async def call_host_look_up_app_not_return(self, name: str) -> None:
        found = await self.host.look_up_app(name)
        del found

    async def _fork(self, factory: Any, ids: list[int]) -> Any:
        current = factory
        for _ in ids:
            current = await current.create_example_in_subordinate_zone(self.host)
        return current

    async def create_fork_and_return_object(self, factory: Any, ids: list[int]) -> Any:
        return await self._fork(factory, ids)

    async def create_y_topology_fork(self, factory: Any, ids: list[int]) -> None:
        self.cached = await self._fork(factory, ids)

    async def retrieve_cached_autonomous_object(self) -> Any:
        return self.cached

    async def give_host_cached_object(self) -> None:
        await self.host.set_app("foo", self.cached)

    async def set_optimistic_ptr(self, foo: Any) -> None:
        self.optimistic = foo

    async def get_optimistic_ptr(self) -> Any:
        return self.optimistic

    async def get_optimistic_baz(self, baz: Any) -> Any:
        return baz


class Tree:
    """The standard fixture: root zone R with the host H, and R's child zone E whose
    example ``e`` holds H. ``new_zone`` makes R's "new zone" directly or two levels
    down (R creates M, M's example creates N, then M is forgotten but must route)."""

    def __init__(self, mode: str, two_level: bool = False) -> None:
        self.mode = mode
        self.two_level = two_level
        self.loop = asyncio.new_event_loop() if mode == "asyncio" else None
        self.root: Any = Zone("R") if mode == "blocking" else AsyncZone("R")
        self.host: Any = Host()
        self.e: Any = self.do(self.root.child, "E", Example, s.i_example)
        self.do(self.e.set_host, self.host)

    def do(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``'s result: awaited in asyncio mode, and for R's own objects (the
        host), whose methods are coroutines, in blocking mode too."""
        return call_in(self.loop, fn, *args)

    def new_zone(self) -> Any:
        """R's new zone's example, given H."""
        if not self.two_level:
            example = self.do(self.root.child, f"N{next(_names)}", Example, s.i_example)
            self.do(example.set_host, self.host)
            return example
        middle = self.do(self.root.child, f"M{next(_names)}", Example, s.i_example)
        self.do(middle.set_host, self.host)
        example = self.do(middle.create_example_in_subordinate_zone, self.host)
        self.do(middle.set_host, None)
        del middle
        self.settle()
        return example

    def chain(self, start: Any, depth: int) -> list[Any]:
        """``depth`` zones, each made by the one before (``start`` making the first)."""
        made = []
        current = start
        for _ in range(depth):
            current = self.do(current.create_example_in_subordinate_zone, self.host)
            made.append(current)
        return made

    def zones(self) -> list[Service]:
        return self.root._local_zones()  # type: ignore[no-any-return]

    def settle(self) -> None:
        for _ in range(3):
            if self.loop is not None:
                for _ in range(20):
                    self.loop.run_until_complete(asyncio.sleep(0))
            gc.collect()
            for zone in self.zones():
                zone.flush()

    def held(self) -> dict[str, Any]:
        """What each zone still exports, imports or lends (the loans' tally included)."""
        return {
            z.name: (z.exported(), z.imported(), z._loans)
            for z in self.zones()
            if z.exported() or z.imported() or z._loans
        }

    def close(self) -> dict[str, Any]:
        """Drop the host and ``e``, let everything drain; what any zone still holds."""
        self.e = None
        self.host = None
        self.settle()
        left = self.held()
        self.root.close()
        if self.loop is not None:  # the links' consumer tasks were cancelled: let them end
            self.loop.run_until_complete(drain_tasks())
            self.loop.close()
        return left


class World:
    """A root zone R with a host, a child zone E (in process, or a peer over TCP) and E's
    child Z: R -> E -> Z, both modes."""

    def __init__(self, mode: str, transport: str) -> None:
        self.loop = asyncio.new_event_loop() if mode == "asyncio" else None
        zone_class: Any = canopy.Zone if mode == "blocking" else canopy.AsyncZone
        self.root = zone_class("R")
        self.peer = None
        if transport == "local":
            self.e = self.do(self.root.child, "E", Example, s.i_example)
        else:
            self.peer = zone_class("E")
            server = self.do(self.peer.serve, "tcp://127.0.0.1:0", Example, s.i_example)
            self.e = self.do(self.root.connect, server.url, s.i_example)
        self.host = Host()
        self.do(self.e.set_host, self.host)

    def do(self, fn: Callable[..., Any], *args: Any) -> Any:
        return call_in(self.loop, fn, *args)

    def close(self) -> None:
        self.e = self.host = None
        for zone in (self.root, self.peer):
            if zone is None:
                continue
            if self.loop is not None:
                self.loop.run_until_complete(zone.aclose())
            else:
                zone.close()
        if self.loop is not None:
            self.loop.run_until_complete(drain_tasks())
            self.loop.close()
