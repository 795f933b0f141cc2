"""The zstd compression layer: a stream over any other stream whose bytes travel as
length-prefixed zstd frames, decompressed under the same bomb guard as the
``binary_zstd`` codec. A sans-I/O core does the framing; two thin drivers do the I/O.

On the wire each frame is a 4-byte little-endian length and that many bytes of one
zstd frame that declares its content size. A ``send`` becomes one frame, or several
when it is larger than a frame's content may be (``frame_content``): a stream has
no message boundaries, and small frames keep every legitimate frame under the
receiver's limits however well it compresses.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import zstandard

from canopy._zstd_guard import RATIO_FLOOR, FrameRefused, ZstdGuard
from canopy.streams._base import RECEIVE_SIZE, AsyncStream, Stream

DEFAULT_LEVEL = 3
DEFAULT_MAX_FRAME_SIZE = 16 << 20
DEFAULT_MAX_OUTPUT_SIZE = 16 << 20
DEFAULT_MAX_RATIO = 1000

_LENGTH = struct.Struct("<I")


class CompressionError(OSError):
    """The peer sent a frame that is not zstd or that passes a limit; the stream is
    failed and closed."""


def frame_content(max_frame_size: int, max_output_size: int) -> int:
    """The most plaintext one frame carries: within the ratio floor, so the ratio
    limit never refuses a frame however well it compresses; within the output limit;
    and within half the frame limit, as zstd's worst case adds under 1% to its input.
    A peer with the same limits therefore accepts every frame this side makes."""
    return max(1, min(RATIO_FLOOR, max_output_size, max_frame_size // 2))


class FrameWriter:
    """The sending side's core: plaintext in, framed compressed bytes out."""

    def __init__(self, *, level: int = DEFAULT_LEVEL, frame_content: int = RATIO_FLOOR) -> None:
        self.level = level
        self.frame_content = frame_content
        self.plaintext = 0
        self.compressed = 0
        self._compressor = zstandard.ZstdCompressor(level=level, write_content_size=True)
        # One sender at a time is the contract, but zstd releases the GIL inside its
        # context, so two would corrupt memory rather than merely interleave frames.
        self._lock = threading.Lock()

    def frames(self, data: bytes | bytearray | memoryview) -> Iterator[bytes]:
        """The frames that carry ``data``, made one at a time as they are taken; none
        for empty ``data``."""
        with memoryview(data) as view, view.cast("B") as octets:
            for start in range(0, len(octets), self.frame_content):
                chunk = octets[start : start + self.frame_content]
                with self._lock:
                    body = self._compressor.compress(chunk)
                frame = _LENGTH.pack(len(body)) + body
                self.plaintext += len(chunk)
                self.compressed += len(frame)
                yield frame


