"""TLS as a stream layer: the sans-I/O core alone, then blocking and asyncio streams over
TCP, Unix sockets and TLS itself: bytes both ways, end of stream, what each side knows
of the other, certificate and host name checks, mutual TLS, threads, timeouts, and a
handshake with the ``openssl`` command-line client."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme

from canopy import streams
from canopy.streams import RECEIVE_SIZE, AsyncStream, Stream, tls
from canopy.streams.tls import (
    AsyncTlsStream,
    TlsConnection,
    TlsStream,
    awrap_client,
    awrap_server,
    client_context,
    peer_identity,
    server_context,
    wrap_client,
    wrap_server,
)
from stream_urls import KINDS, url_for

BIG = 4 * 1024 * 1024
SMALL_SENDS = 500
T = TypeVar("T")


@dataclass(frozen=True)
class Pki:
    """PEM files made for this module: a CA, certificates it issued, and a stranger CA."""

    ca: Path
    server: Path  # localhost and 127.0.0.1, key and chain in one file
    elsewhere: Path  # a certificate for another host name
    alice: Path  # a client certificate with the commonName "alice"
    stranger_ca: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    where = tmp_path_factory.mktemp("pki")
    ca, stranger = trustme.CA(), trustme.CA()
    files = Pki(*(where / f"{name}.pem" for name in Pki.__dataclass_fields__))
    ca.cert_pem.write_to_path(str(files.ca))
    stranger.cert_pem.write_to_path(str(files.stranger_ca))
    for path, cert in (
        (files.server, ca.issue_cert("localhost", "127.0.0.1")),
        (files.elsewhere, ca.issue_cert("elsewhere.example")),
        (files.alice, ca.issue_cert("alice.example", common_name="alice")),
    ):
        cert.private_key_and_cert_chain_pem.write_to_path(str(path))
    return files


def both(server: Callable[[], T], client: Callable[[], T]) -> tuple[T | BaseException, ...]:
    """Run ``server`` on a thread and ``client`` here; each one's result or exception."""
    outcome: list[T | BaseException] = []

    def run_server() -> None:
        try:
            outcome.append(server())
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=run_server, daemon=True)
    thread.start()
    try:
        mine: T | BaseException = client()
    except BaseException as e:
        mine = e
    thread.join(5)
    assert not thread.is_alive(), "the server side did not finish"
    return outcome[0], mine


def base_pair(url: str) -> tuple[streams.Listener, Stream, Stream]:
    listener = streams.listen(url)
    client = streams.connect(listener.url, timeout=2)
    server = listener.accept()
    assert server is not None
    return listener, client, server


def handshake(
    client_raw: Stream,
    server_raw: Stream,
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
    hostname: str | None = "localhost",
) -> tuple[TlsStream | BaseException, ...]:
    """(server, client): a TlsStream, or what each side's handshake raised."""
    return both(
        lambda: wrap_server(server_raw, server_ctx, timeout=5),
        lambda: wrap_client(client_raw, client_ctx, server_hostname=hostname, timeout=5),
    )


