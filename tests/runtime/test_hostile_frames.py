"""Hostile bytes from a raw socket to a live server, blocking and asyncio, over TCP on
127.0.0.1: random and mutated frames before and after a handshake. Whatever arrives,
the offending connection is either refused frame by frame (PROTOCOL_ERROR, the link
stays up) or told why in a Refuse and closed; the server answers only in valid frames
and never hangs; an honest client calling before, during and after sees nothing of
it; and once the hostile connection is gone, the server's tables are as they were."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import canopy
from behaviour import TestService as Service
from behaviour import b
from canopy.errors import ErrorCode
from canopy.wire import Call, Hello, Message, Ping, Pong, Post, Refuse, Reply, Welcome
from frame_strategies import frame_of, streams, targets

LIVE = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
_decode = msgspec.msgpack.Decoder(Message).decode
_zones = itertools.count(0x0BAD_0000_0001)


def until(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


class Live:
    """A server zone in one mode, an honest blocking client calling it from a thread of
    its own all along, and what the server held before any hostile client came."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        if mode == "blocking":
            self.service: Any = canopy.Zone("service")
            self.server = self.service.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)
        else:
            self.loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
            self._thread.start()

            async def start() -> tuple[Any, Any]:
                zone = canopy.AsyncZone("service")
                return zone, await zone.serve("tcp://127.0.0.1:0", lambda z: Service(), b.i_test)

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


@pytest.fixture(scope="module", params=["blocking", "asyncio"])
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    server = Live(request.param)
    yield server
    server.close()


class Hostile:
    """A raw TCP client that speaks the protocol by hand, badly on purpose."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=3)
        self.zone = next(_zones)
        self.received = b""
        self.welcome: Welcome | None = None

    def send(self, data: bytes) -> bool:
        """Whether all of ``data`` went out (the server may have closed already)."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def handshake(self) -> Welcome:
        self.send(frame_of(msgspec.msgpack.encode(Hello((1,), (1,), self.zone, 0, 0))))
        while True:
            for message in self.messages():
                if isinstance(message, Welcome):
                    self.welcome = message
                    return message
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the link instead of welcoming"
            self.received += chunk

    def finish(self) -> list[Message]:
        """Say no more, read until the server closes, and return all it sent.

        A server that neither answers nor closes within the socket timeout hangs: that
        fails the test (socket.timeout)."""
        with contextlib.suppress(OSError):  # already reset by the server
            self.sock.shutdown(socket.SHUT_WR)
        try:
            while chunk := self.sock.recv(65536):
                self.received += chunk
        except ConnectionResetError:
            pass
        finally:
            self.sock.close()
        return self.messages()

    def messages(self) -> list[Message]:
        """Every whole frame received so far, each of which must be a valid message."""
        data, found, pos = self.received, [], 0
        while len(data) - pos >= 4:
            size = int.from_bytes(data[pos : pos + 4], "little")
            if len(data) - pos - 4 < size:
                break
            found.append(_decode(data[pos + 4 : pos + 4 + size]))
            pos += 4 + size
        return found


def honest_messages(zone: int, welcome: Welcome) -> list[Message]:
    """What this hostile zone could send honestly: calls and posts to the root it got."""
    add = msgspec.Raw(msgspec.msgpack.encode([1, 2]))
    record = msgspec.Raw(msgspec.msgpack.encode(["x", 1]))
    ids = welcome.zone, welcome.object, welcome.interface
    return [
        *targets.MESSAGES,
        Call(1, zone, *ids, 2, 1, add),
        Call(2, zone, *ids, 1, 1, msgspec.Raw(msgspec.msgpack.encode(["e"]))),
        Post(zone, *ids, 9, 1, record),
        Ping(3),
    ]


def check_answers(messages: list[Message]) -> None:
    for m in messages:
        if isinstance(m, Reply) and m.code == ErrorCode.PROTOCOL_ERROR:
            assert m.message.startswith("the peer could not decode this request's frame: ")


@LIVE
@given(data=streams())
def test_garbage_before_the_handshake(live: Live, data: bytes) -> None:
    hostile = Hostile(live.address)
    hostile.send(data)
    messages = hostile.finish()
    # Nothing passes before a Hello: the server said at most Welcome or Refuse.
    assert all(type(m).__name__ in ("Welcome", "Refuse", "Pong", "CloseAck") for m in messages)
    live.healthy()


