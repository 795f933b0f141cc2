"""Zones linked over a byte stream: a ``StreamLink`` drives one wire ``Protocol`` over a
``canopy.streams`` stream, in a blocking form and an asyncio form, and ``connect``
opens one.

To its zone a stream link is exactly a ``LocalLink``: a Reply becomes its
caller's outcome through the registered handler the moment it is read, in
link order; calls and posts go to ``Service.receive`` and then to the mode's
dispatch; when the link fails every pending call fails and the zone is told
the peer is gone. The handshake exchanges root objects: the connecting side
always receives the accepting side's root, the accepting side the connecting
side's if it offered one, and each owner grants the peer that reference.

Servers, which accept links, are in ``canopy.transports.server``.

Blocking form, theory of operation. There is no I/O thread between a caller
and its socket. A caller writes its own frame and then reads the socket itself
until its reply has arrived (leader/follower): one thread at a time holds the
read role; a caller that finds it taken waits on a condition until the reader
has delivered its outcome, or takes the role over when the reader lets it go.
Whoever reads handles every event in order; calls and posts go to one ordered
queue per link. A caller's thread never runs an implementation: the queue it
read is run on a thread pool, so that a callback arriving while its caller
waits cannot deadlock, and nested calls from it work. A background reader runs
the queue itself once it has let the read role go: a call then reaches its
implementation, and its reply the socket, on the thread that read it, with no
hand-over between threads; a nested call from it reads for itself, and a run
that goes on for more than a moment (``STALLS``) has another thread take over
the reading. A post finishes before the next message starts; a call starts in
order, and runs on its own thread when others wait behind it. Posts are left
for the next frame written or for ``FLUSHER``, a batch at a time. Writes are
combined: a thread that finds another one writing leaves its frames for that
writer, so a reader never blocks behind a write and frames queued meanwhile go
out in one system call. A poster that finds ``POST_HIGH_WATER`` bytes unwritten
waits for that writer and writes itself, and so goes at the pace the peer reads.
An asyncio post never waits; its poster awaits ``drained`` (``canopy.adrain``) for that.
Backpressure, both forms: while ``max_queued_messages`` of the peer's calls and
posts wait to run, nobody reads for the queue's sake (a caller still reads for its
reply) until a quarter are left, and TCP holds the peer back meanwhile.
Someone must read even when no caller is waiting, or the peer's calls would
stall: an accepting link keeps a reader thread for its connection, and a
connecting one starts one only while the peer holds references into this zone
(only then can it call in), leaving the socket to its callers otherwise. For
the same reason a closing server does not wait for idle clients to acknowledge
its goodbye; a closing client waits for the server's (always reading) reply.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from canopy.errors import (
    CallCancelled,
    CallTimeout,
    CanopyError,
    ErrorCode,
    LimitExceeded,
    RpcError,
    TransportError,
)
from canopy.runtime._modes import close_thread_loop
from canopy.runtime._tables import SHARED
from canopy.runtime._zone import (
    DEFAULT_CALL_TIMEOUT,
    HANDSHAKE_TIMEOUT,
    KEEPALIVE,
    Dispatch,
    Service,
)
from canopy.streams import NO_OPTIONS, RECEIVE_SIZE, AsyncStream, Layering, Stream
from canopy.streams import aconnect as open_async_stream
from canopy.streams import connect as open_stream
from canopy.transports._watchdog import STALLS, WATCHDOG
from canopy.transports._workers import Workers
from canopy.wire import (
    ENCODINGS,
    Call,
    Cancel,
    Encoding,
    Event,
    HandshakeComplete,
    LinkClosed,
    Message,
    MessageReceived,
    ObjectRef,
    Ping,
    Post,
    Protocol,
    ProtocolViolation,
    Reply,
    Role,
    State,
)

log = logging.getLogger("canopy.transports.stream")

DEAD_AFTER = 10.0
"""Seconds a link waits for any sign of life after a ping before it is declared dead."""
CLOSE_TIMEOUT = 1.0
"""Seconds a closing link waits for the peer to acknowledge its goodbye."""
POST_HIGH_WATER = 64 * 1024
"""Bytes of frames a blocking link may hold while its stream takes none before a post
waits for the stream: a poster faster than its peer is slowed down to the peer's pace
by TCP flow control, rather than its link's buffer growing. An asyncio poster waits
down to it when it awaits ``canopy.adrain``."""


MAX_READ = 4 * 1024 * 1024
"""Most bytes read at once while a large frame arrives."""


def _read_size(pending: int) -> int:
    """What to ask of the stream: the rest of a large frame at once, or the usual chunk."""
    return RECEIVE_SIZE if pending <= RECEIVE_SIZE else min(pending, MAX_READ)


class StreamLink:
    """One zone's end of a link over a stream: what both forms share."""

    stream: Stream | AsyncStream

    def __init__(
        self,
        zone: Service,
        role: Role,
        *,
        root: Any = None,
        root_interface: int = 0,
        encodings: tuple[Encoding, ...] = ENCODINGS,
        close_timeout: float = CLOSE_TIMEOUT,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        keepalive: float | None = KEEPALIVE,
        idle_timeout: float | None = None,
        on_end: Callable[[StreamLink], None] | None = None,
    ) -> None:
        stub = zone.export(root) if root is not None else None
        self.zone = zone
        self.peer = 0
        self.root: tuple[int, int] = (0, 0)  # the peer's root: (object, interface)
        self.protocol = Protocol(
            role,
            zone.id,
            encodings,
            zone.limits,
            root_object=stub.object_id if stub is not None else 0,
            root_interface=root_interface if stub is not None else 0,
            # A blocking client reads while it calls, and otherwise only while the
            # peer holds its objects: it cannot promise to answer an idle ping.
            quiet=role is Role.CONNECTING and zone.mode.name == "blocking",
        )
        self.inbound: Any = None  # asyncio mode: calls and posts in order (the mode's)
        self.consumer: asyncio.Task[None] | None = None
        self.closed = False
        self.close_timeout = close_timeout
        self.call_timeout = call_timeout
        self.keepalive = keepalive
        self.idle_timeout = idle_timeout
        self._sending = 0  # bytes handed to the stream by a send that has not returned
        self._max_pending = zone.limits.max_pending_write_bytes
        self._overflowed = False  # closed for max_pending_write_bytes: what waits is dropped
        self._high = zone.limits.max_queued_messages
        self._abandoned: set[int] = set()  # calls that timed out: a late reply is dropped
        self._pings = itertools.count(1)
        # When the peer last sent bytes of the Canopy stream. A layer's own traffic
        # beneath it (a WebSocket ping, which the layer answers) never reaches this
        # link: it is not the peer's zone saying anything, and keeps no link alive.
        self._received_at = time.monotonic()
        # The root is held here until the handshake grants it to the peer: the stub
        # alone holds it weakly, and nothing else may hold a factory's fresh object.
        self._root = root
        self._root_stub = stub
        self._ids = itertools.count(1)
        self._handlers: dict[int, Callable[[Reply], Any]] = {}
        self._plock = threading.Lock()  # the protocol endpoint: fed, drained, written to
        self._registered = False
        self._root_taken = False
        self._why: CanopyError | None = None
        self._on_end = on_end
        self.on_idle: Callable[[], None] | None = None
        """Called when this zone holds nothing more in the peer (a child's link closes)."""

    def __repr__(self) -> str:
        peer = f"{self.peer:#x}" if self.peer else "(handshake)"
        return f"<{type(self).__name__} {self.zone.name!r} -> {peer}>"

    @property
    def info(self) -> dict[str, Any]:
        """What the stream knows of the other end (``address``, ``peercred``)."""
        return self.stream.info

    def next_id(self, on_reply: Callable[[Reply], Any], waited: bool = True) -> int:
        call_id = next(self._ids)
        self._handlers[call_id] = on_reply
        if not waited:
            self._abandoned.add(call_id)  # its reply runs on_reply and goes no further
        return call_id

    def remote_root(self, cls: type[Any]) -> Any:
        """A proxy of the peer's root object as interface ``cls``, or None if it offered none.

        The peer granted this side one shared reference to its root at the
        handshake; the proxy takes it over, so it can be taken once.
        """
        obj, _ = self.root
        if not obj:
            return None
        if self._root_taken:
            raise RuntimeError(f"{self!r}: the peer's root was already taken")
        self._root_taken = True
        with self.zone.inside():
            return self.zone.object_for(ObjectRef(self.peer, obj, 0, SHARED), self, cls)

    # -- events, shared by both forms

    def _handle(self, events: Iterable[Event]) -> None:
        for event in events:
            if isinstance(event, MessageReceived):
                if self.closed:
                    continue  # the link is over for this zone: its counts are settled
                message = event.message
                if isinstance(message, Reply):
                    self._reply(message)
                else:
                    # A call or post to run, or a request passed on to another zone
                    # (a cast, a describe) whose reply is waited for like a call's.
                    dispatch = self.zone.receive(self, message)
                    if dispatch is not None:
                        self._dispatch(dispatch)
            elif isinstance(event, HandshakeComplete):
                self._opened(event)
            elif isinstance(event, ProtocolViolation):
                if event.fatal:
                    self._fail(RpcError.from_code(event.code, event.reason))
                else:
                    log.warning("%r: a frame from the peer was dropped: %s", self, event.reason)
            elif isinstance(event, LinkClosed):
                if event.clean:
                    self._fail(CallCancelled("the link was closed"), clean=True)
                else:
                    self._fail(TransportError(event.reason or "the link failed"))

    def _opened(self, event: HandshakeComplete) -> None:
        zone = self.zone
        old = zone.links.get(event.peer_zone)
        if event.peer_zone == zone.id or (old is not None and not self._stale(old)):
            # Counts and routes are kept per peer zone: a second link to the same
            # zone would share them with the first, and either one ending would
            # take the other's references with it.
            self.abort(f"zone {event.peer_zone:#x} is already linked to zone {zone.name!r}")
            return
        self.peer = event.peer_zone
        self.root = (event.peer_object, event.peer_interface)
        zone.add_link(self)
        self._registered = True
        if self._root_stub is not None:
            try:
                zone.grant(self._root_stub, self.peer, SHARED)
            except LimitExceeded as e:
                self.abort(f"the root cannot be handed to the peer: {e}")
                return
        self._root = None
        self._handshake_done()

    def _reply(self, reply: Reply) -> None:
        handler = self._handlers.get(reply.id)
        if handler is None:
            log.warning("%r: reply to call %d, which is not pending: ignored", self, reply.id)
            return
        with self.zone.inside():
            try:
                outcome: tuple[bool, Any] = (True, handler(reply))
            except Exception as e:
                outcome = (False, e)
        self._deliver(reply.id, outcome)
        del outcome  # an error's traceback holds this frame: no cycle (see ``wait``)

    def _refused(self, message: Message) -> None:
        """``message`` was sent after the link ended."""
        if isinstance(message, Call | Reply) and self.peer and self.peer not in self.zone.links:
            # Encoding it may have granted the peer references after the zone
            # settled its counts; nothing will release them now but this.
            self.zone.peer_lost(self.peer)
        if isinstance(message, Reply):
            return  # its caller is gone with the link: nobody to tell
        raise self._closed_error()

    def _closed_error(self) -> RpcError:
        why = f": {self._why.message}" if self._why is not None and self._why.message else ""
        # The frame that found the link closed for what it let pile up is told so.
        kind = LimitExceeded if self._overflowed else TransportError
        return kind(f"the link from zone {self.zone.name!r} is closed{why}")

    def _fail(self, error: CanopyError, *, clean: bool = False) -> None:
        """The link is over for this zone: pending calls fail, the peer's references go."""
        with self._plock:
            if self.closed:
                return
            self.closed = True
        self._why = error
        self._root = None
        pending, self._handlers = self._handlers, {}
        self._cancel(list(pending), error)
        if self._registered:
            self._registered = False
            if self.zone.links.get(self.peer) is self:
                self.zone.peer_lost(self.peer)
        if clean or isinstance(error, CallCancelled):
            log.debug("%r closed", self)
        else:
            log.warning("%r failed: %s", self, error)

    def _cancelled(self, call_id: int, error: CanopyError) -> CanopyError:
        return type(error)(f"call {call_id} to zone {self.peer:#x} got no reply: {error}")

    def _abandon(self, call_id: int, timeout: float) -> RpcError:
        """Give up on call ``call_id``: tell the callee, and drop its reply if one comes."""
        self._abandoned.add(call_id)
        with contextlib.suppress(CanopyError):
            self.send(Cancel(call_id))
        return CallTimeout(f"no reply from zone {self.peer:#x} within {timeout:g} s")

    def _poke(self, dead_after: float = DEAD_AFTER) -> None:
        """Make the peer send something (a Pong), so that a thread blocked reading wakes;
        if nothing at all arrives within ``dead_after`` seconds the link is dead."""
        if self.closed:
            return
        poked = time.monotonic()
        with contextlib.suppress(CanopyError):
            self.send(Ping(next(self._pings)))

        def check() -> None:
            # A link that holds the peer's messages back is not reading its answer.
            if not self.closed and self._received_at < poked and not self.queued:
                self.abort(f"the peer sent nothing for {dead_after:g} s after a ping")

        self._schedule(poked + dead_after, check)

    def _start_keepalive(self) -> None:
        if self.keepalive is not None:
            self._schedule(time.monotonic() + self.keepalive, self._keepalive)
        if self.idle_timeout is not None:
            self._schedule(self._received_at + self.idle_timeout, self._idle)

    def _keepalive(self) -> None:
        """Ping a link silent for ``keepalive`` seconds; one silent for as long again after
        it is dead (``_poke``). A quiet side that is not reading pings every ``keepalive``
        seconds all the same, unasked: its answers wait unread for its next call, and
        the peer learns it is there (see ``idle_timeout``)."""
        interval = self.keepalive
        if self.closed or interval is None:
            return
        now = time.monotonic()
        if self.protocol.quiet and not self._hears():
            with contextlib.suppress(CanopyError):
                self.send(Ping(next(self._pings)))
            self._schedule(now + interval, self._keepalive)
        elif (
            now - self._received_at >= interval
            and self._hears()
            and not self.protocol.peer_quiet
            and not self.queued  # busy with what the peer sent, maybe not reading it
        ):
            self._poke(interval)
            self._schedule(now + 2 * interval, self._keepalive)
        else:
            self._schedule(max(self._received_at, now - interval) + interval, self._keepalive)

    def _idle(self) -> None:
        """Close a link whose peer has sent nothing for ``idle_timeout`` seconds. Time this
        side spent not reading (its queue full, see ``max_queued_messages``) is not the
        peer's silence."""
        timeout = self.idle_timeout
        if self.closed or timeout is None:
            return
        if self.queued and not self._sending:
            self._received_at = time.monotonic()
        silent = time.monotonic() - self._received_at
        if silent < timeout:
            self._schedule(self._received_at + timeout, self._idle)
            return
        # A peer that does not read can leave this side stuck writing to it, and so
        # not reading it either: that is no excuse.
        stuck = f", and has not taken the {self._sending} bytes sent it" if self._sending else ""
        self.abort(
            f"the peer sent nothing for {silent:.3g} s{stuck} (idle_timeout={timeout:g} s)",
            ErrorCode.CALL_TIMEOUT,
        )

    def _overflow(self, pending: int, *, posted: bool = False) -> None:
        """``pending`` bytes wait for a peer that takes none: the link is closed before
        it holds any more (``max_pending_write_bytes``). ``posted``: by an asyncio post,
        whose poster had a way to wait."""
        self._overflowed = True
        how = "they are posted" if posted else "it asks for them"
        hint = "; await canopy.adrain(proxy) every few posts to go at its pace" if posted else ""
        self.abort(
            f"{pending} bytes wait to be written to zone {self.peer:#x}, which does not "
            f"read them as fast as {how} (max_pending_write_bytes={self._max_pending}){hint}",
            ErrorCode.LIMIT_EXCEEDED,
        )

    def _ending(self, reason: str, code: ErrorCode | None) -> list[Event]:
        """End the protocol: with a ``Refuse`` saying why when ``code`` is given, the
        events of its end to handle."""
        with self._plock:
            if code is None:
                self.protocol.abort(reason)
            else:
                self.protocol.refuse(code, reason)
            return self.protocol.events()

    # -- what each form does its own way

    @property
    def queued(self) -> int:
        """Calls and posts read from the peer and waiting to run."""
        raise NotImplementedError

    @property
    def unwritten(self) -> int:
        """Bytes of frames for the peer that the stream has not taken yet: what the
        protocol holds, and a write in progress (which a layer such as WebSocket may
        hold part of itself until its own write ends)."""
        return self.protocol.buffered + self._sending

    async def drained(self) -> None:
        """Return once the link holds at most ``POST_HIGH_WATER`` unwritten bytes, as
        ``asyncio.StreamWriter.drain`` does; ``TransportError`` if the link is closed."""
        raise NotImplementedError

    def send(self, message: Message) -> None:
        raise NotImplementedError

    def wait(self, call_id: int, timeout: float | None = None) -> Any:
        raise NotImplementedError

    async def wait_async(self, call_id: int, timeout: float | None = None) -> Any:
        raise NotImplementedError

    def _dispatch(self, d: Dispatch) -> None:
        raise NotImplementedError

    def _deliver(self, call_id: int, outcome: tuple[bool, Any]) -> None:
        raise NotImplementedError

    def _cancel(self, pending: list[int], error: CanopyError) -> None:
        raise NotImplementedError

    def _handshake_done(self) -> None:
        raise NotImplementedError

    def _schedule(self, when: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` at ``time.monotonic()`` ``when``, where this form runs such things."""
        raise NotImplementedError

    def _hears(self) -> bool:
        """Whether someone reads the stream now, so that a Pong would be seen."""
        raise NotImplementedError

    def _stale(self, old: Any) -> bool:
        """Whether ``old``, this zone's link to the peer this one just reached, turns
        out to have ended when asked. Here: only if it knows it has (a reader always
        runs, and sees its stream end as soon as it does)."""
        return bool(old.closed)

    def close(self) -> None:
        """Say goodbye, fail what is pending and release the peer's references."""
        raise NotImplementedError

    def abort(self, reason: str, code: ErrorCode | None = None) -> None:
        """End the link at once, without a goodbye: the peer sees the stream fail, after
        a ``Refuse`` with ``code`` and ``reason`` if ``code`` is given."""
        raise NotImplementedError

    def _expire(self, timeout: float) -> None:
        if not self.peer and not self.closed:
            # The accepting side tells a connecting one why; the other way round the
            # peer is not waiting for anything but a Hello.
            accepting = self.protocol.role is Role.ACCEPTING
            code = ErrorCode.CALL_TIMEOUT if accepting else None
            self.abort(f"the handshake did not complete within {timeout:g} s", code)


class BlockingStreamLink(StreamLink):
    """A stream link whose callers block; see the module's theory of operation."""

    stream: Stream

    def __init__(
        self,
        zone: Service,
        stream: Stream,
        role: Role,
        *,
        root: Any = None,
        root_interface: int = 0,
        encodings: tuple[Encoding, ...] = ENCODINGS,
        close_timeout: float = CLOSE_TIMEOUT,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        keepalive: float | None = KEEPALIVE,
        idle_timeout: float | None = None,
        on_end: Callable[[StreamLink], None] | None = None,
    ) -> None:
        super().__init__(
            zone,
            role,
            root=root,
            root_interface=root_interface,
            encodings=encodings,
            close_timeout=close_timeout,
            call_timeout=call_timeout,
            keepalive=keepalive,
            idle_timeout=idle_timeout,
            on_end=on_end,
        )
        self.stream = stream
        self._cond = threading.Condition(threading.Lock())
        self._reading = False  # a thread holds the read role
        self._outcomes: dict[int, tuple[bool, Any]] = {}
        self._wlock = threading.Lock()  # the stream's write side
        self._dirty = True  # the protocol may hold bytes to write (a Hello at first)
        self._always_read = role is Role.ACCEPTING
        self._readers = 0  # background reader threads free to take the read role
        self._delivered = False  # the last read delivered an outcome: wake its waiter
        self._sleepers = 0  # threads waiting on ``_cond``: nobody to wake, no notify
        self._reader_started = False
        self._queue: deque[Dispatch] = deque()  # calls and posts, in link order
        self._qlock = threading.Lock()
        self._draining = False
        self._held_back = False  # the queue is full: background readers wait for room
        self._pool: Workers | None = None
        self._stream_closed = False
        self._closing = False
        self._timer: threading.Timer | None = None

    # -- opening

    def open(self, timeout: float = HANDSHAKE_TIMEOUT) -> None:
        """Connecting side: send Hello and read until the handshake is done."""
        self._flush()
        self._lead_until(
            lambda: bool(self.peer) or self.closed,
            time.monotonic() + timeout,
            lambda: self._expire(timeout),
        )
        if not self.peer or self.closed:
            why = self._why or TransportError("the handshake did not complete")
            raise type(why)(f"could not link zone {self.zone.name!r}: {why}")
        self._maybe_read_in_background()

    def start(self, timeout: float = HANDSHAKE_TIMEOUT, *, left: float | None = None) -> None:
        """Accepting side: read the connection on a thread of its own from now on. The
        handshake must end within ``timeout``, or within ``left`` when the stream's
        own handshakes (TLS, WebSocket) have used the rest of it."""
        wait = timeout if left is None else left
        self._timer = threading.Timer(wait, self._expire, (timeout,))
        self._timer.daemon = True
        self._timer.start()
        self._start_reader()

    def _handshake_done(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._start_keepalive()

    def _schedule(self, when: float, fn: Callable[[], None]) -> None:
        WATCHDOG.at(when, fn)

    def _hears(self) -> bool:
        # An idle blocking client reads nobody's replies: it learns of a dead peer
        # at its next call, and has nothing pending meanwhile.
        return self._reading or self._wants_reader()

    def _stale(self, old: Any) -> bool:
        """Ask ``old``: an idle blocking client has not read the end of a connection
        that dropped, so reconnecting would find it still there. Such a link is poked
        and read until its peer answers (an accepting link always reads: a live one
        does, and this link is refused) or its stream ends; a peer gone silently is
        declared dead by the poke within ``DEAD_AFTER`` s. Other links read always."""
        if (
            old.closed
            or not isinstance(old, BlockingStreamLink)
            or old.protocol.role is not Role.CONNECTING
        ):
            return bool(old.closed)
        poked = time.monotonic()
        old._poke()
        old._lead_until(
            lambda: old.closed or old._received_at > poked, poked + DEAD_AFTER, wake=False
        )
        return bool(old.closed)

    # -- the Link protocol

    def send(self, message: Message) -> None:
        with self.zone.inside():
            with self._plock:
                open_ = self.protocol.state is State.OPEN
                if open_:
                    self.protocol.send(message)
                    self._dirty = True
                    held = self.protocol.buffered
            if not open_:
                self._refused(message)
                return
            if self._sending and held + self._sending > self._max_pending:
                self._overflow(held + self._sending)  # a write is stuck on the peer
                self._refused(message)
            elif type(message) is not Post:
                self._flush()
            elif held > POST_HIGH_WATER:
                self._flush(wait=True)  # the peer reads slower than this side posts
            else:
                # Nobody waits on a post: it goes out with whatever follows it soon,
                # in one system call (the next call's frame, or the flusher's write).
                FLUSHER.want(self)

    def wait(self, call_id: int, timeout: float | None = None) -> Any:
        if timeout is None:
            self._lead_until(lambda: call_id not in self._handlers)
        else:
            # A reader blocked on the socket cannot see the deadline pass: the watchdog
            # pokes the peer then, and the answer wakes the reader.
            deadline = time.monotonic() + timeout
            token = WATCHDOG.at(deadline, self._poke)
            try:
                self._lead_until(lambda: call_id not in self._handlers, deadline, wake=False)
            finally:
                WATCHDOG.cancel(token)
            if call_id in self._handlers and not self.closed:
                error = self._abandon(call_id, timeout)
                if call_id not in self._outcomes:  # or the reply came in meanwhile
                    try:
                        raise error
                    finally:
                        del error  # see below
                self._abandoned.discard(call_id)
        outcome = self._outcomes.pop(call_id, None)
        if outcome is None:
            why = "the link closed" if self.closed else "the call was never sent"
            raise CallCancelled(f"call {call_id} to zone {self.peer:#x} got no reply: {why}")
        ok, value = outcome
        if ok:
            return value
        del outcome
        try:
            raise value
        finally:
            # The error's traceback holds this frame, and through it the caller's (a
            # call's arguments): were this frame to hold the error, that cycle would
            # keep them alive until the collector ran.
            del value

    async def wait_async(self, call_id: int, timeout: float | None = None) -> Any:
        raise RuntimeError(f"{self!r} is a blocking link: its replies are waited for, not awaited")

    def _deliver(self, call_id: int, outcome: tuple[bool, Any]) -> None:
        if call_id in self._abandoned:
            self._abandoned.discard(call_id)
            self._handlers.pop(call_id, None)
            return  # its caller gave up; what the reply held is released with it
        # The outcome is stored before the handler goes: a waiter that finds the
        # handler gone then always finds its outcome.
        self._outcomes[call_id] = outcome
        self._handlers.pop(call_id, None)
        self._delivered = True

    def _cancel(self, pending: list[int], error: CanopyError) -> None:
        for call_id in pending:
            self._outcomes[call_id] = (False, self._cancelled(call_id, error))
        with self._cond:
            self._cond.notify_all()
        with self._qlock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()  # what runs finishes; its replies go nowhere

    async def drained(self) -> None:
        # A blocking poster waits as it posts, past POST_HIGH_WATER: this waits the same
        # way, for a write in progress on another thread too (an ``async def``
        # implementation served by the blocking runtime blocks its thread, as its
        # calls do).
        if self.unwritten > POST_HIGH_WATER and not self.closed:
            with self._wlock:
                pass  # the write in progress has ended
            self._flush(wait=True)
        if self.closed:
            raise self._closed_error()

    # -- reading: leader and followers

    def _lead_until(
        self,
        done: Callable[[], bool],
        deadline: float | None = None,
        on_expiry: Callable[[], None] | None = None,
        *,
        wake: bool = True,
    ) -> None:
        """Return once ``done()``: reading the stream while nobody else does, waiting
        for the reader otherwise. Past ``deadline``, ``on_expiry`` runs (it must end
        the link or make ``done()`` true) and this returns. A reader blocked past the
        deadline is woken by closing the stream, unless ``wake`` is false (someone
        else makes the peer send something)."""
        cond = self._cond
        with cond:
            while not done():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                if self._reading:
                    self._sleepers += 1
                    try:
                        cond.wait(remaining)
                    finally:
                        self._sleepers -= 1
                    continue
                if self._stream_closed:
                    break
                self._reading = True
                cond.release()
                timer = None
                if remaining is not None and wake:
                    # Only closing the stream wakes a thread blocked reading it.
                    timer = threading.Timer(remaining, on_expiry or self._close_stream)
                    timer.daemon = True
                    timer.start()
                try:
                    self._read_once()
                finally:
                    if timer is not None:
                        timer.cancel()
                    cond.acquire()
                    self._reading = False
                    if self._sleepers:
                        cond.notify_all()
                if self._queue and self._take_drain():
                    # A caller's thread never runs implementations: the pool does.
                    self._submit(self._drain, None)
        if not done() and on_expiry is not None:
            on_expiry()
        self._maybe_read_in_background()

    def _read_once(self) -> None:
        """Read one chunk and handle every event in it, in order."""
        why = ""
        try:
            data: bytes | None = self.stream.receive(_read_size(self.protocol.pending))
        except OSError as e:
            data, why = None, str(e) or type(e).__name__
        self._received_at = time.monotonic()
        with self.zone.inside():
            with self._plock:
                if data is None:
                    self.protocol.abort(f"the stream failed: {why}")
                else:
                    self.protocol.receive_data(data)
                events = self.protocol.events()
                ended = self.protocol.state is State.CLOSED
            self._handle(events)
            if ended:
                self._close_stream()
            elif self.protocol.wants_write:
                self._dirty = True  # the protocol answered by itself (a Welcome, a Pong)
                self._flush()

    def _wants_reader(self) -> bool:
        return self._always_read or (self._registered and self.zone.holds(self.peer))

    def _maybe_read_in_background(self) -> None:
        if self.closed or not self._wants_reader():
            return
        if not self._reader_started:
            self._start_reader()
        elif not self._reading:
            with self._cond:
                self._cond.notify_all()  # the reader sleeps until told to look again

    def _start_reader(self) -> None:
        with self._cond:
            if self._reader_started:
                return
            self._reader_started = True
            self._readers += 1
        self._new_reader()

    def _new_reader(self) -> None:
        """Start one more background reader; the caller has counted it in ``_readers``."""
        threading.Thread(
            target=self._read_in_background, name=f"canopy-read-{self.zone.name}", daemon=True
        ).start()

    def _read_in_background(self) -> None:
        """A background reader: leader and followers. The thread that reads a call or a
        post runs it itself, with no hand-over to another thread on the way to its
        reply. It lets the read role go first, and wakes nobody to take it: a nested
        call from the implementation reads for itself, and should the run go on for
        long (a slow call, one that blocks) ``STALLS`` has another thread take over,
        so the link is never left unread for more than a moment."""
        cond = self._cond
        try:
            while True:
                with cond:
                    # A full queue holds reading back (a caller waiting for its reply
                    # still reads): the peer's posts wait in its socket, not here.
                    while (
                        self._reading
                        or not (self._wants_reader() or self._stream_closed)
                        or (self._held_back and not self._stream_closed)
                    ):
                        self._sleepers += 1
                        try:
                            cond.wait()
                        finally:
                            self._sleepers -= 1
                    if self._stream_closed:
                        self._readers -= 1
                        return
                    self._reading = True
                    self._delivered = False
                try:
                    self._read_once()
                except Exception:
                    log.exception("%r: reading failed", self)
                    self.abort("the reader failed")
                finally:
                    with cond:
                        self._reading = False
                        if self._sleepers and (self._delivered or not self._queue):
                            cond.notify_all()  # callers waiting for an outcome or to read
                if not (self._queue and self._take_drain()):
                    continue
                with cond:
                    self._readers -= 1
                run = STALLS.begin(self._stalled)
                try:
                    self._drain()
                finally:
                    STALLS.end(run)
                    with cond:
                        leave = self._readers >= 2  # enough others wait to read
                        if not leave:
                            self._readers += 1
                if leave:
                    return
        finally:
            close_thread_loop()  # the loop it may have made for ``async def`` implementations

    def _stalled(self) -> None:
        """A reader has been running what it read for a while: someone else reads."""
        with self._cond:
            if self._stream_closed:
                return
            start = self._readers == 0 and self._wants_reader()
            if start:
                self._readers += 1
            self._cond.notify_all()
        if start:
            self._new_reader()

    # -- writing

    def _flush(self, *, wait: bool = False) -> None:
        """Write what the protocol holds, unless another thread is writing: it will. With
        ``wait``, wait for that thread and then write: this thread is held back to the
        pace at which the peer reads."""
        while self._dirty:
            if not self._wlock.acquire(blocking=wait):
                return
            failed = ""
            try:
                with self._plock:
                    data = self.protocol.data_to_send()
                    self._dirty = False
                if data:
                    self._sending = len(data)
                    self.stream.send(data)
            except OSError as e:
                # Only its text: the error's traceback holds this frame, and the frames
                # that called it (a call's arguments), which a reference to the error
                # from here would keep alive in a cycle until the collector ran.
                failed = str(e) or type(e).__name__
            finally:
                self._sending = 0
                self._wlock.release()
            if failed:
                self.abort(f"the stream failed: {failed}")
                return

    def _close_stream(self) -> None:
        """Write what is left (a CloseAck, a Refuse) and close the stream; idempotent."""
        with self._cond:
            if self._stream_closed:
                return
            self._stream_closed = True
            self._cond.notify_all()
        with self.zone.inside():
            # A writer stuck on a peer that does not read must not hold the close up;
            # one that let too much pile up is not waited for at all.
            if self._overflowed:
                with self._plock:
                    self.protocol.data_to_send()  # dropped: the peer would not take it
            elif self._wlock.acquire(timeout=self.close_timeout):
                try:
                    with self._plock:
                        data = self.protocol.data_to_send()
                    if data:
                        with contextlib.suppress(OSError):
                            self.stream.send(data)
                finally:
                    self._wlock.release()
        self.stream.close()
        if self._timer is not None:
            self._timer.cancel()
        if self._on_end is not None:
            self._on_end(self)

    # -- running calls and posts

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _dispatch(self, d: Dispatch) -> None:
        # Queued only: whoever read it runs the queue once it has let the read role go.
        with self._qlock:
            self._queue.append(d)
            if len(self._queue) >= self._high:
                self._held_back = True

    def _take_drain(self) -> bool:
        """Claim the role of running the queue, if work waits and nobody runs it."""
        with self._qlock:
            if self._draining or not self._queue:
                return False
            self._draining = True
            return True

    def _drain(self) -> None:
        while True:
            with self._qlock:
                if not self._queue:
                    self._draining = False
                    return
                d = self._queue.popleft()
                resume = self._held_back and len(self._queue) <= self._high // 4
                if resume:
                    self._held_back = False
                post = d.call_id is None
                # A call with nothing behind it runs right here: handing it to
                # another thread would only add a wake-up to its round trip.
                alone = not post and not self._queue
                if alone:
                    self._draining = False
            if resume:
                with self._cond:
                    self._received_at = time.monotonic()  # not reading was this side's doing
                    self._cond.notify_all()
            # Handed over in a box that _run empties: no frame here keeps the call's
            # arguments alive after it ran (they may be the last references).
            box = [d]
            del d
            if post or alone:
                self._run(box)
                if alone:
                    return
            else:
                self._submit(self._run, box)

    def _submit(self, fn: Callable[..., None], box: list[Dispatch] | None) -> None:
        pool = self._pool
        if pool is None:
            with self._qlock:
                if self._pool is None and not self.closed:
                    # Every call the zone admits gets a thread (and the posts one more),
                    # so one blocked in a nested call never starves its callback.
                    self._pool = Workers(
                        f"canopy-{self.zone.name}", self.zone.limits.max_calls_in_flight + 1
                    )
                pool = self._pool
        try:
            if pool is None:
                raise RuntimeError("the link is closed")
            if box is None:
                pool.submit(fn)
            else:
                pool.submit(fn, box)
        except RuntimeError:  # the link closed and its pool with it
            with self._qlock:
                dropped = [*self._queue, *(box or [])]
                self._queue.clear()
                self._draining = False
            for gone in dropped:
                if gone.call_id is not None:
                    gone.zone.complete(gone, error=CallCancelled("the link closed"))

    def _run(self, box: list[Dispatch]) -> None:
        d = box.pop()
        try:
            self.zone.mode.dispatch(d)
        except Exception:
            what = d.plan.qualified_name if d.plan is not None else "a request passed on"
            log.exception("%r: dispatching %s failed", self, what)
        del d  # its arguments are released now, after the reply: acquire before release
        if not self._always_read:
            # A call that returned an object gave the peer a reference: from now on
            # the peer may call in, so someone must read.
            self._maybe_read_in_background()

    # -- ending

    def close(self) -> None:
        """Say goodbye, fail what is pending, release the peer's references, and close
        the stream once the peer has acknowledged (or after ``close_timeout``)."""
        self.begin_close()
        self.end_close(time.monotonic() + self.close_timeout)

    def begin_close(self) -> None:
        with self._cond:
            if self._closing:
                return
            self._closing = True
        with self.zone.inside():
            with self._plock:
                if self.protocol.state in (State.OPEN, State.HANDSHAKE):
                    self.protocol.close()
                    self._dirty = True
            self._flush()
        self._fail(CallCancelled("the link was closed"))

    def end_close(self, deadline: float) -> None:
        if not self._always_read:
            # The accepting side always reads, so its acknowledgement comes at once. The
            # other way round a blocking client reads only while it calls: a server
            # does not wait on idle clients, whose next read finds Close, then the end.
            self._lead_until(
                lambda: self.protocol.state is State.CLOSED or self._stream_closed, deadline
            )
        self._close_stream()

    def abort(self, reason: str, code: ErrorCode | None = None) -> None:
        with self.zone.inside():
            self._handle(self._ending(reason, code))
        self._close_stream()


class _Flusher:
    """Writes the posts of blocking links, a batch at a time, on a thread of its own.

    A post written by the thread that posts it costs a system call per post; left in
    its link's protocol, it goes out with the next frame that thread writes, or with
    the flusher's next write: one wake-up of this thread per batch, not per post.
    Posts keep their order, as every frame of a link passes through its protocol.
    Links with posts still unwritten when the interpreter exits are flushed then.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._links: dict[BlockingStreamLink, None] = {}  # in the order they asked
        self._started = False

    def want(self, link: BlockingStreamLink) -> None:
        if link in self._links:
            return  # already asked for, and not yet flushed: it will be
        with self._cond:
            self._links[link] = None
            if not self._started:
                self._started = True
                threading.Thread(target=self._run, name="canopy-flusher", daemon=True).start()
                atexit.register(self.flush_all)
            self._cond.notify()

    def flush_all(self) -> None:
        with self._cond:
            links, self._links = list(self._links), {}
        for link in links:
            link._flush()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._links:
                    self._cond.wait()
            self.flush_all()


FLUSHER = _Flusher()


class AsyncStreamLink(StreamLink):
    """A stream link on an asyncio loop: a reader task feeds the protocol, a writer task
    writes whatever the iteration queued in one go."""

    stream: AsyncStream

    def __init__(
        self,
        zone: Service,
        stream: AsyncStream,
        role: Role,
        *,
        root: Any = None,
        root_interface: int = 0,
        encodings: tuple[Encoding, ...] = ENCODINGS,
        close_timeout: float = CLOSE_TIMEOUT,
        call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
        keepalive: float | None = KEEPALIVE,
        idle_timeout: float | None = None,
        on_end: Callable[[StreamLink], None] | None = None,
    ) -> None:
        super().__init__(
            zone,
            role,
            root=root,
            root_interface=root_interface,
            encodings=encodings,
            close_timeout=close_timeout,
            call_timeout=call_timeout,
            keepalive=keepalive,
            idle_timeout=idle_timeout,
            on_end=on_end,
        )
        self.stream = stream
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self._opening: asyncio.Future[None] = self._loop.create_future()
        self._wake = asyncio.Event()
        self._wake.set()  # a Hello to write, on the connecting side
        # A stream that can write without waiting is written to from a callback at
        # the end of the loop iteration; the writer task takes over only when it
        # would have to wait (a full buffer), and whatever it holds goes first.
        self._send_nowait: Callable[[bytes], bool] | None = getattr(stream, "send_nowait", None)
        self._flush_soon = False  # a callback is scheduled to write
        self._backlog: list[bytes] = []  # taken from the protocol, for the writer task
        self._writing = False  # the writer task is in the middle of a send
        self._drainers: list[asyncio.Future[None]] = []  # awaiting ``drained``
        self._deadline: asyncio.TimerHandle | None = None
        self._writer = self._loop.create_task(self._write())
        self._reader = self._loop.create_task(self._read())

    # -- opening

    async def open(self, timeout: float = HANDSHAKE_TIMEOUT) -> None:
        """Wait for the handshake; the link is dropped if it fails or takes too long."""
        try:
            await asyncio.wait_for(asyncio.shield(self._opening), timeout)
        except TimeoutError:
            self.abort(f"the handshake did not complete within {timeout} s")
        if not self.peer or self.closed:
            why = self._why or TransportError("the handshake did not complete")
            raise type(why)(f"could not link zone {self.zone.name!r}: {why}")

    def _handshake_done(self) -> None:
        if not self._opening.done():
            self._opening.set_result(None)
        self._start_keepalive()

    def _schedule(self, when: float, fn: Callable[[], None]) -> None:
        self._loop.call_later(when - time.monotonic(), fn)

    def _hears(self) -> bool:
        return True  # the reader task always reads

    # -- the Link protocol

    def next_id(self, on_reply: Callable[[Reply], Any], waited: bool = True) -> int:
        call_id = super().next_id(on_reply, waited)
        if waited:
            self._futures[call_id] = self._loop.create_future()
        return call_id

    @property
    def queued(self) -> int:
        inbox = self.inbound
        return 0 if inbox is None else int(inbox.queue.qsize())

    @property
    def unwritten(self) -> int:
        return self.protocol.buffered + self._sending + sum(map(len, self._backlog))

    async def drained(self) -> None:
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError(f"{self!r} runs on another event loop: await drain on that one")
        while not self.closed and self.unwritten > POST_HIGH_WATER:
            waiter = self._loop.create_future()
            self._drainers.append(waiter)
            await waiter  # each write that ends, and the link's end, wake it to look again
        if self.closed:
            raise self._closed_error()

    def _written(self) -> None:
        """A write ended, or the link did: wake who awaits ``drained``."""
        drainers, self._drainers = self._drainers, []
        for waiter in drainers:
            if not waiter.done():
                waiter.set_result(None)

    def send(self, message: Message) -> None:
        with self.zone.inside():
            with self._plock:
                open_ = self.protocol.state is State.OPEN
                if open_:
                    self.protocol.send(message)
                    # Bytes pile up while a write is stuck on the peer, replies while
                    # the peer's calls are read, and posts while the poster keeps the
                    # loop (and so the writer) from running.
                    waits = self._sending or type(message) is Reply or type(message) is Post
            if not open_:
                self._refused(message)
                return
            if waits and (pending := self.unwritten) > self._max_pending:
                self._overflow(pending, posted=type(message) is Post)
                self._refused(message)
                return
            self._kick()

    def wait(self, call_id: int, timeout: float | None = None) -> Any:
        future = self._futures.get(call_id)
        if future is None or not future.done():
            raise RuntimeError(f"{self!r} is an asyncio link: await its replies (wait_async)")
        del self._futures[call_id]
        return future.result()

    async def wait_async(self, call_id: int, timeout: float | None = None) -> Any:
        future = self._futures.get(call_id)
        if future is None:
            raise CallCancelled(f"call {call_id} is unknown on this link")
        # A timer per call, not asyncio.timeout(): it costs a heap entry, no task.
        timer = (
            None
            if timeout is None
            else self._loop.call_later(timeout, self._expire_call, call_id, timeout)
        )
        try:
            return await future
        except asyncio.CancelledError:
            if future.cancelled() and self._futures.get(call_id) is future:
                self._abandon(call_id, 0)  # the caller's task was cancelled: so is the call
            raise
        finally:
            self._futures.pop(call_id, None)
            if timer is not None:
                timer.cancel()

    def _expire_call(self, call_id: int, timeout: float) -> None:
        future = self._futures.pop(call_id, None)
        if future is not None and not future.done():
            future.set_exception(self._abandon(call_id, timeout))

    def _deliver(self, call_id: int, outcome: tuple[bool, Any]) -> None:
        self._handlers.pop(call_id, None)
        self._abandoned.discard(call_id)
        future = self._futures.get(call_id)
        if future is not None and not future.done():
            ok, value = outcome
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _cancel(self, pending: list[int], error: CanopyError) -> None:
        for call_id, future in list(self._futures.items()):
            if not future.done():
                future.set_exception(self._cancelled(call_id, error))
        if not self._opening.done():
            self._opening.set_result(None)
        self._written()  # ``drained`` raises now
        if self.consumer is not None:
            self.consumer.cancel()

    def _dispatch(self, d: Dispatch) -> None:
        self.zone.mode.dispatch(d)

    # -- the two tasks

    def _kick(self) -> None:
        if threading.get_ident() != self._thread:
            if not self._loop.is_closed():  # a proxy collected on another thread releases
                self._loop.call_soon_threadsafe(self._wake.set)
        elif self._send_nowait is None:
            self._wake.set()
        elif not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._flush_now)  # once per iteration: frames go together

    def _flush_now(self) -> None:
        self._flush_soon = False
        if self._writing or self._backlog:
            self._wake.set()  # the writer task is at it: it takes what is queued, in order
            return
        with self._plock:
            data = self.protocol.data_to_send()
        if not data or (self.closed and self._reader.done()):
            return
        assert self._send_nowait is not None  # noqa: S101 - scheduled only when it exists
        try:
            sent = self._send_nowait(data)
        except Exception as e:
            self.abort(f"the stream failed: {e or type(e).__name__}")
            return
        if not sent:
            self._backlog.append(data)
            self._wake.set()
        elif self._drainers:
            self._written()

    async def _read(self) -> None:
        try:
            while True:
                why = ""
                try:
                    data: bytes | None = await self.stream.receive(
                        _read_size(self.protocol.pending)
                    )
                except OSError as e:
                    data, why = None, str(e) or type(e).__name__
                self._received_at = time.monotonic()
                with self.zone.inside():
                    with self._plock:
                        if data is None:
                            self.protocol.abort(f"the stream failed: {why}")
                        else:
                            self.protocol.receive_data(data)
                        events = self.protocol.events()
                        ended = self.protocol.state is State.CLOSED
                    self._handle(events)
                if self._flush_soon:
                    # Replies of the calls just read (and a Welcome, a Pong) go now, in
                    # one write, not one loop iteration later.
                    self._flush_now()
                elif self.protocol.wants_write:
                    self._kick()  # the protocol answered by itself (Welcome, Pong)
                if ended:
                    break
                inbox = self.inbound
                if inbox is not None and inbox.queue.qsize() >= self._high:
                    # The peer's posts wait in its socket, not here: TCP holds it back.
                    await inbox.room(self._high // 4)
                    self._received_at = time.monotonic()  # not reading was this side's doing
        except asyncio.CancelledError:
            # Cancelled by ``abort`` or by the close deadline: end without a goodbye.
            self._end("the link was closed", None)
        except Exception:
            log.exception("%r: reading failed", self)
            self._end("the reader failed", None)
        finally:
            await self._shutdown()

    def _end(self, reason: str, code: ErrorCode | None) -> None:
        with self.zone.inside():
            self._handle(self._ending(reason, code))

    async def _write(self) -> None:
        wake = self._wake
        while True:
            await wake.wait()
            wake.clear()
            self._writing = True
            try:
                while True:
                    with self._plock:
                        data = self.protocol.data_to_send()
                    if self._backlog:
                        data = b"".join([*self._backlog, data])
                        self._backlog.clear()
                    if not data:
                        break
                    self._sending = len(data)
                    await self.stream.send(data)
                    self._sending = 0
                    if self._drainers:
                        self._written()
            except Exception as e:
                self.abort(f"the stream failed: {e or type(e).__name__}")
                return
            finally:
                self._sending = 0
                self._writing = False

    async def _shutdown(self) -> None:
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        with self._plock:
            data = b"".join([*self._backlog, self.protocol.data_to_send()])
        self._backlog.clear()
        drop = getattr(self.stream, "abort", None) if self._overflowed else None
        if drop is not None:
            drop()  # what the peer would not read goes, with no wait for it
        elif data and not self._overflowed:
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(self.stream.send(data), self.close_timeout)
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.stream.close(), self.close_timeout)
        if self._deadline is not None:
            self._deadline.cancel()
        if self._on_end is not None:
            self._on_end(self)

    # -- ending

    def close(self) -> None:
        """Say goodbye, fail what is pending and release the peer's references now; the
        stream closes once the peer acknowledges (``wait_closed``) or after
        ``close_timeout``."""
        with self.zone.inside(), self._plock:
            if self.protocol.state in (State.OPEN, State.HANDSHAKE):
                self.protocol.close()
        self._kick()
        self._fail(CallCancelled("the link was closed"))
        if self.protocol.role is Role.ACCEPTING:
            # As in the blocking form, a server does not wait for idle clients to
            # acknowledge: ending the reader writes the goodbye and closes the stream.
            self._reader.cancel()
        elif self._deadline is None and not self._reader.done():
            self._deadline = self._loop.call_later(self.close_timeout, self._reader.cancel)

    def abort(self, reason: str, code: ErrorCode | None = None) -> None:
        self._end(reason, code)
        if not self._reader.done():
            self._reader.cancel()

    async def wait_closed(self) -> None:
        """Wait until the stream is closed and the link's tasks have ended."""
        await asyncio.wait([self._reader])
        if self.consumer is not None:
            await asyncio.wait([self.consumer])


# ---------------------------------------------------------------- opening links


def connect(
    zone: Service,
    url: str | Stream,
    *,
    root: Any = None,
    root_interface: int = 0,
    encodings: tuple[Encoding, ...] = ENCODINGS,
    timeout: float | None = None,
    options: Layering = NO_OPTIONS,
    call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
    keepalive: float | None = KEEPALIVE,
) -> BlockingStreamLink:
    """Link ``zone`` to the server at ``url``, or over a ``Stream`` already open to a
    zone that accepts it, offering ``root`` if given (blocking)."""
    timeout = HANDSHAKE_TIMEOUT if timeout is None else timeout
    if isinstance(url, str):
        try:
            stream = open_stream(url, timeout=timeout, options=options)
        except OSError as e:
            raise TransportError(f"cannot connect to {url}: {e}") from e
    else:
        stream = url
    link = BlockingStreamLink(
        zone,
        stream,
        Role.CONNECTING,
        root=root,
        root_interface=root_interface,
        encodings=encodings,
        call_timeout=call_timeout,
        keepalive=keepalive,
    )
    try:
        link.open(timeout)
    except BaseException:
        link.abort("the link did not open")
        raise
    return link


async def aconnect(
    zone: Service,
    url: str | AsyncStream,
    *,
    root: Any = None,
    root_interface: int = 0,
    encodings: tuple[Encoding, ...] = ENCODINGS,
    timeout: float | None = None,
    options: Layering = NO_OPTIONS,
    call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
    keepalive: float | None = KEEPALIVE,
) -> AsyncStreamLink:
    """Link ``zone`` to the server at ``url``, or over an ``AsyncStream`` already open
    to a zone that accepts it, offering ``root`` if given (asyncio)."""
    timeout = HANDSHAKE_TIMEOUT if timeout is None else timeout
    if isinstance(url, str):
        try:
            stream = await asyncio.wait_for(open_async_stream(url, options=options), timeout)
        except (OSError, TimeoutError) as e:
            raise TransportError(f"cannot connect to {url}: {e or 'timed out'}") from e
    else:
        stream = url
    link = AsyncStreamLink(
        zone,
        stream,
        Role.CONNECTING,
        root=root,
        root_interface=root_interface,
        encodings=encodings,
        call_timeout=call_timeout,
        keepalive=keepalive,
    )
    try:
        await link.open(timeout)
    except BaseException:
        link.abort("the link did not open")
        await link.wait_closed()
        raise
    return link


def accept(
    zone: Service,
    stream: Stream,
    *,
    root: Any,
    root_interface: int,
    encodings: tuple[Encoding, ...] = ENCODINGS,
    timeout: float | None = None,
    call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
    keepalive: float | None = KEEPALIVE,
) -> BlockingStreamLink:
    """Serve ``root`` to the zone at the other end of ``stream``, which connects over
    it; the link reads on a thread of its own (blocking)."""
    link = BlockingStreamLink(
        zone,
        stream,
        Role.ACCEPTING,
        root=root,
        root_interface=root_interface,
        encodings=encodings,
        call_timeout=call_timeout,
        keepalive=keepalive,
    )
    link.start(HANDSHAKE_TIMEOUT if timeout is None else timeout)
    return link


def aaccept(
    zone: Service,
    stream: AsyncStream,
    *,
    root: Any,
    root_interface: int,
    encodings: tuple[Encoding, ...] = ENCODINGS,
    timeout: float | None = None,
    call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
    keepalive: float | None = KEEPALIVE,
) -> AsyncStreamLink:
    """Serve ``root`` to the zone at the other end of ``stream``, which connects over
    it, on the running loop (asyncio)."""
    link = AsyncStreamLink(
        zone,
        stream,
        Role.ACCEPTING,
        root=root,
        root_interface=root_interface,
        encodings=encodings,
        call_timeout=call_timeout,
        keepalive=keepalive,
    )
    timeout = HANDSHAKE_TIMEOUT if timeout is None else timeout
    asyncio.get_running_loop().call_later(timeout, link._expire, timeout)
    return link
