"""The JSON Schema generator: every struct and every method's inputs and outputs, in the
two profiles of the walkthrough, each describing the JSON that Canopy's JSON encoding
(``canopy.wire.codecs._json``) writes and reads.

Every value the JSON encoder writes for a type validates against that type's schema
in either profile, and whatever validates against a config-profile schema the
decoder reads. The shapes are the codec's: a struct is an object keyed by IDL field
name; an ``rpc::optional`` or ``rpc::nullable`` value, an interface pointer and an
optional's absent value may be ``null``; an enum (or error domain) value is its IDL
name, every name accepted, aliases included, and in the config profile its number
too (the codec writes names and reads either); a variant is ``{"<index>": value}``; bytes are padded
base64; a float is a number or one of the strings ``"NaN"``, ``"Infinity"``,
``"-Infinity"``; a map with string keys is an object, any other map an array of
``[key, value]`` pairs; a set is an array of distinct items; an interface pointer is
``{"zone", "object", "interface", "kind"}``; ``json::v1::object`` is any JSON value.
Integers carry the ``minimum`` and ``maximum`` of their width. Two gaps JSON Schema
cannot close: it counts ``1.0`` as an integer, which the decoder refuses, and the
decoder ignores properties it does not know, which the schemas refuse.

The config profile is the authoring schema for editors: draft-07, ``title`` and
``description`` (from ``[description]``), ``default`` (from the IDL initialiser, as
the encoder writes it), ``additionalProperties: false`` and ``required`` exactly as
the decoder needs: a field is optional when it is an ``rpc::optional`` or has a
default, and every parameter of a method is required. Structs and enums of the same
IDL file are ``#/definitions/<qualified.name>`` (so a recursive struct refers to
itself); those of an ``#import``ed file are ``$ref``s into that file's document,
found by its ``$id``. Template structs have one definition per instantiation
(``matrix.box<int32_t>``) in every file that uses it.

The MCP profile is the tool schema for AI agents: everything inlined (no ``$ref``,
no ``$id``), no defaults, enums as their names, descriptions and ``required`` kept.
A struct that contains itself is inlined once; where it recurs, the schema is a
plain ``{"type": "object"}`` that says so. An ``[in]`` parameter whose value may be
left out is not required: an ``rpc::optional``, ``rpc::nullable`` or interface
pointer (left out, it is ``null``) and a struct none of whose fields is required
(left out, it is ``{}``); ``complete_inputs`` puts those values back before the
arguments are decoded. A method's outputs are its ``[out]`` (and ``[in, out]``)
parameters by name: its return value is the error code, which is not a result
(zero is success, anything else travels as an error), so it has no key.

Files (``canopy generate --schema``, ``write_schemas``). For the IDL file and every
file whose definitions its documents refer to, ``<name>.schema.json``: the config
profile of every struct, enum and method input and output of that file, under
``definitions``, with ``$id`` its own file name, so that the ``$ref``s between
documents resolve wherever the directory is put. ``<name>`` is the IDL file's path
relative to the main file with ``/`` as ``.`` (``rpc.rpc_types`` for the shipped
types). For the main file alone, ``<name>.mcp.json``: ``structs`` (the MCP profile
of each struct) and ``interfaces`` (each interface's MCP tools, named as the
walkthrough names them: ``i_session.generate``). An editor takes one definition as
the schema of a file with a one-line schema of its own:
``{"$ref": "inference.schema.json#/definitions/inference.v1.generation_options"}``.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from canopy.codegen.python import CodegenError, _substitute
from canopy.idl._model import (
    ArrayType,
    Enum,
    EnumValue,
    EnumValueRef,
    ErrorDomain,
    ErrorValue,
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
    TypeDefinition,
    TypeRef,
    Value,
    VariantType,
    VectorType,
)

__all__ = [
    "DRAFT_07",
    "MethodSchema",
    "Profile",
    "complete_inputs",
    "generate_schemas",
    "method_schemas",
    "struct_schema",
    "write_schemas",
]

Profile = Literal["config", "mcp"]
Schema = dict[str, Any]

DRAFT_07 = "http://json-schema.org/draft-07/schema#"

_RPC_TYPES_FILE = "rpc/rpc_types.idl"
_UINT64_MAX = (1 << 64) - 1
_UINT32_MAX = (1 << 32) - 1
_B64 = "[A-Za-z0-9+/]"
_BASE64 = f"^(?:{_B64}{{4}})*(?:{_B64}{{2}}==|{_B64}{{3}}=)?$"
_NON_FINITE = "^(NaN|-?Infinity)$"
_BYTE_KINDS = (Primitive.UINT8, Primitive.INT8)  # the model spells ``char`` as int8_t


class _Absent:
    """No default the schema can state (none in the IDL, or one JSON cannot show)."""


_ABSENT = _Absent()

# ---------------------------------------------------------------- public API


@dataclass(frozen=True, slots=True)
class MethodSchema:
    """One method's schemas in one profile, with what a tool list needs beside them."""

    interface: str  # qualified name of the interface that declares the method
    name: str
    id: int
    description: str | None
    post: bool
    deprecated: bool
    inputs: Schema
    outputs: Schema

    @property
    def tool_name(self) -> str:
        """``i_session.generate``: the interface's own name, a dot, the method's."""
        return f"{self.interface.rsplit('::', 1)[-1]}.{self.name}"

    def tool(self) -> Schema:
        """The method as an MCP tool definition (meant for the MCP profile)."""
        tool: Schema = {"name": self.tool_name}
        if self.description:
            tool["description"] = self.description
        tool["inputSchema"] = self.inputs
        tool["outputSchema"] = self.outputs
        return tool