def tls_pair(
    url: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> tuple[streams.Listener, TlsStream, TlsStream]:
    listener, client_raw, server_raw = base_pair(url)
    server, client = handshake(client_raw, server_raw, server_ctx, client_ctx)
    assert isinstance(server, TlsStream), server
    assert isinstance(client, TlsStream), client
    return listener, client, server


def receive_exactly(stream: Stream, size: int, seconds: float = 5.0) -> bytes:
    """``size`` bytes from ``stream``; a timer closes it (ending the wait) after ``seconds``."""
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

    return await asyncio.wait_for(read(), 5)


def payload() -> bytes:
    return bytes(range(256)) * (BIG // 256)


def check_info(client: Stream | AsyncStream, server: Stream | AsyncStream, kind: str) -> None:
    tls = client.info["tls"]
    assert tls["version"] == "TLSv1.3"
    assert isinstance(tls["cipher"], str) and tls["cipher"].startswith("TLS_")
    assert ("DNS", "localhost") in tls["peer_certificate"]["subjectAltName"]
    assert tls["peer_identity"] == "localhost"
    assert server.info["tls"]["version"] == "TLSv1.3"
    assert server.info["tls"]["peer_certificate"] is None
    assert server.info["tls"]["peer_identity"] is None
    if kind == "tcp":  # what the inner stream knows is kept
        assert server.info["address"][0] == "127.0.0.1"
    else:
        assert "peercred" in client.info and "peercred" in server.info


# ---------------------------------------------------------------- the core, without I/O


def pump(a: TlsConnection, b: TlsConnection) -> None:
    """Carry each one's ciphertext to the other (``b""`` would mean the end of stream)."""
    for source, sink in ((a, b), (b, a)):
        if data := source.data_to_send():
            sink.receive_data(data)


def test_core_handshake_data_tickets_and_close_notify(pki: Pki) -> None:
    ticketing = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ticketing.load_cert_chain(pki.server)
    assert ticketing.num_tickets > 0
    client = TlsConnection(client_context(cafile=pki.ca), server_hostname="localhost")
    server = TlsConnection(ticketing, server_side=True)
    for _ in range(4):
        done = client.do_handshake(), server.do_handshake()
        pump(client, server)
    assert done == (True, True)
    # Only session tickets have arrived: no plaintext yet, and not the end either.
    assert client.read() is None
    server.write(b"hello")
    client.receive_data(server.data_to_send())
    assert client.read() == b"hello"
    assert client.read() is None
    client.write(b"x" * 100_000)
    server.receive_data(client.data_to_send())
    assert server.read(1_000_000) == b"x" * 100_000  # several records in one read
    client.close_notify()
    client.close_notify()  # once only
    server.receive_data(client.data_to_send())
    assert server.read() == b"" and server.close_notify_received
    assert server.read() == b""


def test_core_truncation_is_the_end_of_stream(pki: Pki) -> None:
    client = TlsConnection(client_context(cafile=pki.ca), server_hostname="localhost")
    server = TlsConnection(server_context(pki.server), server_side=True)
    for _ in range(4):
        client.do_handshake(), server.do_handshake()
        pump(client, server)
    server.write(b"last words")
    client.receive_data(server.data_to_send())
    client.receive_data(b"")  # the inner stream ended without close_notify
    assert client.read() == b"last words"
    assert client.read() == b""
    assert client.ended and not client.close_notify_received


def test_peer_identity() -> None:
    assert peer_identity(None) is None
    assert peer_identity({}) is None
    assert peer_identity({"subject": ((("commonName", "bob"),),)}) == "bob"
    san = (("email", "x@y"), ("IP Address", "10.0.0.1"), ("DNS", "b.example"))
    assert peer_identity({"subject": ((("organizationName", "O"),),), "subjectAltName": san}) == (
        "10.0.0.1"
    )


def test_contexts_verify_by_default_and_name_bad_files(pki: Pki, tmp_path: Path) -> None:
    client = client_context()
    assert client.verify_mode == ssl.CERT_REQUIRED and client.check_hostname
    assert client.minimum_version == ssl.TLSVersion.TLSv1_2
    assert server_context(pki.server).verify_mode == ssl.CERT_NONE
    mutual = server_context(pki.server, client_cafile=pki.ca)
    assert mutual.verify_mode == ssl.CERT_REQUIRED
    missing = tmp_path / "missing.pem"
    with pytest.raises(OSError, match=r"certfile=.*missing\.pem"):
        server_context(missing)
    with pytest.raises(ssl.SSLError, match=r"certfile=.*ca\.pem.*private key"):
        server_context(pki.ca)  # a certificate without its key
    with pytest.raises(OSError, match="CA certificates"):
        client_context(cafile=missing)
    with pytest.raises(ValueError, match="certfile"):
        client_context(keyfile=pki.server)


# ---------------------------------------------------------------- blocking streams


@pytest.mark.parametrize("kind", KINDS)
def test_blocking_bytes_both_ways_and_end_of_stream(kind: str, pki: Pki, short_dir: Path) -> None:
    url = url_for(kind, short_dir)
    listener, client, server = tls_pair(
        url, server_context(pki.server), client_context(cafile=pki.ca)
    )
    try:
        check_info(client, server, kind)
        big = payload()

        def send_all() -> None:
            client.send(big)
            for i in range(SMALL_SENDS):
                client.send(b"%04d" % i)

        sender = threading.Thread(target=send_all)
        sender.start()
        received = receive_exactly(server, len(big) + 4 * SMALL_SENDS)
        sender.join(5)
        assert received[: len(big)] == big
        assert received[len(big) :] == b"".join(b"%04d" % i for i in range(SMALL_SENDS))
        server.send(bytearray(b"got it"))
        assert receive_exactly(client, 6) == b"got it"
        client.close()
        client.close()  # idempotent
        assert server.receive() == b""
        assert server.receive() == b""
        with pytest.raises(OSError, match="closed"):
            client.send(b"late")
    finally:
        client.close()
        server.close()
        listener.close()


def test_wrong_host_name_fails_the_client_with_what_to_do(pki: Pki) -> None:
    listener, client_raw, server_raw = base_pair("tcp://127.0.0.1:0")
    try:
        server, client = handshake(
            client_raw, server_raw, server_context(pki.elsewhere), client_context(cafile=pki.ca)
        )
        assert isinstance(client, ssl.SSLCertVerificationError)
        assert "certificate verify failed" in str(client)
        assert "not for 'localhost'" in str(client) and "server_hostname=" in str(client)
        assert isinstance(server, ssl.SSLError)
        assert "the client rejected this server's certificate" in str(server)
        assert client_raw.receive() == b""  # a failed handshake closes the inner stream
    finally:
        client_raw.close()
        listener.close()


def test_untrusted_ca_fails_the_client(pki: Pki) -> None:
    listener, client_raw, server_raw = base_pair("tcp://127.0.0.1:0")
    try:
        _, client = handshake(
            client_raw,
            server_raw,
            server_context(pki.server),
            client_context(cafile=pki.stranger_ca),
        )
        assert isinstance(client, ssl.SSLCertVerificationError)
        assert "not issued by a trusted CA" in str(client) and "cafile=" in str(client)
    finally:
        listener.close()


def test_verifying_host_names_needs_one(pki: Pki) -> None:
    listener, client_raw, server_raw = base_pair("tcp://127.0.0.1:0")
    try:
        with pytest.raises(ValueError, match="server_hostname="):
            wrap_client(client_raw, client_context(cafile=pki.ca), server_hostname=None)
        assert server_raw.receive() == b""  # the inner stream was closed
    finally:
        server_raw.close()
        listener.close()


def test_mutual_tls_refuses_a_client_without_a_certificate(pki: Pki) -> None:
    listener, client_raw, server_raw = base_pair("tcp://127.0.0.1:0")
    try:
        server, client = handshake(
            client_raw,
            server_raw,
            server_context(pki.server, client_cafile=pki.ca),
            client_context(cafile=pki.ca),
        )
        assert isinstance(server, ssl.SSLError)
        assert "requires a client certificate" in str(server)
        # In TLS 1.3 the client's handshake is over before the server judges it: the
        # refusal arrives with the first read.
        if isinstance(client, TlsStream):
            with pytest.raises(ssl.SSLError, match=r"requires a client certificate.*certfile="):
                client.receive()
            client.close()
        else:
            assert isinstance(client, ssl.SSLError), client
    finally:
        listener.close()


def test_mutual_tls_names_the_client(pki: Pki) -> None:
    listener, client, server = tls_pair(
        "tcp://127.0.0.1:0",
        server_context(pki.server, client_cafile=pki.ca),
        client_context(cafile=pki.ca, certfile=pki.alice),
    )
    try:
        assert server.info["tls"]["peer_identity"] == "alice"
        assert ("DNS", "alice.example") in server.info["tls"]["peer_certificate"]["subjectAltName"]
        assert client.info["tls"]["peer_identity"] == "localhost"
        client.send(b"hi")
        assert receive_exactly(server, 2) == b"hi"
    finally:
        client.close()
        server.close()
        listener.close()


def test_send_while_another_thread_is_blocked_receiving(pki: Pki) -> None:
    ticketing = server_context(pki.server)
    ticketing.num_tickets = 2  # post-handshake records the blocked reader must read past
    listener, client, server = tls_pair(
        "tcp://127.0.0.1:0", ticketing, client_context(cafile=pki.ca)
    )
    count, size = 200, 1000
    echoed: list[bytes] = []
    reader = threading.Thread(target=lambda: echoed.append(receive_exactly(client, count * size)))

    def echo() -> None:
        for _ in range(count * size):
            chunk = server.receive()
            if not chunk:
                return
            server.send(chunk)

    echoer = threading.Thread(target=echo)
    try:
        reader.start()
        echoer.start()
        time.sleep(0.05)  # the reader is blocked in receive by now
        for i in range(count):
            client.send(bytes([i % 256]) * size)
        reader.join(5)
        assert echoed == [b"".join(bytes([i % 256]) * size for i in range(count))]
    finally:
        client.close()
        echoer.join(5)
        server.close()
        listener.close()
    assert not echoer.is_alive()


def test_close_from_another_thread_wakes_a_blocked_receive(pki: Pki) -> None:
    listener, client, server = tls_pair(
        "tcp://127.0.0.1:0", server_context(pki.server), client_context(cafile=pki.ca)
    )
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(client.receive()))
    try:
        reader.start()
        time.sleep(0.05)
        client.close()
        reader.join(2)
        assert got == [b""]
        assert server.receive() == b""  # close_notify, then the end
    finally:
        server.close()
        listener.close()


def test_close_does_not_wait_for_a_send_blocked_on_a_peer_not_reading(pki: Pki) -> None:
    listener, client, server = tls_pair(
        "tcp://127.0.0.1:0", server_context(pki.server), client_context(cafile=pki.ca)
    )
    failed: list[BaseException] = []
    block = memoryview(bytes(1024 * 1024))

    def flood() -> None:
        try:
            for _ in range(256):  # far more than the kernel buffers: the send blocks
                client.send(block)
        except OSError as e:
            failed.append(e)

    sender = threading.Thread(target=flood)
    try:
        sender.start()
        time.sleep(0.2)
        started = time.monotonic()
        client.close()
        assert time.monotonic() - started < 1.0
        sender.join(2)
        assert not sender.is_alive() and len(failed) == 1
    finally:
        server.close()
        listener.close()


class Stalling:
    """A stream whose sends, once ``stalled``, wait until it is closed: a peer that has
    stopped reading, with every buffer on the way full."""

    def __init__(self, inner: Stream) -> None:
        self.inner = inner
        self.stalled = False
        self.closed = threading.Event()

    @property
    def info(self) -> dict[str, Any]:
        return self.inner.info

    def send(self, data: bytes | bytearray | memoryview) -> None:
        if self.stalled:
            self.closed.wait(5)
            raise BrokenPipeError("closed while a send was blocked")
        self.inner.send(data)

    def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        return self.inner.receive(max_bytes)

    def close(self) -> None:
        self.closed.set()
        self.inner.close()


def test_close_gives_up_on_close_notify_a_peer_will_not_take(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tls, "CLOSE_NOTIFY_TIMEOUT", 0.1)
    listener, client_raw, server_raw = base_pair("tcp://127.0.0.1:0")
    stalling = Stalling(client_raw)
    server, client = handshake(
        stalling, server_raw, server_context(pki.server), client_context(cafile=pki.ca)
    )
    try:
        assert isinstance(client, TlsStream) and isinstance(server, TlsStream)
        assert isinstance(client, Stream)  # TLS over a stream is a stream
        stalling.stalled = True
        started = time.monotonic()
        client.close()
        assert 0.05 < time.monotonic() - started < 1.0
        assert stalling.closed.is_set()
        assert server.receive() == b""
    finally:
        listener.close()
        server_raw.close()


@pytest.mark.parametrize("side", ["server", "client"])
def test_blocking_handshake_times_out_on_a_silent_peer(side: str, pki: Pki) -> None:
    listener, client_raw, server_raw = base_pair("tcp://127.0.0.1:0")
    silent, mine = (client_raw, server_raw) if side == "server" else (server_raw, client_raw)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"did not complete the TLS handshake within 0\.3 s"):
            if side == "server":
                wrap_server(mine, server_context(pki.server), timeout=0.3)
            else:
                wrap_client(mine, client_context(cafile=pki.ca), server_hostname="x", timeout=0.3)
        assert 0.25 < time.monotonic() - started < 2.0
        if side == "server":
            assert silent.receive() == b""  # closed at the deadline
    finally:
        silent.close()
        listener.close()


