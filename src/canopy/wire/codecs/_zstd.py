"""The binary encoding compressed with zstd, for links where bandwidth costs more than
CPU, guarded by ``canopy._zstd_guard`` (shared with the zstd stream layer) against a
small frame that decompresses into a large one."""

from __future__ import annotations

import threading
from typing import Any

import zstandard

from canopy._zstd_guard import (
    DEFAULT_MAX_OUTPUT_SIZE,
    DEFAULT_MAX_RATIO,
    RATIO_FLOOR,
    FrameRefused,
    ZstdGuard,
)
from canopy.errors import InvalidData
from canopy.wire._messages import Encoding
from canopy.wire.codecs._base import Codec, Decoder, Encoder, TypeCache
from canopy.wire.codecs._binary import BinaryCodec

# The limits' defaults are importable from here as they were before the guard moved out.
__all__ = ["DEFAULT_MAX_OUTPUT_SIZE", "DEFAULT_MAX_RATIO", "RATIO_FLOOR", "BinaryZstdCodec"]


class BinaryZstdCodec:
    """The binary encoding compressed with zstd, guarded against decompression bombs.

    A frame is refused (``InvalidData``) when its declared or actual output exceeds
    ``max_output_size``, or exceeds ``max_ratio`` times its compressed size once
    the output is past ``RATIO_FLOOR``; the output buffer is never larger than
    that limit, so a bomb costs nothing to refuse. Both are security limits.
    """

    encoding = Encoding.BINARY_ZSTD

    def __init__(
        self,
        *,
        level: int = 3,
        max_output_size: int = DEFAULT_MAX_OUTPUT_SIZE,
        max_ratio: int = DEFAULT_MAX_RATIO,
        binary: Codec | None = None,
    ) -> None:
        self.level = level
        self._guard = ZstdGuard(max_output_size=max_output_size, max_ratio=max_ratio)
        self._binary = binary if binary is not None else BinaryCodec()
        # zstd contexts are not thread-safe; each thread gets its own compressor (the
        # guard keeps a decompressor per thread likewise).
        self._local = threading.local()
        self._encoders: TypeCache[Encoder] = TypeCache(self._build_encoder)
        self._decoders: TypeCache[Decoder] = TypeCache(self._build_decoder)

    def encoder(self, type: Any) -> Encoder:
        return self._encoders.get(type)

    def decoder(self, type: Any) -> Decoder:
        return self._decoders.get(type)

    def compress(self, data: bytes) -> bytes:
        compressor: zstandard.ZstdCompressor | None = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = self._local.compressor = zstandard.ZstdCompressor(level=self.level)
        return compressor.compress(data)

    def decompress(self, data: bytes | memoryview) -> bytes:
        """The frame's content, or ``InvalidData`` if it is malformed or too large."""
        try:
            return self._guard.decompress(data)
        except FrameRefused as exc:
            raise InvalidData(str(exc)) from None

    # The limits live in the guard, which reads them on every frame.
    @property
    def max_output_size(self) -> int:
        return self._guard.max_output_size

    @max_output_size.setter
    def max_output_size(self, value: int) -> None:
        self._guard.max_output_size = value

    @property
    def max_ratio(self) -> int:
        return self._guard.max_ratio

    @max_ratio.setter
    def max_ratio(self, value: int) -> None:
        self._guard.max_ratio = value

    def _build_encoder(self, type: Any) -> Encoder:
        inner = self._binary.encoder(type)
        compress = self.compress
        return lambda value: compress(inner(value))

    def _build_decoder(self, type: Any) -> Decoder:
        inner = self._binary.decoder(type)
        decompress = self.decompress
        return lambda data: inner(decompress(data))
