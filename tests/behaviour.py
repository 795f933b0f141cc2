"""The behaviour suite's contract, implementations and harness, shared by every transport.

``Harness`` hides the mode and the transport: ``h.do(proxy.add, 1, 2)`` calls and
returns the result whether proxies block or must be awaited, and whether the
service is a child zone or a peer zone behind a TCP or Unix socket, so each
test is written once.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import canopy
from canopy.runtime import AsyncZone, Zone, acast, cast
from canopy.runtime._zone import Service
from canopy.wire import Limits

b: Any = canopy.load_idl(Path(__file__).with_name("behaviour.idl")).behaviour

MODES = ("blocking", "asyncio")
# asyncio mode again with uvloop's loop in the test's zones, over the transports whose
# I/O the loop itself does its own way: sockets (unix and ws read as tcp does), its own
# TLS, and the shared-memory doorbell (a child zone's process uses uvloop whenever it
# is installed).
UVLOOP_TRANSPORTS = ("tcp", "tls", "shm")
# A transport is a child zone (local) or a stream URL's scheme: a base and its layers.
URLS = {
    "tcp": "tcp://127.0.0.1:0",
    "unix": "unix:{dir}/service.sock",
    "tls": "tls://127.0.0.1:0",
    "unix+tls": "unix+tls:{dir}/service.sock",
    "ws": "ws://127.0.0.1:0/canopy",
    "wss": "wss://127.0.0.1:0/canopy",
    "tcp+zstd": "tcp+zstd://127.0.0.1:0",
}
# Shared-memory rings between two zones of this process, bare and under TLS: the
# same stream a child process gets with shared_memory=True.
SHM = ("shm", "shm+tls")
TRANSPORTS = ("local", "plugin", "child", "child-shm", *SHM, *URLS)
TESTS = Path(__file__).resolve().parent
BASES = ("local", "tcp", "unix")  # for what no layer changes: limits, timeouts
ENCODINGS = ("binary", "binary_zstd", "json", "protobuf")
# Encodings change payloads only, and transports carry payloads as opaque bytes: every
# encoding runs over the local transport, every transport in binary, and JSON once more
# over a socket stack. A payload is encoded by the same code in both modes, so the
# encodings no browser uses run in blocking mode only (see test_behaviour.py).
COMBINATIONS = [
    *((t, "binary") for t in TRANSPORTS),
    *(("local", e) for e in ENCODINGS[1:]),
    ("wss", "json"),  # the browser's way in
]
BLOCKING_ONLY = ("binary_zstd", "protobuf")


class _Certificates:
    """A CA made for this test process, and a certificate for the test server from it."""

    def __init__(self) -> None:
        import trustme

        from canopy.streams import tls

        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1")
        self._dir = tempfile.mkdtemp(prefix="canopy-certs-")
        chain, ca_pem = f"{self._dir}/server.pem", f"{self._dir}/ca.pem"
        cert.private_key_and_cert_chain_pem.write_to_path(chain)
        ca.cert_pem.write_to_path(ca_pem)
        self.server = tls.server_context(chain)
        self.client = tls.client_context(cafile=ca_pem)


_certificates: _Certificates | None = None


def certificates() -> _Certificates:
    global _certificates
    if _certificates is None:
        _certificates = _Certificates()
    return _certificates


class Widget(b.i_widget):
    def __init__(self, label: str) -> None:
        self.label = label

    def name(self) -> str:
        return self.label


class Gadget(b.i_widget, b.i_gadget):
    def name(self) -> str:
        return "gadget"

    def serial(self) -> int:
        return 42


class Listener(b.i_listener):
    def __init__(self) -> None:
        self.messages: list[tuple[str, int]] = []
        self.finished: int | None = None

    def notify(self, message: str, seq: int) -> None:
        self.messages.append((message, seq))

    def done(self, count: int) -> None:
        self.finished = count


class TestService(b.i_test):
    """Sync and async methods mixed on purpose: both run in both modes."""

    def __init__(self) -> None:
        self.records: list[str] = []
        self.kept: Any = None
        self.kept_client: Any = None
        self.watched: Any = None
        self.peeked: Any = Widget("peeked")

    def echo(self, value: Any) -> Any:
        return value

    async def add(self, a: int, b: int) -> int:
        return a + b

    def divmod(self, a: int, b: int) -> tuple[int, int]:
        return a // b, a % b

    def swap(self, first: str, second: str) -> tuple[str, str]:
        return second, first

    def checked_divide(self, a: int, d: int) -> int:
        if d == 0:
            raise b.calc_error.DIVIDE_BY_ZERO(f"cannot divide {a} by zero")
        return a // d

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def record(self, value: str, seq: int) -> None:
        self.records.append(f"{seq}:{value}")

    def recorded(self) -> list[str]:
        return list(self.records)

    def make_widget(self, name: str) -> Any:
        return Widget(name)

    def kept_widget(self) -> Any:
        if self.kept is None:
            self.kept = Widget("kept")
        return self.kept

    def make_gadget(self) -> Any:
        return Gadget()

    async def widget_name(self, widget: Any) -> str:
        return "none" if widget is None else await widget.name()

    def keep(self, widget: Any) -> None:
        self.kept_client = widget

    def drop(self) -> None:
        self.kept_client = None
        self.peeked = None

    def watch(self, widget: Any) -> None:
        self.watched = widget

    async def watched_name(self) -> str:
        return str(await self.watched.name())

    def peek(self) -> Any:
        return self.peeked

    def echo_back(self, widget: Any) -> Any:
        return widget

    async def slow(self, milliseconds: int) -> Any:
        await asyncio.sleep(milliseconds / 1000)
        return Widget("late")

    async def who(self) -> tuple[int, str, str]:
        await asyncio.sleep(0)  # the caller is still known after the coroutine resumes
        me = canopy.caller()
        return me.zone, me.method, str(me.info.get("address", ""))

    async def names(self, value: Any) -> list[str]:
        found = [await value.widget.name()] if value.widget is not None else []
        return found + [await w.name() for w in value.spares]

    def give(self, count: int) -> Any:
        return b.holder(
            widget=Widget("given"), spares=[Widget(f"spare{i}") for i in range(count)], count=count
        )

    async def listen(self, listener: Any, count: int) -> None:
        for i in range(count):
            listener.notify(f"m{i}", i)
        await listener.done(count)


class Harness:
    """One mode's host zone and a zone serving ``TestService`` behind ``self.root``: a
    child zone (``local``), or a peer zone serving at a URL of ``URLS`` that the host
    connects to, both in this process and, in asyncio mode, on one loop."""

    def __init__(
        self,
        mode: str,
        limits: Limits | None = None,
        transport: str = "local",
        encoding: str | None = "binary",
    ) -> None:
        """``encoding`` is the only one both zones accept; ``None``: every encoding."""
        self.mode = mode
        self.transport = transport
        self.encoding = encoding
        encodings = (encoding,) if encoding is not None else ENCODINGS
        self.loop: asyncio.AbstractEventLoop | None = None
        if mode == "asyncio":
            self.loop = asyncio.new_event_loop()
        elif mode == "uvloop":
            import uvloop

            self.loop = uvloop.new_event_loop()
        zone_class = Zone if mode == "blocking" else AsyncZone
        self.zone: Service = zone_class("host", limits=limits)
        self.service: Service | None = None
        self._dir: str | None = None
        self.remote = transport.startswith("child")  # the service zone is in another process
        if transport == "local":
            self.root: Any = self.do(
                self.zone.child,  # type: ignore[attr-defined]
                "service",
                lambda z: TestService(),
                b.i_test,
                encodings=encodings,
            )
            return
        if transport == "plugin":
            self.root = self.do(
                self.zone.load_plugin,  # type: ignore[attr-defined]
                TESTS / "behaviour_plugin.py",
                b.i_test,
                encodings=encodings,
            )
            return
        if transport.startswith("child"):
            python_path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
            self.root = self.do(
                self.zone.spawn,  # type: ignore[attr-defined]
                "service",
                "child_entries:service",
                b.i_test,
                encodings=encodings,
                env={**os.environ, "PYTHONPATH": python_path},
                shared_memory=transport == "child-shm",
            )
            return
        self.service = zone_class("service", limits=limits)
        if transport in SHM:
            self.root = self._over_shared_memory(transport == "shm+tls", encodings)
            return
        url = URLS[transport]
        if "{dir}" in url:
            # A short directory of its own: socket paths are limited to about 100 bytes.
            self._dir = tempfile.mkdtemp(prefix="canopy-")
            url = url.format(dir=self._dir)
        secure = "tls" in transport or transport == "wss"
        self.server = self.do(
            self.service.serve,  # type: ignore[attr-defined]
            url,
            lambda z: TestService(),
            b.i_test,
            encodings=encodings,
            tls=certificates().server if secure else None,
        )
        self.root = self.do(
            self.zone.connect,  # type: ignore[attr-defined]
            self.server.url,
            b.i_test,
            encodings=encodings,
            tls=certificates().client if secure else None,
            server_hostname="localhost" if secure else None,
        )

    def _over_shared_memory(self, secure: bool, encodings: Sequence[str]) -> Any:
        """Link the host to the service over a shared-memory channel, with TLS over
        it if ``secure``, and return the service's root."""
        from canopy.streams import shm, tls

        channel = shm.Channel.create()
        service, host = self.service, self.zone
        if self.loop is None:
            service_end: Any = shm.attach(channel.spec)
            host_end: Any = channel.stream()
            if secure:
                with ThreadPoolExecutor(1) as pool:
                    server_side = pool.submit(tls.wrap_server, service_end, certificates().server)
                    host_end = tls.wrap_client(
                        host_end, certificates().client, server_hostname="localhost"
                    )
                    service_end = server_side.result()
            service.accept(service_end, lambda z: TestService(), b.i_test, encodings=encodings)  # type: ignore[attr-defined]
            return host.connect(host_end, b.i_test, encodings=encodings)  # type: ignore[attr-defined]

        async def link() -> Any:
            service_end: Any = shm.aattach(channel.spec)
            host_end: Any = channel.astream()
            if secure:
                service_end, host_end = await asyncio.gather(
                    tls.awrap_server(service_end, certificates().server),
                    tls.awrap_client(host_end, certificates().client, server_hostname="localhost"),
                )
            await service.accept(
                service_end, lambda z: TestService(), b.i_test, encodings=encodings
            )  # type: ignore[attr-defined]
            return await host.connect(host_end, b.i_test, encodings=encodings)  # type: ignore[attr-defined]

        return self.do(link)

    def do(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` and return its result, awaited in asyncio mode."""
        if self.loop is None:
            return fn(*args, **kwargs)

        async def go() -> Any:
            result = fn(*args, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return self.loop.run_until_complete(go())

    def cast(self, proxy: Any, cls: type[Any]) -> Any:
        return self.do(acast if self.loop else cast, proxy, cls)

    def settle(self) -> None:
        """Let queued posts and releases run and arrive.

        In one process and on one thread that takes a few turns of the loop;
        across a socket, messages are in flight for a while, so this waits until
        two looks at every zone's tables in a row agree (or about a second). A
        blocking client reads only while it calls (or while the service holds one
        of its objects), so it makes a call each time round to take in what the
        service sent meanwhile, such as the news that an object it watches died.
        """
        if self.service is None and not self.remote:
            if self.loop is not None:
                for _ in range(20):
                    self.loop.run_until_complete(asyncio.sleep(0))
            self.zone.collect()  # type: ignore[attr-defined]
            return
        gc.collect()
        previous = None
        for _ in range(200):
            self.pause(0.002)
            if self.loop is None and self.root is not None:
                self.root.add(0, 0)
            for zone in self.zones():
                zone.flush()
            state = self.held()
            if state == previous:
                return
            previous = state

    def pause(self, seconds: float) -> None:
        """Let time pass, with the loop running in asyncio mode."""
        if self.loop is not None:
            self.loop.run_until_complete(asyncio.sleep(seconds))
        else:
            time.sleep(seconds)

    def service_zone(self) -> Service:
        """The serving zone, for tests that look inside it; skipped when it is in
        another process."""
        if self.remote:
            import pytest  # here: child processes import this module, and never get here

            pytest.skip("the service zone is in another process")
        return self.zones()[1]

    def zones(self) -> list[Service]:
        if self.service is not None:
            return [self.zone, self.service]
        return self.zone._local_zones()  # type: ignore[attr-defined, no-any-return]

    def held(self) -> dict[str, Any]:
        """What each zone still exports and imports, for the zones that hold anything."""
        return {
            z.name: (z.exported(), z.imported())
            for z in self.zones()
            if z.exported() or z.imported()
        }

    def close(self) -> dict[str, Any]:
        """Drop the root, let everything settle; what any zone still holds is returned."""
        zones = self.zones()
        self.root = None
        self.settle()
        deadline = time.monotonic() + 2
        sockets = self.service is not None or self.remote
        while sockets and self.held() and time.monotonic() < deadline:
            self.settle()  # a release may still be on its way
        left = self.held()
        for zone in zones if self.service is not None else [self.zone]:
            if self.loop is not None and sockets:
                self.loop.run_until_complete(zone.aclose())  # type: ignore[attr-defined]
            else:
                zone.close()  # type: ignore[attr-defined]
        if self.loop is not None:
            self.loop.run_until_complete(asyncio.sleep(0))  # let cancelled consumers finish
            self.loop.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        return left
