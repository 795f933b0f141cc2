"""Dynamic calls: by interface and method name with JSON arguments and results, with no
generated code on the calling side; bad arguments never reach the implementation.
Both modes, over a child zone and over TCP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import canopy
from canopy.codegen import load_python
from canopy.idl import compile_text
from scenarios import MODES

IDL = """
namespace dyn
{
    struct options { rpc::optional<int32_t> scale; };

    interface i_counter
    {
        error_code add(int32_t by, [out] int32_t& total);
        [post] error_code bump(int32_t by);
        error_code total([out] int32_t& value);
        error_code fail(int32_t code);
    };

    interface i_maker
    {
        error_code make(const std::string& name, const options& opts,
                        [out] rpc::shared_ptr<i_counter>& counter);
        error_code sum(const rpc::shared_ptr<i_counter>& counter, [out] int32_t& value);
    };
}
"""
dyn: Any = load_python(compile_text(IDL, filename="dyn.idl")).dyn


class Counter(dyn.i_counter):  # type: ignore[misc]
    def __init__(self, start: int = 0) -> None:
        self.value = start
        self.calls = 0

    def add(self, by: int) -> int:
        self.calls += 1
        self.value += by
        return self.value

    def bump(self, by: int) -> None:
        self.value += by

    def total(self) -> int:
        return self.value

    def fail(self, code: int) -> None:
        raise canopy.ApplicationError("asked to fail", code=code)


class Maker(dyn.i_maker):  # type: ignore[misc]
    def __init__(self) -> None:
        self.made: list[Counter] = []

    def make(self, name: str, opts: Any) -> Counter:
        counter = Counter(len(name) * (opts.scale or 1))
        self.made.append(counter)
        return counter

    def sum(self, counter: Any) -> int:
        return 0 if counter is None else 1000 + counter.value


class Session:
    """One mode's zone with ``Maker`` in a child zone, called dynamically."""

    def __init__(self, mode: str, encodings: tuple[str, ...] = ("binary", "json")) -> None:
        self.mode = mode
        self.maker = Maker()
        self.loop = asyncio.new_event_loop() if mode == "asyncio" else None
        self.zone: Any = canopy.Zone("host") if mode == "blocking" else canopy.AsyncZone("host")
        proxy = self.do(
            self.zone.child, "maker", lambda z: self.maker, dyn.i_maker, encodings=encodings
        )
        self.obj: canopy.DynamicObject = self.do(
            canopy.dynamic if mode == "blocking" else canopy.adynamic, proxy
        )
        del proxy

    def do(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self.loop is None:
            return fn(*args, **kwargs)

        async def call() -> Any:
            result = fn(*args, **kwargs)
            return await result if asyncio.iscoroutine(result) else result

        return self.loop.run_until_complete(call())

    def call(self, obj: canopy.DynamicObject, method: str, args: Any = None) -> Any:
        return self.do(obj.call if self.loop is None else obj.acall, method, args)

    def close(self) -> None:
        self.obj.close()
        self.do(lambda: None)
        self.zone.collect()
        if self.loop is not None:
            self.loop.run_until_complete(self.zone.aclose())
            self.loop.close()
        else:
            self.zone.close()


@pytest.fixture(params=MODES)
def s(request: pytest.FixtureRequest) -> Any:
    session = Session(request.param)
    yield session
    session.close()


def test_a_call_by_name_with_json(s: Session) -> None:
    made = s.call(s.obj, "i_maker.make", {"name": "abc", "opts": {"scale": 2}})
    counter = made["counter"]
    assert isinstance(counter, canopy.DynamicObject)
    assert s.call(counter, "i_counter.add", {"by": 4}) == {"total": 10}
    assert s.call(counter, "dyn::i_counter.total") == {"value": 10}
    assert canopy.to_json(made)["counter"]["interface"] == dyn.i_counter.__canopy__.id
    # Passed back as an argument, it reaches its owner as the object itself.
    assert s.call(s.obj, "i_maker.sum", {"counter": counter}) == {"value": 1010}
    assert s.call(s.obj, "i_maker.sum", {}) == {"value": 0}  # a pointer left out is null
    counter.close()


def test_a_struct_none_of_whose_fields_is_required_may_be_left_out(s: Session) -> None:
    counter = s.call(s.obj, "i_maker.make", {"name": "abcd"})["counter"]
    assert s.call(counter, "i_counter.total") == {"value": 4}
    counter.close()


def test_a_post_is_posted(s: Session) -> None:
    counter = s.call(s.obj, "i_maker.make", {"name": "a"})["counter"]
    assert s.call(counter, "i_counter.bump", {"by": 5}) is None
    assert s.call(counter, "i_counter.total") == {"value": 6}  # posts arrive before it
    counter.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"by": "two"}, r"'two' is not of type 'integer' \(at arguments\.by\)"),
        ({}, "'by' is a required property"),
        ({"by": 1, "extra": 2}, "Additional properties are not allowed"),
        ({"by": 2**31}, "is greater than the maximum of 2147483647"),
    ],
)
def test_bad_arguments_never_reach_the_implementation(s: Session, args: Any, message: str) -> None:
    counter = s.call(s.obj, "i_maker.make", {"name": "a"})["counter"]
    with pytest.raises(canopy.InvalidData, match=message):
        s.call(counter, "i_counter.add", args)
    assert s.maker.made[-1].calls == 0
    counter.close()


