"""Links that die and are replaced, and references caught in transfer when a link dies
(SCENARIOS.md 3's repair variant, 12, 13 and 14, restated for our design), in both modes.

The original keeps a registry of transports per destination; ours keeps one link per
neighbour zone (``Service.links``) and counts every reference between neighbours.
Its "stale transport-down" becomes a notice that arrives about a link after another
link to the same zone has replaced it: a ``TransportDown`` read from the old link, and
the reply of a call that was still running when the old link died. Its forked add_ref
becomes a reference in a reply passed on through a zone whose link onward has died:
the leg that delivered it is paid back, the other leg never counted it.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import canopy
from canopy.runtime import AsyncZone, Zone
from canopy.runtime._zone import Service
from canopy.wire import TransportDown
from scenarios import MODES, Example, Foo, Host, Tree, _maybe, call_in, drain_tasks, s


class Gated(Example):
    """An example whose ``receive_interface`` waits for the test's word: a call still
    running when its link dies. Bounded: after 5 s it returns anyway."""

    def __init__(self, zone: Service) -> None:
        super().__init__(zone)
        self.started = threading.Event()
        self.gate = threading.Event()
        self.returned = threading.Event()

    async def receive_interface(self) -> Any:
        self.started.set()
        for _ in range(500):
            if self.gate.is_set():
                break
            await asyncio.sleep(0.01)
        self.returned.set()
        return Foo(self.zone)


class Pair:
    """Zones R and E of this process, R linked to E's server over TCP on loopback, so that
    the link can die and R can link to the same zone E again."""

    def __init__(self, mode: str) -> None:
        self.loop = asyncio.new_event_loop() if mode == "asyncio" else None
        zone_class: Any = Zone if mode == "blocking" else AsyncZone
        self.r: Any = zone_class("R")
        self.e: Any = zone_class("E")
        self.examples: list[Gated] = []
        server = self.do(self.e.serve, "tcp://127.0.0.1:0", self._root, s.i_example)
        self.url = server.url

    def _root(self, zone: Service) -> Gated:
        example = Gated(zone)
        self.examples.append(example)
        return example

    def do(self, fn: Callable[..., Any], *args: Any) -> Any:
        return call_in(self.loop, fn, *args)

    def connect(self) -> Any:
        return self.do(self.r.connect, self.url, s.i_example)

    def until(self, condition: Callable[[], bool], seconds: float = 2.0) -> bool:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                return False
            if self.loop is not None:
                self.loop.run_until_complete(asyncio.sleep(0.005))
            else:
                time.sleep(0.005)
            gc.collect()
            self.r.flush()
            self.e.flush()
        return True

    def cut(self) -> tuple[Any, Any]:
        """Kill the link between R and E (no goodbye); its two ends, once both zones know."""
        old_r, old_e = self.r.links[self.e.id], self.e.links[self.r.id]
        self.do(lambda: old_r.abort("the test cuts the link"))
        assert self.until(lambda: self.e.id not in self.r.links and self.r.id not in self.e.links)
        return old_r, old_e

    def in_flight(self, fn: Callable[[], Any]) -> Callable[[], BaseException | None]:
        """Start the call ``fn()`` without waiting for it (on a thread, or as a task); a
        function that waits for it to end and returns what it raised, if anything."""
        raised: list[BaseException | None] = []

        async def call() -> None:
            try:
                await _maybe(fn())
                raised.append(None)
            except Exception as e:
                raised.append(e)

        loop = self.loop
        if loop is not None:
            task = loop.create_task(call())

            def ended() -> BaseException | None:
                loop.run_until_complete(asyncio.wait([task], timeout=5.0))
                return raised[0] if raised else None

            return ended
        thread = threading.Thread(target=asyncio.run, args=(call(),), daemon=True)
        thread.start()

        def joined() -> BaseException | None:
            thread.join(5.0)
            return raised[0] if raised else None

        return joined

    def held(self) -> dict[str, Any]:
        return {
            z.name: (z.exported(), z.imported(), z._loans)
            for z in (self.r, self.e)
            if z.exported() or z.imported() or z._loans
        }

    def close(self) -> dict[str, Any]:
        """What R or E still holds once everything is dropped (C0: nothing)."""
        self.until(lambda: not self.held(), 1.0)
        left = self.held()
        for zone in (self.r, self.e):
            if self.loop is not None:
                self.loop.run_until_complete(zone.aclose())
            else:
                zone.close()
        if self.loop is not None:
            self.loop.run_until_complete(drain_tasks())
            self.loop.close()
        return left


@pytest.fixture(params=MODES)
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    p = Pair(request.param)
    try:
        yield p
    finally:
        left = p.close()
    assert left == {}, "references left behind (C0)"


def test_a_replaced_link_keeps_identity_and_counts_and_ignores_stale_notices(pair: Pair) -> None:
    p = pair
    host = Host()
    e1 = p.connect()
    p.do(e1.set_host, host)  # E holds R's host
    foo = p.do(e1.create_foo)  # R holds E's foo: both directions are counted on the link
    gated = p.examples[-1]
    pending = p.in_flight(e1.receive_interface)  # still running in E when the link dies
    assert p.until(gated.started.is_set)
    old_r, old_e = p.cut()
    raised = pending()
    assert isinstance(raised, canopy.CanopyError), raised
    with pytest.raises(canopy.ObjectGone):
        p.do(foo.do_something_in_val, 1)
    assert p.r.exported() == {} and p.e.imported() == []  # the old link's counts are gone

    e2 = p.connect()  # a new link between the same two zones
    p.do(e2.set_host, host)
    assert p.do(e2.get_host) is host  # R's own object comes back as itself
    foo = p.do(e2.create_foo)
    baz = p.do(e2.create_baz)
    assert p.do(e2.send_interface_back, baz) is baz  # R's one proxy for E's baz
    # Counted once each, once the extra reference the echo brought back is returned:
    assert p.until(lambda: list(p.e.exported().values()) == [{p.r.id: [1, 0]}] * 3)
    assert list(p.r.exported().values()) == [{p.e.id: [1, 0]}]  # the host
    before = (p.r.exported(), p.r.imported(), p.e.exported(), p.e.imported())

    # Stale notices about the old link, after the replacement:
    gated.gate.set()  # the call begun on the old link returns a new foo to nobody
    assert p.until(gated.returned.is_set)
    p.until(lambda: False, 0.1)  # time for E to try to send its reply
    p.r.receive(old_r, TransportDown((p.e.id,)))  # read from the old link, late
    p.e.receive(old_e, TransportDown((p.r.id,)))
    p.r.flush()
    p.e.flush()

    assert (p.r.exported(), p.r.imported(), p.e.exported(), p.e.imported()) == before
    assert p.do(e2.get_host) is host
    assert p.do(foo.do_something_in_val, 2) is None
    assert p.do(e2.send_interface_back, baz) is baz
    p.do(e2.set_host, None)
    del e1, e2, foo, baz, host


# ------------------------------------------------------------------ a reference caught in transfer


@pytest.fixture(params=MODES)
def t(request: pytest.FixtureRequest) -> Iterator[Tree]:
    tree = Tree(request.param)
    yield tree
    assert tree.close() == {}, "references or routes left behind (C0)"


def _zone(t: Tree, proxy: Any) -> Service:
    """The in-process zone that owns ``proxy``'s object."""
    owner = proxy._canopy_remote.zone
    found: Service = next(z for z in t.zones() if z.id == owner)
    return found


