"""Composable byte streams: one small interface in a blocking form (``Stream``) and an
asyncio form (``AsyncStream``); TCP and Unix sockets as bases; TLS, WebSocket and zstd
compression as layers that wrap any stream and are streams themselves.

A URL names a base and its layers (``tls://host:port``, ``wss://host:port/path``,
``unix+tls:/path``, ``tcp+zstd://host:port``): ``connect`` opens the base and wraps
it layer by layer, innermost first; ``listen`` accepts bases and ``layering``
gives the function that wraps each accepted stream on the serving side.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from canopy.streams import tcp, unix
from canopy.streams._base import (
    LAYERS,
    RECEIVE_SIZE,
    AsyncListener,
    AsyncStream,
    Endpoint,
    Listener,
    Stream,
)

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a layer's handshake (TLS, the WebSocket upgrade) may take by default."""

Transform = Callable[[Stream], Stream]
"""Turns an accepted stream into the one to use, or raises ``OSError`` to refuse it."""
AsyncTransform = Callable[[AsyncStream], Awaitable[AsyncStream]]


@dataclasses.dataclass(frozen=True, slots=True)
class Layering:
    """What the layers of a URL need beyond the URL: TLS contexts, the WebSocket
    origins a server accepts or the origin a client sends, and a handshake timeout.

    A WebSocket server without ``origins`` serves clients that send no Origin (no
    browser) and pages from its own host and port only; ``origins`` names the
    pages it serves instead (``["*"]``: any page on the web, unsafe).

    Without ``tls``, a client verifies the server against the system's trusted
    certificates and the URL's host name; a server has no default and must be
    given ``canopy.streams.tls.server_context(certfile, keyfile)``.
    """

    tls: ssl.SSLContext | None = None
    server_hostname: str | None = None
    origins: Sequence[str] | None = None
    origin: str | None = None
    timeout: float | None = HANDSHAKE_TIMEOUT


NO_OPTIONS = Layering()


def connect(url: str, *, timeout: float | None = None, options: Layering = NO_OPTIONS) -> Stream:
    """A blocking stream to ``url``, every layer's handshake done; ``timeout`` bounds
    the connection attempt, ``options.timeout`` each layer's handshake."""
    where = Endpoint.parse(url)
    if where.scheme == "unix":
        stream: Stream = unix.connect(where.path, timeout=timeout)
    else:
        stream = tcp.connect(where.host, where.port, timeout=timeout)
    try:
        for layer in where.layers:
            stream = _client_layer(layer, stream, where, options)
    except BaseException:
        stream.close()
        raise
    return stream


async def aconnect(url: str, *, options: Layering = NO_OPTIONS) -> AsyncStream:
    """An asyncio stream to ``url``, every layer's handshake done."""
    where = Endpoint.parse(url)
    if where.scheme == "unix":
        stream: AsyncStream = await unix.aconnect(where.path)
    else:
        stream = await tcp.aconnect(where.host, where.port)
    try:
        for layer in where.layers:
            stream = await _aclient_layer(layer, stream, where, options)
    except BaseException:
        await stream.close()
        raise
    return stream


def listen(url: str) -> Listener:
    """A blocking listener for ``url``'s base; its ``url`` is the whole URL with the real
    port. What it accepts is the base stream: ``layering`` wraps it."""
    where = Endpoint.parse(url)
    if where.scheme == "unix":
        base: Listener = unix.listen(where.path)
    else:
        base = tcp.listen(where.host, where.port)
    return base if not where.layers else _Named(base, _bound(where, base.address))


async def alisten(url: str) -> AsyncListener:
    where = Endpoint.parse(url)
    if where.scheme == "unix":
        base: AsyncListener = await unix.alisten(where.path)
    else:
        base = await tcp.alisten(where.host, where.port)
    return base if not where.layers else _ANamed(base, _bound(where, base.address))


def layering(url: str, options: Layering = NO_OPTIONS) -> Transform | None:
    """The serving side's wrapping of an accepted stream for ``url``'s layers (TLS
    handshake, WebSocket upgrade...), or None when the URL has none. Run it off
    the accepting thread: a slow client must not hold up the next one."""
    where = Endpoint.parse(url)
    if not where.layers:
        return None
    _check_server(where, options)

    def wrap(stream: Stream) -> Stream:
        try:
            for layer in where.layers:
                stream = _server_layer(layer, stream, where, options)
        except BaseException:
            stream.close()
            raise
        return stream

    return wrap


def alayering(url: str, options: Layering = NO_OPTIONS) -> AsyncTransform | None:
    """``layering`` for asyncio streams."""
    where = Endpoint.parse(url)
    if not where.layers:
        return None
    _check_server(where, options)

    async def wrap(stream: AsyncStream) -> AsyncStream:
        try:
            for layer in where.layers:
                stream = await _aserver_layer(layer, stream, where, options)
        except BaseException:
            await stream.close()
            raise
        return stream

    return wrap


# ---------------------------------------------------------------- the layers


def _check_server(where: Endpoint, options: Layering) -> None:
    if "tls" in where.layers and options.tls is None:
        raise ValueError(
            f"{where.url}: serving TLS needs a certificate: pass "
            "tls=canopy.streams.tls.server_context(certfile, keyfile)"
        )
    if "ws" in where.layers:
        from canopy.streams import websocket

        try:
            websocket.allowed_origins(options.origins, None)
        except ValueError as e:
            raise ValueError(f"{where.url}: {e}") from None


