"""The binary encoding compressed with zstd, for links where bandwidth costs more than
CPU, and the guard that keeps a small frame from decompressing into a large one."""

from __future__ import annotations

import threading
from typing import Any

import zstandard

from canopy.errors import InvalidData
from canopy.wire._messages import Encoding
from canopy.wire.codecs._base import Codec, Decoder, Encoder, TypeCache
from canopy.wire.codecs._binary import BinaryCodec

DEFAULT_MAX_OUTPUT_SIZE = 16 << 20
DEFAULT_MAX_RATIO = 1000
# Outputs up to this size are never refused for their ratio: a small payload of
# zeros compresses far beyond any ratio bound and is no threat.
RATIO_FLOOR = 1 << 20


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
        self.max_output_size = max_output_size
        self.max_ratio = max_ratio
        self._binary = binary if binary is not None else BinaryCodec()
        # zstd contexts are not thread-safe; each thread gets its own pair.
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
        limit = min(self.max_output_size, max(len(data) * self.max_ratio, RATIO_FLOOR))
        try:
            declared = zstandard.frame_content_size(data)
        except zstandard.ZstdError as exc:
            raise InvalidData(f"cannot decompress: {exc}") from None
        if declared > limit:
            raise InvalidData(self._too_large(len(data), declared, "declares"))
        decompressor: zstandard.ZstdDecompressor | None = getattr(self._local, "decompressor", None)
        if decompressor is None:
            decompressor = zstandard.ZstdDecompressor(max_window_size=self._window())
            self._local.decompressor = decompressor
        try:
            # With a declared size zstd allocates exactly that (checked above); without
            # one, max_output_size caps the buffer and a longer frame fails.
            return decompressor.decompress(data, max_output_size=limit, allow_extra_data=False)
        except zstandard.ZstdError as exc:
            if "did not decompress full frame" in str(exc) and declared < 0:
                raise InvalidData(
                    self._too_large(len(data), limit + 1, "expands to over")
                ) from None
            raise InvalidData(f"cannot decompress: {exc}") from None

    def _window(self) -> int:
        # A window larger than the largest output helps no legitimate frame.
        window = 1 << 10
        while window < self.max_output_size:
            window <<= 1
        return window

    def _too_large(self, size: int, output: int, verb: str) -> str:
        return (
            f"a zstd frame of {size} bytes {verb} {output} bytes, beyond the limit of "
            f"{self.max_output_size} bytes or {self.max_ratio} times its size"
        )

    def _build_encoder(self, type: Any) -> Encoder:
        inner = self._binary.encoder(type)
        compress = self.compress
        return lambda value: compress(inner(value))

    def _build_decoder(self, type: Any) -> Decoder:
        inner = self._binary.decoder(type)
        decompress = self.decompress
        return lambda data: inner(decompress(data))
