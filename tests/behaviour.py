"""The behaviour suite's contract, implementations and harness, shared by every transport.

``Harness`` hides the mode: ``h.do(proxy.add, 1, 2)`` calls and returns the
result whether proxies block or must be awaited, so each test is written once.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import canopy
from canopy.runtime import AsyncZone, Zone, acast, cast
from canopy.runtime._zone import Service
from canopy.wire import Limits

b: Any = canopy.load_idl(Path(__file__).with_name("behaviour.idl")).behaviour

MODES = ("blocking", "asyncio")


class Widget(b.i_widget):
    def __init__(self, label: str) -> None:
        self.label = label

    def name(self) -> str:
        return self.label


class Gadget(b.i_widget, b.i_gadget):
    def name(self) -> str:
        return "gadget"

    def serial(self) -> int:
        return 42


class Listener(b.i_listener):
    def __init__(self) -> None:
        self.messages: list[tuple[str, int]] = []
        self.finished: int | None = None

    def notify(self, message: str, seq: int) -> None:
        self.messages.append((message, seq))

    def done(self, count: int) -> None:
        self.finished = count


class TestService(b.i_test):
    """Sync and async methods mixed on purpose: both run in both modes."""

    def __init__(self) -> None:
        self.records: list[str] = []
        self.kept: Any = None
        self.kept_client: Any = None
        self.watched: Any = None
        self.peeked: Any = Widget("peeked")

    def echo(self, value: Any) -> Any:
        return value

    async def add(self, a: int, b: int) -> int:
        return a + b

    def divmod(self, a: int, b: int) -> tuple[int, int]:
        return a // b, a % b

    def swap(self, first: str, second: str) -> tuple[str, str]:
        return second, first

    def checked_divide(self, a: int, d: int) -> int:
        if d == 0:
            raise b.calc_error.DIVIDE_BY_ZERO(f"cannot divide {a} by zero")
        return a // d

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def record(self, value: str, seq: int) -> None:
        self.records.append(f"{seq}:{value}")

    def recorded(self) -> list[str]:
        return list(self.records)

    def make_widget(self, name: str) -> Any:
        return Widget(name)

    def kept_widget(self) -> Any:
        if self.kept is None:
            self.kept = Widget("kept")
        return self.kept

    def make_gadget(self) -> Any:
        return Gadget()

    async def widget_name(self, widget: Any) -> str:
        return "none" if widget is None else await widget.name()

    def keep(self, widget: Any) -> None:
        self.kept_client = widget

    def drop(self) -> None:
        self.kept_client = None
        self.peeked = None

    def watch(self, widget: Any) -> None:
        self.watched = widget

    async def watched_name(self) -> str:
        return str(await self.watched.name())

    def peek(self) -> Any:
        return self.peeked

    def echo_back(self, widget: Any) -> Any:
        return widget

    async def names(self, value: Any) -> list[str]:
        found = [await value.widget.name()] if value.widget is not None else []
        return found + [await w.name() for w in value.spares]

    def give(self, count: int) -> Any:
        return b.holder(
            widget=Widget("given"), spares=[Widget(f"spare{i}") for i in range(count)], count=count
        )

    async def listen(self, listener: Any, count: int) -> None:
        for i in range(count):
            listener.notify(f"m{i}", i)
        await listener.done(count)


class Harness:
    """One mode's zone and a child zone serving ``TestService``, behind ``self.root``."""

    def __init__(self, mode: str, limits: Limits | None = None) -> None:
        self.mode = mode
        self.loop = asyncio.new_event_loop() if mode == "asyncio" else None
        self.zone: Service = (
            Zone("host", limits=limits) if mode == "blocking" else AsyncZone("host", limits=limits)
        )
        self.root: Any = self.do(self.zone.child, "service", lambda z: TestService(), b.i_test)  # type: ignore[attr-defined]

    def do(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` and return its result, awaited in asyncio mode."""
        if self.loop is None:
            return fn(*args, **kwargs)

        async def go() -> Any:
            result = fn(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return self.loop.run_until_complete(go())

    def cast(self, proxy: Any, cls: type[Any]) -> Any:
        return self.do(acast if self.loop else cast, proxy, cls)

    def settle(self) -> None:
        """Let queued posts and releases run (asyncio mode)."""
        if self.loop is not None:
            for _ in range(20):
                self.loop.run_until_complete(asyncio.sleep(0))
        self.zone.collect()  # type: ignore[attr-defined]

    def zones(self) -> list[Service]:
        return self.zone._local_zones()  # type: ignore[attr-defined, no-any-return]

    def close(self) -> dict[str, Any]:
        """Drop the root, let everything settle; what any zone still holds is returned."""
        zones = self.zones()
        self.root = None
        self.settle()
        left = {z.name: (z.exported(), z.imported()) for z in zones if z.exported() or z.imported()}
        self.zone.close()  # type: ignore[attr-defined]
        if self.loop is not None:
            self.loop.run_until_complete(asyncio.sleep(0))  # let cancelled consumers finish
            self.loop.close()
        return left
