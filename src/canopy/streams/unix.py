"""Unix domain socket streams: ``connect``/``listen`` (blocking) and ``aconnect``/``alisten``
(asyncio). Each side's ``info`` carries the other's ``peercred`` (pid, uid, gid) where
the platform reports it, so a server can decide whom it serves.

A listener removes its socket file when it closes, unless another one has
replaced it meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable

from canopy.streams._base import Endpoint
from canopy.streams._socket import (
    AsyncSocketListener,
    AsyncSocketStream,
    SocketListener,
    SocketStream,
)


def connect(path: str, *, timeout: float | None = None) -> SocketStream:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return SocketStream(sock)


def listen(path: str, *, backlog: int = 128) -> SocketListener:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return SocketListener(sock, Endpoint("unix", path=path).url, path, _remover(path))


async def aconnect(path: str) -> AsyncSocketStream:
    reader, writer = await asyncio.open_unix_connection(path)
    return AsyncSocketStream(reader, writer)


async def alisten(path: str, *, backlog: int = 128) -> AsyncSocketListener:
    url = Endpoint("unix", path=path).url
    listener = AsyncSocketListener(url, path, lambda: None)
    server = await asyncio.start_unix_server(listener.connected, path, backlog=backlog)
    listener.started(server, url, path, _remover(path))
    return listener


def _remover(path: str) -> Callable[[], None]:
    """Removes the socket file at ``path`` if it is still the one bound now."""
    try:
        bound = os.stat(path).st_ino
    except OSError:
        return lambda: None

    def remove() -> None:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == bound:
                os.unlink(path)

    return remove
