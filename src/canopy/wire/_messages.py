"""The messages zones exchange: small frozen records, one tagged union, one typed decoder.

Every record is a msgspec ``Struct`` encoded as a MessagePack array whose first
element is the message tag, so a frame is a few bytes of header and decoding
rejects anything that does not fit. Each message names the caller zone and the
destination (zone, object), so an intermediate zone can forward it without
understanding the payload; payloads are ``msgspec.Raw`` so forwarding does not
decode them either.
"""

from __future__ import annotations

import enum

import msgspec

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)


class Encoding(enum.IntEnum):
    """Payload encodings; the numbers are those of ``rpc::encoding`` in rpc_types.idl."""

    BINARY = 1
    BINARY_ZSTD = 2
    JSON = 8
    PROTOBUF = 16


ENCODINGS = (Encoding.BINARY, Encoding.BINARY_ZSTD, Encoding.JSON, Encoding.PROTOBUF)
"""Every encoding, in the default order of preference."""


class RefKind(enum.IntEnum):
    SHARED = 0
    OPTIMISTIC = 1


class ObjectRef(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """An interface reference inside a payload: which object, through which interface.

    ``kind`` is the reference the receiver now holds (``RefKind``), chosen by
    the sender from the declared type (``rpc::shared_ptr`` or
    ``rpc::optimistic_ptr``); the receiver follows it, so both sides count
    the same thing.
    """

    zone: int
    object: int
    interface: int
    kind: int = 0


class _Message(msgspec.Struct, array_like=True, frozen=True, gc=False, tag_field="t"):
    pass


# ---------------------------------------------------------------- handshake


class Hello(_Message, frozen=True, tag=1):
    """First message of the connecting side: what it speaks, and who it is."""

    versions: tuple[int, ...]
    encodings: tuple[int, ...]
    zone: int
    object: int = 0  # the root object it offers the peer (0: none)
    interface: int = 0
    quiet: bool = False
    """It reads only while it has calls pending (a blocking client): a ping may go
    unanswered while it is idle, and does not mean it is dead."""


class Welcome(_Message, frozen=True, tag=2):
    """The accepting side's answer: the version and encoding chosen for the link, and
    every encoding it accepts (a call may choose another than the link's)."""

    version: int
    encoding: int
    zone: int
    object: int = 0
    interface: int = 0
    accepts: tuple[int, ...] = ()


class Refuse(_Message, frozen=True, tag=3):
    """The accepting side found nothing acceptable; the link closes after this."""

    code: int
    message: str


# ---------------------------------------------------------------- calls


Passed = tuple[tuple[int, int, int], ...]
"""(zone, object, kind) of every reference in a payload, for the zones it passes
through: sent only when a message goes further than the next zone (see Call)."""


class Call(_Message, frozen=True, tag=4):
    """Call ``method`` of ``interface`` on ``object`` of ``zone``, for zone ``caller``.

    A zone forwards a message addressed to another zone over the link its
    reference came by, without decoding the payload; ``refs`` tells it which
    references the payload carries, so that it can count them as they pass.
    """

    id: int
    caller: int
    zone: int
    object: int
    interface: int
    method: int
    encoding: int
    payload: msgspec.Raw
    tag: int = 0
    timeout_ms: int = 0  # the caller's remaining time; 0: none
    refs: Passed = ()
    trace: str = ""  # the caller's trace context (W3C traceparent), for telemetry


class Post(_Message, frozen=True, tag=5):
    caller: int
    zone: int
    object: int
    interface: int
    method: int
    encoding: int
    payload: msgspec.Raw
    tag: int = 0
    refs: Passed = ()
    trace: str = ""


class Reply(_Message, frozen=True, tag=6):
    """The answer to a Call, TryCast, AddRef, GetSchema or NewZoneId with the same id.

    ``code`` 0 is success and ``payload`` holds the results; otherwise
    ``message`` says why (an exception's type and text for EXCEPTION).
    """

    id: int
    code: int
    payload: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"\xc0"))
    message: str = ""
    refs: Passed = ()


class TryCast(_Message, frozen=True, tag=7):
    id: int
    caller: int
    zone: int
    object: int
    interface: int


class AddRef(_Message, frozen=True, tag=8):
    id: int
    caller: int
    zone: int
    object: int
    kind: int
    requester: int  # the zone the reference is for, so a route can be built towards it


class Release(_Message, frozen=True, tag=9):
    caller: int
    zone: int
    object: int
    kind: int


class ObjectReleased(_Message, frozen=True, tag=10):
    """The owner tells a zone holding only optimistic references that the object is gone."""

    zone: int
    object: int
    holder: int


class TransportDown(_Message, frozen=True, tag=11):
    zones: tuple[int, ...]


class GetSchema(_Message, frozen=True, tag=12):
    """Ask an object to describe itself; the reply's payload is the description
    (MessagePack, ``canopy.runtime._reflect.Description``). Deprecated methods are
    left out unless ``deprecated``; the schemas are the MCP profile's unless ``config``."""

    id: int
    caller: int
    zone: int
    object: int
    deprecated: bool = False
    config: bool = False


class NewZoneId(_Message, frozen=True, tag=13):
    id: int


class Close(_Message, frozen=True, tag=14):
    pass


class CloseAck(_Message, frozen=True, tag=15):
    pass


class Cancel(_Message, frozen=True, tag=16):
    """The caller gave up on call ``id``; the callee should stop working on it."""

    id: int


class Ping(_Message, frozen=True, tag=17):
    nonce: int


class Pong(_Message, frozen=True, tag=18):
    nonce: int


Message = (
    Hello
    | Welcome
    | Refuse
    | Call
    | Post
    | Reply
    | TryCast
    | AddRef
    | Release
    | ObjectReleased
    | TransportDown
    | GetSchema
    | NewZoneId
    | Close
    | CloseAck
    | Cancel
    | Ping
    | Pong
)

HANDSHAKE = (Hello, Welcome, Refuse)
# Messages that expect a Reply carrying the same id.
REQUESTS = (Call, TryCast, AddRef, GetSchema, NewZoneId)

NO_PAYLOAD = msgspec.Raw(b"\xc0")  # MessagePack nil

_bin = msgspec.msgpack.Encoder()


def wrap_payload(encoding: Encoding, data: bytes) -> msgspec.Raw:
    """``data`` as the payload of a message: MessagePack sits in the message as it is,
    any other encoding inside a MessagePack ``bin``."""
    return msgspec.Raw(data if encoding is Encoding.BINARY else _bin.encode(data))


def unwrap_payload(encoding: Encoding, payload: msgspec.Raw) -> bytes | memoryview:
    """What ``wrap_payload`` wrapped; ``msgspec.DecodeError`` if it is not a ``bin``."""
    if encoding is Encoding.BINARY:
        return memoryview(payload)
    return msgspec.msgpack.decode(payload, type=bytes)
