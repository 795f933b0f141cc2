"""Interface references inside values: swapped for ``ObjectRef`` descriptors before a
codec encodes them, and back into objects or proxies after it decodes.

The binary fast path does this inside msgspec (encode and decode hooks); every
other encoding sees only plain values and ``ObjectRef`` records, so the swap is
a walk over the value. Only values whose type can hold a reference are walked
(the plans know which), and the walk copies just the containers on the way to
a reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from canopy.generated import Interface
from canopy.wire import ObjectRef

Swap = Callable[[Any], Any]


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
