"""Zones in different threads and processes over TCP and Unix sockets: connecting and
the handshake, callbacks, many clients, peers that vanish or misbehave, and closing.

The behaviour suite runs over these links too (tests/runtime/test_behaviour.py);
this file covers what only a network link has.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

import canopy
from behaviour import Gadget, Listener, Widget, b
from behaviour import TestService as Service
from canopy.runtime import close
from canopy.streams import shm, zstd
from canopy.transports.server import Server
from canopy.transports.stream import AsyncStreamLink, BlockingStreamLink
from canopy.wire import Encoding, Message, Refuse
from waiting import until

KINDS = ("tcp", "unix")
FAILED = (canopy.CallCancelled, canopy.TransportError)


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "tcp":
        yield "tcp://127.0.0.1:0"
        return
    # Unix socket paths are limited to about 100 bytes; pytest's tmp_path can be longer.
    where = tempfile.mkdtemp(prefix="canopy-")
    yield f"unix:{where}/service.sock"
    shutil.rmtree(where, ignore_errors=True)


def clean(*zones: canopy.Zone | canopy.AsyncZone) -> bool:
    return all(not z.exported() and not z.imported() for z in zones)


class Gate(b.i_widget):
    """A callback that blocks until released: a call stays pending while it waits."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def name(self) -> str:
        self.entered.set()
        self.release.wait(5)
        return "released"


class Recording(Service):
    """The test service, noting how each ``widget_name`` ended and when."""

    def __init__(self) -> None:
        super().__init__()
        self.ended: queue.Queue[tuple[BaseException | str, float]] = queue.Queue()

    async def widget_name(self, widget: Any) -> str:
        try:
            name = await super().widget_name(widget)
        except Exception as e:
            self.ended.put((e, time.monotonic()))
            raise
        self.ended.put((name, time.monotonic()))
        return name


# ---------------------------------------------------------------- connecting


def test_a_blocking_round_trip(url: str) -> None:
    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        server = service.serve(url, lambda z: Service(), b.i_test)
        assert server.url != url or url.startswith("unix:")
        root = client.connect(server.url, b.i_test)
        assert isinstance(root, b.i_test)
        assert root.add(2, 3) == 5
        link = client.links[service.id]
        assert isinstance(link, BlockingStreamLink)
        if url.startswith("unix:"):
            assert link.info["peercred"] == (os.getpid(), os.getuid(), os.getgid())
        close(root)
        assert until(lambda: clean(client, service))


def test_an_asyncio_round_trip(url: str) -> None:
    async def scenario() -> None:
        async with canopy.AsyncZone("service") as service, canopy.AsyncZone("client") as client:
            server = await service.serve(url, lambda z: Service(), b.i_test)
            root = await client.connect(server.url, b.i_test)
            assert await root.add(2, 3) == 5
            assert isinstance(client.links[service.id], AsyncStreamLink)
            close(root)
            for _ in range(100):
                if clean(client, service):
                    break
                await asyncio.sleep(0.002)
            assert clean(client, service)

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_nobody_listening_is_a_transport_error(url: str) -> None:
    if url.startswith("tcp"):
        probe = socket.create_server(("127.0.0.1", 0))
        url = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
        probe.close()
    with canopy.Zone("client") as client, pytest.raises(canopy.TransportError, match="connect"):
        client.connect(url, b.i_test)
    assert client.links == {}


def test_a_root_that_is_not_the_interface_asked_for() -> None:
    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        server = service.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
        with pytest.raises(canopy.InvalidCast, match="does not implement behaviour::i_widget"):
            client.connect(server.url, b.i_widget)
        gadgets = service.serve("tcp://127.0.0.1:0", lambda z: Gadget(), b.i_widget)
        gadget = client.connect(gadgets.url, b.i_gadget)  # served as a widget, cast on arrival
        assert gadget.serial() == 42
        close(gadget)
        assert until(lambda: clean(client, service))


