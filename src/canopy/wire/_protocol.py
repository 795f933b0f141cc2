"""The sans-I/O protocol endpoint: bytes in, events out; messages in, bytes out.

Theory of operation: a ``Protocol`` is one end of one link. It never touches a
socket, a thread, a loop or a clock (as in h11 and the websockets protocol
module): drivers feed it what they read (``receive_data``), drain the events
it found (``events``), hand it messages to send (``send``) and write what it
gives back (``data_to_send``). It owns framing, the handshake, decoding, and
the link's limits.

Frames are a 4-byte little-endian length then one MessagePack message. State
runs HANDSHAKE -> OPEN -> CLOSING -> CLOSED, or to CLOSED at once on a fatal
error. Invariants: no message but the handshake's passes before OPEN; a frame
longer than ``max_frame_size`` is fatal (the stream cannot be trusted to
resynchronise); a frame that is well delimited but does not decode is reported
and skipped, and ``max_decode_errors`` of them in a row close the link. A link
closed for what the peer sent tells the peer why first, in a ``Refuse`` (its
last frame); a ``Refuse`` received at any time closes the link with the peer's
code and reason, and is not answered.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from canopy.errors import ErrorCode
from canopy.wire._messages import (
    ENCODINGS,
    HANDSHAKE,
    REQUESTS,
    SUPPORTED_VERSIONS,
    Call,
    Close,
    CloseAck,
    Encoding,
    Hello,
    Message,
    Ping,
    Pong,
    Post,
    Refuse,
    Reply,
    Welcome,
)
from canopy.wire.codecs import encoding_of

_HEADER = 4
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


@dataclass(frozen=True, slots=True)
class Limits:
    """Security limits of a link; each is a constructor parameter with a safe default."""

    max_frame_size: int = 16 * 1024 * 1024
    """Largest frame accepted, in bytes; a larger one closes the link."""
    max_depth: int = 64
    """Deepest nesting accepted in a payload whose type can nest without limit (a struct
    that contains itself, or a ``json::v1::object``); any other type's nesting is
    fixed by its IDL. A deeper call is refused with INVALID_DATA."""
    max_calls_in_flight: int = 1024
    """Calls a peer may have waiting on this side at once; more are refused."""
    max_exported_objects: int = 100_000
    """Objects this side will export to one peer."""
    max_decode_errors: int = 8
    """Malformed frames in a row before the link is closed."""
    max_pending_write_bytes: int = 64 * 1024 * 1024
    """Bytes that may wait to be written to a peer while it takes none: a peer that
    makes this side answer (calls, callbacks) faster than it reads the answers has
    its link closed with LIMIT_EXCEEDED past it. A blocking poster waits long before
    (see ``canopy.transports.stream.POST_HIGH_WATER``)."""
    max_queued_messages: int = 4096
    """Calls and posts read from a peer that may wait to run before this side stops
    reading from it; it reads again once a quarter of them are left, and TCP flow
    control holds the peer back meanwhile. One read may take the queue past it by
    the messages that read held. Not a limit that closes anything: backpressure. Above
    what one read of small posts brings (about 3,000), so that a receiver keeping up
    never pauses."""


class Role(enum.Enum):
    CONNECTING = "connecting"
    ACCEPTING = "accepting"


class State(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class HandshakeComplete(msgspec.Struct, frozen=True):
    version: int
    encoding: Encoding
    peer_zone: int
    peer_object: int
    peer_interface: int


class MessageReceived(msgspec.Struct, frozen=True, gc=False):
    message: Message


class ProtocolViolation(msgspec.Struct, frozen=True):
    """The peer sent something that does not fit; ``fatal`` means the link is closed."""

    code: ErrorCode
    reason: str
    fatal: bool


class LinkClosed(msgspec.Struct, frozen=True):
    """The link ended; ``clean`` when both sides said goodbye."""

    clean: bool
    reason: str = ""


Event = HandshakeComplete | MessageReceived | ProtocolViolation | LinkClosed


@dataclass(slots=True)
class Protocol:
    """One end of a link between two zones.

    ``encodings`` are those this side accepts, in its order of preference (names,
    numbers or ``Encoding`` members); the accepting side chooses the link's
    ``encoding`` from them. After the handshake ``peer_encodings`` holds what the
    peer accepts, so that one call can be sent in another encoding than the link's.
    """

    role: Role
    zone: int
    encodings: tuple[Encoding, ...] = ENCODINGS
    limits: Limits = field(default_factory=Limits)
    root_object: int = 0
    root_interface: int = 0
    quiet: bool = False  # this side reads only while it calls (see Hello.quiet)
    state: State = State.HANDSHAKE
    version: int = 0
    encoding: Encoding = Encoding.BINARY
    peer_encodings: frozenset[Encoding] = frozenset()
    peer_quiet: bool = False
    _in: bytearray = field(default_factory=bytearray)
    _want: int = _HEADER  # bytes ``_in`` must hold before a whole frame is in it
    _out: bytearray = field(default_factory=bytearray)
    _events: list[Event] = field(default_factory=list)
    _bad_frames: int = 0
    _close_sent: bool = False

    def __post_init__(self) -> None:
        if not self.encodings:
            raise ValueError("a link needs at least one encoding")
        self.encodings = tuple(dict.fromkeys(encoding_of(e) for e in self.encodings))
        if self.role is Role.CONNECTING:
            self._write(
                Hello(
                    SUPPORTED_VERSIONS,
                    tuple(int(e) for e in self.encodings),
                    self.zone,
                    self.root_object,
                    self.root_interface,
                    self.quiet,
                )
            )

    # -- driving

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes read from the stream; an empty ``data`` means end of stream."""
        if self.state is State.CLOSED:
            return
        if not data:
            clean = self.state is State.CLOSING and self._close_sent
            self._finish(clean, "" if clean else "the peer closed the stream")
            return
        self._parse(data)

    def events(self) -> list[Event]:
        """The events found since the last call, oldest first."""
        found, self._events = self._events, []
        return found

    @property
    def pending(self) -> int:
        """Bytes still to come of the frame being received, 0 between frames: a driver
        may read that much at once rather than in its usual chunks."""
        return max(self._want - len(self._in), 0) if self._in else 0

    @property
    def buffered(self) -> int:
        """Bytes waiting in ``data_to_send``: what this side has said and no driver has
        taken yet."""
        return len(self._out)

    @property
    def wants_write(self) -> bool:
        """Whether bytes wait in ``data_to_send``: after feeding data, a driver writes
        them even when it sent nothing itself (a Welcome, a Pong, a refusal)."""
        return bool(self._out)

    def data_to_send(self) -> bytes:
        """Bytes to write to the stream, coalesced since the last call."""
        if not self._out:
            return b""
        out = bytes(self._out)
        self._out.clear()
        return out

    def send(self, message: Message) -> None:
        """Queue one message; only ``Close`` and ``CloseAck`` may follow a ``Close``."""
        if self.state is State.HANDSHAKE:
            raise RuntimeError("the handshake has not completed")
        if self.state is State.CLOSED or (
            self.state is State.CLOSING and not isinstance(message, Close | CloseAck)
        ):
            raise RuntimeError(f"the link is {self.state.value}")
        self._write(message)

    def send_many(self, messages: Iterable[Message]) -> None:
        for m in messages:
            self.send(m)

    def close(self) -> None:
        """Begin a clean close: say goodbye and wait for the peer's acknowledgement."""
        if self.state in (State.OPEN, State.HANDSHAKE) and not self._close_sent:
            self._write(Close())
            self._close_sent = True
            self.state = State.CLOSING

    def abort(self, reason: str) -> None:
        """End the link at once (the driver saw the stream fail)."""
        self._finish(False, reason)

    def refuse(self, code: ErrorCode, reason: str) -> None:
        """End the link for what the driver saw of the peer (a deadline it let pass, a
        limit it crossed), telling it why in a ``Refuse``, its last frame."""
        if self.state is not State.CLOSED:
            self._fatal(code, reason)

    # -- internals

    def _write(self, message: Message) -> None:
        out = self._out
        start = len(out)
        out += b"\0\0\0\0"
        _encoder.encode_into(message, out, start + _HEADER)
        size = len(out) - start - _HEADER
        if size > self.limits.max_frame_size:
            del out[start:]
            raise ValueError(
                f"message of {size} bytes exceeds max_frame_size {self.limits.max_frame_size}"
            )
        out[start : start + _HEADER] = size.to_bytes(_HEADER, "little")

    def _parse(self, data: bytes | bytearray | memoryview) -> None:
        # Decoded payloads (msgspec.Raw) point into the bytes they came from, so
        # frames are decoded from an immutable copy, never from the growing
        # receive buffer. Reads usually end on a frame boundary: then the data
        # passed in is used as it is, with no copy at all.
        if self._in:
            self._in += data
            if len(self._in) < self._want:
                return  # a large frame, still arriving: nothing to parse, nothing to copy
            data = bytes(self._in)
            self._in.clear()
        elif not isinstance(data, bytes):
            data = bytes(data)
        elif (
            len(data) > _HEADER
            and int.from_bytes(data[:_HEADER], "little") == len(data) - _HEADER
            and len(data) - _HEADER <= self.limits.max_frame_size
        ):
            self._frame(memoryview(data)[_HEADER:])  # one whole frame: the usual read
            return
        view = memoryview(data)
        pos, end = 0, len(data)
        while end - pos >= _HEADER and self.state is not State.CLOSED:
            size = int.from_bytes(view[pos : pos + _HEADER], "little")
            if size > self.limits.max_frame_size:
                self._fatal(
                    ErrorCode.LIMIT_EXCEEDED,
                    f"frame of {size} bytes exceeds max_frame_size {self.limits.max_frame_size}",
                )
                return
            if end - pos - _HEADER < size:
                break
            frame = view[pos + _HEADER : pos + _HEADER + size]
            pos += _HEADER + size
            self._frame(frame)
        if pos < end and self.state is not State.CLOSED:
            self._in += view[pos:]
            rest = end - pos
            self._want = (
                _HEADER + int.from_bytes(view[pos : pos + _HEADER], "little")
                if rest >= _HEADER
                else _HEADER
            )

    def _frame(self, frame: memoryview) -> None:
        try:
            message = _decoder.decode(frame)
        except (msgspec.DecodeError, RecursionError) as e:
            self._bad_frames += 1
            fatal = (
                self.state is State.HANDSHAKE or self._bad_frames >= self.limits.max_decode_errors
            )
            reason = f"malformed frame: {e}"
            if fatal:
                self._fatal(ErrorCode.PROTOCOL_ERROR, reason)
                return
            self._events.append(ProtocolViolation(ErrorCode.PROTOCOL_ERROR, reason, False))
            request = _request_id(frame)
            if request is not None:
                # The caller waits for this id: it learns now, not at its deadline.
                why = f"the peer could not decode this request's frame: {e}"
                self._write(Reply(request, int(ErrorCode.PROTOCOL_ERROR), message=why))
            return
        self._bad_frames = 0
        if type(message) in _ORDINARY and self.state is State.OPEN:
            self._events.append(MessageReceived(message))
        elif self.state is State.HANDSHAKE:
            self._handshake(message)
        elif isinstance(message, Refuse):
            self._refused(message, "the peer closed the link")
        elif isinstance(message, HANDSHAKE):
            self._fatal(ErrorCode.PROTOCOL_ERROR, f"{type(message).__name__} after the handshake")
        elif isinstance(message, Close):
            if not self._close_sent:
                self._write(CloseAck())
            self._finish(True)
        elif isinstance(message, CloseAck):
            self._finish(True)
        elif isinstance(message, Ping):
            if self.state is State.OPEN:
                self._write(Pong(message.nonce))  # answered here: liveness needs no runtime
        else:
            self._events.append(MessageReceived(message))

    def _handshake(self, message: Message) -> None:
        if self.role is Role.ACCEPTING:
            if not isinstance(message, Hello):
                self._fatal(
                    ErrorCode.PROTOCOL_ERROR,
                    f"expected Hello to open the link, got {type(message).__name__}",
                )
                return
            self._answer(message)
        elif isinstance(message, Welcome):
            if message.version not in SUPPORTED_VERSIONS or message.encoding not in self.encodings:
                self._fatal(
                    ErrorCode.PROTOCOL_ERROR,
                    f"the peer chose version {message.version} and encoding {message.encoding}, "
                    "which this side did not offer",
                )
                return
            accepts = {e for e in message.accepts if e in _ENCODING_NUMBERS}
            self._open(
                message.version,
                Encoding(message.encoding),
                message,
                {Encoding(e) for e in accepts} | {Encoding(message.encoding)},
            )
        elif isinstance(message, Refuse):
            self._refused(message, "the peer refused the link")
        else:
            self._fatal(
                ErrorCode.PROTOCOL_ERROR,
                f"expected Welcome or Refuse, got {type(message).__name__}",
            )

    def _answer(self, hello: Hello) -> None:
        versions = [v for v in hello.versions if v in SUPPORTED_VERSIONS]
        if not versions:
            self._refuse(
                ErrorCode.INVALID_VERSION,
                f"no protocol version in common: peer offers {list(hello.versions)}, "
                f"this side speaks {list(SUPPORTED_VERSIONS)}",
            )
            return
        offered = set(hello.encodings)
        chosen = next((e for e in self.encodings if e in offered), None)
        if chosen is None:
            names = [Encoding(e).name.lower() for e in self.encodings]
            self._refuse(
                ErrorCode.INCOMPATIBLE_SERIALISATION,
                f"no encoding in common: peer offers {sorted(offered)}, this side accepts "
                f"{', '.join(names)}",
            )
            return
        version = max(versions)
        self._write(
            Welcome(
                version,
                int(chosen),
                self.zone,
                self.root_object,
                self.root_interface,
                tuple(int(e) for e in self.encodings),
            )
        )
        peer = {Encoding(e) for e in offered if e in _ENCODING_NUMBERS}
        self.peer_quiet = hello.quiet
        self._open(version, chosen, hello, peer)

    def _open(
        self, version: int, encoding: Encoding, peer: Hello | Welcome, accepts: set[Encoding]
    ) -> None:
        self.state = State.OPEN
        self.version = version
        self.encoding = encoding
        self.peer_encodings = frozenset(accepts)
        self._events.append(
            HandshakeComplete(version, encoding, peer.zone, peer.object, peer.interface)
        )

    def _refuse(self, code: ErrorCode, reason: str) -> None:
        self._write(Refuse(int(code), reason))
        self._events.append(ProtocolViolation(code, reason, True))
        self._finish(False, reason)

    def _fatal(self, code: ErrorCode, reason: str) -> None:
        """Close the link for what the peer sent, telling it why (drivers write what is
        queued before they close the stream)."""
        if self.state is not State.CLOSED:
            self._write(Refuse(int(code), reason[:_REASON]))
        self._events.append(ProtocolViolation(code, reason, True))
        self._finish(False, reason)

    def _refused(self, refuse: Refuse, what: str) -> None:
        code = ErrorCode(refuse.code) if refuse.code in _CODES else ErrorCode.PROTOCOL_ERROR
        reason = f"{what}: {refuse.message}"
        self._events.append(ProtocolViolation(code, reason, True))
        self._finish(False, reason)

    def _finish(self, clean: bool, reason: str = "") -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self._events.append(LinkClosed(clean, reason))


