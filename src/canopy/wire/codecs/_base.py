"""What every codec shares: the ``Codec`` protocol the runtime calls, the per-type cache
of built encoders and decoders, and the failure that carries a field path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from canopy.errors import InvalidData, RpcError
from canopy.wire._messages import Encoding
from canopy.wire.codecs._schema import Node, describe

V = TypeVar("V")

Encoder = Callable[[Any], bytes]
Decoder = Callable[[bytes | memoryview], Any]


class Codec(Protocol):
    """One wire encoding: typed encoders and decoders, built once per type and cached.

    ``type`` is any generated type: a struct class (a method's ``in_type`` or
    ``out_type`` record included) or a type expression (``list[int]``,
    ``canopy.generated.uint32``). Interface-typed fields hold ``ObjectRef`` values
    at this layer. Both directions raise ``InvalidData`` for a value or payload
    that does not fit the type, naming the path to the offending field; a type
    the codec cannot describe raises ``TypeError`` when its encoder is asked for.
    """

    encoding: Encoding

    def encoder(self, type: Any) -> Encoder: ...

    def decoder(self, type: Any) -> Decoder: ...


class Invalid(Exception):
    """A value that does not fit its type; containers add their step of ``path``
    as the exception unwinds through them, innermost first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def error(self, verb: str, name: str) -> RpcError:
        """The ``InvalidData`` to raise, its message ending with the path."""
        where = f" - at `${''.join(reversed(self.path))}`" if self.path else ""
        return InvalidData(f"cannot {verb} {name}: {self.message}{where}")


class TypeCache(Generic[V]):
    """What a codec builds per type, kept so that a call costs one dict lookup.

    Type expressions are rebuilt by callers (``list[int]`` twice are equal but not
    identical), so the key is the type's hash; an unhashable type is built every
    time. The bound keeps types made on the fly from growing the cache forever.
    """

    def __init__(self, build: Callable[[Any], V], limit: int = 4096) -> None:
        self._build = build
        self._items: dict[Any, V] = {}
        self._limit = limit

    def get(self, type: Any) -> V:
        try:
            return self._items[type]
        except KeyError:
            built = self._items[type] = self._build(type)
            if len(self._items) > self._limit:
                self._items.pop(next(iter(self._items)))
            return built
        except TypeError:
            return self._build(type)


def type_name(t: Any, node: Node) -> str:
    """How errors name a type: a struct by its class name, anything else by its shape
    (``uint32``, ``list[string]``)."""
    return t.__qualname__ if isinstance(t, type) else describe(node)
