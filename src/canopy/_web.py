"""``canopy demo --web``: the calculator and the inference walkthrough as a web page, and
the Canopy WebSocket endpoint the page calls, served from one port on the loopback.

The browser is untrusted. It reaches one root object, at one path, from the page's
own origin only; a request's size and the time it takes to arrive are bounded, and
so is every WebSocket message. The page is static files and the JavaScript client
``canopy generate --js`` makes, generated at startup and served from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import canopy
from canopy._demo import MODELS, _implementations
from canopy.codegen.js import generate_js
from canopy.idl import compile_file
from canopy.runtime import AsyncZone
from canopy.streams import RECEIVE_SIZE, AsyncListener, AsyncStream, tcp
from canopy.streams.websocket import awrap_server

log = logging.getLogger("canopy.demo.web")

HOST = "127.0.0.1"
PORT = 8765
"""The port ``canopy demo --web`` listens on unless told (``--port 0``: any free port)."""
ENDPOINT = "/canopy"
"""The path of the Canopy WebSocket endpoint; every other path is a file of the page."""

REQUEST_LIMIT = 8 << 10
"""The largest HTTP request head accepted, in bytes: a security limit."""
REQUEST_TIMEOUT = 10.0
"""Seconds a connection has to send its whole request head (and finish the upgrade)."""
MAX_MESSAGE = 1 << 20
"""The largest WebSocket message the page may send, in bytes: a security limit."""
TOKEN_DELAY = 0.1
"""Seconds the model takes for each token, so that the page shows them arriving."""

WEB_MODELS = {
    "tiny-1": MODELS["tiny-1"],
    "story-1": (
        "once upon a time a small request left a browser tab and crossed a socket to a "
        "zone it had never met ; the zone answered with a session , and the session "
        "sent words back one at a time , each one a post that needed no reply , until "
        "the page said stop or the story ran out of words and everyone released what "
        "they held"
    ),
}

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_TYPES[".css"] = "text/css; charset=utf-8"
_TYPES[".ts"] = "text/plain; charset=utf-8"

_EXAMPLES = Path(str(resources.files("canopy") / "examples"))
_PAGE = Path(str(resources.files("canopy") / "web"))


def page_files() -> dict[str, tuple[bytes, str]]:
    """Every file the page is made of by its URL path, with its content type: the
    static page and the generated client modules with their runtime."""
    files: dict[str, str] = {}
    for idl in ("calculator.idl", "inference.idl"):
        files.update(generate_js(compile_file(_EXAMPLES / idl)))
    for source in sorted(_PAGE.iterdir()):
        files[source.name] = source.read_text(encoding="utf-8")
    served = {
        f"/{name}": (text.encode(), _TYPES[Path(name).suffix]) for name, text in files.items()
    }
    served["/"] = served.pop("/index.html")
    return served


def demo_root(token_delay: float = TOKEN_DELAY) -> tuple[Any, type[Any]]:
    """The one object the page reaches, and the interface it is served as: the
    inference service, which is also a calculator."""
    inference: Any = canopy.load_idl(_EXAMPLES / "inference.idl").inference
    calculator: Any = canopy.load_idl(_EXAMPLES / "calculator.idl").calculator
    service, _ = _implementations(inference, models=WEB_MODELS, token_delay=token_delay)

    class DemoService(service, calculator.i_calculator):  # type: ignore[misc, valid-type]
        def add(self, a: int, b: int) -> int:
            return a + b

    return DemoService(), inference.i_inference_service


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str]


class _BadRequest(ValueError):
    def __init__(self, status: str, why: str) -> None:
        super().__init__(why)
        self.status = status


class WebDemo:
    """Serves the page's files and, at ``ENDPOINT``, the root object over WebSocket."""

    def __init__(
        self, zone: AsyncZone, listener: AsyncListener, root: Any, interface: type[Any]
    ) -> None:
        self.zone = zone
        self._listener = listener
        self._root = root
        self._interface = interface
        self._files = page_files()
        port = listener.address[1]
        self.hosts = (f"{HOST}:{port}", f"localhost:{port}")
        self.origins = [f"http://{host}" for host in self.hosts]
        self._welcoming: set[asyncio.Task[None]] = set()
        self._task = asyncio.get_running_loop().create_task(self._accept())

    @classmethod
    async def start(
        cls, zone: AsyncZone, port: int = PORT, *, token_delay: float = TOKEN_DELAY
    ) -> WebDemo:
        listener = await tcp.alisten(HOST, port)
        return cls(zone, listener, *demo_root(token_delay))

    @property
    def url(self) -> str:
        return f"http://{self.hosts[0]}/"

    async def close(self) -> None:
        self._listener.close()
        for task in [self._task, *self._welcoming]:
            task.cancel()
        await asyncio.gather(self._task, *self._welcoming, return_exceptions=True)

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while (stream := await self._listener.accept()) is not None:
            task = loop.create_task(self._welcome(stream))
            self._welcoming.add(task)
            task.add_done_callback(self._welcoming.discard)

    async def _welcome(self, stream: AsyncStream) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                if await self._route(stream):
                    return  # a Canopy link now owns the stream
        except (OSError, TimeoutError) as e:
            log.info("a connection was dropped: %s", e)
        await stream.close()

    async def _route(self, stream: AsyncStream) -> bool:
        """Answer one request; True when it was the upgrade to a Canopy link."""
        try:
            received = await _read_head(stream)
            request = _parse(received)
            if request.headers.get("host") not in self.hosts:
                # A page elsewhere whose name resolves here (DNS rebinding) is not served.
                raise _BadRequest("421 Misdirected Request", "unknown Host")
            if request.path.partition("?")[0] != ENDPOINT:
                await self._answer(stream, request)
                return False
        except _BadRequest as e:
            log.info("refused a request: %s", e)
            await _respond(stream, e.status, f"{e}\n".encode(), "text/plain; charset=utf-8")
            return False
        # A foreign Origin is answered 403 and raises HandshakeRefused, an OSError.
        ws = await awrap_server(
            _Replayed(stream, received),
            path=ENDPOINT,
            origins=self.origins,
            timeout=REQUEST_TIMEOUT,
            max_size=MAX_MESSAGE,
        )
        await self.zone.accept(
            ws, lambda zone: self._root, self._interface, timeout=REQUEST_TIMEOUT
        )
        return True

    async def _answer(self, stream: AsyncStream, request: _Request) -> None:
        if request.method not in ("GET", "HEAD"):
            raise _BadRequest("405 Method Not Allowed", f"{request.method} is not served")
        found = self._files.get(request.path.partition("?")[0])
        if found is None:
            raise _BadRequest("404 Not Found", f"no file at {request.path}")
        body, content_type = found
        host = request.headers["host"]
        policy = (
            f"default-src 'self'; img-src 'self' data:; connect-src 'self' ws://{host}; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        await _respond(
            stream,
            "200 OK",
            body,
            content_type,
            head_only=request.method == "HEAD",
            extra=f"Content-Security-Policy: {policy}\r\n",
        )


