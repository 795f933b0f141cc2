"""The JSON profile: the encoding other languages and the browser client speak.

- A struct is an object keyed by IDL field name; so is a method's ``[in]`` or
  ``[out]`` record, although the binary encoding writes those as arrays.
- An ``rpc::optional`` field whose value is absent is omitted; a missing field
  takes its IDL default on decode, and ``null`` reads back as absent.
- An enum value is its IDL name (``"complete"``); decoding also takes its number.
- A variant is an object with one key, the index of its alternative as a string:
  ``{"0": 5}`` for the first alternative, ``{"1": "x"}`` for the second. The index
  is the only key that tells ``int32_t`` and ``int64_t`` alternatives apart.
- Bytes are base64 (standard alphabet, padded); integers of every width are JSON
  numbers, written exactly (128-bit included).
- A float that JSON cannot write is the string ``"NaN"``, ``"Infinity"`` or
  ``"-Infinity"``; decoding takes those strings for any float field.
- A set is an array (sorted when its values order); a map with string keys is an
  object, any other map an array of ``[key, value]`` pairs.
- An interface reference is ``{"zone": .., "object": .., "interface": .., "kind": ..}``.
- ``json::v1::object`` is the JSON value itself.

Both directions are a walk compiled per type: the value is checked and turned into
builtins that msgspec writes, and the builtins msgspec reads are checked and turned
into the typed value, so every error names its path.
"""

from __future__ import annotations

import binascii
import contextlib
import enum
import math
from collections.abc import Callable
from typing import Any

import msgspec

from canopy import generated
from canopy.errors import InvalidData
from canopy.wire._messages import Encoding, ObjectRef
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
    schema,
)

Convert = Callable[[Any], Any]

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_UINT64_MAX = (1 << 64) - 1
_REF_FIELDS = (("zone", _UINT64_MAX), ("object", _UINT64_MAX), ("interface", _UINT64_MAX))
_UINT32_MAX = (1 << 32) - 1


class JsonCodec:
    """The JSON profile (see the module docstring for the shapes)."""

    encoding = Encoding.JSON

    def __init__(self) -> None:
        self._json = msgspec.json.Encoder()
        self._parse = msgspec.json.Decoder().decode
        self._encoders: TypeCache[Encoder] = TypeCache(self._build_encoder)
        self._decoders: TypeCache[Decoder] = TypeCache(self._build_decoder)

    def encoder(self, type: Any) -> Encoder:
        return self._encoders.get(type)

    def decoder(self, type: Any) -> Decoder:
        return self._decoders.get(type)

    def _build_encoder(self, type: Any) -> Encoder:
        node = schema(type)
        name = type_name(type, node)
        convert = ToJson(objects=False).compile(node)
        write = self._json.encode

        def encode(value: Any) -> bytes:
            try:
                return write(convert(value))
            except Invalid as exc:
                raise exc.error("encode", name) from None
            except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
                raise InvalidData(f"cannot encode {name}: {exc}") from None
            except RecursionError:
                raise InvalidData(f"cannot encode {name}: nested too deeply") from None

        return encode

    def _build_decoder(self, type: Any) -> Decoder:
        node = schema(type)
        name = type_name(type, node)
        convert = FromJson().compile(node)
        parse = self._parse

        def decode(data: bytes | memoryview) -> Any:
            try:
                return convert(parse(data))
            except msgspec.DecodeError as exc:
                raise InvalidData(f"cannot decode {name}: {exc}") from None
            except Invalid as exc:
                raise exc.error("decode", name) from None
            except RecursionError:
                raise InvalidData(f"cannot decode {name}: nested too deeply") from None

        return decode


def _build_checker(type: Any) -> Callable[[Any], None]:
    node = schema(type)
    name = type_name(type, node)
    convert = ToJson(objects=True).compile(node)

    def check(value: Any) -> None:
        try:
            convert(value)
        except Invalid as exc:
            raise exc.error("validate", name) from None
        except RecursionError:
            raise InvalidData(f"cannot validate {name}: nested too deeply") from None

    return check


_checkers: TypeCache[Callable[[Any], None]] = TypeCache(_build_checker)


