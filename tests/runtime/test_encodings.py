"""Encodings at run time: each link negotiates one, a call may choose another, the reply
comes back in the call's, and a peer refuses what it does not accept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import canopy
from behaviour import ENCODINGS, MODES, Harness, Widget, b
from canopy.errors import ErrorCode
from canopy.runtime._marshal import from_refs
from canopy.runtime._plans import plan
from canopy.wire import (
    Call,
    Encoding,
    Message,
    Post,
    Reply,
    codec,
    unwrap_payload,
    wrap_payload,
)
from type_matrix import matrix, same, values

OTHERS = ("binary_zstd", "json", "protobuf")


class Spy:
    """Records the encoding of every call and post sent through ``proxy``'s link."""

    def __init__(self, proxy: Any) -> None:
        self.sent: list[Encoding] = []
        link = proxy._canopy_remote.link
        send = link.send

        def spy(message: Message) -> None:
            if isinstance(message, Call | Post):
                self.sent.append(Encoding(message.encoding))
            send(message)

        link.send = spy


@pytest.fixture(params=MODES)
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    harness = Harness(request.param, encoding=None)  # both zones accept every encoding
    yield harness
    assert harness.close() == {}, "references or objects left behind"


def protocol(proxy: Any) -> Any:
    return proxy._canopy_remote.link.protocol


def test_binary_is_negotiated_and_the_peer_accepts_every_encoding(h: Harness) -> None:
    assert protocol(h.root).encoding is Encoding.BINARY
    assert protocol(h.root).peer_encodings == set(Encoding)


def test_the_accepting_side_chooses_by_its_own_preference() -> None:
    with canopy.Zone("host") as host:
        root = host.child("service", lambda z: Widget("w"), b.i_widget, encodings=("json", 1))
        assert protocol(root).encoding is Encoding.JSON
        assert protocol(root).peer_encodings == {Encoding.JSON, Encoding.BINARY}
        assert root.name() == "w"
        del root
        host.collect()


def test_over_a_socket_the_server_chooses_too() -> None:
    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        server = service.serve(
            "tcp://127.0.0.1:0", lambda z: Widget("w"), b.i_widget, encodings=("protobuf", "json")
        )
        root = client.connect(server.url, b.i_widget)
        assert protocol(root).encoding is Encoding.PROTOBUF
        assert protocol(root).peer_encodings == {Encoding.PROTOBUF, Encoding.JSON}
        assert root.name() == "w"
        canopy.close(root)


@pytest.mark.parametrize("encoding", OTHERS)
def test_one_block_of_calls_in_another_encoding(h: Harness, encoding: str) -> None:
    spy = Spy(h.root)

    async def in_a_task() -> int:
        # asyncio tasks copy the context: a block around an await covers the call.
        with canopy.use_encoding(encoding):
            result: int = await h.root.add(20, 22)
            return result

    with canopy.use_encoding(encoding) as chosen:
        assert chosen is canopy.wire.encoding_of(encoding)
        assert h.do(h.root.add, 2, 3) == 5
        widget = h.do(h.root.make_widget, "made")  # a reference out
        assert h.do(h.root.widget_name, Widget("mine")) == "mine"  # one in
        given = h.do(h.root.give, 2)  # references inside a struct and a list
        assert [h.do(w.name) for w in given.spares] == ["spare0", "spare1"]
        assert h.do(h.root.record, "posted", 0) is None
    if h.loop is not None:
        assert h.loop.run_until_complete(in_a_task()) == 42
    assert h.do(h.root.add, 1, 1) == 2  # outside the block: the link's encoding again
    # Seven in the block (the widgets live behind the same link), one more in the task.
    chosen = [canopy.wire.encoding_of(encoding)] * (7 if h.loop is None else 8)
    assert spy.sent == [*chosen, Encoding.BINARY]
    h.settle()
    assert h.do(h.root.recorded) == ["0:posted"]
    del widget, given


def test_an_encoding_the_peer_does_not_accept_fails_before_sending() -> None:
    h = Harness("blocking", encoding="binary")
    try:
        spy = Spy(h.root)
        with (
            canopy.use_encoding("json"),
            pytest.raises(canopy.IncompatibleSerialisation, match=r"not accept json.*binary"),
        ):
            h.root.add(1, 2)
        assert spy.sent == []
        assert h.root.add(1, 2) == 3
    finally:
        assert h.close() == {}


def test_an_unknown_encoding_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown encoding 'yaml': use 'binary'"):
        canopy.use_encoding("yaml").__enter__()