def test_tls_over_tls(pki: Pki) -> None:
    listener, client1, server1 = tls_pair(
        "tcp://127.0.0.1:0", server_context(pki.server), client_context(cafile=pki.ca)
    )
    try:
        server2, client2 = handshake(
            client1,
            server1,
            server_context(pki.server, client_cafile=pki.ca),
            client_context(cafile=pki.ca, certfile=pki.alice),
        )
        assert isinstance(server2, TlsStream) and isinstance(client2, TlsStream)
        assert server2.info["tls"]["peer_identity"] == "alice"
        assert client2.info["address"] == client1.info["address"]
        big = payload()
        sender = threading.Thread(target=client2.send, args=(big,))
        sender.start()
        assert receive_exactly(server2, len(big)) == big
        sender.join(5)
        server2.send(b"inner")
        assert receive_exactly(client2, 5) == b"inner"
        client2.close()
        assert server2.receive() == b""
        server2.close()
    finally:
        client1.close()
        server1.close()
        listener.close()


def test_openssl_s_client_talks_to_wrap_server(pki: Pki) -> None:
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    if not Path(openssl).exists():
        pytest.skip("no openssl command-line tool to test against")
    listener = streams.listen("tcp://127.0.0.1:0")
    port = listener.address[1]
    served: list[object] = []
    opened: list[Stream] = []

    def serve() -> None:
        raw = listener.accept()
        assert raw is not None
        opened.append(raw)
        try:
            tls = wrap_server(raw, server_context(pki.server), timeout=5)
        except OSError as e:
            served.append(e)
            return
        opened.append(tls)
        received = b""
        for _ in range(100):
            chunk = tls.receive()
            received += chunk
            if not chunk or b"\n" in received:
                break
        served.append(received)
        served.append(tls.info["tls"]["version"])
        tls.send(b"hello from canopy\n")
        tls.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        result = subprocess.run(
            [
                openssl,
                "s_client",
                "-connect",
                f"127.0.0.1:{port}",
                "-CAfile",
                str(pki.ca),
                "-servername",
                "localhost",
                "-verify_hostname",
                "localhost",
                "-verify_return_error",
            ],
            input=b"hello from openssl\n",
            capture_output=True,
            timeout=10,
            check=False,
        )
        server.join(5)
    finally:
        for stream in opened:
            stream.close()
        listener.close()
    output = result.stdout.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in output, output + result.stderr.decode(errors="replace")
    assert "TLSv1.3" in output
    assert served == [b"hello from openssl\n", "TLSv1.3"]


