"""The three zones of tests/runtime/test_routing_hosts.py, one process per network
namespace: A (blocking) links to B, B (asyncio, the relay) links to C (blocking)
when A asks it for a zone, and C makes a child zone C2 in its own process.

    python netns_zones.py NAMESPACE_A NAMESPACE_B NAMESPACE_C KEEPALIVE

imports Canopy once, then forks one process per zone, each of which moves into
its namespace (``setns``) before it makes a socket. Each says JSON lines on
stdout, tagged with its zone (``{"zone": "a", "ready": ...}``, ``{"report": ...}``);
A waits for ``go`` on stdin before it links to B, and for ``cut`` between the
two halves of its scenario. B and C report once they have lost the link between
them, A once it has seen the loss. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import os
import sys
import time
import traceback
import weakref
from collections.abc import Callable
from typing import Any

import canopy
import canopy.transports.server  # loaded once, before the zones fork
from canopy.runtime._zone import Service
from scenarios import Example, Host, s
from waiting import until

PATIENCE = 5.0
"""Seconds any one wait of these processes lasts at most."""
PORT = 7000  # each namespace has ports of its own
AB, BC = "10.201.1", "10.201.2"  # the two links' /24 networks, inside the namespaces only
A_ADDRESS, B_ADDRESS, B_ADDRESS_TO_C, C_ADDRESS = f"{AB}.1", f"{AB}.2", f"{BC}.2", f"{BC}.3"
CLONE_NEWNET = 0x40000000
_role = "?"


def say(**fields: Any) -> None:
    """One JSON line on stdout, in one write: the three zones share the pipe."""
    os.write(1, (json.dumps({"zone": _role, **fields}) + "\n").encode())


def foreign(zone: Service, ours: set[int]) -> dict[str, list[int]]:
    """The zones outside ``ours`` that ``zone`` still holds objects of, or counts as
    holding its own objects: once a link is lost, none beyond it may be left."""
    held = {z for holders in zone.exported().values() for z in holders} - ours
    imported = {z for z, _ in zone.imported()} - ours
    return {"holders": sorted(held), "imported": sorted(imported)}


# ------------------------------------------------------------------ C


class Maker(Example):
    """C's example; it keeps the examples of the child zones it makes (for its report)."""

    def __init__(self, zone: Service) -> None:
        super().__init__(zone)
        self.made: list[Any] = []

    async def create_example_in_subordinate_zone(self, host: Any) -> Any:
        child = await super().create_example_in_subordinate_zone(host)
        self.made.append(child)
        return child


def zone_c(keepalive: float) -> None:
    roots: list[Maker] = []

    def root(zone: Service) -> Maker:
        roots.append(Maker(zone))
        return roots[-1]

    with canopy.Zone("C") as zone:
        server = zone.serve(f"tcp://{C_ADDRESS}:{PORT}", root, s.i_example, keepalive=keepalive)
        say(ready=os.getpid())
        linked = until(lambda: bool(server.links), 3 * PATIENCE)
        lost = linked and until(lambda: not server.links)
        report: dict[str, Any] = {"linked": linked, "lost": lost}
        if lost and roots and roots[0].made:
            example, child = roots[0], roots[0].made[0]
            started = time.monotonic()
            # A's foo had its only shared holder behind the lost link: it is destroyed,
            # and C2, its optimistic holder, was told.
            report["optimistic_gone"] = _raises(child.get_optimistic_ptr, canopy.ObjectGone)
            report["host_gone"] = _raises(lambda: example.host.unload_app("x"), canopy.ObjectGone)
            children = {z.id for z in zone._local_zones()}
            until(lambda: not any(foreign(zone, children).values()), 1.0)
            report["left"] = foreign(zone, children)
            report["checked_in"] = time.monotonic() - started
        say(report=report)


def _raises(fn: Callable[[], Any], error: type[Exception]) -> bool | str:
    """True if ``fn()`` raised ``error``; what it did otherwise."""
    try:
        result = fn()
    except error:
        return True
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return f"returned {result!r}"


# ------------------------------------------------------------------ B


class Relay(Example):
    """B's example: the zone it makes for A is C, in the next namespace."""

    def __init__(self, zone: Service, c_url: str, keepalive: float) -> None:
        super().__init__(zone)
        self.c_url = c_url
        self.keepalive = keepalive

    async def create_example_in_subordinate_zone(self, host: Any) -> Any:
        zone: Any = self.zone
        c = await zone.connect(self.c_url, s.i_example, keepalive=self.keepalive, timeout=5.0)
        if host is not None:
            await c.set_host(host)
        return c


