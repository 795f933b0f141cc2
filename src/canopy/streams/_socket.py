"""Streams over connected sockets, blocking and asyncio, and listeners that accept them;
``tcp`` and ``unix`` differ only in how they open and describe a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from canopy.streams._base import RECEIVE_SIZE

TCP_KEEPALIVE = (30, 10, 3)
"""Idle seconds before the kernel probes a silent TCP peer, seconds between probes, and
probes unanswered before the connection fails: a host that died or vanished from the
network is noticed within about a minute even by a side that is not reading."""


SPIN_SECONDS = 50e-6
"""How long a blocking receive polls its socket before it sleeps in the kernel. A reply
that comes within it is taken with no wake-up of a sleeping thread, which on a
virtual machine costs more than the round trip itself; a receive that waits longer
has spent this much CPU once. No polling when the process may use a single CPU only:
there the peer could not run while this side polls."""

_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)


def spin_budget() -> float:
    """``SPIN_SECONDS``, or 0 where polling cannot help (one CPU, no MSG_DONTWAIT)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return SPIN_SECONDS if cpus > 1 and _DONTWAIT else 0.0


def tune_tcp(sock: socket.socket) -> None:
    """Nagle off (frames are written whole; a round trip must not wait for a delayed
    ACK) and kernel keepalive on."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle, interval, count = TCP_KEEPALIVE
    for name, value in (
        ("TCP_KEEPIDLE", idle),
        ("TCP_KEEPINTVL", interval),
        ("TCP_KEEPCNT", count),
    ):
        option = getattr(socket, name, None)
        if option is not None:  # Linux and most others; elsewhere the system's defaults
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


def describe(sock: socket.socket) -> dict[str, Any]:
    """The ``info`` of a connected socket: its peer's address, and on Unix sockets
    the peer's (pid, uid, gid) as the kernel reports them (SO_PEERCRED)."""
    info: dict[str, Any] = {}
    with contextlib.suppress(OSError):
        info["address"] = sock.getpeername()
    if sock.family == socket.AF_UNIX and hasattr(socket, "SO_PEERCRED"):
        with contextlib.suppress(OSError):
            raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            info["peercred"] = struct.unpack("3i", raw)
    return info


class SocketStream:
    """A blocking stream over a connected socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._info = describe(sock)
        self._closed = False
        # A socket with a timeout would wait it out on each poll: only blocking ones poll.
        self._spin = spin_budget() if sock.gettimeout() is None else 0.0

    def __repr__(self) -> str:
        return f"<SocketStream {self._info.get('address')!r}{' closed' if self._closed else ''}>"

    @property
    def info(self) -> dict[str, Any]:
        return self._info

    def send(self, data: bytes | bytearray | memoryview) -> None:
        self._sock.sendall(data)

    def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        sock = self._sock
        try:
            if self._spin:
                until = time.perf_counter() + self._spin
                while True:
                    try:
                        return sock.recv(max_bytes, _DONTWAIT)
                    except BlockingIOError:
                        if time.perf_counter() >= until:
                            break
            return sock.recv(max_bytes)
        except OSError:
            if self._closed:
                return b""  # closed by another thread as this one began to read
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # shutdown() first: it wakes a thread blocked in recv() on this socket,
        # which close() alone does not.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


class SocketListener:
    """Accepts blocking socket streams; ``close`` from another thread ends ``accept``."""

    def __init__(
        self, sock: socket.socket, url: str, address: Any, on_close: Callable[[], None]
    ) -> None:
        self._sock = sock
        self._url = url
        self._address = address
        self._on_close = on_close
        sock.setblocking(False)
        # A socket pair to wake a thread blocked in select(): closing the listening
        # socket does not wake it on every platform.
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._closed = False
        self._accepting = 0

    def __repr__(self) -> str:
        return f"<SocketListener {self._url}{' closed' if self._closed else ''}>"

    @property
    def url(self) -> str:
        return self._url

    @property
    def address(self) -> Any:
        return self._address

    def accept(self) -> SocketStream | None:
        with self._lock:
            if self._closed:
                return None
            self._accepting += 1
        try:
            while True:
                self._selector.select()
                if self._closed:
                    return None
                try:
                    conn, _ = self._sock.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue  # the client gave up between select() and accept()
                conn.setblocking(True)
                if conn.family != socket.AF_UNIX:
                    tune_tcp(conn)
                return SocketStream(conn)
        finally:
            with self._lock:
                self._accepting -= 1
                last = self._closed and not self._accepting
            if last:
                self._release()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle = not self._accepting
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._sock.close()
        self._on_close()
        if idle:
            self._release()

    def _release(self) -> None:
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


WRITE_BUFFER_HIGH = 64 * 1024
"""Bytes an asyncio transport may hold unwritten before ``send_nowait`` declines."""


class AsyncSocketStream:
    """An asyncio stream over asyncio's socket transport."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        sock = writer.get_extra_info("socket")
        self._info = describe(sock) if sock is not None else {}
        if sock is not None and sock.family != socket.AF_UNIX:
            tune_tcp(sock)
        self._closed = False

    def __repr__(self) -> str:
        return f"<AsyncSocketStream {self._info.get('address')!r}>"

    @property
    def info(self) -> dict[str, Any]:
        return self._info

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def send_nowait(self, data: bytes | bytearray | memoryview) -> bool:
        """Write ``data`` at once if the transport takes it without waiting; False, and
        nothing written, if its buffer is full or it is closing: then await ``send``."""
        transport = self._writer.transport
        if transport.is_closing() or transport.get_write_buffer_size() > WRITE_BUFFER_HIGH:
            return False
        transport.write(data)
        return True

    async def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        if self._closed:
            return b""
        return await self._reader.read(max_bytes)

    def abort(self) -> None:
        """Close at once, dropping what waits to be written (a peer that does not read)."""
        self._writer.transport.abort()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


class AsyncSocketListener:
    """Accepts asyncio socket streams from an ``asyncio.Server``."""

    def __init__(self, url: str, address: Any, on_close: Callable[[], None]) -> None:
        self._url = url
        self._address = address
        self._on_close = on_close
        self._server: asyncio.Server | None = None
        self._queue: asyncio.Queue[AsyncSocketStream | None] = asyncio.Queue()
        self._closed = False

    def __repr__(self) -> str:
        return f"<AsyncSocketListener {self._url}{' closed' if self._closed else ''}>"

    @property
    def url(self) -> str:
        return self._url

    @property
    def address(self) -> Any:
        return self._address

    def started(
        self,
        server: asyncio.Server,
        url: str,
        address: Any,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._server = server
        self._url = url
        self._address = address
        if on_close is not None:
            self._on_close = on_close

    def connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The ``asyncio.Server`` callback: queue the connection for ``accept``."""
        if self._closed:
            writer.close()
            return
        self._queue.put_nowait(AsyncSocketStream(reader, writer))

    async def accept(self) -> AsyncSocketStream | None:
        if self._closed:
            return None
        return await self._queue.get()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        while not self._queue.empty():
            stream = self._queue.get_nowait()
            if stream is not None:
                stream._writer.close()
        self._queue.put_nowait(None)  # wakes a pending accept()
        self._on_close()