def _cut_when(zone: Service, method: str, caller: int, link: Any) -> None:
    """Have ``zone`` close ``link`` when it starts serving ``method`` for ``caller``: the
    reply, and the reference in it, then find the link onward dead."""

    def cut(seen: canopy.Intercepted) -> None:
        if seen.side == "server" and seen.method.endswith(method) and seen.zone == caller:
            link.close()

    zone.intercept(cut)


def test_a_reference_passed_on_over_a_link_that_died_is_paid_back(t: Tree) -> None:
    # R -- E -- W: W looks Z's example up in R's host; R lends it to E, E would lend it
    # on to W, but the E -- W link dies while R serves the look-up. E gives R's loan
    # back, and lends nothing to W: Z's example lives on while R holds it.
    (z,) = t.chain(t.e, 1)
    w = t.do(t.e.create_example_in_subordinate_zone, t.host)
    t.do(t.host.set_app, "z", z)
    e_zone, w_zone = _zone(t, t.e), _zone(t, w)
    _cut_when(t.root, "look_up_app", w_zone.id, e_zone.links[w_zone.id])
    with pytest.raises(canopy.CanopyError):
        t.do(w.call_host_look_up_app_not_return, "z")
    t.settle()
    assert w_zone.exported() == {} and w_zone.imported() == []  # W let go of H
    assert all(w_zone.id not in r.lent for r in e_zone.tables.remotes.values())
    assert t.do(z.add, 1, 2) == 3  # no premature destruction
    t.do(t.host.unload_app, "z")
    del z, w


def test_a_reference_handed_over_a_link_that_died_is_not_counted(t: Tree) -> None:
    # R -- E -- W: W asks E's example for a new zone's example; the E -- W link dies
    # while E makes it. E must not count a loan to W, which never gets the reference.
    w = t.do(t.e.create_example_in_subordinate_zone, t.host)
    e_zone, w_zone = _zone(t, t.e), _zone(t, w)
    _cut_when(e_zone, "create_example_in_subordinate_zone", w_zone.id, e_zone.links[w_zone.id])
    with pytest.raises(canopy.CanopyError):
        t.do(w.create_fork_and_return_object, t.e, [1])
    t.settle()
    assert w_zone.exported() == {} and w_zone.imported() == []
    assert w_zone.id not in e_zone._loans
    assert t.do(t.e.add, 1, 2) == 3
    del w
