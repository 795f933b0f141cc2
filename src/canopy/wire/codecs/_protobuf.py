"""The protobuf encoding: messages described by the type tree, encoded by the protobuf
runtime, wire-compatible with the .proto files ``canopy generate --proto`` writes.

``ProtoFile`` turns type-tree nodes into one ``FileDescriptorProto``. The .proto
generator feeds it nodes read from the IDL and renders the result as text; this
codec feeds it nodes read from the generated Python types and loads the result
into a private descriptor pool. One builder decides every message shape, so the
two agree field for field. The mapping:

- A struct is a message whose fields are numbered 1.. in declaration order (base
  struct fields first); a method's ``[in]``/``[out]`` record likewise, in
  parameter order (the .proto names them ``<iface>_<method>Request``/``Response``;
  the return code travels outside the payload).
- Integers up to 32 bits are ``int32``/``uint32``, 64-bit ones ``int64``/``uint64``,
  and 128-bit ones ``bytes`` of 16 bytes, big-endian, two's complement for
  ``__int128`` (empty bytes read as 0). ``float`` is ``float``, ``double``
  ``double``; ``json::v1::object`` is a ``string`` holding JSON text.
- An enum is a proto3 enum whose values are prefixed with its name
  (``finish_reason_complete``), zero-valued value first; if the IDL enum has no 0,
  ``<enum>_UNSPECIFIED = 0`` is added and reading it is refused. An enum with a
  value outside int32 is its underlying integer instead.
- ``rpc::optional``/``rpc::nullable`` of a scalar is a proto3 ``optional`` field;
  of a message, the message field (absent is None).
- ``std::vector``/``std::set`` are ``repeated``; a ``std::map`` whose key protobuf
  allows (integers up to 64 bits, bool, string) is a ``map<>``, any other a
  ``repeated Entry_<key>_<value>`` of ``key = 1; value = 2`` messages.
- Where protobuf cannot nest a type (a vector in a vector, an optional in a map, a
  container in a variant), the inner type is wrapped in a message whose single
  field ``value = 1`` holds it: ``List_int32``, ``Opt_string``, ``Map_string_int32``.
- A variant is a ``Variant_<alternatives>`` message with ``oneof value`` of fields
  ``alt0 = 1``, ``alt1 = 2``..., one per alternative in order.
- An interface reference is ``rpc.ObjectRef`` (``rpc/object_ref.proto``).
- A value whose type is not a struct (``encode(7, type=uint8)``) travels as a
  message whose field ``value = 1`` holds it (``Value_uint8``).
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from canopy.errors import InvalidData
from canopy.wire._messages import Encoding, ObjectRef
from canopy.wire.codecs._base import Decoder, Encoder, Invalid, TypeCache, type_name
from canopy.wire.codecs._json import (
    as_float,
    check_length,
    enum_class,
    int_failure,
    json_value_out,
    kind,
)
from canopy.wire.codecs._schema import (
    Bool,
    Bytes,
    Enum,
    Float,
    Int,
    Json,
    List,
    Map,
    Node,
    Opt,
    Ref,
    Set,
    Str,
    Struct,
    Variant,
    schema,
)

FieldProto = descriptor_pb2.FieldDescriptorProto
Convert = Callable[[Any], Any]
Read = Callable[[Any, str], Any]

OBJECT_REF_FILE = "rpc/object_ref.proto"
OBJECT_REF = ".rpc.ObjectRef"

_SCALAR_TYPES: dict[str, FieldProto.Type.ValueType] = {
    "int8": FieldProto.TYPE_INT32,
    "int16": FieldProto.TYPE_INT32,
    "int32": FieldProto.TYPE_INT32,
    "uint8": FieldProto.TYPE_UINT32,
    "uint16": FieldProto.TYPE_UINT32,
    "uint32": FieldProto.TYPE_UINT32,
    "int64": FieldProto.TYPE_INT64,
    "uint64": FieldProto.TYPE_UINT64,
    "int128": FieldProto.TYPE_BYTES,
    "uint128": FieldProto.TYPE_BYTES,
}
_INT32 = (-(1 << 31), (1 << 31) - 1)
_UINT64_MAX = (1 << 64) - 1
_UINT32_MAX = (1 << 32) - 1


def object_ref_file() -> descriptor_pb2.FileDescriptorProto:
    """``rpc/object_ref.proto``: how an interface reference travels (package ``rpc``, as
    ``rpc::shared_ptr`` is; not ``canopy``, which protoc's Python output would import
    over the canopy package)."""
    proto = descriptor_pb2.FileDescriptorProto(name=OBJECT_REF_FILE, package="rpc", syntax="proto3")
    message = proto.message_type.add(name="ObjectRef")
    for number, (name, kind_) in enumerate(
        [
            ("zone", FieldProto.TYPE_UINT64),
            ("object", FieldProto.TYPE_UINT64),
            ("interface", FieldProto.TYPE_UINT64),
            ("kind", FieldProto.TYPE_UINT32),
        ],
        1,
    ):
        message.field.add(name=name, number=number, type=kind_, label=FieldProto.LABEL_OPTIONAL)
    return proto


def is_message(node: Node) -> bool:
    """Whether a value of ``node`` is a protobuf message of its own (presence included)."""
    return isinstance(node, Struct | Ref | Variant)


def is_wrapped(node: Node) -> bool:
    """Whether ``node`` needs a wrapper message where protobuf takes one singular value."""
    return isinstance(node, List | Set | Map | Opt)


def is_map_key(node: Node) -> bool:
    return isinstance(node, Bool | Str) or (isinstance(node, Int) and not node.wide)


def enum_is_proto(node: Enum) -> bool:
    """Whether the enum fits a proto3 enum (every value an int32)."""
    return all(_INT32[0] <= number <= _INT32[1] for _, number in node.values)


class Naming(Protocol):
    """Where a struct's or enum's message lives: a local name to define it under in
    this file, or ``(full name, file)`` of one another .proto file defines."""

    def struct(self, node: Struct) -> str | tuple[str, str]: ...

    def enum(self, node: Enum) -> str | tuple[str, str]: ...


class ProtoFile:
    """One ``FileDescriptorProto`` grown from type-tree nodes.

    Messages and enums are added on first use, wrapper messages once per shape;
    names are claimed in order, so the same calls give the same file.
    """

    def __init__(self, name: str, package: str, naming: Naming) -> None:
        self.proto = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
        self.package = package
        self.naming = naming
        self._names: set[str] = set()
        self._values: set[str] = set()  # enum values share the package scope
        # Keyed by node identity; the node is kept so that its id is never reused.
        self._done: dict[int, tuple[Node, str]] = {}
        self._wrappers: dict[str, str] = {}

    def claim(self, name: str) -> str:
        while name in self._names:
            name += "_"
        self._names.add(name)
        return name

    def full(self, local: str) -> str:
        return f".{self.package}.{local}" if self.package else f".{local}"

    def depend(self, file: str) -> None:
        if file not in self.proto.dependency:
            self.proto.dependency.append(file)

    # ------------------------------------------------------------ definitions

    def message(self, node: Struct, name: str | None = None) -> str:
        """The full name of ``node``'s message, defining it (as ``name``) if new."""
        done = self._done.get(id(node))
        if done is not None:
            return done[1]
        where = self.naming.struct(node) if name is None else name
        if isinstance(where, tuple):
            self.depend(where[1])
            self._done[id(node)] = (node, where[0])
            return where[0]
        local = self.claim(where)
        full = self.full(local)
        self._done[id(node)] = (node, full)
        message = self.proto.message_type.add(name=local)
        for number, f in enumerate(node.fields, 1):
            self.add_field(message, full, f.wire, number, f.node)
        return full

    def enum(self, node: Enum) -> str:
        done = self._done.get(id(node))
        if done is not None:
            return done[1]
        where = self.naming.enum(node)
        if isinstance(where, tuple):
            self.depend(where[1])
            self._done[id(node)] = (node, where[0])
            return where[0]
        local = self.claim(where)
        full = self.full(local)
        self._done[id(node)] = (node, full)
        proto = self.proto.enum_type.add(name=local)
        values = sorted(node.values, key=lambda v: v[1] != 0)  # stable: zero first
        if not values or values[0][1] != 0:
            proto.value.add(name=self._value_name(f"{local}_UNSPECIFIED"), number=0)
        numbers = [number for _, number in values]
        if len(set(numbers)) < len(numbers):
            proto.options.allow_alias = True
        for wire, number in values:
            proto.value.add(name=self._value_name(f"{local}_{wire}"), number=number)
        return full

    def _value_name(self, name: str) -> str:
        while name in self._values or name in self._names:
            name += "_"
        self._values.add(name)
        return name

    def top(self, node: Node) -> str:
        """The full name of the message a value of ``node`` travels as."""
        if isinstance(node, Struct):
            return self.message(node)
        if isinstance(node, Ref):
            self.depend(OBJECT_REF_FILE)
            return OBJECT_REF
        if isinstance(node, Variant) or is_wrapped(node):
            return self.singular_message(node)
        return self._wrapper(f"Value_{self.token(node)}", node)

    # ------------------------------------------------------------ fields

    def add_field(
        self,
        message: descriptor_pb2.DescriptorProto,
        scope: str,
        name: str,
        number: int,
        node: Node,
    ) -> None:
        """Field ``name`` = ``number`` of ``message`` (full name ``scope``) holding ``node``."""
        field = message.field.add(name=name, number=number, label=FieldProto.LABEL_OPTIONAL)
        if isinstance(node, Opt):
            self.set_singular(field, node.inner)
            if not (is_message(node.inner) or is_wrapped(node.inner)):
                # A scalar needs proto3 ``optional`` for presence; a message has it.
                field.proto3_optional = True
                field.oneof_index = len(message.oneof_decl)
                message.oneof_decl.add(name=f"_{name}")
        elif isinstance(node, List | Set):
            field.label = FieldProto.LABEL_REPEATED
            self.set_singular(field, node.item)
        elif isinstance(node, Map):
            field.label = FieldProto.LABEL_REPEATED
            field.type = FieldProto.TYPE_MESSAGE
            if is_map_key(node.key):
                entry = message.nested_type.add(name=map_entry_name(name))
                entry.options.map_entry = True
                key = entry.field.add(name="key", number=1, label=FieldProto.LABEL_OPTIONAL)
                self.set_singular(key, node.key)
                value = entry.field.add(name="value", number=2, label=FieldProto.LABEL_OPTIONAL)
                self.set_singular(value, node.value)
                field.type_name = f"{scope}.{entry.name}"
            else:
                field.type_name = self._entries(node)
        else:
            self.set_singular(field, node)

    def set_singular(self, field: FieldProto, node: Node) -> None:
        """Give ``field`` the type of one value of ``node`` (wrapped if it must be)."""
        if isinstance(node, Int):
            field.type = _SCALAR_TYPES[node.width]
        elif isinstance(node, Float):
            field.type = FieldProto.TYPE_FLOAT if node.bits == 32 else FieldProto.TYPE_DOUBLE
        elif isinstance(node, Bool):
            field.type = FieldProto.TYPE_BOOL
        elif isinstance(node, Str | Json):
            field.type = FieldProto.TYPE_STRING
        elif isinstance(node, Bytes):
            field.type = FieldProto.TYPE_BYTES
        elif isinstance(node, Enum):
            if enum_is_proto(node):
                field.type = FieldProto.TYPE_ENUM
                field.type_name = self.enum(node)
            else:
                field.type = _SCALAR_TYPES[_enum_integer(node)]
        else:
            field.type = FieldProto.TYPE_MESSAGE
            field.type_name = self.singular_message(node)

    def singular_message(self, node: Node) -> str:
        if isinstance(node, Struct):
            return self.message(node)
        if isinstance(node, Ref):
            self.depend(OBJECT_REF_FILE)
            return OBJECT_REF
        if isinstance(node, Variant):
            return self._variant(node)
        return self._wrapper(self.token(node), node)

    def _wrapper(self, token: str, node: Node) -> str:
        done = self._wrappers.get(token)
        if done is not None:
            return done
        local = self.claim(token)
        full = self._wrappers[token] = self.full(local)
        message = self.proto.message_type.add(name=local)
        self.add_field(message, full, "value", 1, node)
        return full

    def _variant(self, node: Variant) -> str:
        token = self.token(node)
        done = self._wrappers.get(token)
        if done is not None:
            return done
        local = self.claim(token)
        full = self._wrappers[token] = self.full(local)
        message = self.proto.message_type.add(name=local)
        message.oneof_decl.add(name="value")
        for a in node.alternatives:
            field = message.field.add(
                name=f"alt{a.index}", number=a.index + 1, label=FieldProto.LABEL_OPTIONAL
            )
            field.oneof_index = 0
            self.set_singular(field, a.node)
        return full

    def _entries(self, node: Map) -> str:
        token = f"Entry_{self.token(node.key)}_{self.token(node.value)}"
        done = self._wrappers.get(token)
        if done is not None:
            return done
        local = self.claim(token)
        full = self._wrappers[token] = self.full(local)
        message = self.proto.message_type.add(name=local)
        self.add_field(message, full, "key", 1, node.key)
        self.add_field(message, full, "value", 2, node.value)
        return full

    def token(self, node: Node) -> str:
        """A name part for wrapper messages: ``int32``, ``List_string``, ``point``."""
        if isinstance(node, Int):
            return node.width
        if isinstance(node, Float):
            return "float" if node.bits == 32 else "double"
        if isinstance(node, Bool):
            return "bool"
        if isinstance(node, Str):
            return "string"
        if isinstance(node, Bytes):
            return "bytes"
        if isinstance(node, Json):
            return "json"
        if isinstance(node, Ref):
            return "ObjectRef"
        if isinstance(node, Enum):
            if not enum_is_proto(node):
                return _enum_integer(node)
            return self._relative(self.enum(node))
        if isinstance(node, Struct):
            return self._relative(self.message(node))
        if isinstance(node, List):
            return f"List_{self.token(node.item)}"
        if isinstance(node, Set):
            return f"Set_{self.token(node.item)}"
        if isinstance(node, Map):
            return f"Map_{self.token(node.key)}_{self.token(node.value)}"
        if isinstance(node, Opt):
            return f"Opt_{self.token(node.inner)}"
        return "Variant_" + "_".join(self.token(a.node) for a in node.alternatives)

    def _relative(self, full: str) -> str:
        prefix = f".{self.package}."
        name = full[len(prefix) :] if full.startswith(prefix) else full.lstrip(".")
        return name.replace(".", "_")


