"""The behaviour suite: calls, posts, casts, identity, lifetime and errors, in both modes,
over every transport (a child zone, a plugin, child processes, shared memory, and
peer zones over every stack of stream layers).

Every test ends with every zone's tables empty and every count balanced: the
``h`` fixture drops the root and fails the test if anything is still held.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

import canopy
from behaviour import (
    BLOCKING_ONLY,
    COMBINATIONS,
    MODES,
    UVLOOP_TRANSPORTS,
    Gadget,
    Harness,
    Listener,
    Widget,
    b,
)
from behaviour import TestService as Service
from canopy.runtime import close
from canopy.runtime._plans import plan

# Starting a child process costs about a second, and its link is the stream link every
# socket transport runs the whole suite over, on a socketpair or the shared-memory
# stream that "shm" runs it over: a slice runs over child processes, and all of it
# with CANOPY_FULL_MATRIX=1 in the environment.
FULL = os.environ.get("CANOPY_FULL_MATRIX") == "1"
CHILD_SLICE = {
    "test_in_out_and_several_outs",
    "test_callbacks_reach_the_caller",
    "test_a_shared_reference_keeps_the_object_alive",
}


@pytest.fixture(
    params=[
        *(
            (m, t, e)
            for m in MODES
            for t, e in COMBINATIONS
            if m == "blocking" or e not in BLOCKING_ONLY
        ),
        *(("uvloop", t, "binary") for t in UVLOOP_TRANSPORTS),
    ],
    ids=lambda p: "-".join(p),
)
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    mode, transport, encoding = request.param
    if mode == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop is optional; the dev extras install it")
    if transport.startswith("child") and not FULL and request.function.__name__ not in CHILD_SLICE:
        pytest.skip("a child process is a socket link (see unix): a representative slice runs")
    harness = Harness(mode, transport=transport, encoding=encoding)
    yield harness
    assert harness.close() == {}, "references or objects left behind"


def matrix(**changes: Any) -> Any:
    values: dict[str, Any] = {
        "flag": True,
        "i8": -128,
        "u8": 255,
        "i16": -32768,
        "u16": 65535,
        "i32": -(2**31),
        "u32": 2**32 - 1,
        "i64": -(2**63),
        "u64": 2**64 - 1,
        "f": 1.5,
        "d": -2.25e300,
        "text": "zoë ∑ 🌳",
        "raw": bytes(range(256)),
        "ints": [],
        "nested": [[], ["a", ""], ["b"]],
        "points": {"origin": b.point(), "p": b.point(x=3, y=-4)},
        "ids": {1, -5, 2**62},
        "triple": [1, -2, 3],
        "maybe": None,
        "nullable_point": None,
        "choice": canopy.generated.Alt1(2**40),
        "shade": b.colour.blue,
    }
    values.update(changes)
    return b.matrix(**values)


@pytest.mark.parametrize(
    "value",
    [
        matrix(),
        matrix(maybe="present", nullable_point=b.point(x=1), choice=canopy.generated.Alt0(7)),
        matrix(choice=canopy.generated.Alt2("text"), ints=[0, 2**31 - 1], raw=b""),
    ],
    ids=["limits", "present", "string-variant"],
)
def test_every_type_round_trips(h: Harness, value: Any) -> None:
    assert h.do(h.root.echo, value) == value


def test_floats_nan_and_infinity(h: Harness) -> None:
    back = h.do(h.root.echo, matrix(f=math.inf, d=math.nan))
    assert back.f == math.inf and math.isnan(back.d)


def test_out_of_range_is_refused_before_sending(h: Harness) -> None:
    with pytest.raises(canopy.InvalidData, match="u8"):
        h.do(h.root.echo, matrix(u8=256))
    assert h.do(h.root.add, 1, 1) == 2


def test_in_out_and_several_outs(h: Harness) -> None:
    assert h.do(h.root.add, 2, 3) == 5
    assert h.do(h.root.add, a=-2, b=3) == 1
    assert h.do(h.root.swap, "left", "right") == ("right", "left")
    result = h.do(h.root.divmod, 17, 5)
    assert result == (3, 2)
    assert (result.quotient, result.remainder) == (3, 2)


@pytest.mark.parametrize("count", [10, 1000])
def test_posts_arrive_in_order(h: Harness, count: int) -> None:
    for i in range(count):
        assert h.do(h.root.record, f"v{i}", i) is None
    h.settle()
    assert h.do(h.root.recorded) == [f"{i}:v{i}" for i in range(count)]


def test_a_post_sent_as_a_call_is_refused(h: Harness) -> None:
    p = plan(b.i_test).by_name["record"]
    zone = h.zone

    def send() -> Any:
        link, call_id, _ = zone.begin_call(h.root, p, ("x", 1), {})
        return link.wait(call_id) if h.loop is None else link.wait_async(call_id)

    with pytest.raises(canopy.InvalidMethodId) as caught:
        h.do(send)
    assert caught.value.code == canopy.ErrorCode.INVALID_METHOD_ID
    assert str(caught.value) == "behaviour::i_test::record is a post"
    assert h.do(h.root.recorded) == []


def test_cast_to_another_interface_of_the_object(h: Harness) -> None:
    widget = h.do(h.root.make_gadget)
    assert h.do(widget.name) == "gadget"
    gadget = h.cast(widget, b.i_gadget)
    assert isinstance(gadget, b.i_gadget)
    assert h.do(gadget.serial) == 42
    assert h.cast(widget, b.i_gadget) is gadget


def test_a_failed_cast_is_a_clear_error(h: Harness) -> None:
    widget = h.do(h.root.make_widget, "plain")
    with pytest.raises(canopy.InvalidCast, match="does not implement behaviour::i_gadget"):
        h.cast(widget, b.i_gadget)
    assert h.do(widget.name) == "plain"


def test_identity(h: Harness) -> None:
    first = h.do(h.root.kept_widget)
    assert h.do(h.root.kept_widget) is first
    assert h.do(h.root.echo_back, first) is first
    local = Widget("mine")
    assert h.do(h.root.echo_back, local) is local  # back where it came from: the object itself
    h.do(h.root.drop)


def test_null_references(h: Harness) -> None:
    assert h.do(h.root.widget_name, None) == "none"
    assert h.do(h.root.echo_back, None) is None


def test_references_inside_structs_and_containers(h: Harness) -> None:
    mine = [Widget("first"), Widget("second")]
    value = b.holder(widget=mine[0], spares=[mine[1], mine[0]], count=2)
    assert h.do(h.root.names, value) == ["first", "second", "first"]
    given = h.do(h.root.give, 2)
    assert given.count == 2
    assert [h.do(w.name) for w in [given.widget, *given.spares]] == ["given", "spare0", "spare1"]
    del given, value, mine


def test_callbacks_reach_the_caller(h: Harness) -> None:
    mine = Widget("client side")
    assert h.do(h.root.widget_name, mine) == "client side"
    listener = Listener()
    h.do(h.root.listen, listener, 25)
    h.settle()
    assert listener.messages == [(f"m{i}", i) for i in range(25)]
    assert listener.finished == 25


def test_a_shared_reference_keeps_the_object_alive(h: Harness) -> None:
    mine = Widget("kept by the server")
    h.do(h.root.keep, mine)
    del mine
    h.settle()
    [(_, holders)] = h.zone.exported().items()  # alive: the service holds it
    assert list(holders.values()) == [[1, 0]]
    h.do(h.root.drop)
    h.settle()
    assert h.zone.exported() == {}  # released and gone


def test_an_optimistic_proxy_fails_cleanly_once_the_object_is_gone(h: Harness) -> None:
    peeked = h.do(h.root.peek)
    assert h.do(peeked.name) == "peeked"
    h.do(h.root.drop)  # the server lets go of the only owner
    h.settle()
    with pytest.raises(canopy.ObjectGone):
        h.do(peeked.name)


def test_an_implementation_knows_its_caller(h: Harness) -> None:
    zone, method, address = h.do(h.root.who)
    assert (zone, method) == (h.zone.id, "behaviour::i_test::who")
    # TCP clients have an address; a Unix client socket has no name, a zone of this
    # process (a child zone, a plugin) no socket, a child process a socketpair, shared
    # memory none.
    no_address = ("local", "plugin", "child", "child-shm", "shm", "shm+tls", "unix", "unix+tls")
    assert bool(address) == (h.transport not in no_address)
    with pytest.raises(RuntimeError, match="only known inside a call"):
        canopy.caller()


def test_an_idle_caller_learns_that_the_object_died_meanwhile(h: Harness) -> None:
    peeked = h.do(h.root.peek)
    assert h.do(peeked.name) == "peeked"
    service_zone = h.service_zone()
    [service] = [
        s.target
        for s in service_zone.tables.stubs.values()
        if s.target is not None and hasattr(s.target, "peeked")
    ]
    with service_zone.inside():
        service.drop()  # the object dies on the service's own account, not in a call
    del service
    h.pause(0.05)  # no settle: a blocking caller reads nothing until it calls
    with pytest.raises(canopy.ObjectGone, match="no longer exists"):
        h.do(peeked.name)


def test_an_optimistic_reference_does_not_keep_the_object_alive(h: Harness) -> None:
    mine = Widget("watched")
    h.do(h.root.watch, mine)
    assert h.do(h.root.watched_name) == "watched"
    del mine
    h.settle()
    with pytest.raises(canopy.ObjectGone):
        h.do(h.root.watched_name)


def test_application_errors_arrive_typed(h: Harness) -> None:
    with pytest.raises(b.calc_error) as caught:
        h.do(h.root.checked_divide, 7, 0)
    assert isinstance(caught.value, b.calc_error.DIVIDE_BY_ZERO)
    assert caught.value.code == 2
    assert str(caught.value) == "cannot divide 7 by zero"
    assert h.do(h.root.checked_divide, 7, 2) == 3


@pytest.mark.parametrize("transport", ["local", "tcp"])
def test_a_failed_call_holds_nothing_in_a_reference_cycle(transport: str) -> None:
    """The error of a blocking call must not hold the frames it passed through (and what
    they hold: the caller's arguments and locals) in a cycle, alive until the cyclic
    collector runs; the last reference to an object would go only then."""
    h = Harness("blocking", transport=transport)

    def divide(widget: Widget) -> None:
        with contextlib.suppress(b.calc_error):
            h.root.checked_divide(7, 0)

    widget = Widget("held by the caller")
    alive = weakref.ref(widget)
    gc.disable()
    try:
        divide(widget)
        del widget
        assert alive() is None, "the error keeps the caller's frame alive"
    finally:
        gc.enable()
    assert h.close() == {}


def test_a_result_that_cannot_be_sent_holds_nothing_in_a_reference_cycle() -> None:
    """The callee's side: an error encoding the result must not hold the call (its
    arguments: here a proxy of the caller's widget) in a cycle either."""

    class Wrong(Service):
        seen: Any = None

        def echo_back(self, widget: Any) -> Any:
            self.seen = weakref.ref(widget)
            return "not a widget"

    impl = Wrong()
    with canopy.Zone("caller") as zone:
        root = zone.child("service", lambda z: impl, b.i_test)
        widget = Widget("lent to the callee")
        gc.disable()
        try:
            with pytest.raises(canopy.CanopyError):
                root.echo_back(widget)
            assert impl.seen is not None and impl.seen() is None, "the call is kept alive"
        finally:
            gc.enable()
        del root


def test_an_unexpected_exception_keeps_the_service_up(h: Harness) -> None:
    with pytest.raises(canopy.RemoteException, match="ValueError: boom") as caught:
        h.do(h.root.fail, "boom")
    assert caught.value.code == canopy.ErrorCode.EXCEPTION
    assert h.do(h.root.add, 1, 2) == 3


def test_closing_a_proxy_releases_it_at_once(h: Harness) -> None:
    before = h.zone.imported()  # the root
    widget = h.do(h.root.make_widget, "short-lived")
    with widget:
        assert h.do(widget.name) == "short-lived"
        assert len(h.zone.imported()) == len(before) + 1
    assert h.zone.imported() == before
    with pytest.raises(canopy.RpcError, match="closed"):
        h.do(widget.name)
    close(widget)  # closing twice is harmless


def test_one_remote_reference_however_many_proxies(h: Harness) -> None:
    service = h.service_zone()
    widget = h.do(h.root.kept_widget)
    copies = [widget] * 100  # copies of a proxy send nothing
    again = h.do(h.root.kept_widget)  # the same object received twice: one reference kept
    h.settle()
    assert again is widget
    assert service.exported()[widget._canopy_remote.object_id] == {h.zone.id: [1, 0]}
    del copies, again, widget
    h.settle()
    h.do(h.root.drop)


def test_gadget_implements_both_interfaces_locally() -> None:
    assert isinstance(Gadget(), b.i_widget) and isinstance(Gadget(), b.i_gadget)


def test_a_plain_callback_inside_an_async_implementation_calls_directly(h: Harness) -> None:
    class Canceller(b.i_listener):
        def __init__(self) -> None:
            self.sums: list[int] = []

        def notify(self, message: str, seq: int) -> None:
            self.sums.append(h.root.add(seq, 100) if h.loop is None else -1)

        def done(self, count: int) -> None:
            pass

    listener = Canceller()
    h.do(h.root.listen, listener, 3)
    h.settle()
    expected = [100, 101, 102] if h.loop is None else [-1, -1, -1]
    assert listener.sums == expected
    del listener
