"""Servers: accept stream links at a URL, blocking (a thread accepts, one reads each
connection) or on an asyncio loop, and serve each connection a root of its own.

A server owns its listener and the links it accepted until they end; closing it
stops accepting and closes them all. An accepted stream is first made ready by
the URL's layers (a TLS handshake, the WebSocket upgrade) and then by the
user's transform, if any, on a thread or task of its own: a connection that
stalls or is refused there is closed and holds up no other.

A connection has ``handshake_timeout`` seconds from its accept to complete the
layers' handshakes and Canopy's own together, however it trickles its bytes, and
once open is closed when it has sent nothing for ``idle_timeout`` seconds
(``None``: never); either way it is told why in a ``Refuse`` where the protocol
allows one, and everything it held is released.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from canopy.runtime._zone import (
    DEFAULT_CALL_TIMEOUT,
    HANDSHAKE_TIMEOUT,
    IDLE_TIMEOUT,
    KEEPALIVE,
    Service,
)
from canopy.streams import (
    NO_OPTIONS,
    AsyncListener,
    AsyncStream,
    AsyncTransform,
    Layering,
    Listener,
    Stream,
    Transform,
    alayering,
    alisten,
    layering,
    listen,
)
from canopy.transports.stream import (
    CLOSE_TIMEOUT,
    AsyncStreamLink,
    BlockingStreamLink,
    StreamLink,
)
from canopy.wire import ENCODINGS, Encoding, Role

log = logging.getLogger("canopy.transports.server")


RootFactory = Callable[[], tuple[Any, int]]
"""Makes a new connection's root: the object and the interface id it is served as."""


class _Serving:
    """What both servers share: the listener, the links not yet ended, the root factory."""

    def __init__(
        self,
        zone: Service,
        factory: RootFactory,
        encodings: tuple[Encoding, ...],
        handshake_timeout: float,
        close_timeout: float,
        call_timeout: float | None,
        keepalive: float | None,
        idle_timeout: float | None,
    ) -> None:
        self.zone = zone
        self._idle_timeout = idle_timeout
        self._call_timeout = call_timeout
        self._keepalive = keepalive
        self._factory = factory
        self._encodings = encodings
        self._handshake_timeout = handshake_timeout
        self._close_timeout = close_timeout
        self._links: set[StreamLink] = set()
        self._lock = threading.Lock()
        self.closed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} of zone {self.zone.name!r}>"

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def links(self) -> list[StreamLink]:
        """The connections being served now."""
        with self._lock:
            return list(self._links)

    def _root(self) -> tuple[Any, int] | None:
        try:
            return self._factory()
        except Exception:
            log.exception("%r: the root factory failed; the connection is dropped", self)
            return None

    def _forget(self, link: StreamLink) -> None:
        with self._lock:
            self._links.discard(link)

    def _left(self, accepted: float) -> float:
        """What remains of the handshake timeout for Canopy's handshake once the
        stream's layers are ready: a connection has ``handshake_timeout`` for all of
        its handshakes together, so a slow upgrade leaves less for the Hello."""
        return max(0.0, self._handshake_timeout - (time.monotonic() - accepted))

    def _adopt(self, link: StreamLink) -> bool:
        with self._lock:
            if self.closed:
                return False
            self._links.add(link)
            return True


