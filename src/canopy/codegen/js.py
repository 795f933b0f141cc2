"""The JavaScript generator: a checked ``Model`` becomes one ES module with TypeScript
declarations beside it (``<stem>.js``, ``<stem>.d.ts``), plus the shared runtime they
import (``canopy-runtime.js`` and its ``.d.ts``), for browsers and Node.

Mapping. An interface is a proxy class (one async method per method; a ``[post]``
returns nothing and waits for nothing) with a TypeScript ``Implementation`` interface
for objects the page implements it with. A struct is a plain object, its type a
``StructType`` whose ``create()`` fills in IDL defaults; an enum is a frozen object
of its names, the values Canopy's JSON encoding uses; an error domain a frozen
object of its codes. Integers up to 32 bits are numbers, wider ones BigInts; bytes
are ``Uint8Array``s, sets ``Set``s, maps ``Map``s, a variant is ``{index, value}``.
Interface and struct ids are the same fingerprints the Python generator embeds, and
method ids the same declaration order, so the two sides agree by construction.

Names. A definition is exported under its IDL name, or under the shortest part of
its qualified name that is unique in the module (``v2_i_calculator``). Definitions
of ``#import``ed files that the file uses are emitted into its module too. A name
JavaScript reserves, or that a proxy's own members use (``dispose``), gets a
trailing underscore, as the Python generator does with keywords.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from importlib import resources
from pathlib import Path

from canopy.codegen.python import CodegenError, IdFunction, _substitute
from canopy.idl._model import (
    NOWHERE,
    ArrayType,
    Attributes,
    Constant,
    ConstantRef,
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
    Model,
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

__all__ = ["RUNTIME_FILES", "generate_js", "write_js"]

RUNTIME_FILES = ("canopy-runtime.js", "canopy-runtime.d.ts")
"""The shared runtime every generated module imports, written beside it."""

_RUNTIME = "./canopy-runtime.js"

# Words a binding or parameter may not be, and globals the declarations refer to.
_RESERVED = frozenset(
    {
        *("await", "break", "case", "catch", "class", "const", "continue", "debugger"),
        *("default", "delete", "do", "else", "enum", "export", "extends", "false"),
        *("finally", "for", "function", "if", "implements", "import", "in", "instanceof"),
        *("interface", "let", "new", "null", "package", "private", "protected", "public"),
        *("return", "static", "super", "switch", "this", "throw", "true", "try", "typeof"),
        *("var", "void", "while", "with", "yield", "arguments", "eval", "undefined"),
        *("NaN", "Infinity", "Array", "BigInt", "Error", "Map", "Object", "Promise", "Set"),
        *("Symbol", "Uint8Array"),
    }
)
# Members every proxy has (and ``constructor``): a method of that name gets an underscore.
_PROXY_MEMBERS = frozenset({"constructor", "dispose", "disposed", "connection"})
# Members of a struct type or a proxy class that a constant would hide.
_TYPE_MEMBERS = frozenset(
    {"k", "name", "id", "fields", "create", "length", "prototype", "interfaceId", "interfaceName"}
)

_INTS = {
    Primitive.INT8: "int8",
    Primitive.UINT8: "uint8",
    Primitive.INT16: "int16",
    Primitive.UINT16: "uint16",
    Primitive.INT32: "int32",
    Primitive.UINT32: "uint32",
    Primitive.INT64: "int64",
    Primitive.UINT64: "uint64",
    Primitive.INT128: "int128",
    Primitive.UINT128: "uint128",
    Primitive.ERROR_CODE: "int32",
}
_WIDE = frozenset({Primitive.INT64, Primitive.UINT64, Primitive.INT128, Primitive.UINT128})


# ---------------------------------------------------------------- public API


def generate_js(model: Model, *, ids: IdFunction | None = None) -> dict[str, str]:
    """The files: ``<stem>.js``, ``<stem>.d.ts`` and the runtime's two, by file name.

    ``ids`` gives the fingerprint of an interface or struct; by default
    ``canopy.idl.fingerprint``, as in the Python generator.
    """
    if ids is None:
        from canopy.idl import fingerprint

        def ids(definition: Interface | Struct) -> int:
            return fingerprint(model, definition)

    stem = module_name(model)
    generator = _Generator(model, ids)
    files = {f"{stem}.js": generator.javascript(), f"{stem}.d.ts": generator.declarations()}
    return {**files, **runtime_files()}


def write_js(model: Model, out_dir: Path, *, ids: IdFunction | None = None) -> list[Path]:
    """Write the module, its declarations and the runtime under ``out_dir``; the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, text in generate_js(model, ids=ids).items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def runtime_files() -> dict[str, str]:
    """The runtime's files, as shipped in this package."""
    folder = resources.files("canopy.codegen") / "js_runtime"
    return {name: (folder / name).read_text(encoding="utf-8") for name in RUNTIME_FILES}


