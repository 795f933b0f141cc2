"""From preprocessed IDL text to unchecked model records.

The lark grammar lives in ``_grammar.lark``. The builder below turns the parse
into the model's own records with names as written (qualified names empty);
``_checks`` then places them in their namespaces, resolves names and checks
them. Errors that only the shape of a type reveals (a raw pointer,
``std::optional``) are reported here, where the location is at hand.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import lark
from lark import Token

from canopy.idl._diagnostics import Reporter
from canopy.idl._model import (
    Access,
    ArrayType,
    Attribute,
    Attributes,
    AttributeValue,
    Constant,
    Definition,
    Direction,
    Enum,
    EnumValue,
    ErrorDomain,
    ErrorValue,
    Field,
    Interface,
    InterfaceType,
    JsonType,
    Location,
    MapKind,
    MapType,
    Method,
    NamedType,
    Namespace,
    NullableType,
    OptionalType,
    Parameter,
    Passing,
    Primitive,
    PrimitiveType,
    SetKind,
    SetType,
    Struct,
    Typedef,
    TypeRef,
    Value,
    VariantType,
    VectorType,
)

# What the preprocessor hands over: the text and, per line, where it came from.
LineOrigin = Callable[[int], tuple[str, int]]

BUILTIN_TYPES: dict[str, Primitive] = {
    "bool": Primitive.BOOL,
    "float": Primitive.FLOAT,
    "double": Primitive.DOUBLE,
    "void": Primitive.VOID,
    "error_code": Primitive.ERROR_CODE,
    "std::string": Primitive.STRING,
    "size_t": Primitive.UINT64,
    "ssize_t": Primitive.INT64,
    "ptrdiff_t": Primitive.INT64,
    "intptr_t": Primitive.INT64,
    "uintptr_t": Primitive.UINT64,
    "int128_t": Primitive.INT128,
    "uint128_t": Primitive.UINT128,
    "__int128_t": Primitive.INT128,
    "__uint128_t": Primitive.UINT128,
}
for _width in (8, 16, 32, 64):
    BUILTIN_TYPES[f"int{_width}_t"] = Primitive[f"INT{_width}"]
    BUILTIN_TYPES[f"uint{_width}_t"] = Primitive[f"UINT{_width}"]
for _fixed in [n for n in BUILTIN_TYPES if n.endswith("_t")]:
    BUILTIN_TYPES["std::" + _fixed] = BUILTIN_TYPES[_fixed]

# (signed, core words) -> type; LP64 sizes, as on every platform Canopy runs on.
_INT_SPELLINGS: dict[tuple[str, ...], Primitive] = {
    ("char",): Primitive.INT8,
    ("short",): Primitive.INT16,
    ("short", "int"): Primitive.INT16,
    ("int",): Primitive.INT32,
    ("long",): Primitive.INT64,
    ("long", "int"): Primitive.INT64,
    ("long", "long"): Primitive.INT64,
    ("long", "long", "int"): Primitive.INT64,
    ("__int128",): Primitive.INT128,
}
_UNSIGNED = {
    Primitive.INT8: Primitive.UINT8,
    Primitive.INT16: Primitive.UINT16,
    Primitive.INT32: Primitive.UINT32,
    Primitive.INT64: Primitive.UINT64,
    Primitive.INT128: Primitive.UINT128,
}

# Wrappers the generator rejects, with what to write instead.
_REJECTED_TEMPLATES = {
    "std::optional": "std::optional is not allowed: use rpc::optional<T>",
    "std::variant": "std::variant is not allowed: use rpc::variant<T...>",
    "std::shared_ptr": "std::shared_ptr is not allowed: use rpc::shared_ptr<I> for an owning "
    "interface reference",
    "std::unique_ptr": "std::unique_ptr is not allowed: use rpc::shared_ptr<I> for an owning "
    "interface reference",
    "std::weak_ptr": "std::weak_ptr is not allowed: use rpc::optimistic_ptr<I> for a non-owning "
    "interface reference",
}
_MAP_KINDS = {k.value: k for k in MapKind}
_SET_KINDS = {k.value: k for k in SetKind}
_JSON_NAMES = ("json::v1::object", "json::object")


@functools.cache
def _lark() -> lark.Lark:
    grammar = resources.files("canopy.idl").joinpath("_grammar.lark").read_text("utf-8")
    return lark.Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
        cache=False,
    )


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Expr:
    """A constant expression not yet evaluated because it names something."""

    op: str
    args: tuple[Any, ...]
    location: Location


class EvalError(Exception):
    pass


def evaluate(value: Any, names: Callable[[str], int | None]) -> Value:
    """Evaluate an ``Expr`` tree; ``names`` gives the integer a name stands for."""
    if not isinstance(value, Expr):
        return value  # type: ignore[no-any-return]
    if value.op == "name":
        found = names(value.args[0])
        if found is None:
            raise EvalError(f"'{value.args[0]}' is not a known constant")
        return found
    if value.op == "list":
        return tuple(evaluate(v, names) for v in value.args)
    operands = [evaluate(v, names) for v in value.args]
    if not all(isinstance(o, int | float) and not isinstance(o, bool) for o in operands):
        raise EvalError("arithmetic needs numbers")
    return _apply(value.op, operands)


def _apply(op: str, operands: Sequence[Any]) -> int | float:
    a = operands[0]
    if op == "neg":
        return -a  # type: ignore[no-any-return]
    if op == "pos":
        return a  # type: ignore[no-any-return]
    if op == "inv":
        if not isinstance(a, int):
            raise EvalError("'~' needs an integer")
        return ~a
    b = operands[1]
    if op in ("div", "mod") and b == 0:
        raise EvalError("division by zero")
    if op == "add":
        return a + b  # type: ignore[no-any-return]
    if op == "sub":
        return a - b  # type: ignore[no-any-return]
    if op == "mul":
        return a * b  # type: ignore[no-any-return]
    if op == "div":
        return a // b if isinstance(a, int) and isinstance(b, int) else a / b
    if not (isinstance(a, int) and isinstance(b, int)):
        raise EvalError(f"'{op}' needs integers")
    if op == "mod":
        return a % b
    if op in ("shl", "shr") and not 0 <= b < 256:
        raise EvalError("shift count out of range")
    return {
        "shl": lambda: a << b,
        "shr": lambda: a >> b,
        "bit_or": lambda: a | b,
        "bit_and": lambda: a & b,
        "bit_xor": lambda: a ^ b,
    }[op]()


def parse_int(text: str) -> int:
    digits = text.replace("'", "").rstrip("uUlL")
    if digits[:2] in ("0x", "0X"):
        return int(digits[2:], 16)
    if digits[:2] in ("0b", "0B"):
        return int(digits[2:], 2)
    if len(digits) > 1 and digits[0] == "0":
        return int(digits[1:], 8)
    return int(digits)


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "x":
                j = i + 2
                while j < len(body) and body[j] in "0123456789abcdefABCDEF":
                    j += 1
                out.append(chr(int(body[i + 2 : j] or "0", 16)))
                i = j
                continue
            out.append(simple.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


# ---------------------------------------------------------------- the builder


@dataclass(frozen=True, slots=True)
class _Access:
    access: Access


@dataclass(frozen=True, slots=True)
class _Written:
    """A type as written, with what its declarator added (const, &, &&)."""

    type: TypeRef
    const: bool
    suffixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Template:
    params: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Bases:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Init:
    value: Any


@lark.v_args(meta=True)
class _Builder(lark.Transformer[Token, list[Definition]]):
    def __init__(self, origin: LineOrigin, reporter: Reporter) -> None:
        super().__init__()
        self._origin = origin
        self._reporter = reporter

    def _loc(self, meta: Any) -> Location:
        if getattr(meta, "empty", True):
            return Location("<unknown>", 0, 0)
        file, line = self._origin(meta.line)
        return Location(file, line, meta.column)

    def _tok_loc(self, token: Token) -> Location:
        file, line = self._origin(token.line or 1)
        return Location(file, line, token.column or 1)

    def _error(self, location: Location, message: str) -> None:
        self._reporter.error(location, message)

    # -- top level and namespaces

    def start(self, meta: Any, children: list[Any]) -> list[Definition]:
        return [c for c in children if c is not None]

    def empty(self, meta: Any, children: list[Any]) -> None:
        return None

    def namespace_def(self, meta: Any, children: list[Any]) -> Namespace:
        attrs = _take(children, Attributes) or Attributes()
        inline = any(isinstance(c, Token) and c.type == "INLINE" for c in children)
        name = next(c for c in children if isinstance(c, str) and not isinstance(c, Token))
        members = tuple(c for c in children if _is_definition(c))
        loc = self._loc(meta)
        if attrs.has("inline"):
            inline = True
        if name.startswith("::"):
            self._error(loc, f"namespace name '{name}' cannot start with '::'")
            name = name[2:]
        # C++17 nested form: namespace a::b { } is namespace a { namespace b { } }
        parts = name.split("::")
        ns = Namespace(parts[-1], "", members, inline, attrs, loc)
        for outer in reversed(parts[:-1]):
            ns = Namespace(outer, "", (ns,), False, Attributes(), loc)
        return ns

    # -- attributes

    def attributes(self, meta: Any, children: list[Any]) -> Attributes:
        return Attributes(tuple(children))

    def attribute(self, meta: Any, children: list[Any]) -> Attribute:
        name = str(children[0])
        value: AttributeValue = children[1] if len(children) > 1 else None
        return Attribute(name, value, self._loc(meta))

    def attr_name(self, meta: Any, children: list[Any]) -> str:
        return str(children[0]) if children else "error"

    def attr_string(self, meta: Any, children: list[Any]) -> str:
        return _unescape(str(children[0])[1:-1])

    def attr_int(self, meta: Any, children: list[Any]) -> int:
        return parse_int(str(children[0]))

    def attr_neg_int(self, meta: Any, children: list[Any]) -> int:
        return -parse_int(str(children[0]))

    def attr_float(self, meta: Any, children: list[Any]) -> float:
        return float(str(children[0]).rstrip("fFlL"))

    def attr_true(self, meta: Any, children: list[Any]) -> bool:
        return True

    def attr_false(self, meta: Any, children: list[Any]) -> bool:
        return False

    def attr_name_value(self, meta: Any, children: list[Any]) -> str:
        return str(children[0])

    # -- names

    def scoped_name(self, meta: Any, children: list[Any]) -> str:
        return "::".join(str(c) for c in children)

    def global_scoped_name(self, meta: Any, children: list[Any]) -> str:
        return "::" + "::".join(str(c) for c in children)

    # -- interfaces

    def bases(self, meta: Any, children: list[Any]) -> _Bases:
        return _Bases(tuple(children))

    def base(self, meta: Any, children: list[Any]) -> str:
        return str(children[-1])

    def access_label(self, meta: Any, children: list[Any]) -> _Access:
        return _Access(Access(str(children[0])))

    def interface_def(self, meta: Any, children: list[Any]) -> Interface:
        attrs = _take(children, Attributes) or Attributes()
        name = _name(children)
        bases = _take(children, _Bases)
        methods: list[Method] = []
        for c in children:
            if isinstance(c, Method):
                methods.append(Method(c.name, len(methods) + 1, *_rest_of_method(c)))
        constants = tuple(c for c in children if isinstance(c, Constant))
        return Interface(
            name,
            "",
            tuple(methods),
            bases.names if bases else (),
            constants,
            attrs,
            self._loc(meta),
        )

    def method(self, meta: Any, children: list[Any]) -> Method:
        attrs = _take(children, Attributes) or Attributes()
        written = _written(children)
        name = _name(children)
        params = tuple(c for c in children if isinstance(c, Parameter))
        loc = self._loc(meta)
        if written.suffixes:
            self._error(
                loc,
                f"method '{name}' returns a reference or pointer: a method returns "
                "error_code (or an error domain) and passes results through [out] parameters",
            )
        return Method(name, 0, written.type, params, attrs, loc)

    def parameter(self, meta: Any, children: list[Any]) -> Parameter:
        attrs = _take(children, Attributes) or Attributes()
        written = _written(children)
        names = [c for c in children if isinstance(c, Token) and c.type == "NAME"]
        loc = self._loc(meta)
        if not names:
            self._error(loc, "parameter needs a name: write the type followed by a name")
        name = str(names[0]) if names else "_"
        has_in, has_out = attrs.has("in"), attrs.has("out")
        direction = (
            Direction.IN_OUT if has_in and has_out else Direction.OUT if has_out else Direction.IN
        )
        kept = Attributes(tuple(a for a in attrs if a.name not in ("in", "out")))
        return Parameter(name, written.type, direction, _passing(written), kept, loc)

    # -- structs

    def template_header(self, meta: Any, children: list[Any]) -> _Template:
        return _Template(tuple(children))

    def template_param(self, meta: Any, children: list[Any]) -> str:
        return str(children[-1])

    def struct_def(self, meta: Any, children: list[Any]) -> Struct:
        attrs = _take(children, Attributes) or Attributes()
        template = _take(children, _Template)
        name = _name(children)
        bases = _take(children, _Bases)
        loc = self._loc(meta)
        if bases and len(bases.names) > 1:
            self._error(loc, f"struct '{name}' has several bases: a struct may inherit one struct")
        fields: list[Field] = []
        access = Access.PUBLIC
        for c in children:
            if isinstance(c, _Access):
                access = c.access
            elif isinstance(c, Field):
                fields.append(
                    Field(
                        c.name, c.type, c.default, c.has_default, c.attributes, access, c.location
                    )
                )
        constants = tuple(c for c in children if isinstance(c, Constant))
        return Struct(
            name,
            "",
            tuple(fields),
            bases.names[0] if bases else None,
            template.params if template else (),
            constants,
            attrs,
            loc,
        )

    def field(self, meta: Any, children: list[Any]) -> Field:
        attrs = _take(children, Attributes) or Attributes()
        written = _written(children)
        name = _name(children)
        init = _take(children, _Init)
        loc = self._loc(meta)
        if written.suffixes:
            self._error(loc, f"field '{name}' is a reference or pointer: a field holds its value")
        return Field(
            name,
            written.type,
            init.value if init else None,
            init is not None,
            attrs,
            Access.PUBLIC,
            loc,
        )

    def init_assign(self, meta: Any, children: list[Any]) -> _Init:
        return _Init(children[0])

    def init_braces(self, meta: Any, children: list[Any]) -> _Init:
        if len(children) == 1:
            return _Init(children[0])
        return _Init(Expr("list", tuple(children), self._loc(meta)))

    def constant(self, meta: Any, children: list[Any]) -> Constant:
        attrs = _take(children, Attributes) or Attributes()
        written = _written(children)
        value = children[-1]
        return Constant(_name(children), written.type, value, attrs, self._loc(meta))

    # -- enums, errors, typedefs

    def enum_def(self, meta: Any, children: list[Any]) -> Enum:
        attrs = _take(children, Attributes) or Attributes()
        is_class = any(isinstance(c, Token) and c.type == "CLASS" for c in children)
        name = _name(children)
        loc = self._loc(meta)
        underlying: Primitive | None = None
        written = _take(children, _Written)
        if written is not None:
            t = written.type
            if (
                isinstance(t, PrimitiveType)
                and t.kind.is_integer
                and t.kind is not Primitive.ERROR_CODE
            ):
                underlying = t.kind
            else:
                self._error(
                    loc,
                    f"enum '{name}' has an underlying type that is not an integer type: "
                    "use one of int8_t..uint64_t (or a C++ integer spelling)",
                )
        raw = [c for c in children if isinstance(c, tuple) and len(c) == 4 and c[0] == "enum_value"]
        values = self._number(raw, name, "enum")
        return Enum(
            name,
            "",
            tuple(EnumValue(*value) for value in values),
            underlying,
            is_class,
            attrs,
            loc,
        )

    def enum_value(self, meta: Any, children: list[Any]) -> tuple[str, Any, Attributes, Location]:
        return self._member("enum_value", meta, children)

    def error_value(self, meta: Any, children: list[Any]) -> tuple[str, Any, Attributes, Location]:
        return self._member("error_value", meta, children)

    def _member(
        self, kind: str, meta: Any, children: list[Any]
    ) -> tuple[str, Any, Attributes, Location]:
        attrs = _take(children, Attributes) or Attributes()
        name = _name(children)
        rest = [
            c
            for c in children
            if not isinstance(c, Attributes) and not (isinstance(c, Token) and c.type == "NAME")
        ]
        value = rest[0] if rest else _NO_VALUE
        return (kind, (name, value), attrs, self._loc(meta))

    def _number(
        self, raw: list[Any], owner: str, kind: str
    ) -> list[tuple[str, int, Attributes, bool, Location]]:
        """Give each value its number: written, else previous + 1 (first is 0, or 1 for errors)."""
        out: list[tuple[str, int, Attributes, bool, Location]] = []
        known: dict[str, int] = {}
        nxt = 0 if kind == "enum" else 1
        for _, (name, value), attrs, loc in raw:
            explicit = value is not _NO_VALUE
            number = nxt
            if explicit:
                try:
                    result = evaluate(value, known.get)
                except EvalError as e:
                    self._error(loc, f"value of '{owner}::{name}' is not a constant integer: {e}")
                    result = nxt
                if isinstance(result, int) and not isinstance(result, bool):
                    number = result
                else:
                    self._error(
                        loc, f"value of '{owner}::{name}' must be an integer, not {result!r}"
                    )
            known[name] = number
            out.append((name, number, attrs, explicit, loc))
            nxt = number + 1
        return out

    def error_def(self, meta: Any, children: list[Any]) -> ErrorDomain:
        attrs = _take(children, Attributes) or Attributes()
        name = _name(children)
        raw = [
            c for c in children if isinstance(c, tuple) and len(c) == 4 and c[0] == "error_value"
        ]
        values = self._number(raw, name, "error")
        loc = self._loc(meta)
        for vname, code, _, _, vloc in values:
            if code <= 0:
                self._error(
                    vloc,
                    f"error '{name}::{vname}' has code {code}: application error codes "
                    "are positive (negative codes belong to the framework, 0 is OK)",
                )
        return ErrorDomain(name, "", tuple(ErrorValue(*value) for value in values), attrs, loc)

    def typedef_def(self, meta: Any, children: list[Any]) -> Typedef:
        attrs = _take(children, Attributes) or Attributes()
        written = _written(children)
        return Typedef(_name(children), "", written.type, attrs, self._loc(meta))

    def using_def(self, meta: Any, children: list[Any]) -> Typedef:
        return self.typedef_def(meta, children)

    # -- types

    def type(self, meta: Any, children: list[Any]) -> _Written:
        const = isinstance(children[0], Token) and children[0].type == "CONST"
        rest = children[1:] if const else children
        t: TypeRef = rest[0]
        suffixes = tuple(str(s) for s in rest[1:])
        for s in suffixes:
            if s == "*":
                self._error(
                    self._loc(meta),
                    "raw pointers are not allowed: an address has no meaning in another address "
                    "space; pass the value, or an interface as rpc::shared_ptr<I> or "
                    "rpc::optimistic_ptr<I>",
                )
                break
        return _Written(t, const or "const" in suffixes, tuple(s for s in suffixes if s != "const"))

    def type_suffix(self, meta: Any, children: list[Any]) -> str:
        return str(children[0])

    def template_args(self, meta: Any, children: list[Any]) -> list[Any]:
        return children

    def int_arg(self, meta: Any, children: list[Any]) -> int:
        return parse_int(str(children[0]))

    def bool_type(self, meta: Any, children: list[Any]) -> TypeRef:
        return PrimitiveType(Primitive.BOOL)

    def float_type(self, meta: Any, children: list[Any]) -> TypeRef:
        return PrimitiveType(Primitive.FLOAT)

    def double_type(self, meta: Any, children: list[Any]) -> TypeRef:
        return PrimitiveType(Primitive.DOUBLE)

    def void_type(self, meta: Any, children: list[Any]) -> TypeRef:
        return PrimitiveType(Primitive.VOID)

    def int_core(self, meta: Any, children: list[Any]) -> tuple[str, ...]:
        return tuple(str(c) for c in children)

    def int_spelling(self, meta: Any, children: list[Any]) -> TypeRef:
        sign = str(children[0]) if isinstance(children[0], Token) else None
        core: tuple[str, ...] = children[-1] if isinstance(children[-1], tuple) else ("int",)
        kind = _INT_SPELLINGS[core]
        if sign == "unsigned":
            kind = _UNSIGNED[kind]
        return PrimitiveType(kind)

    def named_type(self, meta: Any, children: list[Any]) -> TypeRef:
        name: str = children[0]
        args: list[Any] = children[1] if len(children) > 1 else []
        loc = self._loc(meta)
        bare = name.removeprefix("::")
        if not args and len(children) == 1:
            if bare in BUILTIN_TYPES:
                return PrimitiveType(BUILTIN_TYPES[bare])
            if bare in _JSON_NAMES:
                return JsonType()
        if bare in _REJECTED_TEMPLATES:
            self._error(loc, _REJECTED_TEMPLATES[bare])
            return _first_type(args) or PrimitiveType(Primitive.VOID)
        return self._template_type(bare, name, args, loc, len(children) > 1)

    def _template_type(
        self, bare: str, written: str, args: list[Any], loc: Location, has_args: bool
    ) -> TypeRef:
        def arity(n: int, what: str) -> None:
            self._error(loc, f"{bare} takes {what}, got {len(args)}")
            return None

        types = [a.type for a in args if isinstance(a, _Written)]
        for a in args:
            if isinstance(a, _Written) and a.suffixes:
                self._error(loc, f"a template argument of {bare} cannot be a reference or pointer")
        all_types = len(types) == len(args)
        if bare == "std::vector":
            if len(args) == 1 and all_types:
                return VectorType(types[0])
            arity(1, "1 type argument (std::vector<T>)")
        elif bare == "std::array":
            if len(args) == 2 and isinstance(args[0], _Written) and isinstance(args[1], int):
                if args[1] < 0:
                    self._error(loc, f"std::array size must not be negative, got {args[1]}")
                return ArrayType(args[0].type, max(args[1], 0))
            self._error(
                loc,
                f"std::array takes a type and a size (std::array<T, N>), got {len(args)} "
                "argument(s)",
            )
        elif bare in _MAP_KINDS:
            if len(args) == 2 and all_types:
                return MapType(types[0], types[1], _MAP_KINDS[bare])
            arity(2, f"2 type arguments ({bare}<K, V>)")
        elif bare in _SET_KINDS:
            if len(args) == 1 and all_types:
                return SetType(types[0], _SET_KINDS[bare])
            arity(1, f"1 type argument ({bare}<T>)")
        elif bare == "rpc::optional":
            if len(args) == 1 and all_types:
                return OptionalType(types[0])
            arity(1, "1 type argument (rpc::optional<T>)")
        elif bare == "rpc::nullable":
            if len(args) == 1 and all_types:
                return NullableType(types[0])
            arity(1, "1 type argument (rpc::nullable<T>)")
        elif bare == "rpc::variant":
            if args and all_types:
                return VariantType(tuple(types))
            arity(1, "at least 1 type argument (rpc::variant<A, B, ...>)")
        elif bare in ("rpc::shared_ptr", "rpc::optimistic_ptr"):
            if len(args) == 1 and all_types and isinstance(types[0], NamedType):
                return InterfaceType(types[0].name, owning=bare == "rpc::shared_ptr")
            self._error(loc, f"{bare} takes one interface (for example {bare}<i_foo>)")
        else:
            if not all_types:
                self._error(loc, f"'{written}' takes type arguments only")
            return NamedType(written, tuple(types))
        return _first_type(args) or PrimitiveType(Primitive.VOID)

    # -- values

    def int_value(self, meta: Any, children: list[Any]) -> int:
        return parse_int(str(children[0]))

    def float_value(self, meta: Any, children: list[Any]) -> float:
        return float(str(children[0]).rstrip("fFlL"))

    def string_value(self, meta: Any, children: list[Any]) -> str:
        return _unescape(str(children[0])[1:-1])

    def char_value(self, meta: Any, children: list[Any]) -> int:
        return ord(_unescape(str(children[0])[1:-1]))

    def true_value(self, meta: Any, children: list[Any]) -> bool:
        return True

    def false_value(self, meta: Any, children: list[Any]) -> bool:
        return False

    def null_value(self, meta: Any, children: list[Any]) -> None:
        return None

    def name_value(self, meta: Any, children: list[Any]) -> Expr:
        return Expr("name", (children[0],), self._loc(meta))

    def list_value(self, meta: Any, children: list[Any]) -> Expr:
        return Expr("list", tuple(children), self._loc(meta))

    def __default__(self, data: Any, children: list[Any], meta: Any) -> Any:
        if data in _OPERATORS:
            return self._fold(str(data), children, meta)
        raise AssertionError(f"grammar rule {data!r} has no builder")  # pragma: no cover

    def _fold(self, op: str, children: list[Any], meta: Any) -> Any:
        expr = Expr(op, tuple(children), self._loc(meta))
        if any(isinstance(c, Expr) for c in children):
            return expr
        try:
            return evaluate(expr, lambda _: None)
        except EvalError as e:
            self._error(expr.location, f"cannot evaluate constant expression: {e}")
            return 0


_OPERATORS = frozenset(
    {
        "bit_or",
        "bit_xor",
        "bit_and",
        "shl",
        "shr",
        "add",
        "sub",
        "mul",
        "div",
        "mod",
        "neg",
        "pos",
        "inv",
    }
)
_NO_VALUE = object()


def _take(children: list[Any], kind: type[Any]) -> Any:
    for c in children:
        if isinstance(c, kind):
            return c
    return None


def _written(children: list[Any]) -> _Written:
    found = _take(children, _Written)
    if found is None:  # pragma: no cover - the grammar requires a type here
        raise AssertionError("the grammar guarantees a type")
    return found  # type: ignore[no-any-return]


def _name(children: list[Any]) -> str:
    for c in children:
        if isinstance(c, Token) and c.type == "NAME":
            return str(c)
    raise AssertionError("the grammar guarantees a NAME")  # pragma: no cover


def _is_definition(c: Any) -> bool:
    return isinstance(c, Namespace | Enum | ErrorDomain | Typedef | Struct | Interface)


def _first_type(args: list[Any]) -> TypeRef | None:
    for a in args:
        if isinstance(a, _Written):
            return a.type
    return None


def _passing(w: _Written) -> Passing:
    if "&&" in w.suffixes:
        return Passing.RVALUE
    if "&" in w.suffixes:
        return Passing.CONST_REF if w.const else Passing.REF
    return Passing.CONST_VALUE if w.const else Passing.VALUE


def _rest_of_method(m: Method) -> tuple[TypeRef, tuple[Parameter, ...], Attributes, Location]:
    return (m.return_type, m.parameters, m.attributes, m.location)


# ---------------------------------------------------------------- entry point

_TERMINAL_NAMES = {
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "CHAR_LIT": "a character",
    "$END": "end of file",
}


def parse(text: str, origin: LineOrigin, reporter: Reporter) -> list[Definition] | None:
    """Parse preprocessed ``text``; syntax errors and shape errors go to ``reporter``.

    None means a syntax error: there is no tree to check. Shape errors (a raw
    pointer, ``std::optional``) still give definitions, so the checker can go on
    and report the file's other errors too."""
    parser = _lark()
    try:
        try:
            tree = parser.parse(text)
        except lark.exceptions.UnexpectedInput as e:
            reporter.error(_error_location(e, origin), _describe(e, parser))
            return None
        try:
            result: list[Definition] = _Builder(origin, reporter).transform(tree)
        except lark.exceptions.VisitError as e:
            if not isinstance(e.orig_exc, ValueError | OverflowError):
                raise e.orig_exc from e
            # A literal Python cannot hold: an integer of thousands of digits, an
            # escape past the last code point.
            meta = getattr(e.obj, "meta", None)
            line = getattr(meta, "line", 1) if meta is not None and not meta.empty else 1
            column = getattr(meta, "column", 1) if meta is not None and not meta.empty else 1
            file, source_line = origin(line)
            reporter.error(Location(file, source_line, column), f"invalid value: {e.orig_exc}")
            return None
    except RecursionError:
        # The tree is walked recursively: nesting deeper than Python's stack allows
        # (a few hundred brackets) is refused where it is deepest, not a traceback.
        line, column, depth = _deepest(text)
        file, source_line = origin(line)
        reporter.error(
            Location(file, source_line, column),
            f"nested {depth} levels deep, more than the compiler follows: "
            "name an inner type with a typedef or a struct",
        )
        return None
    return result


