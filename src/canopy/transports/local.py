"""The local transport: two zones of one process, joined through the wire layer.

Each side is a real ``Protocol`` endpoint, so every message is framed,
encoded and decoded exactly as over a socket: a behaviour test means the same
thing here and across the network. Delivery is a function call on the
sender's thread; in blocking mode the callee therefore runs on the caller's
thread (a callback into the caller cannot deadlock), and in asyncio mode calls
queue per link on the running loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any

from canopy.errors import CallCancelled, CallTimeout, CanopyError, ProtocolError, TransportError
from canopy.runtime._zone import DEFAULT_CALL_TIMEOUT, Service
from canopy.wire import (
    ENCODINGS,
    Cancel,
    Encoding,
    HandshakeComplete,
    LinkClosed,
    Message,
    MessageReceived,
    Protocol,
    ProtocolViolation,
    Reply,
    Role,
)

log = logging.getLogger("canopy.transports.local")
_NOTHING: Mapping[str, Any] = types.MappingProxyType({})


class LocalLink:
    """One zone's end of an in-process link."""

    def __init__(
        self,
        zone: Service,
        role: Role,
        *,
        encodings: tuple[Encoding, ...] = ENCODINGS,
        root_object: int = 0,
        root_interface: int = 0,
    ) -> None:
        self.zone = zone
        self.peer = 0
        self.other: LocalLink | None = None
        self.root: tuple[int, int] = (0, 0)
        self.protocol = Protocol(
            role, zone.id, encodings, root_object=root_object, root_interface=root_interface
        )
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._handlers: dict[int, Callable[[Reply], Any]] = {}
        self._outcomes: dict[int, tuple[bool, Any]] = {}  # blocking: call id -> (ok, value)
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self._abandoned: set[int] = set()
        self.inbound: Any = None  # asyncio mode: calls and posts in order (the mode's)
        self.consumer: asyncio.Task[None] | None = None
        self.closed = False
        self.call_timeout: float | None = DEFAULT_CALL_TIMEOUT
        self.on_idle: Callable[[], None] | None = None
        """Called when this zone holds nothing more in the peer (a plugin's link closes)."""

    def __repr__(self) -> str:
        return f"<LocalLink {self.zone.name!r} -> {self.peer:#x}>"

    @property
    def info(self) -> Mapping[str, Any]:
        """Nothing to tell of a zone in this process: its id is the caller's ``zone``."""
        return _NOTHING

    # -- sending

    def next_id(self, on_reply: Callable[[Reply], Any], waited: bool = True) -> int:
        call_id = next(self._ids)
        self._handlers[call_id] = on_reply
        if not waited:
            self._abandoned.add(call_id)  # its reply runs on_reply and goes no further
        elif self.zone.mode.name == "asyncio":
            self._futures[call_id] = asyncio.get_running_loop().create_future()
        return call_id

    def send(self, message: Message) -> None:
        if self.closed or self.other is None:
            if isinstance(message, Reply):
                return  # its caller is gone with the link, as over a stream: nobody to tell
            raise TransportError(f"the link from zone {self.zone.name!r} is closed")
        with self._lock:
            self.protocol.send(message)
            data = self.protocol.data_to_send()
        self.other.deliver(data)

    async def drained(self) -> None:
        # A frame is delivered as it is sent: nothing is ever left to write.
        if self.closed or self.other is None:
            raise TransportError(f"the link from zone {self.zone.name!r} is closed")

    def wait(self, call_id: int, timeout: float | None = None) -> Any:
        # The callee ran on this thread before this is reached: there is no waiting.
        outcome = self._outcomes.pop(call_id, None)
        if outcome is None:
            self._handlers.pop(call_id, None)
            why = "the link closed" if self.closed else "the peer refused its frame"
            raise CallCancelled(f"call {call_id} to zone {self.peer:#x} got no reply: {why}")
        ok, value = outcome
        if ok:
            return value
        del outcome
        try:
            raise value
        finally:
            del value  # the error's traceback holds this frame: no cycle through it

    async def wait_async(self, call_id: int, timeout: float | None = None) -> Any:
        future = self._futures.get(call_id)
        if future is None:
            raise CallCancelled(f"call {call_id} is unknown on this link")
        loop = asyncio.get_running_loop()
        timer = (
            None if timeout is None else loop.call_later(timeout, self._expire, call_id, timeout)
        )
        try:
            return await future
        except asyncio.CancelledError:
            if not future.cancelled() or future is not self._futures.get(call_id):
                raise
            self._give_up(call_id)  # the caller's task was cancelled: so is the call
            raise
        finally:
            self._futures.pop(call_id, None)
            if timer is not None:
                timer.cancel()

    def _give_up(self, call_id: int) -> None:
        """Tell the callee the call was abandoned; its reply, if one comes, is dropped."""
        self._abandoned.add(call_id)
        with contextlib.suppress(CanopyError):
            self.send(Cancel(call_id))

    def _expire(self, call_id: int, timeout: float) -> None:
        future = self._futures.pop(call_id, None)
        if future is not None and not future.done():
            # A late reply finds no future and no outcome slot: it is decoded, and
            # whatever it held is released with it.
            self._give_up(call_id)
            future.set_exception(
                CallTimeout(f"no reply from zone {self.peer:#x} within {timeout:g} s")
            )

    # -- receiving

    def deliver(self, data: bytes) -> None:
        with self._lock:
            self.protocol.receive_data(data)
            events = self.protocol.events()
        for event in events:
            self._event(event)
        if self.protocol.wants_write:
            self.pump()  # the protocol answered by itself (a refused frame's Reply, a Pong)

    def pump(self) -> None:
        """Move what the protocol has queued (the handshake) to the other side."""
        with self._lock:
            data = self.protocol.data_to_send()
        if data and self.other is not None:
            self.other.deliver(data)

    def _event(self, event: Any) -> None:
        if isinstance(event, MessageReceived):
            message = event.message
            if isinstance(message, Reply):
                self._reply(message)
                return
            dispatch = self.zone.receive(self, message)
            if dispatch is not None:
                self.zone.mode.dispatch(dispatch)
        elif isinstance(event, HandshakeComplete):
            self.peer = event.peer_zone
            self.root = (event.peer_object, event.peer_interface)
        elif isinstance(event, ProtocolViolation) and event.fatal:
            self._fail(ProtocolError(event.reason))
        elif isinstance(event, LinkClosed):
            self._fail(TransportError(event.reason or "the link closed"))

    def _reply(self, reply: Reply) -> None:
        handler = self._handlers.pop(reply.id, None)
        if handler is None:
            log.warning("%r: reply to call %d, which is not pending: ignored", self, reply.id)
            return
        with self.zone.inside():
            try:
                outcome: tuple[bool, Any] = (True, handler(reply))
            except Exception as e:
                outcome = (False, e)
        future = self._futures.get(reply.id)
        if reply.id in self._abandoned:
            self._abandoned.discard(reply.id)
        elif future is None:
            self._outcomes[reply.id] = outcome
        elif not future.done():
            if outcome[0]:
                future.set_result(outcome[1])
            else:
                future.set_exception(outcome[1])
        del outcome  # an error's traceback holds this frame: no cycle through it

    def close(self) -> None:
        """Close both ends: pending calls fail, references across the link are released."""
        other = self.other
        self._fail(CallCancelled("the link was closed"))
        if other is not None:
            other._fail(CallCancelled("the link was closed"))

    def _fail(self, error: Exception) -> None:
        if self.closed:
            return
        self.closed = True
        for future in self._futures.values():
            if not future.done():
                future.set_exception(error)
        self._futures.clear()
        self._handlers.clear()
        if self.consumer is not None:
            self.consumer.cancel()
        if self.peer:
            self.zone.peer_lost(self.peer)


