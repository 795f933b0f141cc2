"""Interface references inside values: swapped for ``ObjectRef`` descriptors before a
codec encodes them, and back into objects or proxies after it decodes.

The binary fast path does this inside msgspec (encode and decode hooks); every
other encoding sees only plain values and ``ObjectRef`` records, so the swap is
a walk over the value. Only values whose type can hold a reference are walked
(the plans know which), and the walk copies just the containers on the way to
a reference.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import msgspec
import msgspec.inspect as mi

from canopy.generated import Interface
from canopy.wire import ObjectRef

Swap = Callable[[Any], Any]
Resolve = Callable[[ObjectRef, type[Interface]], Any]
Reader = Callable[[Any, Resolve], Any]


def to_refs(value: Any, swap: Swap) -> Any:
    """``value`` with every interface object replaced by ``swap(obj)`` (a descriptor)."""
    if isinstance(value, Interface):
        return swap(value)
    return _walk(value, lambda v: swap(v) if isinstance(v, Interface) else _NOT_A_REF)


def from_refs(value: Any, swap: Swap) -> Any:
    """``value`` with every ``ObjectRef`` replaced by ``swap(ref)`` (an object or proxy)."""
    if isinstance(value, ObjectRef):
        return swap(value)
    return _walk(value, lambda v: swap(v) if isinstance(v, ObjectRef) else _NOT_A_REF)


def deeper_than(value: Any, limit: int) -> bool:
    """Whether containers and structs nest more than ``limit`` levels deep in ``value``.

    Iterative, so that the check itself never meets Python's recursion limit.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, msgspec.Struct):
            children: Any = (getattr(item, f) for f in item.__struct_fields__)
        elif isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list | tuple | set | frozenset):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def ref_reader(type_: Any) -> Reader | None:
    """How to turn the ``ObjectRef``s of a decoded ``type_`` value into objects, each
    with the interface class its field declares; ``None`` when ``type_`` holds none.

    A reference's class comes from the receiver's type, never from the interface
    id the sender wrote. The reader is built once per type and visits only the
    fields and items on the way to a reference.
    """
    try:
        return _readers[type_]
    except KeyError:
        found = _readers[type_] = _Readers().build(mi.type_info(type_))
        return found


_readers: dict[Any, Reader | None] = {}


class _Readers:
    def __init__(self) -> None:
        # Recursive structs meet themselves: a reader under construction is reached
        # through its cell, filled in once it is built.
        self._cells: dict[int, list[Reader | None]] = {}

    def build(self, t: mi.Type) -> Reader | None:
        if isinstance(t, mi.CustomType) and issubclass(t.cls, Interface):
            cls = t.cls
            return lambda v, resolve: resolve(v, cls) if isinstance(v, ObjectRef) else v
        if isinstance(t, mi.Metadata):
            return self.build(t.type)
        if isinstance(t, mi.StructType):
            return self._struct(t)
        if isinstance(t, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
            item = self.build(t.item_type)
            return None if item is None else _sequence(item, _container_class(t))
        if isinstance(t, mi.TupleType):
            items = [self.build(i) for i in t.item_types]
            if not any(items):
                return None
            return lambda v, resolve: tuple(
                r(x, resolve) if r is not None else x for r, x in zip(items, v, strict=True)
            )
        if isinstance(t, mi.DictType):
            value = self.build(t.value_type)
            if value is None:
                return None
            return lambda v, resolve: {k: value(x, resolve) for k, x in v.items()}
        if isinstance(t, mi.UnionType):
            return self._union(t)
        return None

    def _struct(self, t: mi.StructType) -> Reader | None:
        seen = self._cells.get(id(t))
        if seen is not None:
            return lambda v, resolve: seen[0](v, resolve) if seen[0] is not None else v
        cell: list[Reader | None] = [None]
        self._cells[id(t)] = cell
        fields = [(f.name, r) for f in t.fields if (r := self.build(f.type)) is not None]
        if not fields:
            return None

        def read(v: Any, resolve: Resolve) -> Any:
            changes = {name: r(getattr(v, name), resolve) for name, r in fields}
            return msgspec.structs.replace(v, **changes)

        cell[0] = read
        return read

    def _union(self, t: mi.UnionType) -> Reader | None:
        # Alternatives are told apart by class: a reference is an ObjectRef, a
        # variant's alternatives are distinct wrapper structs.
        choices: list[tuple[type[Any], Reader]] = []
        for alt in t.types:
            inner = alt.type if isinstance(alt, mi.Metadata) else alt
            r = self.build(inner)
            if r is None:
                continue
            if isinstance(inner, mi.CustomType):
                choices.append((ObjectRef, r))
            elif isinstance(inner, mi.StructType):
                choices.append((typing.get_origin(inner.cls) or inner.cls, r))
            else:
                choices.append((_container_class(inner), r))
        if not choices:
            return None

        def read(v: Any, resolve: Resolve) -> Any:
            for cls, r in choices:
                if isinstance(v, cls):
                    return r(v, resolve)
            return v

        return read


def _sequence(item: Reader, cls: type[Any]) -> Reader:
    return lambda v, resolve: cls(item(x, resolve) for x in v)


def _container_class(t: mi.Type) -> type[Any]:
    if isinstance(t, mi.DictType):
        return dict
    if isinstance(t, mi.TupleType | mi.VarTupleType):
        return tuple
    if isinstance(t, mi.SetType | mi.FrozenSetType):
        return set if isinstance(t, mi.SetType) else frozenset
    return list


_NOT_A_REF = object()


def _walk(value: Any, leaf: Callable[[Any], Any]) -> Any:
    swapped = leaf(value)
    if swapped is not _NOT_A_REF:
        return swapped
    if isinstance(value, msgspec.Struct) and not isinstance(value, ObjectRef):
        changes = {}
        for name in value.__struct_fields__:
            field = getattr(value, name)
            new = _walk(field, leaf)
            if new is not field:
                changes[name] = new
        return msgspec.structs.replace(value, **changes) if changes else value
    if isinstance(value, list | tuple):
        items = [_walk(v, leaf) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items) if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        pairs = {k: _walk(v, leaf) for k, v in value.items()}
        if all(pairs[k] is v for k, v in value.items()):
            return value
        return pairs
    return value
