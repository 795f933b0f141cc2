"""Zones: the service each zone runs, dispatching calls to its objects and counting
the references other zones hold.

A zone is the same for both modes. What differs is small and lives in
``Mode``: how an implementation's method is run (called, or awaited) and how a
caller waits for its reply. Messages come in through ``receive`` from a link
and go out through ``Link.send``; nothing here knows whether a link is a
function call, a socket or shared memory.

Releases of proxies that Python garbage-collects are queued and sent at the
next safe point (at once when the collecting thread is not inside the zone),
never from inside a destructor while the tables are being changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import msgspec

from canopy import telemetry
from canopy.errors import (
    ApplicationError,
    CallTimeout,
    CanopyError,
    ErrorCode,
    IncompatibleSerialisation,
    InvalidData,
    LimitExceeded,
    ObjectGone,
    RpcError,
    TransportError,
)
from canopy.generated import Interface
from canopy.runtime._marshal import deeper_than, ref_reader, to_refs
from canopy.runtime._plans import MethodPlan, implemented, interface_of, plan
from canopy.runtime._tables import OPTIMISTIC, SHARED, RemoteObject, Stub, Tables
from canopy.wire import (
    NO_PAYLOAD,
    AddRef,
    Call,
    Cancel,
    Encoding,
    GetSchema,
    Limits,
    Message,
    NewZoneId,
    ObjectRef,
    ObjectReleased,
    Post,
    Release,
    Reply,
    TransportDown,
    TryCast,
    encoding_of,
)
from canopy.wire import Protocol as Endpoint
from canopy.wire._messages import Passed
from canopy.wire.codecs import payload_codec

log = logging.getLogger("canopy.runtime")


class _ZoneIds:
    """The process's one zone-id allocator: a random 32-bit prefix and a counter, so
    that roots of different processes never hand out the same id. A forked child
    draws a prefix of its own (a pre-forking server's workers are different zones)."""

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self.prefix = int.from_bytes(os.urandom(4), "little") << 32
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            return self.prefix | next(self._counter)


ZONE_IDS = _ZoneIds()


class Link(Protocol):
    """What a zone needs of a link to a peer zone."""

    peer: int  # the zone at the other end
    protocol: Endpoint  # the link's protocol endpoint: its encodings, among others
    call_timeout: float | None  # seconds a call waits for its reply; None: no limit

    @property
    def info(self) -> Mapping[str, Any]:
        """What the link knows of the other end (a stream's address, TLS identity...)."""
        ...

    inbound: Any  # asyncio mode: the mode's inbox of calls and posts, in order
    consumer: asyncio.Task[None] | None

    def send(self, message: Message) -> None: ...

    def next_id(self, on_reply: Callable[[Reply], Any], waited: bool = True) -> int:
        """A new request id; ``on_reply`` turns its reply into the caller's result the
        moment the reply arrives, in link order (before any message sent after it).
        ``waited=False``: nobody waits for it, ``on_reply`` is all that happens."""
        ...

    def wait(self, call_id: int, timeout: float | None = None) -> Any:
        """The outcome of call ``call_id``; ``CallTimeout`` after ``timeout`` seconds."""
        ...

    async def wait_async(self, call_id: int, timeout: float | None = None) -> Any: ...

    async def drained(self) -> None:
        """Return once the link holds no more unwritten frames than a stream link lets
        a poster leave (``POST_HIGH_WATER``), at once when it buffers nothing;
        ``TransportError`` if the link is closed."""
        ...


class Mode(Protocol):
    name: str

    def proxy_method(self, p: MethodPlan) -> Callable[..., Any]: ...

    def dispatch(self, d: Dispatch) -> None: ...


_chosen: contextvars.ContextVar[Encoding | None] = contextvars.ContextVar(
    "canopy_encoding", default=None
)


@contextlib.contextmanager
def use_encoding(encoding: Encoding | int | str) -> Iterator[Encoding]:
    """Send the calls and posts made inside the block in ``encoding``, whatever their
    links negotiated (``with canopy.use_encoding("json"): proxy.add(1, 2)``).

    The callee answers in the same encoding. A peer that does not accept it fails
    the call with ``IncompatibleSerialisation`` before anything is sent. The choice
    follows the context: threads and asyncio tasks started inside inherit it.
    """
    chosen = encoding_of(encoding)
    token = _chosen.set(chosen)
    try:
        yield chosen
    finally:
        _chosen.reset(token)


@dataclass(frozen=True, slots=True)
class Caller:
    """The zone whose call or post is being served, as ``canopy.caller()`` returns it."""

    zone: int
    """The calling zone's id."""
    info: Mapping[str, Any]
    """What the link it came over knows of it: ``address``, ``peercred`` on a Unix
    socket, ``tls`` (with ``peer_identity``, the certificate's name) over TLS,
    ``websocket`` over a WebSocket; empty for a zone of this process."""
    method: str
    """The method being served, ``interface::method`` as the IDL names it."""
    deadline: float | None = None
    """When the caller stops waiting, on ``time.monotonic()``'s clock (None: never).
    Calls the implementation makes meanwhile wait no longer than that."""
    _state: Serving | None = None

    @property
    def cancelled(self) -> bool:
        """Whether the caller gave up on this call (it timed out, or its task was
        cancelled). An ``async def`` implementation is cancelled outright; a blocking
        one may check this and stop early."""
        return self._state is not None and self._state.cancelled


class Serving:
    """A call or post being served: what ``canopy.caller()`` tells, and its cancellation.
    Never the ``Dispatch``: a context outlives the call when an implementation copies
    it, and the call's arguments must not live on with it."""

    __slots__ = ("caller", "cancelled", "deadline", "link", "plan", "span", "task")

    def __init__(self, caller: int, link: Link, plan: MethodPlan, deadline: float) -> None:
        self.caller = caller
        self.link = link
        self.plan = plan
        self.deadline = deadline  # time.monotonic() when the caller gives up; 0: never
        self.cancelled = False
        self.task: asyncio.Task[None] | None = None  # asyncio: the coroutine running it
        self.span: telemetry.Span | None = None  # an observer's, while it runs


_caller: contextvars.ContextVar[Serving | None] = contextvars.ContextVar(
    "canopy_caller", default=None
)


def caller() -> Caller:
    """Who made the call being served; ``RuntimeError`` outside an implementation.

    A server authorises a mutual-TLS client by the identity its certificate
    proves: ``canopy.caller().info["tls"]["peer_identity"]``.
    """
    serving = _caller.get()
    if serving is None:
        raise RuntimeError("canopy.caller() is only known inside a call being served")
    deadline = serving.deadline or None
    name = serving.plan.qualified_name
    return Caller(serving.caller, serving.link.info, name, deadline, serving)


DEFAULT_CALL_TIMEOUT = 30.0
"""Seconds a call waits for its reply unless its link or ``call_timeout`` says otherwise."""
KEEPALIVE = 30.0
"""Seconds of silence after which a link to another process pings its peer; as long again
without an answer and the link is declared dead."""
HANDSHAKE_TIMEOUT = 10.0
"""Seconds a new link may take to complete its handshake before it is dropped; a server
counts them from the accept, for the stream's layers (TLS, WebSocket) and Canopy's."""
IDLE_TIMEOUT = 3 * KEEPALIVE
"""Seconds a server lets an accepted link stay silent before it closes it. Every canopy
client says something well within it: an idle one answers the server's keepalive
pings, or (a blocking client, which does not read while idle) pings on its own."""

_timeout: contextvars.ContextVar[tuple[float | None] | None] = contextvars.ContextVar(
    "canopy_call_timeout", default=None
)


@contextlib.contextmanager
def call_timeout(seconds: float | None) -> Iterator[None]:
    """Calls made inside the block wait at most ``seconds`` for their reply (``None``: no
    limit), whatever their links' own ``call_timeout``; then ``CallTimeout``.

    The callee is told the call was abandoned and a late reply is dropped (any
    references in it are released). A blocking call between zones of one
    process runs on the caller's thread and cannot be interrupted.
    """
    if seconds is not None and seconds <= 0:
        raise ValueError(f"a call timeout is a positive number of seconds, not {seconds!r}")
    token = _timeout.set((seconds,))
    try:
        yield
    finally:
        _timeout.reset(token)


def timeout_for(link: Link) -> float | None:
    """How long a call on ``link`` made now may wait for its reply: its own timeout, and
    no longer than the deadline of the call being served, if any."""
    chosen = _timeout.get()
    timeout = chosen[0] if chosen is not None else link.call_timeout
    serving = _caller.get()
    if serving is not None and serving.deadline:
        left = serving.deadline - time.monotonic()
        if left <= 0:
            raise CallTimeout("the call being served is past its deadline: its caller gave up")
        if timeout is None or left < timeout:
            timeout = left
    return timeout


@dataclass(frozen=True, slots=True)
class Intercepted:
    """A call or post about to be sent (``side`` "client") or run (``side`` "server"), as
    an interceptor sees it. An interceptor refuses it by raising: a ``CanopyError`` keeps
    its code, anything else is refused as SECURITY_ERROR."""

    side: str
    method: str
    """``interface::method``, as the IDL names it."""
    tag: int
    """The method's ``[tag]`` value (0 when it has none)."""
    zone: int
    """The other zone: the caller's on the server side, the object's on the client side."""
    info: Mapping[str, Any]
    """What the link knows of the zone at its other end (see ``Caller.info``)."""
    post: bool


Interceptor = Callable[[Intercepted], None]


def _nested_ref(zone: Service, link: Link, value: Any, passed: list[Ref] | None) -> ObjectRef:
    """A reference nested inside a struct or container (top-level ones are done first)."""
    kind = getattr(value, "_canopy_kind", SHARED)
    info = interface_of(type(value))
    if info is None:
        raise TypeError(f"cannot send {type(value).__qualname__}: not a Canopy interface")
    return zone.reference_for(value, link, kind, info.id, passed)


Ref = tuple[int, int, int]  # (zone, object, kind): a reference as a message's refs list it
_KINDS = (SHARED, OPTIMISTIC)


class Service:
    """One zone's service: its objects, the objects it holds in other zones, and its links."""

    def __init__(
        self, name: str, mode: Mode, *, zone_id: int | None = None, limits: Limits | None = None
    ) -> None:
        self.name = name
        self.mode = mode
        self.id = zone_id if zone_id is not None else ZONE_IDS.next()
        self.limits = limits or Limits()
        self.tables = Tables()
        self._held: dict[int, int] = {}  # zone -> how many of our objects it holds
        self._loans: dict[int, int] = {}  # neighbour -> references we lent it, all told
        self._in_flight: dict[int, int] = {}  # zone -> its calls running here
        self.links: dict[int, Link] = {}
        self._lock = threading.RLock()
        self._dead: deque[tuple[RemoteObject, int]] = deque()
        self._outbox: deque[tuple[Link, Message]] = deque()
        self._idle_links: deque[tuple[Link, int]] = deque()  # to look at once the outbox is sent
        self._depth = threading.local()
        self._inside = _Inside(self)
        self.interceptors: tuple[Interceptor, ...] = ()
        self._running: dict[tuple[int, int], Serving] = {}  # (neighbour, call id) -> call
        # (object, interface) -> the optimistic reference to our own object, for identity
        self._home: weakref.WeakValueDictionary[tuple[int, int], Any] = (
            weakref.WeakValueDictionary()
        )
        self.observer: telemetry.Observer | None = telemetry.register(self)
        if self.observer is not None:
            self.notify("zone_created")

    # ---------------------------------------------------------------- telemetry

    def notify(self, kind: str, **fields: Any) -> None:
        """Tell the observer (if one is attached) that ``kind`` happened here."""
        observer = self.observer
        if observer is not None:
            observer.event(telemetry.Event(kind, self.id, self.name, **fields))

    def add_link(self, link: Link) -> None:
        """``link`` leads to the zone at its end (after its handshake)."""
        self.links[link.peer] = link
        if self.observer is not None:
            self.notify("link_up", peer=link.peer)

    def intercept(self, interceptor: Interceptor) -> Interceptor:
        """Have ``interceptor`` see every call and post this zone sends or serves, before it
        goes or runs; it refuses one by raising. Returns it (a decorator, too)."""
        self.interceptors = (*self.interceptors, interceptor)
        return interceptor

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.id:#x}>"

    # ---------------------------------------------------------------- exporting

    def export(self, obj: Any) -> Stub:
        interfaces = implemented(type(obj))
        if not interfaces:
            raise TypeError(
                f"{type(obj).__qualname__} implements no Canopy interface: subclass a "
                "generated interface class"
            )
        with self._lock:
            fresh = self.tables.next_object
            stub = self.tables.export(obj, frozenset(interfaces), self._object_died)
        if self.observer is not None and stub.object_id >= fresh:
            self.notify("stub_created", object=stub.object_id, detail=type(obj).__qualname__)
        return stub

    def reference_for(
        self,
        value: Any,
        link: Link,
        kind: int,
        interface: int,
        passed: list[Ref] | None = None,
    ) -> ObjectRef:
        """The descriptor that hands ``value`` to the zone at the end of ``link``, counted:
        our own object is granted to it, another zone's is lent to it (unless it is
        going back to its owner). ``passed`` collects the references of a message that
        goes further than ``link.peer``, for the zones it passes through.

        ``TransportError`` if ``link`` is over: its peer's counts were settled when it
        ended (or belong to the link that replaced it), and a reference counted now
        would never be given back."""
        remote: RemoteObject | None = getattr(value, "_canopy_remote", None)
        with self._lock:  # the check and the count at once: ``peer_lost`` takes it too
            if not self._linked(link):
                raise TransportError(
                    f"zone {self.name!r} cannot hand {type(value).__qualname__} to zone "
                    f"{link.peer:#x}: the link to it is closed"
                )
            if remote is not None:
                if remote.gone:  # home included: the owner would refuse it as bad data
                    raise ObjectGone(
                        f"zone {self.name!r} cannot hand on object {remote.object_id} of zone "
                        f"{remote.zone:#x}: it no longer exists"
                    )
                if remote.zone != link.peer:
                    self._lend(remote, link.peer, kind)
                # (Back to where it came from: the owner finds its own object, uncounted.)
                ref = ObjectRef(remote.zone, remote.object_id, interface, kind)
            else:
                weak = getattr(value, "_canopy_weak", None)
                if weak is not None:  # an optimistic reference to our own object
                    value = weak()
                    if value is None:
                        raise ObjectGone(
                            f"zone {self.name!r} cannot hand on an optimistic reference to "
                            "an object that no longer exists"
                        )
                stub = self.export(value)
                self.grant(stub, link.peer, kind)
                ref = ObjectRef(self.id, stub.object_id, interface, kind)
        if passed is not None:
            passed.append((ref.zone, ref.object, kind))
        return ref

    def _linked(self, link: Link) -> bool:
        """Whether ``link`` is this zone's link to its peer: not ended, not replaced."""
        return self.links.get(link.peer) is link

    def grant(self, stub: Stub, zone: int, kind: int) -> None:
        """``zone`` now holds one more reference to ``stub``'s object."""
        with self._lock:
            if not stub.held_by(zone):
                held = self._held.get(zone, 0)
                if held >= self.limits.max_exported_objects:
                    raise LimitExceeded(
                        f"zone {zone:#x} already holds {held} objects of zone {self.name!r} "
                        f"(max_exported_objects={self.limits.max_exported_objects})"
                    )
                self._held[zone] = held + 1
            stub.add(zone, kind)
        if self.observer is not None:
            detail = "optimistic" if kind == OPTIMISTIC else "shared"
            self.notify("add_ref", peer=zone, object=stub.object_id, side="server", detail=detail)

    def holds(self, zone: int) -> bool:
        """Whether ``zone`` holds a reference to any object of this zone, or one we lent it
        (and so may call in, or give it back)."""
        return self._held.get(zone, 0) > 0 or self._loans.get(zone, 0) > 0

    def _loan(self, remote: RemoteObject, zone: int, kind: int) -> None:
        """Lend one ``kind`` reference to ``remote`` to neighbour ``zone``. Under the lock."""
        remote.lend(zone, kind)
        self._loans[zone] = self._loans.get(zone, 0) + 1

    def _loans_ended(self, zone: int, count: int) -> None:
        """``count`` references lent to ``zone`` are over. Under the lock."""
        left = self._loans.get(zone, 0) - count
        if left > 0:
            self._loans[zone] = left
        else:
            self._loans.pop(zone, None)

    # ---------------------------------------------------------------- importing

    def object_for(self, ref: ObjectRef, link: Link, cls: type[Interface]) -> Any:
        """What a received descriptor stands for here: our own object, or a proxy."""
        if ref.zone == self.id:
            stub = self.tables.stubs.get(ref.object)
            target = stub.target if stub is not None else None
            if target is None:
                raise ObjectGone(f"object {ref.object} of zone {self.name!r} no longer exists")
            if ref.kind == OPTIMISTIC:  # home, but still not keeping it alive
                return self._optimistic_home(ref.object, target, cls)
            return target
        kind = ref.kind if ref.kind in _KINDS else SHARED
        with self._lock:
            remote = self.tables.remote(ref.zone, ref.object, link)
            self._take(remote, link, kind)
            return self._proxy(remote, cls, kind)

    def _optimistic_home(self, object_id: int, target: Any, cls: type[Interface]) -> Any:
        """The one weak stand-in of this zone for ``target`` as ``cls``, while it lives."""
        from canopy.runtime._proxy import local_optimistic

        key = (object_id, _interface_id(cls))
        found = self._home.get(key)
        if found is None:
            found = self._home[key] = local_optimistic(self, object_id, target, cls)
        return found

    def _take(self, remote: RemoteObject, link: Link, kind: int) -> None:
        """The zone at the end of ``link`` gave us a ``kind`` reference to ``remote``: keep
        it as ours, or give it back if we hold one already (one of each kind is enough).
        Under the lock."""
        if remote.held[kind]:
            self._outbox.append((link, Release(self.id, remote.zone, remote.object_id, kind)))
        elif remote.link is not link and any(remote.held):
            # It came by another way than ours (the zones form a loop): ours is the way
            # every count and call for it goes, so take this kind that way too.
            self._outbox.append((link, Release(self.id, remote.zone, remote.object_id, kind)))
            self._acquire(remote, kind, self.id)
        else:
            remote.link = link
            remote.held[kind] = True

    def _lend(self, remote: RemoteObject, zone: int, kind: int) -> None:
        """Pass one ``kind`` reference to ``remote`` on to neighbour ``zone``, backed by ours."""
        with self._lock:
            if remote.gone:
                raise ObjectGone(
                    f"object {remote.object_id} of zone {remote.zone:#x} no longer exists: it "
                    "cannot be passed on"
                )
            if not remote.held[kind]:
                self._acquire(remote, kind, zone)
            self._loan(remote, zone, kind)

    def _acquire(self, remote: RemoteObject, kind: int, requester: int) -> None:
        """Take a ``kind`` reference upstream (an AddRef nobody waits for: anything we send
        the owner later, a release included, arrives after it). Under the lock."""
        remote.held[kind] = True
        link = remote.link

        def answered(reply: Reply) -> None:
            if reply.code != 0:
                log.debug("%r: add_ref of %r refused: %s", self, remote, reply.message)
                with self._lock:
                    remote.held[kind] = False

        call_id = link.next_id(answered, waited=False)
        message = AddRef(call_id, self.id, remote.zone, remote.object_id, kind, requester)
        self._outbox.append((link, message))

    def _settle(self, remote: RemoteObject, kind: int) -> None:
        """Give our ``kind`` reference back once nothing here needs it. Under the lock."""
        if remote.held[kind] and not remote.in_use(kind) and not remote.gone:
            remote.held[kind] = False
            release = Release(self.id, remote.zone, remote.object_id, kind)
            self._outbox.append((remote.link, release))
        self._forget_if_unused(remote)

    def _forget_if_unused(self, remote: RemoteObject) -> None:
        """Forget ``remote`` once it is unused; its link may then be idle, which ``flush``
        looks at after sending what is queued (the release that made it unused first)."""
        key = (remote.zone, remote.object_id)
        if remote.unused() and self.tables.remotes.get(key) is remote:
            del self.tables.remotes[key]
            self._idle_links.append((remote.link, remote.zone))

    def _proxy(self, remote: RemoteObject, cls: type[Interface], kind: int) -> Any:
        info = interface_of(cls)
        assert info is not None  # noqa: S101 - plan() accepted cls
        existing = remote.proxy(info.id, kind)
        if existing is not None:
            return existing
        from canopy.runtime._proxy import new_proxy

        proxy = new_proxy(self, remote, cls, kind)
        if self.observer is not None:
            self.notify(
                "proxy_created",
                peer=remote.zone,
                object=remote.object_id,
                interface=info.name,
                detail="optimistic" if kind == OPTIMISTIC else "shared",
            )
        return proxy

    def proxy_died(self, remote: RemoteObject, kind: int) -> None:
        """Called from a proxy's destructor: queue its release, send at once if safe."""
        self._dead.append((remote, kind))
        if not getattr(self._depth, "n", 0):
            self.flush()

    # ---------------------------------------------------------------- lifetime

    def _object_died(self, stub: Stub) -> None:
        with self._lock:
            if self.tables.stubs.get(stub.object_id) is not stub:
                return  # already ended: the object's death and a release can both get here
            self._forget(stub)
            for holder in stub.holders:  # they hold this object no longer, in any kind
                left = self._held.get(holder, 1) - 1
                if left > 0:
                    self._held[holder] = left
                else:
                    self._held.pop(holder, None)
            for holder in stub.optimistic_holders():
                link = self.links.get(holder)
                if link is not None:
                    self._outbox.append((link, ObjectReleased(self.id, stub.object_id, holder)))
        if not getattr(self._depth, "n", 0):
            self.flush()

    def _forget(self, stub: Stub) -> None:
        self.tables.forget(stub)
        if self.observer is not None:
            self.notify("stub_destroyed", object=stub.object_id)

    def _released(self, stub: Stub, zone: int, kind: int) -> None:
        removed = stub.remove(zone, kind)
        if removed and not stub.held_by(zone):
            left = self._held[zone] = self._held.get(zone, 1) - 1
            if left <= 0:
                del self._held[zone]
        if not removed:
            if kind == SHARED:
                log.warning(
                    "%r: release of object %d by zone %#x, which held none",
                    self,
                    stub.object_id,
                    zone,
                )
            return
        if not stub.holders:
            self._forget(stub)
        elif stub.shared_count() == 0 and stub.ref() is None:
            self._object_died(stub)

    def flush(self) -> None:
        """Send queued releases and notices. Safe to call at any time."""
        while True:
            with self._lock:
                if self._dead:
                    remote, kind = self._dead.popleft()
                    remote.live[kind] -= 1
                    message: Message | None = None
                    if remote.held[kind] and not remote.gone and not remote.in_use(kind):
                        remote.held[kind] = False
                        message = Release(self.id, remote.zone, remote.object_id, kind)
                    self._forget_if_unused(remote)
                    link = remote.link
                    idle = None
                elif self._outbox:
                    link, message = self._outbox.popleft()
                    idle = None
                elif self._idle_links:
                    link, zone = self._idle_links.popleft()
                    message, idle = None, self._idle(link, zone)
                else:
                    return
            if message is not None:
                if self.observer is not None:
                    self._notify_sent(message)
                try:
                    link.send(message)
                except CanopyError as e:
                    log.debug("%r: could not send %s: %s", self, type(message).__name__, e)
            if idle is not None:
                idle()

    def _notify_sent(self, message: Message) -> None:
        if isinstance(message, Release | AddRef):
            kind = "release" if isinstance(message, Release) else "add_ref"
            self.notify(
                kind,
                peer=message.zone,
                object=message.object,
                side="client",
                detail="optimistic" if message.kind == OPTIMISTIC else "shared",
            )

    def _idle(self, link: Link, zone: int) -> Callable[[], None] | None:
        """What to do now that this zone holds nothing more in ``zone``: a link that
        exists only to reach that zone (a child process's) ends with its last use."""
        on_idle: Callable[[], None] | None = getattr(link, "on_idle", None)
        if on_idle is None or any(
            r.zone == zone or r.link is link for r in self.tables.remotes.values()
        ):
            return None
        return on_idle

    def inside(self) -> _Inside:
        """Marks the current thread as working inside the zone (no sends from destructors)."""
        return self._inside

    # ---------------------------------------------------------------- outgoing calls

    def encode_in(
        self,
        p: MethodPlan,
        link: Link,
        encoding: Encoding,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        passed: list[Ref] | None = None,
    ) -> msgspec.Raw:
        if p.in_refs:
            values = list(args)
            if kwargs:
                record = p.info.in_type(*args, **kwargs)
                values = list(msgspec.structs.astuple(record))
            for r in p.in_refs:
                if r.index < len(values) and values[r.index] is not None:
                    values[r.index] = self.reference_for(
                        values[r.index], link, r.kind, _interface_id(r.interface), passed
                    )
            args, kwargs = tuple(values), {}
        record = p.info.in_type(*args, **kwargs)
        return self._encode(record, p.in_nested_refs, link, encoding, passed)

    def _encode(
        self,
        record: Any,
        nested: bool,
        link: Link,
        encoding: Encoding,
        passed: list[Ref] | None = None,
    ) -> msgspec.Raw:
        """One payload; top-level references in ``record`` are already descriptors."""
        if nested:
            record = to_refs(record, lambda value: _nested_ref(self, link, value, passed))
        return payload_codec(encoding, type(record))[0](record)

    def _decode(
        self,
        payload: msgspec.Raw,
        record: type[Any],
        refs: bool,
        unbounded: bool,
        link: Link,
        encoding: Encoding,
    ) -> Any:
        """One payload as ``record``, its references turned into objects and proxies."""
        value = payload_codec(encoding, record)[1](payload)
        if unbounded and deeper_than(value, self.limits.max_depth):
            raise InvalidData(
                f"cannot decode {record.__qualname__}: nested deeper than "
                f"max_depth={self.limits.max_depth}"
            )
        reader = ref_reader(record) if refs else None
        if reader is not None:
            value = reader(value, lambda ref, cls: self.object_for(ref, link, cls))
        return value

    def _encoding(self, link: Link, p: MethodPlan) -> Encoding:
        """The encoding of an outgoing call: the link's, unless ``use_encoding`` chose."""
        chosen = _chosen.get()
        protocol = link.protocol
        if chosen is None or chosen is protocol.encoding:
            return protocol.encoding
        if chosen not in protocol.peer_encodings:
            accepted = ", ".join(sorted(e.name.lower() for e in protocol.peer_encodings))
            raise IncompatibleSerialisation(
                f"{p.info.name}: zone {link.peer:#x} does not accept {chosen.name.lower()} "
                f"(it accepts {accepted})"
            )
        return chosen

    def begin_call(
        self,
        target: Any,
        p: MethodPlan,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        trace: str = "",
    ) -> tuple[Link, int, float | None]:
        """Send a call; its link, id and how long to wait for the reply (the callee's
        deadline: the timeout travels with the call)."""
        remote = _reachable(target, p)
        link = remote.link
        if self.interceptors:
            self._intercept_out(p, remote, link)
        timeout = timeout_for(link)
        encoding = self._encoding(link, p)
        passed: list[Ref] | None = None if remote.zone == link.peer else []
        payload = self.encode_in(p, link, encoding, args, kwargs, passed)
        call_id = link.next_id(lambda reply: self.finish_call(p, remote, encoding, reply))
        link.send(
            Call(
                call_id,
                self.id,
                remote.zone,
                remote.object_id,
                p.interface_id,  # a base's method is called through the base
                p.info.id,
                encoding,
                payload,
                p.info.tag,
                math.ceil(timeout * 1000) if timeout else 0,
                tuple(passed) if passed else (),
                trace,
            )
        )
        return link, call_id, timeout

    def finish_call(
        self, p: MethodPlan, remote: RemoteObject, encoding: Encoding, reply: Reply
    ) -> Any:
        link = remote.link
        if reply.code != 0:
            if reply.code == ErrorCode.OBJECT_NOT_FOUND and remote.gone:
                # The owner has forgotten the object; the notice that it died came
                # first, so this side knows what the owner no longer can.
                raise ObjectGone(
                    f"{p.info.name} on object {remote.object_id} of zone {remote.zone:#x}: the "
                    "object no longer exists"
                )
            raise self._error(p, reply)
        try:
            out = self._decode(
                reply.payload, p.info.out_type, p.has_out_refs, p.out_unbounded, link, encoding
            )
        except msgspec.DecodeError as e:
            raise RpcError(
                f"{p.info.name}: the reply does not decode as {encoding.name.lower()}: {e}",
                code=ErrorCode.INVALID_DATA,
            ) from None
        return p.result(out)

    def post(
        self,
        target: Any,
        p: MethodPlan,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        trace: str = "",
    ) -> None:
        remote = _reachable(target, p)
        link = remote.link
        if self.interceptors:
            self._intercept_out(p, remote, link)
        encoding = self._encoding(link, p)
        passed: list[Ref] | None = None if remote.zone == link.peer else []
        payload = self.encode_in(p, link, encoding, args, kwargs, passed)
        link.send(
            Post(
                self.id,
                remote.zone,
                remote.object_id,
                p.interface_id,  # a base's method is called through the base
                p.info.id,
                encoding,
                payload,
                p.info.tag,
                tuple(passed) if passed else (),
                trace,
            )
        )

    def client_span(self, target: Any, p: MethodPlan) -> telemetry.Span | None:
        """Tell the observer a call or post is about to go; its span, if it keeps one."""
        assert self.observer is not None  # noqa: S101 - callers check first
        remote: RemoteObject = target._canopy_remote
        kind = "post" if p.info.post else "call"
        event = self._call_event(kind, p, remote.zone, "client", object=remote.object_id)
        return self.observer.client_call(event)

    def client_done(
        self, span: telemetry.Span | None, target: Any, p: MethodPlan, error: BaseException | None
    ) -> None:
        """The caller's side of a call is over (its reply came, or it failed)."""
        code = _code_of(error)
        if span is not None:
            span.end(error, code)
        if not p.info.post and self.observer is not None:
            remote: RemoteObject = target._canopy_remote
            event = self._call_event(
                "reply", p, remote.zone, "client", object=remote.object_id, error=code
            )
            self.observer.event(event)

    def _call_event(
        self, kind: str, p: MethodPlan, peer: int, side: str, **fields: Any
    ) -> telemetry.Event:
        interface, _, method = p.qualified_name.rpartition("::")
        return telemetry.Event(
            kind,
            self.id,
            self.name,
            peer=peer,
            interface=interface,
            method=method,
            side=side,
            **fields,
        )

    def _intercept_out(self, p: MethodPlan, remote: RemoteObject, link: Link) -> None:
        seen = Intercepted(
            "client", p.qualified_name, p.info.tag, remote.zone, link.info, p.info.post
        )
        for interceptor in self.interceptors:
            interceptor(seen)

    def try_cast(self, target: Any, interface: int) -> tuple[Link, int]:
        remote: RemoteObject = target._canopy_remote
        if remote.gone:
            raise ObjectGone("cast: the object no longer exists")
        link = remote.link
        call_id = link.next_id(_as_is)
        if self.observer is not None:
            self.notify("cast", peer=remote.zone, object=remote.object_id, side="client")
        link.send(TryCast(call_id, self.id, remote.zone, remote.object_id, interface))
        return link, call_id

    def _error(self, p: MethodPlan | None, reply: Reply) -> CanopyError:
        if reply.code < 0:
            return RpcError.from_code(reply.code, reply.message)
        domain = p.info.raises if p is not None else None
        if domain is not None:
            by_code: dict[int, type[ApplicationError]] = getattr(domain, "_by_code", {})
            cls = by_code.get(reply.code, domain)
            return cls(reply.message, code=reply.code)
        return ApplicationError(reply.message, code=reply.code)

    # ---------------------------------------------------------------- incoming messages

    def receive(self, link: Link, message: Message) -> Dispatch | None:
        """Handle one message from ``link``; a call to run is returned, not run."""
        with self.inside():
            if isinstance(message, Call | Post):
                if message.zone != self.id:
                    return self._pass_on(link, message)
                return self._dispatch(link, message)
            if isinstance(message, Release | TryCast) and self.observer is not None:
                self._notify_received(link, message)
            if isinstance(message, Release):
                kind = message.kind
                if kind not in _KINDS or self._impossible(link, message.caller):
                    log.warning("%r: %r from zone %#x: refused", self, message, link.peer)
                    return None
                with self._lock:
                    if message.zone != self.id:
                        self._repaid(link, message.zone, message.object, kind)
                        return None
                    stub = self.tables.stubs.get(message.object)
                    if stub is not None:
                        self._released(stub, link.peer, kind)
            elif isinstance(message, TryCast):
                if message.zone != self.id:
                    return self._pass_on(link, message)
                link.send(Reply(message.id, self._cast(link, message)))
            elif isinstance(message, ObjectReleased):
                with self._lock:
                    self._gone(link, message.zone, message.object)
            elif isinstance(message, AddRef):
                if message.zone != self.id:
                    link.send(Reply(message.id, self._lend_on_request(link, message)))
                else:
                    link.send(Reply(message.id, self._add_ref(link, message)))
            elif isinstance(message, GetSchema) and message.zone != self.id:
                return self._pass_on(link, message)
            elif isinstance(message, GetSchema):
                link.send(self._describe(link, message))
            elif isinstance(message, NewZoneId):
                link.send(
                    Reply(
                        message.id,
                        int(ErrorCode.ZONE_NOT_SUPPORTED),
                        message=f"{type(message).__name__} is not served by this zone",
                    )
                )
            elif isinstance(message, TransportDown):
                with self._lock:
                    self._unreachable(link, frozenset(message.zones))
            elif isinstance(message, Cancel):
                serving = self._running.get((link.peer, message.id))
                if serving is not None:
                    serving.cancelled = True
                    if serving.task is not None:
                        serving.task.cancel()
        return None

    def _notify_received(self, link: Link, message: Release | TryCast) -> None:
        kind = "release" if isinstance(message, Release) else "cast"
        ref = getattr(message, "kind", None)
        self.notify(
            kind,
            peer=link.peer,
            object=message.object,
            side="server",
            detail="" if ref is None else "optimistic" if ref == OPTIMISTIC else "shared",
        )

    def _find(self, link: Link, caller: int, object_id: int) -> Stub | int:
        """The stub a peer may reach, or the error code refusing it.

        The capability is the link's: the neighbour at its end must hold the
        object, for itself or for the zones it passes calls on for. ``caller`` is
        the zone the neighbour says the call comes from; one that cannot be is
        refused."""
        if caller != link.peer and self._impossible(link, caller):
            return int(ErrorCode.SECURITY_ERROR)
        stub = self.tables.stubs.get(object_id)
        if stub is None or stub.target is None:
            return int(ErrorCode.OBJECT_GONE if stub is not None else ErrorCode.OBJECT_NOT_FOUND)
        if not stub.held_by(link.peer):
            return int(ErrorCode.OBJECT_NOT_FOUND)  # a guessed id is no capability
        return stub

    def _impossible(self, link: Link, caller: int) -> bool:
        """Whether ``caller`` cannot be a zone at or behind ``link``: this zone or no zone.
        (Any other zone may be: where zones form a loop, a zone linked to this one
        may also reach it through another zone, by the way a reference came. A
        zone id names a caller; the identity to trust is the link's.)"""
        return caller != link.peer and (caller == self.id or caller == 0)

    def _cast(self, link: Link, m: TryCast) -> int:
        found = self._find(link, m.caller, m.object)
        if isinstance(found, int):
            return found
        return 0 if m.interface in found.interfaces else int(ErrorCode.INVALID_CAST)

    def _describe(self, link: Link, m: GetSchema) -> Reply:
        """The answer to a GetSchema for one of our objects: checked as a cast is."""
        from canopy.runtime._reflect import description_payload  # it imports this module

        found = self._find(link, m.caller, m.object)
        if isinstance(found, int):
            return Reply(m.id, found, NO_PAYLOAD, "no such object for this caller")
        target = found.target
        if target is None:
            return Reply(m.id, int(ErrorCode.OBJECT_GONE), NO_PAYLOAD, "the object is gone")
        return Reply(m.id, 0, description_payload(target, m))

    def _add_ref(self, link: Link, m: AddRef) -> int:
        found = self._find(link, m.caller, m.object)
        if isinstance(found, int):
            return found
        try:
            self.grant(found, link.peer, m.kind if m.kind in _KINDS else SHARED)
        except LimitExceeded:
            return int(ErrorCode.LIMIT_EXCEEDED)
        return 0

    # ---------------------------------------------------------------- passing through

    def _borrowed(self, link: Link, zone: int, object_id: int) -> RemoteObject | int:
        """The object of another zone that the neighbour at ``link`` borrowed from us, or
        the error code refusing it: we pass on only what we lent."""
        remote = self.tables.remotes.get((zone, object_id))
        if remote is None or link.peer not in remote.lent:
            return int(ErrorCode.OBJECT_NOT_FOUND)
        if remote.gone:
            return int(ErrorCode.OBJECT_GONE)
        return remote

    def _pass_on(self, link: Link, m: Call | Post | TryCast | GetSchema) -> Dispatch | None:
        """Forward a message for another zone's object towards it, counting the references
        it carries; a request's reply comes back through ``Forward``."""
        with self._lock:
            found = self._borrowed(link, m.zone, m.object)
            if isinstance(found, int):
                why = (
                    f"zone {self.name!r} passes nothing on to object {m.object} of zone "
                    f"{m.zone:#x} for zone {link.peer:#x}"
                )
                if isinstance(m, TryCast | GetSchema):
                    link.send(Reply(m.id, found, NO_PAYLOAD, why))
                    return None
                self._refuse(link, m, found, why)
                return None
            up: Link = found.link
            if isinstance(m, Call | Post) and m.refs:
                self._passing(m.refs, link, up)
            if not isinstance(m, Post):
                found.pinned += 1
        if isinstance(m, Post):
            up.send(m)  # at once: posts keep their order
            return None
        # The request goes when the mode runs it, in order with the link's calls, on a
        # thread (or task) that may wait for its reply; the object stays held upstream
        # (pinned) until then, whatever the borrower releases meanwhile.
        timeout = m.timeout_ms / 1000 if isinstance(m, Call) and m.timeout_ms else None
        relay = _relay_blocking if self.mode.name == "blocking" else _relay_async
        forward = Forward(self, link, m.id, up, relay, (up, m, timeout), m.caller, found)
        self._running[(link.peer, m.id)] = forward.state
        return forward

    def _passing(self, refs: Passed, came: Link, going: Link) -> None:
        """Count the references a message carries from ``came`` on to ``going``. Under the lock.

        The zone before us granted or lent us each one (unless it is ours); we lend
        it on to the zone after us, or give it back when that zone is its owner, or
        when the link to it is over (the message will never arrive)."""
        onward = self._linked(going)
        for zone, object_id, kind in refs:
            if kind not in _KINDS:
                kind = SHARED
            if not onward:
                if zone != self.id:  # an object of ours came home uncounted
                    self._outbox.append((came, Release(self.id, zone, object_id, kind)))
                continue
            if zone == self.id:
                stub = self.tables.stubs.get(object_id)
                if stub is not None and stub.target is not None:
                    try:
                        self.grant(stub, going.peer, kind)
                    except LimitExceeded as e:
                        log.warning("%r: %s", self, e)
                continue
            if zone == going.peer:  # home to its owner, which counts nothing for it
                self._outbox.append((came, Release(self.id, zone, object_id, kind)))
                continue
            remote = self.tables.remote(zone, object_id, came)
            self._take(remote, came, kind)
            self._loan(remote, going.peer, kind)

    def _repaid(self, link: Link, zone: int, object_id: int, kind: int) -> None:
        """A neighbour gave back a reference we lent it. Under the lock."""
        remote = self.tables.remotes.get((zone, object_id))
        if remote is None or not remote.unlend(link.peer, kind):
            log.debug(
                "%r: release of object %d of zone %#x by zone %#x, which borrowed none",
                self,
                object_id,
                zone,
                link.peer,
            )
            return
        self._loans_ended(link.peer, 1)
        self._settle(remote, kind)

    def _lend_on_request(self, link: Link, m: AddRef) -> int:
        """A borrower asks for one more reference (of another kind, say): lend it."""
        with self._lock:
            found = self._borrowed(link, m.zone, m.object)
            if isinstance(found, int):
                return found
            self._lend(found, link.peer, m.kind if m.kind in _KINDS else SHARED)
        return 0

    def _gone(self, link: Link, zone: int, object_id: int) -> None:
        """The owner (through ``link``) says the object is gone: tell whoever borrowed an
        optimistic reference to it from us. Under the lock."""
        remote = self.tables.remotes.get((zone, object_id))
        if remote is None or remote.link is not link:
            return
        remote.gone = True
        self._ended(remote)
        remote.held[OPTIMISTIC] = False
        for holder, counts in list(remote.lent.items()):
            if counts[OPTIMISTIC]:
                # The notice ends the holder's optimistic reference: it sends no release.
                self._loans_ended(holder, counts[OPTIMISTIC])
                counts[OPTIMISTIC] = 0
                if counts == [0, 0]:
                    del remote.lent[holder]
                out = self.links.get(holder)
                if out is not None:
                    self._outbox.append((out, ObjectReleased(zone, object_id, holder)))
        self._forget_if_unused(remote)

    def _ended(self, remote: RemoteObject) -> None:
        """``remote`` is gone: tell its watchers (``on_gone``), each in its own context
        and never here, under the lock. Under the lock."""
        watches, remote.watches = remote.watches, None
        for watch in watches or ():
            watch.fire()

    def _unreachable(self, link: Link, zones: frozenset[int] | None) -> None:
        """The zones ``zones`` (None: every zone) behind ``link`` can no longer be reached:
        what we hold there is gone, and so is what we lent of it. Under the lock."""
        behind: dict[int, set[int]] = {}  # borrower -> zones it can no longer reach
        for remote in list(self.tables.remotes.values()):
            if remote.link is not link or (zones is not None and remote.zone not in zones):
                continue
            remote.gone = True
            self._ended(remote)
            remote.held = [False, False]
            for holder, counts in remote.lent.items():  # the notice ends what they borrowed
                behind.setdefault(holder, set()).add(remote.zone)
                self._loans_ended(holder, sum(counts))
            remote.lent.clear()
            key = (remote.zone, remote.object_id)
            if self.tables.remotes.get(key) is remote:
                del self.tables.remotes[key]
        for holder, lost in behind.items():
            out = self.links.get(holder)
            if out is not None and out is not link:
                self._outbox.append((out, TransportDown(tuple(sorted(lost)))))

    def _dispatch(self, link: Link, m: Call | Post) -> Dispatch | None:
        is_call = type(m) is Call
        found = self._find(link, m.caller, m.object)
        if isinstance(found, int):
            self._refuse(link, m, found, "no such object for this caller")
            return None
        target = found.target
        p = _served.get((type(target), m.interface, m.method))
        if p is None:
            cls = implemented(type(target)).get(m.interface)
            if cls is None:
                self._refuse(
                    link,
                    m,
                    int(ErrorCode.INVALID_INTERFACE_ID),
                    f"object does not implement interface {m.interface:#x}",
                )
                return None
            served = plan(cls)
            p = served.methods.get(m.method)
            if p is None:
                why = f"{served.info.name} has no method {m.method} (in zone {self.name!r})"
                self._refuse(link, m, int(ErrorCode.INVALID_METHOD_ID), why)
                return None
            _served[(type(target), m.interface, m.method)] = p
        if p.info.post == is_call:
            why = f"{p.qualified_name} is {'a post' if p.info.post else 'a call'}"
            self._refuse(link, m, int(ErrorCode.INVALID_METHOD_ID), why)
            return None
        if self.interceptors:
            refused = self._intercept_in(link, m, p)
            if refused is not None:
                self._refuse(link, m, *refused)
                return None
        encoding: Encoding | None = link.protocol.encoding
        if m.encoding != encoding:  # another than the link's, chosen for this call
            encoding = _ENCODINGS.get(m.encoding)
        if encoding not in link.protocol.encodings:
            accepted = ", ".join(e.name.lower() for e in link.protocol.encodings)
            self._refuse(
                link,
                m,
                int(ErrorCode.INCOMPATIBLE_SERIALISATION),
                f"{p.qualified_name}: encoding {m.encoding} is not accepted by "
                f"zone {self.name!r} (it accepts {accepted})",
            )
            return None
        assert encoding is not None  # noqa: S101 - the link's encodings are Encodings
        try:
            args = self._decode(
                m.payload, p.info.in_type, p.has_in_refs, p.in_unbounded, link, encoding
            )
        except (msgspec.DecodeError, CanopyError, TypeError) as e:
            self._refuse(link, m, int(ErrorCode.INVALID_DATA), f"{p.qualified_name}: {e}")
            return None
        if is_call:
            running = self._in_flight.get(link.peer, 0)
            if running >= self.limits.max_calls_in_flight:
                self._refuse(
                    link,
                    m,
                    int(ErrorCode.LIMIT_EXCEEDED),
                    f"zone {link.peer:#x} has {running} calls running in zone {self.name!r} "
                    f"(max_calls_in_flight={self.limits.max_calls_in_flight})",
                )
                return None
            self._in_flight[link.peer] = running + 1
        method = getattr(target, p.info.python_name)
        call_id, timeout_ms = (m.id, m.timeout_ms) if isinstance(m, Call) else (None, 0)
        d = Dispatch(
            self,
            link,
            call_id,
            p,
            method,
            msgspec.structs.astuple(args),
            encoding,
            m.caller,
            time.monotonic() + timeout_ms / 1000 if timeout_ms else 0.0,
        )
        if call_id is not None:
            self._running[(link.peer, call_id)] = d.state
        if self.observer is not None:
            kind = "call" if call_id is not None else "post"
            event = self._call_event(
                kind, p, m.caller, "server", object=m.object, call_id=call_id or 0
            )
            d.state.span = self.observer.server_call(event, m.trace)
        return d

    def _intercept_in(self, link: Link, m: Call | Post, p: MethodPlan) -> tuple[int, str] | None:
        """The error code and message refusing ``m``, if an interceptor refuses it."""
        seen = Intercepted("server", p.qualified_name, m.tag, m.caller, link.info, p.info.post)
        try:
            for interceptor in self.interceptors:
                interceptor(seen)
        except CanopyError as e:
            return int(e.code), e.message or str(e)
        except Exception as e:
            return int(ErrorCode.SECURITY_ERROR), f"{p.qualified_name}: {e}"
        return None

    def _refuse(self, link: Link, m: Call | Post, code: int, why: str) -> None:
        if isinstance(m, Call):
            link.send(Reply(m.id, code, NO_PAYLOAD, why))
        else:
            log.warning("%r: post refused (%s): %s", self, ErrorCode(code).name, why)
        return None

    def complete(self, d: Dispatch, result: Any = None, error: BaseException | None = None) -> None:
        """Send the reply of a finished call (a post has none)."""
        if d.state.span is not None or (self.observer is not None and type(d) is not Forward):
            self._served(d, error)
        if d.call_id is None:
            if error is not None:
                log.error(
                    "%r: post %s raised %s: %s", self, d.plan.info.name, type(error).__name__, error
                )
            return
        self._running.pop((d.link.peer, d.call_id), None)
        if type(d) is Forward:
            self._forwarded(d, result, error)
            return
        caller = d.link.peer
        running = self._in_flight.get(caller, 0) - 1
        if running > 0:
            self._in_flight[caller] = running
        else:
            self._in_flight.pop(caller, None)
        with self.inside():
            if error is None:
                passed: list[Ref] | None = None if d.caller == d.link.peer else []
                try:
                    payload = self._encode_out(d, result, passed)
                except (CanopyError, TypeError, ValueError, msgspec.EncodeError) as e:
                    error = e
                else:
                    d.link.send(Reply(d.call_id, 0, payload, refs=tuple(passed) if passed else ()))
                    return
            try:
                d.link.send(_error_reply(d, error))
            finally:
                # The error's traceback holds this frame: a frame holding the error would
                # keep both, and the call's result and arguments, for the cyclic collector.
                error = None

    def _served(self, d: Dispatch, error: BaseException | None) -> None:
        """Tell the observer the callee's side of a call or post is over."""
        code = _code_of(error)
        span, d.state.span = d.state.span, None
        if span is not None:
            span.end(error, code)
        if d.call_id is not None and self.observer is not None:
            event = self._call_event(
                "reply", d.plan, d.caller, "server", call_id=d.call_id, error=code
            )
            self.observer.event(event)

    def _forwarded(self, d: Dispatch, reply: Any, error: BaseException | None) -> None:
        """The reply to a request we passed on goes back the way the request came."""
        assert isinstance(d, Forward)  # noqa: S101 - complete() sends only those here
        with self.inside():
            with self._lock:
                d.remote.pinned -= 1
                for kind in _KINDS:
                    self._settle(d.remote, kind)
            if error is not None or not isinstance(reply, Reply):
                d.link.send(_error_reply(d, error or TypeError(f"not a reply: {reply!r}")))
                return
            if reply.refs:
                with self._lock:
                    self._passing(reply.refs, d.up, d.link)
            d.link.send(msgspec.structs.replace(reply, id=d.call_id))

    def _encode_out(self, d: Dispatch, result: Any, passed: list[Ref] | None) -> msgspec.Raw:
        p = d.plan
        fields = p.info.out_type.__struct_fields__
        values = [] if not fields else [result] if len(fields) == 1 else list(result)
        for r in p.out_refs:
            if values[r.index] is not None:
                values[r.index] = self.reference_for(
                    values[r.index], d.link, r.kind, _interface_id(r.interface), passed
                )
        record = p.info.out_type(*values)
        return self._encode(record, p.out_nested_refs, d.link, d.encoding, passed)

    # ---------------------------------------------------------------- links ending

    def peer_lost(self, zone: int) -> None:
        """Every reference held by ``zone`` is released, every proxy into it is gone."""
        if self.observer is not None:
            self.notify("link_down", peer=zone)
        with self.inside(), self._lock:
            for stub in list(self.tables.stubs.values()):
                counts = stub.holders.get(zone)
                while counts and counts[SHARED]:
                    self._released(stub, zone, SHARED)
                    counts = stub.holders.get(zone)
                while counts and counts[OPTIMISTIC]:
                    self._released(stub, zone, OPTIMISTIC)
                    counts = stub.holders.get(zone)
            link = self.links.get(zone)
            for remote in list(self.tables.remotes.values()):
                ended = remote.lent.pop(zone, None)
                if ended is not None:  # its loans end with it
                    self._loans_ended(zone, sum(ended))
                    for kind in _KINDS:
                        self._settle(remote, kind)
                if remote.link is not link and remote.zone == zone:
                    link = remote.link  # a link already dropped from ``links``
            if link is not None:
                self._unreachable(link, None)
            self.links.pop(zone, None)

    # ---------------------------------------------------------------- inspection

    def exported(self) -> dict[int, dict[int, list[int]]]:
        """Object id -> holding zone -> [shared, optimistic], for tests and tools."""
        with self._lock:
            return {
                oid: {z: list(c) for z, c in s.holders.items()}
                for oid, s in self.tables.stubs.items()
            }

    def imported(self) -> list[tuple[int, int]]:
        with self._lock:
            return [
                k for k, r in self.tables.remotes.items() if any(r.held) or any(r.live) or r.lent
            ]


class _Inside:
    """Reentrant marker of a thread working inside a zone; on leaving the outermost
    level, whatever destructors queued meanwhile is sent."""

    __slots__ = ("_depth", "_zone")

    def __init__(self, zone: Service) -> None:
        self._zone = zone
        self._depth = zone._depth

    def __enter__(self) -> None:
        d = self._depth.__dict__
        d["n"] = d.get("n", 0) + 1

    def __exit__(self, *exc: object) -> None:
        d = self._depth.__dict__
        depth = d["n"] = d["n"] - 1
        zone = self._zone
        if depth == 0 and (zone._dead or zone._outbox or zone._idle_links):
            zone.flush()


class Dispatch:
    """A decoded call or post, ready for the mode to run."""

    __slots__ = (
        "args",
        "call_id",
        "caller",
        "encoding",
        "link",
        "method",
        "plan",
        "state",
        "zone",
    )

    def __init__(
        self,
        zone: Service,
        link: Link,
        call_id: int | None,
        p: MethodPlan,
        method: Callable[..., Any],
        args: tuple[Any, ...],
        encoding: Encoding = Encoding.BINARY,
        caller: int = 0,
        deadline: float = 0.0,
    ) -> None:
        self.zone = zone
        self.link = link
        self.call_id = call_id
        self.plan = p
        self.method = method
        self.args = args
        self.encoding = encoding  # the call's: its reply is sent in it too
        self.caller = caller
        self.state = Serving(caller, link, p, deadline)

    def serving(self) -> contextvars.Token[Serving | None]:
        """Make ``canopy.caller()`` name this call's caller until the token is reset."""
        return _caller.set(self.state)


class Forward(Dispatch):
    """A request passed on to another zone: ``method`` waits for its reply (a ``Reply``),
    which ``Service.complete`` sends back with the request's own id."""

    __slots__ = ("remote", "up")

    def __init__(
        self,
        zone: Service,
        link: Link,
        call_id: int,
        up: Link,
        relay: Callable[..., Any],
        args: tuple[Any, ...],
        caller: int,
        remote: RemoteObject,
    ) -> None:
        super().__init__(zone, link, call_id, _FORWARDING, relay, args, caller=caller)
        self.up = up
        self.remote = remote  # pinned until the reply comes back


def _relay_blocking(up: Link, m: Call | TryCast | GetSchema, timeout: float | None) -> Any:
    """Send a request on and wait for its reply (a ``Reply``)."""
    call_id = up.next_id(_as_is)
    up.send(msgspec.structs.replace(m, id=call_id))
    return up.wait(call_id, timeout or timeout_for(up))


def _relay_async(up: Link, m: Call | TryCast | GetSchema, timeout: float | None) -> Any:
    call_id = up.next_id(_as_is)
    up.send(msgspec.structs.replace(m, id=call_id))
    return up.wait_async(call_id, timeout or timeout_for(up))


def _code_of(error: BaseException | None) -> int:
    if error is None:
        return 0
    if isinstance(error, CanopyError):
        return int(error.code)
    return int(ErrorCode.EXCEPTION)


def _reachable(target: Any, p: MethodPlan | str) -> RemoteObject:
    """The remote object behind a proxy, or the error saying why method ``p`` (or what
    is named so) cannot reach it."""
    remote: RemoteObject = target._canopy_remote
    if target._canopy_closed:
        what = p if isinstance(p, str) else p.info.name
        raise RpcError(f"{what}: the proxy was closed", code=ErrorCode.OBJECT_GONE)
    if remote.gone:
        what = p if isinstance(p, str) else p.info.name
        raise ObjectGone(
            f"{what} on object {remote.object_id} of zone {remote.zone:#x}: the object "
            "no longer exists"
        )
    return remote


_ENCODINGS = {int(e): e for e in Encoding}
_FORWARDING = cast(MethodPlan, None)
"""A forwarded request's plan: it runs no method of this zone's, so it has none."""
_served: dict[tuple[type[Any], int, int], MethodPlan] = {}
"""(implementation class, interface id, method id) -> the plan it is served by."""


def _as_is(reply: Reply) -> Reply:
    return reply


def _interface_id(cls: type[Interface]) -> int:
    info = interface_of(cls)
    return info.id if info is not None else 0


def _error_reply(d: Dispatch, error: BaseException) -> Reply:
    assert d.call_id is not None  # noqa: S101 - posts never reach here
    if isinstance(error, CanopyError):
        return Reply(d.call_id, int(error.code), NO_PAYLOAD, error.message or str(error))
    return Reply(
        d.call_id, int(ErrorCode.EXCEPTION), NO_PAYLOAD, f"{type(error).__name__}: {error}"
    )