def validate(value: Any, type: Any) -> None:
    """``InvalidData`` unless ``value`` fits ``type`` exactly, as the JSON encoder checks
    it; interface fields may hold objects as well as ``ObjectRef``s (values as users
    hold them)."""
    _checkers.get(type)(value)


def enum_class(node: Enum) -> type[enum.IntEnum]:
    """The Python enum to build values of (a tree read from the IDL has none)."""
    if node.cls is None:
        raise TypeError(f"enum {node.name} has no Python class to decode into")
    return node.cls


def kind(value: Any) -> str:
    """A decoded value's type as JSON names it, for errors."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _step(exc: Invalid, step: str) -> Invalid:
    exc.path.append(step)
    return exc


class ToJson:
    """Checks a value against its type and returns the builtins its JSON is written from.

    With ``objects``, an interface field may also hold an interface object (a
    proxy or an implementation): that is what ``validate`` sees in user values.
    """

    def __init__(self, *, objects: bool) -> None:
        self.objects = objects
        self._structs: dict[int, list[Convert]] = {}

    def compile(self, node: Node) -> Convert:
        if isinstance(node, Int):
            return _int_out(node)
        if isinstance(node, Float):
            return _float_out
        if isinstance(node, Bool):
            return _bool_out
        if isinstance(node, Str):
            return _str_out
        if isinstance(node, Bytes):
            return _bytes_out(node)
        if isinstance(node, List):
            return self._list(node)
        if isinstance(node, Set):
            return self._set(node)
        if isinstance(node, Map):
            return self._map(node)
        if isinstance(node, Opt):
            inner = self.compile(node.inner)
            return lambda value: None if value is None else inner(value)
        if isinstance(node, Variant):
            return self._variant(node)
        if isinstance(node, Enum):
            return _enum_out(node)
        if isinstance(node, Ref):
            return self._ref()
        if isinstance(node, Json):
            return json_value_out
        return self._struct(node)

    def _list(self, node: List) -> Convert:
        item = self.compile(node.item)
        low, high = node.min_length, node.max_length

        def convert(values: Any) -> Any:
            if not isinstance(values, list | tuple):
                raise Invalid(f"Expected `array`, got `{type(values).__name__}`")
            check_length(len(values), low, high)
            out = []
            for i, v in enumerate(values):
                try:
                    out.append(item(v))
                except Invalid as exc:
                    raise _step(exc, f"[{i}]") from None
            return out

        return convert

    def _set(self, node: Set) -> Convert:
        item = self.compile(node.item)

        def convert(values: Any) -> Any:
            if not isinstance(values, set | frozenset):
                raise Invalid(f"Expected `set`, got `{type(values).__name__}`")
            out = []
            for i, v in enumerate(values):
                try:
                    out.append(item(v))
                except Invalid as exc:
                    raise _step(exc, f"[{i}]") from None
            with contextlib.suppress(TypeError):
                out.sort()  # the same set writes the same text
            return out

        return convert

    def _map(self, node: Map) -> Convert:
        key, value = self.compile(node.key), self.compile(node.value)
        as_object = isinstance(node.key, Str)

        def convert(mapping: Any) -> Any:
            if not isinstance(mapping, dict):
                raise Invalid(f"Expected `dict`, got `{type(mapping).__name__}`")
            if as_object:
                out: dict[str, Any] = {}
                for k, v in mapping.items():
                    try:
                        out[key(k)] = value(v)
                    except Invalid as exc:
                        raise _step(exc, f"[{k!r}]") from None
                return out
            pairs = []
            for k, v in mapping.items():
                try:
                    pairs.append([key(k), value(v)])
                except Invalid as exc:
                    raise _step(exc, f"[{k!r}]") from None
            return pairs

        return convert

    def _variant(self, node: Variant) -> Convert:
        alternatives = {a.cls: (str(a.index), self.compile(a.node)) for a in node.alternatives}
        expected = " | ".join(f"Alt{a.index}" for a in node.alternatives)

        def convert(value: Any) -> Any:
            found = alternatives.get(type(value))
            if found is None:
                raise Invalid(f"Expected a variant alternative ({expected}), got `{kind(value)}`")
            index, inner = found
            try:
                return {index: inner(value.value)}
            except Invalid as exc:
                raise _step(exc, f"[{index!r}]") from None

        return convert

    def _ref(self) -> Convert:
        objects = self.objects

        def convert(value: Any) -> Any:
            if isinstance(value, ObjectRef):
                for name, high in (*_REF_FIELDS, ("kind", _UINT32_MAX)):
                    v = getattr(value, name)
                    if type(v) is not int or not 0 <= v <= high:
                        raise Invalid(f"Expected `ObjectRef.{name}` in [0, {high}], got {v!r}")
                return {
                    "zone": value.zone,
                    "object": value.object,
                    "interface": value.interface,
                    "kind": value.kind,
                }
            if objects and isinstance(value, generated.Interface):
                return None
            raise Invalid(f"Expected `ObjectRef`, got `{type(value).__name__}`")

        return convert

    def _struct(self, node: Struct) -> Convert:
        key = id(node)
        pending = self._structs.get(key)
        if pending is not None:
            return lambda value: pending[0](value)
        cell: list[Convert] = []
        self._structs[key] = cell
        fields = [(f.name, f.wire, f.omittable, self.compile(f.node)) for f in node.fields]
        cls, name = node.origin, node.name

        def convert(value: Any) -> Any:
            if not isinstance(value, cls):
                raise Invalid(f"Expected `{name}`, got `{type(value).__name__}`")
            out = {}
            for attr, wire, omittable, c in fields:
                v = getattr(value, attr)
                if v is None and omittable:
                    continue
                try:
                    out[wire] = c(v)
                except Invalid as exc:
                    raise _step(exc, f".{wire}") from None
            return out

        cell.append(convert)
        return convert


def check_length(n: int, low: int | None, high: int | None) -> None:
    """Refuse a sequence whose length lies outside ``low..high`` (``std::array`` sizes)."""
    if low is not None and n < low:
        raise Invalid(f"Expected an array of length >= {low}, got {n}")
    if high is not None and n > high:
        raise Invalid(f"Expected an array of length <= {high}, got {n}")


def int_failure(value: Any, node: Int) -> Invalid:
    if isinstance(value, int) and not isinstance(value, bool):
        bound = f">= {node.lo}" if value < node.lo else f"<= {node.hi}"
        return Invalid(f"Expected `{node.width}` {bound}, got {value}")
    return Invalid(f"Expected `{node.width}`, got `{kind(value)}`")


def _int_out(node: Int) -> Convert:
    lo, hi = node.lo, node.hi

    def convert(value: Any) -> Any:
        if type(value) is int and lo <= value <= hi:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi:
            return int(value)
        raise int_failure(value, node)

    return convert


def _float_out(value: Any) -> Any:
    value = as_float(value)
    if math.isfinite(value):
        return value
    return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"


def as_float(value: Any) -> float:
    """``value`` as a float if it is a number (an int within float range included)."""
    if type(value) is float:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise Invalid(f"Expected `float`, got {value}: out of range") from None
    raise Invalid(f"Expected `float`, got `{kind(value)}`")


def _bool_out(value: Any) -> Any:
    if type(value) is not bool:
        raise Invalid(f"Expected `bool`, got `{type(value).__name__}`")
    return value


def _str_out(value: Any) -> Any:
    if not isinstance(value, str):
        raise Invalid(f"Expected `str`, got `{type(value).__name__}`")
    return value


def _bytes_out(node: Bytes) -> Convert:
    low, high = node.min_length, node.max_length

    def convert(value: Any) -> Any:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise Invalid(f"Expected `bytes`, got `{type(value).__name__}`")
        if low is not None or high is not None:
            check_length(len(value), low, high)
        return value

    return convert


def _enum_out(node: Enum) -> Convert:
    cls = enum_class(node)
    names: dict[int, str] = {}
    for wire, number in node.values:
        names.setdefault(number, wire)  # an alias writes as its canonical member

    def convert(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            name = names.get(value)
            if name is not None:
                return name
        raise Invalid(f"Expected `{cls.__qualname__}`, got {value!r}")

    return convert


def json_value_out(value: Any) -> Any:
    """``value`` if JSON can write it as it is (``json::v1::object``), else ``Invalid``."""
    t = type(value)
    if value is None or t is str or t is int or t is bool:
        return value
    if t is float:
        if not math.isfinite(value):
            raise Invalid("json::v1::object cannot hold NaN or Infinity")
        return value
    if t is list or t is tuple:
        for i, item in enumerate(value):
            try:
                json_value_out(item)
            except Invalid as exc:
                raise _step(exc, f"[{i}]") from None
        return value
    if t is dict:
        for k, item in value.items():
            if type(k) is not str:
                raise Invalid(f"Expected a JSON object key (`str`), got `{type(k).__name__}`")
            try:
                json_value_out(item)
            except Invalid as exc:
                raise _step(exc, f"[{k!r}]") from None
        return value
    raise Invalid(f"Expected a JSON value, got `{t.__name__}`")


class FromJson:
    """Checks parsed JSON against a type and builds the typed value."""

    def __init__(self) -> None:
        self._structs: dict[int, list[Convert]] = {}

    def compile(self, node: Node) -> Convert:
        if isinstance(node, Int):
            return _int_in(node)
        if isinstance(node, Float):
            return _float_in
        if isinstance(node, Bool):
            return _bool_in
        if isinstance(node, Str):
            return _str_in
        if isinstance(node, Bytes):
            return _bytes_in(node)
        if isinstance(node, List):
            return self._list(node)
        if isinstance(node, Set):
            return self._set(node)
        if isinstance(node, Map):
            return self._map(node)
        if isinstance(node, Opt):
            inner = self.compile(node.inner)
            return lambda value: None if value is None else inner(value)
        if isinstance(node, Variant):
            return self._variant(node)
        if isinstance(node, Enum):
            return _enum_in(node)
        if isinstance(node, Ref):
            return _ref_in
        if isinstance(node, Json):
            return _same
        return self._struct(node)

    @staticmethod
    def _items(values: Any, item: Convert) -> list[Any]:
        if type(values) is not list:
            raise Invalid(f"Expected `array`, got `{kind(values)}`")
        out = []
        for i, v in enumerate(values):
            try:
                out.append(item(v))
            except Invalid as exc:
                raise _step(exc, f"[{i}]") from None
        return out

    def _set(self, node: Set) -> Convert:
        item = self.compile(node.item)

        def convert(values: Any) -> Any:
            try:
                return set(self._items(values, item))
            except TypeError:
                raise Invalid("a set item that cannot be hashed") from None

        return convert

    def _list(self, node: List) -> Convert:
        item = self.compile(node.item)
        low, high = node.min_length, node.max_length

        def convert(values: Any) -> Any:
            out = self._items(values, item)
            check_length(len(out), low, high)
            return out

        return convert

    def _map(self, node: Map) -> Convert:
        key, value = self.compile(node.key), self.compile(node.value)
        if isinstance(node.key, Str):

            def from_object(obj: Any) -> Any:
                if type(obj) is not dict:
                    raise Invalid(f"Expected `object`, got `{kind(obj)}`")
                out = {}
                for k, v in obj.items():
                    try:
                        out[k] = value(v)
                    except Invalid as exc:
                        raise _step(exc, f"[{k!r}]") from None
                return out

            return from_object

        def from_pairs(pairs: Any) -> Any:
            if type(pairs) is not list:
                raise Invalid(f"Expected `array` of [key, value] pairs, got `{kind(pairs)}`")
            out = {}
            for i, pair in enumerate(pairs):
                try:
                    if type(pair) is not list or len(pair) != 2:
                        raise Invalid(f"Expected a [key, value] pair, got `{kind(pair)}`")
                    out[key(pair[0])] = value(pair[1])
                except Invalid as exc:
                    raise _step(exc, f"[{i}]") from None
                except TypeError:
                    raise _step(Invalid("a map key that cannot be hashed"), f"[{i}]") from None
            return out

        return from_pairs

    def _variant(self, node: Variant) -> Convert:
        alternatives = {str(a.index): (a.cls, self.compile(a.node)) for a in node.alternatives}
        keys = ", ".join(f'"{k}"' for k in alternatives)

        def convert(obj: Any) -> Any:
            if type(obj) is not dict or len(obj) != 1:
                raise Invalid(
                    f"Expected a variant: an object with one key out of {keys}, got `{kind(obj)}`"
                    + (f" with {len(obj)} keys" if type(obj) is dict else "")
                )
            [(index, value)] = obj.items()
            found = alternatives.get(index)
            if found is None:
                raise Invalid(f"Expected a variant alternative out of {keys}, got {index!r}")
            cls, inner = found
            try:
                return cls(inner(value))
            except Invalid as exc:
                raise _step(exc, f"[{index!r}]") from None

        return convert

    def _struct(self, node: Struct) -> Convert:
        key = id(node)
        pending = self._structs.get(key)
        if pending is not None:
            return lambda value: pending[0](value)
        cell: list[Convert] = []
        self._structs[key] = cell
        fields = [(f.name, f.wire, f.required, self.compile(f.node)) for f in node.fields]
        cls = node.origin

        def convert(obj: Any) -> Any:
            if type(obj) is not dict:
                raise Invalid(f"Expected `object`, got `{kind(obj)}`")
            kwargs = {}
            for attr, wire, required, c in fields:
                try:
                    v = obj[wire]
                except KeyError:
                    if required:
                        raise Invalid(f"Object missing required field `{wire}`") from None
                    continue  # the class fills in the IDL default
                try:
                    kwargs[attr] = c(v)
                except Invalid as exc:
                    raise _step(exc, f".{wire}") from None
            return cls(**kwargs)

        cell.append(convert)
        return convert


def _same(value: Any) -> Any:
    return value


def _int_in(node: Int) -> Convert:
    lo, hi = node.lo, node.hi

    def convert(value: Any) -> Any:
        if type(value) is int and lo <= value <= hi:
            return value
        raise int_failure(value, node)

    return convert


def _float_in(value: Any) -> Any:
    t = type(value)
    if t is float or t is int:
        return as_float(value)
    if t is str and value in _NON_FINITE:
        return _NON_FINITE[value]
    raise Invalid(f'Expected `float` (or "NaN", "Infinity", "-Infinity"), got `{kind(value)}`')


def _bool_in(value: Any) -> Any:
    if type(value) is not bool:
        raise Invalid(f"Expected `bool`, got `{kind(value)}`")
    return value


def _str_in(value: Any) -> Any:
    if type(value) is not str:
        raise Invalid(f"Expected `str`, got `{kind(value)}`")
    return value


def _bytes_in(node: Bytes) -> Convert:
    low, high = node.min_length, node.max_length

    def convert(value: Any) -> Any:
        if type(value) is not str:
            raise Invalid(f"Expected base64-encoded `bytes`, got `{kind(value)}`")
        try:
            data = binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):
            raise Invalid("Invalid base64 encoded string") from None
        if low is not None or high is not None:
            check_length(len(data), low, high)
        return data

    return convert


def _enum_in(node: Enum) -> Convert:
    cls = enum_class(node)
    members = {wire: cls(number) for wire, number in node.values}
    numbers = {number: cls(number) for _, number in node.values}
    accepted = ", ".join(dict.fromkeys(members))

    def convert(value: Any) -> Any:
        if type(value) is str:
            member = members.get(value)
            if member is not None:
                return member
            raise Invalid(f"Expected a name of `{cls.__qualname__}` ({accepted}), got {value!r}")
        if type(value) is int:
            member = numbers.get(value)
            if member is not None:
                return member
            values = ", ".join(str(n) for n in dict.fromkeys(numbers))
            raise Invalid(
                f"Expected a name of `{cls.__qualname__}` ({accepted}) or one of its values "
                f"({values}), got {value}"
            )
        raise Invalid(f"Expected a name of `{cls.__qualname__}` ({accepted}), got `{kind(value)}`")

    return convert


def _ref_in(obj: Any) -> Any:
    if type(obj) is not dict:
        raise Invalid(f"Expected `ObjectRef` as an object, got `{kind(obj)}`")
    values = []
    for name, high in (*_REF_FIELDS, ("kind", _UINT32_MAX)):
        v = obj.get(name, 0 if name == "kind" else None)
        if v is None:
            raise Invalid(f"Object missing required field `{name}`")
        if type(v) is not int or not 0 <= v <= high:
            raise _step(Invalid(f"Expected an int in [0, {high}], got {v!r}"), f".{name}")
        values.append(v)
    return ObjectRef(*values)
