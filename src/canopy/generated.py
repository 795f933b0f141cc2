"""What generated modules import: integer-width aliases, variant alternatives, the
interface and method metadata records, the ``Interface`` base, and typed
``encode``/``decode``/``validate`` that refuse values outside their IDL types.

Generated code imports only this module (as ``_cg``) besides the standard library,
so that its import block sorts the same way whatever a project's isort settings
say about ``msgspec`` or ``canopy``; hence the re-exports of ``msgspec`` names.

Integer widths. ``msgspec.Meta`` bounds must fit in an int64, so ``int8`` to
``int64`` and ``uint8`` to ``uint32`` carry their whole range in ``Meta``, while
``uint64``, ``int128`` and ``uint128`` carry what fits (``ge=0``). Every alias
carries its name in ``Meta.extra["canopy_int"]``, and ``float32`` (IDL
``float``, as opposed to ``double``) carries ``Meta.extra["canopy_float"]``: the
codecs in ``canopy.wire.codecs`` read the exact widths there and check every
integer against ``INTEGER_RANGES`` when encoding and decoding. A 128-bit value
is a plain ``int`` in memory; each encoding documents how it carries one.
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

from msgspec import Meta as Meta
from msgspec import Struct as Struct
from msgspec import field as field
from typing_extensions import deprecated as deprecated

from canopy.errors import ApplicationError as ApplicationError

if TYPE_CHECKING:
    from canopy.wire.codecs import Codec

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
    "float32",
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
# IDL ``float``: a Python float, carried as 32 bits where an encoding has the choice.
float32: TypeAlias = Annotated[float, Meta(extra={"canopy_float": "float"})]

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
    """One IDL interface: its fingerprint, qualified name, bases and own methods.

    ``schemas`` is the JSON Schema of each own method's inputs and outputs, as JSON
    text that ``canopy.codegen.schema`` computed from the IDL when the module was
    generated (``{"mcp": {"<method id>": {"inputs": .., "outputs": ..}}, "config":
    ..}``): what an object tells a caller who asks it to describe itself.
    ``deprecated`` is the deprecation message, or None.
    """

    id: int
    name: str
    bases: tuple[InterfaceInfo, ...]
    methods: tuple[MethodInfo, ...]
    description: str | None = None
    status: str | None = None
    deprecated: str | None = None
    schemas: str = ""


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

Encoding = Literal["binary", "binary_zstd", "json", "protobuf"]


def encode(value: Any, encoding: Encoding | int = "binary", *, type: Any = None) -> bytes:
    """``value`` as bytes, refused with ``InvalidData`` if it does not fit its type.

    ``type`` defaults to the value's class; pass it for values whose class does
    not say their IDL type (``encode(7, type=uint8)``). ``encoding`` is a name or
    a ``canopy.wire.Encoding``; every encoding goes through the codecs calls use.
    """
    target = value.__class__ if type is None else type
    try:
        found = _encoders[encoding, target]
    except (KeyError, TypeError):
        found = _remember(_encoders, encoding, target, lambda c: c.encoder(target))
    return found(value)


@_overload
def decode(type: type[T], data: bytes, encoding: Encoding | int = "binary") -> T: ...
@_overload
def decode(type: Any, data: bytes, encoding: Encoding | int = "binary") -> Any: ...
def decode(type: Any, data: bytes, encoding: Encoding | int = "binary") -> Any:
    """``data`` decoded as ``type``, refused with ``InvalidData`` if it does not fit."""
    try:
        found = _decoders[encoding, type]
    except (KeyError, TypeError):
        found = _remember(_decoders, encoding, type, lambda c: c.decoder(type))
    return found(data)


def validate(value: Any, type: Any = None) -> None:
    """Raise ``InvalidData`` unless ``value`` fits ``type`` (default: its class).

    Every field is checked, as the JSON encoding would; an interface field may
    hold an interface object or an ``ObjectRef``.
    """
    from canopy.wire.codecs import validate as check

    check(value, value.__class__ if type is None else type)


# (encoding, type) -> the codec's function: one dict lookup per call, as the
# runtime has by holding the function itself.
_encoders: dict[tuple[Any, Any], Callable[[Any], bytes]] = {}
_decoders: dict[tuple[Any, Any], Callable[[bytes], Any]] = {}
_MAX_REMEMBERED = 4096  # a bound against types made on the fly

F = TypeVar("F")


def _remember(
    table: dict[tuple[Any, Any], F], encoding: Encoding | int, type: Any, get: Callable[[Codec], F]
) -> F:
    # canopy.wire.codecs reads this module's types, so it is imported on first use.
    from canopy.wire.codecs import codec

    found = get(codec(encoding))
    try:
        table[encoding, type] = found
    except TypeError:  # an unhashable type is served, just not remembered
        return found
    if len(table) > _MAX_REMEMBERED:
        table.pop(next(iter(table)))
    return found
