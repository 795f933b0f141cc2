"""The fuzz targets: each takes one input's bytes and raises only when it finds a bug.

They need no fuzzer: ``fuzz/run.py`` drives them under atheris, and the normal suite
runs them over their seeds and over hypothesis' mutated frames
(tests/wire/test_fuzz_frames.py), so the harness cannot rot unnoticed. Each target
checks more than "no exception": the wire target checks the protocol's invariants
(events in order, buffers within the limits, every byte it answers with a valid
frame), the codec target that whatever decodes encodes again, the IDL target that
every error carries a location.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

import canopy
from canopy.errors import InvalidData
from canopy.idl import IdlError, compile_text
from canopy.wire import (
    ENCODINGS,
    AddRef,
    Call,
    Cancel,
    Close,
    CloseAck,
    Encoding,
    Event,
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
    Refuse,
    Release,
    Reply,
    Role,
    State,
    TransportDown,
    TryCast,
    Welcome,
    codec,
)

ROOT = Path(__file__).resolve().parent.parent
ZONE, PEER = 0x5E1F, 0x9EE2
SMALL = Limits(max_frame_size=4096, max_decode_errors=3)
LIMITS = (SMALL, Limits())
HEADER = 4
_decode_message = msgspec.msgpack.Decoder(Message).decode
_encode = msgspec.msgpack.encode


# ---------------------------------------------------------------- the wire protocol

_RAW = msgspec.Raw(_encode([1, 2]))
MESSAGES: tuple[Message, ...] = (
    Hello((1,), (1, 2, 8, 16), PEER, 1, 2),
    Welcome(1, 1, PEER, 1, 2, (1, 8)),
    Refuse(7, "no"),
    Call(1, PEER, ZONE, 1, 7, 2, 1, _RAW, 0, 100, ((PEER, 3, 0),)),
    Post(PEER, ZONE, 1, 7, 3, 1, _RAW),
    Reply(1, 0, _RAW, "", ((PEER, 3, 1),)),
    TryCast(2, PEER, ZONE, 1, 9),
    AddRef(3, PEER, ZONE, 1, 0, PEER),
    Release(PEER, ZONE, 1, 0),
    ObjectReleased(ZONE, 1, PEER),
    TransportDown((PEER, 6)),
    GetSchema(4, PEER, ZONE, 1, True),
    NewZoneId(5),
    Close(),
    CloseAck(),
    Cancel(1),
    Ping(9),
    Pong(9),
)
"""One message of every type, as an honest peer would send it."""


def frame(message: Message) -> bytes:
    body = _encode(message)
    return len(body).to_bytes(HEADER, "little") + body


def frames_of(data: bytes) -> Iterator[bytes]:
    """The frames in ``data``, which must hold whole frames only."""
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= HEADER, f"a cut header in the protocol's output: {data!r}"
        size = int.from_bytes(data[pos : pos + HEADER], "little")
        pos += HEADER
        assert len(data) - pos >= size, f"a cut frame in the protocol's output: {data!r}"
        yield data[pos : pos + size]
        pos += size


def opened(role: Role, limits: Limits, encodings: tuple[Encoding, ...]) -> Protocol:
    """A protocol endpoint whose handshake with an honest peer has completed."""
    p = Protocol(role, ZONE, encodings, limits, root_object=1, root_interface=7)
    p.data_to_send()
    if role is Role.ACCEPTING:
        p.receive_data(frame(Hello((1,), tuple(int(e) for e in ENCODINGS), PEER, 3, 9)))
    else:
        p.receive_data(frame(Welcome(1, int(encodings[0]), PEER, 3, 9, (1, 8))))
    events = p.events()
    assert isinstance(events[0], HandshakeComplete), events
    assert p.state is State.OPEN
    p.data_to_send()
    return p


class _Watcher:
    """Checks the events and output of one endpoint against the protocol's invariants."""

    def __init__(self, p: Protocol, handshaken: bool) -> None:
        self.p = p
        self.handshaken = handshaken
        self.closed = False
        self.fed = 0

    def feed(self, data: bytes) -> None:
        p = self.p
        p.receive_data(data)
        self.fed += len(data)
        self.check(p.events())
        # The receive buffer never holds more than one frame the limit allows.
        assert len(p._in) <= HEADER + p.limits.max_frame_size, len(p._in)
        self.drain()

    def drain(self) -> None:
        out = self.p.data_to_send()
        answers = 0
        for body in frames_of(out):
            assert len(body) <= self.p.limits.max_frame_size
            _decode_message(body)  # whatever this side says is a valid message
            answers += 1
        # At most one answer (a Welcome, Refuse, Pong, CloseAck or refusal) a frame in.
        assert answers <= self.fed // HEADER + 1, (answers, self.fed)

    def check(self, events: list[Event]) -> None:
        for event in events:
            assert not self.closed, f"{event!r} after the link closed"
            if isinstance(event, HandshakeComplete):
                assert not self.handshaken, "a second handshake"
                self.handshaken = True
            elif isinstance(event, MessageReceived):
                assert self.handshaken, f"{event.message!r} before the handshake"
                message = event.message
                assert not isinstance(message, Hello | Welcome), message
                # What was decoded encodes back to itself: nothing was half-read.
                assert _decode_message(_encode(message)) == message
                if isinstance(message, Call | Post):
                    bytes(message.payload)
            elif isinstance(event, ProtocolViolation):
                assert event.reason
                if event.fatal:
                    assert self.p.state is State.CLOSED
            elif isinstance(event, LinkClosed):
                self.closed = True
                assert self.p.state is State.CLOSED
            else:
                raise AssertionError(f"not an event: {event!r}")