# ---------------------------------------------------------------- asyncio streams


async def abase_pair(url: str) -> tuple[streams.AsyncListener, AsyncStream, AsyncStream]:
    listener = await streams.alisten(url)
    client = await streams.aconnect(listener.url)
    server = await listener.accept()
    assert server is not None
    return listener, client, server


async def ahandshake(
    client_raw: AsyncStream,
    server_raw: AsyncStream,
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
) -> tuple[AsyncTlsStream, AsyncTlsStream]:
    """(server, client)"""
    server, client = await asyncio.gather(
        awrap_server(server_raw, server_ctx, timeout=5),
        awrap_client(client_raw, client_ctx, server_hostname="localhost", timeout=5),
    )
    return server, client


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(scenario(), 10)

    asyncio.run(bounded())


@pytest.mark.parametrize("kind", KINDS)
def test_asyncio_bytes_both_ways_and_end_of_stream(kind: str, pki: Pki, short_dir: Path) -> None:
    async def scenario() -> None:
        listener, client_raw, server_raw = await abase_pair(url_for(kind, short_dir))
        server, client = await ahandshake(
            client_raw, server_raw, server_context(pki.server), client_context(cafile=pki.ca)
        )
        check_info(client, server, kind)
        assert isinstance(client, AsyncStream) and isinstance(server, AsyncStream)
        big = payload()

        async def send_all() -> None:
            await client.send(big)
            for i in range(SMALL_SENDS):
                await client.send(b"%04d" % i)

        _, received = await asyncio.gather(
            send_all(), areceive_exactly(server, len(big) + 4 * SMALL_SENDS)
        )
        assert received[: len(big)] == big
        assert received[len(big) :] == b"".join(b"%04d" % i for i in range(SMALL_SENDS))
        await server.send(memoryview(b"got it"))
        assert await areceive_exactly(client, 6) == b"got it"
        await client.close()
        await client.close()  # idempotent
        assert await server.receive() == b""
        with pytest.raises(OSError, match="closed"):
            await client.send(b"late")
        await server.close()
        listener.close()

    run(scenario)


