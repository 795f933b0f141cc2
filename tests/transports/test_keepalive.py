"""Keepalive: a link silent for its keepalive interval pings its peer, and one silent as
long again is dead; peers that are merely idle are never dropped."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

import canopy
from behaviour import TestService as Service
from behaviour import Widget, b
from canopy.runtime import close
from canopy.wire import Hello, Protocol, Role
from waiting import until

SILENT_PEER_ZONE = 0x5EED_0000_0001


def silent_client(address: tuple[str, int]) -> socket.socket:
    """A peer that completes the handshake and then never says or reads anything."""
    sock = socket.create_connection(address, timeout=5)
    hello = Protocol(Role.CONNECTING, SILENT_PEER_ZONE)
    sock.sendall(hello.data_to_send())
    return sock


def test_hello_says_whether_a_client_answers_idle_pings() -> None:
    assert Hello((1,), (1,), 7).quiet is False


@pytest.mark.parametrize("mode", ["blocking", "asyncio"])
def test_a_server_drops_a_silent_client(mode: str) -> None:
    async def asyncio_server() -> float:
        async with canopy.AsyncZone("service") as service:
            server = await service.serve(
                "tcp://127.0.0.1:0", lambda z: Service(), b.i_test, keepalive=0.2
            )
            sock = silent_client(server.address)
            for _ in range(100):
                if server.links:
                    break
                await asyncio.sleep(0.01)
            start = time.monotonic()
            while server.links and time.monotonic() - start < 3:
                await asyncio.sleep(0.01)
            sock.close()
            assert not server.links and service.exported() == {}
            return time.monotonic() - start

    if mode == "asyncio":
        took = asyncio.run(asyncio_server())
    else:
        with canopy.Zone("service") as service:
            server = service.serve(
                "tcp://127.0.0.1:0", lambda z: Service(), b.i_test, keepalive=0.2
            )
            sock = silent_client(server.address)
            assert until(lambda: bool(server.links))
            start = time.monotonic()
            assert until(lambda: not server.links)
            took = time.monotonic() - start
            sock.close()
            assert service.exported() == {}
    assert took < 1.5  # a ping after 0.2 s of silence, dead 0.2 s later


@pytest.mark.parametrize("mode", ["blocking", "asyncio"])
def test_idle_clients_are_not_dropped(mode: str) -> None:
    """An asyncio client answers pings; a blocking one says in its Hello that it may not
    while idle, and pings on its own instead, so that a server's idle timeout (three
    times its keepalive here) passes it by too."""
    with canopy.Zone("service") as service:
        server = service.serve(
            "tcp://127.0.0.1:0", lambda z: Service(), b.i_test, keepalive=0.1, idle_timeout=0.3
        )
        if mode == "blocking":
            with canopy.Zone("client") as client:
                root = client.connect(server.url, b.i_test, keepalive=0.1)
                time.sleep(0.6)
                assert root.add(1, 2) == 3
                assert root.widget_name(Widget("w")) == "w"
                close(root)
        else:

            async def idle() -> None:
                async with canopy.AsyncZone("client") as client:
                    root = await client.connect(server.url, b.i_test, keepalive=0.1)
                    await asyncio.sleep(0.6)
                    assert await root.add(1, 2) == 3
                    close(root)

            asyncio.run(idle())
        assert until(lambda: not server.links)


def test_a_client_notices_a_silent_server() -> None:
    """The server answers the handshake and then hangs: the asyncio client's link dies
    within two keepalive intervals, failing the call it has pending."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def scenario() -> None:
        async with canopy.AsyncZone("client") as client:
            loop = asyncio.get_running_loop()
            connecting = loop.create_task(
                client.connect(f"tcp://127.0.0.1:{port}", b.i_test, keepalive=0.2)
            )
            conn, _ = await loop.run_in_executor(None, listener.accept)
            server = Protocol(
                Role.ACCEPTING,
                SILENT_PEER_ZONE,
                root_object=1,
                root_interface=b.i_test.__canopy__.id,
            )
            server.receive_data(await loop.run_in_executor(None, conn.recv, 65536))
            conn.sendall(server.data_to_send())  # Welcome, then silence
            root = await connecting
            start = time.monotonic()
            with pytest.raises((canopy.TransportError, canopy.CallCancelled)):
                await root.add(1, 2)
            assert time.monotonic() - start < 1.5
            conn.close()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 10))
    finally:
        listener.close()
