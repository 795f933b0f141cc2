"""The routing and lifetime scenarios of SCENARIOS.md over in-process zones, in both modes.

Every scenario ends with end condition C0: once the fixture lets go, no zone of
the tree exports, imports, lends or routes anything (``Tree.close() == {}``).
"Is" means identity: the holder's one proxy for the object, or the object itself
in its owner's zone.
"""

from __future__ import annotations

from typing import Any

import pytest

import canopy
from scenarios import Tree, s

# ------------------------------------------------------------------ 1. subordinate zones


def test_create_subordinate_zone(t: Tree) -> None:
    c = t.do(t.e.create_example_in_subordinate_zone, t.host)
    assert t.do(c.add, 20, 22) == 42  # R calls C through E
    del c


def test_create_subordinate_zone_and_set_in_host(t: Tree) -> None:
    t.do(t.e.create_example_in_subordinate_zone_and_set_in_host, "foo", t.host)
    host_seen_from_e = t.do(t.e.get_host)  # R's own H comes back as itself
    assert host_seen_from_e is t.host
    c = t.do(t.host.look_up_app, "foo")
    t.do(t.host.unload_app, "foo")
    t.do(c.set_host, None)
    assert t.do(c.add, 1, 1) == 2  # the looked-up reference alone keeps C's example alive
    del c, host_seen_from_e


# ------------------------------------------------------------------ 2. and 3. identity


def test_send_interface_back(t: Tree) -> None:
    (z,) = t.chain(t.e, 1)
    b = t.do(z.create_baz)
    out = t.do(t.e.send_interface_back, b)
    assert out is b
    del b, out, z


def test_check_identity(tn: Tree) -> None:
    t = tn
    z3, z4 = t.chain(t.e, 2)
    n = t.new_zone()
    b1 = s.i_baz.__subclasses__()[0]()  # a baz of R's own
    inputs = [b1, t.do(z3.create_baz), t.do(z4.create_baz), t.do(n.create_baz)]
    for value in inputs:
        for echo in (t.e, z3, z4):
            assert t.do(echo.send_interface_back, value) is value
    del inputs, value, echo, b1, z3, z4, n


# ------------------------------------------------------------------ 4. and 5. siblings


def test_two_zones_get_one_to_look_up_the_other(tn: Tree) -> None:
    t = tn
    b = t.new_zone()
    t.do(b.set_host, t.host)
    t.do(t.host.set_app, "domainb", b)
    t.do(t.e.call_host_look_up_app_not_return, "domainb")  # E reaches its sibling through R
    t.do(b.set_host, None)  # breaks the cycle H -> B's example -> H
    t.do(t.host.unload_app, "domainb")
    del b


def test_bounce_baz_between_two_interfaces(tn: Tree) -> None:
    t = tn
    n = t.new_zone()
    f1 = t.do(t.e.create_foo)
    f2 = t.do(n.create_foo)
    b = t.do(f1.create_baz_interface)  # lives in E
    t.do(f2.call_baz_interface, b)  # N calls back into E, 4 bytes and 100,000 bytes echoed
    del b, f1, f2, n


# ------------------------------------------------------------------ 6. to 8. deep trees


def test_deeply_nested_reference_counting_fork(t: Tree) -> None:
    z2, z4, z6 = t.chain(t.e, 3)
    z5 = t.do(z2.create_example_in_subordinate_zone, t.host)
    z7 = t.do(z5.create_example_in_subordinate_zone, t.host)
    z3, z8 = t.chain(t.e, 2)
    b6, b7, b8 = t.do(z6.create_baz), t.do(z7.create_baz), t.do(z8.create_baz)
    assert t.do(z8.send_interface_back, b6) is b6  # Z8 -> Z3 -> E -> Z2 -> Z4 -> Z6
    assert t.do(z8.send_interface_back, b7) is b7
    assert t.do(z6.send_interface_back, b8) is b8
    del z2, z3, z4, z5, z6, z7, z8, b6, b7, b8


def test_unknown_zone_reference_path(t: Tree) -> None:
    _, a2, a3 = t.chain(t.e, 3)
    _, b2, b3 = t.chain(t.e, 3)
    ba, bb = t.do(a3.create_baz), t.do(b3.create_baz)
    assert t.do(b3.send_interface_back, ba) is ba
    assert t.do(a3.send_interface_back, bb) is bb
    assert t.do(b2.send_interface_back, ba) is ba
    assert t.do(a2.send_interface_back, bb) is bb
    del a2, a3, b2, b3, ba, bb


