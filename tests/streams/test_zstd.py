"""The zstd compression layer: its sans-I/O core without any I/O, then blocking and
asyncio streams over TCP and Unix sockets: bytes both ways, the counters, the limits
a peer's frames must keep to, truncation, and closing from another thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from canopy import streams
from canopy._zstd_guard import RATIO_FLOOR
from canopy.streams import AsyncStream, Stream
from canopy.streams._socket import SocketStream
from canopy.streams.zstd import (
    CompressionError,
    FrameReader,
    FrameWriter,
    awrap,
    frame_content,
    wrap,
)
from stream_urls import KINDS, url_for

GIB = 1 << 30
TEXT = b"".join(
    b"line %d: the quick brown fox jumps over the lazy dog\n" % i for i in range(80_000)
)


def framed(frame: bytes) -> bytes:
    return struct.pack("<I", len(frame)) + frame


def rle_frame(total: int, *, declared: int | None = None, blocks: int | None = None) -> bytes:
    """A zstd frame made by hand of RLE blocks (4 bytes for each 128 KiB of zeros):
    ``total`` bytes of content, declaring ``declared`` bytes or no size at all."""
    out = bytearray(struct.pack("<I", 0xFD2FB528))
    if declared is None:
        out += bytes([0x00, 0x38])  # no content size; a 128 KiB window
    else:
        out += bytes([0xE0]) + struct.pack("<Q", declared)  # single segment, 8-byte size
    block = 1 << 17
    count = blocks if blocks is not None else total // block
    for index in range(count):
        last = index == count - 1
        out += (int(last) | 1 << 1 | block << 3).to_bytes(3, "little") + b"\x00"
    return bytes(out)


def read_all(reader: FrameReader, max_bytes: int = 1 << 30) -> bytes:
    parts: list[bytes] = []
    for _ in range(100_000):
        part = reader.read(max_bytes)
        if not part:
            return b"".join(parts)
        parts.append(part)
    raise AssertionError("read() never ran dry")


def receive_exactly(stream: Stream, size: int) -> bytes:
    parts: list[bytes] = []
    received = 0
    while received < size:
        part = stream.receive()
        assert part, f"the stream ended after {received} of {size} bytes"
        parts.append(part)
        received += len(part)
    return b"".join(parts)


async def areceive_exactly(stream: AsyncStream, size: int) -> bytes:
    parts: list[bytes] = []
    received = 0
    while received < size:
        part = await stream.receive()
        assert part, f"the stream ended after {received} of {size} bytes"
        parts.append(part)
        received += len(part)
    return b"".join(parts)


class Counting:
    """A stream that counts the bytes its inner stream carries: what is really on the
    wire, and proof that the layer runs over any stream."""

    def __init__(self, inner: Stream) -> None:
        self.inner = inner
        self.sent = 0
        self.received = 0

    @property
    def info(self) -> dict[str, Any]:
        return self.inner.info

    def send(self, data: bytes | bytearray | memoryview) -> None:
        self.sent += len(data)
        self.inner.send(data)

    def receive(self, max_bytes: int = streams.RECEIVE_SIZE) -> bytes:
        data = self.inner.receive(max_bytes)
        self.received += len(data)
        return data

    def close(self) -> None:
        self.inner.close()


@contextlib.contextmanager
def socket_pair() -> Iterator[tuple[SocketStream, SocketStream]]:
    left, right = socket.socketpair()
    a, b = SocketStream(left), SocketStream(right)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@contextlib.contextmanager
def in_thread(target: Any) -> Iterator[list[Any]]:
    """Runs ``target`` in a thread; its result or exception ends up in the list."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(target())
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        thread.join(5)
        assert not thread.is_alive(), "the thread did not finish"


# ---------------------------------------------------------------- the core, without I/O


