"""The binary encoding: MessagePack through msgspec, the hot path of every call.

Encoding is one msgspec pass. msgspec's encoder checks no constraint, so a type
that has one (an integer width, an enum, a ``std::array`` length) is checked by
decoding the bytes just written with the type's own typed decoder: measured, that
C pass costs less than any per-field walk in Python for the small records calls
carry (see the README). A type without a constraint (strings, floats, bytes,
references) skips it. Decoding is one typed msgspec pass; a type that holds an
interface reference, a 128-bit integer or ``json::v1::object`` is decoded into
wire-shaped mirror structs and converted back, because msgspec cannot produce
those values itself.

128-bit integers. A value inside MessagePack's integer range (-2**63 to 2**64-1)
travels as a plain integer; one outside it as extension type 1 holding 16 bytes,
big-endian, two's complement for ``__int128`` and unsigned for
``unsigned __int128`` (the field's type says which), as in the protobuf encoding.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from types import GenericAlias
from typing import Annotated, Any, Union

import msgspec

from canopy import generated
from canopy.errors import InvalidData
from canopy.wire._messages import Encoding, ObjectRef
from canopy.wire.codecs import _mirrors
from canopy.wire.codecs._base import Decoder, Encoder, Invalid, TypeCache, type_name
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
    contains,
    schema,
)

EXT_INT128 = 1  # the MessagePack extension type of a 128-bit integer beyond 64 bits
_MSGPACK_MIN, _MSGPACK_MAX = -(1 << 63), (1 << 64) - 1

Convert = Callable[[Any], Any]
Parse = Callable[[bytes | memoryview], Any]

_ENCODE_ERRORS = (TypeError, ValueError, OverflowError, msgspec.EncodeError)


class BinaryCodec:
    """MessagePack: structs as maps keyed by IDL name, method records as arrays."""

    encoding = Encoding.BINARY

    def __init__(self) -> None:
        self._msgpack = msgspec.msgpack.Encoder()
        self._wide = msgspec.msgpack.Encoder(enc_hook=_write_ext)  # the rare 128-bit retry
        self._wires: TypeCache[Parse] = TypeCache(_build_wire)
        self._parsers: TypeCache[Parse] = TypeCache(self._build_parser)
        self._encoders: TypeCache[Encoder] = TypeCache(self._build_encoder)
        self._decoders: TypeCache[Decoder] = TypeCache(self._build_decoder)

    def encoder(self, type: Any) -> Encoder:
        return self._encoders.get(type)

    def decoder(self, type: Any) -> Decoder:
        return self._decoders.get(type)

    def _build_encoder(self, type: Any) -> Encoder:
        node = schema(type)
        name = type_name(type, node)
        widen = _ToWire().compile(node)
        verify: Parse | None = None
        if contains(node, _constrained):
            # The wire decode is the check, unless part of the check is in Python.
            python = contains(node, _is_wide) or contains(node, _is_json)
            verify = self._parsers.get(type) if python else self._wires.get(type)
        encode, encode_wide = self._msgpack.encode, self._wide.encode

        def fail(exc: Exception) -> Exception:
            if isinstance(exc, Invalid):
                return exc.error("encode", name)
            return InvalidData(f"cannot encode {name}: {exc}")

        def encode_checked(value: Any) -> bytes:
            try:
                data = encode(value)
            except OverflowError as exc:
                # An integer beyond 64 bits: a 128-bit one travels as an extension;
                # any other is out of range, and the walk says where.
                if widen is None:
                    raise fail(exc) from None
                try:
                    data = encode_wide(widen(value))
                except (*_ENCODE_ERRORS, Invalid, AttributeError) as again:
                    raise fail(again) from None
            except _ENCODE_ERRORS as exc:
                raise fail(exc) from None
            if verify is not None:
                try:
                    verify(data)
                except (msgspec.DecodeError, Invalid, RecursionError) as exc:
                    raise fail(exc) from None
            return data

        return encode_checked

    def _build_parser(self, type: Any) -> Parse:
        """Bytes to value, raising msgspec's errors or ``Invalid`` for the caller to word."""
        wire = self._wires.get(type)
        node = schema(type)
        convert = _FromWire().compile(node) if contains(node, _needs_mirror) else None
        if convert is None:
            return wire
        return lambda data: convert(wire(data))

    def _build_decoder(self, type: Any) -> Decoder:
        parse = self._parsers.get(type)
        name = type_name(type, schema(type))

        def decode(data: bytes | memoryview) -> Any:
            try:
                return parse(data)
            except msgspec.DecodeError as exc:
                raise InvalidData(f"cannot decode {name}: {exc}") from None
            except Invalid as exc:
                raise exc.error("decode", name) from None
            except RecursionError:
                raise InvalidData(f"cannot decode {name}: nested too deeply") from None

        return decode