def _enum_integer(node: Enum) -> str:
    """The integer an enum beyond int32 travels as."""
    return "int64" if any(number < 0 for _, number in node.values) else "uint64"


def map_entry_name(field: str) -> str:
    """protoc's name for a map field's entry message: ``name_to_id`` -> ``NameToIdEntry``."""
    out: list[str] = []
    upper = True
    for ch in field:
        if ch == "_":
            upper = True
        elif upper:
            out.append(ch.upper())
            upper = False
        else:
            out.append(ch)
    return "".join(out) + "Entry"


# ---------------------------------------------------------------- the codec


class _RuntimeNaming:
    """Every message local to one private file per top-level type; names do not reach
    the wire, so any unique name serves."""

    def struct(self, node: Struct) -> str:
        return _identifier(node.origin.__name__)

    def enum(self, node: Enum) -> str:
        return _identifier(node.cls.__name__ if node.cls is not None else node.name)


def _identifier(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name).strip("_")
    return cleaned if cleaned and not cleaned[0].isdigit() else f"T{cleaned}"


class ProtobufCodec:
    """Protobuf through the protobuf runtime, one message class per type."""

    encoding = Encoding.PROTOBUF

    def __init__(self) -> None:
        self._pool = descriptor_pool.DescriptorPool()
        self._pool.Add(object_ref_file())
        self._lock = threading.Lock()
        self._files = 0
        self._classes: TypeCache[type[Message]] = TypeCache(
            lambda type: self.message_class(schema(type))
        )
        self._encoders: TypeCache[Encoder] = TypeCache(self._build_encoder)
        self._decoders: TypeCache[Decoder] = TypeCache(self._build_decoder)

    def encoder(self, type: Any) -> Encoder:
        return self._encoders.get(type)

    def decoder(self, type: Any) -> Decoder:
        return self._decoders.get(type)

    def message_class(self, node: Node) -> type[Message]:
        """A message class for ``node`` in this codec's private pool."""
        with self._lock:
            self._files += 1
            n = self._files
            file = ProtoFile(f"canopy/runtime/t{n}.proto", f"canopy.runtime.t{n}", _RuntimeNaming())
            full = file.top(node)
            self._pool.Add(file.proto)
            return message_factory.GetMessageClass(self._pool.FindMessageTypeByName(full[1:]))

    def _build_encoder(self, type: Any) -> Encoder:
        node = schema(type)
        name = type_name(type, node)
        cls = self._classes.get(type)
        convert = _ToProto().top(node)

        def encode(value: Any) -> bytes:
            try:
                return cls(**convert(value)).SerializeToString()
            except Invalid as exc:
                raise exc.error("encode", name) from None
            except RecursionError:
                raise InvalidData(f"cannot encode {name}: nested too deeply") from None
            except (TypeError, ValueError, OverflowError) as exc:
                # What protobuf itself refuses (a string that is not valid UTF-8).
                raise InvalidData(f"cannot encode {name}: {exc}") from None

        return encode

    def _build_decoder(self, type: Any) -> Decoder:
        node = schema(type)
        name = type_name(type, node)
        parse = self._classes.get(type).FromString
        convert = _FromProto().top(node)

        def decode(data: bytes | memoryview) -> Any:
            try:
                return convert(parse(data if isinstance(data, bytes) else bytes(data)))
            except DecodeError as exc:
                raise InvalidData(f"cannot decode {name}: {exc}") from None
            except Invalid as exc:
                raise exc.error("decode", name) from None
            except RecursionError:
                raise InvalidData(f"cannot decode {name}: nested too deeply") from None

        return decode