def module_name(model: Model) -> str:
    """The module's file stem: the IDL file's (``inference.idl`` -> ``inference``)."""
    stem = Path(model.path.replace("\\", "/")).stem
    return stem or "idl"


# ---------------------------------------------------------------- literals


def _string(s: str) -> str:
    """A JavaScript string literal (JSON's, which ES2019 accepts in full)."""
    return json.dumps(s)


def _comment(text: str, indent: str) -> list[str]:
    """A JSDoc block; ``*/`` in the text cannot end it early."""
    lines = text.replace("*/", "*\\/").strip().splitlines() or [""]
    if len(lines) == 1:
        return [f"{indent}/** {lines[0]} */"]
    return [f"{indent}/**", *(f"{indent} * {line}".rstrip() for line in lines), f"{indent} */"]


def _doc(attributes: Attributes, indent: str, extra: str = "") -> list[str]:
    parts = [p for p in (attributes.description, extra) if p]
    if attributes.deprecated:
        message = attributes.get("deprecated")
        parts.append(f"@deprecated {message}" if isinstance(message, str) else "@deprecated")
    return _comment("\n".join(parts), indent) if parts else []


def _is_byte(t: TypeRef) -> bool:
    return isinstance(t, PrimitiveType) and t.kind in (Primitive.UINT8, Primitive.INT8)


# ---------------------------------------------------------------- the generator