def struct_schema(model: Model, name: str, profile: Profile = "config") -> Schema:
    """The schema of the struct called ``name`` (qualified; an inline namespace may be
    left out), as a document of its own.

    In the config profile the document holds the structs and enums of the same IDL
    file that it refers to under ``definitions``; those of other files are ``$ref``s
    to their file's document (``generate_schemas``), relative to where this one is.
    """
    d = _lookup(model, name)
    if not isinstance(d, Struct):
        raise KeyError(f"'{name}' is not a struct of {model.path}")
    if d.is_template:
        raise CodegenError(
            d.location, f"template '{d.qualified_name}' has a schema per instantiation only"
        )
    builder = _Builder(model, profile, _home(d, model))
    return builder.document(builder.struct_body(d, ()))


def method_schemas(
    model: Model, interface: str | Interface, profile: Profile = "config"
) -> list[MethodSchema]:
    """Every method an object of ``interface`` answers (its bases' first, each once),
    with input and output schemas that are documents of their own, as ``struct_schema``
    makes them."""
    i = interface if isinstance(interface, Interface) else _lookup(model, interface)
    if not isinstance(i, Interface):
        raise KeyError(f"'{interface}' is not an interface of {model.path}")
    out: list[MethodSchema] = []
    for owner, m in model.all_methods(i):
        builder = _Builder(model, profile, _home(owner, model))
        inputs = builder.document(builder.inputs(owner, m))
        builder = _Builder(model, profile, _home(owner, model))
        outputs = builder.document(builder.outputs(owner, m))
        out.append(
            MethodSchema(
                owner.qualified_name,
                m.name,
                m.id,
                m.description,
                m.is_post,
                m.deprecated,
                inputs,
                outputs,
            )
        )
    return out


