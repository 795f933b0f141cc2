"""SCENARIOS.md 15 to 18: optimistic references and the news that their object is gone
(``canopy.on_gone``), and ``[post]`` ordering, hand-built posts included; in both modes,
over in-process zones and (15 and 18) over a TCP link to a peer zone.

Every scenario ends with end condition C0: once the fixture lets go, no zone
exports, imports, lends or routes anything. R makes an optimistic reference the only
way the Python port makes one, as a parameter: ``e.set_optimistic_ptr(f)`` then
``e.get_optimistic_ptr()`` (E also keeps one then), or ``e.get_optimistic_baz(b)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

import canopy
from canopy.runtime._watch import NOTICES
from canopy.wire import Call, Encoding, Post, Reply
from canopy.wire._messages import wrap_payload
from mixed import MixedTree
from scenarios import MODES, Foo, Tree, s

WAIT = 5.0  # seconds a notice may take to arrive, at most


@pytest.fixture(params=MODES)
def peer(request: pytest.FixtureRequest) -> Iterator[MixedTree]:
    """R --tcp-- E: E is a peer zone of this process, linked over TCP on loopback."""
    tree = MixedTree(request.param, ("tcp",))
    yield tree
    assert tree.close() == {}, "references or routes left behind"


class Gone:
    """An ``on_gone`` callback that, inside the event, calls through the gone reference
    (SCENARIOS.md 15, step 5) and keeps what that call raised. ``async def``: it runs
    unchanged in both modes, as the scenarios' implementations do."""

    def __init__(self) -> None:
        self.told = threading.Event()
        self.seen: list[Any] = []
        self.raised: BaseException | None = None

    async def __call__(self, ref: Any) -> None:
        self.seen.append(ref)
        try:
            result = ref.callback(43) if hasattr(ref, "callback") else ref.do_something_in_val(43)
            await result
        except canopy.CanopyError as e:
            self.raised = e
        finally:
            self.told.set()

    def wait(self, t: Tree) -> bool:
        """Whether the callback ran within ``WAIT`` seconds (the loop running meanwhile)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            t.settle()
            if self.told.wait(0.01):
                return _notices_done()
        return False


def _notices_done() -> bool:
    """Whether the blocking notice thread has finished what it runs (and so let go of
    the reference it passed its callback) within ``WAIT`` seconds."""
    done = threading.Event()
    NOTICES.put(done.set)  # in order: after every callback scheduled before it
    return done.wait(WAIT)


def _object_gone(error: BaseException | None) -> bool:
    return isinstance(error, canopy.ObjectGone) and error.code == canopy.ErrorCode.OBJECT_GONE


def _optimistic(t: Tree, holder: Any, foo: Any) -> Any:
    """R's optimistic reference to ``foo``, by way of ``holder``, which keeps one too."""
    t.do(holder.set_optimistic_ptr, foo)
    return t.do(holder.get_optimistic_ptr)


# ------------------------------------------------------------------ 15. object gone


def _object_gone_test(t: Tree, e: Any) -> None:
    f = t.do(e.create_foo)
    b = t.do(f.create_baz_interface)
    ob = t.do(e.get_optimistic_baz, b)
    assert ob is not b and ob._canopy_remote is b._canopy_remote  # the same object, weakly
    assert t.do(ob.callback, 42) is None
    gone = Gone()
    t.do(canopy.on_gone, ob, gone)
    assert not gone.told.is_set()
    del b  # B's last shared reference: E destroys it and tells R, an optimistic holder
    del f
    assert gone.wait(t), "R was not told that B is gone"
    assert gone.seen == [ob]
    assert _object_gone(gone.raised), gone.raised  # step 5: the call inside the event
    assert ob is not None
    with pytest.raises(canopy.ObjectGone):
        t.do(ob.callback, 44)
    gone.seen.clear()
    del ob


def test_optimistic_ptr_object_gone(t: Tree) -> None:
    _object_gone_test(t, t.e)


def test_optimistic_ptr_object_gone_in_a_new_zone(tn: Tree) -> None:
    _object_gone_test(tn, tn.new_zone())


def test_optimistic_ptr_object_gone_over_tcp(peer: MixedTree) -> None:
    _object_gone_test(peer, peer.e)


def test_optimistic_ptr_get_returns_object_gone_when_shared_released(t: Tree) -> None:
    f = t.do(t.e.create_foo)
    of = _optimistic(t, t.e, f)  # E now keeps an optimistic reference to its own foo
    assert t.do(of.do_something_in_val, 1) is None
    gone = Gone()
    t.do(canopy.on_gone, of, gone)
    del f
    assert gone.wait(t), "R was not told that F is gone: E's own reference kept it alive"
    with pytest.raises(canopy.ObjectGone) as caught:
        t.do(of.do_something_in_val, 42)
    assert caught.value.code == canopy.ErrorCode.OBJECT_GONE
    with pytest.raises(canopy.ObjectGone) as caught:  # nor sent home to its owner
        t.do(t.e.set_optimistic_ptr, of)
    assert caught.value.code == canopy.ErrorCode.OBJECT_GONE
    gone.seen.clear()
    del of
    # An optimistic reference to a dead object cannot be marshalled: the call fails
    # (no out value comes back), and E's handle is still there to be cleared.
    with pytest.raises(canopy.ObjectGone) as caught:
        t.do(t.e.get_optimistic_ptr)
    assert caught.value.code == canopy.ErrorCode.OBJECT_GONE
    assert t.do(t.e.set_optimistic_ptr, None) is None