def test_zones_link_over_a_stream_opened_by_hand() -> None:
    """``accept`` and ``connect`` take any stream: compressed shared memory, here."""
    channel = shm.Channel.create()
    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        service.accept(zstd.wrap(shm.attach(channel.spec)), lambda z: Gadget(), b.i_widget)
        gadget = client.connect(zstd.wrap(channel.stream()), b.i_gadget)  # cast on arrival
        assert gadget.serial() == 42
        assert isinstance(client.links[service.id], BlockingStreamLink)
        close(gadget)
        assert until(lambda: clean(client, service))
        client.close()  # the link ends, and with it the service's side
        assert until(lambda: not service.links)
    assert not list(Path("/dev/shm").glob(f"{channel.spec.split(':')[2]}*"))


def test_a_stream_opened_by_hand_to_the_wrong_interface() -> None:
    async def scenario() -> None:
        channel = shm.Channel.create()
        async with canopy.AsyncZone("service") as service, canopy.AsyncZone("client") as client:
            await service.accept(shm.aattach(channel.spec), lambda z: Service(), b.i_test)
            with pytest.raises(canopy.InvalidCast, match=r"AsyncShmStream.*i_widget"):
                await client.connect(channel.astream(), b.i_widget)
            assert client.links == {}
            for _ in range(500):
                if not service.links:
                    break
                await asyncio.sleep(0.002)
            assert not service.links and clean(service)

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_no_common_encoding_is_refused_with_its_own_error() -> None:
    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        server = service.serve(
            "tcp://127.0.0.1:0", lambda z: Service(), b.i_test, encodings=("binary",)
        )
        with pytest.raises(canopy.IncompatibleSerialisation, match="no encoding in common"):
            client.connect(server.url, b.i_test, encodings=(Encoding.JSON,))
        assert client.links == {}
        assert until(lambda: clean(service) and not server.links)


def test_one_link_per_pair_of_zones() -> None:
    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        server = service.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
        root = client.connect(server.url, b.i_test)
        with pytest.raises(canopy.TransportError, match="already linked"):
            client.connect(server.url, b.i_test)
        assert root.add(1, 1) == 2
        close(root)
        assert until(lambda: clean(client, service))


def test_an_idle_client_reconnects_at_once_after_its_connection_dropped() -> None:
    """A blocking client that made no call since its connection dropped has not read its
    end: connecting again asks the old link, finds it dead, and links anew (it was
    refused as "already linked" until the keepalive noticed, after 40 s)."""
    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        server = service.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
        old = client.connect(server.url, b.i_test)
        assert old.add(1, 1) == 2
        service.links[client.id].abort("dropped")  # the client is not reading
        assert until(lambda: client.id not in service.links)
        new = client.connect(server.url, b.i_test, timeout=2.0)
        assert new.add(2, 2) == 4
        with pytest.raises(canopy.CanopyError):
            old.add(1, 1)
        del old
        close(new)
        assert until(lambda: clean(client, service))


def test_a_write_that_fails_holds_nothing_in_a_reference_cycle() -> None:
    """The error of a failed write must not keep the frames that were sending, and what
    they hold (a call's arguments), alive until the cyclic collector runs: bench/chaos.py
    found a server keeping a dead client's objects so."""

    def call_with(widget: Widget) -> None:
        with contextlib.suppress(canopy.CanopyError):
            root.widget_name(widget)

    def broken(data: bytes) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        server = service.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
        root = client.connect(server.url, b.i_test)
        assert root.add(1, 1) == 2
        client.links[service.id].stream.send = broken  # the connection breaks
        argument = Widget("an argument")
        alive = weakref.ref(argument)
        gc.disable()
        try:
            call_with(argument)
            del argument
            assert alive() is None, "the failed write keeps the call's argument alive"
        finally:
            gc.enable()
        close(root)


def test_the_connecting_side_can_offer_its_root() -> None:
    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        server = service.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
        mine = Listener()
        root = client.connect(server.url, b.i_test, root=mine)
        [link] = server.links
        theirs = link.remote_root(b.i_listener)
        theirs.notify("hello", 1)
        theirs.done(1)
        assert (mine.messages, mine.finished) == ([("hello", 1)], 1)
        with pytest.raises(RuntimeError, match="already taken"):
            link.remote_root(b.i_listener)
        del theirs
        close(root)
        assert until(lambda: clean(client, service))


# ---------------------------------------------------------------- callbacks and threads


