"""The checked model of an IDL file: what the parser produces and every generator reads.

Theory of operation: the parser builds these frozen records straight from the
syntax tree; the checker (``_checks``) then validates them and resolves every
``NamedType`` to the qualified name of its definition, so that consumers never
have to repeat C++ name lookup. A ``Model`` owns an index from qualified name
to definition, covering both the file's own definitions and those it imported.

Qualified names are written with ``::`` and include inline namespaces
(``calculator::v1::i_calculator``); ``Model.lookup`` also accepts the short
form an inline namespace makes visible (``calculator::i_calculator``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

# ---------------------------------------------------------------- locations


@dataclass(frozen=True, slots=True)
class Location:
    """A position in an IDL source file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


NOWHERE = Location("<builtin>", 0, 0)

# ---------------------------------------------------------------- attributes

AttributeValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Attribute:
    """One ``name`` or ``name=value`` entry of an ``[...]`` list."""

    name: str
    value: AttributeValue = None
    location: Location = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class Attributes:
    """An ordered attribute list with lookups by name."""

    items: tuple[Attribute, ...] = ()

    def has(self, name: str) -> bool:
        return any(a.name == name for a in self.items)

    def get(self, name: str, default: AttributeValue = None) -> AttributeValue:
        for a in self.items:
            if a.name == name:
                return a.value
        return default

    def find(self, name: str) -> Attribute | None:
        for a in self.items:
            if a.name == name:
                return a
        return None

    @property
    def description(self) -> str | None:
        value = self.get("description")
        return value if isinstance(value, str) else None

    @property
    def deprecated(self) -> bool:
        return self.has("deprecated") or self.get("status") == "deprecated"

    def __iter__(self) -> Iterator[Attribute]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


NO_ATTRIBUTES = Attributes()

# ---------------------------------------------------------------- types


class Primitive(enum.Enum):
    """Built-in scalar types, by their canonical fixed-width name."""

    BOOL = "bool"
    INT8 = "int8_t"
    UINT8 = "uint8_t"
    INT16 = "int16_t"
    UINT16 = "uint16_t"
    INT32 = "int32_t"
    UINT32 = "uint32_t"
    INT64 = "int64_t"
    UINT64 = "uint64_t"
    INT128 = "__int128"
    UINT128 = "unsigned __int128"
    FLOAT = "float"
    DOUBLE = "double"
    STRING = "std::string"
    ERROR_CODE = "error_code"
    VOID = "void"

    @property
    def is_integer(self) -> bool:
        return self in _INTEGER_RANGES

    @property
    def is_float(self) -> bool:
        return self in (Primitive.FLOAT, Primitive.DOUBLE)

    @property
    def int_range(self) -> tuple[int, int]:
        """The inclusive range of an integer type; ``error_code`` is an int32."""
        return _INTEGER_RANGES[self]


def _signed(bits: int) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def _unsigned(bits: int) -> tuple[int, int]:
    return (0, (1 << bits) - 1)


_INTEGER_RANGES: dict[Primitive, tuple[int, int]] = {
    Primitive.INT8: _signed(8),
    Primitive.UINT8: _unsigned(8),
    Primitive.INT16: _signed(16),
    Primitive.UINT16: _unsigned(16),
    Primitive.INT32: _signed(32),
    Primitive.UINT32: _unsigned(32),
    Primitive.INT64: _signed(64),
    Primitive.UINT64: _unsigned(64),
    Primitive.INT128: _signed(128),
    Primitive.UINT128: _unsigned(128),
    Primitive.ERROR_CODE: _signed(32),
}


@dataclass(frozen=True, slots=True)
class PrimitiveType:
    kind: Primitive


@dataclass(frozen=True, slots=True)
class VectorType:
    """``std::vector<T>``; a vector of ``uint8_t`` or ``char`` is a byte string."""

    element: TypeRef


@dataclass(frozen=True, slots=True)
class ArrayType:
    """``std::array<T, N>``: exactly ``size`` elements."""

    element: TypeRef
    size: int


class MapKind(enum.Enum):
    MAP = "std::map"
    UNORDERED_MAP = "std::unordered_map"
    FLAT_MAP = "std::flat_map"


@dataclass(frozen=True, slots=True)
class MapType:
    key: TypeRef
    value: TypeRef
    kind: MapKind = MapKind.MAP


class SetKind(enum.Enum):
    SET = "std::set"
    UNORDERED_SET = "std::unordered_set"


@dataclass(frozen=True, slots=True)
class SetType:
    element: TypeRef
    kind: SetKind = SetKind.SET


