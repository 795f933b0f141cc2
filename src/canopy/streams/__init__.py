"""Composable byte streams: one small interface in a blocking form (``Stream``) and an
asyncio form (``AsyncStream``), TCP and Unix socket implementations, and URLs that
name them (``tcp://host:port``, ``unix:/path``).

Layers such as TLS or WebSocket wrap a stream and are one themselves.
"""

from __future__ import annotations

from canopy.streams import tcp, unix
from canopy.streams._base import (
    RECEIVE_SIZE,
    AsyncListener,
    AsyncStream,
    Endpoint,
    Listener,
    Stream,
)


def connect(url: str, *, timeout: float | None = None) -> Stream:
    """A blocking stream to ``url``; ``timeout`` bounds the connection attempt."""
    where = Endpoint.parse(url)
    if where.scheme == "unix":
        return unix.connect(where.path, timeout=timeout)
    return tcp.connect(where.host, where.port, timeout=timeout)


def listen(url: str) -> Listener:
    """A blocking listener at ``url``; its ``url`` says where it really listens."""
    where = Endpoint.parse(url)
    if where.scheme == "unix":
        return unix.listen(where.path)
    return tcp.listen(where.host, where.port)


async def aconnect(url: str) -> AsyncStream:
    where = Endpoint.parse(url)
    if where.scheme == "unix":
        return await unix.aconnect(where.path)
    return await tcp.aconnect(where.host, where.port)


async def alisten(url: str) -> AsyncListener:
    where = Endpoint.parse(url)
    if where.scheme == "unix":
        return await unix.alisten(where.path)
    return await tcp.alisten(where.host, where.port)


__all__ = [
    "RECEIVE_SIZE",
    "AsyncListener",
    "AsyncStream",
    "Endpoint",
    "Listener",
    "Stream",
    "aconnect",
    "alisten",
    "connect",
    "listen",
    "tcp",
    "unix",
]