def test_an_optimistic_reference_in_its_own_zone_is_weak(t: Tree) -> None:
    """The local variant: R's own foo, handed to E and back as an optimistic reference."""
    foo = Foo(t.root)
    of = _optimistic(t, t.e, foo)
    assert of is not foo and isinstance(of, s.i_foo)
    assert t.do(t.e.get_optimistic_ptr) is of  # identity, as for proxies
    assert t.do(of.do_something_in_val, 1) is None  # straight to the object
    gone = Gone()
    t.do(canopy.on_gone, of, gone)
    del foo  # the only strong reference
    assert gone.wait(t), "the local object's end was not told"
    assert _object_gone(gone.raised), gone.raised
    with pytest.raises(canopy.ObjectGone):
        t.do(of.do_something_in_val, 2)
    with pytest.raises(canopy.ObjectGone):  # E's optimistic proxy learnt it too
        t.do(t.e.get_optimistic_ptr)
    t.do(t.e.set_optimistic_ptr, None)
    gone.seen.clear()
    del of


def test_an_optimistic_reference_in_its_own_zone_casts(t: Tree) -> None:
    baz = s.i_baz.__subclasses__()[0]()  # a baz of R's own, which is an i_bar too
    ob = t.do(t.e.get_optimistic_baz, baz)
    cast = canopy.acast if t.loop is not None else canopy.cast
    bar = t.do(cast, ob, s.i_bar)
    assert isinstance(bar, s.i_bar) and bar is not baz
    assert t.do(cast, ob, s.i_bar) is bar
    assert t.do(bar.do_something_else, 1) is None
    with pytest.raises(canopy.InvalidCast):
        t.do(cast, ob, s.i_foo)
    del baz
    t.settle()  # E's shared reference to it, the argument, is given back
    with pytest.raises(canopy.ObjectGone):
        t.do(cast, ob, s.i_bar)
    with pytest.raises(canopy.ObjectGone):
        t.do(bar.do_something_else, 2)
    del ob, bar


# ------------------------------------------------------------------ 16. circular dependency


def test_optimistic_ptr_circular_dependency(t: Tree) -> None:
    owner = t.do(t.e.create_foo)
    child = t.do(owner.create_baz_interface)  # R keeps the child strongly
    o_owner = _optimistic(t, t.e, owner)  # the child's back-pointer, played by R
    gone = Gone()
    t.do(canopy.on_gone, o_owner, gone)
    del owner  # the only shared reference: optimistic ones keep nothing alive
    assert gone.wait(t), "the owner's end was not told"
    assert gone.seen == [o_owner] and o_owner is not None
    assert _object_gone(gone.raised), gone.raised
    assert t.do(child.callback, 1) is None  # the child is unaffected
    assert t.do(child.blob_test, b"abc") == b"abc"
    t.do(t.e.set_optimistic_ptr, None)
    gone.seen.clear()
    del child, o_owner


# ------------------------------------------------------------------ 17. posts, optimistic


@pytest.mark.parametrize("where", ["E", "R"])
def test_post_with_optimistic_ptr(t: Tree, where: str) -> None:
    f = t.do(t.e.create_foo) if where == "E" else Foo(t.root)  # R: the in-memory setup
    of = _optimistic(t, t.e, f)  # R keeps F strongly
    assert t.do(of.clear_recorded_messages) is None
    for i in range(10):
        assert t.do(of.record_message, i) is None  # at once: no reply is awaited
    t.settle()
    assert t.do(of.get_recorded_messages) == list(range(10))
    t.do(of.clear_recorded_messages)
    assert t.do(of.get_recorded_messages) == []
    sent = list(range(0, 150, 3))
    for i in sent:
        t.do(of.record_message, i)
    t.settle()
    assert t.do(of.get_recorded_messages) == sent
    t.do(t.e.set_optimistic_ptr, None)
    del f, of


# ------------------------------------------------------------------ 18. posts, hand-built


def _zone_of(t: Tree, proxy: Any) -> Any:
    owner = proxy._canopy_remote.zone
    return next(z for z in t.zones() if z.id == owner)


