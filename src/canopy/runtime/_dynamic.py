"""Dynamic calls: call a method by name with JSON arguments and get JSON results, with
no generated code, on top of reflection and the JSON encoding.

The arguments are checked against the method's described input schema (MCP profile)
before anything is sent, so bad ones are refused with the validation message; the
callee's typed JSON decoder refuses anything else. An interface reference in a
result becomes a ``DynamicObject`` (which holds the reference until closed or
collected); one may be passed as an argument too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from canopy.errors import (
    ApplicationError,
    CanopyError,
    IncompatibleSerialisation,
    InvalidData,
    InvalidMethodId,
    ObjectGone,
    RpcError,
)
from canopy.runtime._proxy import Proxy, close
from canopy.runtime._reflect import (
    AnyObject,
    Description,
    InterfaceDescription,
    MethodDescription,
    adescribe,
    describe,
)
from canopy.runtime._tables import SHARED
from canopy.runtime._zone import Link, timeout_for
from canopy.wire import Call, Encoding, ObjectRef, Post, Reply
from canopy.wire._messages import unwrap_payload, wrap_payload

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

_REF_KEYS = frozenset({"zone", "object", "interface", "kind"})


class DynamicObject:
    """An object called by method name with JSON: ``obj.call("i_calculator.add",
    {"a": 1, "b": 2})`` returns ``{"result": 3}`` (blocking zones), ``await
    obj.acall(...)`` under asyncio. A post returns None at once. Application errors
    are raised as ``ApplicationError`` with their code, the rest as ``RpcError``s."""

    def __init__(
        self,
        proxy: Any,
        description: Description | None = None,
        *,
        deprecated: bool = False,
        interface: int = 0,
    ) -> None:
        if not isinstance(proxy, Proxy):
            raise TypeError(f"{proxy!r} is not a Canopy proxy: dynamic calls need one")
        self.proxy = proxy
        self.deprecated = deprecated
        self._interface = interface or proxy._canopy_interface  # the reference's, as sent
        self._description = description
        self._validators: dict[tuple[int, int], Validator] = {}

    def __repr__(self) -> str:
        return f"<DynamicObject {self.proxy!r}>"

    def __enter__(self) -> DynamicObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Give up this object's reference now."""
        close(self.proxy)

    @property
    def ref(self) -> dict[str, int]:
        """The reference as the JSON encoding writes it."""
        remote = self.proxy._canopy_remote
        iface = self._interface
        if not iface and self._description is not None and self._description.interfaces:
            iface = self._description.interfaces[0].id
        return {"zone": remote.zone, "object": remote.object_id, "interface": iface, "kind": 0}

    @property
    def description(self) -> Description:
        if self._description is None:
            raise RuntimeError(f"{self!r} is not described yet: call describe() or adescribe()")
        return self._description

    def describe(self) -> Description:
        if self._description is None:
            self._description = describe(self.proxy, deprecated=self.deprecated)
        return self._description

    async def adescribe(self) -> Description:
        if self._description is None:
            self._description = await adescribe(self.proxy, deprecated=self.deprecated)
        return self._description

    def call(self, method: str, arguments: Mapping[str, Any] | None = None) -> Any:
        """Call (or post) ``method`` (``interface.method``) with JSON ``arguments``."""
        step = self._begin(self.describe(), method, arguments)
        if step is None:
            return None
        link, call_id = step
        return link.wait(call_id, timeout_for(link))

    async def acall(self, method: str, arguments: Mapping[str, Any] | None = None) -> Any:
        """``call`` for an object of an ``AsyncZone``."""
        step = self._begin(await self.adescribe(), method, arguments)
        if step is None:
            return None
        link, call_id = step
        return await link.wait_async(call_id, timeout_for(link))

    # -- one call, both modes

    def _begin(
        self, description: Description, name: str, arguments: Mapping[str, Any] | None
    ) -> tuple[Link, int] | None:
        try:
            interface, method = description.method(name)
        except KeyError as e:
            raise InvalidMethodId(str(e.args[0])) from None
        args = dict(arguments or {})
        self._check(interface, method, _as_json(args, _plain_ref))
        _complete(method, args)
        proxy = self.proxy
        zone = proxy._canopy_zone
        remote = proxy._canopy_remote
        if proxy._canopy_closed or remote.gone:
            raise ObjectGone(f"{method.tool_name}: the object no longer exists")
        link = remote.link
        if Encoding.JSON not in link.protocol.peer_encodings:
            raise IncompatibleSerialisation(
                f"{method.tool_name}: zone {link.peer:#x} does not accept json, which dynamic "
                "calls need"
            )
        passed: list[tuple[int, int, int]] | None = None if remote.zone == link.peer else []
        with zone.inside():

            def counted(obj: DynamicObject) -> dict[str, int]:
                ref = zone.reference_for(obj.proxy, link, SHARED, obj.ref["interface"], passed)
                return {"zone": ref.zone, "object": ref.object, "interface": ref.interface}

            payload = wrap_payload(Encoding.JSON, msgspec.json.encode(_as_json(args, counted)))
            refs = tuple(passed) if passed else ()
            target = (zone.id, remote.zone, remote.object_id, interface.id, method.id)
            if method.post:
                link.send(Post(*target, Encoding.JSON, payload, method.tag, refs=refs))
                return None
            call_id = link.next_id(lambda reply: self._finish(method, link, reply))
            link.send(Call(call_id, *target, Encoding.JSON, payload, method.tag, refs=refs))
        return link, call_id

    def _check(self, interface: InterfaceDescription, method: MethodDescription, args: Any) -> None:
        key = (interface.id, method.id)
        validator = self._validators.get(key)
        if validator is None:
            try:
                from jsonschema import Draft7Validator
            except ImportError:
                raise RuntimeError(
                    "dynamic calls check their arguments with jsonschema: pip install "
                    "'canopy[dynamic]'"
                ) from None
            validator = self._validators[key] = Draft7Validator(method.inputs)
        from jsonschema.exceptions import best_match

        error = best_match(validator.iter_errors(args))
        if error is not None:
            where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.path)
            at = f" (at arguments{where})" if where else ""
            raise InvalidData(f"{method.tool_name}: {error.message}{at}")

    def _finish(self, method: MethodDescription, link: Link, reply: Reply) -> Any:
        """The reply, in link order: references taken as they arrive."""
        if reply.code != 0:
            error: CanopyError = (
                RpcError.from_code(reply.code, reply.message)
                if reply.code < 0
                else ApplicationError(reply.message, code=reply.code)
            )
            raise error
        try:
            value = msgspec.json.decode(unwrap_payload(Encoding.JSON, reply.payload))
        except msgspec.DecodeError as e:
            raise InvalidData(f"{method.tool_name}: the reply is not JSON: {e}") from None
        zone = self.proxy._canopy_zone

        def take(ref: dict[str, Any]) -> Any:
            descriptor = ObjectRef(ref["zone"], ref["object"], ref["interface"], ref.get("kind", 0))
            found = zone.object_for(descriptor, link, AnyObject)
            if not isinstance(found, Proxy):
                return found  # our own object, come home
            return DynamicObject(found, deprecated=self.deprecated, interface=descriptor.interface)

        return _refs(method.outputs, value, take)


