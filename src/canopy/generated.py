"""What generated modules import: integer-width aliases, variant alternatives, the
interface and method metadata records, the ``Interface`` base, and typed
``encode``/``decode``/``validate`` that refuse values outside their IDL types.

Generated code imports only this module (as ``_cg``) besides the standard library,
so that its import block sorts the same way whatever a project's isort settings
say about ``msgspec`` or ``canopy``; hence the re-exports of ``msgspec`` names.

Integer widths. ``msgspec.Meta`` bounds must fit in an int64, so ``int8`` to
``int64`` and ``uint8`` to ``uint32`` carry their whole range in ``Meta``, while
``uint64``, ``int128`` and ``uint128`` carry what fits (``ge=0``) plus their
name in ``Meta.extra["canopy_int"]``; ``encode``, ``decode`` and ``validate``
check those three against ``INTEGER_RANGES`` themselves. Every alias carries
``canopy_int`` so that schema generators can read the exact width. A 128-bit
value is a plain ``int`` in memory; the binary encoding (msgpack) carries only
64 bits, so a 128-bit value beyond that is refused there until the wire layer
gives it a representation; JSON carries it as a number.
"""

from __future__ import annotations

import abc
import functools
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Literal, TypeAlias, TypeVar
from typing import overload as _overload

import msgspec
import msgspec.inspect as _mi
from msgspec import Meta as Meta
from msgspec import Struct as Struct
from msgspec import field as field
from typing_extensions import deprecated as deprecated

from canopy.errors import ApplicationError as ApplicationError
from canopy.errors import InvalidData

__all__ = [
    "INTEGER_RANGES",
    "MAX_VARIANT_ALTERNATIVES",
    "Alt0",
    "Alt1",
    "Alt2",
    "Alt3",
    "Alt4",
    "Alt5",
    "Alt6",
    "Alt7",
    "Alt8",
    "Alt9",
    "Alt10",
    "Alt11",
    "Alt12",
    "Alt13",
    "Alt14",
    "Alt15",
    "ApplicationError",
    "Encoding",
    "Interface",
    "InterfaceInfo",
    "JsonValue",
    "Meta",
    "MethodInfo",
    "Ref",
    "Struct",
    "decode",
    "define_error_codes",
    "deprecated",
    "encode",
    "field",
    "int8",
    "int16",
    "int32",
    "int64",
    "int128",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "uint128",
    "validate",
]

T = TypeVar("T")

INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-(1 << 7), (1 << 7) - 1),
    "uint8": (0, (1 << 8) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "uint16": (0, (1 << 16) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "uint32": (0, (1 << 32) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint64": (0, (1 << 64) - 1),
    "int128": (-(1 << 127), (1 << 127) - 1),
    "uint128": (0, (1 << 128) - 1),
}

# The widths whose bounds msgspec cannot hold; checked by ``_wide_checker``.
_WIDE = frozenset({"uint64", "int128", "uint128"})

int8: TypeAlias = Annotated[int, Meta(ge=-(1 << 7), le=(1 << 7) - 1, extra={"canopy_int": "int8"})]
uint8: TypeAlias = Annotated[int, Meta(ge=0, le=(1 << 8) - 1, extra={"canopy_int": "uint8"})]
int16: TypeAlias = Annotated[
    int, Meta(ge=-(1 << 15), le=(1 << 15) - 1, extra={"canopy_int": "int16"})
]
uint16: TypeAlias = Annotated[int, Meta(ge=0, le=(1 << 16) - 1, extra={"canopy_int": "uint16"})]
int32: TypeAlias = Annotated[
    int, Meta(ge=-(1 << 31), le=(1 << 31) - 1, extra={"canopy_int": "int32"})
]
uint32: TypeAlias = Annotated[int, Meta(ge=0, le=(1 << 32) - 1, extra={"canopy_int": "uint32"})]
int64: TypeAlias = Annotated[
    int, Meta(ge=-(1 << 63), le=(1 << 63) - 1, extra={"canopy_int": "int64"})
]
uint64: TypeAlias = Annotated[int, Meta(ge=0, extra={"canopy_int": "uint64"})]
int128: TypeAlias = Annotated[int, Meta(extra={"canopy_int": "int128"})]
uint128: TypeAlias = Annotated[int, Meta(ge=0, extra={"canopy_int": "uint128"})]

if TYPE_CHECKING:
    JsonValue: TypeAlias = (
        dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None
    )
else:
    # msgspec cannot build a decoder for a recursive alias, so at run time the
    # top level is checked and nested values are taken as they come.
    JsonValue = dict[str, Any] | list[Any] | str | int | float | bool | None


# ``rpc::variant<A, B, ...>`` is ``Alt0[A] | Alt1[B] | ...``: a tagged union that
# keeps the alternative's index (on the wire ``[index, value]``), so that two
# alternatives of the same Python type (``int32_t`` and ``int64_t``) stay apart.
class Alt0(Struct, Generic[T], frozen=True, array_like=True, tag=0):
    """Alternative 0 of an ``rpc::variant``; ``Alt1`` to ``Alt15`` are the others."""

    value: T


class Alt1(Struct, Generic[T], frozen=True, array_like=True, tag=1):
    value: T


class Alt2(Struct, Generic[T], frozen=True, array_like=True, tag=2):
    value: T


class Alt3(Struct, Generic[T], frozen=True, array_like=True, tag=3):
    value: T


class Alt4(Struct, Generic[T], frozen=True, array_like=True, tag=4):
    value: T


class Alt5(Struct, Generic[T], frozen=True, array_like=True, tag=5):
    value: T


class Alt6(Struct, Generic[T], frozen=True, array_like=True, tag=6):
    value: T


class Alt7(Struct, Generic[T], frozen=True, array_like=True, tag=7):
    value: T


class Alt8(Struct, Generic[T], frozen=True, array_like=True, tag=8):
    value: T


class Alt9(Struct, Generic[T], frozen=True, array_like=True, tag=9):
    value: T


class Alt10(Struct, Generic[T], frozen=True, array_like=True, tag=10):
    value: T


class Alt11(Struct, Generic[T], frozen=True, array_like=True, tag=11):
    value: T


class Alt12(Struct, Generic[T], frozen=True, array_like=True, tag=12):
    value: T


class Alt13(Struct, Generic[T], frozen=True, array_like=True, tag=13):
    value: T


class Alt14(Struct, Generic[T], frozen=True, array_like=True, tag=14):
    value: T


class Alt15(Struct, Generic[T], frozen=True, array_like=True, tag=15):
    value: T


MAX_VARIANT_ALTERNATIVES = 16


class Ref(Enum):
    """How an interface pointer in a struct holds its object (``Annotated`` metadata)."""

    SHARED = "rpc::shared_ptr"
    OPTIMISTIC = "rpc::optimistic_ptr"


@dataclass(frozen=True, slots=True)
class MethodInfo:
    """One IDL method, as the runtime needs it to build proxies and stubs.

    ``in_type`` and ``out_type`` are ``array_like`` structs holding the
    ``[in]``/``[in, out]`` and the ``[out]``/``[in, out]`` values in declaration
    order. ``deprecated`` is the deprecation message, or None.
    """

    id: int  # 1-based declaration order within the interface
    name: str  # as written in the IDL
    python_name: str  # the attribute on the class (differs only for Python keywords)
    in_names: tuple[str, ...]
    out_names: tuple[str, ...]
    in_type: type[Struct]
    out_type: type[Struct]
    post: bool = False
    tag: int = 0
    const: bool = False
    deprecated: str | None = None
    description: str | None = None
    raises: type[ApplicationError] | None = None  # the error domain the method returns


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    """One IDL interface: its fingerprint, qualified name, bases and own methods."""

    id: int
    name: str
    bases: tuple[InterfaceInfo, ...]
    methods: tuple[MethodInfo, ...]
    description: str | None = None
    status: str | None = None


class Interface(abc.ABC):
    """Base of every generated interface class.

    An implementation's override of a method that the IDL marks ``[deprecated]``
    is wrapped so that calling it warns, as calling the abstract method would.
    """

    __canopy__: ClassVar[InterfaceInfo]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for klass in cls.__mro__:
            info = vars(klass).get("__canopy__")
            if not isinstance(info, InterfaceInfo):
                continue
            for method in info.methods:
                own = vars(cls).get(method.python_name)
                if (
                    method.deprecated is not None
                    and inspect.isfunction(own)
                    and not hasattr(own, "__deprecated__")
                ):
                    setattr(cls, method.python_name, _warn_on_call(own, method.deprecated))


def _warn_on_call(func: Callable[..., Any], message: str) -> Callable[..., Any]:
    # typing_extensions.deprecated would hide that an override is ``async def``.
    wrapper: Callable[..., Any]
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            return await func(*args, **kwargs)

        wrapper = async_wrapper
    else:

        @functools.wraps(func)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            return func(*args, **kwargs)

        wrapper = sync_wrapper
    vars(wrapper)["__deprecated__"] = message  # as typing_extensions.deprecated marks it
    return wrapper


E = TypeVar("E", bound=ApplicationError)


def define_error_codes(domain: type[E], codes: type[IntEnum]) -> None:
    """Give an error domain one subclass per code (``domain.OVERFLOW``) and ``_by_code``."""
    by_code: dict[int, type[E]] = {}
    for code in codes:
        sub = type(
            code.name,
            (domain,),
            {
                "code": code,
                "__qualname__": f"{domain.__qualname__}.{code.name}",
                "__module__": domain.__module__,
                "__doc__": f"``{domain.domain}::{code.name}`` (code {int(code)}).",
            },
        )
        setattr(domain, code.name, sub)
        by_code[int(code)] = sub
    domain._by_code = by_code  # type: ignore[attr-defined]


# ---------------------------------------------------------------- encoding

Encoding = Literal["binary", "json"]


@dataclass(frozen=True, slots=True)
class _Codec:
    """What encoding or decoding one type needs, built once per (type, encoding)."""

    encode: Callable[[Any], bytes]
    decoder: msgspec.msgpack.Decoder[Any] | msgspec.json.Decoder[Any]
    wide: Checker | None


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "binary": msgspec.msgpack.Encoder().encode,
    "json": msgspec.json.Encoder().encode,
}
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "binary": msgspec.msgpack.Decoder,
    "json": msgspec.json.Decoder,
}
_codecs: dict[tuple[Any, str], _Codec] = {}
_MAX_CODECS = 4096


