"""The WebSocket layer: a stream over any other stream whose bytes travel as binary
WebSocket messages after an HTTP upgrade, so a link can pass wherever HTTP goes.

The ``websockets`` library's sans-I/O protocol does the framing and the upgrade;
``_Session`` turns it into bytes in, bytes out, without I/O; ``WebSocketStream`` and
``AsyncWebSocketStream`` are the thin blocking and asyncio drivers around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import threading
from collections import deque
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import (
    InvalidMessage,
    InvalidOrigin,
    InvalidURI,
    PayloadTooBig,
    ProtocolError,
)
from websockets.frames import OK_CLOSE_CODES, CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import OPEN, SEND_EOF, Event
from websockets.server import ServerProtocol
from websockets.typing import Origin
from websockets.uri import parse_uri

from canopy.streams._base import RECEIVE_SIZE, AsyncStream, Deadline, Stream

MAX_SIZE = 16 << 20
"""The largest message accepted by default, in bytes: a security limit, since a message
is held whole in memory before its bytes are handed on."""
MESSAGE_SIZE = 1 << 20
"""The largest message a send is cut into: far under the default ``max_size``."""

HANDSHAKE_TIMEOUT = 10.0
"""Seconds the upgrade may take by default."""

CLOSE_TIMEOUT = 1.0
"""Seconds ``close`` may spend writing its close frame to a peer that does not read
before it closes the inner stream regardless."""

ANY_ORIGIN = "*"
"""In a server's ``origins``: accept a page from any origin. Unsafe for a browser
endpoint: every web page its users visit may then call it with their access."""

_PONG = bytes([0x80 | Opcode.PONG.value])  # the first byte of a whole pong frame
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#\sA-Z]+|null")
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


class HandshakeRefused(OSError):
    """The upgrade to WebSocket was refused, by the peer or by this side; the message
    gives the HTTP status and why."""


class _Outbox:
    """The bytes the protocol has produced, in order, and who is writing them.

    One writer at a time takes chunks in order, so frames never interleave. A sender
    waits until its own frames are written, taking over as writer when the writer
    before it stops. The receiving side writes what it produced itself (pongs, the
    answer to a close) but never waits behind a sender or writes a sender's frames:
    were it to block there, a peer doing the same while both send large messages
    would leave neither side reading, and both would hang.

    So a peer that pings without reading while a sender is stuck could queue pongs
    without end: a pong still waiting gives way to the newer one instead, as RFC 6455
    (5.5.3) allows, and at most one is ever queued.

    ``queued`` and ``written`` count chunks since the start; a caller's chunks are
    written once ``written`` reaches the ``queued`` that ``push`` returned.
    """

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self.queued = 0
        self.written = 0
        self.busy = False
        self.error: BaseException | None = None
        self._taken = 0
        self._pong = -1  # the count of the last pong queued, -1: none yet

    def __len__(self) -> int:
        """Chunks queued and not yet taken by a writer."""
        return len(self._chunks)

    def push(self, chunks: list[bytes]) -> int:
        """Queue ``chunks``; returns the mark at which all of them are written."""
        if self.error is None:
            for chunk in chunks:
                if chunk[:1] == _PONG:
                    if self._pong >= self._taken:
                        self._chunks[self._pong - self._taken] = chunk
                        continue
                    self._pong = self.queued
                self._chunks.append(chunk)
                self.queued += 1
        return self.queued

    def claim(self, mark: int) -> bool:
        """Become the writer when chunks up to ``mark`` are unwritten and nobody is
        writing; False when they are written, the outbox failed, or another writes."""
        if self.written >= mark or self.error is not None or self.busy:
            return False
        self.busy = True
        return True

    def take(self, until: int | None) -> bytes | None:
        """The writer's next chunk (``SEND_EOF``, ``b""``: close the inner stream), or
        None once it has written everything or up to ``until``, its turn then over."""
        if not self._chunks or (until is not None and self.written >= until):
            self.busy = False
            return None
        self._taken += 1
        return self._chunks.popleft()

    def done(self) -> None:
        self.written += 1

    def fail(self, error: BaseException) -> None:
        """A write failed: what was not written never will be."""
        self.error = error
        self.busy = False
        self._chunks.clear()


class _Session:
    """One side of a WebSocket connection, with no I/O: feed it what the inner stream
    delivers (``handshake`` then ``feed``), ask it for received bytes (``read``),
    hand it bytes to send (``send``); what must be written goes to ``outbox``.

    Refusals and failures become ``OSError`` messages naming ``where`` (the URL a
    client asked for, or the address a server's peer came from).
    """

    def __init__(
        self,
        protocol: ClientProtocol | ServerProtocol,
        where: str,
        *,
        path: str | None = None,
        origin: str | None = None,
    ) -> None:
        self.protocol = protocol
        self.where = where
        self.outbox = _Outbox()
        self.refusal: OSError | None = None
        self.info: dict[str, Any] = {}
        self._path = path
        self._origin = origin
        self._inbox: deque[bytes] = deque()
        self._offset = 0
        self._failure: str | None = None
        self._ended = False

    @classmethod
    def client(cls, url: str, *, origin: str | None, max_size: int) -> _Session:
        try:
            uri = parse_uri(url)
        except InvalidURI as exc:
            raise ValueError(
                f"{url!r} is not a WebSocket URL: use ws://host:port/path "
                "(or wss://; TLS itself comes from the stream being wrapped)"
            ) from exc
        protocol = ClientProtocol(
            uri, origin=None if origin is None else Origin(origin), max_size=max_size
        )
        session = cls(protocol, url, path=uri.resource_name, origin=origin)
        protocol.send_request(protocol.connect())
        session._queue_writes()
        return session

    @classmethod
    def server(
        cls,
        where: str,
        *,
        path: str | None,
        origins: Sequence[str] | None,
        host: str | None,
        max_size: int,
    ) -> _Session:
        allowed = allowed_origins(origins, host)
        return cls(ServerProtocol(origins=allowed, max_size=max_size), where, path=path)

    # -- the upgrade

    def handshake(self, data: bytes) -> bool:
        """Feed bytes of the upgrade, ``b""`` when the inner stream has ended. True once
        it is over: open, or refused with ``refusal`` set, to raise once the outbox
        (a server's response) is written."""
        protocol = self.protocol
        if data:
            protocol.receive_data(data)
        else:
            protocol.receive_eof()
        events = protocol.events_received()
        for index, event in enumerate(events):
            if isinstance(event, Request):
                self._answer(event)
            elif isinstance(event, Response):
                self._answered(event)
            else:
                continue
            if self.refusal is None and protocol.state is OPEN:
                # Frames that came in the same read as the request or response.
                self._absorb(events[index + 1 :])
            break
        if self.refusal is None and protocol.handshake_exc is not None:
            self._refuse_bad_message(protocol.handshake_exc)
        if self.refusal is None and protocol.state is not OPEN and not data:
            self.refusal = ConnectionError(
                f"{self.where}: the peer closed the connection in the middle of the "
                "WebSocket upgrade"
            )
        self._queue_writes()
        return self.refusal is not None or protocol.state is OPEN

    def check(self) -> None:
        if self.refusal is not None:
            raise self.refusal

    def _answer(self, request: Request) -> None:
        protocol = self.protocol
        assert isinstance(protocol, ServerProtocol)  # noqa: S101 - only servers get requests
        asked = request.path.partition("?")[0]
        if self._path is not None and asked != self._path:
            reason = f"there is no WebSocket endpoint at {asked}; this server serves {self._path}"
            response = protocol.reject(
                HTTPStatus.NOT_FOUND, f"Failed to open a WebSocket connection: {reason}.\n"
            )
        else:
            response = protocol.accept(request)
            reason = str(protocol.handshake_exc)
            if isinstance(protocol.handshake_exc, InvalidOrigin):
                reason += (
                    " (a browser page from elsewhere; if it may call this server, allow "
                    "its origin: origins= here, --origin with canopy serve)"
                )
        protocol.send_response(response)
        if response.status_code != 101:
            self.refusal = HandshakeRefused(
                f"{self.where}: refused the WebSocket upgrade of {request.path} with "
                f"{response.status_code} {response.reason_phrase}: {reason}"
            )
            return
        self.info = {
            "path": request.path,
            "origin": protocol.origin,
            "subprotocol": protocol.subprotocol,
            "headers": _plain(request.headers),
        }

    def _answered(self, response: Response) -> None:
        protocol = self.protocol
        error = protocol.handshake_exc
        if response.status_code != 101:
            said = bytes(response.body).decode(errors="replace").strip().splitlines()
            why = f": {said[0][:300]}" if said else ""
            self.refusal = HandshakeRefused(
                f"{self.where}: the server refused the WebSocket upgrade with "
                f"{response.status_code} {response.reason_phrase}{why}"
            )
        elif error is not None:
            self.refusal = HandshakeRefused(
                f"{self.where}: the server's answer is not a valid WebSocket upgrade: {error}"
            )
        else:
            self.info = {
                "path": self._path,
                "origin": self._origin,
                "subprotocol": protocol.subprotocol,
                "headers": _plain(response.headers),
            }

    def _refuse_bad_message(self, error: Exception) -> None:
        """The request or response could not even be parsed."""
        cause = error.__cause__
        if isinstance(error, InvalidMessage) and isinstance(cause, EOFError):
            self.refusal = ConnectionError(
                f"{self.where}: the peer closed the connection in the middle of the "
                "WebSocket upgrade"
            )
            return
        detail = f"{error}: {cause}" if cause is not None else str(error)
        protocol = self.protocol
        if isinstance(protocol, ServerProtocol):
            writes = protocol.data_to_send()
            status = ""
            if all(chunk == SEND_EOF for chunk in writes):
                # The library answers a request it cannot parse by closing; an HTTP
                # client is better served by a 400 saying why.
                text = f"Failed to open a WebSocket connection: {detail}.\n"
                writes.insert(0, protocol.reject(HTTPStatus.BAD_REQUEST, text).serialize())
                status = " with 400 Bad Request"
            self.outbox.push(writes)
            self.refusal = HandshakeRefused(
                f"{self.where}: refused the WebSocket upgrade{status}: {detail}"
            )
        else:
            self.refusal = HandshakeRefused(
                f"{self.where}: the server did not answer the WebSocket upgrade with HTTP "
                f"({detail}); is it a WebSocket server?"
            )

    # -- the open connection

    def feed(self, data: bytes) -> int:
        """Feed bytes from the inner stream, ``b""`` when it has ended; returns the
        outbox mark of what the protocol answered (pongs, a close)."""
        if not self._ended:
            if data:
                self.protocol.receive_data(data)
            else:
                self._ended = True
                self.protocol.receive_eof()
            self._absorb(self.protocol.events_received())
        return self._queue_writes()

    def read(self, max_bytes: int) -> bytes | None:
        """Up to ``max_bytes`` received bytes; ``b""`` at the end, None when more must
        be fed first. Raises ``OSError`` once what came before a failure is read."""
        if self._inbox:
            head = self._inbox[0]
            if self._offset == 0 and len(head) <= max_bytes:
                self._inbox.popleft()
                return head
            part = head[self._offset : self._offset + max_bytes]
            self._offset += len(part)
            if self._offset == len(head):
                self._inbox.popleft()
                self._offset = 0
            return part
        if self._failure is not None:
            raise OSError(self._failure)
        if self._ended:
            return b""
        return None

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Queue ``data`` as binary messages of at most ``MESSAGE_SIZE`` bytes; returns the
        outbox mark at which the last is written. Raises ``OSError`` when the connection
        can no longer send."""
        if self.protocol.state is not OPEN or self.outbox.error is not None:
            raise OSError(self.why_closed())
        if isinstance(data, memoryview) and (data.format != "B" or not data.c_contiguous):
            data = data.tobytes()
        # A byte stream has no message boundaries to keep: bounded messages stay under
        # any peer's max_size however much the layer above writes at once.
        with memoryview(data) as view:
            for start in range(0, len(view), MESSAGE_SIZE):
                self.protocol.send_binary(view[start : start + MESSAGE_SIZE])
        return self._queue_writes()

    def close(self) -> int | None:
        """Queue a close frame if the connection is open; its outbox mark, or None."""
        if self.protocol.state is not OPEN or self.outbox.error is not None:
            return None
        self.protocol.send_close(CloseCode.NORMAL_CLOSURE)
        return self._queue_writes()

    def ended(self) -> None:
        """The inner stream failed while reading: nothing more will be fed."""
        self._ended = True

    def _queue_writes(self) -> int:
        return self.outbox.push(self.protocol.data_to_send())

    def _absorb(self, events: list[Event]) -> None:
        protocol = self.protocol
        for event in events:
            if self._failure is not None or not isinstance(event, Frame):
                continue
            if event.opcode is Opcode.BINARY or event.opcode is Opcode.CONT:
                if event.data:
                    self._inbox.append(bytes(event.data))
            elif event.opcode is Opcode.TEXT:
                # Continuation frames of a text message are never seen: failing the
                # connection discards everything after this frame.
                protocol.fail(CloseCode.UNSUPPORTED_DATA, "Canopy carries binary messages only")
                self._failure = (
                    f"{self.where}: the peer sent a text WebSocket message; a Canopy "
                    "stream carries binary messages only, so the connection was closed "
                    "with code 1003 (the peer must send its bytes as binary messages)"
                )
            elif event.opcode is Opcode.CLOSE:
                self._ended = True
                close = protocol.close_rcvd
                if close is not None and close.code not in OK_CLOSE_CODES:
                    self._failure = (
                        f"{self.where}: the peer closed the WebSocket connection with {close}"
                    )
        error = protocol.parser_exc
        if self._failure is None and error is not None and not isinstance(error, EOFError):
            self._failure = self._explain(error)

    def _explain(self, error: Exception) -> str:
        sent = self.protocol.close_sent
        code = f" with code {sent.code}" if sent is not None else ""
        if isinstance(error, PayloadTooBig):
            return (
                f"{self.where}: a WebSocket message over max_size "
                f"({self.protocol.max_message_size} bytes) arrived ({error}), so the "
                f"connection was closed{code}; if the peer means to send messages that "
                "large, raise max_size on this side (canopy.streams.websocket.wrap_server "
                "or wrap_client, max_size=...)"
            )
        if isinstance(error, ProtocolError):
            return (
                f"{self.where}: the peer broke the WebSocket protocol ({error}), so the "
                f"connection was closed{code}"
            )
        return f"{self.where}: the WebSocket connection failed{code}: {error!r}"

    def why_closed(self) -> str:
        if self._failure is not None:
            return self._failure
        close = self.protocol.close_rcvd
        if close is not None:  # before a write error: answering a close often meets one
            return f"{self.where}: the peer closed the WebSocket connection ({close})"
        if self.outbox.error is not None:
            return (
                f"{self.where}: the WebSocket stream failed writing to the stream beneath "
                f"it: {self.outbox.error!r}"
            )
        return f"{self.where}: the WebSocket connection is closed"


def _plain(headers: Headers) -> dict[str, str]:
    """HTTP headers as a plain dict: names lower-cased (they are case-insensitive),
    repeated fields joined with commas as HTTP allows."""
    plain: dict[str, str] = {}
    for name, value in headers.raw_items():
        key = name.lower()
        plain[key] = f"{plain[key]}, {value}" if key in plain else value
    return plain


def same_host_origins(host: str) -> list[str]:
    """The origins of pages served from ``host`` (``name:port``, ``[v6]:port`` or a
    name alone), over http and https; from the usual loopback names too when
    ``host`` is a loopback address. A wildcard address (0.0.0.0) names no page."""
    name, colon, port = host.rpartition(":")
    if not colon or name.endswith(":") or not port.isdigit():
        name, port = host, ""  # no port, or a bare IPv6 address
    name = name.lower()
    bare = name.strip("[]")
    try:
        loopback = bare == "localhost" or ipaddress.ip_address(bare).is_loopback
    except ValueError:
        loopback = False
    if ":" in bare:
        name = f"[{bare}]"
    names = dict.fromkeys((name, *_LOOPBACK)) if loopback else (name,)
    found = []
    for scheme, default in (("http", "80"), ("https", "443")):
        for each in names:
            found.append(
                f"{scheme}://{each}" if port in ("", default) else f"{scheme}://{each}:{port}"
            )
    return found


def allowed_origins(origins: Sequence[str] | None, host: str | None) -> list[Origin | None] | None:
    """What a server's ``Origin`` check accepts, as ``websockets`` takes it (None in the
    list: no Origin header; None for the list: anything).

    By default (``origins`` None) a request without an Origin, which no browser
    makes, and pages from the server's own ``host``; otherwise exactly ``origins``,
    or anything when they hold ``ANY_ORIGIN``.
    """
    if origins is None:
        own = same_host_origins(host) if host else []
        return [None, *(Origin(o) for o in own)]
    if isinstance(origins, str):
        raise TypeError("origins is a list of allowed origins, not one string")
    if ANY_ORIGIN in origins:
        return None
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"{origin!r} is not an origin: write scheme://host[:port] in lower case, "
                "with no path, as browsers send it (https://app.example, "
                f"http://127.0.0.1:8000), or {ANY_ORIGIN!r} for any origin"
            )
    return [Origin(o) for o in origins]


def _check_limits(max_size: int, timeout: float | None) -> None:
    if max_size < 1:
        raise ValueError(f"max_size must be a positive number of bytes, not {max_size}")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be positive seconds or None, not {timeout}")


def _where(stream: Stream | AsyncStream) -> str:
    """How a server's messages name the client: its address, or on a Unix socket
    (whose clients have no address) its process."""
    info = stream.info
    if info.get("address"):
        return f"WebSocket client {info['address']!r}"
    if "peercred" in info:
        return f"WebSocket client (pid {info['peercred'][0]})"
    return "WebSocket client"


def _timed_out(session: _Session, timeout: float | None) -> TimeoutError:
    side = (
        "the server did not answer the upgrade"
        if isinstance(session.protocol, ClientProtocol)
        else "the client sent no complete upgrade request"
    )
    return TimeoutError(
        f"{session.where}: {side} within {timeout} s; the connection was closed "
        "(raise timeout= if the network is that slow)"
    )


class WebSocketStream:
    """A blocking stream of binary WebSocket messages over another blocking stream:
    each ``send`` is one message, ``receive`` returns their bytes as they come. Control
    frames are the layer's own: a ping is answered within ``receive``, which returns
    only when message bytes (or the end) arrive, so the stream's user never sees one."""

    def __init__(self, inner: Stream, session: _Session) -> None:
        self._inner = inner
        self._session = session
        # Guards the session (the protocol object is not thread-safe); never held
        # while this side reads or writes the inner stream.
        self._lock = threading.Lock()
        self._writable = threading.Condition(self._lock)
        self._closed = False
        self._info: dict[str, Any] = {}

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<WebSocketStream {self._session.where}{state}>"

    @property
    def info(self) -> dict[str, Any]:
        return self._info

    def send(self, data: bytes | bytearray | memoryview) -> None:
        if not len(data):
            return  # an empty message would carry nothing a byte stream can see
        with self._lock:
            if self._closed:
                raise OSError(f"{self._session.where}: the WebSocket stream is closed")
            mark = self._session.send(data)
        self._write(mark, wait=True)

    def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        session = self._session
        while True:
            with self._lock:
                if self._closed:
                    return b""
                data = session.read(max_bytes)
            if data is not None:
                return data
            try:
                incoming = self._inner.receive(RECEIVE_SIZE)
            except OSError:
                with self._lock:
                    session.ended()
                    if self._closed:
                        return b""  # closed by another thread as this one read
                raise
            with self._lock:
                mark = session.feed(incoming)
            self._write(mark, wait=False)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            mark = self._session.close()
        if mark is not None:
            # A peer that reads nothing could block the close frame's write forever:
            # closing the inner stream is what interrupts it.
            timer = threading.Timer(CLOSE_TIMEOUT, self._close_inner)
            timer.daemon = True
            timer.start()
            try:
                self._write(mark, wait=False)
            finally:
                timer.cancel()
        self._close_inner()

    def _upgrade(self, timeout: float | None) -> None:
        session = self._session
        deadline = Deadline(timeout, self._close_inner)
        try:
            self._write(session.outbox.queued, wait=True)
            while not session.handshake(self._inner.receive(RECEIVE_SIZE)):
                self._write(session.outbox.queued, wait=True)
            self._write(session.outbox.queued, wait=True)
            session.check()
        except BaseException as exc:
            expired = deadline.stop()
            self._close_inner()
            if expired:
                raise _timed_out(session, timeout) from exc
            raise
        if deadline.stop():  # it ran out as the upgrade finished: the stream is closed
            raise _timed_out(session, timeout)
        self._info = {**self._inner.info, "websocket": session.info}

    def _write(self, mark: int, *, wait: bool) -> None:
        """Write the outbox up to ``mark``: as a sender (``wait``), waiting for the
        writer at work and then writing on until the outbox is empty; otherwise only
        if nobody is writing, and no further than ``mark``."""
        outbox = self._session.outbox
        with self._lock:
            while not outbox.claim(mark):
                if outbox.written >= mark:
                    return
                if outbox.error is not None:
                    if wait:
                        raise OSError(self._session.why_closed()) from outbox.error
                    return
                if not wait:
                    return
                self._writable.wait()
        until = None if wait else mark
        try:
            while True:
                with self._lock:
                    chunk = outbox.take(until)
                    if chunk is None:
                        self._writable.notify_all()
                        return
                if chunk == SEND_EOF:
                    self._close_inner()  # the protocol is done with the connection
                else:
                    self._inner.send(chunk)
                with self._lock:
                    outbox.done()
        except BaseException as exc:
            with self._lock:
                outbox.fail(exc)
                self._writable.notify_all()
            if wait or not isinstance(exc, OSError):
                raise
            # A reader answering a ping or a close to a peer already gone: the read
            # that follows reports the end.

    def _close_inner(self) -> None:
        with contextlib.suppress(OSError):
            self._inner.close()


class AsyncWebSocketStream:
    """The asyncio form of ``WebSocketStream``. No lock guards the session: the
    event loop runs one task at a time and nothing awaits while using it."""

    def __init__(self, inner: AsyncStream, session: _Session) -> None:
        self._inner = inner
        self._session = session
        self._writable = asyncio.Event()
        self._closed = False
        self._info: dict[str, Any] = {}

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<AsyncWebSocketStream {self._session.where}{state}>"

    @property
    def info(self) -> dict[str, Any]:
        return self._info

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        if not len(data):
            return
        if self._closed:
            raise OSError(f"{self._session.where}: the WebSocket stream is closed")
        await self._write(self._session.send(data), wait=True)

    async def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        session = self._session
        while True:
            if self._closed:
                return b""
            data = session.read(max_bytes)
            if data is not None:
                return data
            try:
                incoming = await self._inner.receive(RECEIVE_SIZE)
            except OSError:
                session.ended()
                if self._closed:
                    return b""
                raise
            await self._write(session.feed(incoming), wait=False)

    def abort(self) -> None:
        """Drop what waits to be written, here and in the stream beneath when it can drop
        its own (a socket's transport does): a peer that does not read would otherwise
        keep the connection, and those bytes, for as long as it likes. ``close`` then
        closes the inner stream at once, with no close frame."""
        where = self._session.where
        self._session.outbox.fail(ConnectionAbortedError(f"{where}: the stream was aborted"))
        drop = getattr(self._inner, "abort", None)
        if drop is not None:
            drop()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        mark = self._session.close()
        try:
            if mark is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLOSE_TIMEOUT):
                        await self._write(mark, wait=False)
        finally:
            await self._close_inner()

    async def _upgrade(self, timeout: float | None) -> None:
        session = self._session
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                await self._write(session.outbox.queued, wait=True)
                while not session.handshake(await self._inner.receive(RECEIVE_SIZE)):
                    await self._write(session.outbox.queued, wait=True)
                await self._write(session.outbox.queued, wait=True)
            session.check()
        except BaseException as exc:
            await self._close_inner()
            if deadline.expired():
                raise _timed_out(session, timeout) from exc
            raise
        self._info = {**self._inner.info, "websocket": session.info}

    async def _write(self, mark: int, *, wait: bool) -> None:
        """As ``WebSocketStream._write``; ``_writable`` is set, and replaced, each
        time a writer's turn ends."""
        outbox = self._session.outbox
        while not outbox.claim(mark):
            if outbox.written >= mark:
                return
            if outbox.error is not None:
                if wait:
                    raise OSError(self._session.why_closed()) from outbox.error
                return
            if not wait:
                return
            await self._writable.wait()
        until = None if wait else mark
        try:
            while (chunk := outbox.take(until)) is not None:
                if chunk == SEND_EOF:
                    await self._close_inner()
                else:
                    await self._inner.send(chunk)
                outbox.done()
        except BaseException as exc:
            # Cancelled in the middle of a write, the inner stream may hold half a
            # frame: nothing can follow it.
            outbox.fail(exc)
            if wait or not isinstance(exc, OSError):
                raise
        finally:
            self._writable.set()
            self._writable = asyncio.Event()

    async def _close_inner(self) -> None:
        with contextlib.suppress(OSError):
            await self._inner.close()