def _build_wire(type: Any) -> Parse:
    """Bytes to the wire form of ``type`` (its mirror, if it needs one), raising
    msgspec's errors for the caller to word."""
    node = schema(type)
    if not contains(node, _needs_mirror):
        return msgspec.msgpack.Decoder(type).decode
    return msgspec.msgpack.Decoder(_WireTypes().annotation(node), ext_hook=_ext_hook).decode


def _is_wide(node: Node) -> bool:
    return isinstance(node, Int) and node.wide


def _is_json(node: Node) -> bool:
    return isinstance(node, Json)


def _needs_mirror(node: Node) -> bool:
    return isinstance(node, Ref | Json) or _is_wide(node)


def _constrained(node: Node) -> bool:
    """A constraint the decoder enforces and msgspec's encoder lets through."""
    if isinstance(node, Int | Enum):
        return True
    return isinstance(node, Bytes | List) and (node.min_length, node.max_length) != (None, None)


# ---------------------------------------------------------------- 128-bit on the way out


class _ToWire:
    """Rebuilds a value with every 128-bit integer beyond 64 bits as an extension, and
    finds any other integer out of its range on the way.

    Used only after msgspec overflowed; structs become the arrays or maps msgspec
    would have written for them.
    """

    def __init__(self) -> None:
        self._structs: dict[int, list[Convert | None]] = {}

    def compile(self, node: Node) -> Convert | None:
        if isinstance(node, Int):
            return _widen(node)
        if isinstance(node, List | Set):
            return _each_into(self.compile(node.item), list)
        if isinstance(node, Map):
            return _pairs_into(self.compile(node.key), self.compile(node.value))
        if isinstance(node, Opt):
            inner = self.compile(node.inner)
            return None if inner is None else lambda v: None if v is None else inner(v)
        if isinstance(node, Variant):
            return _variant_into({a.cls: self.compile(a.node) for a in node.alternatives})
        if isinstance(node, Struct):
            return self._struct(node)
        return None

    def _struct(self, node: Struct) -> Convert | None:
        pending = self._structs.get(id(node))
        if pending is not None:
            return lambda value: value if pending[0] is None else pending[0](value)
        cell: list[Convert | None] = [None]
        self._structs[id(node)] = cell
        fields = [
            (f.name, f.wire, f"[{i}]" if node.array_like else f".{f.wire}", self.compile(f.node))
            for i, f in enumerate(node.fields)
        ]
        if all(c is None for *_, c in fields):
            return None
        array_like = node.array_like

        def convert(value: Any) -> Any:
            out = {}
            for name, wire, step, c in fields:
                v = getattr(value, name)
                if c is not None:
                    try:
                        v = c(v)
                    except Invalid as exc:
                        exc.path.append(step)
                        raise
                out[wire] = v
            return list(out.values()) if array_like else out

        cell[0] = convert
        return convert


def _same(value: Any) -> Any:
    return value


def _widen(node: Int) -> Convert:
    signed = node.width == "int128"

    def widen(value: Any) -> Any:
        if not isinstance(value, int) or _MSGPACK_MIN <= value <= _MSGPACK_MAX:
            return value  # not for this walk to judge: the check after encoding does
        if not node.lo <= value <= node.hi:
            bound = f">= {node.lo}" if value < node.lo else f"<= {node.hi}"
            raise Invalid(f"Expected `{node.width}` {bound}, got {value}")
        # Only a 128-bit width gets here: every narrower one lies within MessagePack's.
        return _Ext128(value.to_bytes(16, "big", signed=signed))

    return widen


