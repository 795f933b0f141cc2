"""Zones and objects: services, proxies, stubs, reference counting, both modes.

``Zone`` is the blocking face and ``AsyncZone`` the asyncio one; both are the
same ``Service`` underneath. A zone makes child zones in the same process
(``child``), each behind a local link that marshals through the wire layer,
and links to zones of other processes over streams (``serve``, ``connect``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import ssl
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Self, TypeVar

from canopy.errors import CanopyError, InvalidCast
from canopy.generated import Interface
from canopy.runtime._dynamic import DynamicObject, adynamic, dynamic, to_json
from canopy.runtime._modes import ASYNCIO, BLOCKING, acast, cast
from canopy.runtime._plans import implemented, interface_class, interface_of
from canopy.runtime._proxy import Proxy, adrain, close
from canopy.runtime._reflect import AnyObject, Description, adescribe, describe
from canopy.runtime._watch import on_gone
from canopy.runtime._zone import (
    DEFAULT_CALL_TIMEOUT,
    HANDSHAKE_TIMEOUT,
    IDLE_TIMEOUT,
    KEEPALIVE,
    Caller,
    Intercepted,
    Link,
    Mode,
    Service,
    call_timeout,
    caller,
    use_encoding,
)
from canopy.wire import ENCODINGS, Encoding, Limits, Reply, encoding_of

if TYPE_CHECKING:
    from canopy.streams import AsyncStream, AsyncTransform, Layering, Stream, Transform
    from canopy.transports.child import ChildProcess
    from canopy.transports.local import LocalLink
    from canopy.transports.server import AsyncServer, Server
    from canopy.transports.stream import AsyncStreamLink, StreamLink

I = TypeVar("I", bound=Interface)  # noqa: E741 - reads as "interface"
A = TypeVar("A")  # an interface's asyncio proxy protocol


def __getattr__(name: str) -> object:
    # The stream transport loads when first used: the runtime knows messages, not
    # streams, and a process that only makes child zones never needs sockets.
    if name in ("Server", "AsyncServer"):
        from canopy.transports import server

        return getattr(server, name)
    raise AttributeError(f"module 'canopy.runtime' has no attribute {name!r}")


class _Zone(Service):
    def __init__(
        self, name: str, mode: Mode, *, zone_id: int | None, limits: Limits | None
    ) -> None:
        super().__init__(name, mode, zone_id=zone_id, limits=limits)
        self._servers: list[Server | AsyncServer] = []
        self.children: dict[str, ChildProcess] = {}
        """The child processes this zone started (``spawn``), by name."""

    def _child(
        self,
        child: _Zone,
        factory: Callable[..., Interface],
        interface: type[Interface],
        encodings: Sequence[Encoding | str],
        call_timeout: float | None,
        host: Interface | None = None,
    ) -> tuple[Any, LocalLink]:
        """A proxy of the root ``factory`` makes in ``child`` (given ``host``'s proxy there
        when there is one), and this zone's end of the link."""
        from canopy.transports.local import hand, join

        near, far = join(self, child, _encodings(encodings), call_timeout)
        if host is None:
            root = _make_root(child, factory, interface)[0]
        else:
            host_class = _interface_class_of(host)
            given = hand(host, host_class, near, far)
            root = _make_root(child, lambda zone: factory(zone, given), interface)[0]
            del given  # the root keeps it, if it wants it
        return hand(root, interface, far, near), near

    def _plugin(
        self,
        zone_class: Callable[..., _Zone],
        source: str | os.PathLike[str] | None,
        entry_point: str | None,
        cls: type[Interface],
        host: Interface | None,
        encodings: Sequence[Encoding | str],
        call_timeout: float | None,
    ) -> Any:
        from canopy.transports import plugin

        loaded = plugin.load(source, entry_point)
        try:
            proxy, near = self._child(
                zone_class(f"plugin {loaded.name}", limits=self.limits),
                loaded.make_root,
                cls,
                encodings,
                call_timeout,
                host,
            )
        except BaseException:
            loaded.unload()
            raise

        def unload() -> None:
            near.close()
            loaded.unload()

        near.on_idle = unload  # the last reference into the plugin zone unloads it
        return proxy

    def _root_factory(
        self, factory: Callable[[Any], Interface], interface: Callable[..., Any]
    ) -> Callable[[], tuple[Interface, int]]:
        cls = interface_class(interface)
        if interface_of(cls) is None:
            raise TypeError(f"{interface!r} is not a generated Canopy interface")
        return lambda: _make_root(self, factory, cls)

    def _linked_root(self, link: StreamLink, cls: type[Interface], url: str) -> tuple[Any, bool]:
        """The proxy of the root a new link brought, and whether it must be cast to ``cls``."""
        info = interface_of(cls)
        assert info is not None  # noqa: S101 - interface_class() checked it
        proxy = link.remote_root(cls)
        if proxy is None:
            raise InvalidCast(f"the server at {url} offers no root object")
        # AnyObject stands for whatever the root is: nothing to check.
        return proxy, info.id != 0 and link.root[1] != info.id

    def _cast_failed(self, reply: Reply, cls: type[Interface], url: str) -> CanopyError | None:
        if reply.code == 0:
            return None
        info = interface_of(cls)
        return InvalidCast(
            f"the root served at {url} does not implement {info.name if info else cls}"
        )

    def collect(self) -> None:
        """Collect garbage now and send the releases it produced, in this zone and every
        zone of this process linked to it (tests, shutdown)."""
        gc.collect()
        for zone in self._local_zones():
            zone.flush()

    def _local_zones(self) -> list[Service]:
        found: list[Service] = [self]
        for zone in found:
            for link in list(zone.links.values()):
                other = getattr(getattr(link, "other", None), "zone", None)
                if isinstance(other, Service) and other not in found:
                    found.append(other)
        return found

    def _child_exited(self, child: ChildProcess) -> None:
        if self.children.get(child.name) is child:
            del self.children[child.name]

    def close(self) -> None:
        """Close every server and link; peers see every reference across them released."""
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for link in list(self.links.values()):
            close_link = getattr(link, "close", None)
            if close_link is not None:
                close_link()
        self.links.clear()
        children, self.children = self.children, {}
        for child in children.values():
            child.stop()  # its link is closed: the child is on its way out

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Zone(_Zone):
    """A zone whose proxies block: ``proxy.add(1, 2)`` returns the result."""

    def __init__(
        self, name: str = "zone", *, zone_id: int | None = None, limits: Limits | None = None
    ) -> None:
        super().__init__(name, BLOCKING, zone_id=zone_id, limits=limits)

    def child(
        self,
        name: str,
        factory: Callable[[Zone], Interface],
        interface: Callable[..., I],
        *,
        encodings: Sequence[Encoding | str] = ENCODINGS,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
    ) -> I:
        """Create a child zone in this process serving ``factory(child)``; return a proxy.

        Calls to the proxy are marshalled through the wire layer exactly as
        across a network; the child zone lives while references into it do.
        """
        cls = interface_class(interface)
        result: I = self._child(
            Zone(name, limits=self.limits), factory, cls, encodings, call_timeout
        )[0]
        return result

    def load_plugin(
        self,
        source: str | os.PathLike[str] | None,
        interface: Callable[..., I],
        *,
        entry_point: str | None = None,
        host: Interface | None = None,
        encodings: Sequence[Encoding | str] = ENCODINGS,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
    ) -> I:
        """Load a plugin (a ``.py`` file or package directory at ``source``, or the
        ``canopy.plugins`` entry point named ``entry_point``) as a child zone, and
        return a proxy of its root as ``interface``.

        The plugin's ``plugin(zone, host)`` function makes the root; ``host``, if
        given, reaches it as a proxy. The plugin sees this zone only through
        proxies, as across a process boundary. When the last reference into it is
        gone, the plugin zone is torn down and its modules leave ``sys.modules``.
        """
        cls = interface_class(interface)
        result: I = self._plugin(Zone, source, entry_point, cls, host, encodings, call_timeout)
        return result

    def serve(
        self,
        url: str,
        factory: Callable[[Zone], Interface],
        interface: Callable[..., Any],
        *,
        encodings: Sequence[Encoding | str] = ENCODINGS,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        tls: ssl.SSLContext | None = None,
        origins: Sequence[str] | None = None,
        keepalive: float | None = KEEPALIVE,
        transform: Transform | None = None,
        idle_timeout: float | None = IDLE_TIMEOUT,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> Server:
        """Accept connections at ``url``, serving each ``factory(zone)`` as its root.

        ``url`` is ``tcp://host:port`` (port 0: a free port; the server's ``url``
        says which), ``unix:/path``, ``tls://``, ``ws://host:port/path``, ``wss://``
        or a base with layers (``tcp+zstd://``, ``unix+tls:/path``). TLS needs
        ``tls=canopy.streams.tls.server_context(certfile, keyfile)``. A WebSocket
        server takes browsers for hostile: it serves pages from its own host and
        port, and clients that send no Origin (no browser), unless ``origins``
        names the pages it serves (``["*"]``: any page on the web, unsafe). ``transform``
        sees each connection's stream once its layers are ready and returns the
        stream to use, or raises to refuse it. Each connection is a peer zone; it
        holds its root while it wants, and everything it held goes when it leaves.
        A connection that sends nothing for ``idle_timeout`` seconds (90 by default;
        None: never) is closed: canopy clients with a ``keepalive`` say something
        more often. One that has not completed its handshakes (TLS, the WebSocket
        upgrade, Canopy's) ``handshake_timeout`` seconds after it was accepted (10
        by default) is closed too. Closing the zone closes the server.
        """
        from canopy.transports.server import Server

        server = Server(
            self,
            url,
            self._root_factory(factory, interface),
            encodings=_encodings(encodings),
            options=_server_options(tls, origins),
            transform=transform,
            call_timeout=call_timeout,
            keepalive=keepalive,
            idle_timeout=idle_timeout,
            handshake_timeout=handshake_timeout,
        )
        self._servers.append(server)
        return server

    def connect(
        self,
        url: str | Stream,
        interface: Callable[..., I],
        *,
        root: Interface | None = None,
        encodings: Sequence[Encoding | str] = ENCODINGS,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        timeout: float | None = None,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        origin: str | None = None,
        keepalive: float | None = KEEPALIVE,
    ) -> I:
        """Link to the server at ``url`` and return a proxy of its root as ``interface``.

        ``root``, if given, is offered to the server, which then holds it for
        the connection. ``timeout`` bounds connecting and the handshakes (10 s by
        default). Over TLS the server is verified against ``tls`` (default: the
        system's trusted certificates) and the URL's host, or ``server_hostname``;
        ``canopy.streams.tls.client_context(certfile=, keyfile=)`` adds a client
        certificate. ``origin`` is the Origin a WebSocket client sends. A call
        waits ``call_timeout`` seconds for its reply (None: no limit; see
        ``canopy.call_timeout`` for one block of calls), then raises
        ``CallTimeout``. Calls block; the calling thread does its own socket I/O.
        Raises ``TransportError`` if the server cannot be reached or verified.

        ``url`` may instead be a ``canopy.streams.Stream`` already open to a zone
        that ``accept``s it: a shared-memory channel's end, a stream with layers
        of your own. Its layers are then yours, and ``tls`` and the rest unused.
        """
        from canopy.transports.stream import connect

        cls = interface_class(interface)
        link = connect(
            self,
            url,
            root=root,
            root_interface=_offered(root),
            encodings=_encodings(encodings),
            timeout=timeout,
            options=_client_options(tls, server_hostname, origin, timeout),
            call_timeout=call_timeout,
            keepalive=keepalive,
        )
        try:
            proxy, check = self._linked_root(link, cls, _named(url))
            if check:
                info = interface_of(cls)
                assert info is not None  # noqa: S101 - interface_class() checked it
                with self.inside():
                    _, call_id = self.try_cast(proxy, info.id)
                error = self._cast_failed(link.wait(call_id), cls, _named(url))
                if error is not None:
                    raise error
        except BaseException:
            link.close()
            raise
        result: I = proxy
        return result

    def accept(
        self,
        stream: Stream,
        factory: Callable[[Zone], Interface],
        interface: Callable[..., Any],
        *,
        encodings: Sequence[Encoding | str] = ENCODINGS,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        keepalive: float | None = KEEPALIVE,
        timeout: float | None = None,
    ) -> None:
        """Serve ``factory(zone)`` as the root of the one zone at the other end of
        ``stream``, which ``connect``s over it: ``serve`` for a stream you opened
        yourself (a shared-memory channel's end, a stream with layers of your own).

        The link reads on a thread of its own from now on; ``timeout`` bounds the
        handshake (10 s by default). It ends when the stream ends or this zone closes.
        """
        from canopy.transports.stream import accept

        root, root_interface = self._root_factory(factory, interface)()
        accept(
            self,
            stream,
            root=root,
            root_interface=root_interface,
            encodings=_encodings(encodings),
            timeout=timeout,
            call_timeout=call_timeout,
            keepalive=keepalive,
        )

    def spawn(
        self,
        name: str,
        target: str,
        interface: Callable[..., I],
        *,
        encodings: Sequence[Encoding | str] = ENCODINGS,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        keepalive: float | None = KEEPALIVE,
        env: dict[str, str] | None = None,
        shared_memory: bool = False,
    ) -> I:
        """Start a child process serving the object ``target`` (``package.module:entry``)
        makes, and return a proxy of it as ``interface``.

        The entry point is a class or function, called in the child with the child's
        zone if it takes an argument. The child is linked to this zone over a
        socketpair and lives as long as the link: ``canopy.close`` on every proxy
        into it, or ``zone.children[name].stop()``, or this zone closing, ends it;
        so does this process dying, however it dies. If the child crashes, its
        pending calls fail at once and everything it held here is released. Its
        output is logged under ``canopy.child.<name>``. ``shared_memory`` links it
        over shared-memory rings instead of a socket (x86-64), for lower latency.
        """
        from canopy.transports.child import spawn

        cls = interface_class(interface)
        if name in self.children:
            raise ValueError(f"zone {self.name!r} already has a child named {name!r}")
        child = spawn(
            self,
            name,
            target,
            encodings=_encodings(encodings),
            call_timeout=call_timeout,
            keepalive=keepalive,
            env=env,
            shared_memory=shared_memory,
        )
        self.children[name] = child
        child.on_exit = self._child_exited
        try:
            proxy, check = self._linked_root(child.link, cls, f"child {name!r}")
            if check:
                info = interface_of(cls)
                assert info is not None  # noqa: S101 - interface_class() checked it
                with self.inside():
                    _, call_id = self.try_cast(proxy, info.id)
                error = self._cast_failed(child.link.wait(call_id), cls, f"child {name!r}")
                if error is not None:
                    raise error
        except BaseException:
            del self.children[name]
            child.stop()
            raise
        result: I = proxy
        return result


class AsyncZone(_Zone):
    """A zone whose proxies are awaited: ``await proxy.add(1, 2)``."""

    def __init__(
        self, name: str = "zone", *, zone_id: int | None = None, limits: Limits | None = None
    ) -> None:
        super().__init__(name, ASYNCIO, zone_id=zone_id, limits=limits)

    async def child(
        self,
        name: str,
        factory: Callable[[AsyncZone], Interface],
        interface: Callable[..., A],
        *,
        encodings: Sequence[Encoding | str] = ENCODINGS,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
    ) -> A:
        """Create a child zone in this process serving ``factory(child)``; return a proxy.

        Pass the interface's generated ``<interface>_async`` protocol to get a proxy
        that type-checks as awaited (the interface class itself works too, untyped).
        """
        cls = interface_class(interface)
        result: A = self._child(
            AsyncZone(name, limits=self.limits), factory, cls, encodings, call_timeout
        )[0]
        return result

    async def load_plugin(
        self,
        source: str | os.PathLike[str] | None,
        interface: Callable[..., A],
        *,
        entry_point: str | None = None,
        host: Interface | None = None,
        encodings: Sequence[Encoding | str] = ENCODINGS,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
    ) -> A:
        """Load a plugin as a child zone; see ``Zone.load_plugin``."""
        cls = interface_class(interface)
        result: A = self._plugin(AsyncZone, source, entry_point, cls, host, encodings, call_timeout)
        return result

    async def serve(
        self,
        url: str,
        factory: Callable[[AsyncZone], Interface],
        interface: Callable[..., Any],
        *,
        encodings: Sequence[Encoding | str] = ENCODINGS,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        tls: ssl.SSLContext | None = None,
        origins: Sequence[str] | None = None,
        keepalive: float | None = KEEPALIVE,
        transform: AsyncTransform | None = None,
        idle_timeout: float | None = IDLE_TIMEOUT,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> AsyncServer:
        """Accept connections at ``url`` on the running loop; see ``Zone.serve``
        (``transform`` is an async function here)."""
        from canopy.transports.server import AsyncServer

        server = await AsyncServer.start(
            self,
            url,
            self._root_factory(factory, interface),
            encodings=_encodings(encodings),
            options=_server_options(tls, origins),
            transform=transform,
            call_timeout=call_timeout,
            keepalive=keepalive,
            idle_timeout=idle_timeout,
            handshake_timeout=handshake_timeout,
        )
        self._servers.append(server)
        return server

    async def connect(
        self,
        url: str | AsyncStream,
        interface: Callable[..., A],
        *,
        root: Interface | None = None,
        encodings: Sequence[Encoding | str] = ENCODINGS,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        timeout: float | None = None,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        origin: str | None = None,
        keepalive: float | None = KEEPALIVE,
    ) -> A:
        """Link to the server at ``url``; return a proxy of its root (see ``Zone.connect``)."""
        from canopy.transports.stream import aconnect

        cls = interface_class(interface)
        link: AsyncStreamLink = await aconnect(
            self,
            url,
            root=root,
            root_interface=_offered(root),
            encodings=_encodings(encodings),
            timeout=timeout,
            options=_client_options(tls, server_hostname, origin, timeout),
            call_timeout=call_timeout,
            keepalive=keepalive,
        )
        try:
            proxy, check = self._linked_root(link, cls, _named(url))
            if check:
                info = interface_of(cls)
                assert info is not None  # noqa: S101 - interface_class() checked it
                with self.inside():
                    _, call_id = self.try_cast(proxy, info.id)
                error = self._cast_failed(await link.wait_async(call_id), cls, _named(url))
                if error is not None:
                    raise error
        except BaseException:
            link.close()
            await link.wait_closed()
            raise
        result: A = proxy
        return result

    async def accept(
        self,
        stream: AsyncStream,
        factory: Callable[[AsyncZone], Interface],
        interface: Callable[..., Any],
        *,
        encodings: Sequence[Encoding | str] = ENCODINGS,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        keepalive: float | None = KEEPALIVE,
        timeout: float | None = None,
    ) -> None:
        """Serve ``factory(zone)`` to the zone at the other end of ``stream``, on the
        running loop (see ``Zone.accept``)."""
        from canopy.transports.stream import aaccept

        root, root_interface = self._root_factory(factory, interface)()
        aaccept(
            self,
            stream,
            root=root,
            root_interface=root_interface,
            encodings=_encodings(encodings),
            timeout=timeout,
            call_timeout=call_timeout,
            keepalive=keepalive,
        )

    async def spawn(
        self,
        name: str,
        target: str,
        interface: Callable[..., A],
        *,
        encodings: Sequence[Encoding | str] = ENCODINGS,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        keepalive: float | None = KEEPALIVE,
        env: dict[str, str] | None = None,
        shared_memory: bool = False,
    ) -> A:
        """Start a child process serving ``target``'s object; see ``Zone.spawn``."""
        from canopy.transports.child import aspawn

        cls = interface_class(interface)
        if name in self.children:
            raise ValueError(f"zone {self.name!r} already has a child named {name!r}")
        child = await aspawn(
            self,
            name,
            target,
            encodings=_encodings(encodings),
            call_timeout=call_timeout,
            keepalive=keepalive,
            env=env,
            shared_memory=shared_memory,
        )
        self.children[name] = child
        child.on_exit = self._child_exited
        try:
            proxy, check = self._linked_root(child.link, cls, f"child {name!r}")
            if check:
                info = interface_of(cls)
                assert info is not None  # noqa: S101 - interface_class() checked it
                with self.inside():
                    _, call_id = self.try_cast(proxy, info.id)
                reply = await child.link.wait_async(call_id)
                error = self._cast_failed(reply, cls, f"child {name!r}")
                if error is not None:
                    raise error
        except BaseException:
            del self.children[name]
            await asyncio.get_running_loop().run_in_executor(None, child.stop)
            raise
        result: A = proxy
        return result

    async def aclose(self) -> None:
        """Close every server and link (as ``close``) and wait until their streams are
        closed and their tasks have ended."""
        links: list[Link] = list(self.links.values())
        servers = list(self._servers)
        children, self.children = self.children, {}
        self.close()
        loop = asyncio.get_running_loop()
        for child in children.values():
            child.link.close()
            await loop.run_in_executor(None, child.stop)
        for server in servers:
            wait = getattr(server, "wait_closed", None)
            if wait is not None:
                await wait()
        for link in links:
            wait = getattr(link, "wait_closed", None)
            if wait is not None:
                await wait()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _make_root(
    zone: Service, factory: Callable[[Any], Interface], interface: type[Interface]
) -> tuple[Interface, int]:
    info = interface_of(interface)
    if info is None:
        raise TypeError(f"{interface!r} is not a generated Canopy interface")
    root = factory(zone)
    if not isinstance(root, interface):
        raise TypeError(
            f"the factory of zone {zone.name!r} returned {type(root).__qualname__}, "
            f"which does not implement {info.name}"
        )
    return root, info.id


def _client_options(
    tls: ssl.SSLContext | None,
    server_hostname: str | None,
    origin: str | None,
    timeout: float | None,
) -> Layering:
    # Imported here: the runtime knows messages, and streams load with the first link.
    from canopy.streams import HANDSHAKE_TIMEOUT, Layering

    return Layering(
        tls=tls,
        server_hostname=server_hostname,
        origin=origin,
        timeout=HANDSHAKE_TIMEOUT if timeout is None else timeout,
    )


def _server_options(tls: ssl.SSLContext | None, origins: Sequence[str] | None) -> Layering:
    from canopy.streams import Layering

    return Layering(tls=tls, origins=origins)


def _named(target: object) -> str:
    """How a link's other end is named in errors: its URL, or the stream itself."""
    return target if isinstance(target, str) else repr(target)


def _encodings(encodings: Sequence[Encoding | str]) -> tuple[Encoding, ...]:
    """The encodings a zone accepts, in its order of preference, named or numbered."""
    if isinstance(encodings, str):
        raise TypeError(f"encodings is a sequence of encodings: write ({encodings!r},)")
    found = tuple(dict.fromkeys(encoding_of(e) for e in encodings))
    if not found:
        raise ValueError("a zone needs at least one encoding")
    return found


def _interface_class_of(obj: Interface) -> type[Interface]:
    interfaces = implemented(type(obj))
    if not interfaces:
        raise TypeError(f"{type(obj).__qualname__} implements no Canopy interface")
    return next(iter(interfaces.values()))


def _offered(root: Interface | None) -> int:
    """The interface a root offered to a peer is described as: its most derived one."""
    if root is None:
        return 0
    interfaces = implemented(type(root))
    if not interfaces:
        raise TypeError(f"{type(root).__qualname__} implements no Canopy interface")
    return next(iter(interfaces))


__all__ = [
    "AnyObject",
    "AsyncServer",
    "AsyncZone",
    "Caller",
    "Description",
    "DynamicObject",
    "Intercepted",
    "Proxy",
    "Server",
    "Service",
    "Zone",
    "acast",
    "adescribe",
    "adrain",
    "adynamic",
    "call_timeout",
    "caller",
    "cast",
    "close",
    "describe",
    "dynamic",
    "on_gone",
    "to_json",
    "use_encoding",
]
