"""The shared memory stream: its ring arithmetic without any I/O, then blocking and
asyncio ends in one process, a child process that attaches and echoes (and one
that is killed), TLS over it, the threading contract, and what a bad spec or a
missing segment says. No test may leave a segment in /dev/shm."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme

from canopy.streams import AsyncStream, Stream, shm
from canopy.streams.shm import AsyncShmStream, Channel, Ring, ShmStream, aattach, attach
from canopy.streams.tls import client_context, server_context, wrap_client, wrap_server

SHM = Path("/dev/shm")
T = TypeVar("T")
SMALL = 4096  # the least capacity: large sends take many turns of the ring


@pytest.fixture
def channels() -> Iterator[Callable[..., Channel]]:
    """Makes channels; each one is closed, and its segment must be gone, afterwards."""
    made: list[Channel] = []

    def make(capacity: int = shm.DEFAULT_CAPACITY, **options: Any) -> Channel:
        channel = Channel.create(capacity, **options)
        made.append(channel)
        assert (SHM / channel.spec.split(":")[2]).exists()
        return channel

    yield make
    for channel in made:
        channel.close()
    left = [name for channel in made if (SHM / (name := channel.spec.split(":")[2])).exists()]
    assert not left, f"segments left in /dev/shm: {left}"


def pair(channel: Channel) -> tuple[ShmStream, ShmStream]:
    return channel.stream(), attach(channel.spec)


@contextlib.contextmanager
def in_thread(target: Callable[[], T]) -> Iterator[list[T | BaseException]]:
    """Runs ``target`` in a thread; its result or exception ends up in the list."""
    result: list[T | BaseException] = []

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
        thread.join(10)
        assert not thread.is_alive(), "the thread did not finish"


def receive_exactly(stream: Stream, size: int, seconds: float = 10.0) -> bytes:
    """``size`` bytes; a timer closes the stream (ending the wait) after ``seconds``."""
    timer = threading.Timer(seconds, stream.close)
    timer.start()
    try:
        data = bytearray()
        for _ in range(size + 1):
            if len(data) >= size:
                break
            chunk = stream.receive()
            assert chunk, f"the stream ended after {len(data)} of {size} bytes"
            data += chunk
        return bytes(data)
    finally:
        timer.cancel()


async def areceive_exactly(stream: AsyncStream, size: int) -> bytes:
    async def read() -> bytes:
        data = bytearray()
        for _ in range(size + 1):
            if len(data) >= size:
                break
            chunk = await stream.receive()
            assert chunk, f"the stream ended after {len(data)} of {size} bytes"
            data += chunk
        return bytes(data)

    return await asyncio.wait_for(read(), 10)


def payload(size: int) -> bytes:
    return os.urandom(size)


# ---------------------------------------------------------------- the ring, without I/O


def ring(capacity: int, start: int = 0) -> Ring:
    counters = memoryview(bytearray(16)).cast("Q")
    counters[0] = counters[1] = start
    return Ring(memoryview(bytearray(capacity)), counters, 0, 1)


@pytest.mark.parametrize("capacity", [1, 2, 8, 64])
@pytest.mark.parametrize("start", [0, 2**32 - 5, 2**63 + 7])
def test_ring_wraps_at_every_offset(capacity: int, start: int) -> None:
    for offset in range(capacity):
        r = ring(capacity, start)
        assert r.write(b"\xff" * offset) == offset  # move the counters to the offset
        assert r.read(capacity) == b"\xff" * offset
        for size in range(1, capacity + 1):
            data = payload(size + offset)[:size]
            assert r.writable() == capacity
            assert r.write(data) == size
            assert r.readable() == size
            assert r.writable() == capacity - size
            assert r.read(capacity) == data
            assert (r.readable(), r.writable()) == (0, capacity)
        assert r.tail == r.head == start + offset + capacity * (capacity + 1) // 2


@pytest.mark.parametrize("start", [0, 2**32 - 3])
def test_ring_full_empty_and_partial(start: int) -> None:
    r = ring(16, start)
    assert r.read(100) == b""
    assert r.write(b"") == 0
    data = bytes(range(40))
    assert r.write(data) == 16  # only what fits
    assert (r.readable(), r.writable()) == (16, 0)
    assert r.write(b"more") == 0
    assert r.read(5) == data[:5]  # at most max_bytes
    assert r.write(memoryview(data)[16:]) == 5  # wraps around
    assert r.read(100) == data[5:21]
    assert r.read(100) == b""
    assert r.tail == r.head == start + 21
    assert r.tail > 2**32 or start == 0


def test_ring_two_objects_one_per_role() -> None:
    """A producer and a consumer over the same memory, as two processes have them:
    random sizes, every byte in order, counters published in the shared words."""
    data = memoryview(bytearray(64))
    counters = memoryview(bytearray(16)).cast("Q")
    counters[0] = counters[1] = 2**32 - 100
    producer, consumer = Ring(data, counters, 0, 1), Ring(data, counters, 0, 1)
    source = payload(50_000)
    rng = random.Random(7)  # noqa: S311 - sizes, not secrets
    sent, got = 0, bytearray()
    for _ in range(100_000):
        if len(got) == len(source):
            break
        if sent < len(source):
            sent += producer.write(source[sent : sent + rng.randint(1, 80)])
        got += consumer.read(rng.randint(1, 80))
        assert counters[0] - counters[1] == sent - len(got)
    assert bytes(got) == source
    assert counters[0] == counters[1] == 2**32 - 100 + len(source)


def test_ring_refuses_counters_a_peer_corrupted() -> None:
    r = ring(16)
    counters = r._counters
    counters[0] = 17  # a tail 17 bytes past the head
    with pytest.raises(OSError, match="corrupt: the peer's tail puts 17 bytes in a ring of 16"):
        r.read(100)
    counters[0] = 0
    counters[1] = 5  # a head past the tail
    with pytest.raises(OSError, match="peer's head puts -5 bytes"):
        r.write(b"x")
    with pytest.raises(ValueError, match="power of two"):
        Ring(memoryview(bytearray(12)), counters, 0, 1)


# ---------------------------------------------------------------- blocking, in one process


def test_blocking_bytes_both_ways_info_and_end_of_stream(
    channels: Callable[..., Channel],
) -> None:
    channel = channels(SMALL)
    a, b = pair(channel)
    assert isinstance(a, Stream) and isinstance(b, Stream)
    big = payload(40 * SMALL + 123)  # many turns of the ring
    with in_thread(lambda: receive_exactly(b, len(big))) as got:
        a.send(big)
    assert got == [big]
    messages = [b"small send %d|" % i for i in range(2000)]
    with in_thread(lambda: receive_exactly(a, sum(map(len, messages)))) as back:
        for message in messages:
            b.send(message)
    assert back == [b"".join(messages)]
    b.send(memoryview(bytearray(b"abcdefgh")).cast("I"))  # counted in bytes
    assert a.receive(3) == b"abc" and a.receive() == b"defgh"

    name = channel.spec.split(":")[2]
    for end in (a, b):
        assert end.info["shm"] == {"name": name, "capacity": SMALL}
        assert end.info["peercred"][0] == os.getpid()  # both ends are in this process

    b.send(b"last words")
    b.close()
    assert a.receive() == b"last words"  # what was left, then the end
    assert a.receive() == b""
    assert a.receive() == b""
    with pytest.raises(BrokenPipeError, match="peer has closed"):
        a.send(b"late")
    assert b.receive() == b""
    with pytest.raises(OSError, match="closed"):
        b.send(b"late")
    b.close()  # idempotent
    assert (SHM / name).exists()  # the creator's end is still open
    a.close()
    a.close()
    assert not (SHM / name).exists()


def test_blocking_the_creator_closes_first(channels: Callable[..., Channel]) -> None:
    channel = channels()
    a, b = pair(channel)
    a.send(b"bye")
    a.close()  # unlinks the name; the attaching side's mapping lives on
    assert not (SHM / channel.spec.split(":")[2]).exists()
    assert b.receive() == b"bye"
    assert b.receive() == b""
    b.close()


def test_send_while_another_thread_is_blocked_in_receive(
    channels: Callable[..., Channel],
) -> None:
    a, b = pair(channels(SMALL))
    total = 300 * 1000

    def echo() -> int:
        echoed = 0
        for _ in range(total):
            if echoed >= total:
                break
            data = b.receive()
            assert data
            b.send(data)
            echoed += len(data)
        return echoed

    with in_thread(echo) as echoed, in_thread(lambda: receive_exactly(a, total)) as got:
        time.sleep(0.01)  # let the receiving thread block first
        for index in range(300):
            a.send(bytes([index % 256]) * 1000)
    assert echoed == [total]
    assert got == [b"".join(bytes([i % 256]) * 1000 for i in range(300))]
    a.close()
    b.close()


def test_one_side_waiting_for_data_and_for_space_at_once(
    channels: Callable[..., Channel],
) -> None:
    """A receiving and a sending thread of one side both wait on its one doorbell: a
    ring for either must not be lost to the other."""
    a, b = pair(channels(SMALL))
    big = payload(20 * SMALL)
    with in_thread(a.receive) as received, in_thread(lambda: a.send(big)) as sent:
        time.sleep(0.05)  # both of a's threads are waiting now
        started = time.monotonic()
        assert receive_exactly(b, len(big)) == big
        # Twenty turns of the ring, each a wait for space: a millisecond or two, unless
        # rings went to the wrong thread and each turn waited out a timeout.
        assert time.monotonic() - started < 0.5
        b.send(b"reply")
    assert received == [b"reply"] and sent == [None]
    a.close()
    b.close()


def test_close_from_another_thread_wakes_a_blocked_receive_and_send(
    channels: Callable[..., Channel],
) -> None:
    a, b = pair(channels(SMALL))
    with in_thread(a.receive) as got:
        time.sleep(0.05)
        a.close()
    assert got == [b""]
    assert a.receive() == b""
    assert b.receive() == b""  # the peer sees the end too

    c, d = pair(channels(SMALL))
    with in_thread(lambda: c.send(bytes(10 * SMALL))) as sent:
        time.sleep(0.05)  # c's send has filled the ring and waits for space
        c.close()
    assert isinstance(sent[0], OSError)
    d.close()
    b.close()


def test_tls_over_shm(channels: Callable[..., Channel], tmp_path: Path) -> None:
    ca = trustme.CA()
    server_pem, ca_pem = tmp_path / "server.pem", tmp_path / "ca.pem"
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    raw_client, raw_server = pair(channels(SMALL))
    with in_thread(lambda: wrap_server(raw_server, server_context(server_pem), timeout=5)) as done:
        client = wrap_client(
            raw_client, client_context(cafile=ca_pem), server_hostname="localhost", timeout=5
        )
    server = done[0]
    assert not isinstance(server, BaseException), server
    assert client.info["tls"]["version"] == "TLSv1.3"
    assert client.info["shm"]["capacity"] == SMALL and "peercred" in client.info
    big = payload(300_000)
    with in_thread(lambda: receive_exactly(server, len(big))) as got:
        client.send(big)
    assert got == [big]
    server.send(b"over shared memory")
    assert client.receive() == b"over shared memory"
    client.close()
    assert server.receive() == b""
    server.close()


# ---------------------------------------------------------------- asyncio


def test_asyncio_end_with_a_blocking_end_in_a_thread(channels: Callable[..., Channel]) -> None:
    channel = channels(SMALL)
    big = payload(30 * SMALL + 7)
    messages = [b"async small %d|" % i for i in range(1000)]

    async def scenario() -> None:
        a = channel.astream()
        assert isinstance(a, AsyncStream) and isinstance(a, AsyncShmStream)
        b = attach(channel.spec)
        with in_thread(lambda: receive_exactly(b, len(big))) as got:
            await a.send(big)
            for _ in range(200):  # the thread joins once it has it all
                if got:
                    break
                await asyncio.sleep(0.01)
        assert got == [big]

        def send_all() -> None:
            for message in messages:
                b.send(message)

        with in_thread(send_all):
            assert await areceive_exactly(a, sum(map(len, messages))) == b"".join(messages)
        assert a.info["shm"]["capacity"] == SMALL

        pending = asyncio.ensure_future(a.receive())
        await asyncio.sleep(0.01)
        b.send(b"wake")
        assert await asyncio.wait_for(pending, 5) == b"wake"
        b.close()
        assert await a.receive() == b""
        await a.close()
        await a.close()

    asyncio.run(scenario())


def test_asyncio_both_ends(channels: Callable[..., Channel]) -> None:
    channel = channels(SMALL)

    async def scenario() -> None:
        a, b = channel.astream(), aattach(channel.spec)
        big = payload(25 * SMALL)
        receiving = asyncio.ensure_future(areceive_exactly(b, len(big)))
        await a.send(big)
        assert await asyncio.wait_for(receiving, 10) == big
        messages = [b"back %d;" % i for i in range(1000)]
        receiving = asyncio.ensure_future(areceive_exactly(a, sum(map(len, messages))))
        for message in messages:
            await b.send(message)
        assert await asyncio.wait_for(receiving, 10) == b"".join(messages)
        assert b.info["peercred"][0] == os.getpid()

        pending = asyncio.ensure_future(a.receive())
        await asyncio.sleep(0.01)
        await a.close()  # wakes its own pending receive
        assert await asyncio.wait_for(pending, 5) == b""
        assert await asyncio.wait_for(b.receive(), 5) == b""
        with pytest.raises(BrokenPipeError):
            await b.send(b"late")
        await b.close()

    asyncio.run(scenario())


# ---------------------------------------------------------------- a child process

ECHO = """
import json, os, sys
from canopy.streams import shm
stream = shm.attach(sys.argv[1])
hello = {"pid": os.getpid(), "peercred": stream.info["peercred"]}
stream.send(json.dumps(hello).encode() + b"\\n")
for _ in range(1_000_000):
    data = stream.receive()
    if not data:
        break
    stream.send(data)
