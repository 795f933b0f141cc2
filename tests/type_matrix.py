"""The type-matrix IDL (every type the encodings carry), hypothesis strategies that draw a
value of any of its types from the type tree the codecs read, and a comparison in
which NaN equals NaN."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import strategies as st

import canopy
from canopy.generated import float32, int8, int32, int128, uint8, uint64, uint128
from canopy.runtime._proxy import LocalOptimistic
from canopy.wire import ObjectRef
from canopy.wire.codecs import _schema as t

MATRIX_IDL = Path(__file__).resolve().parent / "type_matrix.idl"
matrix: Any = canopy.load_idl(MATRIX_IDL).matrix

STRUCTS = [
    "leaf",
    "integers",
    "floats",
    "texts",
    "containers",
    "optionals",
    "variants",
    "refs",
    "enums",
    "generic",
    "tree",
    "base_s",
    "derived_s",
    "everything",
]
INTERFACES = ["i_peer", "i_matrix"]

# Types that are not structs: each travels on its own (protobuf wraps it in a message).
BARE: dict[str, Any] = {
    "uint8": uint8,
    "int8": int8,
    "uint64": uint64,
    "int128": int128,
    "uint128": uint128,
    "float32": float32,
    "list[int32]": list[int32],
    "dict[str, float]": dict[str, float],
    "optional[str]": str | None,
    "set[str]": set[str],
}


def matrix_types() -> dict[str, Any]:
    """Every struct of the matrix and every method's [in] and [out] record, by a name."""
    found: dict[str, Any] = {name: getattr(matrix, name) for name in STRUCTS}
    for interface in INTERFACES:
        for m in getattr(matrix, interface).__canopy__.methods:
            found[f"{interface}_{m.name}Request"] = m.in_type
            found[f"{interface}_{m.name}Response"] = m.out_type
    return found


TYPES = matrix_types()
# The types holding ``everything``: each draw is large, and every part of it has a
# test of its own, so they get fewer examples (``examples``).
COMPOSITE = frozenset({"everything", "i_matrix_allRequest", "i_matrix_allResponse"})
MAX_DEPTH = 3


def examples(name: str) -> int:
    return 6 if name in COMPOSITE else 30


def values(type: Any) -> st.SearchStrategy[Any]:
    """Any value of ``type``: integers at their limits, NaN and infinities, unicode."""
    return _strategy(t.schema(type), 0)


def _json() -> st.SearchStrategy[Any]:
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(-(1 << 63), (1 << 63) - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=5)
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        ),
        max_leaves=6,
    )


def _strategy(node: t.Node, depth: int) -> st.SearchStrategy[Any]:
    shallow = depth >= MAX_DEPTH
    if isinstance(node, t.Int):
        edges = [node.lo, node.hi, node.lo + 1, node.hi - 1, max(node.lo, 0)]
        return st.sampled_from(edges) | st.integers(node.lo, node.hi)
    if isinstance(node, t.Float):
        return st.floats(width=node.bits)  # type: ignore[arg-type]
    if isinstance(node, t.Bool):
        return st.booleans()
    if isinstance(node, t.Str):
        return st.text(max_size=8)
    if isinstance(node, t.Bytes):
        size = node.max_length if node.max_length is not None else 8
        return st.binary(min_size=node.min_length or 0, max_size=size)
    if isinstance(node, t.List):
        if node.min_length is not None:
            return st.lists(
                _strategy(node.item, depth), min_size=node.min_length, max_size=node.max_length
            )
        if shallow:
            return st.just([])
        return st.lists(_strategy(node.item, depth), max_size=3)
    if isinstance(node, t.Set):
        return st.just(set()) if shallow else st.sets(_strategy(node.item, depth), max_size=3)
    if isinstance(node, t.Map):
        if shallow:
            return st.just({})
        return st.dictionaries(_strategy(node.key, depth), _strategy(node.value, depth), max_size=3)
    if isinstance(node, t.Opt):
        return st.none() if shallow else st.none() | _strategy(node.inner, depth)
    if isinstance(node, t.Variant):
        return st.one_of([_strategy(a.node, depth).map(a.cls) for a in node.alternatives])
    if isinstance(node, t.Enum):
        assert node.cls is not None
        return st.sampled_from(list(node.cls))
    if isinstance(node, t.Ref):
        ids = st.integers(0, (1 << 64) - 1)
        return st.builds(ObjectRef, ids, ids, ids, st.integers(0, 1))
    if isinstance(node, t.Json):
        return _json()
    assert isinstance(node, t.Struct)
    fields = {f.name: _strategy(f.node, depth + 1) for f in node.fields}
    return st.builds(node.origin, **fields)


class _NaN:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, _NaN)

    def __hash__(self) -> int:
        return 0


def normal(value: Any) -> Any:
    """``value`` as plain data in which NaN equals NaN and types stay apart."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, float):
        return _NaN() if value != value else value
    if isinstance(value, enum.Enum):
        return (type(value).__qualname__, value.value)
    if isinstance(value, msgspec.Struct):
        fields = tuple(normal(getattr(value, f)) for f in value.__struct_fields__)
        return (type(value).__qualname__, fields)
    if isinstance(value, dict):
        return ("dict", frozenset((normal(k), normal(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("list", tuple(normal(v) for v in value))
    if isinstance(value, set | frozenset):
        return ("set", frozenset(normal(v) for v in value))
    if isinstance(value, bytes | bytearray | memoryview):
        return ("bytes", bytes(value))
    if isinstance(value, LocalOptimistic):  # an optimistic reference come home: weak
        return value._canopy_weak()
    return value


def same(a: Any, b: Any) -> bool:
    return bool(normal(a) == normal(b))
