"""A plugin for the plugin tests: module state that must start afresh on every load."""

from __future__ import annotations

from typing import Any

from behaviour import TestService, b

loads = 0
calls = 0
loads += 1


class Counting(TestService):
    def __init__(self, host: Any) -> None:
        super().__init__()
        self.host = host

    def add(self, a: int, b_: int) -> int:  # type: ignore[override]
        global calls
        calls += 1
        return calls * 1000 + loads

    async def widget_name(self, widget: Any) -> str:
        # The host's object, reached through a proxy, as across a process boundary.
        name = await self.host.name() if widget is None and self.host is not None else None
        return name if name is not None else await super().widget_name(widget)


def plugin(zone: Any, host: Any) -> Counting:
    return Counting(host)


__all__ = ["b"]
