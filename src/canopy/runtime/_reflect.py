"""Reflection: an object describes itself, to a caller in any zone.

The answer is built from what generated modules embed (``InterfaceInfo.schemas``,
the JSON Schema ``canopy.codegen.schema`` computed from the IDL) and travels as the
payload of the ``Reply`` to a ``GetSchema``, MessagePack-encoded as a
``Description``. A ``GetSchema`` for another zone's object is passed on like a
cast, so an object any number of hops away answers the same way.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import msgspec

from canopy.errors import ApplicationError, CanopyError, InvalidData, ObjectGone, RpcError
from canopy.generated import Interface, InterfaceInfo
from canopy.runtime._plans import implemented
from canopy.runtime._proxy import Proxy
from canopy.runtime._zone import Link, Service, timeout_for
from canopy.wire import GetSchema, Reply

Profile = Literal["mcp", "config"]
_PROFILES = ("mcp", "config")


class MethodDescription(msgspec.Struct, frozen=True, kw_only=True):
    """One method of a described interface, with its schemas in the asked profile."""

    name: str
    id: int
    interface: str  # the qualified name of the interface that declares it
    description: str | None = None
    post: bool = False
    deprecated: bool = False
    tag: int = 0  # the method's ``[tag]``: a dynamic call sends it, as a proxy would
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    outputs: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def tool_name(self) -> str:
        """``i_session.generate``: the interface's own name, a dot, the method's."""
        return f"{self.interface.rsplit('::', 1)[-1]}.{self.name}"

    def tool(self) -> dict[str, Any]:
        """The method as an MCP tool definition (meant for the MCP profile)."""
        tool: dict[str, Any] = {"name": self.tool_name}
        if self.description:
            tool["description"] = self.description
        tool["inputSchema"] = self.inputs
        tool["outputSchema"] = self.outputs
        return tool


class InterfaceDescription(msgspec.Struct, frozen=True, kw_only=True):
    """One interface a described object implements, and its own methods."""

    id: int
    name: str  # qualified, as the IDL names it: ``inference::v1::i_session``
    deprecated: bool = False
    description: str | None = None
    bases: tuple[int, ...] = ()
    methods: tuple[MethodDescription, ...] = ()


class Description(msgspec.Struct, frozen=True, kw_only=True):
    """What ``describe`` returns: every interface of an object, most derived first."""

    profile: str
    interfaces: tuple[InterfaceDescription, ...] = ()

    def methods(self) -> list[MethodDescription]:
        """Every method, each once, in the order of ``interfaces``."""
        return [m for i in self.interfaces for m in i.methods]

    def method(self, name: str) -> tuple[InterfaceDescription, MethodDescription]:
        """The method named ``interface.method``; the interface by its qualified name or
        its own (``i_calculator.add``). ``KeyError`` saying what there is otherwise."""
        interface, dot, method = name.rpartition(".")
        found = [
            (i, m)
            for i in self.interfaces
            if not dot or interface in (i.name, i.name.rsplit("::", 1)[-1])
            for m in i.methods
            if m.name == method
        ]
        if len(found) == 1:
            return found[0]
        known = ", ".join(m.tool_name for m in self.methods()) or "none"
        if found:
            which = ", ".join(f"{i.name}.{m.name}" for i, m in found)
            raise KeyError(f"{name!r} is ambiguous ({which}): name the interface in full")
        raise KeyError(f"the object has no method {name!r}; its methods: {known}")


# ---------------------------------------------------------------- the answering side


def describe_local(target: Any, deprecated: bool, profile: Profile) -> Description:
    """The description of an object of this process."""
    interfaces = []
    for cls in implemented(type(target)).values():
        info: InterfaceInfo = cls.__canopy__
        schemas = _schemas(info).get(profile, {})
        methods = []
        for m in info.methods:
            if m.deprecated is not None and not deprecated:
                continue
            found = schemas.get(str(m.id), {})
            methods.append(
                MethodDescription(
                    name=m.name,
                    id=m.id,
                    interface=info.name,
                    description=m.description,
                    post=m.post,
                    deprecated=m.deprecated is not None,
                    tag=m.tag,
                    inputs=found.get("inputs", {}),
                    outputs=found.get("outputs", {}),
                )
            )
        interfaces.append(
            InterfaceDescription(
                id=info.id,
                name=info.name,
                deprecated=info.deprecated is not None,
                description=info.description,
                bases=tuple(b.id for b in info.bases),
                methods=tuple(methods),
            )
        )
    return Description(profile=profile, interfaces=tuple(interfaces))


def description_payload(target: Any, m: GetSchema) -> msgspec.Raw:
    """The payload of the reply to ``m``: the description of ``target``, MessagePack."""
    profile: Profile = "config" if m.config else "mcp"
    return msgspec.Raw(_encode(describe_local(target, m.deprecated, profile)))


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Description).decode
_parsed: dict[int, dict[str, Any]] = {}  # id(InterfaceInfo) -> its schemas, parsed once


def _schemas(info: InterfaceInfo) -> dict[str, Any]:
    found = _parsed.get(id(info))
    if found is None:
        found = json.loads(info.schemas) if info.schemas else {}
        _parsed[id(info)] = found
    return found


# ---------------------------------------------------------------- the asking side


def _profile(profile: str) -> Profile:
    if profile == "mcp":
        return "mcp"
    if profile == "config":
        return "config"
    raise ValueError(f"unknown schema profile {profile!r}: use 'mcp' or 'config'")


def _begin(obj: object, deprecated: bool, profile: Profile) -> tuple[Link, int] | Description:
    if not isinstance(obj, Proxy):
        if isinstance(obj, Interface):
            return describe_local(obj, deprecated, profile)
        raise TypeError(f"{obj!r} is neither a Canopy proxy nor an implementation")
    zone: Service = obj._canopy_zone
    remote = obj._canopy_remote
    if obj._canopy_closed or remote.gone:
        raise ObjectGone("describe: the object no longer exists")
    link = remote.link
    with zone.inside():
        call_id = link.next_id(_answer)
        config = profile == "config"
        link.send(GetSchema(call_id, zone.id, remote.zone, remote.object_id, deprecated, config))
    return link, call_id


def _answer(reply: Reply) -> Description:
    if reply.code != 0:
        error: CanopyError = (
            RpcError.from_code(reply.code, reply.message)
            if reply.code < 0
            else ApplicationError(reply.message, code=reply.code)
        )
        error.message = f"describe: {error.message}"
        error.args = (error.message,)
        raise error
    try:
        return _decode(reply.payload)
    except msgspec.DecodeError as e:
        raise InvalidData(f"describe: the answer does not decode: {e}") from None


def describe(obj: object, *, deprecated: bool = False, profile: str = "mcp") -> Description:
    """What ``obj`` (a proxy, blocking, or an implementation) says it implements: every
    interface, and each method's schemas in ``profile`` (``"mcp"`` or ``"config"``).
    Deprecated methods are left out unless ``deprecated``."""
    step = _begin(obj, deprecated, _profile(profile))
    if isinstance(step, Description):
        return step
    link, call_id = step
    result: Description = link.wait(call_id, timeout_for(link))
    return result


async def adescribe(obj: object, *, deprecated: bool = False, profile: str = "mcp") -> Description:
    """``describe`` for a proxy of an ``AsyncZone``."""
    step = _begin(obj, deprecated, _profile(profile))
    if isinstance(step, Description):
        return step
    link, call_id = step
    result: Description = await link.wait_async(call_id, timeout_for(link))
    return result


class AnyObject(Interface):
    """An object of any interface: what ``connect`` takes to reach a root with no
    generated code at hand, for ``describe`` and ``dynamic`` (or a later ``cast``)."""

    __canopy__ = InterfaceInfo(id=0, name="(any object)", bases=(), methods=())
