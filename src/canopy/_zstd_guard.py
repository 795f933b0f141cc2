"""The zstd decompression-bomb guard shared by the ``binary_zstd`` codec and the zstd
stream layer: a frame is decompressed into a buffer no larger than its limits allow,
so refusing a small frame that would expand into a large one costs nothing."""

from __future__ import annotations

import threading

import zstandard

DEFAULT_MAX_OUTPUT_SIZE = 16 << 20
DEFAULT_MAX_RATIO = 1000
# Outputs up to this size are never refused for their ratio: a small payload of
# zeros compresses far beyond any ratio bound and is no threat.
RATIO_FLOOR = 1 << 20


class FrameRefused(ValueError):
    """A zstd frame that is malformed (``limit`` is None) or that would pass a limit
    (``limit`` names it: ``"max_output_size"`` or ``"max_ratio"``)."""

    def __init__(self, message: str, limit: str | None = None) -> None:
        super().__init__(message)
        self.limit = limit


class ZstdGuard:
    """Decompresses single zstd frames within security limits.

    A frame is refused when its declared or actual output exceeds
    ``max_output_size``, or exceeds ``max_ratio`` times its compressed size once
    the output is past ``RATIO_FLOOR``. A declared size is checked before anything
    is allocated; a frame without one gets a buffer of the limit and fails when it
    would overflow it. Safe to share between threads: each has its own context.
    """

    def __init__(
        self,
        *,
        max_output_size: int = DEFAULT_MAX_OUTPUT_SIZE,
        max_ratio: int = DEFAULT_MAX_RATIO,
    ) -> None:
        self.max_output_size = max_output_size
        self.max_ratio = max_ratio
        # zstd contexts are not thread-safe; each thread gets its own.
        self._local = threading.local()

    def decompress(self, data: bytes | bytearray | memoryview) -> bytes:
        """The content of the single frame ``data``, or ``FrameRefused``."""
        size = len(data)
        limit = min(self.max_output_size, max(size * self.max_ratio, RATIO_FLOOR))
        try:
            declared = zstandard.frame_content_size(data)
        except zstandard.ZstdError as exc:
            raise FrameRefused(f"cannot decompress: {exc}") from None
        if declared > limit:
            raise self._too_large(size, declared, "declares")
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
                raise self._too_large(size, limit + 1, "expands to over") from None
            raise FrameRefused(f"cannot decompress: {exc}") from None

    def _window(self) -> int:
        # A window larger than the largest output helps no legitimate frame.
        window = 1 << 10
        while window < self.max_output_size:
            window <<= 1
        return window

    def _too_large(self, size: int, output: int, verb: str) -> FrameRefused:
        return FrameRefused(
            f"a zstd frame of {size} bytes {verb} {output} bytes, beyond the limit of "
            f"{self.max_output_size} bytes or {self.max_ratio} times its size",
            "max_output_size" if output > self.max_output_size else "max_ratio",
        )
