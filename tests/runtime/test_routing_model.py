"""A model-based test of routing and lifetime: hypothesis builds random trees of zones
(in-process children, peers over TCP on loopback and child processes), in both modes,
creates objects, passes references along random routes, has zones cache them, copies
and drops them, calls through them, and cuts links and kills processes.

The model follows every reference the way the runtime must: a zone that is not an
object's owner reaches it through one neighbour, the one the first reference it
kept came from (its route), and keeps that route while a proxy of its own or a
neighbour that borrowed from it needs it. A dead link ends every route across it
and every route that leads through a zone that lost one.

Checked after every step, once the system is quiet (within ``QUIET`` seconds):

- an object lives exactly when the model says a live holder still references it:
  one whose references were all dropped, or lost with a dead link, is destroyed,
  and no other object is (objects of this process by weak reference; a child
  process runs exactly while the model has something in it);
- every zone of this process counts exactly the references that exist: its stubs'
  holders, its routes, its loans and its tallies are the model's, neighbour by
  neighbour, and nothing else;
- no call hangs: every call is bounded by ``canopy.call_timeout``, and a timeout fails;
- the runtime logged no warning (a release of what was not held, a refused message).

``initialize`` starts each example with a chain of up to three zones below E and a
baz in its last one; the rules then pass references on, have examples cache what
another made (so an object is referenced from two zones, by two routes), drop them
in any order and cut links while references cross them. Hypothesis' statistics
(``--hypothesis-show-statistics``) say how often each of these came up.

At the end everything is dropped and nothing may be left held or running (C0).

The normal suite runs a fixed-seed version, most examples over in-process zones
and TCP peers and a few with child processes (slow to start). A long random run:

    CANOPY_MODEL_EXAMPLES=2000 pytest tests/runtime/test_routing_model.py

(The variants with child processes run a tenth as many examples, each starting up
to three processes.)
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import os
import select
import signal
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import canopy
from canopy.runtime import AsyncZone, Zone
from canopy.runtime._zone import Service
from canopy.transports.stream import BlockingStreamLink
from mixed import PEERS, child_env
from scenarios import Example, Host, _maybe, call_in, drain_tasks, s

EXAMPLES = int(os.environ.get("CANOPY_MODEL_EXAMPLES", "0"))
CALL_TIMEOUT = 10.0
SPAWN_TIMEOUT = 30.0  # a call that may start a child process (a second or more under load)
QUIET = 5.0  # seconds the system has to agree with the model after a step
_names = itertools.count(1)


# ------------------------------------------------------------------ the zones' objects


class Maker(Example):
    """The scenarios' example, making each new zone the way the model chose (``Maker.how``):
    in this process, a peer over TCP or a child process (whose zones make local ones)."""

    how = "local"

    async def create_example_in_subordinate_zone(self, host: Any) -> Any:
        child = await make_zone(self.zone, Maker.how, f"{self.zone.name}.{next(_names)}")
        if host is not None:
            await child.set_host(host)
        return child


async def make_zone(zone: Any, how: str, name: str) -> Any:
    if how == "local":
        return await _maybe(zone.child(name, Maker, s.i_example))
    if how == "tcp":
        peer = type(zone)(name)
        PEERS.append(peer)
        server = await _maybe(peer.serve("tcp://127.0.0.1:0", Maker, s.i_example))
        return await _maybe(zone.connect(server.url, s.i_example, timeout=5.0))
    target = "mixed:from_environment"  # a Grower: its zones are made in its process
    return await _maybe(zone.spawn(name, target, s.i_example, env=child_env(())))


# ------------------------------------------------------------------ the model


@dataclass(eq=False)
class Place:
    """A zone, as the model knows it."""

    id: int
    parent: Place | None
    how: str  # how its parent made it: "root", "local", "tcp" or "process"
    process: Any  # the ChildProcess it lives in; None: this process
    dead: bool = False

    def below(self, other: Place) -> bool:
        place: Place | None = self
        while place is not None:
            if place is other:
                return True
            place = place.parent
        return False


@dataclass(eq=False)
class Thing:
    """An object the model follows: R's host H, an example or a baz."""

    kind: str  # "host", "example" or "baz"
    place: Place
    object_id: int  # H's changes each time R exports it anew: see Routing.host_id
    ref: weakref.ref[Any] | None  # the object, in its zone of this process
    held: list[Any] = field(default_factory=list)  # R's copies of its one proxy
    gone: list[Any] = field(default_factory=list)  # R's proxies a dead link cut off
    host: bool = False  # an example given H (its zone then references H)
    host_gone: bool = False
    caches: Thing | None = None  # what an example caches (its zone references it)
    cache_gone: bool = False
    dead: bool = False


