"""The WebSocket edge of a live server, blocking and asyncio, taken for what a browser
may be: hostile. A raw client breaks the upgrade and the WebSocket framing on purpose
(oversize and fragmented messages, text, bad control frames, ping floods, requests
that are not upgrades or never end, pages from foreign origins). Each time that
connection alone is refused or closed with the right HTTP status or close code, the
server stays up, an honest client calling all along sees nothing, and the server's
tables come back to what they were.

Hostile Canopy frames inside honest WebSocket messages are test_hostile_frames.py's.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import select
import socket
import time
from collections.abc import Iterator
from typing import ClassVar

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import canopy
from behaviour import TestService as Service
from canopy.streams.websocket import MAX_SIZE
from canopy.wire import Call, Limits, Ping, Pong, Post, Refuse
from frame_strategies import frame_of
from hostile import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    TEXT,
    Live,
    WsHostile,
    server_holds,
    until,
    upgrade_request,
    ws_frame,
)

FEW = settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CANOPY_PING = frame_of(msgspec.msgpack.encode(Ping(7)))


@pytest.fixture(scope="module", params=["blocking", "asyncio"])
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    server = Live(request.param, "ws")
    yield server
    server.close()


def closed_by_the_server(hostile: WsHostile, seconds: float = 2.0) -> float:
    """Read until the server closes the connection; how long that took."""
    start = time.monotonic()
    hostile.sock.settimeout(seconds)
    hostile.until_closed()
    hostile.sock.close()
    return time.monotonic() - start


def still_answers(hostile: WsHostile) -> None:
    hostile.send(CANOPY_PING)
    assert _until_pong(hostile), "a connection beside the hostile one stopped"


def _until_pong(hostile: WsHostile) -> bool:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if Pong(7) in hostile.read():
            return True
    return False


@pytest.mark.parametrize(
    ("frames", "codes"),
    [
        (ws_frame(BINARY, b"x" * 64, length=MAX_SIZE + 1), {1009}),
        (ws_frame(CONT, CANOPY_PING), {1002}),
        (ws_frame(BINARY, b"ab", fin=False) + ws_frame(BINARY, b"cd"), {1002}),
        (ws_frame(PING, b"x", fin=False), {1002}),
        (ws_frame(PING, b"x" * 126), {1002}),
        (ws_frame(BINARY, CANOPY_PING, mask=False), {1002}),
        (ws_frame(BINARY, CANOPY_PING, rsv=4), {1002}),
        (ws_frame(0x3, b"reserved opcode"), {1002}),
        (ws_frame(TEXT, b'{"type": "Hello"}'), {1003}),
        (ws_frame(TEXT, b"\xff\xfe"), {1003, 1007}),
        (ws_frame(CLOSE, (999).to_bytes(2, "big")), {1002}),
        (ws_frame(CLOSE, (1000).to_bytes(2, "big") + b"\xff"), {1007}),
    ],
    ids=[
        "over-max-size",
        "continuation-without-a-start",
        "new-message-inside-a-fragmented-one",
        "fragmented-ping",
        "ping-over-125-bytes",
        "unmasked",
        "reserved-bits",
        "reserved-opcode",
        "text",
        "text-not-utf8",
        "close-code-999",
        "close-reason-not-utf8",
    ],
)
def test_a_websocket_violation_closes_only_that_connection(
    live: Live, frames: bytes, codes: set[int]
) -> None:
    other = WsHostile(live.address)
    other.handshake((8,))
    hostile = WsHostile(live.address)
    hostile.handshake((8,))
    hostile.send_frames(frames)
    assert closed_by_the_server(hostile) < 2
    assert hostile.close_code in codes
    still_answers(other)
    other.finish()
    live.healthy()


def test_fragments_and_control_frames_between_them_are_served(live: Live) -> None:
    hostile = WsHostile(live.address)
    hostile.handshake((8,))
    # A Canopy frame in four fragments, with pings and an empty fragment between them:
    # the bytes are a stream, so each fragment's bytes pass on as they come.
    parts = [CANOPY_PING[:3], CANOPY_PING[3:5], b"", CANOPY_PING[5:]]
    frames = ws_frame(BINARY, parts[0], fin=False) + ws_frame(PING, b"p1")
    frames += ws_frame(CONT, parts[1], fin=False) + ws_frame(CONT, parts[2], fin=False)
    frames += ws_frame(PING, b"p2") + ws_frame(CONT, parts[3]) + ws_frame(BINARY, b"")
    hostile.send_frames(frames)
    assert _until_pong(hostile)
    assert hostile.last_pong in (b"p1", b"p2")
    # A ping flood, read as it goes: answered (a pong may stand for several pings,
    # RFC 6455 5.5.3), and the last ping's is never left out.
    flood = b"".join(ws_frame(PING, b"%05d" % n) for n in range(2000))
    hostile.send_frames(flood)
    deadline = time.monotonic() + 3
    while hostile.last_pong != b"01999" and time.monotonic() < deadline:
        hostile.read()
    assert hostile.last_pong == b"01999"
    still_answers(hostile)
    hostile.finish()
    live.healthy()


def test_a_ping_flood_that_reads_nothing_is_borne_and_forgotten(live: Live) -> None:
    """Pings as fast as the server takes them, pongs never read, for a bounded time:
    the server keeps up or stops reading (its pongs wait to be written, one at most
    when it is writing something else), and drops the connection when it goes."""
    hostile = WsHostile(live.address)
    hostile.handshake((1,))
    hostile.sock.settimeout(0.1)
    flood = b"".join(ws_frame(PING, bytes(125)) for _ in range(1000))
    deadline = time.monotonic() + 0.3
    with contextlib.suppress(TimeoutError):  # the server read no more: pushback
        while time.monotonic() < deadline:
            hostile.sock.sendall(flood)
    hostile.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    hostile.sock.close()  # a reset: the server's unwritten pongs go nowhere
    live.healthy()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(100) + b"\r\n\r\n", b"400"),
        (b"GET /canopy HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", b"431"),
        (b"GET /canopy HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 200 + b"\r\n", b"431"),
        (upgrade_request(1).replace(b"GET /canopy", b"GET /elsewhere"), b"404"),
        (b"GET /canopy HTTP/1.1\r\nHost: x\r\n\r\n", b"426"),
        (upgrade_request(1).replace(b"Version: 13", b"Version: 8"), b"400"),
        (upgrade_request(1).replace(b"Key: ", b"Key: not-base64"), b"400"),
    ],
    ids=[
        "tls-hello",
        "line-too-long",
        "too-many-headers",
        "wrong-path",
        "not-an-upgrade",
        "old-version",
        "bad-key",
    ],
)
def test_a_request_that_is_no_good_upgrade_gets_an_http_error(
    live: Live, request_bytes: bytes, status: bytes
) -> None:
    hostile = WsHostile(live.address, upgrade=False)
    hostile.send_frames(request_bytes)
    hostile.sock.settimeout(2)
    answer = b""
    while chunk := hostile.sock.recv(65536):
        answer += chunk
    hostile.sock.close()
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:200]
    live.healthy()


@pytest.mark.parametrize(
    ("origin", "served"),
    [
        (None, True),  # not a browser
        ("http://127.0.0.1:{port}", True),
        ("https://localhost:{port}", True),
        ("http://[::1]:{port}", True),
        ("http://evil.example", False),
        ("http://127.0.0.1:{other}", False),  # another server on this host
        ("http://localhost", False),
        ("null", False),  # a sandboxed page or a file
    ],
)
def test_by_default_only_the_servers_own_origin_is_served(
    live: Live, origin: str | None, served: bool
) -> None:
    port = live.address[1]
    named = None if origin is None else origin.format(port=port, other=port + 1)
    hostile = WsHostile(live.address, upgrade=False)
    status = hostile.upgrade(named)
    if served:
        assert status.startswith(b"HTTP/1.1 101 "), status
        assert hostile.handshake((8,)).object
        hostile.finish()
    else:
        assert status.startswith(b"HTTP/1.1 403 "), status
        assert closed_by_the_server(hostile) < 2
    live.healthy()


def _mutations() -> st.SearchStrategy[bytes]:
    request = upgrade_request(1)

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        data = bytearray(request)
        for _ in range(draw(st.integers(1, 4))):
            how = draw(st.sampled_from(["flip", "cut", "insert"]))
            at = draw(st.integers(0, len(data)))
            if how == "flip" and at < len(data):
                data[at] ^= draw(st.integers(1, 255))
            elif how == "cut":
                del data[at : at + draw(st.integers(1, 40))]
            else:
                data[at:at] = draw(st.binary(min_size=1, max_size=20))
        return bytes(data)

    return mutated() | st.binary(max_size=300)


@FEW
@given(data=_mutations())
def test_mangled_upgrade_requests(live: Live, data: bytes) -> None:
    hostile = WsHostile(live.address, upgrade=False)
    hostile.send_frames(data)
    hostile.sock.shutdown(socket.SHUT_WR)
    hostile.sock.settimeout(2)
    answer = b""
    while chunk := hostile.sock.recv(65536):  # a hang fails with a socket timeout
        answer += chunk
    hostile.sock.close()
    assert answer == b"" or answer.startswith((b"HTTP/1.1 101 ", b"HTTP/1.1 4")), answer[:200]
    live.healthy()


_frames = st.builds(
    ws_frame,
    st.integers(0, 15),
    st.binary(max_size=140),
    fin=st.booleans(),
    rsv=st.sampled_from([0, 0, 0, 1, 4, 7]),
    mask=st.booleans() | st.just(True),
)


@FEW
@given(frames=st.lists(_frames | st.just(ws_frame(BINARY, CANOPY_PING)), max_size=8))
def test_random_websocket_frames_after_the_handshake(live: Live, frames: list[bytes]) -> None:
    hostile = WsHostile(live.address)
    hostile.handshake((1,))
    hostile.send_frames(b"".join(frames))
    hostile.finish()
    # 1005: the client's own Close had no code, and the server's answer echoes that.
    assert hostile.close_code in (None, 1000, 1002, 1003, 1005, 1007, 1009)
    live.healthy()


# ---------------------------------------------------------------- the handshake's time

HANDSHAKE = 0.6


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (all it sent before is read and dropped)."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("mode", ["blocking", "asyncio"])
def test_the_upgrade_and_the_canopy_handshake_share_one_timeout(mode: str) -> None:
    """A request dribbled byte by byte that never ends (slowloris) is cut at the
    timeout; so is an upgrade finished late and never followed by a Hello: at the
    timeout counted from the connection, not a second timeout after the upgrade. A
    connection that completed its handshake in time stays."""
    timed = Live(mode, "ws", handshake_timeout=HANDSHAKE)
    try:
        address = timed.server.address[:2]
        request = upgrade_request(address[1])
        endless = request[:-2] + b"X-Slow: " + b"z" * 1000
        late = HANDSHAKE * 0.75  # when the late upgrade's request is complete
        honest = WsHostile(address)
        honest.handshake((8,))
        socks = [socket.create_connection(address, timeout=2) for _ in range(2)]
        start = time.monotonic()
        sent = [0, 0]
        closed: dict[int, float] = {}
        for _ in range(300):  # about 10 ms each, however the server behaves
            now = time.monotonic() - start
            if len(closed) == 2 or now > HANDSHAKE * 3:
                break
            goals = [sent[0] + 1, int(len(request) * min(1.0, now / late))]
            for index, (data, goal) in enumerate(zip((endless, request), goals, strict=True)):
                if index not in closed and goal > sent[index]:
                    with contextlib.suppress(OSError):  # closed meanwhile: found below
                        socks[index].sendall(data[sent[index] : goal])
                    sent[index] = goal
            open_ = [sock for index, sock in enumerate(socks) if index not in closed]
            for sock in select.select(open_, [], [], 0.01)[0]:
                if _closed(sock):
                    closed[socks.index(sock)] = time.monotonic() - start
        assert sent[1] == len(request), "the late upgrade was cut before it was complete"
        assert sorted(closed) == [0, 1], closed
        for index in (0, 1):  # not at the late upgrade's end plus a timeout
            assert HANDSHAKE * 0.9 < closed[index] < HANDSHAKE * 1.45, closed
        still_answers(honest)
        honest.finish()
        timed.healthy()
    finally:
        for sock in socks:
            sock.close()
        timed.close()


# ---------------------------------------------------------------- idle time, unwritten bytes

IDLE = 0.3
LIMIT = 1 << 20  # max_pending_write_bytes: four of the 240 KB replies below, and a bit
RECORD, RECORDED = 7, 8  # i_test's method ids: record (a post) and recorded (all records)


class Counting(Service):
    """Counts the calls of ``recorded`` it answered: a client that reads no reply can
    still send its next call only once the last one was answered."""

    made: ClassVar[list[Counting]] = []  # taken by the test as soon as made

    def __init__(self) -> None:
        super().__init__()
        self.answered = 0
        Counting.made.append(self)

    def recorded(self) -> list[str]:
        self.answered += 1
        return super().recorded()


@pytest.fixture(scope="module", params=["blocking", "asyncio"])
def strict(request: pytest.FixtureRequest) -> Iterator[Live]:
    server = Live(
        request.param,
        "ws",
        factory=lambda zone: Counting(),
        limits=Limits(max_pending_write_bytes=LIMIT),
        idle_timeout=IDLE,
    )
    yield server
    server.close()


def test_a_client_that_sends_no_canopy_frame_is_closed_when_idle(strict: Live) -> None:
    """Two clients finish the upgrade and Canopy's handshake; one then sends nothing, the
    other only WebSocket pings, which the WebSocket layer answers without Canopy seeing
    them. A ping is no word from the peer's zone: both are told why and closed at
    ``idle_timeout``, the pinging one with its pings answered until then."""
    silent, pinging = WsHostile(strict.address), WsHostile(strict.address)
    silent.handshake((1,))
    pinging.handshake((1,))
    start = time.monotonic()
    sent, closed_after = 0, None
    for _ in range(300):  # about 10 ms each
        if time.monotonic() - start > IDLE * 4:
            break
        sent += pinging.send_frames(ws_frame(PING, str(sent).encode()))
        try:
            pinging.read(0.01)
        except ConnectionResetError:
            pass
        else:
            if pinging.close_code is None:
                continue
        closed_after = time.monotonic() - start
        break
    pinging.sock.close()
    assert closed_after is not None, "a client that only pinged was never closed"
    assert IDLE * 0.5 < closed_after < IDLE * 2.5, closed_after  # the Refuse says how long
    assert pinging.last_pong is not None and int(pinging.last_pong) >= sent // 2, sent
    assert closed_by_the_server(silent) < 1  # it was closed meanwhile
    for hostile in (silent, pinging):
        told = hostile.messages()[-1]
        assert isinstance(told, Refuse) and told.code == canopy.ErrorCode.CALL_TIMEOUT, told
        said = re.fullmatch(
            r"the peer sent nothing for ([\d.]+) s \(idle_timeout=0.3 s\)", told.message
        )
        assert said is not None and float(said[1]) >= IDLE, told.message
        assert hostile.close_code == 1000  # after the Refuse, a clean WebSocket close
    strict.healthy()


def test_a_client_that_does_not_read_its_replies_is_dropped_with_them(
    strict: Live, caplog: pytest.LogCaptureFixture
) -> None:
    """A client with a 4 KiB receive buffer calls ``recorded`` (240 KB replies) one call
    at a time and reads nothing. The replies fill the sockets, then the server's
    WebSocket write sticks, and replies pile up behind it until the link is closed at
    ``max_pending_write_bytes``, counted with what the WebSocket layer holds of the
    write it is stuck in. The server then lets the connection go at once, with the
    bytes it held for it, rather than keeping them until the client reads."""
    hostile = WsHostile(strict.address, receive_buffer=4096)
    welcome = hostile.handshake((1,))
    link = next(link for link in strict.server.links if link.peer == hostile.zone)
    service = Counting.made.pop()
    Counting.made.clear()
    target = (hostile.zone, welcome.zone, welcome.object, welcome.interface)
    for seq in range(4):
        payload = msgspec.Raw(msgspec.msgpack.encode(["x" * 60_000, seq]))
        hostile.send(frame_of(msgspec.msgpack.encode(Post(*target, RECORD, 1, payload))))
    nothing = msgspec.Raw(msgspec.msgpack.encode([]))

    def answered(calls: int) -> bool:
        """The server answered ``calls`` calls and writes the last reply (or is stuck in a
        write): the client's next call then comes alone, and replies pile up only behind
        a write the client does not take."""
        writing = link._sending or not link.protocol.buffered
        return link.closed or (service.answered == calls and bool(writing))

    with caplog.at_level(logging.WARNING, logger="canopy"):
        for call_id in range(1, 201):  # 48 MB of replies, were they all made
            call = Call(call_id, *target, RECORDED, 1, nothing)
            if link.closed or not hostile.send(frame_of(msgspec.msgpack.encode(call))):
                break
            until(functools.partial(answered, call_id), 0.5)
        assert until(lambda: link not in strict.server.links), "the client was never dropped"
    found = re.search(
        r"(\d+) bytes wait to be written to zone \w+, which does not read them as fast "
        rf"as it asks for them \(max_pending_write_bytes={LIMIT}\)",
        caplog.text,
    )
    assert found is not None, caplog.text
    assert LIMIT < int(found[1]) <= LIMIT + 240_100, found[0]  # one reply past it at most
    let_go = until(lambda: not server_holds(strict.address, hostile.sock), 1)
    assert let_go, "the server keeps the connection, and what it would write, for the client"
    hostile.sock.close()
    strict.healthy()