@dataclass(frozen=True, slots=True)
class OptionalType:
    """``rpc::optional<T>``: the value may be absent (omitted on the wire)."""

    inner: TypeRef


@dataclass(frozen=True, slots=True)
class NullableType:
    """``rpc::nullable<T>``: the value is always present but may be null."""

    inner: TypeRef


@dataclass(frozen=True, slots=True)
class VariantType:
    """``rpc::variant<A, B, ...>``: exactly one alternative, identified by index."""

    alternatives: tuple[TypeRef, ...]


@dataclass(frozen=True, slots=True)
class InterfaceType:
    """``rpc::shared_ptr<I>`` (owning) or ``rpc::optimistic_ptr<I>`` (non-owning)."""

    interface: str  # qualified name, resolved by the checker
    owning: bool


@dataclass(frozen=True, slots=True)
class JsonType:
    """``json::v1::object``: an arbitrary JSON value."""


@dataclass(frozen=True, slots=True)
class NamedType:
    """A reference to a user definition (struct, enum, error domain or typedef).

    ``name`` is the qualified name of the definition once checked; before the
    checker runs it is the name as written. ``args`` instantiates a template.
    """

    name: str
    args: tuple[TypeRef, ...] = ()


@dataclass(frozen=True, slots=True)
class TemplateParamType:
    """A template parameter (``T``) used inside a template struct."""

    name: str


TypeRef = (
    PrimitiveType
    | VectorType
    | ArrayType
    | MapType
    | SetType
    | OptionalType
    | NullableType
    | VariantType
    | InterfaceType
    | JsonType
    | NamedType
    | TemplateParamType
)

# ---------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class EnumValueRef:
    """A default that names an enum value: ``encoding::yas_binary``."""

    enum: str  # qualified name of the enum
    value: str


@dataclass(frozen=True, slots=True)
class ConstantRef:
    """A default that names a constant (``static constexpr``) by qualified name."""

    name: str


Value = int | float | str | bool | None | EnumValueRef | ConstantRef | tuple["Value", ...]

# ---------------------------------------------------------------- definitions


@dataclass(frozen=True, slots=True)
class Constant:
    """``static constexpr T name = value;`` inside a struct or interface."""

    name: str
    type: TypeRef
    value: Value
    attributes: Attributes = NO_ATTRIBUTES
    location: Location = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class EnumValue:
    name: str
    value: int
    attributes: Attributes = NO_ATTRIBUTES
    explicit: bool = False  # written with ``= value`` in the source
    location: Location = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class Enum:
    name: str
    qualified_name: str
    values: tuple[EnumValue, ...]
    underlying: Primitive | None = None
    is_class: bool = False
    attributes: Attributes = NO_ATTRIBUTES
    location: Location = field(default=NOWHERE, compare=False)
    imported: bool = False


@dataclass(frozen=True, slots=True)
class ErrorValue:
    name: str
    code: int  # positive: application codes
    attributes: Attributes = NO_ATTRIBUTES
    explicit: bool = False
    location: Location = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class ErrorDomain:
    """``error name { A, B = 7 };``: positive application error codes."""

    name: str
    qualified_name: str
    values: tuple[ErrorValue, ...]
    attributes: Attributes = NO_ATTRIBUTES
    location: Location = field(default=NOWHERE, compare=False)
    imported: bool = False


@dataclass(frozen=True, slots=True)
class Typedef:
    name: str
    qualified_name: str
    type: TypeRef
    attributes: Attributes = NO_ATTRIBUTES
    location: Location = field(default=NOWHERE, compare=False)
    imported: bool = False


class Access(enum.Enum):
    PUBLIC = "public"
    PRIVATE = "private"
    PROTECTED = "protected"


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: TypeRef
    default: Value = None
    has_default: bool = False
    attributes: Attributes = NO_ATTRIBUTES
    access: Access = Access.PUBLIC
    location: Location = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class Struct:
    name: str
    qualified_name: str
    fields: tuple[Field, ...]
    base: str | None = None  # qualified name of the base struct
    template_params: tuple[str, ...] = ()
    constants: tuple[Constant, ...] = ()
    attributes: Attributes = NO_ATTRIBUTES
    location: Location = field(default=NOWHERE, compare=False)
    imported: bool = False

    @property
    def is_template(self) -> bool:
        return bool(self.template_params)


class Direction(enum.Enum):
    IN = "in"
    OUT = "out"
    IN_OUT = "in, out"