def test_a_callback_reaches_an_idle_blocking_client() -> None:
    """The server calls back while no call of the client's is pending: the client reads
    in the background because the server holds one of its objects."""
    made: list[Service] = []

    def factory(zone: canopy.Zone) -> Service:
        made.append(Service())
        return made[-1]

    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        server = service.serve("tcp://127.0.0.1:0", factory, b.i_test)
        root = client.connect(server.url, b.i_test)
        root.keep(Widget("called later"))
        assert made[0].kept_client.name() == "called later"  # from a thread of the server's
        root.drop()
        close(root)
        assert until(lambda: clean(client, service))


def test_many_threads_share_one_blocking_link_with_callbacks() -> None:
    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        server = service.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
        root = client.connect(server.url, b.i_test)
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                for n in range(30):
                    assert root.add(i, n) == i + n
                    assert root.widget_name(Widget(f"{i}.{n}")) == f"{i}.{n}"
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert errors == []
        close(root)
        assert until(lambda: clean(client, service))


def test_twenty_blocking_clients_at_once(url: str) -> None:
    with canopy.Zone("service") as service:
        server = service.serve(url, lambda z: Service(), b.i_test)
        errors: list[BaseException] = []
        ready = threading.Barrier(20, timeout=10)

        def client(i: int) -> None:
            try:
                with canopy.Zone(f"client{i}") as zone:
                    root = zone.connect(server.url, b.i_test)
                    ready.wait()  # all twenty connected at once
                    for n in range(20):
                        assert root.add(i, n) == i + n
                    assert root.widget_name(Widget(f"w{i}")) == f"w{i}"
                    close(root)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert errors == []
        assert until(lambda: clean(service) and not server.links and not service.links)


def test_twenty_asyncio_clients_at_once(url: str) -> None:
    async def scenario() -> None:
        async with canopy.AsyncZone("service") as service:
            server = await service.serve(url, lambda z: Service(), b.i_test)

            async def client(i: int) -> None:
                async with canopy.AsyncZone(f"client{i}") as zone:
                    root = await zone.connect(server.url, b.i_test)
                    sums = await asyncio.gather(*(root.add(i, n) for n in range(20)))
                    assert sums == [i + n for n in range(20)]
                    assert await root.widget_name(Widget(f"w{i}")) == f"w{i}"
                    close(root)

            await asyncio.gather(*(client(i) for i in range(20)))
            for _ in range(500):
                if clean(service) and not server.links and not service.links:
                    break
                await asyncio.sleep(0.002)
            assert clean(service) and not server.links and not service.links

    asyncio.run(asyncio.wait_for(scenario(), 20))


@pytest.mark.parametrize("server_mode", ["blocking", "asyncio"])
def test_two_hundred_connections_at_once(server_mode: str) -> None:
    """200 client zones connected to one server at the same time, each calling."""
    count = 200

    async def clients(url: str) -> None:
        zones = [canopy.AsyncZone(f"client{i}") for i in range(count)]
        roots = await asyncio.gather(*(z.connect(url, b.i_test) for z in zones))
        sums = await asyncio.gather(*(root.add(i, 1) for i, root in enumerate(roots)))
        assert sums == [i + 1 for i in range(count)]
        names = await asyncio.gather(
            *(root.widget_name(Widget(f"w{i}")) for i, root in enumerate(roots))
        )
        assert names == [f"w{i}" for i in range(count)]
        for root in roots:
            close(root)
        await asyncio.gather(*(z.aclose() for z in zones))

    if server_mode == "blocking":
        with canopy.Zone("service") as service:
            server = service.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
            asyncio.run(asyncio.wait_for(clients(server.url), 60))
            assert until(lambda: clean(service) and not server.links, 10)
        return

    async def scenario() -> None:
        async with canopy.AsyncZone("service") as service:
            server = await service.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
            await clients(server.url)
            for _ in range(500):
                if clean(service) and not server.links:
                    break
                await asyncio.sleep(0.01)
            assert clean(service) and not server.links

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_asyncio_posts_are_written_together() -> None:
    class Counting:
        def __init__(self, inner: Any) -> None:
            self.inner, self.writes = inner, 0

        info = property(lambda self: self.inner.info)

        async def send(self, data: bytes) -> None:
            self.writes += 1
            await self.inner.send(data)

        async def receive(self, max_bytes: int = 65536) -> bytes:
            return bytes(await self.inner.receive(max_bytes))

        async def close(self) -> None:
            await self.inner.close()

    async def scenario() -> None:
        async with canopy.AsyncZone("service") as service, canopy.AsyncZone("client") as client:
            server = await service.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
            root = await client.connect(server.url, b.i_test)
            link = client.links[service.id]
            assert isinstance(link, AsyncStreamLink)
            counting = link.stream = Counting(link.stream)
            for i in range(1000):
                root.record(f"v{i}", i)
            assert len(await root.recorded()) == 1000
            assert counting.writes <= 3  # the posts and the call, not a write per post
            close(root)

    asyncio.run(asyncio.wait_for(scenario(), 10))


