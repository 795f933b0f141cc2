"""Semantic checking: places definitions in their namespaces, resolves every name
the way C++ would, and rejects what cannot work across a boundary.

Theory of operation: three passes over the parser's records. ``_qualify``
gives each definition its qualified name and merges reopened namespaces;
``_index`` registers every name (reporting duplicates) and the short names
that inline namespaces make visible; ``_Resolver`` rebuilds each definition
with names resolved, defaults evaluated and every rule checked. All errors go
to one ``Reporter`` so that a file with several errors reports them all.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from canopy.idl._diagnostics import Reporter
from canopy.idl._model import (
    ArrayType,
    Attributes,
    Constant,
    Definition,
    Direction,
    Enum,
    EnumValueRef,
    ErrorDomain,
    Field,
    Interface,
    InterfaceType,
    JsonType,
    Location,
    MapType,
    Method,
    NamedType,
    Namespace,
    NullableType,
    OptionalType,
    Parameter,
    Primitive,
    PrimitiveType,
    SetType,
    Struct,
    TemplateParamType,
    Typedef,
    TypeDefinition,
    TypeRef,
    Value,
    VariantType,
    VectorType,
)
from canopy.idl._parser import BUILTIN_TYPES, EvalError, Expr, evaluate
from canopy.idl._printer import as_written, type_text, value_text

Index = dict[str, TypeDefinition | Namespace]

STATUSES = ("development", "demo", "production", "deprecated")

# Names people reach for that Canopy spells differently.
_SPELLING_HINTS = {
    "string": "std::string",
    "std::list": "std::vector<T>",
    "std::deque": "std::vector<T>",
    "std::pair": "a struct with two fields",
    "std::tuple": "a struct",
    "std::multimap": "std::map<K, std::vector<V>>",
    "std::byte": "uint8_t",
    "int32": "int32_t",
    "uint32": "uint32_t",
    "int64": "int64_t",
    "uint64": "uint64_t",
    "long double": "double",
}


def qualify(definitions: Iterable[Definition], prefix: str = "") -> tuple[Definition, ...]:
    """Give each definition its qualified name; merge namespaces opened more than once."""
    out: list[Definition] = []
    namespaces: dict[str, int] = {}
    for d in definitions:
        qname = f"{prefix}::{d.name}" if prefix else d.name
        if isinstance(d, Namespace):
            members = qualify(d.members, qname)
            if qname in namespaces:
                i = namespaces[qname]
                first = out[i]
                if not isinstance(first, Namespace):  # pragma: no cover - namespaces[] says so
                    raise AssertionError(first)
                out[i] = replace(
                    first,
                    members=qualify((*first.members, *members), qname),
                    inline=first.inline or d.inline,
                    attributes=Attributes(first.attributes.items + d.attributes.items),
                )
                continue
            namespaces[qname] = len(out)
            out.append(replace(d, qualified_name=qname, members=members))
        else:
            out.append(replace(d, qualified_name=qname))
    return tuple(out)


def mark_imported(definitions: Iterable[Definition]) -> tuple[Definition, ...]:
    out: list[Definition] = []
    for d in definitions:
        if isinstance(d, Namespace):
            out.append(replace(d, imported=True, members=mark_imported(d.members)))
        else:
            out.append(replace(d, imported=True))
    return tuple(out)


def walk(definitions: Iterable[Definition]) -> Iterator[Definition]:
    for d in definitions:
        yield d
        if isinstance(d, Namespace):
            yield from walk(d.members)


def build_index(
    definitions: Iterable[Definition], reporter: Reporter
) -> tuple[Index, dict[str, str]]:
    """Every qualified name, and the shorter names inline namespaces make visible."""
    index: Index = {}
    inline: set[str] = set()
    for d in walk(definitions):
        if isinstance(d, Namespace):
            if d.inline:
                inline.add(d.qualified_name)
            existing = index.get(d.qualified_name)
            if existing is None:
                index[d.qualified_name] = d
            elif not isinstance(existing, Namespace):
                _duplicate(reporter, d.qualified_name, d.location, existing.location)
            continue
        existing = index.get(d.qualified_name)
        if existing is not None:
            if not d.imported:
                _duplicate(reporter, d.qualified_name, d.location, existing.location)
            continue
        index[d.qualified_name] = d
    aliases: dict[str, str] = {}
    ambiguous: set[str] = set()
    for qname in index:
        for short in _inline_variants(qname, inline):
            if short in index:
                continue
            if short in aliases and aliases[short] != qname:
                ambiguous.add(short)
            aliases.setdefault(short, qname)
    for short in ambiguous:
        del aliases[short]
    return index, aliases


def _inline_variants(qname: str, inline: set[str]) -> Iterator[str]:
    parts = qname.split("::")
    droppable = [i for i in range(1, len(parts)) if "::".join(parts[:i]) in inline]
    for mask in range(1, 1 << len(droppable)):
        drop = {droppable[b] - 1 for b in range(len(droppable)) if mask >> b & 1}
        yield "::".join(p for i, p in enumerate(parts) if i not in drop)


def _duplicate(reporter: Reporter, name: str, where: Location, first: Location) -> None:
    reporter.error(where, f"duplicate definition of '{name}' (first defined at {first})")


class Resolver:
    """Rebuilds definitions with resolved names, evaluated defaults and checked rules."""

    def __init__(self, index: Index, aliases: dict[str, str], reporter: Reporter) -> None:
        self.index = index
        self.aliases = aliases
        self.reporter = reporter
        # Constants of the struct or interface being checked, visible by bare name.
        self.members: dict[str, Value] = {}

    def error(self, location: Location, message: str) -> None:
        self.reporter.error(location, message)

    # -- lookup

    def lookup(self, written: str, scope: str) -> str | None:
        """C++ lookup: innermost enclosing namespace outwards; ``::x`` is global."""
        if written.startswith("::"):
            return self._known(written[2:])
        parts = scope.split("::") if scope else []
        for depth in range(len(parts), -1, -1):
            prefix = "::".join(parts[:depth])
            found = self._known(f"{prefix}::{written}" if prefix else written)
            if found is not None:
                return found
        return None

    def _known(self, name: str) -> str | None:
        if name in self.index:
            return name
        return self.aliases.get(name)

    def _unknown(self, written: str, scope: str, location: Location, what: str = "type") -> None:
        bare = written.removeprefix("::")
        message = f"unknown {what} '{written}'"
        if bare in _SPELLING_HINTS:
            self.error(location, f"{message}: write {_SPELLING_HINTS[bare]}")
            return
        candidates = {q.rsplit("::", 1)[-1] for q in self.index} | set(self.index)
        candidates |= set(self.aliases)
        if what == "type":
            candidates |= set(BUILTIN_TYPES)
        close = difflib.get_close_matches(bare, sorted(candidates), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        if what == "type" and not hint:
            hint = (
                "; a type is a built-in (int32_t, std::string, ...), a container "
                "(std::vector<T>, std::map<K, V>, ...) or a struct, enum or typedef declared "
                "before use or imported with #import"
            )
        self.error(location, f"{message}{hint}")

    # -- definitions

    def definitions(self, defs: Iterable[Definition], scope: str = "") -> tuple[Definition, ...]:
        out: list[Definition] = []
        for d in defs:
            if d.imported:
                out.append(d)
            elif isinstance(d, Namespace):
                self._check_attributes(d.attributes)
                out.append(replace(d, members=self.definitions(d.members, d.qualified_name)))
            elif isinstance(d, Struct):
                out.append(self.struct(d, scope))
            elif isinstance(d, Interface):
                out.append(self.interface(d, scope))
            elif isinstance(d, Enum):
                out.append(self.enum(d))
            elif isinstance(d, ErrorDomain):
                out.append(self.error_domain(d))
            else:
                self._check_attributes(d.attributes)
                t = self.type(d.type, scope, d.location, ())
                self._no_cycle_typedef(d)
                out.append(replace(d, type=t))
        return tuple(out)

    def _check_attributes(self, attrs: Attributes) -> None:
        status = attrs.find("status")
        if status is not None and status.value not in STATUSES:
            self.error(
                status.location,
                f"unknown status {status.value!r}: use one of " + ", ".join(STATUSES),
            )
        tag = attrs.find("tag")
        if tag is not None and (not isinstance(tag.value, int) or isinstance(tag.value, bool)):
            self.error(tag.location, f"[tag] needs an integer value, got {tag.value!r}")
        description = attrs.find("description")
        if description is not None and not isinstance(description.value, str):
            self.error(description.location, '[description] needs a string: description="..."')

    def _no_cycle_typedef(self, d: Typedef) -> None:
        seen = {d.qualified_name}
        t: TypeRef = d.type
        while isinstance(t, NamedType):
            target = self.index.get(self.lookup(t.name, _scope_of(d.qualified_name)) or "")
            if not isinstance(target, Typedef):
                return
            if target.qualified_name in seen:
                self.error(d.location, f"typedef '{d.qualified_name}' refers to itself")
                return
            seen.add(target.qualified_name)
            t = target.type

    def struct(self, s: Struct, scope: str) -> Struct:
        self._check_attributes(s.attributes)
        base = None
        if s.base is not None:
            base = self._definition_name(s.base, scope, s.location, Struct, "struct")
            if base is not None and self._inherits(base, s.qualified_name, Struct):
                self.error(s.location, f"struct '{s.qualified_name}' inherits from itself")
                base = None
        fields: list[Field] = []
        names = self._base_field_names(base)
        constants = self._constants(s.constants, scope, s.template_params, names)
        for f in s.fields:
            self._check_attributes(f.attributes)
            if f.name in names:
                self.error(f.location, f"duplicate field '{f.name}' in struct '{s.qualified_name}'")
            names.add(f.name)
            t = self.type(f.type, scope, f.location, s.template_params)
            default: Value = None
            if f.has_default:
                default = self.default(f.default, t, scope, f.location, f"field '{f.name}'")
            fields.append(replace(f, type=t, default=default))
        self.members = {}
        return replace(s, base=base, fields=tuple(fields), constants=constants)

    def _base_field_names(self, base: str | None) -> set[str]:
        names: set[str] = set()
        seen: set[str] = set()
        while base is not None and base not in seen:
            seen.add(base)
            b = self.index.get(base)
            if not isinstance(b, Struct):
                break
            names.update(f.name for f in b.fields)
            base = b.base and self.lookup(b.base, _scope_of(b.qualified_name))
        return names

    def _constants(
        self, constants: Iterable[Constant], scope: str, params: tuple[str, ...], names: set[str]
    ) -> tuple[Constant, ...]:
        out = []
        self.members = {}
        for c in constants:
            if c.name in names:
                self.error(c.location, f"duplicate member '{c.name}'")
            names.add(c.name)
            t = self.type(c.type, scope, c.location, params)
            value = self.default(c.value, t, scope, c.location, f"constant '{c.name}'")
            self.members[c.name] = value
            out.append(replace(c, type=t, value=value))
        return tuple(out)

    def interface(self, i: Interface, scope: str) -> Interface:
        self._check_attributes(i.attributes)
        bases: list[str] = []
        for written in i.bases:
            b = self._definition_name(written, scope, i.location, Interface, "interface")
            if b is None:
                continue
            if self._inherits(b, i.qualified_name, Interface):
                self.error(i.location, f"interface '{i.qualified_name}' inherits from itself")
            elif b in bases:
                self.error(i.location, f"interface '{i.qualified_name}' lists base '{b}' twice")
            else:
                bases.append(b)
        methods = []
        seen: dict[str, Location] = {}
        for m in i.methods:
            if m.name in seen:
                self.error(
                    m.location,
                    f"duplicate method '{m.name}' in interface '{i.qualified_name}' (first at "
                    f"{seen[m.name]}): overloads are not allowed, methods are called by name",
                )
            seen.setdefault(m.name, m.location)
            methods.append(self.method(m, i, scope))
        constants = self._constants(i.constants, scope, (), set(seen))
        self.members = {}
        return replace(i, bases=tuple(bases), methods=tuple(methods), constants=constants)

    def method(self, m: Method, owner: Interface, scope: str) -> Method:
        self._check_attributes(m.attributes)
        where = f"'{owner.name}::{m.name}'"
        ret = self.type(m.return_type, scope, m.location, ())
        if not self._is_result_type(ret):
            self.error(
                m.location,
                f"method {where} returns {_spell(ret)}: a method returns error_code, an integer "
                "error code or an error domain; pass results through [out] parameters",
            )
        params: list[Parameter] = []
        names: set[str] = set()
        for p in m.parameters:
            self._check_attributes(p.attributes)
            if p.name in names:
                self.error(p.location, f"duplicate parameter '{p.name}' in method {where}")
            names.add(p.name)
            t = self.type(p.type, scope, p.location, ())
            params.append(replace(p, type=t))
            pointer = self._resolve_typedef(t)
            if isinstance(pointer, InterfaceType) and p.direction is Direction.IN_OUT:
                kind = "rpc::shared_ptr" if pointer.owning else "rpc::optimistic_ptr"
                self.error(
                    p.location,
                    f"[in, out] is not allowed on {kind} parameter '{p.name}': interface "
                    "pointers are [in] or [out]",
                )
            if m.is_post and p.direction is not Direction.IN:
                self.error(
                    p.location,
                    f"[post] method {where} cannot have [out] parameter '{p.name}': a post has "
                    "no reply; make it a normal method or drop the parameter",
                )
            elif m.is_post and self._carries_interface(t, set()):
                self.error(
                    p.location,
                    f"[post] method {where} cannot pass interface pointers (parameter "
                    f"'{p.name}'): a post has no reply to confirm the reference; make it a normal "
                    "method",
                )
            if _is_void(t):
                self.error(p.location, f"parameter '{p.name}' cannot be void")
        return replace(m, return_type=ret, parameters=tuple(params))

    def _is_result_type(self, t: TypeRef) -> bool:
        t = self._resolve_typedef(t)
        if isinstance(t, PrimitiveType):
            return t.kind.is_integer or t.kind is Primitive.VOID
        return isinstance(t, NamedType) and isinstance(self.index.get(t.name), ErrorDomain)

    def _carries_interface(self, t: TypeRef, seen: set[str]) -> bool:
        t = self._resolve_typedef(t)
        match t:
            case InterfaceType():
                return True
            case (
                VectorType(e) | ArrayType(e, _) | SetType(e, _) | OptionalType(e) | NullableType(e)
            ):
                return self._carries_interface(e, seen)
            case MapType(k, v, _):
                return self._carries_interface(k, seen) or self._carries_interface(v, seen)
            case VariantType(alts):
                return any(self._carries_interface(a, seen) for a in alts)
            case NamedType(name, args):
                if any(self._carries_interface(a, seen) for a in args):
                    return True
                d = self.index.get(name)
                if isinstance(d, Struct) and name not in seen:
                    seen.add(name)
                    scope = _scope_of(d.qualified_name)
                    base = [NamedType(d.base)] if d.base else []
                    members = [*base, *(f.type for f in d.fields)]
                    return any(self._carries_interface(self.quiet(x, scope), seen) for x in members)
        return False

    def _resolve_typedef(self, t: TypeRef) -> TypeRef:
        seen: set[str] = set()
        while isinstance(t, NamedType) and t.name not in seen:
            seen.add(t.name)
            d = self.index.get(t.name)
            if not isinstance(d, Typedef):
                break
            t = self.quiet(d.type, _scope_of(d.qualified_name))
        return t

    def quiet(self, t: TypeRef, scope: str) -> TypeRef:
        """``t`` with the names that can be resolved resolved, reporting nothing.

        Checks that look inside another definition see it as written (it may not
        have been checked yet); this gives them its names as they resolve."""
        match t:
            case NamedType(name, args):
                return NamedType(
                    self.lookup(name, scope) or name, tuple(self.quiet(a, scope) for a in args)
                )
            case InterfaceType(name, owning):
                return InterfaceType(self.lookup(name, scope) or name, owning)
            case VectorType(e):
                return VectorType(self.quiet(e, scope))
            case ArrayType(e, n):
                return ArrayType(self.quiet(e, scope), n)
            case SetType(e, kind):
                return SetType(self.quiet(e, scope), kind)
            case OptionalType(e):
                return OptionalType(self.quiet(e, scope))
            case NullableType(e):
                return NullableType(self.quiet(e, scope))
            case MapType(k, v, kind):
                return MapType(self.quiet(k, scope), self.quiet(v, scope), kind)
            case VariantType(alts):
                return VariantType(tuple(self.quiet(a, scope) for a in alts))
        return t

    def enum(self, e: Enum) -> Enum:
        self._check_attributes(e.attributes)
        lo, hi = (e.underlying or (Primitive.INT32 if e.is_class else Primitive.INT64)).int_range
        spelled = (
            e.underlying.value
            if e.underlying
            else ("int (enum class default)" if e.is_class else "int64_t")
        )
        names: set[str] = set()
        for v in e.values:
            self._check_attributes(v.attributes)
            if v.name in names:
                self.error(v.location, f"duplicate value '{v.name}' in enum '{e.qualified_name}'")
            names.add(v.name)
            if not lo <= v.value <= hi:
                self.error(
                    v.location,
                    f"enum value '{e.name}::{v.name}' = {v.value} does not fit the underlying "
                    f"type {spelled} ({lo}..{hi})",
                )
        return e

    def error_domain(self, d: ErrorDomain) -> ErrorDomain:
        self._check_attributes(d.attributes)
        names: set[str] = set()
        codes: dict[int, str] = {}
        for v in d.values:
            self._check_attributes(v.attributes)
            if v.name in names:
                self.error(v.location, f"duplicate value '{v.name}' in error '{d.qualified_name}'")
            names.add(v.name)
            if v.code in codes:
                self.error(
                    v.location,
                    f"error '{d.name}::{v.name}' repeats code {v.code} of '{codes[v.code]}': each "
                    "error value needs its own code",
                )
            codes.setdefault(v.code, v.name)
            if v.code > Primitive.INT32.int_range[1]:
                self.error(
                    v.location, f"error '{d.name}::{v.name}' code {v.code} does not fit int32_t"
                )
        return d

    # -- types

    def _definition_name(
        self, written: str, scope: str, location: Location, kind: type[Any], what: str
    ) -> str | None:
        qname = self.lookup(written, scope)
        if qname is None:
            self._unknown(written, scope, location, what)
            return None
        d = self.index[qname]
        if not isinstance(d, kind):
            self.error(location, f"'{written}' is {_describe(d)}, not {_article(what)}")
            return None
        return qname

    def _inherits(self, start: str, target: str, kind: type[Any]) -> bool:
        """Whether ``start`` is ``target`` or derives from it."""
        todo, seen = [start], set()
        while todo:
            name = todo.pop()
            if name == target:
                return True
            if name in seen:
                continue
            seen.add(name)
            d = self.index.get(name)
            if isinstance(d, kind):
                scope = _scope_of(d.qualified_name)
                written = (
                    [d.base] if isinstance(d, Struct) and d.base else list(getattr(d, "bases", ()))
                )
                todo.extend(q for w in written if (q := self.lookup(w, scope)) is not None)
        return False

    def type(self, t: TypeRef, scope: str, loc: Location, params: tuple[str, ...]) -> TypeRef:
        match t:
            case PrimitiveType() | JsonType() | TemplateParamType():
                return t
            case VectorType(e):
                return VectorType(self._value_type(e, scope, loc, params))
            case ArrayType(e, n):
                return ArrayType(self._value_type(e, scope, loc, params), n)
            case MapType(k, v, kind):
                key = self._value_type(k, scope, loc, params)
                if self._carries_interface(key, set()) or isinstance(
                    self._resolve_typedef(key), JsonType
                ):
                    self.error(loc, f"map key type {_spell(key)} cannot be a key: use a value type")
                return MapType(key, self._value_type(v, scope, loc, params), kind)
            case SetType(e, kind):
                return SetType(self._value_type(e, scope, loc, params), kind)
            case OptionalType(e):
                return OptionalType(self._value_type(e, scope, loc, params))
            case NullableType(e):
                return NullableType(self._value_type(e, scope, loc, params))
            case VariantType(alts):
                resolved = tuple(self._value_type(a, scope, loc, params) for a in alts)
                if len(set(resolved)) != len(resolved):
                    self.error(
                        loc, "rpc::variant lists the same type twice: each alternative must differ"
                    )
                return VariantType(resolved)
            case InterfaceType(name, owning):
                qname = self._definition_name(name, scope, loc, Interface, "interface")
                return InterfaceType(qname or name, owning)
            case NamedType(name, args):
                return self._named(name, args, scope, loc, params)
        raise AssertionError(f"unexpected type {t!r}")  # pragma: no cover

    def _value_type(
        self, t: TypeRef, scope: str, loc: Location, params: tuple[str, ...]
    ) -> TypeRef:
        resolved = self.type(t, scope, loc, params)
        if _is_void(resolved):
            self.error(loc, "void cannot be used as a value type")
        return resolved

    def _named(
        self,
        name: str,
        args: tuple[TypeRef, ...],
        scope: str,
        loc: Location,
        params: tuple[str, ...],
    ) -> TypeRef:
        if name in params and not args:
            return TemplateParamType(name)
        qname = self.lookup(name, scope)
        if qname is None:
            self._unknown(name, scope, loc)
            return NamedType(name, args)
        d = self.index[qname]
        resolved_args = tuple(self._value_type(a, scope, loc, params) for a in args)
        if isinstance(d, Interface):
            self.error(
                loc,
                f"interface '{name}' cannot be passed by value: use rpc::shared_ptr<{name}> "
                f"(owning) or rpc::optimistic_ptr<{name}> (non-owning)",
            )
        elif isinstance(d, Namespace):
            self.error(loc, f"'{name}' is a namespace, not a type")
        elif isinstance(d, Struct) and d.template_params:
            if len(args) != len(d.template_params):
                self.error(
                    loc,
                    f"template struct '{name}' takes {len(d.template_params)} type argument(s) "
                    f"<{', '.join(d.template_params)}>, got {len(args)}",
                )
        elif args:
            self.error(loc, f"'{name}' is not a template: write it without <...>")
            resolved_args = ()
        return NamedType(qname, resolved_args)

    # -- default values

    def default(self, value: Any, t: TypeRef, scope: str, loc: Location, what: str) -> Value:
        target = self._resolve_typedef(t)
        try:
            result = self._evaluate(value, target, scope)
        except EvalError as e:
            self.error(loc, f"default value of {what} is not a constant: {e}")
            return None
        if not self._fits(result, target):
            shown = _show_value(result)
            self.error(
                loc,
                f"default value {shown} does not fit {what} of type {_spell(t)}{_range(target)}",
            )
        return result

    def _evaluate(self, value: Any, target: TypeRef, scope: str) -> Value:
        if isinstance(value, Expr) and value.op == "list" and not value.args:
            zero = self._value_initialised(target)
            if zero is not None:
                return zero
        if isinstance(value, Expr) and value.op == "name":
            ref = self._value_name(value.args[0], target, scope)
            if ref is not None:
                return ref
        if isinstance(value, Expr) and value.op == "list":
            element = self._element_of(target)
            return tuple(self._evaluate(v, element, scope) for v in value.args)

        def names(name: str) -> int | None:
            ref = self._value_name(name, PrimitiveType(Primitive.INT64), scope)
            if isinstance(ref, EnumValueRef):
                enum = self.index[ref.enum]
                if isinstance(enum, Enum):
                    return next(v.value for v in enum.values if v.name == ref.value)
            return ref if isinstance(ref, int) and not isinstance(ref, bool) else None

        return evaluate(value, names)

    def _value_initialised(self, target: TypeRef) -> Value:
        """What C++ value-initialisation (``T x{};``) gives a scalar: its zero."""
        target = self._resolve_typedef(target)
        if isinstance(target, PrimitiveType):
            if target.kind is Primitive.BOOL:
                return False
            if target.kind.is_integer:
                return 0
            if target.kind.is_float:
                return 0.0
            if target.kind is Primitive.STRING:
                return ""
        if isinstance(target, NamedType):
            d = self.index.get(target.name)
            if isinstance(d, Enum):
                zero = next((v.name for v in d.values if v.value == 0), None)
                if zero is None:
                    raise EvalError(f"enum '{d.qualified_name}' has no value 0 to start from")
                return EnumValueRef(d.qualified_name, zero)
        return None

    def _value_name(self, written: str, target: TypeRef, scope: str) -> Value:
        """An enum value (``e::v``, or ``v`` of the target enum or an unscoped enum) or constant."""
        target = self._resolve_typedef(_unwrap_optional(self._resolve_typedef(target)))
        if "::" not in written and written in self.members:
            return self.members[written]
        if "::" in written.removeprefix("::"):
            owner, _, member = written.rpartition("::")
            qname = self.lookup(owner, scope)
            if qname is not None:
                d = self.index[qname]
                if isinstance(d, Enum):
                    if any(v.name == member for v in d.values):
                        return EnumValueRef(qname, member)
                    known = ", ".join(v.name for v in d.values)
                    raise EvalError(f"enum '{qname}' has no value '{member}' (it has {known})")
                if isinstance(d, Struct | Interface):
                    for c in d.constants:
                        if c.name == member:
                            return c.value if not isinstance(c.value, Expr) else None
                if isinstance(d, Namespace):
                    found = self._unscoped_value(member, qname)
                    if found is not None:
                        return found
        if isinstance(target, NamedType):
            enum = self.index.get(target.name)
            if isinstance(enum, Enum) and any(v.name == written for v in enum.values):
                return EnumValueRef(enum.qualified_name, written)
        return self._unscoped_value(written, scope)

    def _unscoped_value(self, name: str, scope: str) -> EnumValueRef | None:
        """``name`` as a value of an unscoped enum declared directly in ``scope``."""
        for d in self.index.values():
            if (
                isinstance(d, Enum)
                and not d.is_class
                and _scope_of(d.qualified_name) == scope
                and any(v.name == name for v in d.values)
            ):
                return EnumValueRef(d.qualified_name, name)
        return None

    def _element_of(self, t: TypeRef) -> TypeRef:
        t = self._resolve_typedef(_unwrap_optional(self._resolve_typedef(t)))
        if isinstance(t, VectorType | ArrayType | SetType):
            return t.element
        return t

    def _fits(self, value: Value, t: TypeRef) -> bool:
        t = self._resolve_typedef(t)
        match t:
            case PrimitiveType(kind):
                if kind.is_integer:
                    lo, hi = kind.int_range
                    return (
                        isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
                    )
                if kind.is_float:
                    return isinstance(value, int | float) and not isinstance(value, bool)
                if kind is Primitive.BOOL:
                    return isinstance(value, bool)
                if kind is Primitive.STRING:
                    return isinstance(value, str)
                return False
            case OptionalType(inner) | NullableType(inner):
                return value is None or self._fits(value, inner)
            case VectorType(e) | SetType(e, _):
                return isinstance(value, tuple) and all(self._fits(v, e) for v in value)
            case ArrayType(e, n):
                return (
                    isinstance(value, tuple)
                    and len(value) in (0, n)
                    and all(self._fits(v, e) for v in value)
                )
            case MapType() | JsonType():
                return value == ()
            case VariantType(alts):
                return any(self._fits(value, a) for a in alts)
            case InterfaceType():
                return value is None
            case NamedType(name):
                d = self.index.get(name)
                if isinstance(d, Enum):
                    return isinstance(value, EnumValueRef) and value.enum == name
                if isinstance(d, Struct):
                    return value == ()
                return False
        return False


def _unwrap_optional(t: TypeRef) -> TypeRef:
    while isinstance(t, OptionalType | NullableType):
        t = t.inner
    return t


def _scope_of(qname: str) -> str:
    return qname.rpartition("::")[0]


def _is_void(t: TypeRef) -> bool:
    return isinstance(t, PrimitiveType) and t.kind is Primitive.VOID


def _describe(d: TypeDefinition | Namespace) -> str:
    kinds = {
        Namespace: "a namespace",
        Struct: "a struct",
        Interface: "an interface",
        Enum: "an enum",
        ErrorDomain: "an error domain",
        Typedef: "a typedef",
    }
    return kinds[type(d)]


def _article(what: str) -> str:
    return f"an {what}" if what[0] in "aeiou" else f"a {what}"


def _range(t: TypeRef) -> str:
    if isinstance(t, PrimitiveType) and t.kind.is_integer:
        lo, hi = t.kind.int_range
        return f" ({lo}..{hi})"
    return ""


def _spell(t: TypeRef) -> str:
    return type_text(t, as_written)


def _show_value(v: Value) -> str:
    return value_text(v, as_written)