class _Replayed:
    """An accepted stream whose first bytes, already read to route the request, are
    read again by the WebSocket upgrade."""

    def __init__(self, inner: AsyncStream, first: bytes) -> None:
        self._inner = inner
        self._first = first

    @property
    def info(self) -> dict[str, Any]:
        return self._inner.info

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        await self._inner.send(data)

    async def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        if self._first:
            part, self._first = self._first[:max_bytes], self._first[max_bytes:]
            return part
        return await self._inner.receive(max_bytes)

    async def close(self) -> None:
        await self._inner.close()


async def _read_head(stream: AsyncStream) -> bytes:
    """What the client sent up to the end of its request head (and any bytes after)."""
    received = b""
    while b"\r\n\r\n" not in received:
        if len(received) > REQUEST_LIMIT:
            raise _BadRequest("431 Request Header Fields Too Large", "the request is too large")
        data = await stream.receive(RECEIVE_SIZE)
        if not data:
            raise ConnectionError("the client closed the connection before its request")
        received += data
    return received


def _parse(received: bytes) -> _Request:
    head = received.partition(b"\r\n\r\n")[0]
    if len(head) > REQUEST_LIMIT:
        raise _BadRequest("431 Request Header Fields Too Large", "the request is too large")
    line, *fields = head.decode("latin-1").split("\r\n")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise _BadRequest("400 Bad Request", f"not an HTTP/1.1 request line: {line[:80]!r}")
    headers: dict[str, str] = {}
    for field in fields:
        name, colon, value = field.partition(":")
        if not colon or not name or name != name.strip():
            raise _BadRequest("400 Bad Request", f"not a header field: {field[:80]!r}")
        headers[name.lower()] = value.strip()
    return _Request(parts[0], parts[1], headers)


async def _respond(
    stream: AsyncStream,
    status: str,
    body: bytes,
    content_type: str,
    *,
    head_only: bool = False,
    extra: str = "",
) -> None:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
        f"X-Content-Type-Options: nosniff\r\n{extra}Connection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError):
        await stream.send(head.encode("latin-1") + (b"" if head_only else body))


async def serve(port: int = PORT, ready: Callable[[str], None] | None = None) -> None:
    """Serve the page until SIGINT or SIGTERM; ``ready`` gets its URL."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with AsyncZone("demo-web") as zone:
            web = await WebDemo.start(zone, port)
            try:
                (ready or _announce)(web.url)
                await stop.wait()
            finally:
                await web.close()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _announce(url: str) -> None:
    print(f"canopy demo: the page is at {url}", flush=True)
    print("canopy demo: press Ctrl-C to stop", flush=True)