@LIVE
@given(data=st.data())
def test_mutated_frames_after_the_handshake(live: Live, data: st.DataObject) -> None:
    hostile = Hostile(live.address)
    welcome = hostile.handshake()
    assert welcome.zone == live.service.id
    hostile.send(data.draw(streams(honest_messages(hostile.zone, welcome))))
    check_answers(hostile.finish())
    live.healthy()


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "byte-by-byte"])
def test_a_bad_frame_is_refused_and_the_link_stays_up(live: Live, chunked: bool) -> None:
    hostile = Hostile(live.address)
    welcome = hostile.handshake()
    bad_call = msgspec.msgpack.encode([4, 77, "not", "a", "call"])
    stream = frame_of(bad_call) + frame_of(b"\xc1") + frame_of(msgspec.msgpack.encode(Ping(5)))
    if chunked:
        for byte in stream:
            hostile.send(bytes([byte]))
    else:
        hostile.send(stream)
    call = Call(8, hostile.zone, welcome.zone, welcome.object, welcome.interface, 2, 1,
                msgspec.Raw(msgspec.msgpack.encode([20, 22])))  # fmt: skip
    hostile.send(frame_of(msgspec.msgpack.encode(call)))
    assert until(lambda: any(isinstance(m, Reply) and m.id == 8 for m in _read(hostile)))
    messages = hostile.finish()
    refusal = next(m for m in messages if isinstance(m, Reply) and m.id == 77)
    assert refusal.code == ErrorCode.PROTOCOL_ERROR
    assert Pong(5) in messages
    answer = next(m for m in messages if isinstance(m, Reply) and m.id == 8)
    assert answer.code == 0 and msgspec.msgpack.decode(answer.payload) == [42]
    live.healthy()


def _read(hostile: Hostile) -> list[Message]:
    hostile.sock.settimeout(0.05)
    try:
        hostile.received += hostile.sock.recv(65536)
    except TimeoutError:
        pass
    finally:
        hostile.sock.settimeout(3)
    return hostile.messages()


@pytest.mark.parametrize(
    "stream",
    [
        b"\xff\xff\xff\x7f",  # a frame bigger than max_frame_size
        frame_of(b"\xc1") * 8,  # max_decode_errors bad frames in a row
        frame_of(msgspec.msgpack.encode(Hello((1,), (1,), 5))),  # a second handshake
    ],
    ids=["huge-length", "bad-frames-in-a-row", "hello-again"],
)
def test_a_fatal_violation_closes_only_that_connection(live: Live, stream: bytes) -> None:
    others = [Hostile(live.address) for _ in range(2)]
    for other in others:
        other.handshake()
    hostile = Hostile(live.address)
    hostile.handshake()
    hostile.send(stream)
    start = time.monotonic()
    try:
        while chunk := hostile.sock.recv(65536):  # closed by the server, not by this side
            hostile.received += chunk
    except ConnectionResetError:
        pass
    assert time.monotonic() - start < 2
    hostile.sock.close()
    # Told why in the last frame: the code and what was wrong.
    refuse = hostile.messages()[-1]
    assert isinstance(refuse, Refuse), hostile.messages()
    assert refuse.code in (ErrorCode.LIMIT_EXCEEDED, ErrorCode.PROTOCOL_ERROR)
    assert re.search(r"exceeds max_frame_size|malformed frame|Hello after", refuse.message)
    for other in others:  # other raw connections still answer
        other.send(frame_of(msgspec.msgpack.encode(Ping(11))))
        assert until(lambda o=other: Pong(11) in _read(o))  # type: ignore[misc]
        other.finish()
    live.healthy()


def test_a_connection_that_stops_mid_frame_is_dropped_at_end_of_stream(live: Live) -> None:
    hostile = Hostile(live.address)
    hostile.handshake()
    hostile.send((1 << 20).to_bytes(4, "little") + b"\x94" * 1000)  # a large frame begun
    assert until(lambda: len(live.server.links) == 2)
    hostile.finish()
    live.healthy()