class _Ext128:
    """A 128-bit value beyond 64 bits, written as extension 1 by ``_write_ext``; hashable,
    unlike ``msgspec.msgpack.Ext``, so that it can be a map key."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Ext128) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)


def _write_ext(value: Any) -> Any:
    if isinstance(value, _Ext128):
        return msgspec.msgpack.Ext(EXT_INT128, value.data)
    raise NotImplementedError(f"Encoding objects of type {type(value).__name__} is unsupported")


def _pairs_into(key: Convert | None, value: Convert | None) -> Convert | None:
    if key is None and value is None:
        return None
    kc, vc = key or _same, value or _same

    def convert(mapping: Any) -> Any:
        out = {}
        for k, v in mapping.items():
            try:
                out[kc(k)] = vc(v)
            except Invalid as exc:
                exc.path.append(f"[{k!r}]")
                raise
        return out

    return convert


def _variant_into(converts: dict[Any, Convert | None]) -> Convert | None:
    if all(c is None for c in converts.values()):
        return None

    def convert(value: Any) -> Any:
        c = converts.get(type(value))
        return value if c is None else type(value)(c(value.value))

    return convert


# ---------------------------------------------------------------- mirrors on the way in


class _Wide(bytes):
    """The payload of a 128-bit extension, until the field's type says its sign."""


def _ext_hook(code: int, data: memoryview) -> Any:
    if code == EXT_INT128:
        return _Wide(data)
    return msgspec.msgpack.Ext(code, bytes(data))


_mirror_ids = itertools.count(1)  # mirror class names are unique across codecs


class _WireTypes:
    """The annotation msgspec decodes a type's wire form into.

    It is the type itself except where msgspec cannot produce the value: an
    interface reference is an ``ObjectRef``, a 128-bit integer is anything (an
    int, or the bytes of an extension, which ``_FromWire`` checks), and structs
    holding either are mirrored by classes of the same wire layout.
    """

    def __init__(self) -> None:
        self._mirrors: dict[int, str] = {}

    def annotation(self, node: Node) -> Any:
        if isinstance(node, Int):
            if node.wide:
                return Any
            if node.hi >= 1 << 63:  # uint64: msgspec's bounds must fit an int64
                return Annotated[int, msgspec.Meta(ge=node.lo)]
            return Annotated[int, msgspec.Meta(ge=node.lo, le=node.hi)]
        if isinstance(node, Bytes):
            return _bounded(bytes, node.min_length, node.max_length)
        if isinstance(node, List):
            items = GenericAlias(list, (self.annotation(node.item),))
            return _bounded(items, node.min_length, node.max_length)
        if isinstance(node, Set):
            # Extension bytes and mirror structs are not all hashable: an array then.
            kind = list if contains(node.item, _needs_mirror) else set
            return GenericAlias(kind, (self.annotation(node.item),))
        if isinstance(node, Map):
            return GenericAlias(dict, (self.annotation(node.key), self.annotation(node.value)))
        if isinstance(node, Opt):
            return Union[self.annotation(node.inner), None]  # noqa: UP007
        if isinstance(node, Variant):
            return Union[tuple(a.cls[self.annotation(a.node)] for a in node.alternatives)]  # noqa: UP007
        if isinstance(node, Ref):
            return ObjectRef
        if isinstance(node, Json):
            return generated.JsonValue
        if isinstance(node, Struct):
            return self._struct(node)
        return _plain_annotation(node)

    def _struct(self, node: Struct) -> Any:
        if not contains(node, _needs_mirror):
            return node.cls
        name = self._mirrors.get(id(node))
        if name is not None:
            return name  # a recursive reference, resolved by name in _mirrors
        name = f"{node.origin.__name__}_{next(_mirror_ids)}"
        self._mirrors[id(node)] = name
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for f in node.fields:
            annotation = self.annotation(f.node)
            if f.required:
                fields.append((f.name, annotation))
            elif f.factory is not msgspec.NODEFAULT:
                fields.append((f.name, annotation, msgspec.field(default_factory=f.factory)))
            else:
                fields.append((f.name, annotation, f.default))
        mirror = msgspec.defstruct(
            name,
            fields,
            module=_mirrors.__name__,
            rename={f.name: f.wire for f in node.fields if f.name != f.wire},
            array_like=node.array_like,
            kw_only=True,
        )
        setattr(sys.modules[_mirrors.__name__], name, mirror)
        return mirror


