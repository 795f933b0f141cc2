"""Each link limit the runtime enforces: crossed, refused with LIMIT_EXCEEDED, and the
zones keep working with their counts balanced afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import canopy
from behaviour import BASES, MODES, Harness, Widget, b
from canopy.wire import Limits


@pytest.fixture(params=[(m, t) for m in MODES for t in BASES], ids=lambda p: "-".join(p))
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    mode, transport = request.param
    harness = Harness(mode, Limits(max_exported_objects=3, max_calls_in_flight=2), transport)
    yield harness
    assert harness.close() == {}, "references or objects left behind"


def test_objects_exported_to_one_zone_are_bounded(h: Harness) -> None:
    # The service already exports its root to the host: two more fit, the third does not.
    widgets = [h.do(h.root.make_widget, f"w{i}") for i in range(2)]
    with pytest.raises(canopy.LimitExceeded, match=r"max_exported_objects=3"):
        h.do(h.root.make_widget, "one too many")
    del widgets[0]
    h.settle()
    widgets.append(h.do(h.root.make_widget, "fits again"))
    assert [h.do(w.name) for w in widgets] == ["w1", "fits again"]


@pytest.mark.parametrize("transport", BASES)
def test_calls_in_flight_from_one_zone_are_bounded(transport: str) -> None:
    h = Harness("asyncio", Limits(max_calls_in_flight=2), transport)
    gate = asyncio.Event()

    class Slow(b.i_widget):
        async def name(self) -> str:
            await gate.wait()
            return "slow"

    async def scenario() -> list[Any]:
        widget = Slow()
        calls = [asyncio.ensure_future(h.root.widget_name(widget)) for _ in range(3)]
        for _ in range(2000):  # until the third is refused, however long the trip takes
            if calls[2].done():
                break
            await asyncio.sleep(0.001)
        gate.set()
        return await asyncio.gather(*calls, return_exceptions=True)

    assert h.loop is not None
    results = h.loop.run_until_complete(scenario())
    assert results[:2] == ["slow", "slow"]
    assert isinstance(results[2], canopy.LimitExceeded)
    assert "max_calls_in_flight=2" in str(results[2])
    del results  # its traceback's frames hold the proxies
    assert h.do(h.root.add, 1, 2) == 3  # the zone keeps serving
    assert h.close() == {}


def test_objects_held_only_optimistically_are_uncounted_when_they_die(h: Harness) -> None:
    for round_ in range(4):  # more rounds than the limit allows objects at once
        mine = Widget(f"watched {round_}")
        h.do(h.root.watch, mine)
        del mine
        h.settle()
    assert h.zone.holds(h.zones()[1].id) is False
    h.do(h.root.drop)


DEEP_IDL = """
#import "rpc/rpc_types.idl"
namespace deep
{
    struct node { std::vector<node> kids; };
    interface i_deep
    {
        error_code depth(const node& root, [out] int32_t& levels);
        error_code nest(int32_t levels, [out] node& root);
        error_code size(const json::v1::object& value, [out] int32_t& length);
    };
}
"""


@pytest.fixture(scope="module")
def deep(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("idl") / "deep.idl"
    path.write_text(DEEP_IDL)
    return canopy.load_idl(path).deep


def nested(deep: Any, levels: int) -> Any:
    root = deep.node(kids=[])
    for _ in range(levels - 1):
        root = deep.node(kids=[root])
    return root


@pytest.mark.parametrize("encoding", ["binary", "json"])
def test_payloads_that_nest_without_limit_are_bounded(deep: Any, encoding: str) -> None:
    class Deep(deep.i_deep):  # type: ignore[misc]
        def depth(self, root: Any) -> int:
            levels = 1
            while root.kids:
                root, levels = root.kids[0], levels + 1
            return levels

        def nest(self, levels: int) -> Any:
            return nested(deep, levels)

        def size(self, value: Any) -> int:
            return len(str(value))

    # A node is a struct holding a list: two levels each. The record is one more.
    limits = Limits(max_depth=9)
    with canopy.Zone("host", limits=limits) as host:
        remote = host.child("deep", lambda z: Deep(), deep.i_deep, encodings=(encoding,))
        assert remote.depth(nested(deep, 4)) == 4
        with pytest.raises(canopy.InvalidData, match=r"nested deeper than max_depth=9"):
            remote.depth(nested(deep, 5))
        with pytest.raises(canopy.InvalidData, match=r"max_depth=9"):
            remote.nest(5)  # the reply is held to the caller's limit
        assert remote.size([[[1]]]) == len("[[[1]]]")
        with pytest.raises(canopy.InvalidData, match=r"max_depth=9"):
            remote.size([[[[[[[[[["too deep"]]]]]]]]]])
        assert remote.depth(deep.node(kids=[])) == 1
        canopy.close(remote)


def test_adrain_returns_at_once_when_nothing_waits_to_be_written(h: Harness) -> None:
    """Over every base, in both modes (a blocking proxy from a coroutine, as an ``async
    def`` implementation served by the blocking runtime drains one): nothing waits. An
    object of this zone has no link; a closed proxy fails as a call on it would."""

    def drain(target: Any) -> None:
        if h.loop is not None:
            h.do(canopy.adrain, target)
        else:
            asyncio.run(canopy.adrain(target))

    h.do(h.root.record, "x", 1)
    drain(h.root)
    drain(Widget("here"))
    with pytest.raises(TypeError, match="is not a Canopy proxy"):
        drain(42)
    widget = h.do(h.root.make_widget, "w")
    canopy.close(widget)
    with pytest.raises(canopy.RpcError, match="drain: the proxy was closed") as closed:
        drain(widget)
    assert closed.value.code == canopy.ErrorCode.OBJECT_GONE
    h.settle()