@pytest.mark.parametrize(
    "data",
    [b"x", b"hello " * 1000, os.urandom(200_000), bytes(3 << 20), TEXT],
    ids=["one-byte", "small", "incompressible", "zeros", "text"],
)
def test_core_round_trip(data: bytes) -> None:
    writer, reader = FrameWriter(), FrameReader()
    frames = list(writer.frames(data))
    assert len(frames) == -(-len(data) // RATIO_FLOOR)
    for frame in frames:
        (length,) = struct.unpack_from("<I", frame)
        assert length == len(frame) - 4
        assert zstandard.frame_content_size(frame[4:]) > 0  # the size is declared
    wire = b"".join(frames)
    reader.feed(wire)
    assert read_all(reader) == data
    assert (writer.plaintext, writer.compressed) == (len(data), len(wire))
    assert (reader.plaintext, reader.compressed) == (len(data), len(wire))
    reader.end()


def test_core_empty_sends_send_nothing() -> None:
    writer = FrameWriter()
    assert list(writer.frames(b"")) == []
    assert list(writer.frames(memoryview(b""))) == []
    assert writer.compressed == 0


def test_core_frames_split_at_every_byte_boundary() -> None:
    writer = FrameWriter()
    plaintext = [b"first frame " * 20, b"second", b"third " * 7]
    wire = b"".join(frame for part in plaintext for frame in writer.frames(part))
    for split in range(len(wire) + 1):
        reader = FrameReader()
        reader.feed(wire[:split])
        got = read_all(reader)
        reader.feed(wire[split:])
        got += read_all(reader)
        assert got == b"".join(plaintext), split
        reader.end()
    reader = FrameReader()
    got = b""
    for index in range(len(wire)):
        reader.feed(wire[index : index + 1])
        got += read_all(reader)
    assert got == b"".join(plaintext)


def test_core_several_frames_in_one_chunk_come_out_together() -> None:
    writer, reader = FrameWriter(), FrameReader()
    messages = [b"message %d;" % i for i in range(500)]
    reader.feed(b"".join(frame for message in messages for frame in writer.frames(message)))
    assert reader.read() == b"".join(messages)
    assert reader.read() == b""


def test_core_partial_reads_keep_the_rest() -> None:
    writer, reader = FrameWriter(), FrameReader()
    reader.feed(b"".join([*writer.frames(b"abcdefghij"), *writer.frames(b"KLMNOP")]))
    assert [reader.read(3) for _ in range(6)] == [b"abc", b"def", b"ghi", b"jKL", b"MNO", b"P"]
    assert reader.read(3) == b""


def test_core_truncation_and_the_frame_limit() -> None:
    frame = b"".join(FrameWriter().frames(b"payload " * 100))
    reader = FrameReader()
    reader.feed(frame[:-1])
    assert reader.read() == b""
    with pytest.raises(OSError, match=rf"truncated: it ended {len(frame) - 1} bytes into a frame"):
        reader.end()
    # The prefix alone is refused: nothing of the body is waited for.
    small = FrameReader(max_frame_size=1024)
    with pytest.raises(CompressionError, match=r"2000 bytes is over max_frame_size \(1024"):
        small.feed(struct.pack("<I", 2000))


def test_core_hands_over_good_frames_before_refusing_a_bad_one() -> None:
    reader = FrameReader()
    reader.feed(b"".join(FrameWriter().frames(b"good")) + framed(b"not zstd at all"))
    assert reader.read() == b"good"
    with pytest.raises(CompressionError, match="not sending zstd frames"):
        reader.read()


def test_frame_content_stays_within_every_limit() -> None:
    assert frame_content(16 << 20, 16 << 20) == RATIO_FLOOR
    assert frame_content(16 << 20, 1000) == 1000
    assert frame_content(1024, 16 << 20) == 512
    writer = FrameWriter(frame_content=frame_content(1024, 16 << 20))
    incompressible = os.urandom(5000)
    frames = list(writer.frames(incompressible))
    assert len(frames) == 10 and all(len(frame) <= 1024 for frame in frames)


# ---------------------------------------------------------------- blocking streams


@pytest.mark.parametrize("kind", KINDS)
def test_blocking_bytes_both_ways_and_end_of_stream(kind: str, short_dir: Path) -> None:
    listener = streams.listen(url_for(kind, short_dir))
    try:
        raw_client = Counting(streams.connect(listener.url, timeout=2))
        client = wrap(raw_client)
        accepted = listener.accept()
        assert accepted is not None
        server = wrap(accepted, level=1)
        assert isinstance(client, Stream)
        payload = TEXT + bytes(3 << 20)  # multi-MiB, and zeros far past the ratio limit
        with in_thread(lambda: receive_exactly(server, len(payload))) as got:
            client.send(payload)
        assert got == [payload]
        assert raw_client.sent < len(payload) // 20  # it really shrinks on the wire

        messages = [b"small send %d|" % i for i in range(2000)]
        with in_thread(lambda: receive_exactly(client, sum(map(len, messages)))) as back:
            for message in messages:
                server.send(message)
        assert back == [b"".join(messages)]

        sent = client.info["zstd"]
        assert sent == {
            "level": 3,
            "sent": len(payload),
            "sent_compressed": raw_client.sent,
            "received": sum(map(len, messages)),
            "received_compressed": raw_client.received,
        }
        assert server.info["zstd"]["received_compressed"] == raw_client.sent
        assert server.info["zstd"]["level"] == 1
        if kind == "unix":
            assert "peercred" in server.info
        else:
            assert server.info["address"][0] == "127.0.0.1"

        client.close()
        assert server.receive() == b""
        assert server.receive() == b""
        server.close()
        server.close()  # idempotent
        with pytest.raises(OSError, match="closed"):
            server.send(b"late")
    finally:
        listener.close()


def test_concurrent_send_while_another_thread_is_blocked_in_receive() -> None:
    with socket_pair() as (left, right):
        stream, peer = wrap(left), wrap(right)
        total = 300 * 1000

        def echo() -> int:
            echoed = 0
            while echoed < total:
                data = peer.receive()
                assert data
                peer.send(data)
                echoed += len(data)
            return echoed

        with in_thread(echo) as echoed, in_thread(lambda: receive_exactly(stream, total)) as got:
            time.sleep(0.01)  # let the receiving thread block first
            for index in range(300):
                stream.send(bytes([index % 256]) * 1000)
        assert echoed == [total]
        assert got == [b"".join(bytes([i % 256]) * 1000 for i in range(300))]


def test_close_from_another_thread_wakes_a_blocked_receive() -> None:
    with socket_pair() as (left, right):
        stream = wrap(left)
        right.send(framed(b"\x28\xb5\x2f\xfd")[:6])  # half a frame: receive keeps reading
        with in_thread(stream.receive) as got:
            time.sleep(0.05)
            stream.close()
        assert got == [b""]
        assert stream.receive() == b""


def test_compression_over_compression() -> None:
    with socket_pair() as (left, right):
        a, b = wrap(wrap(left), level=5), wrap(wrap(right))
        with in_thread(lambda: receive_exactly(b, len(TEXT))) as got:
            a.send(TEXT)
        assert got == [TEXT]
        b.send(b"back")
        assert a.receive() == b"back"
        assert a.info["zstd"]["level"] == 5
        a.close()
        assert b.receive() == b""


# ---------------------------------------------------------------- what a peer may not send


def refused(frame_bytes: bytes, **limits: int) -> tuple[CompressionError, int]:
    """The error a wrapped stream fails with when its peer sends ``frame_bytes``, and
    the most memory it allocated meanwhile; the inner stream must end up closed."""
    with socket_pair() as (left, right):
        stream = wrap(left, **limits)
        right.send(frame_bytes)
        tracemalloc.start()
        try:
            started = time.monotonic()
            with pytest.raises(CompressionError) as caught:
                stream.receive()
            assert time.monotonic() - started < 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        with contextlib.suppress(ConnectionResetError):
            assert right.receive() == b""  # the inner stream was closed
        with pytest.raises(CompressionError):
            stream.receive()  # failed for good
        with pytest.raises(CompressionError):
            stream.send(b"x")
        return caught.value, peak


def test_a_frame_declaring_a_huge_size_is_refused_without_allocating_it() -> None:
    error, peak = refused(framed(rle_frame(0, declared=GIB, blocks=1)))
    assert "declares 1073741824 bytes" in str(error)
    assert "max_output_size was passed" in str(error)
    assert "wrap(stream, max_output_size=...)" in str(error)
    assert peak < 1 << 20


def test_a_frame_without_a_size_that_expands_past_the_limit_is_refused() -> None:
    bomb = framed(rle_frame(GIB))
    assert len(bomb) < 40_000
    error, peak = refused(bomb, max_output_size=2 << 20)
    assert "expands to over 2097153 bytes" in str(error)
    assert "max_output_size was passed" in str(error)
    # The buffer is the limit, never the gigabyte.
    assert peak < 4 << 20


def test_frames_past_the_ratio_are_refused() -> None:
    declared = zstandard.ZstdCompressor(level=1).compress(bytes(8 << 20))
    error, _ = refused(framed(declared))
    assert "declares 8388608 bytes" in str(error) and "max_ratio was passed" in str(error)
    error, _ = refused(framed(rle_frame(2 << 20)))  # no declared size: found decompressing
    assert "expands to over 1048577 bytes" in str(error) and "max_ratio" in str(error)


def test_a_length_over_max_frame_size_is_refused_before_the_body() -> None:
    error, _ = refused(struct.pack("<I", (16 << 20) + 1))
    assert "over max_frame_size (16777216 bytes)" in str(error)
    assert "wrap(stream, max_frame_size=...)" in str(error)
    error, _ = refused(struct.pack("<I", 5000), max_frame_size=4096)
    assert "max_frame_size (4096 bytes)" in str(error)


def test_garbage_is_refused() -> None:
    error, _ = refused(framed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert "cannot decompress" in str(error) and "not sending zstd frames" in str(error)
    error, _ = refused(b"GET / HTTP/1.1\r\n")
    assert "max_frame_size" in str(error)


def test_a_stream_ending_mid_frame_is_truncated() -> None:
    frame = b"".join(FrameWriter().frames(TEXT[:10_000]))
    with socket_pair() as (left, right):
        stream = wrap(left)
        right.send(frame[: len(frame) // 2])
        right.close()
        with pytest.raises(OSError, match="truncated") as caught:
            stream.receive()
        assert not isinstance(caught.value, CompressionError)
        with pytest.raises(OSError, match="truncated"):
            stream.receive()


def test_limits_are_checked() -> None:
    with socket_pair() as (left, _):
        with pytest.raises(ValueError, match="max_frame_size is 10; it must be at least 1024"):
            wrap(left, max_frame_size=10)
        with pytest.raises(ValueError, match="max_ratio"):
            wrap(left, max_ratio=0)
        with pytest.raises(ValueError, match="max_bytes"):
            wrap(left).receive(0)


# ---------------------------------------------------------------- asyncio streams


@pytest.mark.parametrize("kind", KINDS)
def test_asyncio_bytes_both_ways_and_end_of_stream(kind: str, short_dir: Path) -> None:
    async def scenario() -> None:
        listener = await streams.alisten(url_for(kind, short_dir))
        client = awrap(await streams.aconnect(listener.url))
        accepted = await listener.accept()
        assert accepted is not None
        server = awrap(accepted)
        assert isinstance(server, AsyncStream)
        payload = TEXT + bytes(3 << 20)
        receiving = asyncio.ensure_future(areceive_exactly(server, len(payload)))
        await client.send(payload)
        assert await asyncio.wait_for(receiving, 5) == payload
        messages = [b"small send %d|" % i for i in range(2000)]
        receiving = asyncio.ensure_future(areceive_exactly(client, sum(map(len, messages))))
        for message in messages:
            await server.send(message)
        assert await asyncio.wait_for(receiving, 5) == b"".join(messages)
        counts = client.info["zstd"]
        assert counts["sent"] == len(payload) and counts["sent_compressed"] < len(payload) // 20
        assert counts["received"] == sum(map(len, messages))
        assert server.info["zstd"]["received_compressed"] == counts["sent_compressed"]
        assert counts["received_compressed"] == server.info["zstd"]["sent_compressed"]
        await client.close()
        assert await server.receive() == b""
        await server.close()
        await server.close()
        listener.close()

    asyncio.run(scenario())


def test_asyncio_refusal_truncation_and_close() -> None:
    async def scenario() -> None:
        listener = await streams.alisten("tcp://127.0.0.1:0")
        try:
            raw = await streams.aconnect(listener.url)
            accepted = await listener.accept()
            assert accepted is not None
            server = awrap(accepted, max_frame_size=4096)
            await raw.send(struct.pack("<I", 5000))
            with pytest.raises(CompressionError, match="max_frame_size"):
                await server.receive()
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(raw.receive(), 2) == b""
            await raw.close()

            raw = await streams.aconnect(listener.url)
            accepted = await listener.accept()
            assert accepted is not None
            server = awrap(accepted)
            await raw.send(b"".join(FrameWriter().frames(TEXT[:1000]))[:20])
            await raw.close()
            with pytest.raises(OSError, match="truncated"):
                await server.receive()

            client = awrap(await streams.aconnect(listener.url))
            pending = asyncio.ensure_future(client.receive())
            await asyncio.sleep(0.01)
            await client.close()
            assert await asyncio.wait_for(pending, 2) == b""
        finally:
            listener.close()

    asyncio.run(scenario())