class _Generator:
    def __init__(self, model: Model, ids: IdFunction) -> None:
        self.model = model
        self.ids = ids
        self.file_name = Path(model.path.replace("\\", "/")).name
        self.definitions = self._definitions()
        self.names = self._names()
        # Template structs as the instantiations the module uses: type text -> binding.
        self.instances: dict[str, tuple[str, Struct, tuple[TypeRef, ...]]] = {}

    # ------------------------------------------------------------ what is emitted

    def _definitions(self) -> list[TypeDefinition]:
        """The file's definitions and, before them, the imported ones they use."""
        own = [d for d in self.model.walk() if not isinstance(d, Namespace)]
        imported: dict[str, TypeDefinition] = {}

        def use(name: str) -> None:
            d = self.model.index.get(name)
            if d is None or isinstance(d, Namespace) or not d.imported or name in imported:
                return
            imported[name] = d
            for n in _references(d):
                use(n)

        for d in own:
            for n in _references(d):
                use(n)
        return [*imported.values(), *own]

    def _names(self) -> dict[str, str]:
        """Qualified name -> exported binding: the shortest unique tail of the name."""
        parts = {d.qualified_name: d.qualified_name.split("::") for d in self.definitions}
        depth = dict.fromkeys(parts, 1)
        while True:
            chosen = {q: "_".join(p[-depth[q] :]) for q, p in parts.items()}
            clashes: dict[str, list[str]] = {}
            for q, name in chosen.items():
                clashes.setdefault(name, []).append(q)
            grew = False
            for group in clashes.values():
                if len(group) > 1:
                    for q in group:
                        if depth[q] < len(parts[q]):
                            depth[q] += 1
                            grew = True
            if not grew:
                break
        names: dict[str, str] = {}
        taken: dict[str, str] = {}
        for d in self.definitions:
            name = chosen[d.qualified_name]
            if d.name.startswith("__"):
                raise CodegenError(d.location, f"'{d.name}': names starting with '__' are reserved")
            if name in _RESERVED:
                name += "_"
            if name in taken:
                raise CodegenError(
                    d.location,
                    f"'{d.qualified_name}' and '{taken[name]}' would both be exported as "
                    f"'{name}' by the JavaScript module: rename one",
                )
            taken[name] = d.qualified_name
            names[d.qualified_name] = name
        return names

    def name(self, qualified_name: str, location: Location = NOWHERE) -> str:
        found = self.names.get(qualified_name)
        if found is None:
            raise CodegenError(location, f"'{qualified_name}' is not defined in the model")
        return found

    # ------------------------------------------------------------ the module

    def javascript(self) -> str:
        body: list[str] = []
        for d in self.definitions:
            lines = self._js_definition(d)
            if lines:
                body += [*lines, ""]
        instances: list[str] = []
        done: set[str] = set()
        # Instantiations found while rendering may use further ones: render until none is new.
        while len(done) < len(self.instances):
            for key, (binding, s, args) in list(self.instances.items()):
                if key not in done:
                    done.add(key)
                    instances += [*self._js_struct(binding, s, args, exported=False), ""]
        head = [
            f"// Generated by canopy from {self.file_name} \u2014 do not edit.",
            f'import * as $rt from "{_RUNTIME}";',
            "",
            "const $t = $rt.types;",
            "",
        ]
        return "\n".join([*head, *body, *instances]).rstrip("\n") + "\n"

    def _js_definition(self, d: TypeDefinition) -> list[str]:
        name = self.name(d.qualified_name, d.location)
        if isinstance(d, Enum):
            names = ", ".join(_string(v.name) for v in d.values)
            title = _string(d.qualified_name)
            return [f"export const {name} = $rt.enumeration({title}, [{names}]);"]
        if isinstance(d, ErrorDomain):
            codes = ", ".join(f"{_key(v.name)}: {v.code}" for v in d.values)
            title = _string(d.qualified_name)
            return [f"export const {name} = $rt.errors({title}, {{ {codes} }});"]
        if isinstance(d, Typedef):
            return []  # a typedef is the type it names: descriptors use that type
        if isinstance(d, Struct):
            if d.is_template:
                return []  # only its instantiations have descriptors
            return self._js_struct(name, d, (), exported=True)
        return self._js_interface(name, d)

    def _js_struct(
        self, binding: str, s: Struct, args: tuple[TypeRef, ...], *, exported: bool
    ) -> list[str]:
        title = s.qualified_name
        if args:
            title += "<" + ", ".join(self._type_text(a) for a in args) + ">"
        lines = [
            f"{'export ' if exported else ''}const {binding} = $rt.struct("
            f"{_string(title)}, {_bigint(self.ids(s))}, () => ["
        ]
        for f in self._all_fields(s, args):
            lines.append(f"  {self._field_spec(f)},")
        lines.append("]);")
        if s.constants and exported:
            lines += self._js_constants(binding, s.constants)
        return lines

    def _field_spec(self, f: Field) -> str:
        parts = [f"name: {_string(f.name)}", f"type: {self.js_type(f.type, f.location)}"]
        resolved = self.model.resolve(f.type)
        optional = isinstance(resolved, OptionalType | NullableType)
        if f.has_default:
            expr = self.value(f.type, f.default, f.location)
            if expr == "null" and optional:
                parts.append("omit: true")
            else:
                parts.append(f"default: () => {expr}")
        elif isinstance(resolved, OptionalType):
            parts.append("omit: true")
        return "{ " + ", ".join(parts) + " }"

    def _js_constants(self, binding: str, constants: tuple[Constant, ...]) -> list[str]:
        entries = []
        for c in constants:
            if c.name in _TYPE_MEMBERS:
                raise CodegenError(
                    c.location, f"constant '{c.name}' would hide a member of {binding}: rename it"
                )
            entries.append(f"  {_key(c.name)}: {self.value(c.type, c.value, c.location)},")
        return [f"$rt.constants({binding}, {{", *entries, "});"]

    def _methods(self, i: Interface) -> list[tuple[Interface, Method, str]]:
        """Every method a proxy of ``i`` has, bases' first, each name once, with its JS name."""
        out: list[tuple[Interface, Method, str]] = []
        seen: set[str] = set()
        for owner, m in self.model.all_methods(i):
            js = _method_name(m)
            if js not in seen:
                seen.add(js)
                out.append((owner, m, js))
        return out

    def _js_interface(self, name: str, i: Interface) -> list[str]:
        lines = [f"export class {name} extends $rt.Proxy {{"]
        for index, (owner, m, js) in enumerate(self._methods(i)):
            params = _param_names(m)
            args = ", ".join(params[p.name] for p in m.inputs)
            owner_name = self.name(owner.qualified_name, owner.location)
            if index:
                lines.append("")
            lines += [
                f"  {js}({args}) {{",
                f"    return $rt.invoke(this, {owner_name}, {m.id}, [{args}]);",
                "  }",
            ]
        lines.append("}")
        bases = ", ".join(self.name(b, i.location) for b in i.bases)
        lines += [
            f"$rt.defineInterface({name}, {{",
            f"  id: {_bigint(self.ids(i))},",
            f"  name: {_string(i.qualified_name)},",
            f"  bases: () => [{bases}],",
            "  methods: () => [",
        ]
        for m in i.methods:
            lines.append(f"    {self._method_spec(m)},")
        lines += ["  ],", "});"]
        if i.constants:
            lines += self._js_constants(name, i.constants)
        return lines

    def _method_spec(self, m: Method) -> str:
        options: list[str] = []
        if m.is_post:
            options.append("post: true")
        if m.tag:
            options.append(f"tag: {m.tag}")
        for key, params in (("inputs", m.inputs), ("outputs", m.outputs)):
            if params:
                pairs = ", ".join(
                    f"[{_string(p.name)}, {self.js_type(p.type, p.location)}]" for p in params
                )
                options.append(f"{key}: [{pairs}]")
        ret = self.model.resolve(m.return_type)
        if isinstance(ret, NamedType) and isinstance(self.model.index.get(ret.name), ErrorDomain):
            options.append(f"raises: {self.name(ret.name, m.location)}")
        spec = ", ".join(options)
        head = f"$rt.method({m.id}, {_string(m.name)}, {_string(_method_name(m))}"
        return f"{head}, {{ {spec} }})" if spec else f"{head})"

    # ------------------------------------------------------------ descriptors of types

    def js_type(self, t: TypeRef, location: Location) -> str:
        """The runtime type descriptor of an IDL type, as an expression."""
        match t:
            case PrimitiveType(kind):
                return self._js_primitive(kind, location)
            case VectorType(element):
                if _is_byte(self.model.resolve(element)):
                    return "$t.bytes()"
                return f"$t.list({self.js_type(element, location)})"
            case ArrayType(element, size):
                if _is_byte(self.model.resolve(element)):
                    return f"$t.bytes({size}, {size})"
                return f"$t.list({self.js_type(element, location)}, {size}, {size})"
            case MapType(key, value):
                return f"$t.map({self.js_type(key, location)}, {self.js_type(value, location)})"
            case SetType(element):
                return f"$t.set({self.js_type(element, location)})"
            case OptionalType(inner) | NullableType(inner):
                return f"$t.optional({self.js_type(inner, location)})"
            case VariantType(alternatives):
                return f"$t.variant({', '.join(self.js_type(a, location) for a in alternatives)})"
            case InterfaceType(interface, owning):
                pointer = "shared" if owning else "optimistic"
                return f"$t.{pointer}(() => {self.name(interface, location)})"
            case JsonType():
                return "$t.json"
            case NamedType(name, args):
                return self._js_named(name, args, location)
            case TemplateParamType(name):
                raise CodegenError(location, f"template parameter '{name}' outside its template")
        raise CodegenError(location, f"unsupported type {t!r}")

    def _js_primitive(self, kind: Primitive, location: Location) -> str:
        if kind is Primitive.BOOL:
            return "$t.bool"
        if kind is Primitive.FLOAT:
            return "$t.float"
        if kind is Primitive.DOUBLE:
            return "$t.double"
        if kind is Primitive.STRING:
            return "$t.string"
        if kind in _INTS:
            return f"$t.{_INTS[kind]}"
        raise CodegenError(location, f"'{kind.value}' is not a value type")

    def _js_named(self, name: str, args: tuple[TypeRef, ...], location: Location) -> str:
        d = self.model.index.get(name)
        if isinstance(d, Typedef):
            return self.js_type(d.type, location)
        if isinstance(d, Enum | ErrorDomain):
            return f"$t.of({self.name(name, location)})"
        if isinstance(d, Interface):
            return f"$t.shared(() => {self.name(name, location)})"
        if isinstance(d, Struct):
            if not args:
                return self.name(name, location)
            key = self._type_text(NamedType(name, args))
            found = self.instances.get(key)
            if found is None:
                binding = f"${self.name(name, location)}${len(self.instances) + 1}"
                found = self.instances[key] = (binding, d, args)
            return found[0]
        raise CodegenError(location, f"'{name}' is not a type")

    def _type_text(self, t: TypeRef) -> str:
        from canopy.idl._printer import type_text

        return type_text(t, lambda qualified: qualified)

    def _all_fields(self, s: Struct, args: tuple[TypeRef, ...] = ()) -> list[Field]:
        """A struct's fields, its bases' first; a template's with its arguments put in."""
        base = self.model.index.get(s.base) if s.base else None
        inherited = self._all_fields(base) if isinstance(base, Struct) else []
        fields = [*inherited, *s.fields]
        if s.template_params and args:
            bound = dict(zip(s.template_params, args, strict=False))
            fields = [replace(f, type=_substitute(f.type, bound)) for f in fields]
        return fields

    # ------------------------------------------------------------ values

    def value(self, t: TypeRef, v: Value, location: Location) -> str:
        """A default or constant as a JavaScript expression of the type's runtime form."""
        if isinstance(v, ConstantRef):
            owner, _, constant = v.name.rpartition("::")
            return f"{self.name(owner, location)}.{constant}"
        rt = self.model.resolve(t)

        def bad() -> CodegenError:
            return CodegenError(location, f"{v!r} is not a value of type {self._type_text(rt)}")

        if isinstance(v, EnumValueRef):
            return _string(v.value)
        if v == () and not isinstance(rt, VectorType | ArrayType | SetType | MapType):
            return self._zero(rt, location)
        match rt:
            case OptionalType(inner) | NullableType(inner):
                return "null" if v is None else self.value(inner, v, location)
            case InterfaceType() | JsonType() if v is None:
                return "null"
            case PrimitiveType(kind):
                return _primitive(kind, v, bad)
            case VectorType(element) | ArrayType(element) | SetType(element):
                if not isinstance(v, tuple):
                    raise bad()
                items = list(v)
                if isinstance(rt, ArrayType):
                    if len(items) > rt.size:
                        raise bad()
                    zero = self._zero(self.model.resolve(element), location)
                    rendered = [self.value(element, x, location) for x in items]
                    rendered += [zero] * (rt.size - len(items))
                else:
                    rendered = [self.value(element, x, location) for x in items]
                if _is_byte(self.model.resolve(element)) and not isinstance(rt, SetType):
                    return f"new Uint8Array([{', '.join(rendered)}])"
                if isinstance(rt, SetType):
                    return f"new Set([{', '.join(rendered)}])"
                return f"[{', '.join(rendered)}]"
            case MapType(key, value):
                if not isinstance(v, tuple):
                    raise bad()
                pairs = []
                for pair in v:
                    if not isinstance(pair, tuple) or len(pair) != 2:
                        raise bad()
                    k = self.value(key, pair[0], location)
                    pairs.append(f"[{k}, {self.value(value, pair[1], location)}]")
                return f"new Map([{', '.join(pairs)}])"
            case VariantType(alternatives):
                # The first alternative the value fits, as C++ would convert it.
                for n, alternative in enumerate(alternatives):
                    try:
                        return f"{{ index: {n}, value: {self.value(alternative, v, location)} }}"
                    except CodegenError:
                        continue
                raise bad()
            case NamedType(name, args):
                d = self.model.index.get(name)
                if isinstance(d, Enum) and isinstance(v, int) and not isinstance(v, bool):
                    for member in d.values:
                        if member.value == v:
                            return _string(member.name)
                    raise bad()
                if isinstance(d, Struct) and isinstance(v, tuple):
                    return self._struct_value(d, args, v, location)
        raise bad()

    def _struct_value(
        self,
        s: Struct,
        args: tuple[TypeRef, ...],
        v: tuple[Value, ...],
        location: Location,
    ) -> str:
        fields = self._all_fields(s, args)
        if len(v) > len(fields):
            raise CodegenError(location, f"{v!r} has more values than {s.qualified_name} fields")
        entries = [
            f"{_key(f.name)}: {self.value(f.type, x, location)}"
            for f, x in zip(fields, v, strict=False)
        ]
        # Members the initialiser leaves out are value-initialised, as in C++; the
        # encoder fills in those with defaults.
        for f in fields[len(v) :]:
            resolved = self.model.resolve(f.type)
            if not f.has_default and not isinstance(resolved, OptionalType):
                entries.append(f"{_key(f.name)}: {self._zero(resolved, location)}")
        return "{ " + ", ".join(entries) + " }" if entries else "{}"

    def _zero(self, t: TypeRef, location: Location) -> str:
        """``T{}``: the zero of a type (C++ value-initialisation)."""
        unsupported = CodegenError(location, f"'{{}}' cannot value-initialise {self._type_text(t)}")
        match t:
            case OptionalType() | NullableType() | InterfaceType() | JsonType():
                return "null"
            case PrimitiveType(kind):
                if kind is Primitive.BOOL:
                    return "false"
                if kind.is_float:
                    return "0"
                if kind is Primitive.STRING:
                    return '""'
                if kind in _INTS:
                    return "0n" if kind in _WIDE else "0"
                raise unsupported
            case VectorType() | ArrayType() | SetType() | MapType():
                return self.value(t, (), location)
            case VariantType(alternatives):
                inner = self._zero(self.model.resolve(alternatives[0]), location)
                return f"{{ index: 0, value: {inner} }}"
            case NamedType(name, args):
                d = self.model.index.get(name)
                if isinstance(d, Enum):
                    for member in d.values:
                        if member.value == 0:
                            return _string(member.name)
                    raise CodegenError(
                        location, f"'{{}}' makes {name} 0, which is none of its values"
                    )
                if isinstance(d, Struct):
                    return self._struct_value(d, args, (), location)
        raise unsupported

    # ------------------------------------------------------------ declarations

    def declarations(self) -> str:
        lines = [
            f"// Generated by canopy from {self.file_name} \u2014 do not edit.",
            f'import * as $rt from "{_RUNTIME}";',
            "",
        ]
        for d in self.definitions:
            lines += [*self._ts_definition(d), ""]
        return "\n".join(lines).rstrip("\n") + "\n"

    def _ts_definition(self, d: TypeDefinition) -> list[str]:
        name = self.name(d.qualified_name, d.location)
        doc = _doc(d.attributes, "", f"IDL `{d.qualified_name}`.")
        if isinstance(d, Enum):
            members = "; ".join(f"readonly {_key(v.name)}: {_string(v.name)}" for v in d.values)
            union = " | ".join(dict.fromkeys(_string(v.name) for v in d.values)) or "never"
            return [
                *doc,
                f"export declare const {name}: {{ {members} }};",
                f"export type {name} = {union};",
            ]
        if isinstance(d, ErrorDomain):
            members = "; ".join(f"readonly {_key(v.name)}: {v.code}" for v in d.values)
            union = " | ".join(_string(v.name) for v in d.values) or "never"
            return [
                *doc,
                f"export declare const {name}: {{ {members} }};",
                f"export type {name} = {union};",
            ]
        if isinstance(d, Typedef):
            return [*doc, f"export type {name} = {self.ts_type(d.type, 'in', d.location)};"]
        if isinstance(d, Struct):
            return self._ts_struct(name, d, doc)
        return self._ts_interface(name, d, doc)

    def _ts_struct(self, name: str, s: Struct, doc: list[str]) -> list[str]:
        params = f"<{', '.join(s.template_params)}>" if s.template_params else ""
        base = f" extends {self.name(s.base, s.location)}" if s.base else ""
        lines = [*doc, f"export interface {name}{params}{base} {{"]
        for f in s.fields:
            lines += _doc(f.attributes, "  ")
            mark = "?" if self._may_omit(f) else ""
            lines.append(f"  {_key(f.name)}{mark}: {self.ts_type(f.type, 'in', f.location)};")
        lines.append("}")
        if not s.is_template:
            extra = "".join(
                f" & {{ readonly {_key(c.name)}: {self.ts_type(c.type, 'out', c.location)} }}"
                for c in s.constants
            )
            lines.append(f"export declare const {name}: $rt.StructType<{name}>{extra};")
        return lines

    def _may_omit(self, f: Field) -> bool:
        """Whether a value may leave the field out: a default or null fills it in."""
        resolved = self.model.resolve(f.type)
        return f.has_default or isinstance(resolved, OptionalType | NullableType | InterfaceType)

    def _ts_interface(self, name: str, i: Interface, doc: list[str]) -> list[str]:
        lines = [*doc, f"export declare class {name} extends $rt.Proxy {{"]
        lines.append("  static readonly interfaceId: bigint;")
        lines.append(f"  static readonly interfaceName: {_string(i.qualified_name)};")
        for c in i.constants:
            lines.append(
                f"  static readonly {_key(c.name)}: {self.ts_type(c.type, 'out', c.location)};"
            )
        implementation: list[str] = []
        for owner, m, js in self._methods(i):
            params = self._ts_params(m, "in")
            result = self._ts_result(m, "out")
            returns = "void" if m.is_post else f"Promise<{result}>"
            lines += _doc(m.attributes, "  ", _param_docs(m))
            lines.append(f"  {js}({params}): {returns};")
            if owner is i:
                impl_result = "void" if m.is_post else self._ts_result(m, "in")
                implementation += _doc(m.attributes, "    ", _param_docs(m))
                implementation.append(
                    f"    {js}({self._ts_params(m, 'out')}): "
                    f"{impl_result} | Promise<{impl_result}>;"
                )
        lines.append("}")
        bases = [f"{self.name(b, i.location)}.Implementation" for b in i.bases]
        extends = f" extends {', '.join(bases)}" if bases else ""
        lines += [
            f"export declare namespace {name} {{",
            f"  /** What an object the page implements `{i.name}` with provides. */",
            f"  interface Implementation{extends} {{",
            *implementation,
            "  }",
            "}",
        ]
        return lines

    def _ts_params(self, m: Method, direction: str) -> str:
        names = _param_names(m)
        return ", ".join(
            f"{names[p.name]}: {self.ts_type(p.type, direction, p.location)}" for p in m.inputs
        )

    def _ts_result(self, m: Method, direction: str) -> str:
        outputs = m.outputs
        if not outputs:
            return "void"
        if len(outputs) == 1:
            return self.ts_type(outputs[0].type, direction, outputs[0].location)
        fields = "; ".join(
            f"{_key(p.name)}: {self.ts_type(p.type, direction, p.location)}" for p in outputs
        )
        return f"{{ {fields} }}"

    def ts_type(self, t: TypeRef, direction: str, location: Location) -> str:
        """The TypeScript type of an IDL type; ``direction`` "in" is what the page sends
        (an interface may be a proxy or the page's own implementation), "out" what it
        receives (a proxy)."""
        match t:
            case PrimitiveType(kind):
                if kind is Primitive.BOOL:
                    return "boolean"
                if kind is Primitive.STRING:
                    return "string"
                if kind in _WIDE:
                    return "bigint"
                if kind.is_float or kind in _INTS:
                    return "number"
                raise CodegenError(location, f"'{kind.value}' is not a value type")
            case VectorType(element):
                if _is_byte(self.model.resolve(element)):
                    return "Uint8Array"
                return _array(self.ts_type(element, direction, location))
            case ArrayType(element):
                if _is_byte(self.model.resolve(element)):
                    return "Uint8Array"
                return _array(self.ts_type(element, direction, location))
            case MapType(key, value):
                k = self.ts_type(key, direction, location)
                return f"Map<{k}, {self.ts_type(value, direction, location)}>"
            case SetType(element):
                return f"Set<{self.ts_type(element, direction, location)}>"
            case OptionalType(inner) | NullableType(inner):
                inner_type = self.ts_type(inner, direction, location)
                return inner_type if inner_type.endswith("| null") else f"{inner_type} | null"
            case VariantType(alternatives):
                return " | ".join(
                    f"{{ index: {n}; value: {self.ts_type(a, direction, location)} }}"
                    for n, a in enumerate(alternatives)
                )
            case InterfaceType(interface):
                return self._ts_interface_ref(interface, direction, location)
            case JsonType():
                return "$rt.JsonValue"
            case TemplateParamType(name):
                return name
            case NamedType(name, args):
                d = self.model.index.get(name)
                if isinstance(d, Interface):
                    return self._ts_interface_ref(name, direction, location)
                local = self.name(name, location)
                if args:
                    bound = ", ".join(self.ts_type(a, direction, location) for a in args)
                    return f"{local}<{bound}>"
                return local
        raise CodegenError(location, f"unsupported type {t!r}")

    def _ts_interface_ref(self, interface: str, direction: str, location: Location) -> str:
        cls = self.name(interface, location)
        if direction == "in":
            return f"{cls} | {cls}.Implementation | null"
        return f"{cls} | null"


