"""Payload encodings: one ``Codec`` per ``Encoding``, each giving typed encoders and
decoders built once per type. The runtime negotiates an encoding per link and may
override it per call; ``codec()`` finds the shared instance for any spelling of one.

``binary`` is MessagePack, ``binary_zstd`` the same compressed with zstd (with a
decompression-bomb guard), ``json`` the JSON profile other languages speak, and
``protobuf`` the messages of the .proto files ``canopy generate --proto`` writes.
The protobuf and zstd modules load on first use.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from canopy.wire._messages import Encoding, unwrap_payload, wrap_payload
from canopy.wire.codecs._base import Codec, Decoder, Encoder

if TYPE_CHECKING:
    from canopy.wire.codecs._binary import BinaryCodec
    from canopy.wire.codecs._json import JsonCodec
    from canopy.wire.codecs._protobuf import ProtobufCodec
    from canopy.wire.codecs._zstd import BinaryZstdCodec

__all__ = [
    "BinaryCodec",
    "BinaryZstdCodec",
    "Codec",
    "Decoder",
    "Encoder",
    "JsonCodec",
    "ProtobufCodec",
    "codec",
    "encoding_of",
    "payload_codec",
    "validate",
]

_NAMES = {
    "binary": Encoding.BINARY,
    "binary_zstd": Encoding.BINARY_ZSTD,
    "json": Encoding.JSON,
    "protobuf": Encoding.PROTOBUF,
}
_codecs: dict[Encoding, Codec] = {}
_lock = threading.Lock()


def encoding_of(encoding: Encoding | int | str) -> Encoding:
    """The ``Encoding`` named by an enum member, its number or its name."""
    if isinstance(encoding, str):
        found = _NAMES.get(encoding.lower())
        if found is not None:
            return found
    elif isinstance(encoding, int) and not isinstance(encoding, bool):
        try:
            return Encoding(encoding)
        except ValueError:
            pass
    names = ", ".join(repr(n) for n in _NAMES)
    raise ValueError(f"unknown encoding {encoding!r}: use {names} or a canopy.wire.Encoding")


def codec(encoding: Encoding | int | str) -> Codec:
    """The shared codec of ``encoding`` (``"binary"``, ``Encoding.JSON``, ``16``...)."""
    if encoding.__class__ is Encoding:  # the runtime's case, once per call: one lookup
        ready = _codecs.get(encoding)
        if ready is not None:
            return ready
    key = encoding_of(encoding)
    found = _codecs.get(key)
    if found is None:
        with _lock:
            found = _codecs.get(key)
            if found is None:
                found = _codecs[key] = _make(key)
    return found


def _make(encoding: Encoding) -> Codec:
    # Imported here so that protobuf and zstandard load only for a link that uses them.
    if encoding is Encoding.BINARY:
        from canopy.wire.codecs._binary import BinaryCodec

        return BinaryCodec()
    if encoding is Encoding.BINARY_ZSTD:
        from canopy.wire.codecs._zstd import BinaryZstdCodec

        # Shares binary's per-type encoders and decoders (the lock is held here).
        binary = _codecs.get(Encoding.BINARY)
        if binary is None:
            binary = _codecs[Encoding.BINARY] = _make(Encoding.BINARY)
        return BinaryZstdCodec(binary=binary)
    if encoding is Encoding.JSON:
        from canopy.wire.codecs._json import JsonCodec

        return JsonCodec()
    from canopy.wire.codecs._protobuf import ProtobufCodec

    return ProtobufCodec()


PayloadCodec = tuple[Callable[[Any], msgspec.Raw], Callable[[msgspec.Raw], Any]]
_payloads: dict[tuple[Encoding, Any], PayloadCodec] = {}


def payload_codec(encoding: Encoding, type: Any) -> PayloadCodec:
    """How a value of ``type`` goes into a message payload and comes out of one, in
    ``encoding`` (see ``wrap_payload``): built once, then one lookup per call."""
    key = (encoding, type)
    found = _payloads.get(key)
    if found is None:
        c = codec(encoding)
        encode, decode = c.encoder(type), c.decoder(type)
        if encoding is Encoding.BINARY:
            # MessagePack sits in the message as it is, and is read where it lies.
            found = (lambda value: msgspec.Raw(encode(value)), decode)
        else:
            found = (
                lambda value: wrap_payload(encoding, encode(value)),
                lambda payload: decode(unwrap_payload(encoding, payload)),
            )
        _payloads[key] = found
    return found


def validate(value: Any, type: Any) -> None:
    """``InvalidData`` unless every field of ``value`` fits ``type``; interface fields may
    hold interface objects as well as ``ObjectRef``s."""
    from canopy.wire.codecs._json import validate as check

    check(value, type)


_CLASSES = {
    "BinaryCodec": "_binary",
    "BinaryZstdCodec": "_zstd",
    "JsonCodec": "_json",
    "ProtobufCodec": "_protobuf",
}


def __getattr__(name: str) -> Any:
    # The codec classes, to build one with other limits, without loading protobuf or
    # zstandard before they are asked for.
    module = _CLASSES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