def dynamic(obj: object, *, deprecated: bool = False) -> DynamicObject:
    """``obj`` (a proxy of a blocking zone, typed or ``AnyObject``) for dynamic calls,
    described now; ``deprecated`` makes deprecated methods callable too."""
    found = DynamicObject(obj, deprecated=deprecated)
    found.describe()
    return found


async def adynamic(obj: object, *, deprecated: bool = False) -> DynamicObject:
    """``dynamic`` for a proxy of an ``AsyncZone``."""
    found = DynamicObject(obj, deprecated=deprecated)
    await found.adescribe()
    return found


def to_json(value: Any) -> Any:
    """A dynamic call's result as plain JSON: each ``DynamicObject`` as its reference."""
    return _as_json(value, lambda obj: obj.ref)


def _plain_ref(obj: DynamicObject) -> dict[str, int]:
    return obj.ref


def _as_json(value: Any, ref: Callable[[DynamicObject], dict[str, int]]) -> Any:
    if isinstance(value, DynamicObject):
        return ref(value)
    if isinstance(value, dict):
        return {k: _as_json(v, ref) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_json(v, ref) for v in value]
    return value


def _complete(method: MethodDescription, args: dict[str, Any]) -> None:
    """Put back what the MCP profile let the caller leave out: ``null`` for a value
    that may be null, ``{}`` for a struct none of whose fields is required (see
    ``canopy.codegen.schema.complete_inputs``, which this mirrors from the schema)."""
    required = set(method.inputs.get("required", ()))
    for name, schema in method.inputs.get("properties", {}).items():
        if name not in args and name not in required:
            args[name] = None if _accepts_null(schema) else {}


def _accepts_null(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(_accepts_null(s) for s in schema.get("anyOf", ()))


def _is_ref(schema: dict[str, Any]) -> bool:
    properties = schema.get("properties")
    return isinstance(properties, dict) and set(properties) == _REF_KEYS


def _refs(schema: Any, value: Any, take: Callable[[dict[str, Any]], Any]) -> Any:
    """``value`` with each interface reference the schema places in it ``take``n.

    (The MCP profile inlines a recursive struct once: a reference deeper inside one
    stays a plain dict, and the reference is held until the link ends.)"""
    if not isinstance(schema, dict) or value is None:
        return value
    if isinstance(value, dict) and _is_ref(schema):
        return take(value)
    for alternative in schema.get("anyOf", ()):
        if _fits(alternative, value):
            return _refs(alternative, value, take)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            k: _refs(properties.get(k, extra), v, take) if k in properties or extra else v
            for k, v in value.items()
        }
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, list):
            return [_refs(s, v, take) for s, v in zip(items, value, strict=False)]
        return [_refs(items, v, take) for v in value]
    return value


def _fits(schema: Any, value: Any) -> bool:
    from jsonschema import Draft7Validator

    return isinstance(schema, dict) and Draft7Validator(schema).is_valid(value)
