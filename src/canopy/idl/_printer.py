"""Prints a checked model back as Canopy IDL text that compiles to an equal model.

Every reference is printed fully qualified with a leading ``::`` (the checker
resolves that form from any scope), values are printed already evaluated, and
imported definitions are replaced by the ``#import`` lines that bring them in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from canopy.idl._model import (
    Access,
    ArrayType,
    Attributes,
    AttributeValue,
    Constant,
    ConstantRef,
    Definition,
    Direction,
    Enum,
    EnumValueRef,
    ErrorDomain,
    Interface,
    InterfaceType,
    JsonType,
    MapType,
    Model,
    NamedType,
    Namespace,
    NullableType,
    OptionalType,
    Parameter,
    Passing,
    PrimitiveType,
    SetType,
    Struct,
    TemplateParamType,
    TypeRef,
    Value,
    VariantType,
    VectorType,
)

_INDENT = "    "
_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def print_model(model: Model) -> str:
    """The model's own definitions as IDL text, preceded by its ``#import`` lines."""
    # The preprocessor takes an #import file name verbatim, without escapes.
    lines = [f'#import "{path}"' for path in model.imports]
    if lines:
        lines.append("")
    printer = _Printer()
    printer.members(model.definitions, 0)
    lines.extend(printer.lines)
    return "\n".join(lines) + "\n"