def test_interface_routing_with_out_params(t: Tree) -> None:
    (l2,) = t.chain(t.e, 1)
    l3, l4 = t.chain(l2, 2)
    p = t.do(l2.create_example_in_subordinate_zone, t.host)
    f = t.do(l4.receive_interface)  # an out parameter three hops deep
    assert t.do(f.do_something_in_val, 1) is None
    f = t.do(p.receive_interface)  # the overwrite releases the first foo
    assert f is not None
    b4 = t.do(l4.create_baz)
    t.do(p.give_interface, b4)  # a cousin calls back into L4; the fork is at L2
    t.do(t.e.give_interface, b4)  # E's call goes three levels down
    del l2, l3, l4, p, f, b4


# ------------------------------------------------------------------ 9. the five traps


def _complex_tree(t: Tree) -> dict[str, Any]:
    """SCENARIOS.md section 9's 29 zones; R holds every example."""
    z: dict[str, Any] = {"E": t.e}
    z["C1"], z["C2"], z["C3"] = t.chain(t.e, 3)
    for g in ("1", "2"):
        made = t.chain(z["C3"], 4)
        for i, example in enumerate(made, 1):
            z[f"G{g}{i}"] = example
        for p in ("1", "2"):
            made = t.chain(z[f"G{g}4"], 4)
            for i, example in enumerate(made, 1):
                z[f"P{g}{p}{i}"] = example
    assert len(z) == 28
    return z


def _echoes(t: Tree, z: dict[str, Any], owners: list[str], echoes: list[tuple[str, str]]) -> None:
    bazes = {name: t.do(z[name].create_baz) for name in owners}
    for echo, owner in echoes:
        assert t.do(z[echo].send_interface_back, bazes[owner]) is bazes[owner], (echo, owner)


TRAPS = {
    "cross_branch_routing": (["P114"], [("P224", "P114")]),
    "intermediate_channel_collision": (["P123", "P213"], [("P112", "P213"), ("P212", "P123")]),
    "deep_nesting_parent_fallback": (
        ["P114", "P124", "P214", "P224"],
        [("P114", "P224"), ("P124", "P214"), ("P214", "P124"), ("P224", "P114")],
    ),
    "service_proxy_cache_bypass": (
        ["C3", "G12", "G23", "P112", "P223"],
        [("P112", "C3"), ("C3", "P223"), ("G12", "G23"), ("G23", "P112"), ("P223", "G12")],
    ),
    "multiple_convergence_points": (
        ["C3", "G14", "G24"],
        [("P111", "G24"), ("P211", "G14"), ("P121", "C3"), ("P221", "C3")],
    ),
}


@pytest.mark.parametrize("trap", TRAPS)
def test_complex_topology_trap(t: Tree, trap: str) -> None:
    z = _complex_tree(t)
    _echoes(t, z, *TRAPS[trap])
    z.clear()


# ------------------------------------------------------------------ 10. and 11. the Y


def _y_chain(t: Tree) -> list[Any]:
    return t.chain(t.e, 4)  # Z2 .. Z5


def test_y_topology_returns_a_new_prong_object(t: Tree) -> None:
    _, z3, _, z5 = _y_chain(t)
    z7 = t.do(z5.create_fork_and_return_object, z3, [6, 7])
    assert z7 is not None
    del z3  # R never saw Z6 or Z7, and no longer holds Z3
    t.settle()
    assert t.do(z7.add, 1, 2) == 3  # Z6 stays up as a routing hop while R holds Z7
    del z5, z7


def test_y_topology_caches_then_retrieves_a_prong_object(t: Tree) -> None:
    _, z3, _, z5 = _y_chain(t)
    t.do(z5.create_y_topology_fork, z3, [6, 7])
    z7 = t.do(z5.retrieve_cached_autonomous_object)
    assert z7 is not None
    assert t.do(z7.add, 2, 2) == 4
    # The registry variant: Z5 stores its Z7 in H, R looks it up, then clears it.
    t.do(z5.give_host_cached_object)
    assert t.do(t.host.look_up_app, "foo") is z7  # the same object by another route
    t.do(t.host.set_app, "foo", None)
    t.do(z5.create_y_topology_fork, z3, [])  # Z5 lets its Z7 go
    assert t.do(z7.add, 3, 3) == 6  # R's reference alone keeps it
    del z3, z5, z7


