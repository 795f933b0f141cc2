"""URLs that stack layers in any order over either base: what ``connect`` opens, the
serving side's ``layering`` accepts, byte for byte, blocking and asyncio."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from canopy import streams
from canopy.streams import Layering, tls

STACKS = ["tcp+ws+tls", "tcp+zstd+tls", "tcp+tls+zstd", "unix+tls+ws", "wss", "unix+zstd+ws"]
PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, in and back out through every layer


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Layering, Layering]]:
    where = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(where / "ca.pem"))
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(
        str(where / "server.pem")
    )
    server = Layering(tls=tls.server_context(where / "server.pem"))
    client = Layering(tls=tls.client_context(cafile=where / "ca.pem"), server_hostname="localhost")
    yield server, client


def url(stack: str, where: Path) -> str:
    if stack.startswith("unix"):
        return f"{stack}:{where}/s.sock"
    return f"{stack}://127.0.0.1:0/canopy" if "ws" in stack else f"{stack}://127.0.0.1:0"


def echo_once(stream: streams.Stream) -> None:
    received = bytearray()
    while len(received) < len(PAYLOAD):
        chunk = stream.receive()
        if not chunk:
            break
        received += chunk
    stream.send(bytes(received))
    stream.close()


@pytest.mark.parametrize("stack", STACKS)
def test_blocking_layers_in_any_order(
    stack: str, short_dir: Path, contexts: tuple[Layering, Layering]
) -> None:
    server_options, client_options = contexts
    listener = streams.listen(url(stack, short_dir))
    wrap = streams.layering(listener.url, server_options)
    assert wrap is not None

    def serve() -> None:
        accepted = listener.accept()
        assert accepted is not None
        echo_once(wrap(accepted))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        client = streams.connect(listener.url, timeout=5, options=client_options)
        client.send(PAYLOAD)
        back = bytearray()
        while len(back) < len(PAYLOAD):
            chunk = client.receive()
            assert chunk, "the stream ended early"
            back += chunk
        assert back == PAYLOAD
        assert client.receive() == b""
        client.close()
        thread.join(5)
        assert not thread.is_alive()
    finally:
        listener.close()


@pytest.mark.parametrize("stack", STACKS)
def test_asyncio_layers_in_any_order(
    stack: str, short_dir: Path, contexts: tuple[Layering, Layering]
) -> None:
    server_options, client_options = contexts

    async def scenario() -> None:
        listener = await streams.alisten(url(stack, short_dir))
        wrap = streams.alayering(listener.url, server_options)
        assert wrap is not None

        async def serve() -> None:
            accepted = await listener.accept()
            assert accepted is not None
            stream = await wrap(accepted)
            received = bytearray()
            while len(received) < len(PAYLOAD):
                chunk = await stream.receive()
                if not chunk:
                    break
                received += chunk
            await stream.send(bytes(received))
            await stream.close()

        serving = asyncio.create_task(serve())
        try:
            client = await streams.aconnect(listener.url, options=client_options)
            await client.send(PAYLOAD)
            back = bytearray()
            while len(back) < len(PAYLOAD):
                chunk = await client.receive()
                assert chunk, "the stream ended early"
                back += chunk
            assert back == PAYLOAD
            await client.close()
            await serving
        finally:
            listener.close()

    asyncio.run(asyncio.wait_for(scenario(), 20))


@pytest.mark.parametrize("stack", ["tcp", *STACKS])
def test_abort_drops_what_waits_to_be_written_through_every_layer(
    stack: str, short_dir: Path, contexts: tuple[Layering, Layering]
) -> None:
    """A server writing to a client that never reads is stuck; ``abort`` on the top of
    any stack of layers drops what waits and closes the socket beneath at once (a link
    does so to a peer past max_pending_write_bytes)."""
    server_options, client_options = contexts

    async def scenario() -> None:
        listener = await streams.alisten(url(stack, short_dir))
        wrap = streams.alayering(listener.url, server_options)
        served: asyncio.Queue[tuple[object, object]] = asyncio.Queue()

        async def serve() -> None:
            accepted = await listener.accept()
            assert accepted is not None
            await served.put((accepted, await wrap(accepted) if wrap is not None else accepted))

        serving = asyncio.create_task(serve())
        try:
            client = await streams.aconnect(listener.url, options=client_options)
            base, stream = await asyncio.wait_for(served.get(), 10)
            await serving
            noise = os.urandom(8 << 20)  # zstd makes little of PAYLOAD
            with pytest.raises(TimeoutError):  # the client reads nothing: the send sticks
                await asyncio.wait_for(stream.send(noise), 0.5)  # type: ignore[attr-defined]
            transport = base._writer.transport  # type: ignore[attr-defined]
            assert transport.get_write_buffer_size() > 0
            stream.abort()  # type: ignore[attr-defined]
            assert transport.is_closing() and transport.get_write_buffer_size() == 0
            await client.close()
        finally:
            listener.close()

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_layers_are_added_to_what_the_stream_tells(
    short_dir: Path, contexts: tuple[Layering, Layering]
) -> None:
    server_options, client_options = contexts
    listener = streams.listen(url("tcp+zstd+tls", short_dir))
    wrap = streams.layering(listener.url, server_options)
    assert wrap is not None
    result: list[dict[str, object]] = []

    def serve() -> None:
        accepted = listener.accept()
        assert accepted is not None
        stream = wrap(accepted)
        result.append(stream.info)
        stream.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        client = streams.connect(listener.url, timeout=5, options=client_options)
        assert {"address", "zstd", "tls"} <= set(client.info)
        client.close()
        thread.join(5)
        assert {"address", "zstd", "tls"} <= set(result[0])
    finally:
        listener.close()


def test_a_layer_whose_handshake_gets_no_answer_times_out(short_dir: Path) -> None:
    listener = streams.listen(url("tls", short_dir))  # listening, never accepting
    try:
        with pytest.raises(TimeoutError, match=r"did not complete the TLS handshake within 0\.3 s"):
            streams.connect(listener.url, timeout=2, options=Layering(timeout=0.3))
    finally:
        listener.close()
