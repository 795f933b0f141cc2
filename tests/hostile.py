"""Hostile clients for live servers, and the servers they are set on: a raw TCP client
that speaks Canopy frames by hand, and a raw WebSocket client that speaks the upgrade
and WebSocket frames by hand too (a browser's way in), badly on purpose when told.

``Live`` is a server zone in one mode behind TCP or WebSocket, with an honest client
calling it from a thread of its own all along, and what the server held before any
hostile client came: ``live.healthy()`` checks that nothing hostile reached either.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any

import msgspec
from websockets.utils import apply_mask

import canopy
from behaviour import TestService as Service
from behaviour import b
from canopy.wire import Hello, Limits, Message, Welcome
from frame_strategies import frame_of
from waiting import until

URLS = {"tcp": "tcp://127.0.0.1:0", "ws": "ws://127.0.0.1:0/canopy"}
PATH = "/canopy"

_decode = msgspec.msgpack.Decoder(Message).decode


def frames(data: bytes) -> list[Message]:
    """Every whole frame in ``data``, each of which must be a valid message."""
    found, pos = [], 0
    while len(data) - pos >= 4:
        size = int.from_bytes(data[pos : pos + 4], "little")
        if len(data) - pos - 4 < size:
            break
        found.append(_decode(data[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    return found


_zones = itertools.count(0x0BAD_0000_0001)

# WebSocket opcodes (RFC 6455, 5.2)
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def server_holds(server: tuple[str, int], client: socket.socket) -> bool:
    """Whether a process (this one: the server's) still holds the server's end of
    ``client``'s TCP connection on 127.0.0.1. An end the process has let go of, which the
    kernel may go on finishing by itself, is not held: its entry names no inode."""
    mine = client.getsockname()[1]
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)  # the header
        for line in table:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.rpartition(":")[2], 16) == server[1] and (
                int(remote.rpartition(":")[2], 16) == mine and inode != "0"
            ):
                return True
    return False


class Live:
    """A server zone in one mode at ``transport``'s URL, with ``limits`` and the server's
    ``options`` (``idle_timeout``...) if given, an honest blocking client calling it from
    a thread of its own all along, and what the server held before any hostile client
    came."""

    def __init__(
        self,
        mode: str,
        transport: str = "tcp",
        factory: Any = None,
        limits: Limits | None = None,
        **options: Any,
    ) -> None:
        self.mode = mode
        self.transport = transport
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        url = URLS[transport]
        factory = factory or (lambda z: Service())
        if mode == "blocking":
            self.service: Any = canopy.Zone("service", limits=limits)
            self.server = self.service.serve(url, factory, b.i_test, **options)
        else:
            self.loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
            self._thread.start()

            async def start() -> tuple[Any, Any]:
                zone = canopy.AsyncZone("service", limits=limits)
                return zone, await zone.serve(url, factory, b.i_test, **options)

            self.service, self.server = self.on_loop(start())
        self.address: tuple[str, int] = self.server.address[:2]
        self.honest = canopy.Zone("honest")
        self.root = self.honest.connect(self.server.url, b.i_test)
        assert self.root.add(1, 2) == 3  # before
        self.baseline = self.tables()
        self.calls = 0
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._caller = threading.Thread(target=self._call_all_along, daemon=True)
        self._caller.start()

    def on_loop(self, coroutine: Any) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def tables(self) -> tuple[Any, Any, int]:
        return self.service.exported(), self.service.imported(), len(self.server.links)

    def hostile(self, **options: Any) -> Hostile:
        """A raw client of this server's kind, connected (and upgraded, over WebSocket)."""
        if self.transport == "ws":
            return WsHostile(self.address, **options)
        return Hostile(self.address, **options)

    def _call_all_along(self) -> None:
        for i in itertools.count():  # ends with the test: _stop, or the first failure
            if self._stop.wait(0.005):
                return
            try:
                assert self.root.add(i, 1) == i + 1
                assert tuple(self.root.swap("a", f"v{i}")) == (f"v{i}", "a")
            except BaseException as e:
                self.failures.append(e)
                return
            self.calls += 1

    def healthy(self) -> None:
        """The honest client kept working, and the server holds what it held before."""
        calls = self.calls
        assert until(lambda: self.calls > calls or bool(self.failures)), "the honest calls stalled"
        assert self.failures == [], self.failures
        assert self.root.add(40, 2) == 42  # after
        assert until(lambda: self.tables() == self.baseline), (self.tables(), self.baseline)

    def close(self) -> None:
        self._stop.set()
        self._caller.join(5)
        canopy.close(self.root)
        self.honest.close()
        if self.loop is None:
            self.service.close()
            return
        self.on_loop(self.service.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        assert self._thread is not None
        self._thread.join(5)
        self.loop.close()


class Hostile:
    """A raw TCP client that speaks the protocol by hand, badly on purpose.

    ``received`` is every byte of the Canopy stream the server sent so far."""

    def __init__(self, address: tuple[str, int], *, receive_buffer: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:  # set before connecting, so that the window starts small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(3)
        self.sock.connect(address)
        self.zone = next(_zones)
        self.received = b""
        self.welcome: Welcome | None = None

    def send(self, data: bytes) -> bool:
        """Whether all of ``data`` went out (the server may have closed already)."""
        return self._send_raw(data)

    def _send_raw(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def receive(self) -> bytes:
        """The next bytes of the server's Canopy stream, ``b""`` at its end."""
        return self.sock.recv(65536)

    def handshake(self, encodings: Sequence[int] = (1,)) -> Welcome:
        hello = Hello((1,), tuple(encodings), self.zone, 0, 0)
        self.send(frame_of(msgspec.msgpack.encode(hello)))
        while True:
            for message in self.messages():
                if isinstance(message, Welcome):
                    self.welcome = message
                    return message
            chunk = self.receive()
            assert chunk, "the server closed the link instead of welcoming"
            self.received += chunk

    def read(self, seconds: float = 0.05) -> list[Message]:
        """What arrives within ``seconds``, added to the messages received so far."""
        self.sock.settimeout(seconds)
        try:
            self.received += self.receive()
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(3)
        return self.messages()

    def until_closed(self) -> None:
        """Read until the server closes (a reset counts). A server that neither answers
        nor closes within the socket timeout hangs: that fails the test."""
        try:
            while chunk := self.receive():
                self.received += chunk
        except ConnectionResetError:
            pass

    def finish(self) -> list[Message]:
        """Say no more, read until the server closes, and return all it sent."""
        with contextlib.suppress(OSError):  # already reset by the server
            self.sock.shutdown(socket.SHUT_WR)
        try:
            self.until_closed()
        finally:
            self.sock.close()
        return self.messages()

    def messages(self) -> list[Message]:
        """Every whole frame received so far, each of which must be a valid message."""
        return frames(self.received)


def ws_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    length: int | None = None,
) -> bytes:
    """One WebSocket frame as a client sends it (masked), or as told: another length
    than the payload's, reserved bits set, unmasked."""
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    masked = 0x80 if mask else 0
    if size < 126:
        head += bytes([masked | size])
    elif size < 1 << 16:
        head += bytes([masked | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([masked | 127]) + size.to_bytes(8, "big")
    if mask:
        key = os.urandom(4)
        head += key
        payload = apply_mask(payload, key)
    return head + payload


def upgrade_request(port: int, origin: str | None = None, path: str = PATH) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class WsHostile(Hostile):
    """A raw client that upgrades by hand and then carries the Canopy stream in binary
    WebSocket messages it frames itself; ``send_frames`` sends WebSocket bytes as they
    are. What the server sends is taken apart frame by frame: binary and continuation
    data go to ``received``, a close frame's code to ``close_code``, a pong's payload
    to ``last_pong``.
    """

    def __init__(
        self,
        address: tuple[str, int],
        *,
        origin: str | None = None,
        upgrade: bool = True,
        receive_buffer: int = 0,
    ) -> None:
        super().__init__(address, receive_buffer=receive_buffer)
        self.port = address[1]
        self.close_code: int | None = None
        self.last_pong: bytes | None = None
        self.status = b""
        self._frames = b""
        if upgrade:
            self.status = self.upgrade(origin)
            assert self.status.startswith(b"HTTP/1.1 101 "), self.status

    def upgrade(self, origin: str | None = None) -> bytes:
        """Send the upgrade request and return the status line of the answer."""
        self._send_raw(upgrade_request(self.port, origin))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            head += chunk
        head, _, self._frames = head.partition(b"\r\n\r\n")
        return head.partition(b"\r\n")[0]

    def send(self, data: bytes, cuts: Sequence[int] = ()) -> bool:
        """``data`` as binary messages, cut where told (a byte stream's frames need not
        follow message boundaries)."""
        bounds = sorted({0, *(c for c in cuts if 0 < c < len(data)), len(data)})
        frames = [ws_frame(BINARY, data[a:z]) for a, z in itertools.pairwise(bounds)]
        return self._send_raw(b"".join(frames))

    def send_frames(self, data: bytes) -> bool:
        return self._send_raw(data)

    def receive(self) -> bytes:
        """The data of the next binary messages; ``b""`` once the server closed, with
        a close frame or without."""
        while True:
            data = self._take_frames()
            if data:
                return data
            if self.close_code is not None:
                return b""
            chunk = self.sock.recv(65536)
            if not chunk:
                return b""
            self._frames += chunk

    def _take_frames(self) -> bytes:
        data = b""
        buffer = self._frames
        while len(buffer) >= 2 and self.close_code is None:
            assert buffer[1] & 0x80 == 0, "a server must not mask its frames"
            opcode, size, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if size >= 126:
                width = 2 if size == 126 else 8
                if len(buffer) < 2 + width:
                    break
                size, start = int.from_bytes(buffer[2 : 2 + width], "big"), 2 + width
            if len(buffer) < start + size:
                break
            payload, buffer = buffer[start : start + size], buffer[start + size :]
            if opcode in (BINARY, CONT):
                data += payload
            elif opcode == CLOSE:
                self.close_code = int.from_bytes(payload[:2], "big") if payload else 1005
            elif opcode == PONG:
                self.last_pong = payload
            else:
                raise AssertionError(f"the server sent a frame of opcode {opcode:#x}")
        self._frames = buffer
        return data
