"""The routing and lifetime scenarios of SCENARIOS.md over trees that mix in-process
child zones, child processes and TCP links (tests/mixed.py), in both modes.

Each plan names how each level below R is made: ``tcp-local-process`` is
``R --tcp-- E --local-- Z2 --process-- Z3``, and every zone below Z3 lives in Z3's
process. Each test ends with end condition C0 as far as this process can see it:
no zone of this process exports, imports or lends anything, and every child
process has exited once nothing referenced it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

import canopy
from mixed import MixedTree

MODES = ("blocking", "asyncio")
PLANS = {
    "tcp-local-process": ("tcp", "local", "process"),
    "process-tcp-local": ("process", "tcp", "local"),
}


def _tree(request: pytest.FixtureRequest, mode: str, plan: tuple[str, ...]) -> Iterator[MixedTree]:
    tree = MixedTree(mode, plan)
    yield tree
    left = tree.close()
    if request.node.get_closest_marker("xfail") is None:  # what an expected failure leaves
        assert left == {}, "references, routes or processes left behind"


@pytest.fixture(params=[(m, p) for p in PLANS for m in MODES], ids=lambda p: f"{p[1]}-{p[0]}")
def every(request: pytest.FixtureRequest) -> Iterator[MixedTree]:
    """Every plan of ``PLANS``, in both modes."""
    mode, plan = request.param
    yield from _tree(request, mode, PLANS[plan])


@pytest.fixture(params=MODES)
def t(request: pytest.FixtureRequest) -> Iterator[MixedTree]:
    """The first plan of ``PLANS``, in both modes (processes are slow to start)."""
    yield from _tree(request, request.param, PLANS["tcp-local-process"])


@pytest.fixture(params=MODES)
def lpl(request: pytest.FixtureRequest) -> Iterator[MixedTree]:
    """R --local-- E --process-- Z2 --local-- Z3."""
    yield from _tree(request, request.param, ("local", "process", "local"))


# ------------------------------------------------------------------ a child process's lifetime


def test_a_child_process_reached_only_through_a_loan_ends_with_it(lpl: MixedTree) -> None:
    t = lpl
    z2 = t.do(t.e.create_example_in_subordinate_zone, None)  # E lends R Z2's example
    assert t.do(z2.add, 1, 2) == 3
    (child,) = t.children()
    del z2  # E's only use of the link to Z2's process was the loan
    t.settle()
    assert _until(t, lambda: child.process.poll() is not None), "Z2's process still runs"


def test_a_child_process_stays_while_a_zone_behind_it_is_held(lpl: MixedTree) -> None:
    t = lpl
    z2 = t.do(t.e.create_example_in_subordinate_zone, None)
    z3 = t.do(z2.create_example_in_subordinate_zone, None)  # lives in Z2's process
    del z2  # nothing of Z2 itself is held any more; Z3's example is, through Z2
    t.settle()
    assert t.do(z3.add, 2, 3) == 5
    del z3


@pytest.fixture(params=MODES)
def lt(request: pytest.FixtureRequest) -> Iterator[MixedTree]:
    """R --local-- E --tcp-- (peers of this process)."""
    yield from _tree(request, request.param, ("local", "tcp"))


def test_a_cast_passed_on_over_a_tcp_link_is_answered(lt: MixedTree) -> None:
    t = lt
    x = t.do(t.e.create_example_in_subordinate_zone, None)
    y = t.do(t.e.create_example_in_subordinate_zone, None)
    b = t.do(x.create_baz)
    t.do(y.give_interface, b)  # Y casts X's baz through E: E passes the TryCast on
    del x, y, b


# ------------------------------------------------------------------ the scenarios


def test_send_interface_back(every: MixedTree) -> None:
    t = every
    z2, z3 = t.chain(t.e, 2)
    b = t.do(z3.create_baz)
    assert t.do(t.e.send_interface_back, b) is b
    assert t.do(z2.send_interface_back, b) is b
    assert t.do(z3.send_interface_back, b) is b
    assert t.do(b.blob_test, b"\x00" * 100_000) == b"\x00" * 100_000
    del b, z2, z3


def test_unknown_zone_reference_path(every: MixedTree) -> None:
    t = every
    _, a2, a3 = t.chain(t.e, 3)
    _, b2, b3 = t.chain(t.e, 3)
    ba, bb = t.do(a3.create_baz), t.do(b3.create_baz)
    assert t.do(b3.send_interface_back, ba) is ba
    assert t.do(a3.send_interface_back, bb) is bb
    assert t.do(b2.send_interface_back, ba) is ba
    assert t.do(a2.send_interface_back, bb) is bb
    del a2, a3, b2, b3, ba, bb


def test_interface_routing_with_out_params(t: MixedTree) -> None:
    (l2,) = t.chain(t.e, 1)
    l3, l4 = t.chain(l2, 2)
    p = t.do(l2.create_example_in_subordinate_zone, t.host)
    f = t.do(l4.receive_interface)
    assert t.do(f.do_something_in_val, 1) is None
    f = t.do(p.receive_interface)
    assert f is not None
    b4 = t.do(l4.create_baz)
    t.do(p.give_interface, b4)  # a cousin calls back into L4
    t.do(t.e.give_interface, b4)
    del l2, l3, l4, p, f, b4


def test_y_topology_returns_and_caches_a_new_prong_object(t: MixedTree) -> None:
    _, z3, _, z5 = t.chain(t.e, 4)
    z7 = t.do(z5.create_fork_and_return_object, z3, [6, 7])
    assert t.do(z7.add, 1, 2) == 3
    t.do(z5.create_y_topology_fork, z3, [6, 7])
    cached = t.do(z5.retrieve_cached_autonomous_object)
    t.do(z5.give_host_cached_object)
    assert t.do(t.host.look_up_app, "foo") is cached  # the same object by another route
    t.do(t.host.set_app, "foo", None)
    t.do(z5.create_y_topology_fork, z3, [])  # Z5 lets its Z7 go: R's reference keeps it
    del z3
    t.settle()
    assert t.do(cached.add, 3, 3) == 6
    del z5, z7, cached


def test_two_zones_get_one_to_look_up_the_other(t: MixedTree) -> None:
    # The registry hands E and Z2 a reference to Z3's example that R borrowed from E.
    z2, z3 = t.chain(t.e, 2)
    t.do(t.host.set_app, "domainb", z3)
    t.do(t.e.call_host_look_up_app_not_return, "domainb")
    t.do(z2.call_host_look_up_app_not_return, "domainb")
    t.do(t.host.unload_app, "domainb")
    del z2, z3


# ------------------------------------------------------------------ lifetime under failure


def test_a_killed_child_process_ends_what_was_reached_through_it(t: MixedTree) -> None:
    z2, z3 = t.chain(t.e, 2)
    deep = t.do(z3.create_example_in_subordinate_zone, t.host)  # in the process, if any
    b = t.do(deep.create_baz)
    assert t.do(b.callback, 1) is None
    (child,) = t.children()  # Z3's, started by Z2
    os.kill(child.pid, signal.SIGKILL)  # ours: started by a zone of this process
    started = time.monotonic()
    with pytest.raises((canopy.ObjectGone, canopy.CallCancelled, canopy.TransportError)):
        t.do(b.callback, 2)
    assert time.monotonic() - started < 5
    t.settle()
    with pytest.raises(canopy.ObjectGone):
        t.do(deep.add, 1, 2)
    assert t.do(z2.add, 1, 2) == 3  # what does not go through the dead link still works
    del b, deep, z2, z3


def test_a_killed_child_process_is_noticed_with_no_call_under_way() -> None:
    # A blocking link reads only while the child holds something here (here it holds
    # nothing): the child's exit ends the link all the same, and the routes through it.
    t = MixedTree("blocking", ("local", "process"))
    try:
        z2 = t.do(t.e.create_example_in_subordinate_zone, None)  # R holds it through E
        remote = z2._canopy_remote
        (child,) = t.children()
        os.kill(child.pid, signal.SIGKILL)
        assert _until(t, lambda: remote.gone), "R still routes into a dead process"
        (e,) = (z for z in t.zones() if z.name == "E")
        assert [r for r in e.imported() if r[0] == remote.zone] == [], "E lends what is gone"
        with pytest.raises(canopy.ObjectGone):
            t.do(z2.add, 1, 2)
        del z2
    finally:
        assert t.close() == {}


def _until(t: MixedTree, condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        t.pause(0.02)
    return True