_CODES = {int(c) for c in ErrorCode}
_REASON = 512  # characters of a reason told to the peer: it may quote what the peer sent
_ORDINARY = frozenset({Call, Post, Reply})  # what most frames hold: straight to the runtime
_REQUEST_TAGS = {cls.__struct_config__.tag for cls in REQUESTS}
_ARRAY = {0xDC: 2, 0xDD: 4}  # array 16 and array 32: bytes of length after the marker
_UINT = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}


def _request_id(frame: memoryview) -> int | None:
    """The id of a request in a frame that does not decode, if its head is intact.

    msgspec cannot decode a head on its own: skipping the rest of a broken or
    deeply nested frame fails the same way. Every message is an array whose
    first two items are its tag and, for a request, its id, both unsigned integers.
    """
    head = bytes(frame[:16])
    pos = 1
    if head and 0x90 <= head[0] <= 0x9F:
        pass
    elif head and head[0] in _ARRAY:
        pos += _ARRAY[head[0]]
    else:
        return None
    values: list[int] = []
    for _ in range(2):
        if pos >= len(head):
            return None
        marker = head[pos]
        if marker < 0x80:
            values.append(marker)
            pos += 1
        elif marker in _UINT:
            size = _UINT[marker]
            if pos + 1 + size > len(head):
                return None
            values.append(int.from_bytes(head[pos + 1 : pos + 1 + size], "big"))
            pos += 1 + size
        else:
            return None
    tag, request = values
    return request if tag in _REQUEST_TAGS else None


_ENCODING_NUMBERS = {int(e) for e in Encoding}