def _bounded(t: Any, low: int | None, high: int | None) -> Any:
    if (low, high) == (None, None):
        return t
    return Annotated[t, msgspec.Meta(min_length=low, max_length=high)]


def _plain_annotation(node: Node) -> Any:
    if isinstance(node, Float):
        return float
    if isinstance(node, Bool):
        return bool
    if isinstance(node, Str):
        return str
    if isinstance(node, Enum):
        return node.cls
    raise TypeError(f"no wire annotation for {node!r}")


class _FromWire:
    """Converts a mirror-decoded value into the value of the real type."""

    def __init__(self) -> None:
        self._structs: dict[int, list[Convert | None]] = {}

    def compile(self, node: Node) -> Convert | None:
        if isinstance(node, Int):
            return _narrow(node) if node.wide else None
        if isinstance(node, Json):
            return _check_json
        if isinstance(node, List):
            return _each_into(self.compile(node.item), list)
        if isinstance(node, Set):
            item = self.compile(node.item)
            if item is None and not contains(node.item, _needs_mirror):
                return None
            return _each_into(item or _same, set)
        if isinstance(node, Map):
            return _pairs_into(self.compile(node.key), self.compile(node.value))
        if isinstance(node, Opt):
            inner = self.compile(node.inner)
            return None if inner is None else lambda v: None if v is None else inner(v)
        if isinstance(node, Variant):
            return _variant_into({a.cls: self.compile(a.node) for a in node.alternatives})
        if isinstance(node, Struct):
            return self._struct(node)
        return None

    def _struct(self, node: Struct) -> Convert | None:
        if not contains(node, _needs_mirror):
            return None
        key = id(node)
        pending = self._structs.get(key)
        if pending is not None:
            return lambda value: pending[0](value) if pending[0] is not None else value
        cell: list[Convert | None] = [None]
        self._structs[key] = cell
        fields = []
        for position, f in enumerate(node.fields):
            step = f"[{position}]" if node.array_like else f".{f.wire}"
            fields.append((f.name, step, self.compile(f.node)))
        cls = node.origin

        def convert(value: Any) -> Any:
            kwargs = {}
            for name, step, c in fields:
                v = getattr(value, name)
                if c is not None:
                    try:
                        v = c(v)
                    except Invalid as exc:
                        exc.path.append(step)
                        raise
                kwargs[name] = v
            return cls(**kwargs)

        cell[0] = convert
        return convert


def _each_into(item: Convert | None, kind: type[list[Any]] | type[set[Any]]) -> Convert | None:
    if item is None:
        return None

    def convert(values: Any) -> Any:
        out = []
        for i, v in enumerate(values):
            try:
                out.append(item(v))
            except Invalid as exc:
                exc.path.append(f"[{i}]")
                raise
        return kind(out)

    return convert


def _narrow(node: Int) -> Convert:
    signed = node.width == "int128"

    def narrow(value: Any) -> int:
        if type(value) is _Wide:
            if len(value) != 16:
                raise Invalid(f"Expected `{node.width}` as 16 bytes, got {len(value)}")
            return int.from_bytes(value, "big", signed=signed)
        if type(value) is not int:
            raise Invalid(f"Expected `{node.width}`, got `{type(value).__name__}`")
        if not node.lo <= value <= node.hi:
            bound = f">= {node.lo}" if value < node.lo else f"<= {node.hi}"
            raise Invalid(f"Expected `{node.width}` {bound}, got {value}")
        return value

    return narrow


def _check_json(value: Any) -> Any:
    """``value`` if it is a JSON value (as ``json::v1::object`` holds), else ``Invalid``."""
    kind = type(value)
    if value is None or kind in (str, int, float, bool):
        return value
    if kind is list:
        for i, item in enumerate(value):
            try:
                _check_json(item)
            except Invalid as exc:
                exc.path.append(f"[{i}]")
                raise
        return value
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise Invalid(f"Expected a JSON object key (`str`), got `{type(key).__name__}`")
            try:
                _check_json(item)
            except Invalid as exc:
                exc.path.append(f"[{key!r}]")
                raise
        return value
    raise Invalid(f"Expected a JSON value, got `{kind.__name__}`")