# ---------------------------------------------------------------- values to messages

_ABSENT: Any = object()  # a field left unset (an absent optional)
_pack_f32 = struct.Struct("<f").pack


def _step(exc: Invalid, step: str) -> Invalid:
    exc.path.append(step)
    return exc


class _ToProto:
    """Checks a value and returns what the message constructor takes: scalars, and
    dicts for messages (upb builds nested messages from them in C)."""

    def __init__(self) -> None:
        self._structs: dict[int, list[Convert]] = {}

    def top(self, node: Node) -> Convert:
        one = self.singular(node)
        if is_message(node) or is_wrapped(node):
            return one
        return lambda value: {"value": one(value)}

    def singular(self, node: Node) -> Convert:
        """One value where protobuf takes a singular field (wrapped if it must be)."""
        if isinstance(node, Int):
            return _int_out(node)
        if isinstance(node, Float):
            return _f32_out if node.bits == 32 else as_float
        if isinstance(node, Bool):
            return _bool_out
        if isinstance(node, Str):
            return _str_out
        if isinstance(node, Bytes):
            return _bytes_out(node)
        if isinstance(node, Json):
            return _json_out
        if isinstance(node, Enum):
            return _enum_out(node)
        if isinstance(node, Ref):
            return _ref_out
        if isinstance(node, Variant):
            return self._variant(node)
        if isinstance(node, Struct):
            return self._struct(node)
        inner = self.field(node)

        def wrapped(value: Any) -> Any:
            v = inner(value)
            return {} if v is _ABSENT else {"value": v}

        return wrapped

    def field(self, node: Node) -> Convert:
        """A field's value (``_ABSENT`` to leave it unset)."""
        if isinstance(node, Opt):
            inner = self.singular(node.inner)
            return lambda value: _ABSENT if value is None else inner(value)
        if isinstance(node, List | Set):
            item = self.singular(node.item)
            low, high = (
                (node.min_length, node.max_length) if isinstance(node, List) else (None, None)
            )
            expected = (list, tuple) if isinstance(node, List) else (set, frozenset)

            def repeated(values: Any) -> Any:
                if not isinstance(values, expected):
                    raise Invalid(f"Expected `{expected[0].__name__}`, got `{kind(values)}`")
                if low is not None or high is not None:
                    check_length(len(values), low, high)
                out = []
                for i, v in enumerate(values):
                    try:
                        out.append(item(v))
                    except Invalid as exc:
                        raise _step(exc, f"[{i}]") from None
                return out

            return repeated
        if isinstance(node, Map):
            return self._map(node)
        return self.singular(node)

    def _map(self, node: Map) -> Convert:
        native = is_map_key(node.key)
        key = self.singular(node.key) if native else self.field(node.key)
        value = self.singular(node.value) if native else self.field(node.value)

        def convert(mapping: Any) -> Any:
            if not isinstance(mapping, dict):
                raise Invalid(f"Expected `dict`, got `{kind(mapping)}`")
            out: Any = {} if native else []
            for k, v in mapping.items():
                try:
                    if native:
                        out[key(k)] = value(v)
                    else:
                        entry = {"key": key(k), "value": value(v)}
                        out.append({n: x for n, x in entry.items() if x is not _ABSENT})
                except Invalid as exc:
                    raise _step(exc, f"[{k!r}]") from None
            return out

        return convert

    def _variant(self, node: Variant) -> Convert:
        alternatives = {a.cls: (f"alt{a.index}", self.singular(a.node)) for a in node.alternatives}

        def convert(value: Any) -> Any:
            found = alternatives.get(type(value))
            if found is None:
                raise Invalid(f"Expected a variant alternative, got `{kind(value)}`")
            name, inner = found
            try:
                return {name: inner(value.value)}
            except Invalid as exc:
                raise _step(exc, f".{name}") from None

        return convert

    def _struct(self, node: Struct) -> Convert:
        pending = self._structs.get(id(node))
        if pending is not None:
            return lambda value: pending[0](value)
        cell: list[Convert] = []
        self._structs[id(node)] = cell
        fields = [(f.name, f.wire, self.field(f.node)) for f in node.fields]
        cls, name = node.origin, node.name

        def convert(value: Any) -> Any:
            if not isinstance(value, cls):
                raise Invalid(f"Expected `{name}`, got `{kind(value)}`")
            out = {}
            for attr, wire, c in fields:
                try:
                    v = c(getattr(value, attr))
                except Invalid as exc:
                    raise _step(exc, f".{wire}") from None
                if v is not _ABSENT:
                    out[wire] = v
            return out

        cell.append(convert)
        return convert