class Passing(enum.Enum):
    """How the C++ signature passes a parameter; kept for printing and seeds."""

    VALUE = ""
    CONST_REF = "const&"
    REF = "&"
    RVALUE = "&&"
    CONST_VALUE = "const"


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    type: TypeRef
    direction: Direction = Direction.IN
    passing: Passing = Passing.VALUE
    attributes: Attributes = NO_ATTRIBUTES
    location: Location = field(default=NOWHERE, compare=False)


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    id: int  # 1-based declaration order within the interface
    return_type: TypeRef
    parameters: tuple[Parameter, ...]
    attributes: Attributes = NO_ATTRIBUTES
    location: Location = field(default=NOWHERE, compare=False)

    @property
    def is_post(self) -> bool:
        return self.attributes.has("post")

    @property
    def is_const(self) -> bool:
        return self.attributes.has("const")

    @property
    def deprecated(self) -> bool:
        return self.attributes.deprecated

    @property
    def description(self) -> str | None:
        return self.attributes.description

    @property
    def tag(self) -> int:
        value = self.attributes.get("tag", 0)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @property
    def inputs(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if p.direction is not Direction.OUT)

    @property
    def outputs(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if p.direction is not Direction.IN)


@dataclass(frozen=True, slots=True)
class Interface:
    name: str
    qualified_name: str
    methods: tuple[Method, ...]
    bases: tuple[str, ...] = ()  # qualified names of base interfaces
    constants: tuple[Constant, ...] = ()
    attributes: Attributes = NO_ATTRIBUTES
    location: Location = field(default=NOWHERE, compare=False)
    imported: bool = False

    @property
    def status(self) -> str | None:
        value = self.attributes.get("status")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    qualified_name: str
    members: tuple[Definition, ...]
    inline: bool = False
    attributes: Attributes = NO_ATTRIBUTES
    location: Location = field(default=NOWHERE, compare=False)
    imported: bool = False


Definition = Namespace | Enum | ErrorDomain | Typedef | Struct | Interface
TypeDefinition = Enum | ErrorDomain | Typedef | Struct | Interface

# ---------------------------------------------------------------- the model


@dataclass(frozen=True)
class Model:
    """A checked IDL file: its definitions, those it imported, and an index of both.

    ``definitions`` holds the top-level definitions of the file itself (with
    ``#include``d text merged in); ``imports`` the paths it imported. The
    index covers everything, so a generator can resolve any ``NamedType``.
    """

    path: str
    definitions: tuple[Definition, ...]
    imports: tuple[str, ...] = ()
    index: dict[str, TypeDefinition | Namespace] = field(default_factory=dict, compare=False)
    aliases: dict[str, str] = field(default_factory=dict, compare=False)
    fingerprints: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def lookup(self, name: str) -> TypeDefinition | Namespace:
        """The definition called ``name`` (qualified, inline namespaces optional)."""
        found = self.index.get(name) or self.index.get(self.aliases.get(name, ""))
        if found is None:
            raise KeyError(name)
        return found

    def walk(self, *, include_imported: bool = False) -> Iterator[TypeDefinition | Namespace]:
        """Every definition in declaration order, namespaces before their members."""

        def visit(members: tuple[Definition, ...]) -> Iterator[TypeDefinition | Namespace]:
            for d in members:
                if d.imported and not include_imported:
                    continue
                yield d
                if isinstance(d, Namespace):
                    yield from visit(d.members)

        yield from visit(self.definitions)

    def interfaces(self, *, include_imported: bool = False) -> list[Interface]:
        return [d for d in self.walk(include_imported=include_imported) if isinstance(d, Interface)]

    def structs(self, *, include_imported: bool = False) -> list[Struct]:
        return [d for d in self.walk(include_imported=include_imported) if isinstance(d, Struct)]

    def resolve(self, t: TypeRef) -> TypeRef:
        """Follow typedefs until the type is not a typedef reference."""
        seen: set[str] = set()
        while isinstance(t, NamedType) and t.name not in seen:
            seen.add(t.name)
            d = self.index.get(t.name)
            if not isinstance(d, Typedef):
                break
            t = d.type
        return t

    def all_methods(self, interface: Interface) -> list[tuple[Interface, Method]]:
        """Methods of ``interface`` and its bases, bases first, each base once."""
        out: list[tuple[Interface, Method]] = []
        seen: set[str] = set()

        def visit(i: Interface) -> None:
            if i.qualified_name in seen:
                return
            seen.add(i.qualified_name)
            for b in i.bases:
                base = self.index.get(b)
                if isinstance(base, Interface):
                    visit(base)
            out.extend((i, m) for m in i.methods)

        visit(interface)
        return out
