"""What a byte stream is to the layers above it, in a blocking and an asyncio form, and
the URLs that name where one connects.

A stream moves bytes and nothing else: no framing, no messages. A layer (TLS,
WebSocket, compression) is itself a stream that wraps another one, so the
interfaces below are all a transport ever sees.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

RECEIVE_SIZE = 64 * 1024
"""How much one ``receive`` asks for by default: enough for a burst of small frames in
one system call, and under the size at which malloc switches to mmap for every read."""


@runtime_checkable
class Stream(Protocol):
    """A blocking byte stream. ``send`` may be called from one thread while another is
    blocked in ``receive``; ``close`` from any thread wakes a blocked ``receive``."""

    @property
    def info(self) -> dict[str, Any]:
        """What is known of the other end: ``address``, and ``peercred`` (pid, uid,
        gid) on Unix sockets. A wrapping layer adds its own keys."""
        ...

    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``; raises ``OSError`` if the stream has failed."""
        ...

    def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        """Up to ``max_bytes`` bytes, blocking until some arrive; ``b""`` at end of stream."""
        ...

    def close(self) -> None:
        """Close at once; idempotent."""
        ...


@runtime_checkable
class AsyncStream(Protocol):
    """The asyncio form of ``Stream``."""

    @property
    def info(self) -> dict[str, Any]: ...

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data`` and wait until the stream can take more."""
        ...

    async def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` at end of stream."""
        ...

    async def close(self) -> None: ...


class Deadline:
    """Calls ``expire`` unless stopped within ``seconds`` (``None``: never). A blocking
    ``Stream`` has no timeout: a layer's handshake is bounded by an ``expire`` that
    closes the inner stream, the one sure way to wake a thread blocked reading it."""

    def __init__(self, seconds: float | None, expire: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._stopped = False
        self._expired = False
        self._expire = expire
        self._timer = None if seconds is None else threading.Timer(seconds, self._run_out)
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()

    def stop(self) -> bool:
        """Stop the clock; whether it had already run out."""
        with self._lock:
            self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
        return self._expired

    def _run_out(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._expired = True
        with contextlib.suppress(OSError):
            self._expire()


class Listener(Protocol):
    """Accepts blocking streams at ``url``."""

    @property
    def url(self) -> str:
        """Where clients connect, with the real port when port 0 was asked for."""
        ...

    @property
    def address(self) -> Any:
        """``(host, port)`` for TCP, the path for a Unix socket."""
        ...

    def accept(self) -> Stream | None:
        """The next connection, or ``None`` once the listener is closed."""
        ...

    def close(self) -> None:
        """Stop listening; a thread blocked in ``accept`` returns ``None``. Idempotent."""
        ...


class AsyncListener(Protocol):
    """Accepts asyncio streams at ``url``."""

    @property
    def url(self) -> str: ...

    @property
    def address(self) -> Any: ...

    async def accept(self) -> AsyncStream | None: ...

    def close(self) -> None: ...


BASES = ("tcp", "unix")
LAYERS = ("tls", "ws", "zstd")
ALIASES = {"tls": ("tcp", "tls"), "ws": ("tcp", "ws"), "wss": ("tcp", "tls", "ws")}
_SHORT = {parts: alias for alias, parts in ALIASES.items()}
_FORMS = (
    "tcp://host:port, unix:/path, tls://host:port, ws://host:port/path, wss://host:port/path, "
    "or a base with layers such as tcp+zstd://host:port or unix+tls:/path"
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed stream URL: a base (``tcp`` or ``unix``) and the layers stacked on it,
    innermost first.

    ``tls://`` is ``tcp+tls://``, ``ws://`` is ``tcp+ws://`` and ``wss://`` is
    ``tcp+tls+ws://``; any other stack is spelled out (``tcp+zstd+tls://`` is
    compression under TLS, ``unix+tls:/path`` TLS over a Unix socket). ``resource``
    is the HTTP path a WebSocket layer asks for.
    """

    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""
    layers: tuple[str, ...] = ()
    resource: str = "/"

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        scheme, sep, rest = url.partition(":")
        if not sep or not scheme:
            raise ValueError(f"{url!r} is not a stream URL: use {_FORMS}")
        base, *layers = ALIASES.get(scheme, tuple(scheme.split("+")))
        if base not in BASES:
            raise ValueError(
                f"{url!r}: unknown stream scheme {scheme!r}; tcp and unix are the bases "
                f"(use {_FORMS})"
            )
        for layer in layers:
            if layer not in LAYERS:
                raise ValueError(
                    f"{url!r}: unknown layer {layer!r}; the layers are {', '.join(LAYERS)}"
                )
        if len(set(layers)) != len(layers):
            raise ValueError(f"{url!r}: a layer appears twice")
        if base == "unix":
            path = rest[2:] if rest.startswith("//") else rest
            if not path:
                raise ValueError(f"{url!r} names no socket path: use unix:/path/to/socket")
            return cls("unix", path=path, layers=tuple(layers))
        if not rest.startswith("//"):
            raise ValueError(f"{url!r}: a TCP URL is {scheme}://host:port")
        hostport, slash, resource = rest[2:].partition("/")
        if slash and "ws" not in layers:
            raise ValueError(f"{url!r}: only a WebSocket URL (ws://, wss://) has a path")
        host, colon, port = hostport.rpartition(":")
        if not colon or not port.isdigit() or not host:
            raise ValueError(f"{url!r}: a TCP URL is {scheme}://host:port (port 0: pick one)")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]  # an IPv6 literal
        number = int(port)
        if number > 65535:
            raise ValueError(f"{url!r}: port {number} is out of range")
        return cls("tcp", host=host, port=number, layers=tuple(layers), resource="/" + resource)

    @property
    def url(self) -> str:
        parts = (self.scheme, *self.layers)
        scheme = _SHORT.get(parts, "+".join(parts))
        if self.scheme == "unix":
            return f"{scheme}:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        path = self.resource if "ws" in self.layers and self.resource != "/" else ""
        return f"{scheme}://{host}:{self.port}{path}"
