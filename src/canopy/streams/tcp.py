"""TCP streams: ``connect``/``listen`` (blocking) and ``aconnect``/``alisten`` (asyncio).

Every TCP stream has Nagle's algorithm off (TCP_NODELAY): frames are small
and written whole, and a round trip must not wait for a delayed ACK. Kernel
keepalive is on, so a peer whose host dies is noticed even while idle.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from canopy.streams._base import Endpoint
from canopy.streams._socket import (
    AsyncSocketListener,
    AsyncSocketStream,
    SocketListener,
    SocketStream,
    tune_tcp,
)


def connect(host: str, port: int, *, timeout: float | None = None) -> SocketStream:
    """Connect to ``host:port``; ``timeout`` bounds the connection attempt only."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(None)
    tune_tcp(sock)
    return SocketStream(sock)


def listen(host: str, port: int = 0, *, backlog: int = 128) -> SocketListener:
    """Listen on ``host:port`` (0: a free port, reported by the listener's ``url``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=backlog)
    address = _address(sock.getsockname())
    return SocketListener(sock, Endpoint("tcp", *address).url, address, lambda: None)


async def aconnect(host: str, port: int) -> AsyncSocketStream:
    reader, writer = await asyncio.open_connection(host, port)
    return AsyncSocketStream(reader, writer)


async def alisten(host: str, port: int = 0, *, backlog: int = 128) -> AsyncSocketListener:
    listener = AsyncSocketListener(Endpoint("tcp", host, port).url, (host, port), lambda: None)
    server = await asyncio.start_server(listener.connected, host, port, backlog=backlog)
    address = _address(server.sockets[0].getsockname())
    listener.started(server, Endpoint("tcp", *address).url, address)
    return listener


def _address(name: Any) -> tuple[str, int]:
    return str(name[0]), int(name[1])
