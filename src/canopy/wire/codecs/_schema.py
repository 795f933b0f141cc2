"""The shape of a Canopy type, read once from its annotation: the small tree every codec
compiles its encoder and decoder from, and that the .proto generator builds from the
IDL, so that both arrive at the same protobuf messages.

The tree says what msgspec's own type information leaves implicit: an integer's
IDL width (``Meta.extra["canopy_int"]``), a 32-bit ``float``
(``Meta.extra["canopy_float"]``), a variant as its indexed alternatives, an
interface pointer as a reference (``ObjectRef`` at this layer), and
``json::v1::object``. Struct and enum nodes are shared wherever a type recurs, so
a recursive struct is a cycle in the tree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import msgspec
import msgspec.inspect as mi

from canopy import generated
from canopy.wire._messages import ObjectRef

WIDE = frozenset({"int128", "uint128"})  # widths beyond what MessagePack carries natively


@dataclass(frozen=True, slots=True)
class Int:
    width: str  # "int8" ... "uint128", the keys of canopy.generated.INTEGER_RANGES
    lo: int
    hi: int

    @property
    def wide(self) -> bool:
        return self.width in WIDE


@dataclass(frozen=True, slots=True)
class Float:
    bits: int  # 32 (IDL float) or 64 (double)


@dataclass(frozen=True, slots=True)
class Bool:
    pass


@dataclass(frozen=True, slots=True)
class Str:
    pass


@dataclass(frozen=True, slots=True)
class Bytes:
    min_length: int | None = None
    max_length: int | None = None


@dataclass(frozen=True, slots=True)
class List:
    item: Node
    min_length: int | None = None
    max_length: int | None = None


@dataclass(frozen=True, slots=True)
class Set:
    item: Node


@dataclass(frozen=True, slots=True)
class Map:
    key: Node
    value: Node


@dataclass(frozen=True, slots=True)
class Opt:
    """``rpc::optional<T>`` or ``rpc::nullable<T>``: the value may be None."""

    inner: Node


@dataclass(frozen=True, slots=True)
class Alternative:
    index: int
    node: Node
    cls: Any = None  # canopy.generated.Alt<index>; None when read from the IDL


@dataclass(frozen=True, slots=True)
class Variant:
    alternatives: tuple[Alternative, ...]


@dataclass(eq=False, slots=True)
class Enum:
    """An IDL enum or error domain; ``values`` are (IDL name, number), aliases included."""

    name: str
    values: tuple[tuple[str, int], ...]
    cls: type[enum.IntEnum] | None = None


@dataclass(frozen=True, slots=True)
class Ref:
    """An interface pointer: an ``ObjectRef`` at the encoding layer."""

    interface: str = ""


@dataclass(frozen=True, slots=True)
class Json:
    """``json::v1::object``: any JSON value."""


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # the Python attribute
    wire: str  # the IDL name, which every encoding uses
    node: Node
    required: bool = True
    default: Any = msgspec.NODEFAULT
    factory: Any = msgspec.NODEFAULT

    @property
    def omittable(self) -> bool:
        """An ``rpc::optional`` whose absence reads back as None: omitted when None."""
        return isinstance(self.node, Opt) and not self.required and self.default is None


@dataclass(eq=False, slots=True)
class Struct:
    name: str
    fields: tuple[Field, ...] = ()  # filled in after creation, so a struct can contain itself
    cls: Any = None  # the class (or generic alias) to build; None when read from the IDL
    array_like: bool = False

    @property
    def origin(self) -> Any:
        """The class to instantiate (``box`` for ``box[int]``)."""
        return getattr(self.cls, "__origin__", self.cls)


Node = (
    Int | Float | Bool | Str | Bytes | List | Set | Map | Opt | Variant | Enum | Ref | Json | Struct
)

_ALTERNATIVES: dict[Any, int] = {
    getattr(generated, f"Alt{i}"): i for i in range(generated.MAX_VARIANT_ALTERNATIVES)
}
_JSON_KINDS = frozenset(
    {mi.DictType, mi.ListType, mi.StrType, mi.IntType, mi.FloatType, mi.BoolType, mi.NoneType}
)


def schema(type: Any) -> Node:
    """The tree for ``type``; ``TypeError`` if it is not a type Canopy can encode."""
    try:
        info = mi.type_info(type)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{type!r} is not a type Canopy can encode: {exc}") from None
    return _Reader(type).read(info)


def enum_node(cls: type[enum.IntEnum]) -> Enum:
    # The generator records IDL names that Python had to rename (``None`` -> ``None_``).
    renamed: dict[str, str] = getattr(cls, "__canopy_names__", {})
    values = tuple((renamed.get(name, name), int(m)) for name, m in cls.__members__.items())
    return Enum(cls.__qualname__, values, cls)


class _Reader:
    def __init__(self, top: Any) -> None:
        self.top = top
        self.structs: dict[Any, Struct] = {}

    def unsupported(self, what: str) -> TypeError:
        return TypeError(f"{self.top!r} is not a type Canopy can encode: {what}")

    def read(self, t: mi.Type) -> Node:
        if isinstance(t, mi.Metadata):
            extra = t.extra or {}
            width = extra.get("canopy_int")
            if isinstance(width, str) and width in generated.INTEGER_RANGES:
                return Int(width, *generated.INTEGER_RANGES[width])
            if extra.get("canopy_float") == "float":
                return Float(32)
            return self.read(t.type)
        if isinstance(t, mi.IntType):
            return Int("int64", *generated.INTEGER_RANGES["int64"])
        if isinstance(t, mi.FloatType):
            return Float(64)
        if isinstance(t, mi.BoolType):
            return Bool()
        if isinstance(t, mi.StrType):
            return Str()
        if isinstance(t, mi.BytesType | mi.ByteArrayType | mi.MemoryViewType):
            return Bytes(t.min_length, t.max_length)
        if isinstance(t, mi.ListType | mi.VarTupleType):
            return List(self.read(t.item_type), t.min_length, t.max_length)
        if isinstance(t, mi.SetType | mi.FrozenSetType):
            return Set(self.read(t.item_type))
        if isinstance(t, mi.DictType):
            return Map(self.read(t.key_type), self.read(t.value_type))
        if isinstance(t, mi.UnionType):
            return self.union(t)
        if isinstance(t, mi.EnumType):
            if not issubclass(t.cls, enum.IntEnum):
                raise self.unsupported(f"{t.cls.__qualname__} is not an IntEnum")
            return enum_node(t.cls)
        if isinstance(t, mi.StructType):
            if t.cls is ObjectRef:
                return Ref()
            if getattr(t.cls, "__origin__", t.cls) in _ALTERNATIVES:
                return Variant((self.alternative(t),))
            return self.struct(t)
        if isinstance(t, mi.CustomType) and issubclass(t.cls, generated.Interface):
            info = getattr(t.cls, "__canopy__", None)
            return Ref(info.name if isinstance(info, generated.InterfaceInfo) else "")
        raise self.unsupported(f"{type(t).__name__} is not part of the IDL type system")

    def union(self, t: mi.UnionType) -> Node:
        if {type(x) for x in t.types} == _JSON_KINDS and len(t.types) == len(_JSON_KINDS):
            return Json()
        rest = [x for x in t.types if not isinstance(x, mi.NoneType)]
        alternatives = [
            x
            for x in rest
            if isinstance(x, mi.StructType) and getattr(x.cls, "__origin__", x.cls) in _ALTERNATIVES
        ]
        inner: Node
        if alternatives:
            if len(alternatives) != len(rest):
                raise self.unsupported("a union mixes variant alternatives with other types")
            found = sorted((self.alternative(x) for x in alternatives), key=lambda a: a.index)
            inner = Variant(tuple(found))
        elif len(rest) == 1:
            inner = self.read(rest[0])
        else:
            raise self.unsupported("a union that is neither optional nor a variant")
        return Opt(inner) if len(rest) < len(t.types) else inner

    def alternative(self, t: mi.StructType) -> Alternative:
        cls = getattr(t.cls, "__origin__", t.cls)
        return Alternative(_ALTERNATIVES[cls], self.read(t.fields[0].type), cls)

    def struct(self, t: mi.StructType) -> Struct:
        found = self.structs.get(t.cls)
        if found is not None:
            return found
        if t.tag_field is not None:
            raise self.unsupported(f"tagged struct {t.cls!r}")
        node = self.structs[t.cls] = Struct(_struct_name(t.cls), cls=t.cls, array_like=t.array_like)
        node.fields = tuple(
            Field(
                f.name,
                f.encode_name,
                self.read(f.type),
                f.required,
                f.default,
                f.default_factory,
            )
            for f in t.fields
        )
        return node


def _struct_name(cls: Any) -> str:
    origin = getattr(cls, "__origin__", None)
    if origin is None:
        return str(cls.__qualname__)
    args = ", ".join(getattr(a, "__qualname__", None) or repr(a) for a in cls.__args__)
    return f"{origin.__qualname__}[{args}]"


def contains(node: Node, test: Any) -> bool:
    """Whether any node reachable from ``node`` satisfies ``test`` (cycles included)."""
    seen: set[int] = set()

    def visit(n: Node) -> bool:
        if test(n):
            return True
        if isinstance(n, Struct):
            if id(n) in seen:
                return False
            seen.add(id(n))
            return any(visit(f.node) for f in n.fields)
        if isinstance(n, List | Set):
            return visit(n.item)
        if isinstance(n, Opt):
            return visit(n.inner)
        if isinstance(n, Map):
            return visit(n.key) or visit(n.value)
        if isinstance(n, Variant):
            return any(visit(a.node) for a in n.alternatives)
        return False

    return visit(node)


def unbounded(node: Node) -> bool:
    """Whether values of ``node`` can nest without limit: it holds a
    ``json::v1::object`` or a struct that contains itself. Any other type's
    nesting is fixed by the IDL."""
    if contains(node, lambda n: isinstance(n, Json)):
        return True
    structs: list[Struct] = []

    def collect(n: Node) -> bool:
        if isinstance(n, Struct):
            structs.append(n)
        return False

    contains(node, collect)
    return any(contains(f.node, lambda n, s=s: n is s) for s in structs for f in s.fields)


def describe(node: Node) -> str:
    """A short name for errors: ``uint32``, ``list[string]``, ``point``."""
    match node:
        case Int(width=width):
            return width
        case Float(bits=bits):
            return "float" if bits == 32 else "double"
        case Bool():
            return "bool"
        case Str():
            return "string"
        case Bytes():
            return "bytes"
        case List(item=item):
            return f"list[{describe(item)}]"
        case Set(item=item):
            return f"set[{describe(item)}]"
        case Map(key=key, value=value):
            return f"map[{describe(key)}, {describe(value)}]"
        case Opt(inner=inner):
            return f"optional[{describe(inner)}]"
        case Variant(alternatives=alternatives):
            return f"variant[{', '.join(describe(a.node) for a in alternatives)}]"
        case Enum(name=name) | Struct(name=name):
            return name
        case Ref():
            return "ObjectRef"
        case Json():
            return "json"
    return "value"


__all__ = [
    "WIDE",
    "Alternative",
    "Bool",
    "Bytes",
    "Enum",
    "Field",
    "Float",
    "Int",
    "Json",
    "List",
    "Map",
    "Node",
    "Opt",
    "Ref",
    "Set",
    "Str",
    "Struct",
    "Variant",
    "contains",
    "describe",
    "enum_node",
    "schema",
]