def complete_inputs(model: Model, method: Method, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``arguments`` (JSON, as the MCP profile allows them) with every ``[in]``
    parameter the profile let the caller leave out put back as its empty value, so
    that the JSON codec, which needs every parameter, can read them."""
    out = dict(arguments)
    for p in method.inputs:
        if p.name not in out:
            empty = _empty_value(model, p.type)
            if not isinstance(empty, _Absent):
                out[p.name] = empty
    return out


def generate_schemas(model: Model) -> dict[str, str]:
    """The schema files: name (``inference.schema.json``) -> JSON text."""
    documents = _config_documents(model)
    documents[_document_stem(model.path, model) + ".mcp.json"] = _mcp_document(model)
    # msgspec writes the same text as json.dumps(indent=2, ensure_ascii=False), fifty
    # times as fast: the MCP document of a large IDL file is big.
    return {
        name: msgspec.json.format(msgspec.json.encode(document), indent=2).decode() + "\n"
        for name, document in documents.items()
    }


def write_schemas(model: Model, out_dir: Path) -> list[Path]:
    """Write the schema files into ``out_dir``; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, text in generate_schemas(model).items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# ---------------------------------------------------------------- files and names


def _lookup(model: Model, name: str) -> TypeDefinition | Namespace:
    try:
        return model.lookup(name)
    except KeyError:
        raise KeyError(f"no definition '{name}' in {model.path}") from None


def _home(d: TypeDefinition, model: Model) -> str:
    """The IDL file a definition was written in."""
    return d.location.file if d.imported else model.path


def _document_stem(idl: str, model: Model) -> str:
    """``inference`` for the main file, ``rpc.rpc_types`` for the shipped types, an
    imported file's path relative to the main file's directory with dots otherwise."""
    posix = idl.replace("\\", "/")
    if posix == _RPC_TYPES_FILE or posix.endswith("/" + _RPC_TYPES_FILE):
        return _RPC_TYPES_FILE.removesuffix(".idl").replace("/", ".")
    path = PurePosixPath(posix)
    if idl == model.path:
        return path.stem
    main_dir = Path(model.path.replace("\\", "/")).parent
    try:
        relative = PurePosixPath(Path(posix).resolve().relative_to(main_dir.resolve()).as_posix())
    except ValueError:
        relative = PurePosixPath(path.name)
    return ".".join((*relative.parent.parts, relative.stem))


def _document_name(idl: str, model: Model) -> str:
    return _document_stem(idl, model) + ".schema.json"


def _key(qualified_name: str) -> str:
    """A definition's key: its qualified name with dots (``inference.v1.finish_reason``)."""
    return qualified_name.replace("::", ".")


def _pointer(key: str) -> str:
    """The URI fragment of ``#/definitions/<key>`` (``<``, ``>`` and spaces escaped)."""
    return "#" + quote("/definitions/" + key.replace("~", "~0").replace("/", "~1"), safe="/.,_-")


def _spell(t: TypeRef) -> str:
    """A template argument as the IDL writes it, for definition keys (``box<int32_t>``)."""
    match t:
        case PrimitiveType(kind):
            return kind.value
        case NamedType(name, args):
            return name + (f"<{', '.join(_spell(a) for a in args)}>" if args else "")
        case VectorType(element):
            return f"std::vector<{_spell(element)}>"
        case ArrayType(element, size):
            return f"std::array<{_spell(element)}, {size}>"
        case MapType(key, value, kind):
            return f"{kind.value}<{_spell(key)}, {_spell(value)}>"
        case SetType(element, kind):
            return f"{kind.value}<{_spell(element)}>"
        case OptionalType(inner):
            return f"rpc::optional<{_spell(inner)}>"
        case NullableType(inner):
            return f"rpc::nullable<{_spell(inner)}>"
        case VariantType(alternatives):
            return f"rpc::variant<{', '.join(_spell(a) for a in alternatives)}>"
        case InterfaceType(interface, owning):
            return f"rpc::{'shared_ptr' if owning else 'optimistic_ptr'}<{interface}>"
        case JsonType():
            return "json::v1::object"
        case TemplateParamType(name):
            return name
    return type(t).__name__


def _config_documents(model: Model) -> dict[str, Schema]:
    """One config-profile document per IDL file, starting from the main one and
    following the ``$ref``s to imported files."""
    by_file: dict[str, list[TypeDefinition]] = {}
    for d in model.walk(include_imported=True):
        if not isinstance(d, Namespace):
            by_file.setdefault(_home(d, model), []).append(d)
    documents: dict[str, Schema] = {}
    pending = [model.path]
    done: set[str] = set()
    while pending:
        idl = pending.pop(0)
        if idl in done:
            continue
        done.add(idl)
        builder = _Builder(model, "config", idl)
        for d in by_file.get(idl, []):
            if isinstance(d, Struct) and not d.is_template:
                builder.define_struct(d, ())
            elif isinstance(d, Enum | ErrorDomain):
                builder.define_enum(d)
            elif isinstance(d, Interface):
                for m in d.methods:
                    key = f"{_key(d.qualified_name)}.{m.name}"
                    builder.definitions[f"{key}.inputs"] = builder.inputs(d, m)
                    builder.definitions[f"{key}.outputs"] = builder.outputs(d, m)
        name = _document_name(idl, model)
        documents[name] = {
            "$schema": DRAFT_07,
            "$id": name,
            "title": PurePosixPath(idl.replace("\\", "/")).name,
            "definitions": builder.definitions,
        }
        pending += sorted(builder.external - done)
    return documents


def _mcp_document(model: Model) -> Schema:
    structs: Schema = {}
    interfaces: Schema = {}
    for d in model.walk():
        if isinstance(d, Struct) and not d.is_template:
            structs[_key(d.qualified_name)] = _Builder(model, "mcp", model.path).struct_body(d, ())
        elif isinstance(d, Interface):
            entry: Schema = {}
            if d.attributes.description:
                entry["description"] = d.attributes.description
            own = [s for s in method_schemas(model, d, "mcp") if s.interface == d.qualified_name]
            entry["tools"] = [s.tool() for s in own]
            deprecated = [s.tool_name for s in own if s.deprecated]
            if deprecated:
                entry["deprecated"] = deprecated
            interfaces[_key(d.qualified_name)] = entry
    return {"structs": structs, "interfaces": interfaces}


# ---------------------------------------------------------------- the builder


class _Builder:
    """Turns IDL types into schemas for one profile, seen from one IDL file.

    In the config profile, structs and enums of ``file`` (and every template
    instantiation) are built once into ``definitions`` and referred to; those of
    another file are referred to in that file's document, which is noted in
    ``external``. In the MCP profile everything is inlined, and ``inlining`` holds
    the structs being inlined, so that a recursive one stops.
    """

    def __init__(self, model: Model, profile: Profile, file: str) -> None:
        if profile not in ("config", "mcp"):
            raise ValueError(f"unknown schema profile {profile!r}: use 'config' or 'mcp'")
        self.model = model
        self.config = profile == "config"
        self.file = file
        self.definitions: dict[str, Schema] = {}
        self.external: set[str] = set()
        self.inlining: list[str] = []

    def document(self, body: Schema) -> Schema:
        """``body`` as a document of its own."""
        if not self.config:
            return body
        document: Schema = {"$schema": DRAFT_07, **body}
        if self.definitions:
            document["definitions"] = self.definitions
        return document

    # ------------------------------------------------------------ types

    def of(self, t: TypeRef, location: Location) -> Schema:
        match t:
            case PrimitiveType(kind):
                return _primitive(kind, location)
            case VectorType(element):
                if _is_byte(self.model.resolve(element)):
                    return _bytes(None)
                return {"type": "array", "items": self.of(element, location)}
            case ArrayType(element, size):
                if _is_byte(self.model.resolve(element)):
                    return _bytes(size)
                items = self.of(element, location)
                return {"type": "array", "items": items, "minItems": size, "maxItems": size}
            case MapType(key, value):
                return self._map(key, value, location)
            case SetType(element):
                schema: Schema = {"type": "array", "items": self.of(element, location)}
                if not self._holds_float(element, set()):
                    schema["uniqueItems"] = True  # distinct NaNs would write the same text
                return schema
            case OptionalType(inner) | NullableType(inner):
                return _or_null(self.of(inner, location))
            case VariantType(alternatives):
                return {
                    "anyOf": [
                        {
                            "type": "object",
                            "properties": {str(i): self.of(a, location)},
                            "required": [str(i)],
                            "additionalProperties": False,
                        }
                        for i, a in enumerate(alternatives)
                    ]
                }
            case InterfaceType(interface):
                return _or_null(_object_ref(interface))
            case JsonType():
                return {}
            case NamedType(name, args):
                return self._named(name, args, location)
            case TemplateParamType(name):
                raise CodegenError(location, f"template parameter '{name}' is not bound")
        raise CodegenError(location, f"unsupported type {t!r}")

    def _map(self, key: TypeRef, value: TypeRef, location: Location) -> Schema:
        if _is_string(self.model.resolve(key)):
            return {"type": "object", "additionalProperties": self.of(value, location)}
        pair = {
            "type": "array",
            "items": [self.of(key, location), self.of(value, location)],
            "minItems": 2,
            "maxItems": 2,
            "additionalItems": False,
        }
        return {"type": "array", "items": pair}

    def _named(self, name: str, args: tuple[TypeRef, ...], location: Location) -> Schema:
        resolved = self.model.resolve(NamedType(name, args))
        if not isinstance(resolved, NamedType) or (resolved.name, resolved.args) != (name, args):
            return self.of(resolved, location)
        d = self.model.index.get(name)
        if isinstance(d, Struct):
            return self._struct(d, args, location)
        if isinstance(d, Enum | ErrorDomain):
            return self._enum(d)
        raise CodegenError(location, f"'{name}' is not a type a value can have")

    def _struct(self, d: Struct, args: tuple[TypeRef, ...], location: Location) -> Schema:
        if d.is_template and len(args) != len(d.template_params):
            raise CodegenError(location, f"template '{d.qualified_name}' needs its arguments")
        key = _struct_key(d, args)
        if not self.config:
            if key in self.inlining:
                return {
                    "type": "object",
                    "description": f"A {d.name} again: the same fields as the enclosing {d.name}",
                }
            return self.struct_body(d, args)
        home = _home(d, self.model)
        if args or home == self.file:
            self.define_struct(d, args)
            return {"$ref": _pointer(key)}
        return self._elsewhere(home, key)

    def _enum(self, d: Enum | ErrorDomain) -> Schema:
        if not self.config:
            return self.enum_body(d)
        key = _key(d.qualified_name)
        home = _home(d, self.model)
        if home == self.file:
            self.define_enum(d)
            return {"$ref": _pointer(key)}
        return self._elsewhere(home, key)

    def _elsewhere(self, home: str, key: str) -> Schema:
        self.external.add(home)
        return {"$ref": _document_name(home, self.model) + _pointer(key)}

    def define_struct(self, d: Struct, args: tuple[TypeRef, ...]) -> None:
        key = _struct_key(d, args)
        if key not in self.definitions:
            self.definitions[key] = {}  # taken before the fields, which may refer back
            self.definitions[key] = self.struct_body(d, args)

    def define_enum(self, d: Enum | ErrorDomain) -> None:
        key = _key(d.qualified_name)
        if key not in self.definitions:
            self.definitions[key] = self.enum_body(d)

    # ------------------------------------------------------------ bodies

    def struct_body(self, d: Struct, args: tuple[TypeRef, ...]) -> Schema:
        schema: Schema = {}
        if self.config:
            schema["title"] = d.name + (f"<{', '.join(_spell(a) for a in args)}>" if args else "")
        if d.attributes.description:
            schema["description"] = d.attributes.description
        properties: Schema = {}
        required: list[str] = []
        self.inlining.append(_struct_key(d, args))
        for f in _all_fields(self.model, d, args):
            default = self._default(f) if self.config and f.has_default else _ABSENT
            description = f.attributes.description
            properties[f.name] = _annotated(self.of(f.type, f.location), description, default)
            if _field_required(self.model, f):
                required.append(f.name)
        self.inlining.pop()
        return _object(schema, properties, required)

    def enum_body(self, d: Enum | ErrorDomain) -> Schema:
        schema: Schema = {"title": d.name} if self.config else {}
        if d.attributes.description:
            schema["description"] = d.attributes.description
        names: list[Any] = [v.name for v in d.values]
        if self.config:  # a configuration may give an enum's number too, as the decoder reads
            schema["type"] = ["string", "integer"]
            schema["enum"] = names + list(dict.fromkeys(_number(v) for v in d.values))
        else:
            schema["type"] = "string"
            schema["enum"] = names
        return schema

    def inputs(self, i: Interface, m: Method) -> Schema:
        schema: Schema = {}
        if self.config:
            schema["title"] = f"{i.name}.{m.name} inputs"
            if m.description:
                schema["description"] = m.description
        required = [
            p.name
            for p in m.inputs
            if self.config or isinstance(_empty_value(self.model, p.type), _Absent)
        ]
        return _object(schema, self._parameters(m.inputs), required)

    def outputs(self, i: Interface, m: Method) -> Schema:
        schema: Schema = {"title": f"{i.name}.{m.name} outputs"} if self.config else {}
        return _object(schema, self._parameters(m.outputs), [p.name for p in m.outputs])

    def _parameters(self, params: tuple[Parameter, ...]) -> Schema:
        return {
            p.name: _annotated(self.of(p.type, p.location), p.attributes.description, _ABSENT)
            for p in params
        }

    def _holds_float(self, t: TypeRef, seen: set[str]) -> bool:
        """Whether a value of ``t`` can hold a float anywhere (NaN is not equal to itself)."""
        match self.model.resolve(t):
            case PrimitiveType(kind):
                return kind.is_float
            case VectorType(e) | ArrayType(e) | SetType(e) | OptionalType(e) | NullableType(e):
                return self._holds_float(e, seen)
            case MapType(key, value):
                return self._holds_float(key, seen) or self._holds_float(value, seen)
            case VariantType(alternatives):
                return any(self._holds_float(a, seen) for a in alternatives)
            case NamedType(name, args):
                d = self.model.index.get(name)
                if not isinstance(d, Struct) or _struct_key(d, args) in seen:
                    return False
                seen.add(_struct_key(d, args))
                fields = _all_fields(self.model, d, args)
                return any(self._holds_float(f.type, seen) for f in fields)
            case JsonType():
                return True
        return False

    # ------------------------------------------------------------ defaults

    def _default(self, f: Field) -> object:
        """The field's IDL default as the JSON encoder writes it, or ``_ABSENT``.

        The checker has evaluated it already: constants and expressions are numbers, a
        ``{}`` of a scalar is its zero, a map, struct or ``json::v1::object`` default can
        only be ``{}``. A struct's or a variant's goes unstated.
        """
        try:
            return self._value(f.type, f.default)
        except TypeError:
            return _ABSENT

    def _value(self, t: TypeRef, v: Value) -> object:
        rt = self.model.resolve(t)
        match rt:
            case OptionalType(inner) | NullableType(inner):
                return _ABSENT if v is None else self._value(inner, v)
            case PrimitiveType(kind):
                return _primitive_value(kind, v)
            case VectorType(element) | ArrayType(element) | SetType(element):
                return self._sequence(rt, element, v)
            case MapType(key) if v == ():
                return {} if _is_string(self.model.resolve(key)) else []
            case NamedType(name) if isinstance(v, EnumValueRef):
                d = self.model.index.get(name)
                if isinstance(d, Enum):
                    # An alias is written as the first name its number has.
                    number = next(x.value for x in d.values if x.name == v.value)
                    return next(x.name for x in d.values if x.value == number)
        raise TypeError(v)

    def _sequence(self, rt: TypeRef, element: TypeRef, v: Value) -> object:
        if not isinstance(v, tuple):
            raise TypeError(v)
        e = self.model.resolve(element)
        items: list[Value] = list(v)
        if isinstance(rt, ArrayType) and not items:
            items = [_zero(e)] * rt.size  # ``= {}``: every element value-initialised
        if isinstance(e, PrimitiveType) and e.kind in _BYTE_KINDS and not isinstance(rt, SetType):
            # int8_t (char) values are stored as their two's complement byte.
            return base64.b64encode(bytes(_integer(x) % 256 for x in items)).decode("ascii")
        values: list[Any] = [self._value(element, x) for x in items]
        if any(isinstance(x, _Absent) for x in values):
            return _ABSENT
        if isinstance(rt, SetType):
            values = list({json.dumps(x, sort_keys=True): x for x in values}.values())
            with contextlib.suppress(TypeError):
                values.sort()  # as the encoder writes a set whose values order
        return values


# ---------------------------------------------------------------- helpers


def _struct_key(d: Struct, args: tuple[TypeRef, ...]) -> str:
    key = _key(d.qualified_name)
    return f"{key}<{', '.join(_spell(a) for a in args)}>" if args else key


def _all_fields(model: Model, s: Struct, args: tuple[TypeRef, ...]) -> list[Field]:
    """A struct's fields, its bases' first, a template's with its arguments put in: the
    fields of the class the Python generator writes, which the codec reads."""
    base = model.index.get(s.base) if s.base else None
    fields = [*(_all_fields(model, base, ()) if isinstance(base, Struct) else []), *s.fields]
    if s.template_params and args:
        bound = dict(zip(s.template_params, args, strict=False))
        fields = [replace(f, type=_substitute(f.type, bound)) for f in fields]
    return fields


def _field_required(model: Model, f: Field) -> bool:
    """Whether the decoder needs the field: it has no default, and is no ``rpc::optional``
    (which the Python class defaults to None)."""
    return not f.has_default and not isinstance(model.resolve(f.type), OptionalType)


def _empty_value(model: Model, t: TypeRef) -> object:
    """What an ``[in]`` parameter left out in the MCP profile stands for, or ``_ABSENT``
    if it must be given: ``None`` for a value that may be null, ``{}`` for a struct
    whose every field may be left out."""
    rt = model.resolve(t)
    if isinstance(rt, OptionalType | NullableType | InterfaceType):
        return None
    if isinstance(rt, NamedType):
        d = model.index.get(rt.name)
        if isinstance(d, Struct) and not any(
            _field_required(model, f) for f in _all_fields(model, d, rt.args)
        ):
            return {}
    return _ABSENT


def _object(schema: Schema, properties: Schema, required: list[str]) -> Schema:
    schema["type"] = "object"
    schema["properties"] = properties
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def _annotated(schema: Schema, description: str | None, default: object) -> Schema:
    """``schema`` with a description and a default. Beside a ``$ref`` draft-07 ignores
    every other keyword, so the reference moves into an ``allOf``."""
    extra: Schema = {}
    if description:
        extra["description"] = description
    if not isinstance(default, _Absent):
        extra["default"] = default
    if not extra:
        return schema
    if "$ref" in schema:
        return {"allOf": [schema], **extra}
    return {**schema, **extra}


def _number(value: EnumValue | ErrorValue) -> int:
    """An enum value's number; an error value's code."""
    return value.value if isinstance(value, EnumValue) else value.code


def _or_null(schema: Schema) -> Schema:
    """``schema`` that also accepts ``null``."""
    if not schema:
        return schema  # any JSON value already
    kind = schema.get("type")
    if kind is not None and "$ref" not in schema and "anyOf" not in schema:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        if "null" in kinds:
            return schema
        widened = {**schema, "type": [*kinds, "null"]}
        if "enum" in schema:
            widened["enum"] = [*schema["enum"], None]
        return widened
    if set(schema) == {"anyOf"}:
        return {"anyOf": [*schema["anyOf"], {"type": "null"}]}
    return {"anyOf": [schema, {"type": "null"}]}


def _primitive(kind: Primitive, location: Location) -> Schema:
    if kind.is_integer:
        lo, hi = kind.int_range
        return {"type": "integer", "minimum": lo, "maximum": hi}
    if kind.is_float:
        # The codec writes NaN and the infinities as strings, and reads them back.
        return {"type": ["number", "string"], "pattern": _NON_FINITE}
    if kind is Primitive.BOOL:
        return {"type": "boolean"}
    if kind is Primitive.STRING:
        return {"type": "string"}
    raise CodegenError(location, f"'{kind.value}' is not a value type")


def _bytes(size: int | None) -> Schema:
    """Padded standard base64, which is all the decoder reads; of exactly ``size`` bytes
    for a ``std::array``."""
    if size is None:
        pattern = _BASE64
    else:
        tail = ("", f"{_B64}{{2}}==", f"{_B64}{{3}}=")[size % 3]
        pattern = f"^{_B64}{{{4 * (size // 3)}}}{tail}$"
    return {"type": "string", "contentEncoding": "base64", "pattern": pattern}


def _object_ref(interface: str) -> Schema:
    """An interface pointer as the codec writes it: where the object lives and which
    interface the reference is for (``kind`` may be left out: it reads as 0)."""
    ids = {"type": "integer", "minimum": 0, "maximum": _UINT64_MAX}
    return {
        "type": "object",
        "description": f"A reference to an object implementing {interface}",
        "properties": {
            "zone": ids,
            "object": ids,
            "interface": ids,
            "kind": {"type": "integer", "minimum": 0, "maximum": _UINT32_MAX},
        },
        "required": ["zone", "object", "interface"],
        "additionalProperties": False,
    }


def _is_byte(t: TypeRef) -> bool:
    return isinstance(t, PrimitiveType) and t.kind in _BYTE_KINDS


def _primitive_value(kind: Primitive, v: Value) -> object:
    if kind is Primitive.BOOL and isinstance(v, bool):
        return v
    if kind.is_float and isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if kind is Primitive.STRING and isinstance(v, str):
        return v
    if kind.is_integer:
        return _integer(v)
    raise TypeError(v)


def _integer(v: Value) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise TypeError(v)


def _zero(t: TypeRef) -> Value:
    """A scalar's value-initialised zero."""
    if isinstance(t, PrimitiveType):
        if t.kind is Primitive.BOOL:
            return False
        if t.kind.is_float:
            return 0.0
        return "" if t.kind is Primitive.STRING else 0
    raise TypeError(t)


def _is_string(t: TypeRef) -> bool:
    return isinstance(t, PrimitiveType) and t.kind is Primitive.STRING