def _deepest(text: str) -> tuple[int, int, int]:
    """Line, column and depth of the most deeply nested bracket of ``text``."""
    depth, best, line, column = 0, (1, 1, 0), 1, 0
    for char in text:
        column += 1
        if char == "\n":
            line, column = line + 1, 0
        elif char in "<({[":
            depth += 1
            if depth > best[2]:
                best = (line, column, depth)
        elif char in ">)}]":
            depth = max(depth - 1, 0)
    return best


def _error_location(e: lark.exceptions.UnexpectedInput, origin: LineOrigin) -> Location:
    line = getattr(e, "line", None)
    column = getattr(e, "column", None)
    if not isinstance(line, int) or line < 1:
        line, column = 1, 1
    file, source_line = origin(line)
    return Location(file, source_line, column if isinstance(column, int) and column > 0 else 1)


def _describe(e: lark.exceptions.UnexpectedInput, parser: lark.Lark) -> str:
    if isinstance(e, lark.exceptions.UnexpectedToken):
        token = e.token
        got = "end of file" if token.type == "$END" else f"'{token}'"
        expected = sorted({_pretty(t, parser) for t in e.expected if not t.startswith("__")})
        if len(expected) > 8:
            expected = [*expected[:8], "..."]
        return f"syntax error: unexpected {got}; expected " + (
            " or ".join(expected) or "something else"
        )
    if isinstance(e, lark.exceptions.UnexpectedCharacters):
        char = e.char if hasattr(e, "char") else "?"
        return f"syntax error: unexpected character {char!r}"
    return f"syntax error: {e}"  # pragma: no cover


def _pretty(terminal: str, parser: lark.Lark) -> str:
    if terminal in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[terminal]
    try:
        pattern = parser.get_terminal(terminal).pattern
    except KeyError:  # pragma: no cover
        return terminal.lower()
    if pattern.type == "str":
        return f"'{pattern.value}'"
    keyword = re.fullmatch(r"\(?([a-z_0-9|]+)\)?\\b", pattern.value)
    if keyword:
        return " or ".join(f"'{word}'" for word in keyword.group(1).split("|"))
    return terminal.lower()
