"""The limits a stream link holds a peer to in time and memory, blocking and asyncio, over
TCP on 127.0.0.1: a handshake that never completes, a connection that goes silent, a
peer that does not read what it is sent, and a poster faster than its receiver. The
offending connection is closed (told why when it can still be told), an honest client
keeps working meanwhile, and the server holds nothing of it afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

import canopy
from behaviour import TestService as Service
from behaviour import b
from canopy.errors import ErrorCode
from canopy.streams import RECEIVE_SIZE
from canopy.streams._socket import AsyncSocketStream, SocketStream
from canopy.transports.stream import POST_HIGH_WATER, aaccept, accept
from canopy.wire import (
    Call,
    HandshakeComplete,
    Limits,
    Post,
    Protocol,
    ProtocolViolation,
    Refuse,
    Role,
)
from hostile import Live, frames
from waiting import until

MODES = ["blocking", "asyncio"]
ROOT = b.i_test.__canopy__.id
RECORD, RECORDED = 7, 8  # i_test's method ids: record (a post) and recorded
_zones = itertools.count(0x51_0000_0001)


def read_to_end(sock: socket.socket) -> bytes:
    """All the server sends until it closes; a server that neither answers nor closes
    within the socket's timeout fails the test."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.contextmanager
def serving(mode: str, limits: Limits | None = None, **options: Any) -> Iterator[Live]:
    """A server over TCP with ``limits`` and ``options``, and an honest client calling it
    all along (tests/hostile.py)."""
    server = Live(mode, "tcp", limits=limits, **options)
    try:
        yield server
    finally:
        server.close()