class FrameReader:
    """The receiving side's core: compressed bytes in (``feed``), plaintext out
    (``read``), and ``end`` when the bytes run out.

    A frame is decompressed only when its plaintext is asked for, so what is held
    is one decoded frame and the compressed bytes not yet asked for: a burst of
    small frames that each expand to the limit cannot add up. Every refusal is a
    ``CompressionError``: a length over ``max_frame_size`` as soon as its prefix
    is in, an expansion past the limits before more than the limit is allocated.
    """

    def __init__(
        self,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_output_size: int = DEFAULT_MAX_OUTPUT_SIZE,
        max_ratio: int = DEFAULT_MAX_RATIO,
    ) -> None:
        self.max_frame_size = max_frame_size
        self.plaintext = 0
        self.compressed = 0
        self._guard = ZstdGuard(max_output_size=max_output_size, max_ratio=max_ratio)
        self._inbox = bytearray()
        self._decoded = b""
        self._offset = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take compressed bytes; refuses at once a frame whose length passes
        ``max_frame_size``, before its body arrives."""
        self._inbox += data
        self.compressed += len(data)
        self._frame_length()

    def read(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        """Up to ``max_bytes`` of plaintext from whole frames; ``b""`` when a frame
        must be fed further first."""
        parts: list[bytes] = []
        wanted = max_bytes
        while wanted > 0:
            if self._offset == len(self._decoded):
                try:
                    if not self._decode_next():
                        break
                except CompressionError:
                    if parts:  # hand over what came before; the frame fails on the next read
                        break
                    raise
                continue
            if self._offset == 0 and len(self._decoded) <= wanted:
                part = self._decoded
            else:
                part = self._decoded[self._offset : self._offset + wanted]
            self._offset += len(part)
            wanted -= len(part)
            parts.append(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def end(self) -> None:
        """The compressed bytes have ended: an ``OSError`` if they ended inside a frame."""
        if not self._inbox:
            return
        length = self._frame_length()
        whole = f" of {length + _LENGTH.size} bytes" if length is not None else ""
        raise OSError(
            f"the zstd stream was truncated: it ended {len(self._inbox)} bytes into a "
            f"frame{whole}; the peer closed or failed in the middle of a send"
        )

    def _frame_length(self) -> int | None:
        """The length of the frame at the head of the buffer, once its prefix is in."""
        if len(self._inbox) < _LENGTH.size:
            return None
        (length,) = _LENGTH.unpack_from(self._inbox)
        if length > self.max_frame_size:
            raise CompressionError(
                f"a zstd frame of {length} bytes is over max_frame_size ({self.max_frame_size}"
                " bytes): if the peer means it, raise max_frame_size on this side with "
                "canopy.streams.zstd.wrap(stream, max_frame_size=...); otherwise the peer "
                "is not sending zstd frames"
            )
        return int(length)

    def _decode_next(self) -> bool:
        length = self._frame_length()
        if length is None or len(self._inbox) < _LENGTH.size + length:
            return False
        end = _LENGTH.size + length
        with memoryview(self._inbox) as whole, whole[_LENGTH.size : end] as frame:
            try:
                decoded = self._guard.decompress(frame)
            except FrameRefused as exc:
                raise CompressionError(_refusal(exc)) from None
        # Consumed only once decoded: a refused frame stays, and is refused again.
        del self._inbox[:end]
        self._decoded = decoded
        self._offset = 0
        self.plaintext += len(decoded)
        return True


def _refusal(exc: FrameRefused) -> str:
    if exc.limit is None:
        return f"{exc}: the peer is not sending zstd frames"
    return (
        f"{exc}: {exc.limit} was passed; if the peer means it, raise {exc.limit} on this "
        f"side with canopy.streams.zstd.wrap(stream, {exc.limit}=...)"
    )


S = TypeVar("S", Stream, AsyncStream)


class _Layer(Generic[S]):
    """What both drivers share: the two cores, the state, and ``info``."""

    def __init__(
        self,
        inner: S,
        *,
        level: int = DEFAULT_LEVEL,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_output_size: int = DEFAULT_MAX_OUTPUT_SIZE,
        max_ratio: int = DEFAULT_MAX_RATIO,
    ) -> None:
        for name, value, least in (
            ("max_frame_size", max_frame_size, 1024),
            ("max_output_size", max_output_size, 1),
            ("max_ratio", max_ratio, 1),
        ):
            if value < least:
                raise ValueError(f"{name} is {value}; it must be at least {least}")
        self._inner: S = inner
        self._writer = FrameWriter(
            level=level, frame_content=frame_content(max_frame_size, max_output_size)
        )
        self._reader = FrameReader(
            max_frame_size=max_frame_size, max_output_size=max_output_size, max_ratio=max_ratio
        )
        self._closed = False
        self._failure: OSError | None = None

    def __repr__(self) -> str:
        state = " failed" if self._failure is not None else " closed" if self._closed else ""
        return f"<{type(self).__name__} over {self._inner!r}{state}>"

    @property
    def info(self) -> dict[str, Any]:
        """The inner stream's ``info`` and, under ``"zstd"``, the level and the byte
        counts: plaintext ``sent`` and ``received``, and the compressed bytes that
        carried them (``received_compressed`` counts what has arrived so far)."""
        return {
            **self._inner.info,
            "zstd": {
                "level": self._writer.level,
                "sent": self._writer.plaintext,
                "sent_compressed": self._writer.compressed,
                "received": self._reader.plaintext,
                "received_compressed": self._reader.compressed,
            },
        }

    def _check_open(self) -> None:
        if self._failure is not None:
            raise type(self._failure)(*self._failure.args)
        if self._closed:
            raise OSError("the zstd stream is closed")

    def _ready(self, max_bytes: int) -> bytes | None:
        """Plaintext, ``b""`` once closed, or None when the inner stream must be read."""
        if max_bytes < 1:
            raise ValueError(f"max_bytes is {max_bytes}; it must be at least 1")
        if self._closed and self._failure is None:
            return b""
        self._check_open()
        with self._failing():
            return self._reader.read(max_bytes) or None

    def _arrived(self, compressed: bytes) -> bool:
        """Takes what the inner stream gave; True if the stream has ended."""
        if self._closed:
            return True  # closed while the inner stream was read
        with self._failing():
            if compressed:
                self._reader.feed(compressed)
                return False
            self._reader.end()
            return True

    @contextlib.contextmanager
    def _failing(self) -> Iterator[None]:
        # A refusal or a truncation fails the stream for good; the driver that sees
        # it propagate closes the inner stream.
        try:
            yield
        except OSError as exc:
            self._failure = exc
            self._closed = True
            raise


class ZstdStream(_Layer[Stream]):
    """A blocking stream compressed with zstd over any blocking stream. The sending
    and the receiving side share no zstd context or buffer, and no lock is held
    during I/O."""

    def send(self, data: bytes | bytearray | memoryview) -> None:
        self._check_open()
        for frame in self._writer.frames(data):
            self._inner.send(frame)

    def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        try:
            while (data := self._ready(max_bytes)) is None:
                if self._arrived(self._inner.receive()):
                    return b""
            return data
        except OSError:
            if self._failure is None and self._closed:
                return b""  # closed by another thread while this one read
            if self._failure is not None:
                self._inner.close()
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._inner.close()


class AsyncZstdStream(_Layer[AsyncStream]):
    """The asyncio form of ``ZstdStream``."""

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        self._check_open()
        for frame in self._writer.frames(data):
            await self._inner.send(frame)

    async def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        try:
            while (data := self._ready(max_bytes)) is None:
                if self._arrived(await self._inner.receive()):
                    return b""
            return data
        except OSError:
            if self._failure is None and self._closed:
                return b""  # closed by another task while this one read
            if self._failure is not None:
                await self._inner.close()
            raise

    def abort(self) -> None:
        """Drop what waits to be written beneath, when the stream there can (see
        ``AsyncTlsStream.abort``)."""
        drop = getattr(self._inner, "abort", None)
        if drop is not None:
            drop()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._inner.close()


def wrap(
    stream: Stream,
    *,
    level: int = DEFAULT_LEVEL,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    max_output_size: int = DEFAULT_MAX_OUTPUT_SIZE,
    max_ratio: int = DEFAULT_MAX_RATIO,
) -> ZstdStream:
    """``stream`` compressed with zstd at ``level``. The limits are security limits on
    what the peer may send: a frame of over ``max_frame_size`` compressed bytes, or
    one that would expand past ``max_output_size`` or ``max_ratio`` times its size
    (beyond 1 MiB), fails the stream with ``CompressionError``. Both ends must wrap."""
    return ZstdStream(
        stream,
        level=level,
        max_frame_size=max_frame_size,
        max_output_size=max_output_size,
        max_ratio=max_ratio,
    )


def awrap(
    stream: AsyncStream,
    *,
    level: int = DEFAULT_LEVEL,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    max_output_size: int = DEFAULT_MAX_OUTPUT_SIZE,
    max_ratio: int = DEFAULT_MAX_RATIO,
) -> AsyncZstdStream:
    """``wrap`` for asyncio streams."""
    return AsyncZstdStream(
        stream,
        level=level,
        max_frame_size=max_frame_size,
        max_output_size=max_output_size,
        max_ratio=max_ratio,
    )


__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_OUTPUT_SIZE",
    "DEFAULT_MAX_RATIO",
    "AsyncZstdStream",
    "CompressionError",
    "FrameReader",
    "FrameWriter",
    "ZstdStream",
    "awrap",
    "frame_content",
    "wrap",
]
