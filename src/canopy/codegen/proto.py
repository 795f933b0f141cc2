"""The .proto generator: a checked ``Model`` becomes proto3 files, one per IDL file (the
file itself, every ``#import``ed file its messages refer to, and
``rpc/object_ref.proto`` when an interface pointer travels).

The IDL is read into the type tree of ``canopy.wire.codecs`` and handed to the
same ``ProtoFile`` builder the protobuf codec uses at run time, so the messages
written here are field for field the ones Canopy encodes; the module docstring of
``canopy.wire.codecs._protobuf`` states the mapping. Each file gets every struct
(template structs as the instantiations it uses, ``box_int32``), every enum, and
``<iface>_<method>Request``/``Response`` for every method. The package is the
namespace all of a file's definitions share (``calculator.v1``); a definition
deeper than that is named with the rest of its path (``v2_i_calculator``).
"""

from __future__ import annotations

import re
from pathlib import Path

from google.protobuf import descriptor_pb2

from canopy.codegen.python import CodegenError, _substitute
from canopy.idl._model import (
    NOWHERE,
    ArrayType,
    Enum,
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
    TypeDefinition,
    TypeRef,
    VariantType,
    VectorType,
)
from canopy.wire.codecs import _schema as t
from canopy.wire.codecs._protobuf import (
    OBJECT_REF_FILE,
    ProtoFile,
    enum_is_proto,
    object_ref_file,
)

__all__ = ["generate_proto", "render_proto", "write_proto"]

_RPC_TYPES_FILE = "rpc/rpc_types.idl"