def test_errors_come_back_with_their_code(s: Session) -> None:
    counter = s.call(s.obj, "i_maker.make", {"name": "a"})["counter"]
    with pytest.raises(canopy.ApplicationError, match="asked to fail") as caught:
        s.call(counter, "i_counter.fail", {"code": 7})
    assert caught.value.code == 7
    with pytest.raises(
        canopy.InvalidMethodId, match=r"no method 'i_counter\.nope'.*i_counter\.add"
    ):
        s.call(counter, "i_counter.nope")
    counter.close()


def test_a_returned_object_is_released_when_closed(s: Session) -> None:
    child = s.zone._local_zones()[1]
    before = len(child.exported())
    counter = s.call(s.obj, "i_maker.make", {"name": "a"})["counter"]
    assert len(child.exported()) == before + 1
    counter.close()
    s.do(lambda: None)
    s.zone.collect()
    assert len(child.exported()) == before


def test_a_peer_that_refuses_json_is_told_before_anything_is_sent() -> None:
    session = Session("blocking", encodings=("binary",))
    try:
        with pytest.raises(canopy.IncompatibleSerialisation, match="json"):
            session.call(session.obj, "i_maker.make", {"name": "a"})
        assert session.maker.made == []
    finally:
        session.close()


@pytest.mark.parametrize("mode", MODES)
def test_over_tcp_with_no_generated_code(mode: str) -> None:
    async def main() -> Any:
        async with canopy.AsyncZone("server") as server_zone:
            server = await server_zone.serve("tcp://127.0.0.1:0", lambda z: Maker(), dyn.i_maker)
            async with canopy.AsyncZone("client") as client:
                root = await canopy.adynamic(await client.connect(server.url, canopy.AnyObject))
                counter = (await root.acall("i_maker.make", {"name": "xy"}))["counter"]
                result = await counter.acall("i_counter.add", {"by": 1})
                counter.close()
                root.close()
                return result

    if mode == "asyncio":
        assert asyncio.run(main()) == {"total": 3}
        return
    with canopy.Zone("server") as server_zone:
        server = server_zone.serve("tcp://127.0.0.1:0", lambda z: Maker(), dyn.i_maker)
        client = canopy.Zone("client")
        with client, canopy.dynamic(client.connect(server.url, canopy.AnyObject)) as root:
            counter = root.call("i_maker.make", {"name": "xy"})["counter"]
            assert counter.call("i_counter.add", {"by": 1}) == {"total": 3}
            counter.close()