def _hand_built_call(f: Any, interface: int, method: int, tag: int, args: bytes) -> Any:
    """A request/reply call built by hand, with no plan: the reply as it came (awaitable
    in asyncio mode)."""
    zone, remote = f._canopy_zone, f._canopy_remote
    link = remote.link
    call_id = link.next_id(lambda reply: reply)
    payload = wrap_payload(Encoding.JSON, args)
    target = (zone.id, remote.zone, remote.object_id, interface, method)
    link.send(Call(call_id, *target, Encoding.JSON, payload, tag))
    if zone.mode.name == "asyncio":
        return link.wait_async(call_id, WAIT)
    return link.wait(call_id, WAIT)


def _hand_built_post(f: Any, interface: int, method: int, tag: int, args: bytes) -> None:
    zone, remote = f._canopy_zone, f._canopy_remote
    payload = wrap_payload(Encoding.JSON, args)
    target = (zone.id, remote.zone, remote.object_id, interface, method)
    remote.link.send(Post(*target, Encoding.JSON, payload, tag))


def _post_ordering_test(t: Tree) -> None:
    f = t.do(t.e.create_foo)
    served: list[tuple[str, int, bool]] = []
    _zone_of(t, f).intercept(lambda seen: served.append((seen.method, seen.tag, seen.post)))
    describe = canopy.adescribe if t.loop is not None else canopy.describe
    interface, method = t.do(describe, f).method("i_foo.record_message")
    assert method.post and not method.deprecated and method.tag == 7  # step 2
    arguments = msgspec.json.encode({"message_id": 1234})
    reply: Reply = t.do(_hand_built_call, f, interface.id, method.id, method.tag, arguments)
    assert reply.code == canopy.ErrorCode.INVALID_METHOD_ID, reply  # a post refuses a call
    assert "is a post" in reply.message
    t.do(f.clear_recorded_messages)
    dynamic = t.do(canopy.adynamic if t.loop is not None else canopy.dynamic, f)
    t.do(_hand_built_post, f, interface.id, method.id, method.tag, arguments)  # step 5
    t.settle()
    assert t.do(f.get_recorded_messages) == [1234]
    t.do(f.clear_recorded_messages)
    call = dynamic.acall if t.loop is not None else dynamic.call
    assert t.do(call, "i_foo.record_message", {"message_id": 5}) is None  # posted
    t.settle()
    assert t.do(f.get_recorded_messages) == [5]
    posts = [x for x in served if x[0] == "scenarios::i_foo::record_message"]
    assert posts == [("scenarios::i_foo::record_message", 7, True)] * 2  # the tag came too
    t.do(f.clear_recorded_messages)
    for i in range(10):
        t.do(f.record_message, i)
    t.settle()
    assert t.do(f.get_recorded_messages) == list(range(10))  # step 6
    t.do(f.clear_recorded_messages)
    assert t.do(f.get_recorded_messages) == []  # step 7
    sent = list(range(0, 200, 2))
    for i in sent:
        t.do(f.record_message, i)
    t.settle()
    assert t.do(f.get_recorded_messages) == sent  # step 8: in order, none lost or doubled
    dynamic.close()
    del f, dynamic


def test_post_with_shared_ptr(t: Tree) -> None:
    _post_ordering_test(t)


def test_post_with_shared_ptr_over_tcp(peer: MixedTree) -> None:
    _post_ordering_test(peer)


# ------------------------------------------------------------------ on_gone itself


def test_on_gone_when_the_link_dies(t: Tree) -> None:
    """A shared reference's object ends for its holder when the link it came by dies."""
    (z,) = t.chain(t.e, 1)
    b = t.do(z.create_baz)
    gone = Gone()
    t.do(canopy.on_gone, b, gone)
    _zone_of(t, t.e).links[_zone_of(t, z).id].close()  # E -- Z dies: R is told
    assert gone.wait(t)
    assert gone.seen == [b] and _object_gone(gone.raised)
    gone.seen.clear()
    del b, z


def test_on_gone_is_told_at_once_once_cancelled_never(t: Tree) -> None:
    f = t.do(t.e.create_foo)
    of = _optimistic(t, t.e, f)
    calls: list[str] = []
    cancel = t.do(canopy.on_gone, of, lambda ref: calls.append("cancelled"))
    t.do(canopy.on_gone, of, lambda ref: calls.append("first"))
    assert t.do(cancel) is None
    del f
    t.settle()
    late = Gone()
    t.do(canopy.on_gone, of, late)  # already gone: told at once
    assert late.wait(t)
    assert calls == ["first"]  # before the late one: the notices keep their order
    t.do(t.e.set_optimistic_ptr, None)
    late.seen.clear()
    del of


def test_on_gone_wants_a_reference_and_an_asyncio_zone_its_loop(t: Tree) -> None:
    with pytest.raises(TypeError, match="not a Canopy reference"):
        canopy.on_gone(Foo(t.root), print)
    if t.loop is not None:  # called here, off the loop: where would the callback run?
        with pytest.raises(RuntimeError, match="on the event loop"):
            canopy.on_gone(t.e, print)