def wrap_client(
    stream: Stream,
    url: str,
    *,
    origin: str | None = None,
    timeout: float | None = HANDSHAKE_TIMEOUT,
    max_size: int = MAX_SIZE,
) -> WebSocketStream:
    """Upgrade ``stream`` to WebSocket as a client asking for ``url``
    (``ws://host:port/path``; the URL gives the Host header and the path, while TLS,
    for ``wss://``, is already in ``stream``). ``origin`` is the Origin header to send.

    Raises ``HandshakeRefused`` if the server refuses, ``TimeoutError`` if it does not
    answer within ``timeout`` seconds; ``stream`` is closed on any failure.
    """
    try:
        _check_limits(max_size, timeout)
        session = _Session.client(url, origin=origin, max_size=max_size)
    except BaseException:
        with contextlib.suppress(OSError):
            stream.close()
        raise
    ws = WebSocketStream(stream, session)
    ws._upgrade(timeout)
    return ws


def wrap_server(
    stream: Stream,
    *,
    path: str | None = None,
    origins: Sequence[str] | None = None,
    host: str | None = None,
    timeout: float | None = HANDSHAKE_TIMEOUT,
    max_size: int = MAX_SIZE,
) -> WebSocketStream:
    """Upgrade ``stream`` to WebSocket as a server: read the client's request and
    answer it. A request for another ``path`` gets 404 (its query string is not
    compared; None: any path is served); a request that is not a WebSocket upgrade
    gets the 4xx HTTP says.

    A browser says in the Origin header which page opened the connection, and any
    page the user visits can open one: so without ``origins`` a request that has an
    Origin gets 403 unless the page came from ``host`` itself (the ``host:port``
    this server is reached at, and any loopback name for it when it is one);
    clients that are not browsers send none and are served. With ``origins``,
    exactly those origins are served and a request without one gets 403 (browsers
    always send it; other clients must be given one); ``[ANY_ORIGIN]`` serves every
    page on the web and is unsafe for an endpoint that browsers reach.

    Raises ``HandshakeRefused`` after answering a refused request, ``TimeoutError``
    if no request comes within ``timeout`` seconds; ``stream`` is closed on any failure.
    """
    try:
        _check_limits(max_size, timeout)
        session = _Session.server(
            _where(stream), path=path, origins=origins, host=host, max_size=max_size
        )
    except BaseException:
        with contextlib.suppress(OSError):
            stream.close()
        raise
    ws = WebSocketStream(stream, session)
    ws._upgrade(timeout)
    return ws


