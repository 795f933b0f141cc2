"""Trees that mix the ways one zone makes the next: an in-process child zone
(``local``), a child process (``process``) or a peer zone of this process served and
reached over TCP on loopback (``tcp``).

A ``Grower`` is the scenarios' example object with a *plan*: how each zone below
it is made, one word per level (past its end: ``local``). ``MixedTree`` is the
scenarios' fixture with E made by the plan's first word, so the scenarios of
SCENARIOS.md run unchanged over ``R --tcp-- E --local-- Z2 --process-- Z3`` and the
like. A child process learns the rest of its plan from ``CANOPY_TEST_PLAN``.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import canopy
from canopy.runtime import AsyncZone, Zone
from canopy.runtime._zone import Service
from scenarios import Example, Host, Tree, _maybe, drain_tasks, s

PLAN_ENV = "CANOPY_TEST_PLAN"
TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
HOWS = ("local", "process", "tcp")
PEERS: list[Any] = []
"""The peer zones this process made for ``tcp`` levels, for the fixture to look into and close."""
_names = itertools.count(1)
CALL_TIMEOUT = 10.0


def child_env(plan: Sequence[str]) -> dict[str, str]:
    path = os.pathsep.join([str(TESTS), str(SRC), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, PLAN_ENV: ",".join(plan)}


async def make_zone(zone: Any, plan: Sequence[str], name: str) -> Any:
    """A new zone made from ``zone`` the way ``plan[0]`` says, serving a ``Grower`` with
    the rest of the plan; its example's proxy in ``zone``."""
    how, rest = (plan[0], tuple(plan[1:])) if plan else ("local", ())
    if how == "local":
        return await _maybe(zone.child(name, lambda z: Grower(z, rest), s.i_example))
    if how == "process":
        target = "mixed:from_environment"
        return await _maybe(zone.spawn(name, target, s.i_example, env=child_env(rest)))
    if how == "tcp":
        peer = type(zone)(name)
        PEERS.append(peer)
        server = await _maybe(
            peer.serve("tcp://127.0.0.1:0", lambda z: Grower(z, rest), s.i_example)
        )
        return await _maybe(zone.connect(server.url, s.i_example, timeout=5.0))
    raise ValueError(f"no way to make a zone called {how!r}: one of {HOWS}")


class Grower(Example):
    def __init__(self, zone: Service, plan: Sequence[str] = ()) -> None:
        super().__init__(zone)
        self.plan = tuple(plan)
        self.call_timeout = CALL_TIMEOUT
        self.patience = 5.0  # seconds the end waits for releases and child processes

    async def create_example_in_subordinate_zone(self, host: Any) -> Any:
        child = await make_zone(self.zone, self.plan, f"{self.zone.name}.{next(_names)}")
        if host is not None:
            await child.set_host(host)
        return child


def from_environment(zone: Service) -> Grower:
    """A child process's root: a ``Grower`` with the plan its parent passed down."""
    plan = os.environ.get(PLAN_ENV, "")
    return Grower(zone, [how for how in plan.split(",") if how])


class MixedTree(Tree):
    """The scenarios' fixture with E, and every zone below it, made by ``plan``."""

    def __init__(self, mode: str, plan: Sequence[str]) -> None:
        self.mode = mode
        self.plan = tuple(plan)
        self.call_timeout = CALL_TIMEOUT
        self.patience = 5.0  # seconds the end waits for releases and child processes
        self.two_level = False
        self.loop = asyncio.new_event_loop() if mode == "asyncio" else None
        self.root: Any = Zone("R") if mode == "blocking" else AsyncZone("R")
        PEERS.clear()
        self.host: Any = Host()
        self.e: Any = self.do(make_zone, self.root, tuple(plan), "E")
        self.do(self.e.set_host, self.host)

    def do(self, fn: Any, *args: Any) -> Any:
        """As ``Tree.do``, every call bounded: a hung route fails in ``CALL_TIMEOUT`` s."""
        with canopy.call_timeout(self.call_timeout):
            return super().do(fn, *args)

    def zones(self) -> list[Service]:
        found: list[Service] = []
        for top in [self.root, *PEERS]:
            for zone in top._local_zones():
                if zone not in found:
                    found.append(zone)
        return found

    def children(self) -> list[Any]:
        """The child processes any zone of this process started and still knows."""
        return [child for zone in self.zones() for child in getattr(zone, "children", {}).values()]

    def pause(self, seconds: float) -> None:
        if self.loop is not None:
            self.loop.run_until_complete(asyncio.sleep(seconds))
        else:
            time.sleep(seconds)

    def settle(self) -> None:
        """Until two looks at every zone's tables in a row agree (at most about 2 s):
        messages between processes and sockets take a while to arrive."""
        previous = None
        for _ in range(200):
            if self.loop is not None:
                for _ in range(20):
                    self.loop.run_until_complete(asyncio.sleep(0))
            gc.collect()
            for zone in self.zones():
                zone.flush()
            self.pause(0.01)
            state = self.held()
            if state == previous:
                return
            previous = state

    def close(self) -> dict[str, Any]:
        """Drop everything; what any zone of this process still holds, and the child
        processes still running 5 s after the last reference into them went."""
        children = self.children()
        self.e = None
        self.host = None
        deadline = time.monotonic() + self.patience
        self.settle()
        while self.held() and time.monotonic() < deadline:
            self.settle()
        left = self.held()
        while any(c.process.poll() is None for c in children) and time.monotonic() < deadline:
            self.pause(0.02)
        running = [c.name for c in children if c.process.poll() is None]
        if running:
            left["running child processes"] = running
        for zone in [self.root, *PEERS]:
            if self.loop is not None:
                self.loop.run_until_complete(zone.aclose())
            else:
                zone.close()
        PEERS.clear()
        for child in children:  # nothing of ours is left running, whatever happened
            if child.process.poll() is None:
                child.stop(1.0)
        if self.loop is not None:
            self.loop.run_until_complete(drain_tasks())
            self.loop.close()
        return left