def join(
    parent: Service,
    child: Service,
    encodings: tuple[Encoding, ...] = ENCODINGS,
    call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
) -> tuple[LocalLink, LocalLink]:
    """Link ``parent`` to ``child``: the two ends, each registered with its zone. Objects
    cross it as in any call (``hand``)."""
    near = LocalLink(parent, Role.CONNECTING, encodings=encodings)
    far = LocalLink(child, Role.ACCEPTING, encodings=encodings)
    near.other, far.other = far, near
    near.call_timeout = far.call_timeout = call_timeout
    near.pump()  # Hello, then Welcome comes back through far.send
    far.pump()
    if not near.peer or not far.peer:
        raise ProtocolError("the in-process handshake did not complete")
    parent.add_link(near)
    child.add_link(far)
    return near, far


def hand(obj: Any, interface: type[Any], giver: LocalLink, taker: LocalLink) -> Any:
    """``obj`` of ``giver``'s zone as ``taker``'s zone receives it: one shared reference,
    counted exactly as if it had been an argument of a call."""
    info = getattr(interface, "__canopy__", None)
    with giver.zone.inside():
        ref = giver.zone.reference_for(obj, giver, 0, info.id if info is not None else 0)
    with taker.zone.inside():
        return taker.zone.object_for(ref, taker, interface)