stream.close()
"""


@contextlib.contextmanager
def child(channel: Channel, code: str = ECHO) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-c", code, channel.spec],
        pass_fds=channel.pass_fds,
        stderr=subprocess.PIPE,
    )
    channel.close_child_end()
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()  # by its PID, through its Popen
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


def hello(stream: ShmStream) -> dict[str, Any]:
    line = bytearray()
    for _ in range(1000):
        if line.endswith(b"\n"):
            break
        chunk = stream.receive(1)  # no further than the line
        assert chunk, "the child ended before saying hello"
        line += chunk
    found: dict[str, Any] = json.loads(line)
    return found


def test_child_process_echoes(channels: Callable[..., Channel]) -> None:
    channel = channels(64 * 1024)
    with child(channel) as process:
        stream = channel.stream()
        greeting = hello(stream)
        assert greeting["pid"] == process.pid
        assert greeting["peercred"][0] == os.getpid()  # the child knows its creator
        assert stream.info["peercred"][0] == process.pid  # and the creator its child
        big = payload(1 << 20)  # sixteen turns of the ring, both ways
        with in_thread(lambda: receive_exactly(stream, len(big))) as got:
            stream.send(big)
        assert got == [big]
        for index in range(200):
            stream.send(b"ping %d" % index)
            assert receive_exactly(stream, len(b"ping %d" % index)) == b"ping %d" % index
        stream.close()
        assert process.wait(10) == 0
        assert process.stderr is not None
        assert process.stderr.read() == b""  # no resource tracker warning, no traceback


def test_a_killed_child_ends_the_stream(channels: Callable[..., Channel]) -> None:
    channel = channels(SMALL)
    with child(channel) as process:
        stream = channel.stream()
        hello(stream)
        stream.send(b"before")
        assert receive_exactly(stream, 6) == b"before"
        name = channel.spec.split(":")[2]
        ended: list[float] = []

        def receive() -> bytes:
            try:
                return stream.receive()
            finally:
                ended.append(time.monotonic())

        with in_thread(receive) as got:
            time.sleep(0.05)  # blocked in receive when the child dies
            killed = time.monotonic()
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5)
        assert ended[0] - killed < 1
        # It died without closing: not an orderly end of stream.
        assert isinstance(got[0], ConnectionResetError), got
        assert "ended without closing it" in str(got[0])
        with pytest.raises(ConnectionResetError):
            stream.send(b"to nobody")
        assert (SHM / name).exists()  # the child did not unlink it
        stream.close()


def test_a_child_without_the_doorbell_is_told_what_to_do(channels: Callable[..., Channel]) -> None:
    channel = channels()
    code = "import sys\nfrom canopy.streams import shm\nshm.attach(sys.argv[1])"
    result = subprocess.run(
        [sys.executable, "-c", code, channel.spec], capture_output=True, timeout=30
    )
    assert result.returncode != 0
    assert b"pass_fds=channel.pass_fds" in result.stderr


# ---------------------------------------------------------------- what is refused


def test_bad_specs_are_value_errors(channels: Callable[..., Channel]) -> None:
    for spec in (
        "",
        "canopy-shm:1:name",
        "canopy-shm:2:canopy-abc:4096:5",
        "canopy-shm:1:../etc/passwd:4096:5",
        "canopy-shm:1:canopy-abc:4096:-1",
        "tcp://127.0.0.1:80",
    ):
        with pytest.raises(
            ValueError, match=r"not a shared memory stream spec: pass Channel\.spec"
        ):
            attach(spec)
    with pytest.raises(ValueError, match="capacity is 5000; it must be a power of two"):
        attach("canopy-shm:1:canopy-abc:5000:5")
    channel = channels()
    name, fd = channel.spec.split(":")[2], channel.spec.split(":")[4]
    with pytest.raises(ValueError, match="does not match the segment"):
        attach(f"canopy-shm:1:{name}:{1 << 21}:{fd}")
    with pytest.raises(ValueError, match="spin is -1"):
        attach(channel.spec, spin=-1)


def test_a_missing_segment_is_a_clear_error() -> None:
    with pytest.raises(FileNotFoundError, match="no shared memory segment 'canopy-000000'"):
        attach("canopy-shm:1:canopy-000000:4096:5")


def test_limits_and_once_only(channels: Callable[..., Channel]) -> None:
    for capacity in (1000, 2048, 1 << 31):
        with pytest.raises(ValueError, match=f"capacity is {capacity}"):
            Channel.create(capacity)
    with pytest.raises(ValueError, match="spin is 1"):
        Channel.create(spin=1)
    channel = channels()
    a, b = pair(channel)
    with pytest.raises(RuntimeError, match="already taken"):
        channel.stream()
    with pytest.raises(ValueError, match="already attached"):
        attach(channel.spec)
    closed_child = channels()
    closed_child.close_child_end()  # its fd number may be anyone's now: never used
    with pytest.raises(ValueError, match="child end closed"):
        attach(closed_child.spec)
    with pytest.raises(ValueError, match="max_bytes"):
        a.receive(0)
    a.close()
    b.close()
    # A channel whose end is never taken unlinks its segment when closed.
    unused = channels()
    unused.close()
    unused.close()
    assert not (SHM / unused.spec.split(":")[2]).exists()
    with pytest.raises(RuntimeError, match="closed"):
        unused.stream()


def test_the_protocol_needs_an_ordered_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    with pytest.raises(
        OSError, match=r"x86-64's store and load ordering.*aarch64 in a 64-bit process: use a unix:"
    ):
        Channel.create()
