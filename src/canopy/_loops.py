"""The event loops Canopy makes itself: uvloop's when it is installed, asyncio's otherwise.

Canopy never chooses the loop an application runs: a coroutine awaiting a proxy
runs on whatever loop its caller made. Where Canopy makes a loop of its own
(``canopy.run``, ``canopy serve``, an asyncio child zone's process, and the
private loop that runs an ``async def`` implementation for a blocking zone),
it takes uvloop's when ``import uvloop`` works, because uvloop moves the same
bytes with about half the event-loop overhead. uvloop is never required, and
``CANOPY_UVLOOP=0`` in the environment keeps asyncio's own loop (to compare the
two, or to rule uvloop out when chasing a problem).
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory() -> LoopFactory | None:
    """uvloop's ``new_event_loop`` when it is installed and not turned off, else None
    (which ``asyncio.Runner`` reads as "asyncio's own loop")."""
    if os.environ.get("CANOPY_UVLOOP", "1").strip() == "0":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def new_runner() -> asyncio.Runner:
    """An ``asyncio.Runner`` on the loop ``loop_factory`` picks."""
    return asyncio.Runner(loop_factory=loop_factory())


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new event loop, uvloop's when installed, and close
    the loop; ``asyncio.run`` otherwise. Like ``asyncio.run``, it cannot be called from
    a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        main.close()  # never awaited, and never to be: no "was never awaited" warning
        raise RuntimeError("canopy.run() cannot be called from a running event loop")
    with new_runner() as runner:
        return runner.run(main)


def loop_name(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """Which kind of loop ``loop`` (or the running one) is: "uvloop" or "asyncio"."""
    if loop is None:
        loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