_WIDTHS = {
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

_SCALAR_NAMES = {
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double",
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
}


def generate_proto(model: Model) -> dict[str, str]:
    """The .proto files: relative posix path (``calculator.proto``) -> text."""
    return {
        path: render_proto(proto, source)
        for path, (proto, source) in _Generator(model).files().items()
    }


def write_proto(model: Model, out_dir: Path) -> list[Path]:
    """Write the .proto files under ``out_dir``; the paths written."""
    written: list[Path] = []
    for relative, text in generate_proto(model).items():
        path = out_dir.joinpath(*relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# ---------------------------------------------------------------- files and names


def _definition_file(d: TypeDefinition | Namespace, model: Model) -> str:
    return model.path if not d.imported else d.location.file


class _Generator:
    """Reads the model into type-tree nodes and builds one ``ProtoFile`` per IDL file."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.main = model.path
        self.origin: dict[int, tuple[TypeDefinition, tuple[TypeRef, ...]]] = {}
        self.structs: dict[tuple[str, tuple[TypeRef, ...]], t.Struct] = {}
        self.enums: dict[str, t.Enum] = {}
        self.packages: dict[str, str] = {}
        by_file: dict[str, list[TypeDefinition]] = {}
        for d in model.walk(include_imported=True):
            if not isinstance(d, Namespace):
                by_file.setdefault(_definition_file(d, model), []).append(d)
        self.by_file = by_file

    # ------------------------------------------------------------ files

    def files(self) -> dict[str, tuple[descriptor_pb2.FileDescriptorProto, str]]:
        out: dict[str, tuple[descriptor_pb2.FileDescriptorProto, str]] = {}
        pending = [self.main]
        done: set[str] = set()
        while pending:
            idl = pending.pop(0)
            if idl in done:
                continue
            done.add(idl)
            proto = self._file(idl)
            out[proto.name] = (proto, Path(idl.replace("\\", "/")).name)
            for dependency in proto.dependency:
                if dependency == OBJECT_REF_FILE:
                    if dependency not in out:
                        out[dependency] = (object_ref_file(), "")
                else:
                    pending.append(self._idl_of(dependency))
        return out

    def _idl_of(self, proto_path: str) -> str:
        for idl in self.by_file:
            if self.proto_path(idl) == proto_path:
                return idl
        raise CodegenError(NOWHERE, f"no IDL file for {proto_path}")

    def _file(self, idl: str) -> descriptor_pb2.FileDescriptorProto:
        builder = ProtoFile(self.proto_path(idl), self.package(idl), _Naming(self, idl))
        for d in self.by_file.get(idl, []):
            if isinstance(d, Struct) and not d.is_template:
                builder.message(self.struct(d, (), d.location))
            elif isinstance(d, Enum) and enum_is_proto(self.enum(d)):
                builder.enum(self.enum(d))  # one beyond int32 is its integer instead
            elif isinstance(d, Interface):
                local = self.local(d, idl)
                for m in d.methods:
                    for suffix, params in (("Request", m.inputs), ("Response", m.outputs)):
                        node = self.record(d, m, params, suffix)
                        builder.message(node, f"{local}_{m.name}{suffix}")
        return builder.proto

    def proto_path(self, idl: str) -> str:
        """Where a file's .proto goes: beside the main one, as its IDL file is."""
        posix = idl.replace("\\", "/")
        if posix == _RPC_TYPES_FILE or posix.endswith("/" + _RPC_TYPES_FILE):
            return _RPC_TYPES_FILE.removesuffix(".idl") + ".proto"
        path = Path(posix)
        if idl == self.main:
            return path.with_suffix(".proto").name
        main_dir = Path(self.main.replace("\\", "/")).parent
        try:
            relative = path.resolve().relative_to(main_dir.resolve())
        except ValueError:
            relative = Path(path.name)
        return relative.with_suffix(".proto").as_posix()

    def package(self, idl: str) -> str:
        found = self.packages.get(idl)
        if found is not None:
            return found
        paths = [d.qualified_name.split("::")[:-1] for d in self.by_file.get(idl, [])]
        common: list[str] = []
        if paths:
            for parts in zip(*paths, strict=False):
                if len(set(parts)) != 1:
                    break
                common.append(parts[0])
        package = ".".join(common) or _identifier(Path(idl.replace("\\", "/")).stem)
        self.packages[idl] = package
        return package

    def local(self, d: TypeDefinition, idl: str) -> str:
        """``d``'s name within its file's package (``v2_i_calculator``)."""
        parts = d.qualified_name.split("::")
        package = self.package(idl).split(".")
        if parts[: len(package)] == package:
            parts = parts[len(package) :]
        return "_".join(parts)

    # ------------------------------------------------------------ types

    def node(self, ref: TypeRef, location: Location) -> t.Node:
        model = self.model
        match ref:
            case PrimitiveType(kind):
                return _primitive(kind, location)
            case VectorType(element):
                if _is_byte(model.resolve(element)):
                    return t.Bytes()
                return t.List(self.node(element, location))
            case ArrayType(element, size):
                if _is_byte(model.resolve(element)):
                    return t.Bytes(size, size)
                return t.List(self.node(element, location), size, size)
            case MapType(key, value):
                return t.Map(self.node(key, location), self.node(value, location))
            case SetType(element):
                return t.Set(self.node(element, location))
            case OptionalType(inner) | NullableType(inner):
                return t.Opt(self.node(inner, location))
            case VariantType(alternatives):
                return t.Variant(
                    tuple(
                        t.Alternative(i, self.node(a, location)) for i, a in enumerate(alternatives)
                    )
                )
            case InterfaceType(interface):
                # A pointer may be null, in a container too: Python holds ``i | None``.
                return t.Opt(t.Ref(interface))
            case JsonType():
                return t.Json()
            case NamedType(name, args):
                return self._named(name, args, location)
            case TemplateParamType(name):
                raise CodegenError(location, f"template parameter '{name}' is not bound")
        raise CodegenError(location, f"unsupported type {ref!r}")

    def _named(self, name: str, args: tuple[TypeRef, ...], location: Location) -> t.Node:
        resolved = self.model.resolve(NamedType(name, args))
        if isinstance(resolved, NamedType) and (resolved.name, resolved.args) != (name, args):
            return self.node(resolved, location)
        if not isinstance(resolved, NamedType):
            return self.node(resolved, location)
        d = self.model.index.get(name)
        if isinstance(d, Struct):
            return self.struct(d, args, location)
        if isinstance(d, Enum | ErrorDomain):
            return self.enum(d)
        raise CodegenError(location, f"'{name}' is not a type a value can have")

    def struct(self, d: Struct, args: tuple[TypeRef, ...], location: Location) -> t.Struct:
        key = (d.qualified_name, args)
        found = self.structs.get(key)
        if found is not None:
            return found
        if d.is_template and len(args) != len(d.template_params):
            raise CodegenError(location, f"template '{d.qualified_name}' needs its arguments")
        node = self.structs[key] = t.Struct(d.qualified_name)
        self.origin[id(node)] = (d, args)
        node.fields = tuple(
            t.Field(f.name, f.name, self.node(f.type, f.location)) for f in self._fields(d, args)
        )
        return node

    def _fields(self, d: Struct, args: tuple[TypeRef, ...]) -> list[Field]:
        base = self.model.index.get(d.base) if d.base else None
        fields = [*(self._fields(base, ()) if isinstance(base, Struct) else []), *d.fields]
        if d.template_params and args:
            bound = dict(zip(d.template_params, args, strict=False))
            fields = [
                Field(f.name, _substitute(f.type, bound), f.default, f.has_default) for f in fields
            ]
        return fields

    def enum(self, d: Enum | ErrorDomain) -> t.Enum:
        found = self.enums.get(d.qualified_name)
        if found is not None:
            return found
        if isinstance(d, Enum):
            values = tuple((v.name, v.value) for v in d.values)
        else:
            values = tuple((v.name, v.code) for v in d.values)
        node = self.enums[d.qualified_name] = t.Enum(d.qualified_name, values)
        self.origin[id(node)] = (d, ())
        return node

    def record(
        self, i: Interface, m: Method, params: tuple[Parameter, ...], suffix: str
    ) -> t.Struct:
        """A method's request or response: its parameters, numbered in order."""
        fields = tuple(t.Field(p.name, p.name, self.node(p.type, p.location)) for p in params)
        return t.Struct(f"{i.qualified_name}::{m.name}{suffix}", fields)


class _Naming:
    """Names for the builder: local to the file being built, or its own file's."""

    def __init__(self, generator: _Generator, idl: str) -> None:
        self.g = generator
        self.idl = idl

    def struct(self, node: t.Struct) -> str | tuple[str, str]:
        d, args = self.g.origin[id(node)]
        home = _definition_file(d, self.g.model)
        if args or home == self.idl:
            # A template instantiation lives in every file that uses it.
            local = self.g.local(d, home) if home == self.idl else d.name
            return local + "".join(f"_{_token(self.g, a)}" for a in args)
        return self._elsewhere(d, home)

    def enum(self, node: t.Enum) -> str | tuple[str, str]:
        d, _ = self.g.origin[id(node)]
        home = _definition_file(d, self.g.model)
        if home == self.idl:
            return self.g.local(d, home)
        return self._elsewhere(d, home)

    def _elsewhere(self, d: TypeDefinition, home: str) -> tuple[str, str]:
        return f".{self.g.package(home)}.{self.g.local(d, home)}", self.g.proto_path(home)


def _token(g: _Generator, ref: TypeRef) -> str:
    """A template argument as part of a message name: ``box<int>`` -> ``box_int32``."""
    rt = g.model.resolve(ref)
    match rt:
        case PrimitiveType(kind):
            node = _primitive(kind, NOWHERE)
            return t.describe(node)
        case NamedType(name, args):
            base = name.split("::")[-1]
            return base + "".join(f"_{_token(g, a)}" for a in args)
        case VectorType(element) | SetType(element) | ArrayType(element):
            return f"List_{_token(g, element)}"
        case MapType(key, value):
            return f"Map_{_token(g, key)}_{_token(g, value)}"
        case OptionalType(inner) | NullableType(inner):
            return f"Opt_{_token(g, inner)}"
    return _identifier(type(rt).__name__)


def _primitive(kind: Primitive, location: Location) -> t.Node:
    if kind in _WIDTHS:
        width = _WIDTHS[kind]
        lo, hi = kind.int_range
        return t.Int(width, lo, hi)
    if kind is Primitive.FLOAT:
        return t.Float(32)
    if kind is Primitive.DOUBLE:
        return t.Float(64)
    if kind is Primitive.BOOL:
        return t.Bool()
    if kind is Primitive.STRING:
        return t.Str()
    raise CodegenError(location, f"'{kind.value}' is not a value type")


def _is_byte(ref: TypeRef) -> bool:
    return isinstance(ref, PrimitiveType) and ref.kind in (Primitive.UINT8, Primitive.INT8)


def _identifier(name: str) -> str:
    cleaned = re.sub(r"\W", "_", name).strip("_") or "idl"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


# ---------------------------------------------------------------- rendering


def render_proto(proto: descriptor_pb2.FileDescriptorProto, source: str = "") -> str:
    """``proto`` as .proto text (proto3), messages and enums in the order built."""
    origin = f" from {source}" if source else ""
    lines = [
        f"// Generated by canopy{origin} \u2014 do not edit.",
        'syntax = "proto3";',
        "",
        f"package {proto.package};",
    ]
    if proto.dependency:
        lines += ["", *(f'import "{d}";' for d in sorted(proto.dependency))]
    scope = f".{proto.package}."
    for e in proto.enum_type:
        lines += ["", *_render_enum(e, "")]
    for m in proto.message_type:
        lines += ["", *_render_message(m, scope)]
    return "\n".join(lines) + "\n"


def _render_enum(e: descriptor_pb2.EnumDescriptorProto, indent: str) -> list[str]:
    lines = [f"{indent}enum {e.name} {{"]
    if e.options.allow_alias:
        lines.append(f"{indent}  option allow_alias = true;")
    lines += [f"{indent}  {v.name} = {v.number};" for v in e.value]
    return [*lines, f"{indent}}}"]


def _render_message(m: descriptor_pb2.DescriptorProto, scope: str) -> list[str]:
    entries = {f"{scope}{m.name}.{n.name}": n for n in m.nested_type if n.options.map_entry}
    lines = [f"message {m.name} {{"]
    oneofs: dict[int, list[str]] = {}
    for f in m.field:
        real_oneof = f.HasField("oneof_index") and not f.proto3_optional
        entry = entries.get(f.type_name)
        if entry is not None and f.label == f.LABEL_REPEATED:
            key, value = entry.field
            text = f"map<{_type(key, scope)}, {_type(value, scope)}> {f.name} = {f.number};"
        else:
            label = ""
            if f.label == f.LABEL_REPEATED:
                label = "repeated "
            elif f.proto3_optional:
                label = "optional "
            text = f"{label}{_type(f, scope)} {f.name} = {f.number};"
        if real_oneof:
            oneofs.setdefault(f.oneof_index, []).append(text)
        else:
            lines.append(f"  {text}")
    for index, fields in oneofs.items():
        lines += [f"  oneof {m.oneof_decl[index].name} {{", *(f"    {x}" for x in fields), "  }"]
    return [*lines, "}"]


def _type(f: descriptor_pb2.FieldDescriptorProto, scope: str) -> str:
    if f.type in _SCALAR_NAMES:
        return _SCALAR_NAMES[f.type]
    name = f.type_name
    return name[len(scope) :] if name.startswith(scope) else name