# ---------------------------------------------------------------- peers that vanish


def test_the_server_vanishing_mid_call_fails_the_call_at_once(url: str) -> None:
    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        server = service.serve(url, lambda z: Service(), b.i_test)
        root = client.connect(server.url, b.i_test)
        root.keep(Widget("held by the server"))
        gate = Gate()
        outcome: list[BaseException | str] = []

        def call() -> None:
            try:
                outcome.append(root.widget_name(gate))
            except BaseException as e:
                outcome.append(e)

        caller = threading.Thread(target=call)
        caller.start()
        try:
            assert gate.entered.wait(2)  # the server is calling back: the call is pending
            [link] = server.links
            start = time.monotonic()
            link.abort("pulled the plug")  # no goodbye: the client sees the stream end
            caller.join(2)
            assert time.monotonic() - start < 1
        finally:
            gate.release.set()
        assert len(outcome) == 1 and isinstance(outcome[0], FAILED), outcome
        with pytest.raises(canopy.ObjectGone):
            root.add(1, 2)
        assert until(lambda: clean(client, service))  # both sides let go of the other's
        other = canopy.Zone("another client")
        assert other.connect(server.url, b.i_test).add(1, 2) == 3  # the server still serves
        other.close()


def test_a_client_process_killed_mid_call(url: str) -> None:
    made: list[Recording] = []

    def factory(zone: canopy.Zone) -> Recording:
        made.append(Recording())
        return made[-1]

    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).parents[1])!r})
import canopy
from behaviour import b, Widget

class Stuck(b.i_widget):
    def name(self):
        print("stuck", flush=True)
        time.sleep(30)
        return "never"

