"""A byte stream through shared memory, for two processes (or two threads) on one
machine: two single-producer single-consumer rings in one POSIX shared memory
segment, one per direction, and a Unix socket pair as the doorbell.

Theory of operation.

Layout. The segment is a 4 KiB header and then two rings of ``capacity`` bytes
(a power of two): ring 0 carries the creating side's bytes, ring 1 the attaching
side's. The header is 64-bit words: word 0 the magic, 1 the version, 2 the
capacity; then one 64-byte line per side (side 0 the creator at word 8, side 1
at word 16), written only by that side: the tail of the ring it produces, the
head of the ring it consumes, its "waiting for data" and "waiting for space"
flags, and its "closed" flag. Counters only grow (a byte's place is counter
modulo capacity): the producer copies bytes in, then publishes the new tail; the
consumer copies bytes out, then publishes the new head. ``Ring`` is that
arithmetic alone, with no waiting and no doorbell.

Ordering. Nothing here can issue a memory fence, so the protocol relies on the
CPU making stores visible in program order and loads in program order, as x86-64
does, and on a 64-bit counter being read and written whole, as it is in a 64-bit
process; other machines and 32-bit processes are refused. x86-64 may still let
a load pass an earlier store, which is the one race left: a reader sets its
"waiting" flag and finds the ring empty while the writer publishes and finds the
flag clear; nobody rings. So every waiter's first sleep is ``LOST_WAKEUP_WAIT``
(1 ms): that is all a lost wakeup costs, as the system call that sleeps makes the
flag visible to any later writer. Later sleeps back off to ``IDLE_WAIT`` and
never matter for speed. The asyncio end times its sleeps the same way.

Waiting. A reader that finds its ring empty re-reads the tail for ``spin``
seconds, yielding the CPU between reads (the peer may be waiting for this very
CPU; two ends in one process never spin, as they share one GIL), then sets its
"waiting for data" flag, checks again, and sleeps on the doorbell; a writer that
has published rings the doorbell (one byte) only if that flag is set. A writer
finding the ring full waits for space the same way. On one side a receiving and
a sending thread may wait together: one of them listens on the doorbell and
wakes the other, as either may be the one rung for.

End. ``close`` sets the side's "closed" flag and shuts the doorbell down, which
the peer sees at once as the doorbell's end: its ``receive`` hands over what is
left in the ring, then ``b""``; its ``send`` raises ``BrokenPipeError``. A peer
that ended without closing (its process died) ends the doorbell without the
flag: ``receive`` hands over what is left, then raises ``ConnectionResetError``.

Cleanup. The creating side owns the segment's name: it registers it with
multiprocessing's resource tracker (which unlinks it if this process dies
without doing so) and unlinks it when its end is closed, or at ``Channel.close``
if no end was taken; the attaching side never registers or unlinks it. Each end
unmaps its memory once it is closed and no call is inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import mmap
import os
import platform
import re
import secrets
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from multiprocessing import resource_tracker
from typing import Any

from canopy.streams._base import RECEIVE_SIZE
from canopy.streams._socket import describe

DEFAULT_CAPACITY = 1 << 20
"""Bytes each direction's ring holds by default."""
MIN_CAPACITY = 4096
MAX_CAPACITY = 1 << 30

DEFAULT_SPIN = 50e-6
"""Seconds a blocking end re-reads an empty (or full) ring before sleeping: longer
than a peer's reply to a small message, short enough not to matter when idle."""
MAX_SPIN = 0.01

LOST_WAKEUP_WAIT = 1e-3
"""Seconds of a waiter's first sleep: the most a wakeup lost to store/load
reordering costs (see the module's notes)."""
IDLE_WAIT = 0.05
"""Seconds a waiter's later sleeps back off to: a bound, should a wakeup ever be
lost some other way, and at most twenty wakes a second when idle."""

HEADER_SIZE = 4096
_MAGIC = int.from_bytes(b"canopysh", "little")
_VERSION = 1
_W_MAGIC, _W_VERSION, _W_CAPACITY = 0, 1, 2
_LINE = 8  # words in a 64-byte cache line
# The words of a side's line; the side writes them, its peer only reads them.
_TAIL, _HEAD, _READER_WAITING, _WRITER_WAITING, _CLOSED = range(5)

