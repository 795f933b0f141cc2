"""TCP and Unix socket streams, blocking and asyncio: bytes both ways, end of stream,
what each end knows of the other, and closing from another thread or task."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from canopy import streams
from canopy.streams import Endpoint
from stream_urls import KINDS, url_for


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("tcp://127.0.0.1:0", Endpoint("tcp", "127.0.0.1", 0)),
        ("tcp://localhost:8080", Endpoint("tcp", "localhost", 8080)),
        ("tcp://[::1]:9", Endpoint("tcp", "::1", 9)),
        ("unix:/run/canopy.sock", Endpoint("unix", path="/run/canopy.sock")),
        ("unix:///run/canopy.sock", Endpoint("unix", path="/run/canopy.sock")),
    ],
)
def test_urls(url: str, parsed: Endpoint) -> None:
    assert Endpoint.parse(url) == parsed
    assert Endpoint.parse(parsed.url) == parsed


@pytest.mark.parametrize(
    "url", ["127.0.0.1:80", "tcp:127.0.0.1:80", "tcp://host", "tcp://:80", "unix:", "udp://x:1"]
)
def test_bad_urls_say_what_is_accepted(url: str) -> None:
    with pytest.raises(ValueError, match=r"tcp://host:port|unix:/|port|tcp and unix"):
        Endpoint.parse(url)


@pytest.mark.parametrize("kind", KINDS)
def test_blocking_bytes_both_ways_and_end_of_stream(kind: str, short_dir: Path) -> None:
    listener = streams.listen(url_for(kind, short_dir))
    try:
        if kind == "tcp":
            assert listener.address[1] != 0 and listener.url.endswith(f":{listener.address[1]}")
        client = streams.connect(listener.url, timeout=2)
        server = listener.accept()
        assert server is not None
        client.send(b"ping" * 1000)
        received = b""
        while len(received) < 4000:
            received += server.receive()
        assert received == b"ping" * 1000
        server.send(memoryview(b"pong"))
        assert client.receive() == b"pong"
        if kind == "unix":
            assert client.info["peercred"] == (os.getpid(), os.getuid(), os.getgid())
            assert server.info["peercred"][0] == os.getpid()
        else:
            assert server.info["address"][0] == "127.0.0.1"
            assert client.info["address"] == listener.address
        client.close()
        assert server.receive() == b""
        server.close()
        server.close()  # idempotent
    finally:
        listener.close()
    if kind == "unix":
        assert not (short_dir / "s.sock").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_close_wakes_a_blocked_receive_and_accept(kind: str, short_dir: Path) -> None:
    listener = streams.listen(url_for(kind, short_dir))
    client = streams.connect(listener.url, timeout=2)
    got: list[bytes | None] = []
    reader = threading.Thread(target=lambda: got.append(client.receive()))
    reader.start()
    client.close()
    reader.join(2)
    assert got == [b""]
    accepted: list[object] = []
    first = listener.accept()  # the connection made above
    assert first is not None
    first.close()
    acceptor = threading.Thread(target=lambda: accepted.append(listener.accept()))
    acceptor.start()
    listener.close()
    acceptor.join(2)
    assert accepted == [None]
    assert listener.accept() is None


def test_connecting_to_nothing_fails(short_dir: Path) -> None:
    listener = streams.listen("tcp://127.0.0.1:0")
    url = listener.url
    listener.close()
    with pytest.raises(OSError):
        streams.connect(url, timeout=2)
    with pytest.raises(OSError):
        streams.connect(f"unix:{short_dir}/nobody.sock", timeout=2)


@pytest.mark.parametrize("kind", KINDS)
def test_asyncio_bytes_both_ways_and_end_of_stream(kind: str, short_dir: Path) -> None:
    async def scenario() -> None:
        listener = await streams.alisten(url_for(kind, short_dir))
        client = await streams.aconnect(listener.url)
        server = await listener.accept()
        assert server is not None
        await client.send(b"x" * 100_000)
        received = b""
        while len(received) < 100_000:
            received += await server.receive()
        assert received == b"x" * 100_000
        await server.send(b"back")
        assert await client.receive() == b"back"
        if kind == "unix":
            assert client.info["peercred"] == (os.getpid(), os.getuid(), os.getgid())
        else:
            assert server.info["address"][0] == "127.0.0.1"
        await client.close()
        assert await server.receive() == b""
        await server.close()
        pending = asyncio.ensure_future(listener.accept())
        await asyncio.sleep(0)
        listener.close()
        assert await asyncio.wait_for(pending, 2) is None

    asyncio.run(scenario())
    if kind == "unix":
        assert not (short_dir / "s.sock").exists()
