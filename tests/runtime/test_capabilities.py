"""A peer reaches only the objects it was handed: raw messages from a hostile zone are
refused with the right code, and nothing they do disturbs anyone's objects or counts;
the same holds for a raw WebSocket client of a live server, in JSON as a browser
speaks or in MessagePack."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

import canopy
from behaviour import Harness, b
from behaviour import TestService as Service
from canopy.errors import ErrorCode
from canopy.runtime._plans import plan
from canopy.wire import (
    NO_PAYLOAD,
    AddRef,
    Call,
    Encoding,
    Message,
    Release,
    Reply,
    TryCast,
    unwrap_payload,
    wrap_payload,
)
from frame_strategies import frame_of
from hostile import Live, WsHostile


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness("blocking")
    yield harness
    assert harness.close() == {}, "references or objects left behind"


def raw(h: Harness, build: Any) -> Reply:
    """Send the message ``build(call_id, caller, link)`` builds and return the raw reply."""
    link = h.zone.links[h.zones()[1].id]
    call_id = link.next_id(lambda reply: reply)
    message: Message = build(call_id, h.zone.id, link)
    link.send(message)
    reply: Reply = link.wait(call_id)
    return reply


def call(
    h: Harness,
    *,
    obj: int = 1,
    iface: Any = None,
    method: int = 2,
    caller: int = 0,
    payload: bytes | None = None,
) -> Reply:
    interface = (iface or b.i_test).__canopy__.id
    body = msgspec.Raw(payload if payload is not None else msgspec.msgpack.encode([1, 2]))
    return raw(
        h, lambda cid, me, link: Call(cid, caller or me, link.peer, obj, interface, method, 1, body)
    )


def root_id(h: Harness) -> int:
    return int(h.root._canopy_remote.object_id)


def test_the_honest_call_works(h: Harness) -> None:
    reply = call(h, obj=root_id(h))
    assert reply.code == 0
    assert msgspec.msgpack.decode(reply.payload) == [3]


def test_a_guessed_object_id_is_not_found(h: Harness) -> None:
    assert call(h, obj=9999).code == ErrorCode.OBJECT_NOT_FOUND


def test_an_object_the_caller_let_go_of_is_not_reachable(h: Harness) -> None:
    widget = h.do(h.root.make_widget, "once")
    object_id = widget._canopy_remote.object_id
    del widget
    h.settle()
    reply = raw(
        h,
        lambda cid, me, link: Call(
            cid,
            me,
            link.peer,
            object_id,
            b.i_widget.__canopy__.id,
            1,
            1,
            msgspec.Raw(msgspec.msgpack.encode([])),
        ),
    )
    assert reply.code == ErrorCode.OBJECT_NOT_FOUND


def test_a_caller_zone_that_cannot_be_is_refused(h: Harness) -> None:
    """A call claiming to come from the zone it is addressed to."""
    service = h.zones()[1].id
    assert call(h, obj=root_id(h), caller=service).code == ErrorCode.SECURITY_ERROR


def test_a_caller_zone_behind_the_link_is_named_but_gains_nothing(h: Harness) -> None:
    """A neighbour passes calls on for zones behind it and names them as the caller;
    what the call may reach is still what the neighbour holds."""
    assert call(h, obj=root_id(h), caller=0xBAD).code == 0
    assert call(h, obj=9999, caller=0xBAD).code == ErrorCode.OBJECT_NOT_FOUND


def test_method_ids_out_of_range(h: Harness) -> None:
    for method in (0, 99, 2**32):
        reply = call(h, obj=root_id(h), method=method)
        assert reply.code == ErrorCode.INVALID_METHOD_ID
        assert "has no method" in reply.message


def test_an_interface_the_object_does_not_implement(h: Harness) -> None:
    assert call(h, obj=root_id(h), iface=b.i_gadget).code == ErrorCode.INVALID_INTERFACE_ID


def test_a_cast_to_an_interface_the_object_does_not_expose(h: Harness) -> None:
    reply = raw(
        h, lambda cid, me, link: TryCast(cid, me, link.peer, root_id(h), b.i_gadget.__canopy__.id)
    )
    assert reply.code == ErrorCode.INVALID_CAST


@pytest.mark.parametrize(
    "payload",
    [
        msgspec.msgpack.encode(["a", "b"]),
        msgspec.msgpack.encode([2**40, 1]),
        msgspec.msgpack.encode([1]),
        msgspec.msgpack.encode({"a": 1}),
    ],
    ids=["wrong-types", "out-of-range", "too-short", "a-map"],
)
def test_payloads_that_do_not_fit_are_invalid_data(h: Harness, payload: bytes) -> None:
    reply = call(h, obj=root_id(h), payload=payload)
    assert reply.code == ErrorCode.INVALID_DATA
    assert reply.message.startswith("behaviour::i_test::add: ")
    assert h.do(h.root.add, 2, 2) == 4


@pytest.mark.parametrize("payload", [b"", b"\xc1", b"\x92\x01"], ids=["empty", "bad", "cut"])
def test_a_frame_that_does_not_decode_is_dropped_and_the_link_lives(
    h: Harness, payload: bytes
) -> None:
    reply = call(h, obj=root_id(h), payload=payload)
    assert reply.code == ErrorCode.PROTOCOL_ERROR
    assert reply.message.startswith("the peer could not decode this request's frame: ")
    assert h.do(h.root.add, 2, 2) == 4


def test_a_post_sent_as_a_call(h: Harness) -> None:
    record = plan(b.i_test).by_name["record"].info.id
    reply = call(h, obj=root_id(h), method=record, payload=msgspec.msgpack.encode(["x", 1]))
    assert reply.code == ErrorCode.INVALID_METHOD_ID


def test_releases_of_references_not_held_change_nothing(h: Harness) -> None:
    service = h.zones()[1]
    before = service.exported()
    link = h.zone.links[service.id]
    for kind in (0, 1):
        link.send(Release(h.zone.id, service.id, 9999, kind))
        link.send(Release(h.zone.id, service.id, root_id(h), 1))  # holds no optimistic ref
        link.send(Release(service.id, service.id, root_id(h), 0))  # a caller that cannot be
        link.send(Release(h.zone.id, service.id, root_id(h), 7))  # no such kind
    assert service.exported() == before
    assert h.do(h.root.add, 1, 1) == 2


def test_add_ref_of_an_object_never_received_is_refused(h: Harness) -> None:
    service = h.zones()[1]
    secret = h.do(h.root.make_widget, "secret")
    secret_id = secret._canopy_remote.object_id
    del secret
    h.settle()
    reply = raw(h, lambda cid, me, link: AddRef(cid, me, link.peer, secret_id, 0, me))
    assert reply.code == ErrorCode.OBJECT_NOT_FOUND
    reply = raw(h, lambda cid, me, link: AddRef(cid, me, link.peer, 4242, 0, me))
    assert reply.code == ErrorCode.OBJECT_NOT_FOUND
    assert list(service.exported()) == [root_id(h)]


def test_a_reply_to_no_pending_call_is_ignored(h: Harness) -> None:
    service = h.zones()[1]
    service.links[h.zone.id].send(Reply(777, 0, NO_PAYLOAD))
    assert h.do(h.root.add, 2, 3) == 5


# ---------------------------------------------------------------- at the WebSocket edge


def _json(value: Any) -> msgspec.Raw:
    return wrap_payload(Encoding.JSON, msgspec.json.encode(value))


def _binary(value: Any) -> msgspec.Raw:
    return msgspec.Raw(msgspec.msgpack.encode(value))


class RawClient:
    """A hostile zone over a raw WebSocket, speaking ``encoding`` (8: JSON, as a
    browser does; 1: MessagePack) and numbering its requests."""

    def __init__(self, live: Live, encoding: int) -> None:
        self.ws = WsHostile(live.address)
        self.encoding = encoding
        self.welcome = self.ws.handshake((encoding,))
        assert self.welcome.encoding == encoding
        self.server = self.welcome.zone
        self._ids = itertools.count(1)

    def ask(self, build: Any) -> Reply:
        """Send ``build(call_id, caller)`` and wait for the reply to it."""
        call_id = next(self._ids)
        self.ws.send(frame_of(msgspec.msgpack.encode(build(call_id, self.ws.zone))))
        for _ in range(300):
            for message in self.ws.read():
                if isinstance(message, Reply) and message.id == call_id:
                    return message
        raise AssertionError(f"no reply to request {call_id}")

    def call(
        self,
        obj: int,
        iface: Any,
        name: str,
        args: dict[str, Any],
        *,
        caller: int = 0,
        method: int = 0,
    ) -> Reply:
        """Call method ``name`` of ``obj`` as ``iface`` with ``args``, as told (another
        ``caller`` zone, another ``method`` id)."""
        method = method or plan(iface).by_name[name].info.id
        json = self.encoding == Encoding.JSON
        payload = _json(args) if json else _binary(list(args.values()))
        interface = iface.__canopy__.id
        return self.ask(
            lambda cid, me: Call(
                cid, caller or me, self.server, obj, interface, method, self.encoding, payload
            )
        )

    def result(self, reply: Reply) -> Any:
        assert reply.code == 0, reply
        if self.encoding == Encoding.JSON:
            return msgspec.json.decode(unwrap_payload(Encoding.JSON, reply.payload))
        return msgspec.msgpack.decode(reply.payload)


@pytest.mark.parametrize(
    ("mode", "encoding"),
    [("blocking", Encoding.JSON), ("asyncio", Encoding.BINARY)],
    ids=["blocking-json", "asyncio-binary"],
)
def test_a_websocket_client_reaches_the_one_root_and_what_it_was_handed_only(
    mode: str, encoding: int
) -> None:
    """As ``canopy serve`` does, every connection gets the one object the server was
    configured with; a raw WebSocket client reaches it and the objects it returns,
    and no object of anyone else's however it names it."""
    root = Service()
    live = Live(mode, "ws", factory=lambda zone: root)
    try:
        theirs = live.root.make_widget("theirs")  # the honest client's, not to be reached
        their_id = theirs._canopy_remote.object_id
        raw = RawClient(live, encoding)
        root_id = raw.welcome.object
        assert root_id == live.root._canopy_remote.object_id  # the very same object
        added = raw.result(raw.call(root_id, b.i_test, "add", {"a": 40, "b": 2}))
        made = raw.result(raw.call(root_id, b.i_test, "make_widget", {"name": "mine"}))
        if encoding == Encoding.JSON:
            assert added == {"sum": 42}
            mine = made["widget"]["object"]
        else:
            assert added == [42]
            mine = made[0][1]
        named = raw.result(raw.call(mine, b.i_widget, "name", {}))
        assert named in ({"value": "mine"}, ["mine"])

        refused = {
            "a guessed id": raw.call(4242, b.i_widget, "name", {}),
            "another client's object": raw.call(their_id, b.i_widget, "name", {}),
            "a caller that is the server": raw.call(
                root_id, b.i_test, "add", {"a": 1, "b": 2}, caller=raw.server
            ),
            "an interface not implemented": raw.call(root_id, b.i_gadget, "serial", {}),
            "a method out of range": raw.call(root_id, b.i_test, "add", {}, method=99),
            "a cast not exposed": raw.ask(
                lambda cid, me: TryCast(cid, me, raw.server, root_id, b.i_gadget.__canopy__.id)
            ),
            "an add_ref of another's object": raw.ask(
                lambda cid, me: AddRef(cid, me, raw.server, their_id, 0, me)
            ),
            "arguments that do not decode": raw.call(
                root_id, b.i_test, "add", {"a": "forty", "b": 2}
            ),
        }
        codes = {why: reply.code for why, reply in refused.items()}
        assert codes == {
            "a guessed id": ErrorCode.OBJECT_NOT_FOUND,
            "another client's object": ErrorCode.OBJECT_NOT_FOUND,
            "a caller that is the server": ErrorCode.SECURITY_ERROR,
            "an interface not implemented": ErrorCode.INVALID_INTERFACE_ID,
            "a method out of range": ErrorCode.INVALID_METHOD_ID,
            "a cast not exposed": ErrorCode.INVALID_CAST,
            "an add_ref of another's object": ErrorCode.OBJECT_NOT_FOUND,
            "arguments that do not decode": ErrorCode.INVALID_DATA,
        }
        assert theirs.name() == "theirs"  # untouched
        raw.ws.finish()
        canopy.close(theirs)
        live.healthy()  # what the raw client was handed went with it
    finally:
        live.close()
