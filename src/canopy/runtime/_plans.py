"""Dispatch plans: what the runtime precomputes once per interface class.

For every method of a generated interface, a plan holds its ids, the in/out
records and their codecs, which top-level fields are interface references and
of which kind (read from the ``Annotated`` marker the generator writes), and
how to turn the out record into the Python result. Calls and dispatch then do
integer-keyed lookups only.
"""

from __future__ import annotations

import functools
import operator
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from canopy.generated import Interface, InterfaceInfo, MethodInfo, Ref
from canopy.runtime._tables import OPTIMISTIC, SHARED
from canopy.wire.codecs._schema import schema, unbounded


@dataclass(frozen=True, slots=True)
class RefField:
    index: int
    kind: int
    interface: type[Interface]


@dataclass(frozen=True, slots=True)
class MethodPlan:
    info: MethodInfo
    interface_id: int
    in_refs: tuple[RefField, ...]
    out_refs: tuple[RefField, ...]
    in_nested_refs: bool  # a reference inside a struct or container: marshal with hooks
    out_nested_refs: bool
    result: Callable[[Any], Any]  # out record -> what the Python method returns
    in_names: tuple[str, ...]
    in_unbounded: bool  # may nest without limit: its depth is checked on arrival
    out_unbounded: bool
    qualified_name: str  # interface::method, as errors and callers name it

    @property
    def has_in_refs(self) -> bool:
        return bool(self.in_refs) or self.in_nested_refs

    @property
    def has_out_refs(self) -> bool:
        return bool(self.out_refs) or self.out_nested_refs


@dataclass(frozen=True, slots=True)
class InterfacePlan:
    cls: type[Interface]
    info: InterfaceInfo
    methods: dict[int, MethodPlan]  # method id -> plan
    by_name: dict[str, MethodPlan]  # python name -> plan


def interface_class(interface: Callable[..., Any]) -> type[Interface]:
    """``interface`` checked to be a generated interface class.

    Public functions take interface classes typed as callables: mypy refuses an
    abstract class where ``type[I]`` is expected, and accepts it here.
    """
    if isinstance(interface, type) and issubclass(interface, Interface):
        return interface
    # An interface's asyncio proxy protocol names the interface it stands for.
    target = getattr(interface, "__canopy_interface__", None)
    if isinstance(target, type) and issubclass(target, Interface):
        return target
    raise TypeError(f"{interface!r} is not a generated Canopy interface class")


def interface_of(cls: type[Any]) -> InterfaceInfo | None:
    info = getattr(cls, "__canopy__", None)
    return info if isinstance(info, InterfaceInfo) else None


@functools.cache
def plan(cls: type[Interface]) -> InterfacePlan:
    """The plan of a generated interface class: its own methods and its bases'."""
    info = interface_of(cls)
    if info is None:
        raise TypeError(f"{cls.__qualname__} is not a generated Canopy interface")
    methods: dict[int, MethodPlan] = {}
    for m in info.methods:
        methods[m.id] = _method_plan(cls, info, m)
    by_name: dict[str, MethodPlan] = {}
    for klass in reversed(cls.__mro__):
        if klass is not cls and interface_of(klass) is not None and "__canopy__" in vars(klass):
            by_name.update(plan(klass).by_name)
    by_name.update({p.info.python_name: p for p in methods.values()})
    return InterfacePlan(cls, info, methods, by_name)


_implemented: dict[type[Any], dict[int, type[Interface]]] = {}


def implemented(cls: type[Any]) -> dict[int, type[Interface]]:
    """Every generated interface ``cls`` implements, by interface id (cached per class)."""
    found = _implemented.get(cls)
    if found is None:
        found = {}
        for klass in cls.__mro__:
            info = vars(klass).get("__canopy__")
            if isinstance(info, InterfaceInfo):
                found.setdefault(info.id, klass)
        _implemented[cls] = found
    return found


def _method_plan(cls: type[Interface], info: InterfaceInfo, m: MethodInfo) -> MethodPlan:
    in_refs, in_nested = _refs(m.in_type)
    out_refs, out_nested = _refs(m.out_type)
    return MethodPlan(
        m,
        info.id,
        in_refs,
        out_refs,
        in_nested,
        out_nested,
        _result(cls, m),
        m.in_names,
        unbounded(schema(m.in_type)),
        unbounded(schema(m.out_type)),
        f"{info.name}::{m.name}",
    )


def _result(cls: type[Interface], m: MethodInfo) -> Callable[[Any], Any]:
    fields = m.out_type.__struct_fields__
    if not fields:
        return lambda out: None
    if len(fields) == 1:
        return operator.attrgetter(fields[0])
    named = getattr(cls, f"{m.python_name}_result", tuple)
    astuple = msgspec.structs.astuple
    return lambda out: named(*astuple(out))


def _refs(record: type[msgspec.Struct]) -> tuple[tuple[RefField, ...], bool]:
    """Top-level reference fields of a record, and whether any lie deeper."""
    hints = typing.get_type_hints(record, include_extras=True)
    top: list[RefField] = []
    nested = False
    for index, name in enumerate(record.__struct_fields__):
        hint = hints[name]
        direct = _direct_ref(hint)
        if direct is not None:
            top.append(RefField(index, *direct))
        elif _contains_ref(hint, set()):
            nested = True
    return tuple(top), nested


def _direct_ref(hint: Any) -> tuple[int, type[Interface]] | None:
    if typing.get_origin(hint) is not typing.Annotated:
        return None
    inner, *extras = typing.get_args(hint)
    kind = next((e for e in extras if isinstance(e, Ref)), None)
    if kind is None:
        return None
    iface = next(
        (
            a
            for a in typing.get_args(inner) or (inner,)
            if isinstance(a, type) and issubclass(a, Interface)
        ),
        None,
    )
    if iface is None:
        return None
    return (SHARED if kind is Ref.SHARED else OPTIMISTIC), iface


def _contains_ref(hint: Any, seen: set[int]) -> bool:
    if isinstance(hint, type):
        if issubclass(hint, Interface):
            return True
        if issubclass(hint, msgspec.Struct) and id(hint) not in seen:
            seen.add(id(hint))
            hints = typing.get_type_hints(hint, include_extras=True)
            return any(_contains_ref(h, seen) for h in hints.values())
        return False
    return any(_contains_ref(a, seen) for a in typing.get_args(hint))
