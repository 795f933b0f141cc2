"""The WebSocket layer, blocking and asyncio, over TCP, Unix sockets and itself: bytes
both ways, end of stream, what each end knows, the upgrade's refusals and timeout,
the origins a server serves, the message size limit, pongs to a peer that reads
nothing, and interoperation with the ``websockets`` library's own clients and
servers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import websockets.asyncio.client
import websockets.asyncio.server
import websockets.sync.client
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.typing import Origin

import canopy
from behaviour import b
from canopy import streams
from canopy.streams import AsyncStream, Listener, Stream, websocket
from canopy.streams.websocket import (
    AsyncWebSocketStream,
    HandshakeRefused,
    WebSocketStream,
)
from hostile import BINARY, CONT, PING, until, upgrade_request, ws_frame
from stream_urls import KINDS, url_for

PATH = "/canopy"
WATCHDOG = 10.0  # seconds before a stuck test's streams are closed under it


def ws_url(listener: Any, path: str = PATH) -> str:
    if isinstance(listener.address, tuple):
        return f"ws://127.0.0.1:{listener.address[1]}{path}"
    return f"ws://localhost{path}"


@contextlib.contextmanager
def watchdog(*closeable: Stream) -> Iterator[None]:
    """Close ``closeable`` if the block outlives WATCHDOG: a blocked receive then
    returns and the test fails instead of hanging."""

    def close_all() -> None:
        for each in closeable:
            each.close()

    timer = threading.Timer(WATCHDOG, close_all)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def serve_one(listener: Listener, **options: Any) -> Future[WebSocketStream]:
    """Accept one connection and upgrade it in a thread, as a server does."""
    pool = ThreadPoolExecutor(1)

    def upgrade() -> WebSocketStream:
        accepted = listener.accept()
        assert accepted is not None
        return websocket.wrap_server(accepted, **{"path": PATH, "timeout": 2.0, **options})

    future = pool.submit(upgrade)
    pool.shutdown(wait=False)
    return future


@contextlib.contextmanager
def ws_pair(
    kind: str, where: Path, *, client: dict[str, Any] | None = None, **server: Any
) -> Iterator[tuple[WebSocketStream, WebSocketStream]]:
    """A connected (client, server) pair over a fresh listener, closed afterwards."""
    listener = streams.listen(url_for(kind, where))
    try:
        accepted = serve_one(listener, **server)
        near = websocket.wrap_client(
            streams.connect(listener.url, timeout=2), ws_url(listener), **(client or {})
        )
        far = accepted.result(timeout=5)
        try:
            with watchdog(near, far):
                yield near, far
        finally:
            near.close()
            far.close()
    finally:
        listener.close()


def receive_exactly(stream: Stream, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        chunk = stream.receive()
        if not chunk:
            break
        received += chunk
    return bytes(received)


async def areceive_exactly(stream: AsyncStream, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        chunk = await stream.receive()
        if not chunk:
            break
        received += chunk
    return bytes(received)


def echo(stream: Stream) -> None:
    """Send back what ``stream`` receives, until its end."""
    for _ in range(100_000):
        chunk = stream.receive()
        if not chunk:
            return
        stream.send(chunk)


def in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``target`` in a thread; the list gets its result or the exception it raised."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(target())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("closer", ["client", "server"])
@pytest.mark.parametrize("kind", KINDS)
def test_blocking_bytes_both_ways_and_end_of_stream(
    kind: str, closer: str, short_dir: Path
) -> None:
    with ws_pair(kind, short_dir) as (client, server):
        payload = os.urandom(3 << 20)
        sender, sent = in_thread(lambda: client.send(payload))
        assert receive_exactly(server, len(payload)) == payload
        sender.join(5)
        assert sent == [None]
        # Read as the small sends go: a Unix socket holds only so many writes unread.
        reader, received = in_thread(lambda: receive_exactly(client, 16_000))
        for number in range(2000):
            server.send(b"%08d" % number)
        reader.join(5)
        assert received == [b"".join(b"%08d" % n for n in range(2000))]
        server.send(memoryview(b"pong"))
        assert client.receive(2) == b"po"  # the rest of a message waits for the next read
        assert client.receive() == b"ng"

        for near, far in ((client, server), (server, client)):
            info = near.info["websocket"]
            assert info["path"] == PATH and info["origin"] is None
            assert info["subprotocol"] is None
            assert far.info["websocket"]["headers"]
        assert server.info["websocket"]["headers"]["upgrade"] == "websocket"
        assert client.info["websocket"]["headers"]["connection"] == "Upgrade"
        if kind == "unix":
            assert client.info["peercred"] == (os.getpid(), os.getuid(), os.getgid())
            assert server.info["websocket"]["headers"]["host"] == "localhost"
        else:
            assert server.info["address"][0] == "127.0.0.1"

        ending, other = (client, server) if closer == "client" else (server, client)
        ending.close()
        ending.close()  # idempotent
        assert other.receive() == b""
        assert other.receive() == b""
        with pytest.raises(OSError, match="closed"):
            other.send(b"too late")
        with pytest.raises(OSError, match="closed"):
            ending.send(b"too late")
        assert ending.receive() == b""


@pytest.mark.parametrize("kind", KINDS)
def test_asyncio_bytes_both_ways_and_end_of_stream(kind: str, short_dir: Path) -> None:
    async def scenario() -> None:
        listener = await streams.alisten(url_for(kind, short_dir))
        try:

            async def upgrade() -> AsyncWebSocketStream:
                accepted = await listener.accept()
                assert accepted is not None
                return await websocket.awrap_server(
                    accepted, path=PATH, origins=["https://a.example"], timeout=2
                )

            server_task = asyncio.ensure_future(upgrade())
            client = await websocket.awrap_client(
                await streams.aconnect(listener.url), ws_url(listener), origin="https://a.example"
            )
            server = await asyncio.wait_for(server_task, 5)

            payload = os.urandom(3 << 20)
            sending = asyncio.ensure_future(client.send(payload))
            assert await asyncio.wait_for(areceive_exactly(server, len(payload)), 5) == payload
            await asyncio.wait_for(sending, 5)
            reading = asyncio.ensure_future(areceive_exactly(client, 16_000))
            for number in range(2000):
                await server.send(b"%08d" % number)
            expected = b"".join(b"%08d" % n for n in range(2000))
            assert await asyncio.wait_for(reading, 5) == expected

            assert server.info["websocket"]["origin"] == "https://a.example"
            assert server.info["websocket"]["headers"]["origin"] == "https://a.example"
            assert client.info["websocket"]["origin"] == "https://a.example"
            assert client.info["websocket"]["path"] == PATH
            if kind == "unix":
                assert client.info["peercred"][0] == os.getpid()

            await client.close()
            await client.close()
            assert await asyncio.wait_for(server.receive(), 2) == b""
            with pytest.raises(OSError, match="closed"):
                await server.send(b"too late")
            await server.close()

            # close() from another task wakes a pending receive().
            server_task = asyncio.ensure_future(upgrade())
            client = await websocket.awrap_client(
                await streams.aconnect(listener.url), ws_url(listener), origin="https://a.example"
            )
            server = await asyncio.wait_for(server_task, 5)
            pending = asyncio.ensure_future(client.receive())
            await asyncio.sleep(0.05)
            assert not pending.done()
            await client.close()
            assert await asyncio.wait_for(pending, 2) == b""
            assert await asyncio.wait_for(server.receive(), 2) == b""
            await server.close()
        finally:
            listener.close()

    asyncio.run(scenario())


def test_send_from_one_thread_while_another_receives(short_dir: Path) -> None:
    with ws_pair("tcp", short_dir) as (client, server):
        echoing, _ = in_thread(lambda: echo(server))
        reader, received = in_thread(lambda: receive_exactly(client, 500 * 1000))
        time.sleep(0.05)  # the reader is blocked in receive() before the sends begin
        for number in range(500):
            client.send(bytes([number % 256]) * 1000)
        reader.join(5)
        assert received == [b"".join(bytes([n % 256]) * 1000 for n in range(500))]

        blocked, woken = in_thread(client.receive)
        time.sleep(0.05)
        assert blocked.is_alive()
        started = time.monotonic()
        client.close()  # from this thread, while the other is blocked in receive()
        blocked.join(2)
        assert woken == [b""]
        assert time.monotonic() - started < 1.5
        echoing.join(2)
        assert not echoing.is_alive()


def test_both_sides_sending_large_messages_at_once_do_not_stall(short_dir: Path) -> None:
    # Each side writes more than the socket buffers hold before reading anything:
    # a side whose reader waited behind its own blocked writer would never read again.
    size, count = 1 << 20, 8
    with ws_pair("tcp", short_dir) as (client, server):
        threads = []
        results: list[list[Any]] = []
        for stream in (client, server):
            for target in (
                lambda s=stream: [s.send(bytes(size)) for _ in range(count)],
                lambda s=stream: len(receive_exactly(s, size * count)),
            ):
                thread, outcome = in_thread(target)
                threads.append(thread)
                results.append(outcome)
        for thread in threads:
            thread.join(WATCHDOG)
        assert results == [[[None] * count], [size * count]] * 2


def test_websocket_over_websocket(short_dir: Path) -> None:
    with ws_pair("unix", short_dir) as (client, server):
        upgrading, outer_server = in_thread(
            lambda: websocket.wrap_server(server, path="/inner", origins=["https://o"])
        )
        outer_client = websocket.wrap_client(client, "ws://localhost/inner", origin="https://o")
        upgrading.join(5)
        (far,) = outer_server
        assert isinstance(far, WebSocketStream)
        with watchdog(outer_client, far):
            payload = os.urandom(200_000)
            outer_client.send(payload)
            assert receive_exactly(far, len(payload)) == payload
            far.send(b"back")
            assert outer_client.receive() == b"back"
            assert far.info["websocket"]["path"] == "/inner"
            assert far.info["websocket"]["origin"] == "https://o"
            assert far.info["peercred"][0] == os.getpid()  # the base's info shows through
            outer_client.close()
            assert far.receive() == b""
            far.close()
        assert server.receive() == b""  # the inner layer's end came with the outer's


def raw_exchange(listener: Listener, request: bytes) -> bytes:
    """Send ``request`` on a plain socket and read until the server closes."""
    host, port = listener.address
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.sendall(request)
        answer = b""
        for _ in range(100):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /canopy HTTP/1.1\r\nHost: x\r\n\r\n", b"426"),
        (b"GET /canopy HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", b"426"),
        (b"POST /canopy HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", b"405"),
        (b"HELLO THERE\r\n\r\n", b"400"),
    ],
)
def test_plain_http_gets_an_http_error(request_bytes: bytes, status: bytes) -> None:
    listener = streams.listen("tcp://127.0.0.1:0")
    try:
        accepted = serve_one(listener)
        started = time.monotonic()
        answer = raw_exchange(listener, request_bytes)
        assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer
        assert b"Failed to open a WebSocket connection" in answer
        assert time.monotonic() - started < 1.5
        with pytest.raises(HandshakeRefused, match=status.decode()):
            accepted.result(timeout=2)
    finally:
        listener.close()


def test_a_wrong_path_gets_404(short_dir: Path) -> None:
    listener = streams.listen("tcp://127.0.0.1:0")
    try:
        accepted = serve_one(listener)
        with pytest.raises(HandshakeRefused, match=r"404 Not Found.*/elsewhere.*serves /canopy"):
            websocket.wrap_client(
                streams.connect(listener.url, timeout=2), ws_url(listener, "/elsewhere")
            )
        with pytest.raises(HandshakeRefused, match="404"):
            accepted.result(timeout=2)
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [("https://app.example", True), ("https://evil.example", False), (None, False)],
)
def test_origins_are_checked_against_the_allow_list(
    origin: str | None, allowed: bool, short_dir: Path
) -> None:
    options = {"origins": ["https://app.example"], "path": None}
    if allowed:
        with ws_pair("tcp", short_dir, client={"origin": origin}, **options) as (client, server):
            assert server.info["websocket"]["origin"] == origin
            client.send(b"hello")
            assert server.receive() == b"hello"
        return
    listener = streams.listen("tcp://127.0.0.1:0")
    try:
        accepted = serve_one(listener, **options)
        with pytest.raises(HandshakeRefused, match="403 Forbidden"):
            websocket.wrap_client(
                streams.connect(listener.url, timeout=2), ws_url(listener), origin=origin
            )
        with pytest.raises(HandshakeRefused, match=r"403.*Origin"):
            accepted.result(timeout=2)
    finally:
        listener.close()


def test_a_silent_peer_times_out() -> None:
    listener = streams.listen("tcp://127.0.0.1:0")
    try:
        with socket.create_connection(listener.address, timeout=2):
            accepted = listener.accept()
            assert accepted is not None
            started = time.monotonic()
            with pytest.raises(TimeoutError, match=r"no complete upgrade request within 0\.3 s"):
                websocket.wrap_server(accepted, timeout=0.3)
            assert time.monotonic() - started < 1.5

        # A "server" that accepts and never answers.
        client = streams.connect(listener.url, timeout=2)
        silent = listener.accept()
        assert silent is not None
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"did not answer the upgrade within 0\.3 s"):
            websocket.wrap_client(client, ws_url(listener), timeout=0.3)
        assert time.monotonic() - started < 1.5
        assert silent.receive().startswith(b"GET /canopy HTTP/1.1")
        assert silent.receive() == b""  # the client closed its end on timing out
        silent.close()
    finally:
        listener.close()


def test_a_silent_peer_times_out_asyncio() -> None:
    async def scenario() -> None:
        listener = await streams.alisten("tcp://127.0.0.1:0")
        try:
            client = await streams.aconnect(listener.url)
            accepted = await listener.accept()
            assert accepted is not None
            started = time.monotonic()
            with pytest.raises(TimeoutError, match=r"no complete upgrade request within 0\.3 s"):
                await websocket.awrap_server(accepted, timeout=0.3)
            assert time.monotonic() - started < 1.5
            assert await asyncio.wait_for(client.receive(), 2) == b""  # the server closed
            await client.close()

            client = await streams.aconnect(listener.url)
            silent = await listener.accept()
            assert silent is not None
            with pytest.raises(TimeoutError, match=r"did not answer the upgrade within 0\.3 s"):
                await websocket.awrap_client(client, ws_url(listener), timeout=0.3)
            await silent.close()
        finally:
            listener.close()

    asyncio.run(scenario())


def test_a_message_over_max_size_fails_the_connection(short_dir: Path) -> None:
    with ws_pair("tcp", short_dir, max_size=1000) as (client, server):
        client.send(bytes(1000))  # at the limit: accepted
        assert receive_exactly(server, 1000) == bytes(1000)
        client.send(bytes(1001))
        with pytest.raises(
            OSError, match=r"over max_size \(1000 bytes\).*code 1009.*raise max_size"
        ):
            server.receive()
        with pytest.raises(OSError, match="max_size"):
            server.receive()  # the failure stays
        with pytest.raises(OSError, match="max_size"):
            server.send(b"x")
        with pytest.raises(OSError, match=r"peer closed the WebSocket connection with 1009"):
            client.receive()


def test_bad_arguments_are_refused_and_the_stream_closed() -> None:
    calls: list[tuple[Callable[[Stream], object], str]] = [
        (lambda s: websocket.wrap_client(s, "http://x/canopy"), "not a WebSocket URL"),
        (lambda s: websocket.wrap_client(s, "ws://x/", max_size=0), "max_size"),
        (lambda s: websocket.wrap_server(s, timeout=0), "timeout"),
        (lambda s: websocket.wrap_server(s, origins="https://a"), "list of allowed"),
    ]
    listener = streams.listen("tcp://127.0.0.1:0")
    try:
        for call, message in calls:
            stream = streams.connect(listener.url, timeout=2)
            with pytest.raises((ValueError, TypeError), match=message):
                call(stream)
            accepted = listener.accept()
            assert accepted is not None
            assert accepted.receive() == b""  # closed by the failed wrap
            accepted.close()
    finally:
        listener.close()


@contextlib.contextmanager
def canopy_server(**options: Any) -> Iterator[tuple[str, Future[WebSocketStream]]]:
    listener = streams.listen("tcp://127.0.0.1:0")
    try:
        yield ws_url(listener), serve_one(listener, **options)
    finally:
        listener.close()


def test_a_websockets_client_talks_to_a_canopy_server() -> None:
    origin = Origin("https://app.example")
    with (
        canopy_server(origins=[origin]) as (url, accepted),
        websockets.sync.client.connect(url, origin=origin) as ws,
    ):
        server = accepted.result(timeout=5)
        with watchdog(server):
            echoing, _ = in_thread(lambda: echo(server))
            ws.send(b"binary" * 1000)
            assert ws.recv(timeout=2) == b"binary" * 1000
            assert ws.ping(b"are you there").wait(2)  # answered by the protocol itself
            payload = os.urandom(300_000)  # more than one read: echoed in pieces
            ws.send(payload)
            echoed = b""
            for _ in range(100):
                if len(echoed) >= len(payload):
                    break
                message = ws.recv(timeout=2)
                assert isinstance(message, bytes)
                echoed += message
            assert echoed == payload
            info = server.info["websocket"]
            assert info["origin"] == "https://app.example"
            assert info["headers"]["user-agent"].startswith("Python/")
            assert info["path"] == PATH
            ws.close()
            echoing.join(2)
            assert not echoing.is_alive()  # the close frame ended the server's stream
            server.close()


def test_a_text_frame_fails_the_connection_with_1003() -> None:
    with canopy_server() as (url, accepted), websockets.sync.client.connect(url) as ws:
        server = accepted.result(timeout=5)
        with watchdog(server):
            ws.send(b"fine")
            assert server.receive() == b"fine"
            ws.send("text is not for a byte stream")
            with pytest.raises(OSError, match=r"text WebSocket message.*1003"):
                server.receive()
            with pytest.raises(ConnectionClosedError) as closed:
                ws.recv(timeout=2)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
            server.close()


def test_a_peer_closing_with_an_error_code_is_an_error() -> None:
    with canopy_server() as (url, accepted), websockets.sync.client.connect(url) as ws:
        server = accepted.result(timeout=5)
        with watchdog(server):
            # The client waits for the answer to its close: read meanwhile.
            reader, outcome = in_thread(server.receive)
            ws.close(code=1011, reason="it broke")
            reader.join(2)
            (error,) = outcome
            assert isinstance(error, OSError)
            expected = "peer closed the WebSocket connection with 1011 (internal error) it broke"
            assert expected in str(error)
            server.close()


@contextlib.asynccontextmanager
async def websockets_echo_server() -> AsyncIterator[tuple[int, list[Any]]]:
    """A plain ``websockets`` server that echoes until it receives ``b"bye"``."""
    seen: list[Any] = []

    async def echo(ws: websockets.asyncio.server.ServerConnection) -> None:
        assert ws.request is not None
        seen.append((ws.request.path, ws.request.headers.get("Origin")))
        async for message in ws:
            if message == b"bye":
                break
            await ws.send(message)

    async with websockets.asyncio.server.serve(echo, "127.0.0.1", 0) as server:
        yield server.sockets[0].getsockname()[1], seen


def test_a_canopy_client_talks_to_a_websockets_server() -> None:
    def blocking_client(port: int) -> None:
        base = streams.connect(f"tcp://127.0.0.1:{port}", timeout=2)
        client = websocket.wrap_client(
            base, f"ws://127.0.0.1:{port}/blocking", origin="https://app.example"
        )
        with watchdog(client):
            assert client.info["websocket"]["headers"]["upgrade"] == "websocket"
            client.send(b"abc" * 1000)
            assert receive_exactly(client, 3000) == b"abc" * 1000
            client.send(b"bye")
            assert client.receive() == b""  # the server's close frame
            client.close()

    async def scenario() -> None:
        async with websockets_echo_server() as (port, seen):
            await asyncio.wait_for(asyncio.to_thread(blocking_client, port), 10)

            base = await streams.aconnect(f"tcp://127.0.0.1:{port}")
            client = await websocket.awrap_client(base, f"ws://127.0.0.1:{port}/async")
            payload = os.urandom(500_000)
            await client.send(payload)
            assert await asyncio.wait_for(areceive_exactly(client, len(payload)), 5) == payload
            await client.send(b"bye")
            assert await asyncio.wait_for(client.receive(), 2) == b""
            await client.close()
            assert seen == [("/blocking", "https://app.example"), ("/async", None)]

    asyncio.run(scenario())


def test_a_canopy_server_refuses_a_websockets_client_politely() -> None:
    async def scenario() -> None:
        listener = await streams.alisten("tcp://127.0.0.1:0")
        try:

            async def upgrade() -> None:
                accepted = await listener.accept()
                assert accepted is not None
                await websocket.awrap_server(accepted, path=PATH, origins=["https://ok"])

            refusing = asyncio.ensure_future(upgrade())
            url = ws_url(listener)
            with pytest.raises(InvalidStatus, match="403"):
                await websockets.asyncio.client.connect(url, origin=Origin("https://bad"))
            with pytest.raises(HandshakeRefused, match="403"):
                await asyncio.wait_for(refusing, 2)
        finally:
            listener.close()

    asyncio.run(scenario())


def test_fragments_of_one_message_count_together_against_max_size() -> None:
    listener = streams.listen("tcp://127.0.0.1:0")
    try:
        accepted = serve_one(listener, max_size=1000)
        with socket.create_connection(listener.address, timeout=2) as sock:
            sock.sendall(upgrade_request(listener.address[1]))
            assert sock.recv(65536).startswith(b"HTTP/1.1 101 ")
            server = accepted.result(timeout=5)
            with watchdog(server):
                # Each fragment's bytes pass on as they come, and the message's size
                # is still held to max_size.
                sock.sendall(ws_frame(BINARY, b"a" * 600, fin=False))
                assert receive_exactly(server, 600) == b"a" * 600
                sock.sendall(ws_frame(CONT, b"b" * 401))
                with pytest.raises(OSError, match=r"over max_size \(1000 bytes\).*code 1009"):
                    server.receive()
                server.close()
    finally:
        listener.close()


def test_pings_from_a_peer_that_reads_nothing_queue_one_pong_at_most() -> None:
    """The server is stuck writing a large message to a peer that reads nothing, and
    the peer pings on: the receiving side must neither wait behind the writer nor
    queue a pong for every ping."""
    listener = streams.listen("tcp://127.0.0.1:0")
    try:
        accepted = serve_one(listener)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(2)
            sock.connect(listener.address)
            sock.sendall(upgrade_request(listener.address[1]))
            server = accepted.result(timeout=5)
            outbox = server._session.outbox
            with watchdog(server):
                sender, _ = in_thread(lambda: server.send(bytes(8 << 20)))
                assert until(lambda: outbox.busy and len(outbox) > 0)
                reader, received = in_thread(server.receive)
                pings = b"".join(ws_frame(PING, b"%06d" % n) for n in range(5000))
                sock.sendall(pings + ws_frame(BINARY, b"after the pings"))
                reader.join(5)
                assert received == [b"after the pings"]
                assert len(outbox) <= 8 + 1  # the stuck message's chunks, and one pong
                assert sender.is_alive()  # still stuck: the pongs did not jump the queue
                server.close()
                sender.join(5)
    finally:
        listener.close()


LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("app.example:8000", ["http://app.example:8000", "https://app.example:8000"]),
        ("App.Example:80", ["http://app.example", "https://app.example:80"]),
        ("[2001:db8::1]:443", ["http://[2001:db8::1]:443", "https://[2001:db8::1]"]),
        ("127.0.0.1:9", [f"{s}://{h}:9" for s in ("http", "https") for h in LOOPBACK]),
        (
            "localhost",
            [f"{s}://{h}" for s in ("http", "https") for h in ("localhost", *LOOPBACK[::2])],
        ),
        (
            "127.0.0.2:9",
            [f"{s}://{h}:9" for s in ("http", "https") for h in ("127.0.0.2", *LOOPBACK)],
        ),
    ],
)
def test_the_origins_of_a_servers_own_pages(host: str, expected: list[str]) -> None:
    assert websocket.same_host_origins(host) == expected


def test_what_the_origin_check_accepts() -> None:
    assert websocket.allowed_origins(None, None) == [None]  # no browser at all
    assert websocket.allowed_origins(None, "a.example:1") == [
        None,
        "http://a.example:1",
        "https://a.example:1",
    ]
    assert websocket.allowed_origins(["https://a.example"], "b:1") == ["https://a.example"]
    assert websocket.allowed_origins(["https://a.example", "*"], None) is None
    assert websocket.allowed_origins(["null"], None) == ["null"]
    for wrong in ("https://a.example/", "a.example", "https://A.example", ""):
        with pytest.raises(ValueError, match=r"is not an origin: write scheme://host\[:port\]"):
            websocket.allowed_origins([wrong], None)


def test_a_server_given_a_wrong_origin_says_so_before_listening() -> None:
    with canopy.Zone("z") as zone, pytest.raises(ValueError, match=r"ws://.*'https://a/b'"):
        zone.serve("ws://127.0.0.1:0/canopy", lambda z: None, b.i_test, origins=["https://a/b"])