def _int_out(node: Int) -> Convert:
    lo, hi = node.lo, node.hi
    signed = node.width == "int128"

    def check(value: Any) -> int:
        if (type(value) is int or (isinstance(value, int) and not isinstance(value, bool))) and (
            lo <= value <= hi
        ):
            return int(value)
        raise int_failure(value, node)

    if node.wide:
        return lambda value: check(value).to_bytes(16, "big", signed=signed)
    return check


def _f32_out(value: Any) -> Any:
    value = as_float(value)
    try:
        _pack_f32(value)
    except OverflowError:
        raise Invalid(f"Expected a 32-bit `float`, got {value!r}: out of range") from None
    return value


def _bool_out(value: Any) -> Any:
    if type(value) is not bool:
        raise Invalid(f"Expected `bool`, got `{kind(value)}`")
    return value


def _str_out(value: Any) -> Any:
    if not isinstance(value, str):
        raise Invalid(f"Expected `str`, got `{kind(value)}`")
    return value


def _bytes_out(node: Bytes) -> Convert:
    low, high = node.min_length, node.max_length

    def convert(value: Any) -> Any:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise Invalid(f"Expected `bytes`, got `{kind(value)}`")
        if low is not None or high is not None:
            check_length(len(value), low, high)
        return bytes(value)

    return convert


