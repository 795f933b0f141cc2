"""Random and mutated frames fed to the sans-I/O protocol in both roles, before and after
the handshake: valid frames with bytes flipped, cut short, with lying or huge length
prefixes, deeply nested, every message tag with fields of the wrong types. The checks
are fuzz/targets.py's (the atheris harness runs the same ones for millions of inputs);
here hypothesis draws structured inputs in bounded numbers, and the documented
outcomes are pinned one by one."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canopy.errors import ErrorCode
from canopy.wire import (
    Limits,
    LinkClosed,
    MessageReceived,
    Ping,
    Pong,
    Protocol,
    ProtocolViolation,
    Refuse,
    Reply,
    Role,
    State,
)
from frame_strategies import HEADER, frame_of, streams, targets, wrong_fields

BOUNDED = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---------------------------------------------------------------- the harness's invariants


@BOUNDED
@given(mode=st.integers(0, 31), step=st.integers(0, 31), data=streams())
def test_any_stream_in_any_mode_keeps_the_protocol_invariants(
    mode: int, step: int, data: bytes
) -> None:
    targets.wire(bytes([mode, step]) + data)


@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_the_fuzz_targets_pass_their_seeds(target: str) -> None:
    found = targets.seeds(target)
    assert found
    for seed in found[:: max(1, len(found) // 60)]:
        targets.TARGETS[target](seed)


def test_the_wire_target_catches_a_broken_invariant(monkeypatch: pytest.MonkeyPatch) -> None:
    # A protocol that forgot to close after a fatal error would pass "no exception".
    monkeypatch.setattr(Protocol, "_finish", lambda self, clean, reason="": None)
    with pytest.raises(AssertionError):
        targets.wire(bytes([1 | 2, 0]) + b"\xff\xff\xff\x7f")


# ---------------------------------------------------------------- documented outcomes


def opened(role: Role = Role.ACCEPTING, **limits: int) -> Protocol:
    return targets.opened(role, Limits(**limits), targets.ENCODINGS)  # type: ignore[no-any-return]


def replies(p: Protocol) -> list[Any]:
    return [
        msgspec.msgpack.decode(body, type=targets.Message)
        for body in targets.frames_of(p.data_to_send())
    ]


@BOUNDED
@given(body=wrong_fields())
def test_a_delimited_frame_that_does_not_fit_is_skipped_and_the_link_lives(body: bytes) -> None:
    p = opened()
    p.receive_data(frame_of(body))
    events = p.events()
    try:
        message = msgspec.msgpack.decode(body, type=targets.Message)
    except msgspec.DecodeError:
        assert [type(e) for e in events] == [ProtocolViolation]
        assert events[0].code == ErrorCode.PROTOCOL_ERROR and not events[0].fatal
        assert p.state is State.OPEN
    else:  # by chance a valid message
        assert message is not None
        assert p.state in (State.OPEN, State.CLOSED)
    p.data_to_send()
    if p.state is State.OPEN:
        p.receive_data(frame_of(msgspec.msgpack.encode(Ping(77))))
        assert Pong(77) in replies(p)


def test_a_request_that_does_not_decode_is_answered_with_protocol_error() -> None:
    p = opened()
    p.receive_data(frame_of(msgspec.msgpack.encode([4, 4242, "caller", None])))  # a Call head
    [violation] = p.events()
    assert isinstance(violation, ProtocolViolation) and not violation.fatal
    [reply] = replies(p)
    assert isinstance(reply, Reply) and reply.id == 4242
    assert reply.code == ErrorCode.PROTOCOL_ERROR
    assert reply.message.startswith("the peer could not decode this request's frame: ")


def test_bad_frames_in_a_row_close_the_link_and_a_good_one_resets_the_count() -> None:
    p = opened(max_decode_errors=3)
    bad = frame_of(b"\xc1")
    p.receive_data(bad + bad + frame_of(msgspec.msgpack.encode(Ping(1))) + bad + bad)
    assert p.state is State.OPEN
    p.receive_data(bad)
    events = p.events()
    assert isinstance(events[-2], ProtocolViolation) and events[-2].fatal
    assert isinstance(events[-1], LinkClosed) and not events[-1].clean
    assert p.state is State.CLOSED
    pong, refuse = replies(p)  # the Ping between was answered
    assert pong == Pong(1)
    assert isinstance(refuse, Refuse) and refuse.code == ErrorCode.PROTOCOL_ERROR
    assert refuse.message.startswith("malformed frame: ")


def test_a_refuse_closes_the_link_with_the_peers_reason_and_is_not_answered() -> None:
    p = opened()
    p.receive_data(frame_of(msgspec.msgpack.encode(Refuse(int(ErrorCode.LIMIT_EXCEEDED), "bye"))))
    [violation, closed] = p.events()
    assert violation == ProtocolViolation(
        ErrorCode.LIMIT_EXCEEDED, "the peer closed the link: bye", True
    )
    assert isinstance(closed, LinkClosed) and p.data_to_send() == b""
    # Two Canopy ends: the one that found the fault tells, the other learns why.
    server = opened()
    server.receive_data(b"\xff\xff\xff\x7f")
    client = opened(Role.CONNECTING)
    client.receive_data(server.data_to_send())
    [violation, _] = client.events()
    assert violation.code == ErrorCode.LIMIT_EXCEEDED
    assert violation.reason.startswith("the peer closed the link: frame of 2147483647 bytes")
    assert client.data_to_send() == b""


@pytest.mark.parametrize("size", [4097, 1 << 24, (1 << 32) - 1])
@pytest.mark.parametrize("handshaken", [False, True])
def test_a_huge_length_prefix_closes_the_link_before_anything_is_buffered(
    size: int, handshaken: bool
) -> None:
    limits = Limits(max_frame_size=4096)
    p = targets.opened(Role.ACCEPTING, limits, targets.ENCODINGS) if handshaken else None
    if p is None:
        p = Protocol(Role.ACCEPTING, 1, limits=limits)
    p.receive_data(size.to_bytes(HEADER, "little") + b"\x00" * 100)
    events = p.events()
    assert isinstance(events[0], ProtocolViolation)
    assert events[0].code == ErrorCode.LIMIT_EXCEEDED and events[0].fatal
    assert f"frame of {size} bytes exceeds max_frame_size 4096" in events[0].reason
    assert p.state is State.CLOSED and not p._in
    # The peer is told why, in the last frame before the stream ends.
    assert replies(p) == [Refuse(int(ErrorCode.LIMIT_EXCEEDED), events[0].reason)]
    p.receive_data(b"more")  # ignored once closed
    assert p.events() == []


def test_a_length_prefix_that_lies_short_or_long_costs_only_its_frame() -> None:
    p = opened()
    body = msgspec.msgpack.encode(Ping(5))
    # Said two bytes fewer: the frame is cut (skipped), and its tail reads as a header.
    p.receive_data((len(body) - 2).to_bytes(HEADER, "little") + body)
    assert isinstance(p.events()[0], ProtocolViolation)
    # Said more than was sent: the protocol waits for the rest, holding only that frame.
    p = opened()
    p.receive_data((len(body) + 1000).to_bytes(HEADER, "little") + body)
    assert p.events() == [] and p.pending == 1000 and p.state is State.OPEN
    p.receive_data(b"")
    assert isinstance(p.events()[-1], LinkClosed)


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_deep_nesting_is_a_bad_frame_not_a_crash(depth: int) -> None:
    p = opened()
    p.receive_data(frame_of(b"\x91" * depth + b"\xc0"))
    [violation] = p.events()
    assert isinstance(violation, ProtocolViolation) and not violation.fatal
    # Deep inside a Call's payload: refused too (msgspec skips a payload by walking it),
    # and the caller is answered at once since the frame's head is intact.
    call = msgspec.msgpack.encode([4, 31, 5, 6, 1, 7, 2, 1, None])
    p.receive_data(frame_of(call[:-1] + b"\x91" * depth + b"\xc0"))
    [violation] = p.events()
    assert isinstance(violation, ProtocolViolation) and not violation.fatal
    [reply] = replies(p)
    assert reply.id == 31 and reply.code == ErrorCode.PROTOCOL_ERROR
    # Nested within reason, the payload stays raw for the runtime to hold to max_depth.
    p.receive_data(frame_of(call[:-1] + b"\x91" * 100 + b"\xc0"))
    [received] = p.events()
    assert isinstance(received, MessageReceived)
    assert p.state is State.OPEN


@pytest.mark.parametrize("role", list(Role))
@BOUNDED
@given(body=wrong_fields())
def test_before_the_handshake_anything_but_the_opening_message_closes_the_link(
    role: Role, body: bytes
) -> None:
    p = Protocol(role, 1)
    p.data_to_send()
    p.receive_data(frame_of(body))
    events = p.events()
    assert not any(isinstance(e, MessageReceived) for e in events)
    if p.state is not State.OPEN:
        assert p.state is State.CLOSED
        assert isinstance(events[-1], LinkClosed) and not events[-1].clean