def test_asyncio_wrong_host_name_and_mutual_tls(pki: Pki) -> None:
    async def scenario() -> None:
        listener, client_raw, server_raw = await abase_pair("tcp://127.0.0.1:0")
        refused = await asyncio.gather(
            awrap_server(server_raw, server_context(pki.elsewhere), timeout=5),
            awrap_client(
                client_raw, client_context(cafile=pki.ca), server_hostname="localhost", timeout=5
            ),
            return_exceptions=True,
        )
        assert isinstance(refused[0], ssl.SSLError)
        assert "rejected this server's certificate" in str(refused[0])
        assert isinstance(refused[1], ssl.SSLCertVerificationError)
        assert "not for 'localhost'" in str(refused[1])
        client_raw = await streams.aconnect(listener.url)
        accepted = await listener.accept()
        assert accepted is not None
        server, client = await ahandshake(
            client_raw,
            accepted,
            server_context(pki.server, client_cafile=pki.ca),
            client_context(cafile=pki.ca, certfile=pki.alice),
        )
        assert server.info["tls"]["peer_identity"] == "alice"
        await client.send(b"hi")
        assert await areceive_exactly(server, 2) == b"hi"
        await client.close()
        await server.close()
        listener.close()

    run(scenario)


@pytest.mark.parametrize("side", ["server", "client"])
def test_asyncio_handshake_times_out_on_a_silent_peer(side: str, pki: Pki) -> None:
    async def scenario() -> None:
        listener, client_raw, server_raw = await abase_pair("tcp://127.0.0.1:0")
        silent, mine = (client_raw, server_raw) if side == "server" else (server_raw, client_raw)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"did not complete the TLS handshake within 0\.3 s"):
            if side == "server":
                await awrap_server(mine, server_context(pki.server), timeout=0.3)
            else:
                await awrap_client(
                    mine, client_context(cafile=pki.ca), server_hostname="x", timeout=0.3
                )
        assert 0.25 < time.monotonic() - started < 2.0
        if side == "server":
            assert await silent.receive() == b""  # closed at the deadline
        await silent.close()
        listener.close()

    run(scenario)


def test_asyncio_tls_over_tls(pki: Pki) -> None:
    async def scenario() -> None:
        listener, client_raw, server_raw = await abase_pair("tcp://127.0.0.1:0")
        server1, client1 = await ahandshake(
            client_raw, server_raw, server_context(pki.server), client_context(cafile=pki.ca)
        )
        server2, client2 = await ahandshake(
            client1, server1, server_context(pki.server), client_context(cafile=pki.ca)
        )
        big = payload()
        _, received = await asyncio.gather(client2.send(big), areceive_exactly(server2, len(big)))
        assert received == big
        await server2.send(b"inner")
        assert await areceive_exactly(client2, 5) == b"inner"
        await client2.close()
        assert await server2.receive() == b""
        await server2.close()
        listener.close()

    run(scenario)
