"""The protocol core with no I/O: two endpoints wired back to back, bytes in, events out."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canopy.errors import ErrorCode
from canopy.wire import (
    NO_PAYLOAD,
    AddRef,
    Call,
    Cancel,
    Encoding,
    GetSchema,
    HandshakeComplete,
    Hello,
    Limits,
    LinkClosed,
    Message,
    MessageReceived,
    NewZoneId,
    ObjectReleased,
    Ping,
    Pong,
    Post,
    Protocol,
    ProtocolViolation,
    Release,
    Reply,
    Role,
    State,
    TransportDown,
    TryCast,
    Welcome,
)

U64 = st.integers(0, 2**64 - 1)


def pair(
    client_encodings: tuple[Encoding, ...] = (Encoding.BINARY,),
    server_encodings: tuple[Encoding, ...] = (Encoding.BINARY,),
    limits: Limits | None = None,
) -> tuple[Protocol, Protocol]:
    client = Protocol(Role.CONNECTING, zone=1, encodings=client_encodings, root_object=5)
    server = Protocol(Role.ACCEPTING, zone=2, encodings=server_encodings, limits=limits or Limits())
    return client, server


def pump(a: Protocol, b: Protocol) -> None:
    """Move bytes both ways until neither side has anything to say."""
    for _ in range(10):
        ab, ba = a.data_to_send(), b.data_to_send()
        if not ab and not ba:
            return
        if ab:
            b.receive_data(ab)
        if ba:
            a.receive_data(ba)
    raise AssertionError("the endpoints kept talking")


def frame(message: Message) -> bytes:
    body = msgspec.msgpack.encode(message)
    return len(body).to_bytes(4, "little") + body


def test_handshake_agrees_version_and_encoding() -> None:
    client, server = pair((Encoding.JSON, Encoding.BINARY), (Encoding.BINARY, Encoding.JSON))
    pump(client, server)
    assert client.events() == [HandshakeComplete(1, Encoding.BINARY, 2, 0, 0)]
    assert server.events() == [HandshakeComplete(1, Encoding.BINARY, 1, 5, 0)]
    assert client.state is server.state is State.OPEN


def test_each_side_learns_every_encoding_the_other_accepts() -> None:
    client, server = pair((Encoding.JSON, Encoding.BINARY), ("protobuf", 1))  # type: ignore[arg-type]
    pump(client, server)
    assert server.encodings == (Encoding.PROTOBUF, Encoding.BINARY)  # names and numbers too
    assert client.encoding is server.encoding is Encoding.BINARY
    assert server.peer_encodings == {Encoding.JSON, Encoding.BINARY}
    assert client.peer_encodings == {Encoding.PROTOBUF, Encoding.BINARY}


def test_unknown_encodings_in_a_welcome_are_dropped_and_the_list_may_be_absent() -> None:
    client, _ = pair((Encoding.JSON, Encoding.BINARY))
    client.data_to_send()
    client.receive_data(frame(Welcome(1, int(Encoding.JSON), 2, accepts=(99, 2))))
    assert client.state is State.OPEN
    assert client.peer_encodings == {Encoding.JSON, Encoding.BINARY_ZSTD}  # 99: unknown
    client2, _ = pair((Encoding.JSON,))
    client2.data_to_send()
    client2.receive_data(frame(Welcome(1, int(Encoding.JSON), 2)))
    assert client2.peer_encodings == {Encoding.JSON}


def test_no_common_encoding_is_refused_with_a_clear_error_on_both_sides() -> None:
    client, server = pair((Encoding.JSON,), (Encoding.BINARY,))
    pump(client, server)
    [refused, closed] = server.events()
    assert isinstance(refused, ProtocolViolation) and refused.fatal
    assert refused.code is ErrorCode.INCOMPATIBLE_SERIALISATION
    assert refused.reason == "no encoding in common: peer offers [8], this side accepts binary"
    [seen, client_closed] = client.events()
    assert isinstance(seen, ProtocolViolation)
    assert seen.code is ErrorCode.INCOMPATIBLE_SERIALISATION
    assert seen.reason == "the peer refused the link: " + refused.reason
    assert closed == LinkClosed(False, refused.reason)
    assert client_closed == LinkClosed(False, seen.reason)


def test_no_common_version_is_refused() -> None:
    server = Protocol(Role.ACCEPTING, zone=2)
    server.receive_data(frame(Hello((99,), (1,), 1)))
    [refused, _] = server.events()
    assert isinstance(refused, ProtocolViolation)
    assert refused.code is ErrorCode.INVALID_VERSION
    assert "no protocol version in common: peer offers [99]" in refused.reason


def test_nothing_but_hello_opens_a_link() -> None:
    server = Protocol(Role.ACCEPTING, zone=2)
    server.receive_data(frame(Ping(1)))
    [violation, closed] = server.events()
    assert violation == ProtocolViolation(
        ErrorCode.PROTOCOL_ERROR, "expected Hello to open the link, got Ping", True
    )
    assert closed == LinkClosed(False, "expected Hello to open the link, got Ping")
    assert server.state is State.CLOSED


def test_sending_before_the_handshake_is_a_programming_error() -> None:
    client, _ = pair()
    with pytest.raises(RuntimeError, match="handshake has not completed"):
        client.send(Ping(1))


def open_pair(limits: Limits | None = None) -> tuple[Protocol, Protocol]:
    client, server = pair(limits=limits)
    pump(client, server)
    client.events(), server.events()
    return client, server


MESSAGES: list[Message] = [
    Call(1, 2, 3, 4, 2**64 - 1, 7, 1, msgspec.Raw(msgspec.msgpack.encode([1, 2])), tag=9),
    Post(2, 3, 4, 5, 6, 8, msgspec.Raw(msgspec.msgpack.encode(["token"]))),
    Reply(1, 0, msgspec.Raw(msgspec.msgpack.encode([3]))),
    Reply(1, int(ErrorCode.EXCEPTION), NO_PAYLOAD, "ValueError: no"),
    TryCast(3, 1, 2, 3, 4),
    AddRef(4, 1, 2, 3, 0, 1),
    Release(1, 2, 3, 1),
    ObjectReleased(2, 3, 1),
    TransportDown((7, 8)),
    GetSchema(5, 1, 2, 3, True),
    NewZoneId(6),
    Cancel(1),
    Pong(42),
]


def same(a: Message, b: Message) -> bool:
    return msgspec.msgpack.encode(a) == msgspec.msgpack.encode(b)


def test_every_message_type_crosses_the_link() -> None:
    client, server = open_pair()
    for m in MESSAGES:
        client.send(m)
    server.receive_data(client.data_to_send())
    received = [e.message for e in server.events() if isinstance(e, MessageReceived)]
    assert len(received) == len(MESSAGES)
    assert all(same(a, b) for a, b in zip(received, MESSAGES, strict=True))


def test_a_ping_is_answered_by_the_protocol_itself() -> None:
    client, server = open_pair()
    client.send(Ping(42))
    server.receive_data(client.data_to_send())
    assert server.events() == []  # liveness is the protocol's business, not the runtime's
    assert server.wants_write
    client.receive_data(server.data_to_send())
    assert client.events() == [MessageReceived(Pong(42))]
    assert not server.wants_write


@settings(max_examples=50, deadline=None)
@given(
    calls=st.lists(st.tuples(U64, U64, U64, st.binary(max_size=300)), min_size=1, max_size=20),
    cuts=st.lists(st.integers(1, 64), min_size=1, max_size=50),
)
def test_frames_survive_any_split_of_the_stream(
    calls: list[tuple[int, int, int, bytes]], cuts: list[int]
) -> None:
    client, server = open_pair()
    sent = [
        Call(i, z, o, 1, 2, 3, 1, msgspec.Raw(msgspec.msgpack.encode(data)))
        for i, z, o, data in calls
    ]
    client.send_many(sent)
    data = client.data_to_send()
    pos = 0
    for cut in cuts * (len(data) // sum(cuts) + 1):
        if pos >= len(data):
            break
        server.receive_data(data[pos : pos + cut])
        pos += cut
    server.receive_data(data[pos:])
    received = [e.message for e in server.events() if isinstance(e, MessageReceived)]
    assert [msgspec.msgpack.encode(m) for m in received] == [
        msgspec.msgpack.encode(m) for m in sent
    ]


def test_writes_are_coalesced_into_one_buffer() -> None:
    client, _ = open_pair()
    for _ in range(100):
        client.send(Post(1, 2, 3, 4, 5, 1, NO_PAYLOAD))
    data = client.data_to_send()
    assert len(data) == 100 * len(frame(Post(1, 2, 3, 4, 5, 1, NO_PAYLOAD)))
    assert client.data_to_send() == b""


def test_buffered_counts_what_no_driver_has_taken_yet() -> None:
    client, _ = open_pair()
    assert client.buffered == 0
    client.send(Post(1, 2, 3, 4, 5, 1, NO_PAYLOAD))
    assert client.buffered == len(frame(Post(1, 2, 3, 4, 5, 1, NO_PAYLOAD)))
    client.data_to_send()
    assert client.buffered == 0


@pytest.mark.parametrize("opened", [False, True])
def test_a_driver_may_refuse_the_peer_with_a_reason(opened: bool) -> None:
    """What the driver saw (a deadline passed, a limit crossed) closes the link as a fatal
    violation would: the peer is told in a Refuse, before or after the handshake."""
    if opened:
        client, server = open_pair()
    else:
        client, server = pair()
        server.receive_data(client.data_to_send()[:3])  # half a Hello
    server.refuse(ErrorCode.CALL_TIMEOUT, "too slow")
    [violation, closed] = server.events()
    assert violation == ProtocolViolation(ErrorCode.CALL_TIMEOUT, "too slow", True)
    assert isinstance(closed, LinkClosed) and not closed.clean
    assert server.state is State.CLOSED
    client.receive_data(server.data_to_send())
    what = "the peer closed the link" if opened else "the peer refused the link"
    told = ProtocolViolation(ErrorCode.CALL_TIMEOUT, f"{what}: too slow", True)
    assert told in client.events()
    server.refuse(ErrorCode.CALL_TIMEOUT, "again")  # once closed, nothing more
    assert server.events() == [] and server.data_to_send() == b""


def test_a_frame_over_the_limit_closes_the_link() -> None:
    _, server = open_pair(Limits(max_frame_size=64))
    server.receive_data((1000).to_bytes(4, "little"))
    [violation, closed] = server.events()
    assert violation == ProtocolViolation(
        ErrorCode.LIMIT_EXCEEDED, "frame of 1000 bytes exceeds max_frame_size 64", True
    )
    assert isinstance(closed, LinkClosed) and not closed.clean
    server.receive_data(b"more")
    assert server.events() == []


def test_sending_over_the_limit_is_refused_locally() -> None:
    client = Protocol(Role.CONNECTING, zone=1, limits=Limits(max_frame_size=32))
    client.data_to_send()
    client.receive_data(frame(Welcome(1, 1, 2)))
    with pytest.raises(ValueError, match="exceeds max_frame_size 32"):
        client.send(Post(1, 2, 3, 4, 5, 1, msgspec.Raw(msgspec.msgpack.encode("x" * 100))))
    assert client.data_to_send() == b""


def test_a_malformed_frame_is_reported_and_skipped() -> None:
    _, server = open_pair()
    server.receive_data(frame_bytes(b"\x93\x04\x01"))  # a Call with too few fields
    server.receive_data(frame(Cancel(7)))
    [violation, received] = server.events()
    assert isinstance(violation, ProtocolViolation) and not violation.fatal
    assert violation.code is ErrorCode.PROTOCOL_ERROR
    assert violation.reason.startswith("malformed frame: Expected `array` of at least length")
    assert received == MessageReceived(Cancel(7))
    assert server.state is State.OPEN


def frame_bytes(body: bytes) -> bytes:
    return len(body).to_bytes(4, "little") + body


DEEP = msgspec.Raw(b"\x91" * 100_000 + b"\x01")  # beyond msgspec's recursion limit


@pytest.mark.parametrize(
    ("message", "answered"),
    [
        (Call(7, 1, 2, 3, 4, 5, 1, DEEP), 7),
        (Call(2**40, 1, 2, 3, 4, 5, 1, DEEP), 2**40),
        (Post(1, 2, 3, 4, 5, 1, DEEP), None),  # nobody waits for a post
    ],
    ids=["call", "large-id", "post"],
)
def test_a_request_whose_frame_does_not_decode_is_answered(
    message: Message, answered: int | None
) -> None:
    _, server = open_pair()
    server.receive_data(frame(message))
    [violation] = server.events()
    assert isinstance(violation, ProtocolViolation) and not violation.fatal
    sent = server.data_to_send()
    if answered is None:
        assert sent == b""
        return
    reply = msgspec.msgpack.decode(sent[4:], type=Message)
    assert isinstance(reply, Reply) and reply.id == answered
    assert reply.code == ErrorCode.PROTOCOL_ERROR
    assert "could not decode this request's frame: maximum recursion depth" in reply.message


@pytest.mark.parametrize("body", [b"\x93\x04", b"\x93\x04\xc1", b"\xc1", b"\x93\xd0\x04\x07"])
def test_a_frame_without_an_intact_head_gets_no_answer(body: bytes) -> None:
    _, server = open_pair()
    server.receive_data(frame_bytes(body))
    assert len(server.events()) == 1
    assert server.data_to_send() == b""


def test_too_many_malformed_frames_in_a_row_close_the_link() -> None:
    _, server = open_pair(Limits(max_decode_errors=3))
    server.receive_data(frame_bytes(b"\xc1") * 3)
    events = server.events()
    assert [type(e) for e in events] == [
        ProtocolViolation,
        ProtocolViolation,
        ProtocolViolation,
        LinkClosed,
    ]
    assert isinstance(events[2], ProtocolViolation) and events[2].fatal


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_never_raises(data: bytes) -> None:
    for role in Role:
        endpoint = Protocol(role, zone=1)
        endpoint.receive_data(data)
        endpoint.events()
        endpoint.receive_data(b"")
        assert endpoint.state in (State.HANDSHAKE, State.OPEN, State.CLOSED)


def test_a_second_hello_is_fatal() -> None:
    _, server = open_pair()
    server.receive_data(frame(Hello((1,), (1,), 9)))
    [violation, _] = server.events()
    assert violation == ProtocolViolation(
        ErrorCode.PROTOCOL_ERROR, "Hello after the handshake", True
    )


def test_clean_close_is_not_a_failure_on_either_side() -> None:
    client, server = open_pair()
    client.send(Cancel(1))
    client.close()
    with pytest.raises(RuntimeError, match="closing"):
        client.send(Cancel(2))
    pump(client, server)
    assert server.events() == [MessageReceived(Cancel(1)), LinkClosed(True)]
    assert client.events() == [LinkClosed(True)]
    assert client.state is server.state is State.CLOSED


def test_end_of_stream_without_goodbye_is_a_failure() -> None:
    _, server = open_pair()
    server.receive_data(b"")
    assert server.events() == [LinkClosed(False, "the peer closed the stream")]
