"""Objects describe themselves: every interface, each method with its schemas, across
a child zone, over TCP to a root reached with no generated code, and two zones away;
a GetSchema for an object the caller was not handed is refused. Both modes."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

import canopy
from behaviour import Harness
from canopy.codegen import load_python
from canopy.codegen.schema import method_schemas
from canopy.errors import ErrorCode
from canopy.idl import compile_text
from canopy.runtime import AnyObject, Description, adescribe, describe
from canopy.wire import GetSchema, Reply
from scenarios import MODES, Tree

IDL = """
namespace refl
{
    struct point { int32_t x; int32_t y = 2; };

    interface i_base
    {
        [description="Say hello"]
        error_code hello(const std::string& name, [out] std::string& greeting);
    };

    [deprecated="use i_shape"]
    interface i_old
    {
        error_code old_call();
    };

    [description="A shape"]
    interface i_shape : i_base
    {
        [post] error_code ping(int32_t n);
        [deprecated="use area2"] error_code area([out] double& a);
        error_code area2(const point& at, [out] double& a);
    };
}
"""
MODEL = compile_text(IDL, filename="refl.idl")
refl: Any = load_python(MODEL).refl


with warnings.catch_warnings():  # i_old is deprecated: implementing it warns
    warnings.simplefilter("ignore", DeprecationWarning)

    class Shape(refl.i_shape, refl.i_old):  # type: ignore[misc]
        def hello(self, name: str) -> str:
            return f"hello {name}"

        def ping(self, n: int) -> None:
            pass

        def area(self) -> float:
            return 1.0

        def area2(self, at: Any) -> float:
            return float(at.x * at.y)

        def old_call(self) -> None:
            pass


def run(mode: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    if mode == "blocking":
        return fn(*args, **kwargs)
    return asyncio.run(fn(*args, **kwargs))


def check_shape(d: Description, *, profile: str = "mcp", deprecated: bool = False) -> None:
    assert d.profile == profile
    names = [i.name for i in d.interfaces]
    assert names == ["refl::i_shape", "refl::i_base", "refl::i_old"]
    shape, base, old = d.interfaces
    assert shape.id == refl.i_shape.__canopy__.id and shape.bases == (base.id,)
    assert shape.description == "A shape" and not shape.deprecated and old.deprecated
    methods = [(m.name, m.id, m.post, m.deprecated) for m in shape.methods]
    expected = [("ping", 1, True, False), ("area2", 3, False, False)]
    if deprecated:
        expected.insert(1, ("area", 2, False, True))
    assert methods == expected
    (hello,) = base.methods
    assert (hello.name, hello.description, hello.tool_name) == (
        "hello",
        "Say hello",
        "i_base.hello",
    )
    # The schemas are those the IDL gives, in the profile asked for.
    schemas = method_schemas(MODEL, "refl::i_shape", "config" if profile == "config" else "mcp")
    wanted = {(s.interface, s.id): s for s in schemas}
    for i in (shape, base):
        for m in i.methods:
            assert m.inputs == wanted[i.name, m.id].inputs
            assert m.outputs == wanted[i.name, m.id].outputs
            jsonschema.Draft7Validator.check_schema(m.inputs)


def blocking_child() -> tuple[canopy.Zone, Any]:
    zone = canopy.Zone("host")
    return zone, zone.child("shapes", lambda z: Shape(), refl.i_shape)


def test_a_proxy_describes_its_object_blocking() -> None:
    zone, shape = blocking_child()
    check_shape(describe(shape))
    check_shape(describe(shape, deprecated=True), deprecated=True)
    check_shape(describe(shape, profile="config"), profile="config")
    area2 = describe(shape).method("i_shape.area2")[1]
    assert "properties" in area2.inputs["properties"]["at"]  # the MCP profile inlines
    with pytest.raises(ValueError, match="profile"):
        describe(shape, profile="yaml")
    del shape
    zone.close()


def test_a_proxy_describes_its_object_asyncio() -> None:
    async def main() -> None:
        async with canopy.AsyncZone("host") as zone:
            shape = await zone.child("shapes", lambda z: Shape(), refl.i_shape)
            check_shape(await adescribe(shape))
            check_shape(await adescribe(shape, deprecated=True), deprecated=True)
            check_shape(await adescribe(shape, profile="config"), profile="config")
            del shape

    asyncio.run(main())


def test_an_implementation_describes_itself_without_a_message() -> None:
    check_shape(describe(Shape()))


def test_method_lookup_by_own_or_qualified_name() -> None:
    d = describe(Shape())
    assert d.method("i_base.hello")[1].name == "hello"
    assert d.method("refl::i_shape.area2")[0].name == "refl::i_shape"
    assert d.method("hello")[0].name == "refl::i_base"
    with pytest.raises(KeyError, match=r"no method 'i_shape\.nope'.*i_base\.hello"):
        d.method("i_shape.nope")


@pytest.mark.parametrize("mode", MODES)
def test_a_root_reached_with_no_generated_code_describes_itself(mode: str) -> None:
    async def main() -> Description:
        async with canopy.AsyncZone("server") as server_zone:
            server = await server_zone.serve("tcp://127.0.0.1:0", lambda z: Shape(), refl.i_shape)
            async with canopy.AsyncZone("client") as client:
                root = await client.connect(server.url, AnyObject)
                assert isinstance(root, AnyObject)
                d = await adescribe(root)
                typed = await canopy.acast(root, refl.i_base)  # and it casts as usual
                assert await typed.hello("you") == "hello you"
                del root, typed
                return d

    if mode == "asyncio":
        check_shape(asyncio.run(main()))
        return
    with canopy.Zone("server") as server_zone:
        server = server_zone.serve("tcp://127.0.0.1:0", lambda z: Shape(), refl.i_shape)
        with canopy.Zone("client") as client:
            root = client.connect(server.url, AnyObject)
            check_shape(describe(root))
            del root


def test_an_object_two_zones_away_describes_itself(t: Tree) -> None:
    _, z3 = t.chain(t.e, 2)  # R reaches Z3 through E and Z2
    foo = t.do(z3.create_foo)
    assert foo._canopy_remote.zone != foo._canopy_remote.link.peer
    ask = describe if t.mode == "blocking" else adescribe
    d = t.do(ask, foo)
    assert [i.name for i in d.interfaces] == ["scenarios::i_foo"]
    assert "record_message" in [m.name for m in d.methods()]
    del foo, z3


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness("blocking")
    yield harness
    assert harness.close() == {}, "references or objects left behind"


def ask(h: Harness, object_id: int, caller: int = 0) -> Reply:
    link = h.zone.links[h.zones()[1].id]
    call_id = link.next_id(lambda reply: reply)
    link.send(GetSchema(call_id, caller or h.zone.id, link.peer, object_id))
    reply: Reply = link.wait(call_id)
    return reply


def test_a_get_schema_is_checked_as_a_cast_is(h: Harness) -> None:
    root = int(h.root._canopy_remote.object_id)
    assert ask(h, root).code == 0
    assert ask(h, 9999).code == ErrorCode.OBJECT_NOT_FOUND  # a guessed id is no capability
    assert ask(h, root, caller=h.zones()[1].id).code == ErrorCode.SECURITY_ERROR
    widget = h.do(h.root.make_widget, "once")
    object_id = widget._canopy_remote.object_id
    assert ask(h, object_id).code == 0
    del widget
    h.settle()
    assert ask(h, object_id).code == ErrorCode.OBJECT_NOT_FOUND  # let go of: unreachable
    with pytest.raises(canopy.RpcError, match="describe"):
        ask_error(h, 9999)


def ask_error(h: Harness, object_id: int) -> None:
    """The asking side raises what the reply says, named as a describe."""
    from canopy.runtime._reflect import _answer

    _answer(ask(h, object_id))