zone = canopy.Zone("doomed")
root = zone.connect(sys.argv[1], b.i_test)
root.keep(Widget("kept by the server"))
root.widget_name(Stuck())
"""
    with canopy.Zone("service") as service:
        server = service.serve(url, factory, b.i_test)
        child = subprocess.Popen(
            [sys.executable, "-c", script, server.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            lines: queue.Queue[str] = queue.Queue()
            assert child.stdout is not None
            stdout = child.stdout
            threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
            assert lines.get(timeout=15) == "stuck\n"  # the server's callback is in flight
            assert service.exported()  # the client holds the root; the server holds its widgets
            assert service.imported()
            child.kill()
            killed = time.monotonic()
            error, when = made[0].ended.get(timeout=2)
            assert isinstance(error, FAILED), error
            assert when - killed < 1
        finally:
            child.kill()
            child.wait(5)
            assert child.stdout is not None and child.stderr is not None
            child.stdout.close()
            child.stderr.close()
        # Everything the dead zone held here is released, every proxy into it is gone.
        assert until(lambda: clean(service) and not server.links)
        with pytest.raises(canopy.ObjectGone):
            made[0].kept_client.name()
        made[0].kept_client = None
        with canopy.Zone("next") as other:
            assert other.connect(server.url, b.i_test).add(2, 2) == 4


def test_an_asyncio_peer_vanishing_mid_call() -> None:
    async def scenario() -> None:
        async with canopy.AsyncZone("service") as service, canopy.AsyncZone("client") as client:
            server = await service.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
            root = await client.connect(server.url, b.i_test)
            entered, release = asyncio.Event(), asyncio.Event()

            class Slow(b.i_widget):
                async def name(self) -> str:
                    entered.set()
                    await asyncio.wait_for(release.wait(), 5)
                    return "slow"

            pending = asyncio.ensure_future(root.widget_name(Slow()))
            await asyncio.wait_for(entered.wait(), 2)
            start = time.monotonic()
            server.links[0].abort("pulled the plug")
            with pytest.raises(FAILED):
                await asyncio.wait_for(pending, 1)
            assert time.monotonic() - start < 1
            release.set()
            for _ in range(200):
                if clean(client, service):
                    break
                await asyncio.sleep(0.005)
            assert clean(client, service)
            async with canopy.AsyncZone("another") as other:
                assert await (await other.connect(server.url, b.i_test)).add(1, 2) == 3

    asyncio.run(asyncio.wait_for(scenario(), 10))


# ---------------------------------------------------------------- peers that misbehave

GARBAGE = {
    "undecodable": b"\x05\x00\x00\x00\xc1\xc1\xc1\xc1\xc1",
    "oversized": b"\xff\xff\xff\x7f",
    "not-a-hello": b"\x02\x00\x00\x00\x91\x0e",  # a Close before any Hello
}


def raw_connect(url: str) -> socket.socket:
    if url.startswith("tcp://"):
        host, port = url[len("tcp://") :].rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=2)
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(2)
        sock.connect(url[len("unix:") :])
    return sock


def dropped(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (read to the end within its timeout)."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return True


@pytest.mark.parametrize("garbage", list(GARBAGE.values()), ids=list(GARBAGE))
def test_garbage_from_a_client_drops_only_that_client(url: str, garbage: bytes) -> None:
    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        server = service.serve(url, lambda z: Service(), b.i_test)
        root = client.connect(server.url, b.i_test)
        rogue = raw_connect(server.url)
        rogue.sendall(garbage)
        assert dropped(rogue)
        assert root.add(40, 2) == 42
        assert until(lambda: len(server.links) == 1)
        close(root)
        assert until(lambda: clean(client, service))


def test_asyncio_server_drops_garbage_without_disturbing_others() -> None:
    async def scenario() -> None:
        async with canopy.AsyncZone("service") as service, canopy.AsyncZone("client") as client:
            server = await service.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
            root = await client.connect(server.url, b.i_test)
            host, port = server.address
            for garbage in GARBAGE.values():
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(garbage)
                said = await asyncio.wait_for(reader.read(), 2)  # to the end: closed
                # Told why first: one Refuse frame.
                assert isinstance(msgspec.msgpack.decode(said[4:], type=Message), Refuse)
                writer.close()
                assert await root.add(40, 2) == 42
            close(root)

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_a_client_that_never_says_hello_is_dropped() -> None:
    with canopy.Zone("service") as service:
        server = Server(service, "tcp://127.0.0.1:0", lambda: (Service(), 0), handshake_timeout=0.2)
        try:
            silent = raw_connect(server.url)
            start = time.monotonic()
            assert dropped(silent)
            assert 0.15 < time.monotonic() - start < 1.5
            assert until(lambda: not server.links)
        finally:
            server.close()


# ---------------------------------------------------------------- closing


def test_a_clean_close_is_not_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="canopy")
    with canopy.Zone("service") as service:
        server = service.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
        client = canopy.Zone("client")
        root = client.connect(server.url, b.i_test)
        root.keep(Widget("kept"))  # each side holds something of the other's
        client.close()  # goodbye, acknowledged: both sides release what the other held
        assert until(lambda: clean(service) and not server.links)
        assert clean(client)
        with pytest.raises(canopy.ObjectGone):
            root.add(1, 2)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_closing_the_server_zone_ends_its_connections() -> None:
    before = set(threading.enumerate())
    service = canopy.Zone("service")
    server = service.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
    with canopy.Zone("client") as client:
        root = client.connect(server.url, b.i_test)
        assert root.add(1, 1) == 2
        service.close()
        with pytest.raises(FAILED):
            root.add(1, 1)  # the client learns of it at its next call
        assert clean(client) and client.links == {}
        with pytest.raises(canopy.TransportError):
            client.connect(server.url, b.i_test)
    assert clean(service) and not server.links
    assert until(lambda: set(threading.enumerate()) <= before)