class Server(_Serving):
    """Accepts connections on a thread and serves each its own root (blocking)."""

    def __init__(
        self,
        zone: Service,
        url: str,
        factory: RootFactory,
        *,
        encodings: tuple[Encoding, ...] = ENCODINGS,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        close_timeout: float = CLOSE_TIMEOUT,
        options: Layering = NO_OPTIONS,
        transform: Transform | None = None,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        keepalive: float | None = KEEPALIVE,
        idle_timeout: float | None = IDLE_TIMEOUT,
    ) -> None:
        super().__init__(
            zone,
            factory,
            encodings,
            handshake_timeout,
            close_timeout,
            call_timeout,
            keepalive,
            idle_timeout,
        )
        layering(url, options)  # a TLS URL without a certificate fails before listening
        self._listener: Listener = listen(url)
        # Layered on the URL listened at: a WebSocket server's own origin has its real port.
        layers = layering(self._listener.url, _timed(options, handshake_timeout))
        self._prepare = _chain(layers, transform)
        self._thread = threading.Thread(
            target=self._accept, name=f"canopy-accept-{zone.name}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return self._listener.url

    @property
    def address(self) -> Any:
        return self._listener.address

    def _accept(self) -> None:
        while True:
            stream = self._listener.accept()
            if stream is None:
                return
            if self._prepare is None:
                self._serve(stream, self._handshake_timeout)
                continue
            threading.Thread(
                target=self._welcome,
                args=(stream, time.monotonic()),
                name="canopy-welcome",
                daemon=True,
            ).start()

    def _welcome(self, stream: Stream, accepted: float) -> None:
        """Make an accepted stream ready (handshakes, the user's check), then serve it."""
        assert self._prepare is not None  # noqa: S101 - only called with one
        try:
            ready = self._prepare(stream)
        except Exception as e:
            log.info("%r: a connection was refused: %s", self, e)
            stream.close()
            return
        self._serve(ready, self._left(accepted))

    def _serve(self, stream: Stream, left: float) -> None:
        if self.closed:
            stream.close()
            return
        made = self._root()
        if made is None:
            stream.close()
            return
        link = BlockingStreamLink(
            self.zone,
            stream,
            Role.ACCEPTING,
            root=made[0],
            root_interface=made[1],
            encodings=self._encodings,
            close_timeout=self._close_timeout,
            call_timeout=self._call_timeout,
            keepalive=self._keepalive,
            idle_timeout=self._idle_timeout,
            on_end=self._forget,
        )
        del made
        if not self._adopt(link):
            link.abort("the server closed")
            return
        link.start(self._handshake_timeout, left=left)

    def close(self) -> None:
        """Stop accepting and close every connection: each peer is told goodbye, its
        pending calls fail and everything it held here is released."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            links = [link for link in self._links if isinstance(link, BlockingStreamLink)]
        self._listener.close()
        self._thread.join(self._close_timeout)
        deadline = time.monotonic() + self._close_timeout
        for link in links:
            link.begin_close()
        for link in links:
            link.end_close(deadline)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncServer(_Serving):
    """Accepts connections in a task and serves each its own root (asyncio)."""

    def __init__(
        self,
        zone: Service,
        listener: AsyncListener,
        factory: RootFactory,
        *,
        encodings: tuple[Encoding, ...] = ENCODINGS,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        close_timeout: float = CLOSE_TIMEOUT,
        options: Layering = NO_OPTIONS,
        transform: AsyncTransform | None = None,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        keepalive: float | None = KEEPALIVE,
        idle_timeout: float | None = IDLE_TIMEOUT,
    ) -> None:
        super().__init__(
            zone,
            factory,
            encodings,
            handshake_timeout,
            close_timeout,
            call_timeout,
            keepalive,
            idle_timeout,
        )
        self._listener = listener
        layers = alayering(listener.url, _timed(options, handshake_timeout))
        self._prepare = _achain(layers, transform)
        self._welcoming: set[asyncio.Task[None]] = set()
        self._task = asyncio.get_running_loop().create_task(self._accept())

    @classmethod
    async def start(
        cls,
        zone: Service,
        url: str,
        factory: RootFactory,
        *,
        encodings: tuple[Encoding, ...] = ENCODINGS,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        close_timeout: float = CLOSE_TIMEOUT,
        options: Layering = NO_OPTIONS,
        transform: AsyncTransform | None = None,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        keepalive: float | None = KEEPALIVE,
        idle_timeout: float | None = IDLE_TIMEOUT,
    ) -> AsyncServer:
        alayering(url, options)  # a TLS URL without a certificate fails before listening
        listener = await alisten(url)
        return cls(
            zone,
            listener,
            factory,
            encodings=encodings,
            handshake_timeout=handshake_timeout,
            close_timeout=close_timeout,
            options=options,
            transform=transform,
            call_timeout=call_timeout,
            keepalive=keepalive,
            idle_timeout=idle_timeout,
        )

    @property
    def url(self) -> str:
        return self._listener.url

    @property
    def address(self) -> Any:
        return self._listener.address

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            stream = await self._listener.accept()
            if stream is None:
                return
            if self._prepare is None:
                await self._serve(stream, self._handshake_timeout)
                continue
            task = loop.create_task(self._welcome(stream, time.monotonic()))
            self._welcoming.add(task)
            task.add_done_callback(self._welcoming.discard)

    async def _welcome(self, stream: AsyncStream, accepted: float) -> None:
        assert self._prepare is not None  # noqa: S101 - only called with one
        try:
            ready = await self._prepare(stream)
        except asyncio.CancelledError:
            await stream.close()
            raise
        except Exception as e:
            log.info("%r: a connection was refused: %s", self, e)
            await stream.close()
            return
        await self._serve(ready, self._left(accepted))

    async def _serve(self, stream: AsyncStream, left: float) -> None:
        if self.closed:
            await stream.close()
            return
        made = self._root()
        if made is None:
            await stream.close()
            return
        link = AsyncStreamLink(
            self.zone,
            stream,
            Role.ACCEPTING,
            root=made[0],
            root_interface=made[1],
            encodings=self._encodings,
            close_timeout=self._close_timeout,
            call_timeout=self._call_timeout,
            keepalive=self._keepalive,
            idle_timeout=self._idle_timeout,
            on_end=self._forget,
        )
        del made
        if not self._adopt(link):
            link.abort("the server closed")
            return
        asyncio.get_running_loop().call_later(left, link._expire, self._handshake_timeout)

    def close(self) -> None:
        """Stop accepting and start closing every connection (see ``wait_closed``)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            links = list(self._links)
        self._listener.close()
        for task in list(self._welcoming):
            task.cancel()
        for link in links:
            link.close()

    async def wait_closed(self) -> None:
        await asyncio.wait([self._task, *self._welcoming])
        with self._lock:
            links = [link for link in self._links if isinstance(link, AsyncStreamLink)]
        for link in links:
            await link.wait_closed()

    async def __aenter__(self) -> AsyncServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


def _timed(options: Layering, handshake_timeout: float) -> Layering:
    """The layers' handshakes share the server's handshake timeout unless set apart."""
    if options.timeout != NO_OPTIONS.timeout:
        return options
    return dataclasses.replace(options, timeout=handshake_timeout)


def _chain(layers: Transform | None, transform: Transform | None) -> Transform | None:
    if layers is None or transform is None:
        return layers or transform
    return lambda stream: transform(layers(stream))


def _achain(
    layers: AsyncTransform | None, transform: AsyncTransform | None
) -> AsyncTransform | None:
    if layers is None or transform is None:
        return layers or transform

    async def both(stream: AsyncStream) -> AsyncStream:
        return await transform(await layers(stream))

    return both