# ------------------------------------------------------------------ 15. to 18. optimistic, posts


def test_an_optimistic_reference_to_a_routed_object_learns_it_is_gone(t: Tree) -> None:
    (z,) = t.chain(t.e, 1)
    foo = t.do(z.create_foo)
    watcher = t.do(t.e.create_example_in_subordinate_zone, t.host)
    # E's other child keeps an optimistic reference to Z's foo, lent through E.
    t.do(watcher.set_optimistic_ptr, foo)  # the parameter's type makes it optimistic
    assert t.do(t.do(watcher.get_optimistic_ptr).do_something_in_val, 1) is None
    kept = t.do(watcher.get_optimistic_ptr)  # R's own optimistic reference, through E
    del foo  # the last shared reference: the foo dies, its optimistic holders are told
    t.settle()
    with pytest.raises(canopy.ObjectGone):
        t.do(kept.do_something_in_val, 2)
    with pytest.raises(canopy.ObjectGone):  # a dead object's reference cannot be passed on
        t.do(watcher.get_optimistic_ptr)
    t.do(watcher.set_optimistic_ptr, None)
    del kept, watcher, z


def test_posts_through_two_hops_arrive_in_order(t: Tree) -> None:
    z2, z3 = t.chain(t.e, 2)
    foo = t.do(z3.create_foo)
    t.do(foo.clear_recorded_messages)
    for i in range(0, 150, 3):
        t.do(foo.record_message, i)
    t.settle()
    assert t.do(foo.get_recorded_messages) == list(range(0, 150, 3))
    del foo, z2, z3


# ------------------------------------------------------------------ lifetime under failure


def _zone(t: Tree, proxy: Any) -> Any:
    """The in-process zone that owns ``proxy``'s object."""
    owner = proxy._canopy_remote.zone
    return next(z for z in t.zones() if z.id == owner)


def test_a_lost_link_ends_what_was_reached_and_lent_through_it(t: Tree) -> None:
    (z,) = t.chain(t.e, 1)
    b = t.do(z.create_baz)  # R holds Z's baz through E; Z holds R's host through E
    e_zone, z_zone = _zone(t, t.e), _zone(t, z)
    assert t.do(b.callback, 1) is None
    e_zone.links[z_zone.id].close()  # the link between E and Z dies
    t.settle()
    with pytest.raises(canopy.ObjectGone):  # R learnt that Z is unreachable
        t.do(b.callback, 2)
    with pytest.raises(canopy.ObjectGone):
        t.do(z.add, 1, 2)
    assert t.do(t.e.add, 1, 2) == 3  # what does not go through the dead link still works
    assert z_zone.exported() == {} and z_zone.imported() == []  # Z let go of H and its baz
    # E holds R's host for its own example, lends it to nobody, and holds nothing of Z's.
    assert [zone for zone, _ in e_zone.imported()] == [t.root.id]
    assert all(not r.lent for r in e_zone.tables.remotes.values())
    del b, z


def test_a_lost_link_destroys_objects_whose_last_holders_were_behind_it(t: Tree) -> None:
    (z,) = t.chain(t.e, 1)
    foo = t.do(t.e.create_foo)
    t.do(z.set_optimistic_ptr, foo)  # Z holds E's foo optimistically only
    kept = t.do(z.get_optimistic_ptr)
    del foo  # R's shared reference goes: the foo dies, Z and R are told
    t.settle()
    with pytest.raises(canopy.ObjectGone):
        t.do(kept.do_something_in_val, 1)
    e_zone, z_zone = _zone(t, t.e), _zone(t, z)
    held = t.do(t.e.create_foo)
    t.do(z.set_optimistic_ptr, held)
    e_zone.links[z_zone.id].close()
    t.settle()
    assert t.do(held.do_something_in_val, 2) is None  # R's shared reference keeps it
    assert e_zone.exported() and all(z_zone.id not in h for h in e_zone.exported().values())
    del held, kept, z