class Model:
    """Who holds what, and each zone's route to each object it references or lends."""

    def __init__(self, root: Place, host: Thing) -> None:
        self.root = root
        self.host = host
        self.places = [root]
        self.things = [host]
        self.registry: dict[str, tuple[Thing, bool]] = {}  # H's apps: (thing, still reached)
        self.up: dict[tuple[int, Thing], int] = {}  # (zone, object) -> neighbour towards it

    def examples(self) -> list[Thing]:
        return [x for x in self.things if x.kind == "example" and not x.dead]

    def holds(self) -> set[tuple[int, Thing]]:
        """(zone, object): a live proxy in that zone references the object."""
        found = {(self.root.id, x) for x in self.things if x.held}
        found |= {(self.root.id, x) for x, reached in self.registry.values() if reached}
        for x in self.examples():
            if x.caches is not None and not x.cache_gone:
                found.add((x.place.id, x.caches))
            if x.host and not x.host_gone:
                found.add((x.place.id, self.host))
        return found

    def settle(self) -> None:
        """Objects nothing live references die (and drop what they hold); routes
        nothing needs any more are given back."""
        while True:
            held = {x for _, x in self.holds()}
            dying = [x for x in self.things if not x.dead and x is not self.host and x not in held]
            dying += [x for x in self.things if not x.dead and x.place.dead]
            if not dying:
                break
            for x in dying:
                x.dead = True
                x.held, x.caches, x.host = [], None, False
        needed = {(z, x) for z, x in self.holds() if z != x.place.id}
        grew = True
        while grew:
            grew = False
            for (z, x), via in self.up.items():
                if (z, x) in needed and via != x.place.id and (via, x) not in needed:
                    needed.add((via, x))
                    grew = True
        missing = needed - self.up.keys()
        assert not missing, f"the model lost a route: {missing}"
        self.up = {key: via for key, via in self.up.items() if key in needed}

    def route(self, zone: int, x: Thing) -> list[int]:
        """The zones a call from ``zone`` to ``x`` goes through, ``zone`` and x's own included."""
        path = [zone]
        while path[-1] != x.place.id:
            path.append(self.up[(path[-1], x)])
            assert len(path) <= len(self.places), f"a routing loop: {path}"
        return path

    def carry(self, path: list[int], x: Thing) -> None:
        """A reference to ``x`` passed along ``path``: each zone that has no route to it yet
        takes the neighbour it came from as its route (the owner counts, nobody routes)."""
        for came, zone in itertools.pairwise(path):
            if zone != x.place.id:
                self.up.setdefault((zone, x), came)

    def cut(self, upper: Place, lower: Place) -> int:
        """The link between ``upper`` and the zone it made, ``lower``, died; how many
        references the zones that live on lost."""
        for place in self.places:
            if place.below(lower):
                place.dead = True
        dead = {p.id for p in self.places if p.dead}
        lost = {
            (z, x)
            for (z, x), via in self.up.items()
            if {z, via} == {upper.id, lower.id} or z in dead or x.place.dead
        }
        grew = True
        while grew:  # a zone that lost its route tells its borrowers
            grew = False
            for (z, x), via in self.up.items():
                if (z, x) not in lost and (via, x) in lost:
                    lost.add((z, x))
                    grew = True
        survivors = 0
        for z, x in lost:
            del self.up[(z, x)]
            if z in dead:
                continue
            survivors += 1
            if z == self.root.id:
                x.gone += x.held
                x.held = []
                self.registry = {
                    name: (y, reached and y is not x)
                    for name, (y, reached) in self.registry.items()
                }
            for y in self.examples():
                if y.place.id == z and y.caches is x:
                    y.cache_gone = True
                if y.place.id == z and x is self.host and y.host:
                    y.host_gone = True
        self.settle()
        return survivors

    def running(self, process: Any) -> bool:
        """Whether a child process must still run: something in it lives, or a route
        goes through it."""
        zones = {p.id for p in self.places if p.process is process and not p.dead}
        return any(not x.dead and x.place.id in zones for x in self.things) or any(
            z in zones for z, _ in self.up
        )