async def zone_b(keepalive: float) -> None:
    c_url = f"tcp://{C_ADDRESS}:{PORT}"
    async with canopy.AsyncZone("B") as zone:
        await zone.serve(
            f"tcp://{B_ADDRESS}:{PORT}", lambda z: Relay(z, c_url, keepalive), s.i_example
        )
        say(ready=os.getpid())

        async def until_async(condition: Callable[[], bool], seconds: float = PATIENCE) -> bool:
            deadline = time.monotonic() + seconds
            while not condition():
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0.01)
            return True

        linked = await until_async(lambda: len(zone.links) == 2, 3 * PATIENCE)  # A's, C's
        lost = linked and await until_async(lambda: len(zone.links) == 1)
        (a,) = zone.links if lost else (0,)

        def settled() -> bool:
            gc.collect()
            zone.flush()
            return not any(foreign(zone, {zone.id, a}).values())

        await until_async(settled, 1.0)
        say(report={"linked": linked, "lost": lost, "left": foreign(zone, {zone.id, a})})
        await until_async(lambda: not zone.links)  # A still calls B after its report


# ------------------------------------------------------------------ A


def gone(call: Callable[..., Any], *args: Any) -> bool:
    """Whether ``call(*args)`` says its object is gone (any other failure: not yet known)."""
    try:
        call(*args)
    except canopy.ObjectGone:
        return True
    except canopy.CanopyError:
        return False
    return False


def zone_a() -> None:
    say(ready=os.getpid())
    if sys.stdin.readline().strip() != "go":
        return
    with canopy.Zone("A") as zone, canopy.call_timeout(PATIENCE):
        b = zone.connect(f"tcp://{B_ADDRESS}:{PORT}", s.i_example, timeout=PATIENCE)
        host = Host()
        destroyed = weakref.ref(host)
        c = b.create_example_in_subordinate_zone(host)  # A -> B -> C; C holds A's host
        del host  # C's is the last reference to it, through B
        baz = c.create_baz()
        foo = c.create_foo()
        c2 = c.create_example_in_subordinate_zone(None)  # C's child, in C's process
        c2.set_optimistic_ptr(foo)  # C2 holds C's foo optimistically; only A holds it shared
        checks = {
            "add": c.add(1, 2) == 3,
            "blob": baz.blob_test(b"\x01" * 1000) == b"\x01" * 1000,
            "optimistic": c2.get_optimistic_ptr().do_something_in_val(1) is None,
        }
        say(checks=checks)
        if sys.stdin.readline().strip() != "cut":
            return
        started = time.monotonic()
        try:
            first: Any = f"returned {c.add(2, 3)!r}"
        except canopy.CanopyError as e:
            first = type(e).__name__
        failed_in = time.monotonic() - started

        def over() -> bool:
            gc.collect()
            zone.flush()
            return (
                gone(c.add, 1, 1)
                and gone(baz.callback, 1)
                and gone(c2.add, 1, 1)
                and destroyed() is None
            )

        settled = until(over)
        report = {
            "first": first,
            "failed_in": failed_in,
            "settled": settled,
            "settled_in": time.monotonic() - started,
            "host_destroyed": destroyed() is None,
            "b_works": b.add(2, 2) == 4,
            "left": foreign(zone, {zone.id, b._canopy_remote.zone}),
        }
        say(report=report)


def enter(namespace: str) -> None:
    """Move this (single-threaded) process into network namespace ``namespace``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {namespace}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def fork(role: str, namespace: str, run: Callable[[], None]) -> int:
    """A child process that runs zone ``role`` in ``namespace``; its id."""
    pid = os.fork()
    if pid:
        return pid
    global _role
    _role = role
    code = 0
    try:
        enter(namespace)
        run()
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(argv: list[str]) -> None:
    """Fork the three zones, then wait (bounded) until they have ended."""
    namespaces, keepalive = argv[:3], float(argv[3])
    pids = [
        fork("c", namespaces[2], lambda: zone_c(keepalive)),
        fork("b", namespaces[1], lambda: asyncio.run(zone_b(keepalive))),
        fork("a", namespaces[0], zone_a),
    ]
    deadline = time.monotonic() + 6 * PATIENCE
    while pids and time.monotonic() < deadline:
        for pid in list(pids):
            if os.waitpid(pid, os.WNOHANG)[0]:
                pids.remove(pid)
        time.sleep(0.02)
    for pid in pids:  # our own children, still running past every bound
        os.kill(pid, 9)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main(sys.argv[1:])