def _json_out(value: Any) -> Any:
    return msgspec.json.encode(json_value_out(value)).decode()


def _enum_out(node: Enum) -> Convert:
    numbers = {number for _, number in node.values}
    name = node.name

    def convert(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value in numbers:
            return int(value)
        raise Invalid(f"Expected `{name}`, got {value!r}")

    return convert


def _ref_out(value: Any) -> Any:
    if not isinstance(value, ObjectRef):
        raise Invalid(f"Expected `ObjectRef`, got `{kind(value)}`")
    out = {}
    for name, high in (
        ("zone", _UINT64_MAX),
        ("object", _UINT64_MAX),
        ("interface", _UINT64_MAX),
        ("kind", _UINT32_MAX),
    ):
        v = getattr(value, name)
        if type(v) is not int or not 0 <= v <= high:
            raise Invalid(f"Expected `ObjectRef.{name}` in [0, {high}], got {v!r}")
        out[name] = v
    return out


# ---------------------------------------------------------------- messages to values


class _FromProto:
    """Reads a parsed message back into the typed value, checking what protobuf does
    not: narrow integer widths, enum membership, lengths, a variant's alternative."""

    def __init__(self) -> None:
        self._structs: dict[int, list[Convert]] = {}

    def top(self, node: Node) -> Convert:
        if is_message(node) or is_wrapped(node):
            return self.singular(node)
        read = self.field(node)
        return lambda message: read(message, "value")

    def singular(self, node: Node) -> Convert:
        if isinstance(node, Int):
            return _int_in(node)
        if isinstance(node, Float | Bool | Str):
            return _same
        if isinstance(node, Bytes):
            return _bytes_in(node)
        if isinstance(node, Json):
            return _json_in
        if isinstance(node, Enum):
            return _enum_in(node)
        if isinstance(node, Ref):
            return _ref_in
        if isinstance(node, Variant):
            return self._variant(node)
        if isinstance(node, Struct):
            return self._struct(node)
        read = self.field(node)
        return lambda message: read(message, "value")

    def field(self, node: Node) -> Read:
        if isinstance(node, Opt):
            inner = self.singular(node.inner)

            def optional(message: Any, name: str) -> Any:
                return inner(getattr(message, name)) if message.HasField(name) else None

            return optional
        if isinstance(node, List | Set):
            item = self.singular(node.item)
            low, high = (
                (node.min_length, node.max_length) if isinstance(node, List) else (None, None)
            )
            into = list if isinstance(node, List) else set

            def repeated(message: Any, name: str) -> Any:
                out = []
                for i, v in enumerate(getattr(message, name)):
                    try:
                        out.append(item(v))
                    except Invalid as exc:
                        raise _step(exc, f"[{i}]") from None
                if low is not None or high is not None:
                    check_length(len(out), low, high)
                return into(out)

            return repeated
        if isinstance(node, Map):
            return self._map(node)
        one = self.singular(node)
        return lambda message, name: one(getattr(message, name))

    def _map(self, node: Map) -> Read:
        if is_map_key(node.key):
            key, value = self.singular(node.key), self.singular(node.value)

            def native(message: Any, name: str) -> Any:
                out = {}
                for k, v in getattr(message, name).items():
                    try:
                        out[key(k)] = value(v)
                    except Invalid as exc:
                        raise _step(exc, f"[{k!r}]") from None
                return out

            return native
        read_key, read_value = self.field(node.key), self.field(node.value)

        def entries(message: Any, name: str) -> Any:
            out = {}
            for i, entry in enumerate(getattr(message, name)):
                try:
                    out[read_key(entry, "key")] = read_value(entry, "value")
                except Invalid as exc:
                    raise _step(exc, f"[{i}]") from None
                except TypeError:
                    raise _step(Invalid("a map key that cannot be hashed"), f"[{i}]") from None
            return out

        return entries

    def _variant(self, node: Variant) -> Convert:
        alternatives = {f"alt{a.index}": (a.cls, self.singular(a.node)) for a in node.alternatives}

        def convert(message: Any) -> Any:
            which = message.WhichOneof("value")
            if which is None:
                raise Invalid("Expected a variant with one alternative set, got none")
            cls, inner = alternatives[which]
            try:
                return cls(inner(getattr(message, which)))
            except Invalid as exc:
                raise _step(exc, f".{which}") from None

        return convert

    def _struct(self, node: Struct) -> Convert:
        pending = self._structs.get(id(node))
        if pending is not None:
            return lambda message: pending[0](message)
        cell: list[Convert] = []
        self._structs[id(node)] = cell
        fields = [(f.name, f.wire, self.field(f.node)) for f in node.fields]
        cls = node.origin

        def convert(message: Any) -> Any:
            kwargs = {}
            for attr, wire, read in fields:
                try:
                    kwargs[attr] = read(message, wire)
                except Invalid as exc:
                    raise _step(exc, f".{wire}") from None
            return cls(**kwargs)

        cell.append(convert)
        return convert


def _same(value: Any) -> Any:
    return value


def _int_in(node: Int) -> Convert:
    lo, hi = node.lo, node.hi
    if node.wide:
        signed = node.width == "int128"

        def wide(value: bytes) -> int:
            if not value:
                return 0
            if len(value) != 16:
                raise Invalid(f"Expected `{node.width}` as 16 bytes, got {len(value)}")
            return int.from_bytes(value, "big", signed=signed)

        return wide

    def narrow(value: int) -> int:
        if lo <= value <= hi:
            return value
        raise int_failure(value, node)

    return narrow


def _bytes_in(node: Bytes) -> Convert:
    low, high = node.min_length, node.max_length

    def convert(value: bytes) -> bytes:
        if low is not None or high is not None:
            check_length(len(value), low, high)
        return value

    return convert


def _json_in(text: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise Invalid(f"Expected JSON text for json::v1::object: {exc}") from None


def _enum_in(node: Enum) -> Convert:
    cls = enum_class(node)
    members = {number: cls(number) for _, number in node.values}

    def convert(value: int) -> Any:
        member = members.get(value)
        if member is None:
            raise Invalid(f"Invalid enum value {value} for `{cls.__qualname__}`")
        return member

    return convert


def _ref_in(message: Any) -> ObjectRef:
    return ObjectRef(message.zone, message.object, message.interface, message.kind)


__all__ = [
    "OBJECT_REF",
    "OBJECT_REF_FILE",
    "Naming",
    "ProtoFile",
    "ProtobufCodec",
    "enum_is_proto",
    "is_map_key",
    "is_message",
    "is_wrapped",
    "map_entry_name",
    "object_ref_file",
]
