"""What a byte stream is to the layers above it, in a blocking and an asyncio form, and
the URLs that name where one connects.

A stream moves bytes and nothing else: no framing, no messages. A layer (TLS,
WebSocket, compression) is itself a stream that wraps another one, so the
interfaces below are all a transport ever sees.
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed stream URL: ``tcp://host:port`` or ``unix:/path``."""

    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        scheme, sep, rest = url.partition(":")
        if not sep:
            raise ValueError(f"{url!r} is not a stream URL: use tcp://host:port or unix:/path")
        if scheme == "unix":
            path = rest[2:] if rest.startswith("//") else rest
            if not path:
                raise ValueError(f"{url!r} names no socket path: use unix:/path/to/socket")
            return cls("unix", path=path)
        if scheme == "tcp":
            if not rest.startswith("//"):
                raise ValueError(f"{url!r}: a TCP URL is tcp://host:port")
            hostport = rest[2:]
            host, colon, port = hostport.rpartition(":")
            if not colon or not port.isdigit() or not host:
                raise ValueError(f"{url!r}: a TCP URL is tcp://host:port (port 0: pick one)")
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]  # an IPv6 literal
            number = int(port)
            if number > 65535:
                raise ValueError(f"{url!r}: port {number} is out of range")
            return cls("tcp", host=host, port=number)
        raise ValueError(f"{url!r}: unknown stream scheme {scheme!r}; tcp and unix are supported")

    @property
    def url(self) -> str:
        if self.scheme == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"