# ---------------------------------------------------------------- helpers


def _references(d: TypeDefinition) -> Iterator[str]:
    """Qualified names a definition refers to (types, bases, constants' owners)."""
    types: list[TypeRef] = []
    values: list[Value] = []
    if isinstance(d, Typedef):
        types.append(d.type)
    elif isinstance(d, Struct):
        if d.base:
            yield d.base
        types += [f.type for f in d.fields]
        values += [f.default for f in d.fields]
        types += [c.type for c in d.constants]
        values += [c.value for c in d.constants]
    elif isinstance(d, Interface):
        yield from d.bases
        for m in d.methods:
            types.append(m.return_type)
            types += [p.type for p in m.parameters]
        types += [c.type for c in d.constants]
        values += [c.value for c in d.constants]
    for t in types:
        yield from _type_names(t)
    for v in values:
        yield from _value_names(v)


def _type_names(t: TypeRef) -> Iterator[str]:
    match t:
        case VectorType(inner) | ArrayType(inner) | SetType(inner):
            yield from _type_names(inner)
        case OptionalType(inner) | NullableType(inner):
            yield from _type_names(inner)
        case MapType(key, value):
            yield from _type_names(key)
            yield from _type_names(value)
        case VariantType(alternatives):
            for a in alternatives:
                yield from _type_names(a)
        case InterfaceType(interface):
            yield interface
        case NamedType(name, args):
            yield name
            for a in args:
                yield from _type_names(a)