def _codec(type: Any, encoding: str) -> _Codec:
    try:
        return _codecs[type, encoding]
    except KeyError:
        codec = _codecs[type, encoding] = _build_codec(type, encoding)
        if len(_codecs) > _MAX_CODECS:  # a bound against types made on the fly
            _codecs.pop(next(iter(_codecs)))
        return codec
    except TypeError:  # an unhashable type is served, just not cached
        return _build_codec(type, encoding)


def _build_codec(type: Any, encoding: str) -> _Codec:
    if encoding not in _ENCODERS:
        raise ValueError(f"unknown encoding {encoding!r}: use 'binary' or 'json'")
    return _Codec(_ENCODERS[encoding], _DECODERS[encoding](type), _wide_checker(type))


def encode(value: Any, encoding: Encoding = "binary", *, type: Any = None) -> bytes:
    """``value`` as bytes, refused with ``InvalidData`` if it does not fit its type.

    ``type`` defaults to the value's class; pass it for values whose class does
    not say their IDL type (``encode(7, type=uint8)``). The bytes are decoded
    again with the typed decoder, which is what checks the ``Meta`` constraints:
    one extra decode is cheaper than any walk over the value in Python.
    """
    target = value.__class__ if type is None else type
    codec = _codec(target, encoding)
    if codec.wide is not None:
        _check_wide(codec.wide, target, value, "encode")
    try:
        data = codec.encode(value)
    except OverflowError as exc:
        raise InvalidData(
            f"cannot encode {_type_name(target)}: {exc} (the binary encoding carries "
            "integers of at most 64 bits)"
        ) from exc
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidData(f"cannot encode {_type_name(target)}: {exc}") from exc
    try:
        codec.decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise InvalidData(f"cannot encode {_type_name(target)}: {exc}") from None
    return data


@_overload
def decode(type: type[T], data: bytes, encoding: Encoding = "binary") -> T: ...
@_overload
def decode(type: Any, data: bytes, encoding: Encoding = "binary") -> Any: ...
def decode(type: Any, data: bytes, encoding: Encoding = "binary") -> Any:
    """``data`` decoded as ``type``, refused with ``InvalidData`` if it does not fit."""
    codec = _codec(type, encoding)
    try:
        value = codec.decoder.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise InvalidData(f"cannot decode {_type_name(type)}: {exc}") from None
    if codec.wide is not None:
        _check_wide(codec.wide, type, value, "decode")
    return value


def validate(value: Any, type: Any = None) -> None:
    """Raise ``InvalidData`` unless ``value`` fits ``type`` (default: its class)."""
    target = value.__class__ if type is None else type
    wide = _codec(target, "binary").wide
    if wide is not None:
        _check_wide(wide, target, value, "validate")
    try:
        msgspec.convert(msgspec.to_builtins(value, builtin_types=(bytes,)), target)
    except (TypeError, msgspec.ValidationError) as exc:
        raise InvalidData(f"cannot validate {_type_name(target)}: {exc}") from None


def _type_name(t: Any) -> str:
    return getattr(t, "__qualname__", None) or repr(t)


# ---------------------------------------------------------------- wide integers
#
# A checker walks only the parts of a value whose type holds a uint64, int128 or
# uint128; types without them get no checker, so the common case costs one
# cached lookup. An error unwinds through the containers, each adding its step
# of the path, so the message says where the value sits, as msgspec's do.

Checker = Callable[[Any], None]