# ------------------------------------------------------------------ the machine


class Routing(RuleBasedStateMachine):
    MODE = "blocking"
    HOWS: tuple[str, ...] = ("local", "tcp")
    PROCESSES = 0  # child processes one example may start

    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[str] = []
        self.log = _Collect(self.warnings)
        logging.getLogger("canopy.runtime").addHandler(self.log)
        self.loop = asyncio.new_event_loop() if self.MODE == "asyncio" else None
        self.root: Any = Zone("R") if self.MODE == "blocking" else AsyncZone("R")
        PEERS.clear()
        self.processes: list[Any] = []
        self.h = Host()
        root = Place(self.root.id, None, "root", None)
        host = Thing("host", root, 0, weakref.ref(self.h))
        self.m = Model(root, host)
        e = self.do(self.root.child, "E", Maker, s.i_example)
        self.e = self.received("example", e, None, "local", root)
        self.m.carry([self.e.place.id, root.id], self.e)

    # ---------------------------------------------------------------- helpers

    def do(self, fn: Callable[..., Any], *args: Any, timeout: float = CALL_TIMEOUT) -> Any:
        with canopy.call_timeout(timeout):
            return call_in(self.loop, fn, *args)

    def zones(self) -> dict[int, Service]:
        found: dict[int, Service] = {}
        for top in [self.root, *PEERS]:
            for zone in top._local_zones():
                found.setdefault(zone.id, zone)
        return found

    def children(self) -> set[Any]:
        return {c for z in self.zones().values() for c in getattr(z, "children", {}).values()}

    def place_of(self, zone: int) -> Place:
        return next(p for p in self.m.places if p.id == zone)

    def ours(self, place: Place) -> bool:
        return place.process is None and not place.dead

    def received(
        self, kind: str, proxy: Any, x: Thing | None, how: str, parent: Place | None = None
    ) -> Thing:
        """The thing R now holds ``proxy`` of: ``x``, or a new one (in a new zone under
        ``parent``, made ``how``, when given)."""
        if x is not None:
            if x.held:
                assert proxy is x.held[0], "the same object, another proxy"
            x.held.append(proxy)
            return x
        remote = proxy._canopy_remote
        if parent is not None:
            process = parent.process
            if how == "process":
                (process,) = self.children() - set(self.processes)
                self.processes.append(process)
            self.m.places.append(Place(remote.zone, parent, how, process))
        place = self.place_of(remote.zone)
        ref = None
        if place.process is None:
            ref = weakref.ref(self.zones()[remote.zone].tables.stubs[remote.object_id].target)
        thing = Thing(kind, place, remote.object_id, ref, [proxy])
        self.m.things.append(thing)
        return thing

    def usable(self, kind: str = "") -> list[Thing]:
        return [x for x in self.m.things if x.held and (not kind or x.kind == kind)]

    def hows(self, parent: Place) -> list[str]:
        if not self.ours(parent):
            return ["local"]
        return [h for h in self.HOWS if h != "process" or len(self.processes) < self.PROCESSES]

    def new_zone(self, x: Thing, how: str, give_host: bool) -> Thing:
        """R asks example ``x`` for an example in a new zone below its own."""
        path = self.m.route(self.m.root.id, x)
        how = how if self.ours(x.place) else "local"
        Maker.how = how
        host = self.h if give_host else None
        made = self.do(x.held[0].create_example_in_subordinate_zone, host, timeout=SPAWN_TIMEOUT)
        new = self.received("example", made, None, how, x.place)
        if give_host:
            self.m.carry(path, self.m.host)
            self.m.carry([x.place.id, new.place.id], self.m.host)
            new.host = True
        self.m.carry([new.place.id, x.place.id], new)
        self.m.carry(path[::-1], new)
        return new

    # ---------------------------------------------------------------- start

    @initialize(
        data=st.data(), depth=st.integers(1, 3), give_host=st.lists(st.booleans(), min_size=3)
    )
    def grow_a_chain(self, data: st.DataObject, depth: int, give_host: list[bool]) -> None:
        """A chain below E, a baz in its last zone: references several hops away from the
        start (with processes, one of the chain's zones is a child process)."""
        x = self.e
        for level in range(depth):
            choices = self.hows(x.place)
            if "process" in choices and level == depth - 1 and not self.processes:
                choices = ["process"]
            x = self.new_zone(x, data.draw(st.sampled_from(choices)), give_host[level])
        self.create(x)

    # ---------------------------------------------------------------- rules

    @precondition(lambda self: self.usable("example"))
    @rule(data=st.data(), give_host=st.booleans())
    def new_zone_anywhere(self, data: st.DataObject, give_host: bool) -> None:
        if len(self.m.places) >= 12:
            return
        x = data.draw(st.sampled_from(self.usable("example")))
        self.new_zone(x, data.draw(st.sampled_from(self.hows(x.place))), give_host)

    @precondition(lambda self: self.usable("example"))
    @rule(data=st.data())
    def create_baz(self, data: st.DataObject) -> None:
        self.create(data.draw(st.sampled_from(self.usable("example"))))

    def create(self, x: Thing) -> None:
        path = self.m.route(self.m.root.id, x)
        baz = self.received("baz", self.do(x.held[0].create_baz), None, "")
        self.m.carry(path[::-1], baz)

    @precondition(lambda self: len(self.usable("example")) >= 1)
    @rule(data=st.data(), grow=st.booleans(), cache=st.booleans())
    def fork(self, data: st.DataObject, grow: bool, cache: bool) -> None:
        """x gets a factory (any example R holds): it caches it, or what the factory made
        for it, or hands that back to R: a second route to an object, several hops long."""
        if len(self.m.places) >= 12:
            grow = False
        x = data.draw(st.sampled_from(self.usable("example")))
        factory = data.draw(st.sampled_from(self.usable("example")))
        if x.host_gone and grow:
            return  # x's H is out of reach: passing it on fails, which is not checked here
        if cache and self._would_loop(x, factory, grow):
            return  # a loop of references across zones is never collected: not a leak here
        how = data.draw(st.sampled_from(self.hows(factory.place)))
        if cache and grow:
            self.fork_and_cache(x, factory, how)
            return
        self.fork_simple(x, factory, grow, how, cache)

    def _would_loop(self, x: Thing, factory: Thing, grow: bool) -> bool:
        if grow:
            return False
        y: Thing | None = factory
        while y is not None:
            if y is x:
                return True
            y = y.caches if not y.cache_gone else None
        return False

    def fork_simple(self, x: Thing, factory: Thing, grow: bool, how: str, cache: bool) -> None:
        path = self.m.route(self.m.root.id, x)
        Maker.how = how if self.ours(factory.place) else "local"
        if cache:
            self.do(x.held[0].create_y_topology_fork, factory.held[0], [])
            self.m.carry(path, factory)
            x.caches, x.cache_gone = factory, False
            return
        made = self.do(
            x.held[0].create_fork_and_return_object,
            factory.held[0],
            [1] if grow else [],
            timeout=SPAWN_TIMEOUT,
        )
        self.m.carry(path, factory)
        if not grow:
            assert made is factory.held[0]
            factory.held.append(made)
            return
        new = self.grown(x, factory, made)
        self.m.carry(path[::-1], new)

    def fork_and_cache(self, x: Thing, factory: Thing, how: str) -> None:
        """x caches an example the factory made for it: then R gets it from x's cache."""
        path = self.m.route(self.m.root.id, x)
        Maker.how = how if self.ours(factory.place) else "local"
        self.do(x.held[0].create_y_topology_fork, factory.held[0], [1], timeout=SPAWN_TIMEOUT)
        self.m.carry(path, factory)
        made = self.do(x.held[0].retrieve_cached_autonomous_object)
        new = self.grown(x, factory, made)
        x.caches, x.cache_gone = new, False
        self.m.carry(path[::-1], new)

    def grown(self, x: Thing, factory: Thing, made: Any) -> Thing:
        """The model's side of x asking the factory for an example in a new zone."""
        inner = self.m.route(x.place.id, factory)
        new = self.received("example", made, None, Maker.how, factory.place)
        if x.host:
            self.m.carry(inner, self.m.host)
            self.m.carry([factory.place.id, new.place.id], self.m.host)
            new.host = True
        self.m.carry([new.place.id, factory.place.id], new)
        self.m.carry(inner[::-1], new)
        return new

    @precondition(lambda self: any(x.caches for x in self.usable("example")))
    @rule(data=st.data())
    def retrieve(self, data: st.DataObject) -> None:
        """R gets what an example caches, by the route the example's zone has to it."""
        x = data.draw(st.sampled_from([x for x in self.usable("example") if x.caches]))
        cached = x.caches
        assert cached is not None
        if x.cache_gone:
            with pytest.raises(canopy.ObjectGone):
                self.do(x.held[0].retrieve_cached_autonomous_object)
            return
        path = self.m.route(self.m.root.id, x)
        got = self.do(x.held[0].retrieve_cached_autonomous_object)
        self.m.carry(path[::-1], cached)
        self.received(cached.kind, got, cached, "")

    @precondition(lambda self: self.usable("example"))
    @rule(data=st.data())
    def uncache(self, data: st.DataObject) -> None:
        x = data.draw(st.sampled_from(self.usable("example")))
        self.do(x.held[0].create_y_topology_fork, None, [])
        x.caches, x.cache_gone = None, False

    @precondition(lambda self: any(x.caches and x.host for x in self.usable("example")))
    @rule(data=st.data())
    def give_host_cached(self, data: st.DataObject) -> None:
        """An example registers what it caches in H as "foo": H's reference comes by way of
        the example's zone."""
        x = data.draw(st.sampled_from([x for x in self.usable("example") if x.caches and x.host]))
        cached = x.caches
        assert cached is not None
        if x.host_gone or x.cache_gone:
            return  # the call fails on what it cannot reach; not what this checks
        self.do(x.held[0].give_host_cached_object)
        self.m.carry(self.m.route(x.place.id, self.m.host), cached)
        self.m.registry["foo"] = (cached, True)

    @precondition(lambda self: self.usable("example") and self.usable("baz"))
    @rule(data=st.data())
    def echo(self, data: st.DataObject) -> None:
        """A baz goes to an example in some zone and comes back: the same proxy."""
        x = data.draw(st.sampled_from(self.usable("example")))
        baz = data.draw(st.sampled_from(self.usable("baz")))
        path = self.m.route(self.m.root.id, x)
        assert self.do(x.held[0].send_interface_back, baz.held[0]) is baz.held[0]
        self.m.carry(path, baz)
        self.m.carry(path[::-1], baz)

    @precondition(lambda self: self.usable("example") and self.usable("baz"))
    @rule(data=st.data())
    def give(self, data: st.DataObject) -> None:
        """An example calls back a baz of any zone, by the route its zone takes to it."""
        x = data.draw(st.sampled_from(self.usable("example")))
        baz = data.draw(st.sampled_from(self.usable("baz")))
        self.do(x.held[0].give_interface, baz.held[0])
        self.m.carry(self.m.route(self.m.root.id, x), baz)

    @precondition(lambda self: any(x.held or x.gone for x in self.m.things))
    @rule(data=st.data())
    def call(self, data: st.DataObject) -> None:
        x = data.draw(st.sampled_from([x for x in self.m.things if x.held or x.gone]))
        if not x.held:
            proxy = x.gone[0]
            with pytest.raises(canopy.ObjectGone):
                self.do(proxy.add, 1, 2) if x.kind == "example" else self.do(proxy.callback, 1)
        elif x.kind == "baz":
            assert self.do(x.held[0].callback, 1) is None
        else:
            assert self.do(x.held[0].add, 1, 2) == 3

    @precondition(lambda self: self.usable())
    @rule(data=st.data())
    def copy(self, data: st.DataObject) -> None:
        x = data.draw(st.sampled_from(self.usable()))
        x.held.append(x.held[0])

    @precondition(lambda self: any(x.held or x.gone for x in self.m.things if x is not self.e))
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        x = data.draw(
            st.sampled_from([x for x in self.m.things if (x.held or x.gone) and x is not self.e])
        )
        (x.held or x.gone).pop()

    @precondition(lambda self: any(x.held for x in self.m.things if x is not self.e))
    @rule(data=st.data())
    def drop_all(self, data: st.DataObject) -> None:
        """R lets an object go at once, whatever else still holds it."""
        x = data.draw(st.sampled_from([x for x in self.m.things if x.held and x is not self.e]))
        x.held.clear()

    @precondition(lambda self: self.usable("example"))
    @rule(data=st.data(), name=st.sampled_from(["a", "b"]))
    def register(self, data: st.DataObject, name: str) -> None:
        x = data.draw(st.sampled_from(self.usable("example")))
        self.do(self.h.set_app, name, x.held[0])
        self.m.registry[name] = (x, True)

    @rule(name=st.sampled_from(["a", "b", "foo"]))
    def unregister(self, name: str) -> None:
        self.do(self.h.unload_app, name)
        self.m.registry.pop(name, None)

    @precondition(lambda self: any(x.host for x in self.usable("example")))
    @rule(data=st.data(), name=st.sampled_from(["a", "b", "foo"]))
    def look_up(self, data: st.DataObject, name: str) -> None:
        """An example looks a registered example up in H (it comes by the example's route
        to H), and drops it."""
        x = data.draw(st.sampled_from([x for x in self.usable("example") if x.host]))
        found, reached = self.m.registry.get(name, (None, True))
        if x.host_gone or not reached:
            with pytest.raises(canopy.ObjectGone):
                self.do(x.held[0].call_host_look_up_app_not_return, name)
            return
        self.do(x.held[0].call_host_look_up_app_not_return, name)
        if found is not None:
            self.m.carry(self.m.route(x.place.id, self.m.host)[::-1], found)

    @precondition(lambda self: any(self.cuttable()))
    @rule(data=st.data())
    def cut(self, data: st.DataObject) -> None:
        """The link between a zone of this process and a zone it made dies (closed)."""
        lower = data.draw(st.sampled_from(self.cuttable()))
        assert lower.parent is not None
        link: Any = self.zones()[lower.parent.id].links[lower.id]
        link.close()
        if self.m.cut(lower.parent, lower):
            event("a link closed while references crossed it")

    def cuttable(self) -> list[Place]:
        """The zones whose link to their parent (a zone of this process) lives."""
        return [
            p
            for p in self.m.places
            if p.parent is not None
            and self.ours(p.parent)
            and not p.dead
            and (p.how != "process" or self.m.running(p.process))
        ]

    @precondition(lambda self: any(self.killable()))
    @rule(data=st.data())
    def kill(self, data: st.DataObject) -> None:
        """A child process dies at once (SIGKILL): all in it is lost."""
        place = data.draw(st.sampled_from(self.killable()))
        assert place.parent is not None
        os.kill(place.process.pid, signal.SIGKILL)  # ours: a zone of this process started it
        if self.m.cut(place.parent, place):
            event("a process killed while references crossed its link")

    def killable(self) -> list[Place]:
        return [p for p in self.cuttable() if p.how == "process"]

    # ---------------------------------------------------------------- invariants

    @invariant()
    def quiet_and_consistent(self) -> None:
        self.m.settle()
        self.until_quiet(self.check)
        self.tell_what_was_reached()

    def tell_what_was_reached(self) -> None:
        """Hypothesis' statistics (``--hypothesis-show-statistics``) say how often the
        interesting states came up."""
        holds = self.m.holds()
        longest = max((len(self.m.route(z, x)) for z, x in holds), default=1)
        event(f"longest route: {min(longest, 6)} zones")
        if len({x for _, x in holds if x is not self.m.host}) < len(
            [x for z, x in holds if x is not self.m.host]
        ):
            event("an object referenced from two zones")
        if any(p.dead for p in self.m.places):
            event("a zone was lost")

    def until_quiet(self, check: Callable[[], None]) -> None:
        """``check`` passes once the messages under way have arrived, within ``QUIET`` s.

        The first look collects no garbage (most steps leave none, and a collection
        costs more than the rest of a step): garbage only keeps references, so a
        check it would fail fails, and the next looks collect."""
        deadline = time.monotonic() + QUIET
        collect = False
        while True:
            self.pump(collect)
            try:
                check()
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
            if collect:
                self.pause(0.01)
            collect = True

    def pump(self, collect: bool) -> None:
        if self.loop is not None:
            for _ in range(10):
                self.loop.run_until_complete(asyncio.sleep(0))
        if collect:
            gc.collect()
        for zone in self.zones().values():
            zone.flush()
            if self.loop is None:
                for link in list(zone.links.values()):
                    _read_what_arrived(link)

    def pause(self, seconds: float) -> None:
        if self.loop is not None:
            self.loop.run_until_complete(asyncio.sleep(seconds))
        else:
            time.sleep(seconds)

    def check(self) -> None:
        assert self.warnings == [], self.warnings
        for x in self.m.things:
            if x.ref is not None:
                assert (x.ref() is not None) == (not x.dead), (x.kind, x.place.how, x.dead)
        for process in self.processes:
            running = process.process.poll() is None
            assert running == self.m.running(process), (process, self.m.running(process))
        zones = self.zones()
        for zone in zones.values():
            assert self.tables(zone) == self.expected(zone), zone

    def host_id(self) -> int:
        stub = self.root.tables.stub_of.get(id(self.h))
        return stub.object_id if stub is not None else 0

    def key(self, x: Thing) -> tuple[int, int]:
        return x.place.id, self.host_id() if x is self.m.host else x.object_id

    def tables(self, zone: Service) -> dict[str, Any]:
        """What ``zone`` counts, in the model's terms."""
        remotes = {
            key: (r.link.peer, r.held, {b: list(c) for b, c in r.lent.items()}, r.live[0] > 0)
            for key, r in zone.tables.remotes.items()
        }
        exported = {oid: holders for oid, holders in zone.exported().items()}
        held: dict[int, int] = {}
        loans: dict[int, int] = {}
        for holders in exported.values():
            for b in holders:
                held[b] = held.get(b, 0) + 1
        for r in zone.tables.remotes.values():
            for b, c in r.lent.items():
                loans[b] = loans.get(b, 0) + sum(c)
        return {
            "exported": exported,
            "remotes": remotes,
            "tallies": (dict(zone._held), dict(zone._loans)),
            "counted": (held, loans),
        }

    def expected(self, zone: Service) -> dict[str, Any]:
        holds = self.m.holds()
        exported: dict[int, dict[int, list[int]]] = {}
        remotes: dict[tuple[int, int], Any] = {}
        for (z, x), via in self.m.up.items():
            if via == zone.id and x.place.id == zone.id:
                exported.setdefault(self.key(x)[1], {})[z] = [1, 0]
            if z == zone.id:
                lent = {b: [1, 0] for (b, y), v in self.m.up.items() if y is x and v == zone.id}
                remotes[self.key(x)] = (via, [True, False], lent, (zone.id, x) in holds)
        held: dict[int, int] = {}
        loans: dict[int, int] = {}
        for holders in exported.values():
            for b in holders:
                held[b] = held.get(b, 0) + 1
        for _, _, lent, _ in remotes.values():
            for b in lent:
                loans[b] = loans.get(b, 0) + 1
        return {
            "exported": exported,
            "remotes": remotes,
            "tallies": (held, loans),
            "counted": (held, loans),
        }

    # ---------------------------------------------------------------- the end

    def teardown(self) -> None:
        try:
            self.do(self.h.unload_app, "a")
            self.do(self.h.unload_app, "b")
            self.do(self.h.unload_app, "foo")
            self.m.registry.clear()
            for x in self.m.things:
                x.held.clear()
                x.gone.clear()
            self.e.held.clear()
            self.m.settle()
            self.until_quiet(self.check)  # C0: nothing held, routed or running
        finally:
            self.close()

    def close(self) -> None:
        logging.getLogger("canopy.runtime").removeHandler(self.log)
        self.m.things.clear()
        for zone in [self.root, *PEERS]:
            if self.loop is not None:
                self.loop.run_until_complete(zone.aclose())
            else:
                zone.close()
        PEERS.clear()
        for process in self.processes:
            if process.process.poll() is None:
                process.stop(1.0)
        if self.loop is not None:
            self.loop.run_until_complete(drain_tasks())
            self.loop.close()