def raw_call(h: Harness, encoding: int, payload: msgspec.Raw) -> Reply:
    """A call of ``i_test::add`` sent by hand, in ``encoding``; its raw reply."""
    link = h.root._canopy_remote.link
    add = plan(b.i_test).by_name["add"]
    call_id = link.next_id(lambda reply: reply)
    obj = h.root._canopy_remote.object_id
    link.send(
        Call(
            call_id,
            h.zone.id,
            link.peer,
            obj,
            b.i_test.__canopy__.id,
            add.info.id,
            encoding,
            payload,
        )
    )
    reply: Reply = link.wait(call_id)
    return reply


def test_the_reply_comes_in_the_calls_encoding() -> None:
    h = Harness("blocking", encoding=None)
    try:
        add = plan(b.i_test).by_name["add"].info
        json = codec(Encoding.JSON)
        payload = wrap_payload(Encoding.JSON, json.encoder(add.in_type)(add.in_type(4, 5)))
        reply = raw_call(h, Encoding.JSON, payload)
        assert reply.code == 0
        out = json.decoder(add.out_type)(unwrap_payload(Encoding.JSON, reply.payload))
        assert out == add.out_type(9)
    finally:
        assert h.close() == {}


@pytest.mark.parametrize(
    ("encoding", "payload", "code"),
    [
        (
            Encoding.JSON,
            msgspec.msgpack.encode(b'{"a": 1, "b": 2}'),
            ErrorCode.INCOMPATIBLE_SERIALISATION,
        ),
        (99, msgspec.msgpack.encode([1, 2]), ErrorCode.INCOMPATIBLE_SERIALISATION),
    ],
    ids=["not-accepted", "unknown"],
)
def test_a_call_in_an_encoding_this_side_does_not_accept_is_refused(
    encoding: int, payload: bytes, code: ErrorCode
) -> None:
    h = Harness("blocking", encoding="binary")
    try:
        reply = raw_call(h, encoding, msgspec.Raw(payload))
        assert reply.code == code
        assert "accepts binary" in reply.message
        assert h.root.add(1, 2) == 3
    finally:
        assert h.close() == {}


@pytest.mark.parametrize(
    "payload",
    [
        msgspec.msgpack.encode([1, 2]),  # MessagePack where a bin of JSON belongs
        msgspec.msgpack.encode(b"{not json"),
        msgspec.msgpack.encode(b'{"a": "one", "b": 2}'),
    ],
    ids=["not-a-bin", "not-json", "wrong-type"],
)
def test_a_payload_that_does_not_fit_its_encoding_is_invalid_data(payload: bytes) -> None:
    h = Harness("blocking", encoding=None)
    try:
        reply = raw_call(h, Encoding.JSON, msgspec.Raw(payload))
        assert reply.code == ErrorCode.INVALID_DATA, reply.message
        assert h.root.add(1, 2) == 3
    finally:
        assert h.close() == {}


class Peer(matrix.i_peer):  # type: ignore[misc]
    def ping(self) -> None:
        pass


class Matrix(matrix.i_matrix):  # type: ignore[misc]
    def all(self, value: Any, peer: Any) -> tuple[Any, Any]:
        return value, peer

    def scalars(self, a: int, b: int, c: float, self_: str) -> int:
        return a + b.bit_length()

    def notify(self, text: str) -> None:
        pass


PEERS = [Peer() for _ in range(3)]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_type_of_the_matrix_crosses_a_zone(encoding: str) -> None:
    """The whole type matrix, references included, out to a child zone and back."""
    everything = values(matrix.everything).map(
        # The drawn descriptors become objects of this zone, which come back as themselves
        # (optimistic references as weak stand-ins of themselves).
        lambda v: from_refs(v, lambda ref: PEERS[ref.object % len(PEERS)])
    )
    with canopy.Zone("host") as host:
        root = host.child("matrix", lambda z: Matrix(), matrix.i_matrix, encodings=(encoding,))

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(value=everything, peer=st.sampled_from(PEERS))
        def round_trip(value: Any, peer: Any) -> None:
            echoed, back = root.all(value, peer)
            assert same(echoed, value)
            # An optimistic reference comes home weak: the object itself, held weakly.
            assert back is not peer and same(back, peer)

        round_trip()
        assert root.scalars(-1, (1 << 128) - 1, 0.5, "s") == 127
        canopy.close(root)
        host.collect()
        assert host.exported() == {} and host.imported() == []