def test_a_handshake_is_bounded_in_time_however_its_bytes_trickle(mode: str) -> None:
    """Three connections that never finish their Hello: one says nothing, one half of it,
    one trickles it a byte at a time for longer than the deadline. Each is refused when
    the deadline passes, counted from its accept, not from its last byte."""
    with serving(mode, handshake_timeout=0.2) as s:
        hello = Protocol(Role.CONNECTING, next(_zones)).data_to_send()
        assert len(hello) > 12  # a byte every 0.1 s: the trickle outlasts the deadline
        socks = {name: socket.create_connection(s.address, timeout=3) for name in ("0", "½", "…")}
        socks["½"].sendall(hello[: len(hello) // 2])
        start = time.monotonic()
        received = dict.fromkeys(socks, b"")
        ended: dict[str, float] = {}
        trickled = 0
        while len(ended) < len(socks) and time.monotonic() - start < 3:
            if "…" not in ended and trickled < len(hello) - 1:  # never the whole Hello
                try:
                    socks["…"].sendall(hello[trickled : trickled + 1])
                    trickled += 1
                except OSError:
                    pass
            waiting = [sock for name, sock in socks.items() if name not in ended]
            readable, _, _ = select.select(waiting, [], [], 0.1)
            for name, sock in socks.items():
                if sock in readable:
                    try:
                        chunk = sock.recv(65536)
                    except ConnectionResetError:
                        chunk = b""
                    if chunk:
                        received[name] += chunk
                    else:
                        ended[name] = time.monotonic() - start
            assert s.root.add(trickled, 1) == trickled + 1  # the honest client meanwhile
        for sock in socks.values():
            sock.close()
        assert sorted(ended) == sorted(socks), "a half-open handshake was never dropped"
        for name, took in ended.items():
            assert 0.15 < took < 1.0, (name, took)
            assert frames(received[name]) == [
                Refuse(int(ErrorCode.CALL_TIMEOUT), "the handshake did not complete within 0.2 s")
            ], name
        s.healthy()


def handshake(address: tuple[str, int], *, quiet: bool, receive_buffer: int = 0) -> Any:
    """A raw client through the handshake: its socket, its protocol and the server's
    Welcome (which holds the root's address)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(3)
    sock.connect(address)
    client = Protocol(Role.CONNECTING, next(_zones), quiet=quiet)
    sock.sendall(client.data_to_send())
    while True:
        client.receive_data(sock.recv(65536))
        for event in client.events():
            if isinstance(event, HandshakeComplete):
                return sock, client, event
            assert not isinstance(event, ProtocolViolation), event


def test_a_silent_connection_is_closed_after_idle_timeout(mode: str) -> None:
    """A client that says it is quiet (a blocking client: it may not answer pings) is
    beyond the keepalive's reach; the idle timeout still ends it, with a Refuse."""
    with serving(mode, idle_timeout=0.3) as s:
        sock, _, _ = handshake(s.address, quiet=True)
        assert until(lambda: len(s.server.links) == 2)
        start = time.monotonic()
        messages = frames(read_to_end(sock))
        took = time.monotonic() - start
        sock.close()
        assert 0.2 < took < 1.5, took
        assert [type(m) for m in messages] == [Refuse]
        refuse = messages[0]
        assert isinstance(refuse, Refuse) and refuse.code == ErrorCode.CALL_TIMEOUT
        assert "sent nothing for" in refuse.message and "idle_timeout=0.3 s" in refuse.message
        s.healthy()


def test_a_peer_that_does_not_read_is_dropped_past_max_pending_write_bytes(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The peer calls ``recorded`` (whose reply holds 240 KB) again and again and reads
    nothing, with a receive buffer of a few KiB: the server's bytes for it pile up
    until the link is closed, long before it has held all that was asked."""
    limit = 256 * 1024
    with serving(mode, Limits(max_pending_write_bytes=limit)) as s:
        sock, client, welcome = handshake(s.address, quiet=False, receive_buffer=4096)
        target = (client.zone, welcome.peer_zone, welcome.peer_object, welcome.peer_interface)
        big = "x" * 60_000
        for seq in range(4):
            payload = msgspec.Raw(msgspec.msgpack.encode([big, seq]))
            client.send(Post(*target, RECORD, 1, payload))
        nothing = msgspec.Raw(msgspec.msgpack.encode([]))
        start = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="canopy"):
            for call_id in range(1, 201):  # 48 MB of replies, were they all made
                client.send(Call(call_id, *target, RECORDED, 1, nothing))
                try:
                    sock.sendall(client.data_to_send())
                except OSError:  # reset by the server, or it stopped reading: timed out
                    break
                if len(s.server.links) == 1:
                    break
            assert until(lambda: len(s.server.links) == 1), "the slow reader was never dropped"
        took = time.monotonic() - start
        sock.close()
        assert took < 3, took
        found = re.search(
            r"(\d+) bytes wait to be written to zone \w+, which does not read them as fast "
            rf"as it asks for them \(max_pending_write_bytes={limit}\)",
            caplog.text,
        )
        assert found is not None, caplog.text
        # Closed as the limit was crossed: by one reply at most (and one being written).
        assert limit < int(found[1]) <= limit + 2 * 240_100, found[0]
        s.healthy()


class Slow(Service):
    """Receives posts slowly and notes how many waited behind each one."""

    PAUSE = 0.0005

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.link: Any = None
        self.most_queued = 0

    def note(self, seq: int) -> None:
        self.seen.append(seq)
        if self.link is not None:
            self.most_queued = max(self.most_queued, self.link.queued)


class SlowBlocking(Slow):
    def record(self, value: str, seq: int) -> None:
        time.sleep(self.PAUSE)
        self.note(seq)


class SlowAsync(Slow):
    async def record(self, value: str, seq: int) -> None:  # type: ignore[override]
        await asyncio.sleep(self.PAUSE)
        self.note(seq)


def small_buffers() -> tuple[socket.socket, socket.socket]:
    """A TCP connection on 127.0.0.1 whose kernel buffers hold a few KiB each way, so
    that flow control shows at once: (connecting end, accepted end)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the accepted end's
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    near = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    near.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    near.connect(listener.getsockname())
    far, _ = listener.accept()
    listener.close()
    return near, far


def test_a_fast_poster_is_held_to_a_slow_receivers_pace(mode: str) -> None:
    """A blocking client posts 600 posts of 1 KB as fast as it can to a receiver that
    takes half a millisecond over each. The receiver stops reading while 16 wait
    (``max_queued_messages``), so the posts wait in the poster's socket and then in its
    link, which holds its thread back: the poster finishes about when the receiver
    does, and every post arrives, in order."""
    count, high = 600, 16
    frame = 1000 + 48  # a post's frame: its value and the rest
    near, far = small_buffers()
    receiver: Any = canopy.Zone("receiver", limits=Limits(max_queued_messages=high))
    loop: asyncio.AbstractEventLoop | None = None
    if mode == "blocking":
        service: Slow = SlowBlocking()
        service.link = accept(receiver, SocketStream(far), root=service, root_interface=ROOT)
    else:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        receiver = canopy.AsyncZone("receiver", limits=Limits(max_queued_messages=high))
        service = SlowAsync()

        async def serve() -> Any:
            reader, writer = await asyncio.open_connection(sock=far)
            stream = AsyncSocketStream(reader, writer)
            return aaccept(receiver, stream, root=service, root_interface=ROOT)

        service.link = asyncio.run_coroutine_threadsafe(serve(), loop).result(5)
    poster = canopy.Zone("poster")
    try:
        root = poster.connect(SocketStream(near), b.i_test)
        value = "p" * 1000
        started = time.monotonic()
        for seq in range(count):
            root.record(value, seq)
        posting = time.monotonic() - started
        seen_when_posted = len(service.seen)
        assert until(lambda: len(service.seen) == count, 10), len(service.seen)
        receiving = time.monotonic() - started
        assert service.seen == list(range(count))
        # Past the high-water mark by at most what one read holds.
        assert service.most_queued <= high + RECEIVE_SIZE // frame, service.most_queued
        # What may still be on its way when the poster is done: the receiver's queue,
        # the poster's unwritten posts, and the kernel buffers between them (a few KiB).
        slack = high + RECEIVE_SIZE // frame + POST_HIGH_WATER // frame + 64
        assert seen_when_posted >= count - slack, (seen_when_posted, posting, receiving)
        canopy.close(root)
    finally:
        poster.close()
        if loop is None:
            receiver.close()
        else:
            asyncio.run_coroutine_threadsafe(receiver.aclose(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            loop.close()


async def _post_to_a_slow_receiver(
    count: int, every: int, drain: bool, limit: int
) -> tuple[Slow, int, BaseException | None]:
    """An asyncio poster with ``max_pending_write_bytes=limit`` posts ``count`` posts of
    1 KB over TCP to a slow blocking receiver, awaiting ``canopy.adrain`` (or only
    yielding to the loop) every ``every`` posts. What the receiver saw, the most bytes
    the poster's link held unwritten, and what stopped the poster if anything did."""
    near, far = small_buffers()
    receiver = canopy.Zone("receiver", limits=Limits(max_queued_messages=16))
    service = SlowBlocking()
    service.link = accept(receiver, SocketStream(far), root=service, root_interface=ROOT)
    poster = canopy.AsyncZone("poster", limits=Limits(max_pending_write_bytes=limit))
    most, stopped = 0, None
    try:
        reader, writer = await asyncio.open_connection(sock=near)
        root = await poster.connect(AsyncSocketStream(reader, writer), b.i_test_async)
        link = root._canopy_remote.link
        value = "p" * 1000
        try:
            for seq in range(count):
                root.record(value, seq)
                most = max(most, link.unwritten)
                if seq % every == every - 1:
                    await asyncio.wait_for(canopy.adrain(root) if drain else asyncio.sleep(0), 5)
            await asyncio.wait_for(canopy.adrain(root), 5)
            assert await root.add(1, 2) == 3  # the link is still up
        except canopy.CanopyError as e:
            stopped = e
        deadline = time.monotonic() + 5
        while len(service.seen) < count and stopped is None and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        canopy.close(root)
    finally:
        await poster.aclose()
        receiver.close()
    return service, most, stopped


def test_an_asyncio_poster_that_awaits_adrain_goes_at_its_receivers_pace() -> None:
    """A poster 300 posts of 1 KB ahead of a receiver taking half a millisecond over each,
    with a limit of 128 KiB: awaiting ``adrain`` every 20 posts it never holds more than
    ``POST_HIGH_WATER`` and 20 posts unwritten, and every post arrives, in order."""
    count, every, frame = 300, 20, 1000 + 48
    service, most, stopped = asyncio.run(
        _post_to_a_slow_receiver(count, every, drain=True, limit=128 * 1024)
    )
    assert stopped is None, stopped
    assert service.seen == list(range(count))
    assert most <= POST_HIGH_WATER + every * frame, most


def test_an_asyncio_poster_that_does_not_drain_is_cut_off() -> None:
    """The same poster yielding to its loop instead of awaiting ``adrain``: its frames pile
    up behind a write its peer does not take, and its link is closed at the limit."""
    limit = 128 * 1024
    service, most, stopped = asyncio.run(
        _post_to_a_slow_receiver(300, 20, drain=False, limit=limit)
    )
    assert isinstance(stopped, canopy.LimitExceeded), stopped
    assert f"(max_pending_write_bytes={limit}); await canopy.adrain(proxy)" in str(stopped)
    assert most > limit - 1048, most
    assert service.seen == list(range(len(service.seen))) and len(service.seen) < 300


def test_an_asyncio_poster_that_never_yields_is_cut_off_at_the_limit() -> None:
    """A poster that never lets its loop run never lets its link write either: its
    frames pile up in this process, and the post that would cross the limit fails."""
    limit, frame = 64 * 1024, 1000 + 48
    service, most, stopped = asyncio.run(
        _post_to_a_slow_receiver(300, 1000, drain=False, limit=limit)
    )
    assert isinstance(stopped, canopy.LimitExceeded), stopped
    assert limit - frame < most <= limit, most
    assert service.seen == []  # nothing was written: the link was closed at the limit


def test_adrain_on_a_link_that_is_gone_fails_as_a_call_would() -> None:
    async def scenario() -> None:
        server_zone = canopy.AsyncZone("server")
        server = await server_zone.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
        async with canopy.AsyncZone("client") as client:
            root = await client.connect(server.url, b.i_test_async)
            link = root._canopy_remote.link
            await canopy.adrain(root)
            await server_zone.aclose()
            await asyncio.wait_for(link.wait_closed(), 5)
            with pytest.raises(canopy.ObjectGone) as called:
                await root.add(1, 2)
            with pytest.raises(canopy.ObjectGone) as drained:
                await canopy.adrain(root)
            assert str(drained.value) == str(called.value).replace("add", "drain", 1)
            with pytest.raises(canopy.TransportError, match="the link from zone 'client' is"):
                await link.drained()  # the link itself says it is closed

    asyncio.run(scenario())