_SPIN_CHECKS = 1_000_000  # a bound on a spin's count, beside its time
_DRAIN = 4096  # doorbell bytes taken per read
_NAME_ATTEMPTS = 16
_SPEC = re.compile(r"canopy-shm:1:([A-Za-z0-9_-]{1,64}):([0-9]{1,12}):([0-9]{1,9})")
_SPEC_FORM = "canopy-shm:1:<segment name>:<capacity>:<doorbell fd>"
_ORDERED_MACHINES = frozenset({"x86_64", "amd64", "x64"})
_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)
_DONTWAIT = socket.MSG_DONTWAIT
_PASSCRED = getattr(socket, "SO_PASSCRED", None)
_CRED = struct.Struct("3i")


def _base(side: int) -> int:
    return _LINE * (1 + side)


class Ring:
    """One direction's ring arithmetic over a ``capacity``-byte buffer (a power of two)
    and two 64-bit counters in ``counters`` (a ``"Q"`` memoryview) at ``tail`` and
    ``head``: how much may be read or written, where, and publishing the counters.
    No waiting, no doorbell, no locking; one object may play both roles, or one
    object per role (the producer trusts its own tail, the consumer its own head).

    The peer's counter is checked on every read of it: a counter that puts more
    than ``capacity`` bytes, or fewer than none, in the ring is an ``OSError``.
    """

    def __init__(self, data: memoryview, counters: memoryview, tail: int, head: int) -> None:
        capacity = len(data)
        if capacity < 1 or capacity & (capacity - 1):
            raise ValueError(f"a ring's capacity is {capacity} bytes; it must be a power of two")
        self.capacity = capacity
        self._mask = capacity - 1
        self._data = data
        self._counters = counters
        self._tail_at = tail
        self._head_at = head
        self._tail = counters[tail]  # as the producer published it
        self._head = counters[head]  # as the consumer published it

    @property
    def tail(self) -> int:
        return self._tail

    @property
    def head(self) -> int:
        return self._head

    def readable(self) -> int:
        """The bytes the consumer may read now."""
        count: int = self._counters[self._tail_at] - self._head
        if not 0 <= count <= self.capacity:
            raise self._corrupt("tail", count)
        return count

    def writable(self) -> int:
        """The bytes the producer may write now."""
        used: int = self._tail - self._counters[self._head_at]
        if not 0 <= used <= self.capacity:
            raise self._corrupt("head", used)
        return self.capacity - used

    def read(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes, the head published after they are copied out;
        ``b""`` when the ring is empty."""
        count = min(self.readable(), max_bytes)
        if count <= 0:
            return b""
        start = self._head & self._mask
        end = start + count
        if end <= self.capacity:
            out = bytes(self._data[start:end])
        else:
            out = bytes(self._data[start:]) + bytes(self._data[: end - self.capacity])
        self._head += count
        self._counters[self._head_at] = self._head
        return out

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Copies as much of ``data`` (bytes, or a byte-format view) as fits, then
        publishes the tail; how many bytes were taken, 0 when the ring is full."""
        count = min(self.writable(), len(data))
        if count <= 0:
            return 0
        start = self._tail & self._mask
        first = self.capacity - start
        if count == len(data) and count <= first:
            self._data[start : start + count] = data  # the usual case: no slice to make
        elif count <= first:
            self._data[start : start + count] = data[:count]
        else:
            self._data[start:] = data[:first]
            self._data[: count - first] = data[first:count]
        self._tail += count
        self._counters[self._tail_at] = self._tail
        return count

    def release(self) -> None:
        self._data.release()

    def _corrupt(self, which: str, count: int) -> OSError:
        return OSError(
            errno.EPROTO,
            f"the shared memory ring is corrupt: the peer's {which} puts {count} bytes in a "
            f"ring of {self.capacity}; the peer is not following the protocol",
        )


# ---------------------------------------------------------------- segments


def _posix_shm() -> Any:
    try:
        return importlib.import_module("_posixshmem")  # what SharedMemory itself uses
    except ImportError:
        raise OSError(
            errno.ENOTSUP,
            "shared memory streams need POSIX shared memory, which this Python lacks: "
            "use a tcp: or unix: stream",
        ) from None


def _check_machine() -> None:
    machine = platform.machine()
    # A 64-bit process too: a 32-bit one may read a 64-bit counter in two halves.
    if machine.lower() not in _ORDERED_MACHINES or struct.calcsize("P") != 8:
        raise OSError(
            errno.ENOTSUP,
            f"shared memory streams rely on x86-64's store and load ordering, which Python "
            f"cannot enforce on {machine or 'this machine'} in a "
            f"{struct.calcsize('P') * 8}-bit process: use a unix: stream",
        )


class _Segment:
    """A shared memory segment mapped here. Only the owner registers its name with the
    resource tracker and unlinks it: ``SharedMemory`` would also register the
    attaching side's (before Python 3.13), and that side's tracker would then
    unlink the segment, and warn, when its process exits."""

    def __init__(self, name: str, mapping: mmap.mmap, *, owner: bool) -> None:
        self.name = name
        self.view = memoryview(mapping)
        self._mapping = mapping
        self._linked = owner

    @classmethod
    def create(cls, size: int) -> _Segment:
        shm = _posix_shm()
        for _ in range(_NAME_ATTEMPTS):
            name = f"canopy-{os.getpid()}-{secrets.token_hex(6)}"  # see _made_here
            try:
                fd = shm.shm_open("/" + name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
            except FileExistsError:
                continue
            break
        else:
            raise FileExistsError(errno.EEXIST, "no free shared memory segment name was found")
        registered = False
        try:
            # Before anything else can fail: from here on, this process dying unlinks it.
            resource_tracker.register("/" + name, "shared_memory")
            registered = True
            os.ftruncate(fd, size)
            mapping = mmap.mmap(fd, size)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                shm.shm_unlink("/" + name)
            if registered:
                resource_tracker.unregister("/" + name, "shared_memory")
            raise
        finally:
            os.close(fd)  # the mapping stays
        return cls(name, mapping, owner=True)

    @classmethod
    def attach(cls, name: str, capacity: int) -> _Segment:
        try:
            fd = _posix_shm().shm_open("/" + name, os.O_RDWR, mode=0o600)
        except FileNotFoundError:
            raise FileNotFoundError(
                errno.ENOENT,
                f"attach: there is no shared memory segment {name!r}: the creating side has "
                "closed its channel, or the spec is not from this machine",
            ) from None
        try:
            size = os.fstat(fd).st_size
            if size != HEADER_SIZE + 2 * capacity:
                raise ValueError(
                    f"attach: segment {name!r} has {size} bytes, not the "
                    f"{HEADER_SIZE + 2 * capacity} of a stream of capacity {capacity}: "
                    "the spec does not match the segment"
                )
            segment = cls(name, mmap.mmap(fd, size), owner=False)
        finally:
            os.close(fd)
        with segment.view[:HEADER_SIZE] as header, header.cast("Q") as words:
            found = (words[_W_MAGIC], words[_W_VERSION], words[_W_CAPACITY])
        if found != (_MAGIC, _VERSION, capacity):
            segment.close()
            raise ValueError(
                f"attach: segment {name!r} is not a version {_VERSION} canopy stream of "
                f"capacity {capacity}: the spec does not match the segment"
            )
        return segment

    def close(self) -> None:
        """Unmaps (once the last view of it is gone) and, for the owner, unlinks."""
        self.view.release()
        with contextlib.suppress(BufferError):  # a view still held: unmapped when collected
            self._mapping.close()
        if self._linked:
            self._linked = False
            self._unlink(self.name)

    @staticmethod
    def _unlink(name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            _posix_shm().shm_unlink("/" + name)
        resource_tracker.unregister("/" + name, "shared_memory")


def _check_capacity(capacity: int) -> None:
    if not MIN_CAPACITY <= capacity <= MAX_CAPACITY or capacity & (capacity - 1):
        raise ValueError(
            f"capacity is {capacity}; it must be a power of two from {MIN_CAPACITY} "
            f"to {MAX_CAPACITY} bytes"
        )


def _check_spin(spin: float) -> None:
    if not 0 <= spin <= MAX_SPIN:
        raise ValueError(f"spin is {spin} seconds; it must be from 0 (never spin) to {MAX_SPIN}")


def _credentials(ancdata: list[tuple[int, int, bytes]]) -> tuple[int, int, int] | None:
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= 12:
            pid, uid, gid = _CRED.unpack_from(data)
            return pid, uid, gid
    return None


# ---------------------------------------------------------------- the ends


class _End:
    """What both drivers share: the segment, the two rings, the doorbell, the state,
    and the steps that never wait.

    Each driver holds a receive lock during ``receive`` and a send lock during
    ``send``. The memory is unmapped (``_try_release``) only by whoever finds the
    end closed and neither lock taken: so never under a call in progress, and a
    call that takes a lock checks ``_closed`` before it touches the memory.
    """

    def __init__(
        self, segment: _Segment, side: int, doorbell: socket.socket, *, spin: float
    ) -> None:
        self._segment = segment
        self._side = side
        self._sock = doorbell
        self._spin = spin
        doorbell.setblocking(False)
        self._words = segment.view[:HEADER_SIZE].cast("Q")
        capacity = self._words[_W_CAPACITY]
        self.capacity = capacity
        mine, peer = _base(side), _base(1 - side)
        first = HEADER_SIZE + side * capacity
        other = HEADER_SIZE + (1 - side) * capacity
        self._out = Ring(
            segment.view[first : first + capacity], self._words, mine + _TAIL, peer + _HEAD
        )
        self._in = Ring(
            segment.view[other : other + capacity], self._words, peer + _TAIL, mine + _HEAD
        )
        self._reader_waiting = mine + _READER_WAITING
        self._writer_waiting = mine + _WRITER_WAITING
        self._my_closed = mine + _CLOSED
        self._peer_reader_waiting = peer + _READER_WAITING
        self._peer_writer_waiting = peer + _WRITER_WAITING
        self._peer_closed = peer + _CLOSED
        # The creator's end of a socket pair has SO_PEERCRED naming its own process:
        # the attaching side's credentials come with its messages (SO_PASSCRED) instead.
        self._want_cred = side == 0 and _PASSCRED is not None
        self._cred: tuple[int, int, int] | None = None
        if not self._want_cred:
            self._cred = describe(doorbell).get("peercred")
        self._state = threading.Lock()  # closing and releasing
        self._closed = False
        self._released = False
        self._peer_gone = False

    def __repr__(self) -> str:
        state = " closed" if self._closed else " peer gone" if self._peer_gone else ""
        return f"<{type(self).__name__} {self._segment.name} side {self._side}{state}>"

    @property
    def info(self) -> dict[str, Any]:
        """``shm``: the segment's ``name`` and the ``capacity`` of each ring; and
        ``peercred``, the peer's (pid, uid, gid) as the kernel reports them: on the
        attaching side the creator's, from the doorbell (SO_PEERCRED); on the
        creating side the attacher's, once it has attached (SCM_CREDENTIALS)."""
        with self._state:
            if self._cred is None and self._want_cred and not self._released:
                with contextlib.suppress(OSError):
                    _, ancdata, _, _ = self._sock.recvmsg(
                        1, socket.CMSG_SPACE(_CRED.size), socket.MSG_PEEK | _DONTWAIT
                    )
                    self._cred = _credentials(ancdata)
        info: dict[str, Any] = {"shm": {"name": self._segment.name, "capacity": self.capacity}}
        if self._cred is not None:
            info["peercred"] = self._cred
        return info

    def _shut(self) -> bool:
        """Marks this side closed and ends the doorbell; False if it already was."""
        with self._state:
            if self._closed:
                return False
            self._closed = True
            self._words[self._my_closed] = 1
            # After the flag: the peer reads it when it sees the doorbell end.
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            return True

    def _idle(self) -> bool:
        """Whether no call is in progress; the caller holds ``_state``."""
        raise NotImplementedError

    def _try_release(self) -> None:
        """Unmaps and closes everything, if closed and no call is in progress; a
        call in progress does it as it leaves."""
        with self._state:
            if not self._closed or self._released or not self._idle():
                return
            self._released = True
            self._in.release()
            self._out.release()
            self._words.release()
            self._segment.close()
            self._sock.close()

    def _take(self, max_bytes: int) -> bytes | None:
        """Bytes from the ring; ``b""`` at the end; None when there is nothing yet."""
        if self._closed:
            return b""
        # The peer's flag before its tail: a peer publishes its last bytes, then closes.
        peer_closed = self._words[self._peer_closed]
        data = self._in.read(max_bytes)
        if data:
            if self._words[self._peer_writer_waiting]:
                self._ring()
            return data
        if peer_closed:
            return b""
        if self._peer_gone:
            raise ConnectionResetError(
                errno.ECONNRESET,
                "the shared memory stream's peer ended without closing it (its process died?)",
            )
        return None

    def _put(self, data: bytes | bytearray | memoryview) -> int:
        """Writes what fits of ``data`` (bytes); raises if nothing more can be sent."""
        if self._closed:
            raise OSError(errno.EBADF, "send on a closed shared memory stream")
        if self._words[self._peer_closed]:
            raise BrokenPipeError(
                errno.EPIPE, "the shared memory stream's peer has closed it: nothing more is read"
            )
        if self._peer_gone:
            raise ConnectionResetError(
                errno.ECONNRESET,
                "the shared memory stream's peer ended without closing it (its process died?)",
            )
        written = self._out.write(data)
        if written and self._words[self._peer_reader_waiting]:
            self._ring()
        return written

    def _data_ready(self) -> bool:
        return (
            self._closed
            or self._peer_gone
            or self._words[self._peer_closed] != 0
            or self._in.readable() != 0
        )

    def _space_ready(self) -> bool:
        return (
            self._closed
            or self._peer_gone
            or self._words[self._peer_closed] != 0
            or self._out.writable() != 0
        )

    def _ring(self) -> None:
        try:
            self._sock.send(b"\x01", _DONTWAIT | _NOSIGNAL)
        except (BlockingIOError, InterruptedError):
            pass  # the doorbell is full of rings already: one more adds nothing
        except OSError:
            self._peer_gone = True

    def _drain(self) -> None:
        """Empties the doorbell; its end means the peer's end."""
        try:
            if self._want_cred and self._cred is None:
                data, ancdata, _, _ = self._sock.recvmsg(_DRAIN, socket.CMSG_SPACE(_CRED.size))
                self._cred = _credentials(ancdata)
            else:
                data = self._sock.recv(_DRAIN)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._peer_gone = True


def _bytes_of(data: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
    """``data`` as something whose length counts bytes."""
    if isinstance(data, bytes | bytearray):
        return data
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


class ShmStream(_End):
    """The blocking end of a shared memory stream; made by ``Channel.stream`` and
    ``attach``. One thread may send while another receives; ``close`` from any
    thread wakes both."""

    def __init__(
        self, segment: _Segment, side: int, doorbell: socket.socket, *, spin: float
    ) -> None:
        super().__init__(segment, side, doorbell, spin=spin)
        self._receive_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._bell = threading.Lock()  # held by the one thread listening on the doorbell
        self._rung = threading.Condition()  # where another thread waits meanwhile
        self._sleepers = 0
        # poll() rather than a blocking recv() under SO_RCVTIMEO, which would save a
        # system call a wait but counts its timeout in scheduler ticks (4 ms and more).
        self._poller = select.poll()
        self._poller.register(doorbell, select.POLLIN)

    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Writes all of ``data``, in pieces as the peer frees space if it is larger
        than the ring."""
        data = _bytes_of(data)
        try:
            with self._send_lock:
                written = self._put(data)
                if written < len(data):
                    with memoryview(data) as view:
                        self._send_rest(view, written)
        finally:
            if self._closed:
                self._try_release()

    def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        if max_bytes < 1:
            raise ValueError(f"max_bytes is {max_bytes}; it must be at least 1")
        try:
            with self._receive_lock:
                data = self._take(max_bytes)
                while data is None:
                    self._wait(self._data_ready, self._reader_waiting)
                    data = self._take(max_bytes)
                return data
        finally:
            if self._closed:
                self._try_release()

    def close(self) -> None:
        if not self._shut():
            return
        with self._rung:
            self._rung.notify_all()
        self._try_release()

    def _idle(self) -> bool:
        if not self._receive_lock.acquire(blocking=False):
            return False
        try:
            return not self._send_lock.locked()
        finally:
            self._receive_lock.release()

    def _send_rest(self, view: memoryview, sent: int) -> None:
        # A turn that sends nothing waits, and the next sends a byte at least (or raises).
        for _ in range(2 * (len(view) - sent) + 2):
            if sent == len(view):
                return
            written = self._put(view[sent:])
            sent += written
            if not written:
                self._wait(self._space_ready, self._writer_waiting)

    def _wait(self, ready: Callable[[], bool], flag: int) -> None:
        if self._spin > 0:
            until = time.perf_counter() + self._spin
            for _ in range(_SPIN_CHECKS):
                if ready():
                    return
                if time.perf_counter() > until:
                    break
                os.sched_yield()  # the peer may be waiting for this very CPU
        self._words[flag] = 1
        try:
            seconds = LOST_WAKEUP_WAIT
            while not ready():  # rechecked after the flag is set: see the module's notes
                self._sleep(ready, seconds)
                seconds = min(seconds * 2, IDLE_WAIT)
        finally:
            self._words[flag] = 0

    def _sleep(self, ready: Callable[[], bool], seconds: float) -> None:
        if self._bell.acquire(blocking=False):
            try:
                if self._poller.poll(seconds * 1000):
                    self._drain()
            finally:
                self._bell.release()
            if self._sleepers:
                with self._rung:
                    self._rung.notify_all()
            return
        with self._rung:
            self._sleepers += 1
            try:
                if self._bell.locked() and not ready():
                    self._rung.wait(seconds)
            finally:
                self._sleepers -= 1


class AsyncShmStream(_End):
    """The asyncio end of a shared memory stream; made by ``Channel.astream`` and
    ``aattach`` on the running loop, whose reader callback listens on the doorbell.
    Its ``spin`` yields to the loop between checks: it never holds the loop up."""

    def __init__(
        self, segment: _Segment, side: int, doorbell: socket.socket, *, spin: float
    ) -> None:
        self._loop = asyncio.get_running_loop()
        super().__init__(segment, side, doorbell, spin=spin)
        self._waiters: set[asyncio.Future[None]] = set()
        self._receive_lock = asyncio.Lock()
        self._send_lock = asyncio.Lock()
        self._listening = True
        self._loop.add_reader(doorbell.fileno(), self._on_bell)

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        data = _bytes_of(data)
        try:
            async with self._send_lock:
                written = self._put(data)
                if written < len(data):
                    with memoryview(data) as view:
                        await self._send_rest(view, written)
        finally:
            if self._closed:
                self._try_release()

    async def receive(self, max_bytes: int = RECEIVE_SIZE) -> bytes:
        if max_bytes < 1:
            raise ValueError(f"max_bytes is {max_bytes}; it must be at least 1")
        try:
            async with self._receive_lock:
                data = self._take(max_bytes)
                while data is None:
                    await self._wait(self._data_ready, self._reader_waiting)
                    data = self._take(max_bytes)
                return data
        finally:
            if self._closed:
                self._try_release()

    async def close(self) -> None:
        if not self._shut():
            return
        self._stop_listening()
        self._wake_all()
        self._try_release()

    def _idle(self) -> bool:
        return not (self._receive_lock.locked() or self._send_lock.locked())

    async def _send_rest(self, view: memoryview, sent: int) -> None:
        for _ in range(2 * (len(view) - sent) + 2):  # as in ShmStream._send_rest
            if sent == len(view):
                return
            written = self._put(view[sent:])
            sent += written
            if not written:
                await self._wait(self._space_ready, self._writer_waiting)

    async def _wait(self, ready: Callable[[], bool], flag: int) -> None:
        if self._spin > 0:
            until = time.perf_counter() + self._spin
            for _ in range(_SPIN_CHECKS):
                await asyncio.sleep(0)
                if ready():
                    return
                if time.perf_counter() > until:
                    break
        self._words[flag] = 1
        try:
            seconds = LOST_WAKEUP_WAIT
            while not ready():
                woken = self._loop.create_future()
                self._waiters.add(woken)
                timer = self._loop.call_later(seconds, _wake, woken)
                try:
                    await woken
                finally:
                    timer.cancel()
                    self._waiters.discard(woken)
                seconds = min(seconds * 2, IDLE_WAIT)
        finally:
            self._words[flag] = 0

    def _on_bell(self) -> None:
        self._drain()
        if self._peer_gone:
            self._stop_listening()  # the end stays readable: it would be called forever
        self._wake_all()

    def _wake_all(self) -> None:
        for woken in self._waiters:
            _wake(woken)

    def _stop_listening(self) -> None:
        if self._listening:
            self._listening = False
            self._loop.remove_reader(self._sock.fileno())


def _wake(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


# ---------------------------------------------------------------- making and joining


# The channels made here whose child end is still open, which an attach in this
# process takes. A spec made here whose channel is not in it must not be attached
# through its fd number: that fd is closed, or already someone else's.
_CHANNELS: dict[str, Channel] = {}
_ATTACHED: set[str] = set()  # segments attached in this process through an inherited fd
_REGISTRY_LOCK = threading.Lock()


class Channel:
    """The creating side: owns the segment and both doorbells until closed.

    Start the other side with ``spec`` (plain text) and, in another process,
    ``pass_fds``; call ``close_child_end`` once that process has started, so that
    its death ends the doorbell here. Take this side's end with ``stream`` or
    ``astream`` (once); the segment's name is unlinked when that end is closed, or
    by ``close`` if no end was taken. ``close`` also closes the child's doorbell.
    """

    def __init__(
        self,
        segment: _Segment,
        mine: socket.socket,
        child: socket.socket,
        *,
        capacity: int,
        spin: float,
    ) -> None:
        self._segment: _Segment | None = segment
        self._mine = mine
        self._child: socket.socket | None = child
        self._spin = spin
        self._end: _End | None = None
        self._taken = False
        self._local = False  # attached in this process: neither end spins
        self._name = segment.name
        self.capacity = capacity
        self.spec = f"canopy-shm:1:{segment.name}:{capacity}:{child.fileno()}"
        self.pass_fds: tuple[int, ...] = (child.fileno(),)

    @classmethod
    def create(cls, capacity: int = DEFAULT_CAPACITY, *, spin: float = DEFAULT_SPIN) -> Channel:
        """A new segment of two ``capacity``-byte rings and its doorbell. ``spin`` is
        the seconds a blocking end re-reads an empty or full ring before sleeping."""
        _check_capacity(capacity)
        _check_spin(spin)
        _check_machine()
        segment = _Segment.create(HEADER_SIZE + 2 * capacity)
        try:
            with segment.view[:HEADER_SIZE] as header, header.cast("Q") as words:
                words[_W_MAGIC], words[_W_VERSION], words[_W_CAPACITY] = _MAGIC, _VERSION, capacity
            mine, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        except BaseException:
            segment.close()
            raise
        if _PASSCRED is not None:
            with contextlib.suppress(OSError):
                mine.setsockopt(socket.SOL_SOCKET, _PASSCRED, 1)
        channel = cls(segment, mine, child, capacity=capacity, spin=spin)
        with _REGISTRY_LOCK:
            _CHANNELS[segment.name] = channel
        return channel

    def __repr__(self) -> str:
        return f"<Channel {self.spec}>"

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stream(self) -> ShmStream:
        """The creating side's blocking end; once."""
        segment = self._take()
        end = ShmStream(segment, 0, self._mine, spin=0.0 if self._local else self._spin)
        self._end = end
        return end

    def astream(self) -> AsyncShmStream:
        """The creating side's asyncio end, on the running loop; once."""
        asyncio.get_running_loop()  # before the segment is taken
        segment = self._take()
        end = AsyncShmStream(segment, 0, self._mine, spin=0.0 if self._local else self._spin)
        self._end = end
        return end

    def close_child_end(self) -> None:
        """Closes this process's copy of the child's doorbell, once the child has
        started: until then the child's death does not end the stream here."""
        with _REGISTRY_LOCK:
            child, self._child = self._child, None
            _CHANNELS.pop(self._name, None)
        if child is not None:
            child.close()

    def close(self) -> None:
        """Closes the child's doorbell and, if no end was taken, the segment (unlinked)
        and this side's doorbell. A taken end is closed by its own ``close``.
        Idempotent."""
        self.close_child_end()
        if not self._taken and self._segment is not None:
            segment, self._segment = self._segment, None
            self._taken = True
            segment.close()
            self._mine.close()

    def _take(self) -> _Segment:
        if self._taken or self._segment is None:
            raise RuntimeError(
                "this channel's end was already taken (stream() or astream(), once) or the "
                "channel is closed: make a new Channel for another stream"
            )
        segment, self._segment = self._segment, None
        self._taken = True
        return segment

    def _child_end(self) -> socket.socket:
        """The child's doorbell, for an ``attach`` in this process; the caller holds
        ``_REGISTRY_LOCK``."""
        child, self._child = self._child, None
        _CHANNELS.pop(self._name, None)
        assert child is not None  # noqa: S101 - registered only while it is open
        self._local = True
        if self._end is not None:
            self._end._spin = 0.0
        return child


def _parse(spec: str) -> tuple[str, int, int]:
    found = _SPEC.fullmatch(spec) if isinstance(spec, str) else None
    if found is None:
        raise ValueError(
            f"{spec!r} is not a shared memory stream spec: pass Channel.spec as it is "
            f"({_SPEC_FORM})"
        )
    name, capacity, fd = found.group(1), int(found.group(2)), int(found.group(3))
    _check_capacity(capacity)
    return name, capacity, fd


def _inherited(fd: int, spec: str) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as e:
        raise OSError(
            e.errno,
            f"attach: the doorbell of {spec!r}, fd {fd}, is not a socket open in this "
            f"process ({e.strerror}): start it with subprocess.Popen(..., "
            "pass_fds=channel.pass_fds)",
        ) from None
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.detach()  # not ours to close
        raise ValueError(f"attach: fd {fd} of {spec!r} is not the channel's Unix socket")
    return sock


def _made_here(name: str) -> bool:
    """Whether this process made the segment: its name carries the creator's pid (a
    forked child inherits the fds, so attaches through them like any other)."""
    return name.startswith(f"canopy-{os.getpid()}-")


def _attach(spec: str, spin: float) -> tuple[_Segment, socket.socket, float]:
    name, capacity, fd = _parse(spec)
    _check_spin(spin)
    _check_machine()
    # The segment first: a spec naming none must not touch the fd it names.
    segment = _Segment.attach(name, capacity)
    try:
        with _REGISTRY_LOCK:
            if _made_here(name):
                channel = _CHANNELS.get(name)
                if channel is None:
                    raise ValueError(
                        f"attach: {spec!r} was already attached, or its channel's child end "
                        "closed: a channel has one attaching side"
                    )
                doorbell = channel._child_end()
                spin = 0.0
            else:
                if name in _ATTACHED:
                    raise ValueError(f"attach: {spec!r} was already attached in this process")
                doorbell = _inherited(fd, spec)
                _ATTACHED.add(name)
    except BaseException:
        segment.close()
        raise
    # A first ring: it carries this side's credentials to the creator (SO_PASSCRED).
    with contextlib.suppress(OSError):
        doorbell.send(b"\x00", _DONTWAIT | _NOSIGNAL)
    return segment, doorbell, spin


def attach(spec: str, *, spin: float = DEFAULT_SPIN) -> ShmStream:
    """The attaching side's blocking end of the channel ``spec`` names (``Channel.spec``):
    in a process started with the channel's ``pass_fds``, or in the creating process."""
    segment, doorbell, spin = _attach(spec, spin)
    return ShmStream(segment, 1, doorbell, spin=spin)


def aattach(spec: str, *, spin: float = DEFAULT_SPIN) -> AsyncShmStream:
    """``attach`` for asyncio, on the running loop."""
    asyncio.get_running_loop()  # before anything is opened
    segment, doorbell, spin = _attach(spec, spin)
    return AsyncShmStream(segment, 1, doorbell, spin=spin)


__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_SPIN",
    "IDLE_WAIT",
    "LOST_WAKEUP_WAIT",
    "MAX_CAPACITY",
    "MAX_SPIN",
    "MIN_CAPACITY",
    "AsyncShmStream",
    "Channel",
    "Ring",
    "ShmStream",
    "aattach",
    "attach",
]