def _client_tls(where: Endpoint, options: Layering) -> tuple[ssl.SSLContext, str | None]:
    from canopy.streams import tls

    context = options.tls if options.tls is not None else tls.client_context()
    hostname = options.server_hostname or (where.host if where.scheme == "tcp" else None)
    if hostname is None and context.check_hostname:
        raise ValueError(
            f"{where.url}: TLS over a Unix socket has no host name to verify: pass "
            "server_hostname= (the name the server's certificate is for)"
        )
    return context, hostname


def _ws_url(where: Endpoint) -> str:
    host = where.host if where.scheme == "tcp" else "localhost"
    host = f"[{host}]" if ":" in host else host
    port = f":{where.port}" if where.scheme == "tcp" else ""
    return f"ws://{host}{port}{where.resource}"


def _listening(where: Endpoint) -> str | None:
    """The ``host:port`` a WebSocket server's own pages come from; a Unix socket has none."""
    if where.scheme != "tcp":
        return None
    host = f"[{where.host}]" if ":" in where.host else where.host
    return f"{host}:{where.port}"


def _client_layer(layer: str, stream: Stream, where: Endpoint, options: Layering) -> Stream:
    if layer == "tls":
        from canopy.streams import tls

        context, hostname = _client_tls(where, options)
        return tls.wrap_client(stream, context, server_hostname=hostname, timeout=options.timeout)
    if layer == "ws":
        from canopy.streams import websocket

        return websocket.wrap_client(
            stream, _ws_url(where), origin=options.origin, timeout=options.timeout
        )
    from canopy.streams import zstd

    return zstd.wrap(stream)


async def _aclient_layer(
    layer: str, stream: AsyncStream, where: Endpoint, options: Layering
) -> AsyncStream:
    if layer == "tls":
        from canopy.streams import tls

        context, hostname = _client_tls(where, options)
        return await tls.awrap_client(
            stream, context, server_hostname=hostname, timeout=options.timeout
        )
    if layer == "ws":
        from canopy.streams import websocket

        return await websocket.awrap_client(
            stream, _ws_url(where), origin=options.origin, timeout=options.timeout
        )
    from canopy.streams import zstd

    return zstd.awrap(stream)


def _server_layer(layer: str, stream: Stream, where: Endpoint, options: Layering) -> Stream:
    if layer == "tls":
        from canopy.streams import tls

        assert options.tls is not None  # noqa: S101 - _check_server saw to it
        return tls.wrap_server(stream, options.tls, timeout=options.timeout)
    if layer == "ws":
        from canopy.streams import websocket

        return websocket.wrap_server(
            stream,
            path=where.resource,
            origins=options.origins,
            host=_listening(where),
            timeout=options.timeout,
        )
    from canopy.streams import zstd

    return zstd.wrap(stream)


async def _aserver_layer(
    layer: str, stream: AsyncStream, where: Endpoint, options: Layering
) -> AsyncStream:
    if layer == "tls":
        from canopy.streams import tls

        assert options.tls is not None  # noqa: S101 - _check_server saw to it
        return await tls.awrap_server(stream, options.tls, timeout=options.timeout)
    if layer == "ws":
        from canopy.streams import websocket

        return await websocket.awrap_server(
            stream,
            path=where.resource,
            origins=options.origins,
            host=_listening(where),
            timeout=options.timeout,
        )
    from canopy.streams import zstd

    return zstd.awrap(stream)


# ---------------------------------------------------------------- listeners named by their URL


def _bound(where: Endpoint, address: Any) -> str:
    if where.scheme == "tcp":
        return dataclasses.replace(where, host=str(address[0]), port=int(address[1])).url
    return where.url


class _Named:
    """A base listener reporting the layered URL it serves."""

    def __init__(self, base: Listener, url: str) -> None:
        self._base = base
        self._url = url

    def __repr__(self) -> str:
        return f"<Listener {self._url}>"

    @property
    def url(self) -> str:
        return self._url

    @property
    def address(self) -> Any:
        return self._base.address

    def accept(self) -> Stream | None:
        return self._base.accept()

    def close(self) -> None:
        self._base.close()


class _ANamed:
    def __init__(self, base: AsyncListener, url: str) -> None:
        self._base = base
        self._url = url

    def __repr__(self) -> str:
        return f"<AsyncListener {self._url}>"

    @property
    def url(self) -> str:
        return self._url

    @property
    def address(self) -> Any:
        return self._base.address

    async def accept(self) -> AsyncStream | None:
        return await self._base.accept()

    def close(self) -> None:
        self._base.close()


__all__ = [
    "HANDSHAKE_TIMEOUT",
    "LAYERS",
    "NO_OPTIONS",
    "RECEIVE_SIZE",
    "AsyncListener",
    "AsyncStream",
    "AsyncTransform",
    "Endpoint",
    "Layering",
    "Listener",
    "Stream",
    "Transform",
    "aconnect",
    "alayering",
    "alisten",
    "connect",
    "layering",
    "listen",
    "tcp",
    "unix",
]
