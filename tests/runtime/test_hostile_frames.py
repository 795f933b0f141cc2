"""Hostile bytes from a raw socket to a live server, blocking and asyncio, over TCP and
WebSocket on 127.0.0.1: random and mutated frames before and after a handshake.
Whatever arrives, the offending connection is either refused frame by frame
(PROTOCOL_ERROR, the link stays up) or told why in a Refuse and closed; the server
answers only in valid frames and never hangs; an honest client calling before, during
and after sees nothing of it; and once the hostile connection is gone, the server's
tables are as they were. Over WebSocket the hostile client carries the Canopy stream
in binary messages it frames itself, cut anywhere; test_hostile_websocket.py abuses
the WebSocket layer itself."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canopy.errors import ErrorCode
from canopy.wire import Call, Hello, Message, Ping, Pong, Post, Refuse, Reply, Welcome
from frame_strategies import frame_of, streams, targets
from hostile import Live, WsHostile, until

LIVE = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
# Over WebSocket the same checks on fewer examples: the layer only carries the bytes.
LIVE_WS = settings(LIVE, max_examples=6)
TCP = [("blocking", "tcp"), ("asyncio", "tcp")]
WS = [("blocking", "ws"), ("asyncio", "ws")]


@pytest.fixture(scope="module", params=TCP, ids="-".join)
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    """A live server: over TCP, unless a test names others (``over``)."""
    server = Live(*request.param)
    yield server
    server.close()


def over(*kinds: list[tuple[str, str]]) -> pytest.MarkDecorator:
    servers = [server for kind in kinds for server in kind]
    return pytest.mark.parametrize("live", servers, indirect=True, ids="-".join)


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
    hostile = live.hostile()
    hostile.send(data)
    messages = hostile.finish()
    # Nothing passes before a Hello: until its Welcome the server says at most Refuse.
    # The bytes may by chance hold a valid Hello; what follows it is answered as usual.
    names = [type(m).__name__ for m in messages]
    welcomed = names.index("Welcome") if "Welcome" in names else len(names)
    assert all(name in ("Refuse", "Pong", "CloseAck") for name in names[:welcomed])
    check_answers(messages[welcomed + 1 :])
    live.healthy()


@LIVE
@given(data=st.data())
def test_mutated_frames_after_the_handshake(live: Live, data: st.DataObject) -> None:
    hostile = live.hostile()
    welcome = hostile.handshake()
    assert welcome.zone == live.service.id
    hostile.send(data.draw(streams(honest_messages(hostile.zone, welcome))))
    check_answers(hostile.finish())
    live.healthy()


@over(WS)
@LIVE_WS
@given(data=st.data())
def test_mutated_frames_in_websocket_messages_cut_anywhere(live: Live, data: st.DataObject) -> None:
    hostile = live.hostile()
    assert isinstance(hostile, WsHostile)
    welcome = hostile.handshake(data.draw(st.sampled_from([(1,), (8,)]), label="encodings"))
    stream = data.draw(streams(honest_messages(hostile.zone, welcome)))
    hostile.send(stream, cuts=data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    check_answers(hostile.finish())
    assert hostile.close_code in (None, 1000)  # the WebSocket layer had nothing to refuse
    live.healthy()


@over(TCP, WS)
@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "byte-by-byte"])
def test_a_bad_frame_is_refused_and_the_link_stays_up(live: Live, chunked: bool) -> None:
    hostile = live.hostile()
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
    assert until(lambda: any(isinstance(m, Reply) and m.id == 8 for m in hostile.read()))
    messages = hostile.finish()
    refusal = next(m for m in messages if isinstance(m, Reply) and m.id == 77)
    assert refusal.code == ErrorCode.PROTOCOL_ERROR
    assert Pong(5) in messages
    answer = next(m for m in messages if isinstance(m, Reply) and m.id == 8)
    assert answer.code == 0 and msgspec.msgpack.decode(answer.payload) == [42]
    live.healthy()


@pytest.mark.parametrize(
    "stream",
    [
        b"\xff\xff\xff\x7f",  # a frame bigger than max_frame_size
        frame_of(b"\xc1") * 8,  # max_decode_errors bad frames in a row
        frame_of(msgspec.msgpack.encode(Hello((1,), (1,), 5))),  # a second handshake
    ],
    ids=["huge-length", "bad-frames-in-a-row", "hello-again"],
)
@over(TCP, WS)
def test_a_fatal_violation_closes_only_that_connection(live: Live, stream: bytes) -> None:
    others = [live.hostile() for _ in range(2)]
    for other in others:
        other.handshake()
    hostile = live.hostile()
    hostile.handshake()
    hostile.send(stream)
    start = time.monotonic()
    hostile.until_closed()  # closed by the server, not by this side
    assert time.monotonic() - start < 2
    hostile.sock.close()
    # Told why in the last frame: the code and what was wrong.
    refuse = hostile.messages()[-1]
    assert isinstance(refuse, Refuse), hostile.messages()
    assert refuse.code in (ErrorCode.LIMIT_EXCEEDED, ErrorCode.PROTOCOL_ERROR)
    assert re.search(r"exceeds max_frame_size|malformed frame|Hello after", refuse.message)
    for other in others:  # other raw connections still answer
        other.send(frame_of(msgspec.msgpack.encode(Ping(11))))
        assert until(lambda o=other: Pong(11) in o.read())  # type: ignore[misc]
        other.finish()
    live.healthy()


@over(TCP, WS)
def test_a_connection_that_stops_mid_frame_is_dropped_at_end_of_stream(live: Live) -> None:
    hostile = live.hostile()
    hostile.handshake()
    hostile.send((1 << 20).to_bytes(4, "little") + b"\x94" * 1000)  # a large frame begun
    assert until(lambda: len(live.server.links) == 2)
    hostile.finish()
    live.healthy()