class _OutOfRange(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []


def _check_wide(checker: Checker, type: Any, value: Any, verb: str) -> None:
    try:
        checker(value)
    except _OutOfRange as exc:
        where = "$" + "".join(reversed(exc.path))
        raise InvalidData(
            f"cannot {verb} {_type_name(type)}: {exc.message} - at `{where}`"
        ) from None


def _wide_checker(type: Any) -> Checker | None:
    try:
        info = _mi.type_info(type)
    except (TypeError, ValueError):  # not a type msgspec knows: nothing to check
        return None
    return _WideCompiler().compile(info)


class _WideCompiler:
    def __init__(self) -> None:
        # Struct types being compiled, for recursive structs: a cell filled in later.
        self._structs: dict[int, list[Checker | None]] = {}

    def compile(self, t: _mi.Type) -> Checker | None:
        if isinstance(t, _mi.Metadata):
            inner = self.compile(t.type)
            width = (t.extra or {}).get("canopy_int")
            if width in _WIDE:
                return _range_check(width, inner)
            return inner
        if isinstance(t, _mi.ListType | _mi.SetType | _mi.FrozenSetType | _mi.VarTupleType):
            return _each(self.compile(t.item_type))
        if isinstance(t, _mi.TupleType):
            return _positions([self.compile(item) for item in t.item_types])
        if isinstance(t, _mi.DictType):
            return _items(self.compile(t.key_type), self.compile(t.value_type))
        if isinstance(t, _mi.UnionType):
            return _union([(_matcher(alt), self.compile(alt)) for alt in t.types])
        if isinstance(t, _mi.StructType):
            return self._struct(t)
        return None

    def _struct(self, t: _mi.StructType) -> Checker | None:
        key = id(t)
        pending = self._structs.get(key)
        if pending is not None:
            # A recursive reference: resolve through the cell once it is filled.
            return lambda value: pending[0](value) if pending[0] is not None else None
        cell: list[Checker | None] = [None]
        self._structs[key] = cell
        fields = [(f.name, f.encode_name, self.compile(f.type)) for f in t.fields]
        checked = [(name, wire, c) for name, wire, c in fields if c is not None]
        if not checked:
            return None

        def check(value: Any) -> None:
            for name, wire, c in checked:
                try:
                    c(getattr(value, name))
                except _OutOfRange as exc:
                    exc.path.append(f".{wire}")
                    raise

        cell[0] = check
        return check


def _range_check(width: str, inner: Checker | None) -> Checker:
    lo, hi = INTEGER_RANGES[width]

    def check(value: Any) -> None:
        if isinstance(value, int) and not lo <= value <= hi:
            raise _OutOfRange(f"Expected `{width}` in [{lo}, {hi}], got {value}")
        if inner is not None:
            inner(value)

    return check


def _each(c: Checker | None) -> Checker | None:
    if c is None:
        return None

    def check(values: Any) -> None:
        for i, v in enumerate(values):
            try:
                c(v)
            except _OutOfRange as exc:
                exc.path.append(f"[{i}]")
                raise

    return check


def _positions(checkers: list[Checker | None]) -> Checker | None:
    if all(c is None for c in checkers):
        return None

    def check(values: Any) -> None:
        for i, (c, v) in enumerate(zip(checkers, values, strict=False)):
            if c is not None:
                try:
                    c(v)
                except _OutOfRange as exc:
                    exc.path.append(f"[{i}]")
                    raise

    return check


def _items(key: Checker | None, value: Checker | None) -> Checker | None:
    if key is None and value is None:
        return None

    def check(mapping: Any) -> None:
        for k, v in mapping.items():
            try:
                if key is not None:
                    key(k)
                if value is not None:
                    value(v)
            except _OutOfRange as exc:
                exc.path.append(f"[{k!r}]")
                raise

    return check


def _union(alternatives: list[tuple[Callable[[Any], bool], Checker | None]]) -> Checker | None:
    # msgspec allows at most one alternative per kind of value (tagged structs
    # aside, which differ by class), so the first alternative that matches is it.
    if all(c is None for _, c in alternatives):
        return None

    def check(value: Any) -> None:
        for matches, c in alternatives:
            if matches(value):
                if c is not None:
                    c(value)
                return

    return check


def _matcher(t: _mi.Type) -> Callable[[Any], bool]:
    while isinstance(t, _mi.Metadata):
        t = t.type
    if isinstance(t, _mi.StructType):
        cls = getattr(t.cls, "__origin__", t.cls)  # Alt0[int] -> Alt0
        return lambda v: isinstance(v, cls)
    if isinstance(t, _mi.IntType):
        return lambda v: isinstance(v, int) and not isinstance(v, bool)
    if isinstance(t, _mi.ListType | _mi.VarTupleType | _mi.TupleType):
        return lambda v: isinstance(v, list | tuple)
    if isinstance(t, _mi.SetType | _mi.FrozenSetType):
        return lambda v: isinstance(v, set | frozenset)
    if isinstance(t, _mi.DictType):
        return lambda v: isinstance(v, dict)
    return lambda v: False
