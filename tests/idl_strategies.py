"""Hypothesis strategies for valid Canopy IDL source text.

A small declaration tree is drawn and written out as it is drawn, so every file is
valid by construction: names are unique, references point at earlier definitions,
defaults fit their types and [post] methods pass only [in] values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import strategies as st

T = TypeVar("T")
Draw = Callable[[st.SearchStrategy[Any]], Any]

# Every spelling the parser accepts for each canonical primitive.
PRIMITIVE_SPELLINGS: dict[str, tuple[str, ...]] = {
    "bool": ("bool",),
    "int8_t": ("int8_t", "std::int8_t", "char", "signed char"),
    "uint8_t": ("uint8_t", "std::uint8_t", "unsigned char"),
    "int16_t": ("int16_t", "short", "short int", "signed short"),
    "uint16_t": ("uint16_t", "unsigned short", "unsigned short int"),
    "int32_t": ("int32_t", "int", "signed", "signed int", "std::int32_t"),
    "uint32_t": ("uint32_t", "unsigned", "unsigned int"),
    "int64_t": ("int64_t", "long", "long long", "long int", "ssize_t", "ptrdiff_t", "intptr_t"),
    "uint64_t": ("uint64_t", "unsigned long", "unsigned long long int", "size_t", "std::size_t"),
    "__int128": ("__int128", "int128_t", "__int128_t", "signed __int128"),
    "unsigned __int128": ("unsigned __int128", "uint128_t", "__uint128_t"),
    "float": ("float",),
    "double": ("double",),
    "std::string": ("std::string", "::std::string"),
    "error_code": ("error_code",),
}


def _signed(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "int8_t": _signed(8),
    "uint8_t": (0, 255),
    "int16_t": _signed(16),
    "uint16_t": (0, (1 << 16) - 1),
    "int32_t": _signed(32),
    "uint32_t": (0, (1 << 32) - 1),
    "int64_t": _signed(64),
    "uint64_t": (0, (1 << 64) - 1),
    "__int128": _signed(128),
    "unsigned __int128": (0, (1 << 128) - 1),
    "error_code": _signed(32),
}
ENUM_UNDERLYING = [k for k in INTEGER_RANGES if k != "error_code"]
STATUSES = ("development", "demo", "production", "deprecated")
_WRAPPERS = (
    "vector",
    "array",
    "map",
    "unordered_map",
    "flat_map",
    "set",
    "unordered_set",
    "optional",
    "nullable",
    "variant",
)
_DIRECTIONS = ("", "[in] ", "[out] ", "[in, out] ", "[out, in] ")
_COMMENTS = (("// a comment",), ("/* a block */",), ("/* spanning", "   lines */"))

# Text that stresses string literals: quotes, escapes, comment and directive
# markers that must stay inside the string, non-ASCII and unusual line breaks.
_AWKWARD_TEXT = (
    '"',
    "\\",
    "'",
    "// not a comment",
    "/* nor this */",
    "#define X 1",
    "\n",
    "\t",
    "\r\n",
    "\x00",
    "\x7f",
    "\u2028",
    "\x85",
    "\\x41B",
    "ünïcødé ✓ 日本語 🌲",
    "0.7\u20132.0",
)


@dataclass(frozen=True)
class Ty:
    """A type as the model sees it (canonical names), so equal Ty means equal type."""

    kind: str  # prim json struct enum typedef inst param vector array map set optional ...
    name: str = ""  # primitive name, qualified definition name or template parameter
    args: tuple[Ty, ...] = ()
    size: int = 0


@dataclass
class _Enum:
    qname: str
    values: list[str]


class _Writer:
    """Draws declarations and writes them as IDL lines in one pass."""

    def __init__(self, draw: Draw) -> None:
        self.draw = draw
        self.lines: list[str] = []
        self.counter = 0
        self.scope: list[str] = []
        self.inline: set[str] = set()
        self.structs: list[str] = []
        self.templates: dict[str, int] = {}
        self.enums: dict[str, _Enum] = {}
        self.errors: list[str] = []
        self.typedefs: dict[str, Ty] = {}
        self.integer_typedefs: list[str] = []
        self.interfaces: list[str] = []
        self.macros: dict[str, int] = {}
        self.budget = 0

    # -- drawing helpers

    def pick(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))  # type: ignore[no-any-return]

    def chance(self, p: float) -> bool:
        # Integers shrink towards 0, so a shrunk example drops the optional parts.
        return bool(self.draw(st.integers(0, 999)) >= 1000 * (1 - p))

    def count(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))  # type: ignore[no-any-return]

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def emit(self, text: str) -> None:
        self.lines.append("    " * len(self.scope) + text)

    def qualify(self, name: str) -> str:
        return "::".join([*self.scope, name])

    # -- references

    def ref(self, qname: str) -> str:
        """One of the ways to name ``qname`` from the current scope."""
        forms = ["::" + qname, qname]
        parts = qname.split("::")
        # Dropping an inline namespace gives a name the checker also accepts.
        short = [p for i, p in enumerate(parts) if "::".join(parts[: i + 1]) not in self.inline]
        if short != parts and short:
            forms.append("::" + "::".join(short))
        here = "::".join(self.scope)
        for visible in (parts, short):
            owner = "::".join(visible[:-1])
            if visible and (not owner or here == owner or here.startswith(owner + "::")):
                forms.append(visible[-1])
        return self.pick(forms)

    # -- attributes and literals

    def string(self) -> str:
        pieces = st.lists(
            st.one_of(st.text(max_size=6), st.sampled_from(_AWKWARD_TEXT)), max_size=4
        )
        return "".join(self.draw(pieces))

    def attributes(self, *fixed: str, status: bool = False, extra: bool = True) -> str:
        items = list(fixed)
        if status and self.chance(0.3):
            value = self.pick(STATUSES)
            items.append(f"status={value}" if self.chance(0.5) else f'status="{value}"')
        if self.chance(0.3):
            items.append(f"description={string_literal(self.string())}")
        if self.chance(0.15):
            items.append("deprecated")
        if extra and self.chance(0.15):
            value = self.pick(
                [
                    "",
                    f"={self.count(-5, 1 << 40)}",
                    f"={self.draw(st.floats(0, 1e300))!r}",
                    "=true",
                    "=false",
                    "=some::scoped_name",
                    f"={string_literal(self.string())}",
                ]
            )
            items.append(f"x_{self.pick(['note', 'hint', 'cpp'])}{value}")
        self.draw(st.randoms(use_true_random=False)).shuffle(items)
        return "[" + ", ".join(items) + "] " if items else ""

    def integer(self, value: int, names: dict[str, int] | None = None) -> str:
        """``value`` as some constant expression that evaluates to it."""
        form = self.count(0, 9)
        if form == 1 and value > 0:
            return hex(value) + self.pick(["", "u", "UL", "ll"])
        if form == 2 and value > 0:
            return "0b" + format(value, "b")
        if form == 3 and value > 0:
            return "0" + format(value, "o")
        if form == 4 and value >= 1000:
            digits = str(value)
            return digits[:-3] + "'" + digits[-3:]
        if form == 5 and 32 <= value < 127 and chr(value) not in "'\\":
            return f"'{chr(value)}'"
        if form == 6:
            k = self.count(-100, 100)
            return f"{value - k} + {k}" if k >= 0 else f"({value - k}) - {-k}"
        if form == 7 and value > 0 and value & (value - 1) == 0:
            return f"1 << {value.bit_length() - 1}"
        if form == 8:
            return f"~{~value}" if ~value >= 0 else f"~({~value})"
        if form == 9 and names:
            name, known = self.pick(sorted(names.items()))
            diff = value - known
            return f"{name} + {diff}" if diff >= 0 else f"{name} - {-diff}"
        return str(value)

    # -- types

    def primitive(self, canonical: str) -> str:
        return self.pick(PRIMITIVE_SPELLINGS[canonical])

    def spell(self, t: Ty) -> str:
        match t.kind:
            case "prim":
                return self.primitive(t.name)
            case "json":
                return self.pick(["json::v1::object", "json::object"])
            case "struct" | "enum" | "typedef":
                return self.ref(t.name)
            case "inst":
                return self.ref(t.name) + "<" + ", ".join(self.spell(a) for a in t.args) + ">"
            case "param":
                return t.name
            case "vector":
                return f"std::vector<{self.spell(t.args[0])}>"
            case "array":
                return f"std::array<{self.spell(t.args[0])}, {t.size}>"
            case "map" | "unordered_map" | "flat_map" | "set" | "unordered_set":
                return f"std::{t.kind}<" + ", ".join(self.spell(a) for a in t.args) + ">"
            case "optional" | "nullable" | "variant":
                return f"rpc::{t.kind}<" + ", ".join(self.spell(a) for a in t.args) + ">"
            case "shared_ptr" | "optimistic_ptr":
                return f"rpc::{t.kind}<{self.ref(t.name)}>"
        raise AssertionError(t)

    def key_type(self) -> Ty:
        options = [Ty("prim", p) for p in ("int32_t", "uint64_t", "std::string", "uint8_t")]
        options += [Ty("enum", e) for e in self.enums]
        return self.pick(options)

    def value_type(self, depth: int = 2, params: tuple[str, ...] = ()) -> Ty:
        leaves = [Ty("prim", p) for p in PRIMITIVE_SPELLINGS]
        named = [Ty("struct", s) for s in self.structs]
        named += [Ty("enum", e) for e in self.enums]
        named += [Ty("typedef", t) for t in self.typedefs]
        named += [Ty("param", p) for p in params]
        if named and self.chance(0.5):
            return self.pick(named)
        if self.templates and depth > 0 and self.chance(0.15):
            name, arity = self.pick(sorted(self.templates.items()))
            return Ty("inst", name, tuple(self.value_type(depth - 1, params) for _ in range(arity)))
        if depth == 0 or self.chance(0.5):
            return self.pick([*leaves, Ty("json")])
        kind = self.pick(_WRAPPERS)
        if kind in ("map", "unordered_map", "flat_map"):
            return Ty(kind, args=(self.key_type(), self.value_type(depth - 1, params)))
        if kind in ("set", "unordered_set"):
            return Ty(kind, args=(self.key_type(),))
        if kind == "array":
            return Ty(kind, args=(self.value_type(depth - 1, params),), size=self.count(1, 4))
        if kind == "variant":
            # The checker rejects a variant that lists the same type twice.
            alternatives = [self.value_type(depth - 1, params) for _ in range(self.count(1, 4))]
            return Ty(kind, args=tuple(dict.fromkeys(alternatives)))
        return Ty(kind, args=(self.value_type(depth - 1, params),))

    # -- defaults

    def default(self, t: Ty, direct: bool = True, top: bool = True) -> str | None:
        """A constant for ``t``, or None when the type admits none.

        ``direct`` says whether the checker sees ``t`` as the target type, which
        lets a bare enum value name stand for itself; below the top it does so
        only if no typedef stands in between (the checker resolves typedefs of
        the field's own type, not of an element or optional inner type)."""
        match t.kind:
            case "prim":
                return self.primitive_default(t.name)
            case "json" | "map" | "unordered_map" | "flat_map" | "struct" | "inst":
                return "{}"
            case "enum":
                e = self.enums[t.name]
                value = self.pick(e.values)
                if direct and self.chance(0.3):
                    return value
                return f"{self.ref(e.qname)}::{value}"
            case "typedef":
                return self.default(self.typedefs[t.name], direct and top, top)
            case "optional" | "nullable":
                inner = self.default(t.args[0], direct, top=False)
                return "nullptr" if inner is None or self.chance(0.3) else inner
            case "vector" | "set" | "unordered_set":
                n = self.count(0, 3)
                items = [self.default(t.args[0], direct, top=False) for _ in range(n)]
                if any(i is None for i in items):
                    return "{}"
                return "{" + ", ".join(str(i) for i in items) + "}"
            case "array":
                if self.chance(0.3):
                    return "{}"
                items = [self.default(t.args[0], direct, top=False) for _ in range(t.size)]
                if any(i is None for i in items):
                    return "{}"
                return "{" + ", ".join(str(i) for i in items) + "}"
            case "variant":
                return self.default(self.pick(t.args), direct=False, top=False)
        return None

    def primitive_default(self, name: str) -> str | None:
        if name == "bool":
            return self.pick(["true", "false"])
        if name in INTEGER_RANGES:
            lo, hi = INTEGER_RANGES[name]
            value = self.draw(st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, 0])))
            if self.macros and self.chance(0.1):
                macro, macro_value = self.pick(sorted(self.macros.items()))
                if lo <= macro_value <= hi:
                    return macro
            return self.integer(value)
        if name in ("float", "double"):
            number = self.draw(st.floats(allow_nan=False, allow_infinity=False))
            if self.chance(0.2):
                return str(self.count(-1000, 1000))
            if self.chance(0.05):
                # The IDL has no name for infinity; an overflowing literal is one.
                return self.pick(["1e999", "-1e999"])
            text = repr(abs(number)) + self.pick(["", "", "f"])
            return "-" + text if math.copysign(1, number) < 0 else text
        if name == "std::string":
            return string_literal(self.string())
        return None

    # -- definitions

    def body(self, depth: int) -> None:
        for _ in range(self.count(3 if depth == 0 else 0, 6)):
            if self.budget <= 0:
                return
            self.budget -= 1
            kinds = ["struct", "struct", "enum", "error", "typedef", "interface", "interface"]
            kinds += ["comment", "empty", "template"]
            if depth < 3:
                kinds += ["namespace", "namespace"]
            getattr(self, "def_" + self.pick(kinds))(depth)

    def def_comment(self, depth: int) -> None:
        for line in self.pick(_COMMENTS):
            self.emit(line)

    def def_empty(self, depth: int) -> None:
        self.emit(";")

    def def_namespace(self, depth: int, name: str | None = None) -> None:
        name = name or self.fresh("ns")
        # Either spelling makes a namespace inline; the attribute is also kept.
        inline_attribute, inline_keyword = self.pick(
            [(False, False), (False, False), (True, False), (False, True), (True, True)]
        )
        items = ["inline"] if inline_attribute else []
        if self.chance(0.2):
            items.append(f"description={string_literal(self.string())}")
            self.draw(st.randoms(use_true_random=False)).shuffle(items)
        prefix = "[" + ", ".join(items) + "] " if items else ""
        keyword = "inline " if inline_keyword else ""
        nested = not prefix and not keyword and self.chance(0.2)
        if nested:
            inner = self.fresh("ns")
            self.emit(f"namespace {name}::{inner}")
            self.emit("{")
            self.scope += [name, inner]
        else:
            self.emit(f"{prefix}{keyword}namespace {name}")
            self.emit("{")
            self.scope.append(name)
        if inline_attribute or inline_keyword:
            self.inline.add("::".join(self.scope))
        self.body(depth + 1)
        if nested:
            self.scope.pop()
        self.scope.pop()
        self.emit("}" + self.pick(["", ";"]))
        # Reopening a namespace merges it with the first, as in C++.
        if not nested and self.budget > 0 and self.chance(0.2):
            self.budget -= 1
            self.def_namespace(depth, name)

    def def_enum(self, depth: int) -> None:
        name = self.fresh("e")
        is_class = self.chance(0.5)
        underlying = self.pick(ENUM_UNDERLYING) if self.chance(0.5) else None
        if underlying is None:
            lo, hi = INTEGER_RANGES["int32_t" if is_class else "int64_t"]
        else:
            lo, hi = INTEGER_RANGES[underlying]
        count = self.count(0, 5)
        head = self.attributes(status=True) + "enum " + ("class " if is_class else "") + name
        if underlying is not None:
            head += " : " + self.primitive(underlying)
        values: list[str] = []
        known: dict[str, int] = {}
        entries: list[str] = []
        previous = -1
        for _ in range(count):
            vname = self.fresh("v")
            # Leave room for the implicit values that may follow.
            if self.chance(0.5):
                number = self.draw(st.integers(lo, hi - count))
                text = f"{vname} = {self.integer(number, known)}"
            else:
                number = previous + 1
                text = vname
            previous = number
            known[vname] = number
            values.append(vname)
            attrs = self.attributes(extra=False) if self.chance(0.2) else ""
            entries.append(attrs + text)
        self.emit(head)
        self.emit("{")
        trailing = "," if entries and self.chance(0.3) else ""
        self.emit("    " + ",\n".join(entries) + trailing)
        self.emit("};")
        qname = self.qualify(name)
        if values:
            self.enums[qname] = _Enum(qname, values)

    def def_error(self, depth: int) -> None:
        name = self.fresh("err")
        entries: list[str] = []
        known: dict[str, int] = {}
        code = 0
        for _ in range(self.count(0, 5)):
            vname = self.fresh("x")
            if self.chance(0.5):
                code += self.count(1, 1000)
                text = f"{vname} = {self.integer(code, known)}"
            else:
                code += 1
                text = vname
            known[vname] = code
            entries.append(text)
        self.emit(self.attributes(status=True) + "error " + name)
        self.emit("{")
        self.emit("    " + ", ".join(entries))
        self.emit("};")
        self.errors.append(self.qualify(name))

    def def_typedef(self, depth: int) -> None:
        name = self.fresh("t")
        integer = self.chance(0.3)
        t = Ty("prim", self.pick(ENUM_UNDERLYING)) if integer else self.value_type()
        spelled = self.spell(t)
        attrs = self.attributes() if self.chance(0.2) else ""
        if self.chance(0.5):
            self.emit(f"{attrs}typedef {spelled} {name};")
        else:
            self.emit(f"{attrs}using {name} = {spelled};")
        qname = self.qualify(name)
        self.typedefs[qname] = t
        if integer:
            self.integer_typedefs.append(qname)

    def def_template(self, depth: int) -> None:
        name = self.fresh("tpl")
        params = tuple(["T", "U", "V"][: self.count(1, 3)])
        header = ", ".join(f"{self.pick(['typename', 'class'])} {p}" for p in params)
        self.emit(self.attributes(status=True) + f"template<{header}>")
        self.emit(f"struct {name}")
        self.struct_body(name, params)
        self.templates[self.qualify(name)] = len(params)

    def def_struct(self, depth: int) -> None:
        name = self.fresh("s")
        base = self.pick(self.structs) if self.structs and self.chance(0.3) else None
        if not self.macros and self.chance(0.2):
            macro = self.fresh("M")
            self.macros[macro] = self.count(0, 100)
            self.lines.append(f"#define {macro} ({self.macros[macro]})")
        inherits = f" : {self.pick(['', 'public '])}{self.ref(base)}" if base else ""
        self.emit(f"{self.attributes(status=True)}struct {name}{inherits}")
        self.struct_body(name, ())
        self.structs.append(self.qualify(name))

    def struct_body(self, name: str, params: tuple[str, ...]) -> None:
        self.emit("{")
        qname = self.qualify(name)
        for _ in range(self.count(0, 5)):
            if self.chance(0.2):
                self.emit(self.pick(["public:", "private:", "protected:"]))
            t = self.value_type(params=params)
            if not params and self.chance(0.1):
                # A struct may hold itself through a container.
                t = Ty(self.pick(["vector", "optional"]), args=(Ty("struct", qname),))
            default = self.default(t) if self.chance(0.6) else None
            field = f"{self.spell(t)} {self.fresh('f')}"
            if default is not None:
                braced = self.chance(0.2) and not default.startswith("{")
                field += f"{{{default}}}" if braced else f" = {default}"
            attrs = self.attributes() if self.chance(0.2) else ""
            self.emit(f"    {attrs}{field};")
        self.constants()
        self.emit("};")

    def constants(self) -> None:
        for _ in range(self.count(0, 2)) if self.chance(0.3) else ():
            kind = self.pick(["int32_t", "uint64_t", "double", "std::string", "bool", "int8_t"])
            value = self.primitive_default(kind)
            keyword = self.pick(["static constexpr", "constexpr", "static const"])
            self.emit(f"    {keyword} {self.primitive(kind)} {self.fresh('k')} = {value};")

    def def_interface(self, depth: int) -> None:
        name = self.fresh("i")
        bases: list[str] = []
        if self.interfaces and self.chance(0.4):
            bases = self.draw(st.lists(st.sampled_from(self.interfaces), max_size=3, unique=True))
        head = f"interface {name}"
        if bases:
            head += " : " + ", ".join(self.pick(["", "public "]) + self.ref(b) for b in bases)
        self.emit(self.attributes(status=True) + head)
        self.emit("{")
        qname = self.qualify(name)
        for _ in range(self.count(0, 4)):
            self.method(qname)
        self.constants()
        self.emit("};")
        self.interfaces.append(qname)

    def method(self, owner: str) -> None:
        post = self.chance(0.2)
        fixed = ["post"] if post else []
        if self.chance(0.2):
            fixed.append(f"tag={self.count(-3, 1 << 31)}")
        if self.chance(0.1):
            fixed.append("const")
        results = ["error_code", "int", "int32_t", "void", "uint8_t", "int64_t"]
        results += [self.ref(e) for e in self.errors]
        results += [self.ref(t) for t in self.integer_typedefs]
        params = [self.parameter(post, owner) for _ in range(self.count(0, 4))]
        signature = f"{self.pick(results)} {self.fresh('m')}({', '.join(params)});"
        self.emit(f"    {self.attributes(*fixed)}{signature}")

    def parameter(self, post: bool, owner: str) -> str:
        name = self.fresh("p")
        interfaces = [*self.interfaces, owner]
        if not post and self.chance(0.2):
            kind = self.pick(["shared_ptr", "optimistic_ptr"])
            t = Ty(kind, self.pick(interfaces))
            direction = self.pick(["", "[in] ", "[out] "])
        else:
            t = self.value_type()
            direction = "" if post else self.pick(_DIRECTIONS)
            if post and self.chance(0.3):
                direction = "[in] "
        if self.chance(0.15):
            extra = f"description={string_literal(self.string())}"
            direction = f"[{direction.strip()[1:-1]}, {extra}] " if direction else f"[{extra}] "
        spelled = self.spell(t)
        written = self.pick(
            [
                spelled,
                f"const {spelled}&",
                f"{spelled} const&",
                f"{spelled}&",
                f"{spelled}&&",
                f"const {spelled}&&",
                f"const {spelled}",
            ]
        )
        return f"{direction}{written} {name}"


def string_literal(text: str) -> str:
    """``text`` as an IDL string literal: short escapes, ``\\x`` for the unprintable."""
    out: list[str] = []
    hex_run = False
    short = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x00": "\\0"}
    for c in text:
        if c in short:
            out.append(short[c])
            hex_run = False
        elif not c.isprintable() or (hex_run and c in "0123456789abcdefABCDEF"):
            # \x takes every hex digit that follows, so a following digit is escaped too.
            out.append(f"\\x{ord(c):x}")
            hex_run = True
        else:
            out.append(c)
            hex_run = False
    return '"' + "".join(out) + '"'


@st.composite
def idl_sources(draw: Draw, max_definitions: int = 14) -> str:
    """Valid IDL text: namespaces, enums, errors, structs, templates, typedefs, interfaces."""
    writer = _Writer(draw)
    writer.budget = max_definitions
    if writer.chance(0.3):
        writer.lines.append('#import "rpc/rpc_types.idl"')
        writer.enums["rpc::encoding"] = _Enum(
            "rpc::encoding", ["yas_binary", "yas_compressed_binary", "yas_json", "protocol_buffers"]
        )
    writer.body(0)
    return "\n".join(writer.lines) + "\n"