def _value_names(v: Value) -> Iterator[str]:
    if isinstance(v, EnumValueRef):
        yield v.enum
    elif isinstance(v, ConstantRef):
        yield v.name.rpartition("::")[0]
    elif isinstance(v, tuple):
        for x in v:
            yield from _value_names(x)


def _bigint(value: int) -> str:
    return f"0x{value:016x}n"


def _key(name: str) -> str:
    """An object key or property name: identifiers as they are, others quoted."""
    if name.isidentifier() and name.isascii():
        return name
    return _string(name)


def _array(element: str) -> str:
    simple = element.replace("_", "").replace(".", "").isalnum()
    return f"{element}[]" if simple else f"Array<{element}>"


def _method_name(m: Method) -> str:
    if m.name.startswith("__"):
        raise CodegenError(m.location, f"'{m.name}': names starting with '__' are reserved")
    return m.name + "_" if m.name in _PROXY_MEMBERS else m.name


def _param_names(m: Method) -> dict[str, str]:
    """JavaScript names of a method's parameters, by IDL name: unique, never reserved."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for p in m.parameters:
        name = p.name + "_" if p.name in _RESERVED else p.name
        while name in taken:
            name += "_"
        taken.add(name)
        names[p.name] = name
    return names


def _param_docs(m: Method) -> str:
    described: list[Parameter] = [p for p in m.parameters if p.attributes.description]
    return "\n".join(f"@param {p.name} {p.attributes.description}" for p in described)


def _primitive(kind: Primitive, v: Value, fail: Callable[[], CodegenError]) -> str:
    if kind is Primitive.BOOL:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int) and v in (0, 1):
            return "true" if v else "false"
        raise fail()
    if kind.is_float:
        if isinstance(v, int | float) and not isinstance(v, bool):
            f = float(v)
            if math.isnan(f):
                return "NaN"
            if math.isinf(f):
                return "Infinity" if f > 0 else "-Infinity"
            return repr(f)
        raise fail()
    if kind is Primitive.STRING:
        if isinstance(v, str):
            return _string(v)
        raise fail()
    if kind.is_integer:
        if isinstance(v, bool):
            v = int(v)
        if not isinstance(v, int):
            raise fail()
        lo, hi = kind.int_range
        if not lo <= v <= hi:
            raise fail()
        return f"{v}n" if kind in _WIDE else str(v)
    raise fail()