def _read_what_arrived(link: Any) -> None:
    """Have a blocking client's link read what its peer sent meanwhile, as its next call
    would. Such a link reads only while it calls (or while the peer holds something of
    its zone): a dead link's notice to it (TransportDown) waits in the socket until
    then, which the quiet state the checks look at must not count as lost."""
    if not isinstance(link, BlockingStreamLink) or link.closed:
        return
    sock = getattr(link.stream, "_sock", None)
    if sock is None or sock.fileno() < 0:
        return

    def nothing_more() -> bool:
        if sock.fileno() < 0:
            return True
        poll = select.poll()
        poll.register(sock, select.POLLIN)
        return not poll.poll(0)

    link._lead_until(nothing_more, time.monotonic() + 1.0, wake=False)


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def _variant(mode: str, hows: tuple[str, ...], processes: int, examples: int) -> Any:
    """The test of one mode over zones made ``hows``, starting at most ``processes`` child
    processes an example: ``examples`` of them, fixed; or, for a long random run, as many
    as ``CANOPY_MODEL_EXAMPLES`` says (a tenth as many with processes, each slow to start)."""

    class Machine(Routing):
        MODE = mode
        HOWS = hows
        PROCESSES = 3 if EXAMPLES and processes else processes

    Machine.__name__ = Machine.__qualname__ = f"Routing_{mode}_{'_'.join(hows)}"
    if EXAMPLES:
        examples = max(1, EXAMPLES // 10) if processes else EXAMPLES

    Case = Machine.TestCase  # (tests/conftest.py freezes what exists before it: cheap collections)
    Case.settings = settings(
        max_examples=examples,
        stateful_step_count=20,
        derandomize=not EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    return Case


TestInProcessBlocking = _variant("blocking", ("local", "tcp"), 0, 12)
TestInProcessAsyncio = _variant("asyncio", ("local", "tcp"), 0, 12)
TestProcessesBlocking = _variant("blocking", ("local", "tcp", "process"), 1, 2)
TestProcessesAsyncio = _variant("asyncio", ("local", "tcp", "process"), 1, 2)