class _Printer:
    """Collects lines; a definition opens with its attribute line, members carry
    theirs inline, as the IDL guide writes them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def emit(self, depth: int, text: str) -> None:
        self.lines.append(_INDENT * depth + text)

    def head(self, depth: int, attrs: Attributes, text: str) -> None:
        if attrs:
            self.emit(depth, _attributes(attrs))
        self.emit(depth, text)

    def members(self, members: tuple[Definition, ...], depth: int) -> None:
        for i, d in enumerate(m for m in members if not m.imported):
            if i:
                self.lines.append("")
            self.definition(d, depth)

    def definition(self, d: Definition, depth: int) -> None:
        if isinstance(d, Namespace):
            self.namespace(d, depth)
        elif isinstance(d, Struct):
            self.struct(d, depth)
        elif isinstance(d, Interface):
            self.interface(d, depth)
        elif isinstance(d, Enum):
            self.enum(d, depth)
        elif isinstance(d, ErrorDomain):
            self.error_domain(d, depth)
        else:
            self.head(depth, d.attributes, f"typedef {type_text(d.type)} {d.name};")

    def namespace(self, ns: Namespace, depth: int) -> None:
        # An [inline] attribute already makes the namespace inline when parsed;
        # the keyword is only needed when the source used the keyword alone.
        keyword = "inline " if ns.inline and not ns.attributes.has("inline") else ""
        self.emit(depth, f"{_prefix(ns.attributes)}{keyword}namespace {ns.name}")
        self.emit(depth, "{")
        self.members(ns.members, depth + 1)
        self.emit(depth, "}")

    def enum(self, e: Enum, depth: int) -> None:
        head = f"enum {'class ' if e.is_class else ''}{e.name}"
        if e.underlying is not None:
            head += f" : {e.underlying.value}"
        self.head(depth, e.attributes, head)
        self.values(depth, [(v.name, v.value, v.explicit, v.attributes) for v in e.values])

    def error_domain(self, d: ErrorDomain, depth: int) -> None:
        self.head(depth, d.attributes, f"error {d.name}")
        self.values(depth, [(v.name, v.code, v.explicit, v.attributes) for v in d.values])

    def values(self, depth: int, values: list[tuple[str, int, bool, Attributes]]) -> None:
        # Implicit values are printed implicit: the same predecessors number them
        # the same way again, and ``explicit`` is part of the model.
        self.emit(depth, "{")
        for i, (name, number, explicit, attrs) in enumerate(values):
            value = f" = {number}" if explicit else ""
            comma = "," if i < len(values) - 1 else ""
            self.emit(depth + 1, f"{_prefix(attrs)}{name}{value}{comma}")
        self.emit(depth, "};")

    def struct(self, s: Struct, depth: int) -> None:
        if s.attributes:
            self.emit(depth, _attributes(s.attributes))
        if s.template_params:
            params = ", ".join(f"typename {p}" for p in s.template_params)
            self.emit(depth, f"template<{params}>")
        base = f" : {_global(s.base)}" if s.base is not None else ""
        self.emit(depth, f"struct {s.name}{base}")
        self.emit(depth, "{")
        access = Access.PUBLIC
        for f in s.fields:
            # A label stays in force until the next one, as in C++.
            if f.access is not access:
                access = f.access
                self.emit(depth, f"{access.value}:")
            default = f" = {value_text(f.default)}" if f.has_default else ""
            self.emit(depth + 1, f"{_prefix(f.attributes)}{type_text(f.type)} {f.name}{default};")
        self.constants(s.constants, depth + 1)
        self.emit(depth, "};")

    def constants(self, constants: tuple[Constant, ...], depth: int) -> None:
        for c in constants:
            text = f"static constexpr {type_text(c.type)} {c.name} = {value_text(c.value)};"
            self.emit(depth, _prefix(c.attributes) + text)

    def interface(self, i: Interface, depth: int) -> None:
        bases = " : " + ", ".join(_global(b) for b in i.bases) if i.bases else ""
        self.head(depth, i.attributes, f"interface {i.name}{bases}")
        self.emit(depth, "{")
        for m in i.methods:
            params = ", ".join(_parameter(p) for p in m.parameters)
            text = f"{type_text(m.return_type)} {m.name}({params});"
            self.emit(depth + 1, _prefix(m.attributes) + text)
        self.constants(i.constants, depth + 1)
        self.emit(depth, "};")


def _parameter(p: Parameter) -> str:
    # The parser takes [in] and [out] out of the attribute list into ``direction``.
    direction = {Direction.IN: (), Direction.OUT: ("out",), Direction.IN_OUT: ("in", "out")}
    names = direction[p.direction]
    attrs = ", ".join([*names, *(_attribute(a.name, a.value) for a in p.attributes)])
    prefix = f"[{attrs}] " if attrs else ""
    t = type_text(p.type)
    written = {
        Passing.VALUE: t,
        Passing.CONST_REF: f"const {t}&",
        Passing.REF: f"{t}&",
        Passing.RVALUE: f"{t}&&",
        Passing.CONST_VALUE: f"const {t}",
    }[p.passing]
    return f"{prefix}{written} {p.name}"


def _attributes(attrs: Attributes) -> str:
    return "[" + ", ".join(_attribute(a.name, a.value) for a in attrs) + "]"


def _prefix(attrs: Attributes) -> str:
    return _attributes(attrs) + " " if attrs else ""


def _attribute(name: str, value: AttributeValue) -> str:
    if value is None:
        return name
    # A status is written as a bare word in the guide (status=production); a bare
    # word reads back as the same string unless it is one of the two booleans.
    word = isinstance(value, str) and _WORD.fullmatch(value) and value not in ("true", "false")
    if name == "status" and word:
        return f"{name}={value}"
    return f"{name}={value_text(value)}"


def _global(qualified_name: str) -> str:
    return "::" + qualified_name


def type_text(t: TypeRef, qualify: Callable[[str], str] = _global) -> str:
    """``t`` as IDL source; names pass through ``qualify`` (by default fully qualified
    with a leading ``::``, which resolves to the same type from any scope)."""

    def spell(t: TypeRef) -> str:
        match t:
            case PrimitiveType(kind):
                return kind.value
            case VectorType(e):
                return f"std::vector<{spell(e)}>"
            case ArrayType(e, n):
                return f"std::array<{spell(e)}, {n}>"
            case MapType(k, v, kind):
                return f"{kind.value}<{spell(k)}, {spell(v)}>"
            case SetType(e, kind):
                return f"{kind.value}<{spell(e)}>"
            case OptionalType(e):
                return f"rpc::optional<{spell(e)}>"
            case NullableType(e):
                return f"rpc::nullable<{spell(e)}>"
            case VariantType(alts):
                return "rpc::variant<" + ", ".join(spell(a) for a in alts) + ">"
            case InterfaceType(name, owning):
                return f"rpc::{'shared_ptr' if owning else 'optimistic_ptr'}<{qualify(name)}>"
            case JsonType():
                return "json::v1::object"
            case NamedType(name, args):
                suffix = "<" + ", ".join(spell(a) for a in args) + ">" if args else ""
                return qualify(name) + suffix
            case TemplateParamType(name):
                return name
        raise AssertionError(f"unexpected type {t!r}")  # pragma: no cover

    return spell(t)


def as_written(name: str) -> str:
    """A ``qualify`` for messages: names as the model holds them."""
    return name


def value_text(v: Value, qualify: Callable[[str], str] = _global) -> str:
    """An evaluated value as an IDL constant expression that evaluates back to it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "nullptr"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        # repr round-trips every finite double; an infinity is spelled as an
        # overflowing literal because the IDL has no name for it.
        if math.isinf(v):
            return "1e999" if v > 0 else "-1e999"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, EnumValueRef):
        return f"{qualify(v.enum)}::{v.value}"
    if isinstance(v, ConstantRef):
        return qualify(v.name)
    return "{" + ", ".join(value_text(x, qualify) for x in v) + "}"


def _string(s: str) -> str:
    """A double-quoted IDL string literal for ``s``.

    Unprintable characters (line breaks of every kind included) become ``\\x``
    escapes. The IDL reads every hex digit after ``\\x``, so a hex digit that
    follows such an escape is escaped too.
    """
    out: list[str] = []
    after_hex = False
    for c in s:
        if c in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[c])
            after_hex = False
        elif not c.isprintable() or (after_hex and c in _HEX_DIGITS):
            out.append(f"\\x{ord(c):x}")
            after_hex = True
        else:
            out.append(c)
            after_hex = False
    return '"' + "".join(out) + '"'