async def awrap_client(
    stream: AsyncStream,
    url: str,
    *,
    origin: str | None = None,
    timeout: float | None = HANDSHAKE_TIMEOUT,
    max_size: int = MAX_SIZE,
) -> AsyncWebSocketStream:
    """``wrap_client`` for asyncio streams."""
    try:
        _check_limits(max_size, timeout)
        session = _Session.client(url, origin=origin, max_size=max_size)
    except BaseException:
        with contextlib.suppress(OSError):
            await stream.close()
        raise
    ws = AsyncWebSocketStream(stream, session)
    await ws._upgrade(timeout)
    return ws


async def awrap_server(
    stream: AsyncStream,
    *,
    path: str | None = None,
    origins: Sequence[str] | None = None,
    host: str | None = None,
    timeout: float | None = HANDSHAKE_TIMEOUT,
    max_size: int = MAX_SIZE,
) -> AsyncWebSocketStream:
    """``wrap_server`` for asyncio streams."""
    try:
        _check_limits(max_size, timeout)
        session = _Session.server(
            _where(stream), path=path, origins=origins, host=host, max_size=max_size
        )
    except BaseException:
        with contextlib.suppress(OSError):
            await stream.close()
        raise
    ws = AsyncWebSocketStream(stream, session)
    await ws._upgrade(timeout)
    return ws


__all__ = [
    "ANY_ORIGIN",
    "MAX_SIZE",
    "AsyncWebSocketStream",
    "HandshakeRefused",
    "WebSocketStream",
    "allowed_origins",
    "awrap_client",
    "awrap_server",
    "same_host_origins",
    "wrap_client",
    "wrap_server",
]