def chunks(data: bytes, step: int) -> Iterator[bytes]:
    """``data`` cut every ``step`` bytes (in 16 pieces at most, to keep each input
    quick), or whole when ``step`` is 0."""
    if step == 0:
        yield data
        return
    step = max(step, len(data) // 16)
    for i in range(0, len(data), step):
        yield data[i : i + step]


def wire(data: bytes) -> None:
    """One input: a mode byte, a chunk-size byte, then the bytes a peer sends.

    Mode bits: 1 the accepting role (else connecting), 2 after a completed
    handshake, 4 the default limits (else small ones), 8 end of stream at the
    end, 16 this side accepts JSON only (so encodings can fail to match).
    """
    if len(data) < 2:
        return
    mode, step, body = data[0], data[1] % 32, data[2:]
    role = Role.ACCEPTING if mode & 1 else Role.CONNECTING
    limits = LIMITS[bool(mode & 4)]
    encodings = (Encoding.JSON,) if mode & 16 else ENCODINGS
    handshaken = bool(mode & 2)
    if handshaken:
        p = opened(role, limits, encodings)
    else:
        p = Protocol(role, ZONE, encodings, limits)
        p.data_to_send()
    watcher = _Watcher(p, handshaken)
    for piece in chunks(body, step):
        watcher.feed(piece)
    if p.state is State.OPEN:
        p.send(Ping(1))  # the link still sends
        watcher.drain()
    if mode & 8:
        p.receive_data(b"")
        watcher.check(p.events())
        assert p.state is State.CLOSED and watcher.closed


# ---------------------------------------------------------------- the payload codecs

_matrix: Any = None
CODEC_ENCODINGS = ("binary", "binary_zstd", "json", "protobuf")


def matrix_types() -> list[Any]:
    """Every struct and method record of tests/type_matrix.idl, and some bare types."""
    global _matrix
    if _matrix is None:
        _matrix = canopy.load_idl(ROOT / "tests" / "type_matrix.idl").matrix
    from canopy.generated import float32, int8, int128, uint8, uint64, uint128

    found: list[Any] = []
    for name in sorted(vars(_matrix)):
        item = getattr(_matrix, name)
        if isinstance(item, type) and issubclass(item, msgspec.Struct):
            try:
                codec("binary").decoder(item)
            except TypeError:  # a generic struct not bound to its parameters
                continue
            found.append(item)
    bare = [uint8, int8, uint64, int128, uint128, float32, list[int], dict[str, float]]
    return [*found, *bare, str | None, set[str]]


_types: list[Any] = []


def codecs(data: bytes) -> None:
    """One input: an encoding byte, a type byte, then the payload.

    A payload decodes or raises ``InvalidData``; what decodes encodes again, and
    that decodes too (a decoder must not accept what its encoder cannot write)."""
    if len(data) < 2:
        return
    if not _types:
        _types.extend(matrix_types())
    c = codec(CODEC_ENCODINGS[data[0] % len(CODEC_ENCODINGS)])
    type_ = _types[data[1] % len(_types)]
    try:
        value = c.decoder(type_)(data[2:])
    except InvalidData:
        return
    c.decoder(type_)(c.encoder(type_)(value))


# ---------------------------------------------------------------- the IDL compiler

_idl_dir: Path | None = None


def idl(data: bytes) -> None:
    """Any text compiles to a model or raises an ``IdlError`` whose every diagnostic
    names a file and a line, and formats."""
    global _idl_dir
    if _idl_dir is None:
        # An empty directory anchors relative #includes: they find nothing.
        _idl_dir = Path(tempfile.mkdtemp(prefix="canopy-fuzz-idl-"))
    text = data.decode("utf-8", "replace")
    try:
        compile_text(text, filename=str(_idl_dir / "fuzz.idl"))
    except IdlError as e:
        assert e.diagnostics, "an IdlError with no diagnostic"
        for d in e.diagnostics:
            assert d.location.file and d.location.line >= 0, d
            assert d.message, d
        assert e.format()


# ---------------------------------------------------------------- seeds


def seeds(target: str) -> list[bytes]:
    """Valid inputs to start from: every message in every mode, values of the type
    matrix in every encoding (drawn by tests/type_matrix.py when hypothesis is
    installed), every IDL file of the repository."""
    if target == "wire":
        found = []
        for mode in range(32):
            found += [bytes([mode, 0]) + frame(m) for m in MESSAGES]
            found.append(bytes([mode, 3]) + b"".join(frame(m) for m in MESSAGES))
        return found
    if target == "codecs":
        return _codec_seeds()
    idl = [*ROOT.glob("tests/**/*.idl"), *ROOT.glob("src/canopy/**/*.idl")]
    return [p.read_bytes() for p in sorted(idl)]


def _codec_seeds() -> list[bytes]:
    types = matrix_types()
    try:
        from hypothesis.errors import NonInteractiveExampleWarning

        sys.path.insert(0, str(ROOT / "tests"))
        from type_matrix import values
    except ImportError:  # without hypothesis: the fuzzer finds the shapes itself
        return [bytes([e, i]) for e in range(4) for i in range(len(types))]
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        for i, t in enumerate(types):
            for _ in range(3):
                value = values(t).example()
                for e, name in enumerate(CODEC_ENCODINGS):
                    found.append(bytes([e, i]) + codec(name).encoder(t)(value))
    return found


TARGETS: dict[str, Callable[[bytes], None]] = {"wire": wire, "codecs": codecs, "idl": idl}
