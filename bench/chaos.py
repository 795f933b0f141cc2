"""Chaos: child-process zones killed and TCP links cut at random moments while workers
keep calling through them; afterwards nothing is leaked, no call hung, and every
failure a caller saw was a clear Canopy error.

    .venv/bin/python bench/chaos.py                    # 100 rounds in each mode
    .venv/bin/python bench/chaos.py --rounds 5 --mode blocking --seed 7

This process's zone is linked to child-process zones (``canopy.transports.child``)
and to a server process (bench/suite.py's) over TCP on loopback, through a relay that
can cut the connection from outside both ends, as a failing network would. Workers
make mixed calls, posts and reference transfers through them: objects of the server
handed to a child and kept there, objects of this zone kept by either. Each round, at
a random moment (``--seed``), kills one child with SIGKILL by its pid and starts
another in its place, or cuts one TCP link and connects again. Once quiet, every
zone still standing must hold nothing but its links' roots, the server must be back
to its baseline once this zone has gone, and every child process must have ended.

Every call waits at most ``CALL_TIMEOUT`` s for its reply, and a watchdog reports an
operation that has not returned after ``HUNG_AFTER`` s, so "no call hangs" is
checked. The command exits non-zero on any violation: a failure that is not one of
the clear errors a dead link gives (``CLEAR``), a call that timed out or hung, a
wrong answer, anything left behind, or fewer rounds than asked within ``--time``
(seconds of rounds for the whole run; it ends within ``--time`` + ``GRACE`` s
whatever happens).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import faulthandler
import inspect
import itertools
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import suite

BENCH = Path(__file__).resolve().parent
WHERE = "CANOPY_CHAOS_DIR"
"""The environment variable telling a child zone where bench.idl's module is."""
CALL_TIMEOUT = 10.0
"""Seconds a call may wait for its reply. A call on a link that died fails at once, so
under chaos a ``CallTimeout`` is a hang, and a violation."""
HUNG_AFTER = CALL_TIMEOUT + 5.0
"""Seconds after which an operation that has neither returned nor raised is reported."""
SETTLE_TIMEOUT = 10.0
"""Seconds the releases of the last drops may take to arrive once everything is quiet."""
GRACE = 90.0
"""Seconds past ``--time`` after which the watchdog ends the run, whatever it is doing."""
CLEAR = {
    "TRANSPORT_ERROR": "the link the call went over died",
    "CALL_CANCELLED": "the call was pending when its link closed",
    "OBJECT_GONE": "the proxy's object went with a link that died",
}
"""The failures a caller may see when a zone dies under it, and what each means: any
other (an ``ObjectNotFound``, say) is a violation."""
BACK_OFF = 0.002
"""Seconds a worker waits after a failure, as a client would, rather than spin on a
zone that is being replaced."""
TEXT = "sixteen bytes!!!"
ROOT_ONLY = (1, 1, 0, 0)
"""A quiet zone linked to one other: one link, its root exported, no proxy, no item."""


# ---------------------------------------------------------------- zones in every process


def child_root(zone: Any) -> Any:
    """The root of a child zone (entry point ``chaos:child_root``): the bench's service."""
    return suite.implementations(suite.load_idl(os.environ[WHERE]))[0](zone)


def child_env(where: str) -> dict[str, str]:
    """A child's environment: this directory and this process's canopy on its path."""
    import canopy

    path = [str(BENCH), str(Path(canopy.__file__).resolve().parents[1])]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), WHERE: where}


async def settled(outcome: Any) -> Any:
    """A call's result in either mode: a blocking proxy's call returned it, an asyncio
    one's is awaited (one source for both modes, as in tests/scenarios.py)."""
    return await outcome if inspect.isawaitable(outcome) else outcome


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie nobody reaped yet counts as ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return "State:\tZ" in status


# ---------------------------------------------------------------- cutting TCP links


class Relay:
    """TCP on loopback between this zone and the server, a port per link, so that a link
    can be cut from outside both of its ends: its two sockets are shut and reset at
    once, and neither end is told beforehand."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.removeprefix("tcp://").rpartition(":")
        self.upstream = (host, int(port))
        self._lock = threading.Lock()
        self._pairs: dict[str, list[_Pair]] = {}
        self._closed = threading.Event()

    def open(self) -> str:
        """A new port in front of the server; the URL to connect to."""
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.1)  # looks at ``_closed`` this often
        url = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        with self._lock:
            self._pairs[url] = []
        threading.Thread(
            target=self._accept, args=(listener, url), name=f"chaos-relay-{url}", daemon=True
        ).start()
        return url

    def cut(self, url: str) -> int:
        """Cut every connection made through ``url``; how many there were."""
        with self._lock:
            pairs, self._pairs[url] = self._pairs[url], []
        for pair in pairs:
            pair.cut()
        return len(pairs)

    def close(self) -> None:
        self._closed.set()
        for url in list(self._pairs):
            self.cut(url)

    def _accept(self, listener: socket.socket, url: str) -> None:
        with listener:
            while not self._closed.is_set():
                try:
                    near, _ = listener.accept()
                except TimeoutError:
                    continue
                try:
                    far = socket.create_connection(self.upstream, timeout=CALL_TIMEOUT)
                except OSError:
                    near.close()  # the client sees its link refused
                    continue
                far.settimeout(None)
                pair = _Pair(near, far)
                with self._lock:
                    self._pairs[url].append(pair)
                pair.start()


class _Pair:
    """One relayed connection: a pump each way. An end that closes is passed on as a
    close (half-close, as TCP does); a cut shuts both sockets and makes closing them
    reset both connections. The last pump out closes the sockets."""

    def __init__(self, near: socket.socket, far: socket.socket) -> None:
        self.sockets = (near, far)
        self._lock = threading.Lock()
        self._pumping = 2

    def start(self) -> None:
        near, far = self.sockets
        for source, sink in ((near, far), (far, near)):
            threading.Thread(
                target=self._pump, args=(source, sink), name="chaos-pump", daemon=True
            ).start()

    def cut(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)  # wakes both pumps

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            self.cut()
        with self._lock:
            self._pumping -= 1
            last = self._pumping == 0
        if last:
            for sock in self.sockets:
                sock.close()


# ---------------------------------------------------------------- what the callers saw


class Tally:
    """What every worker saw: failures by type, and the violations (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.failures: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, str] = {}
        self.violations: list[str] = []
        self.tracebacks: list[str] = []  # of the first few unclear failures

    def failed(self, doing: str, error: BaseException) -> None:
        name = type(error).__name__
        with self._lock:
            self.failures[name] += 1
            self.examples.setdefault(name, f"{doing}: {error}")
        why = unclear(error)
        if why:
            self.violation(f"{doing}: {name}({error}) {why}")
            with self._lock:
                if len(self.tracebacks) < 5:
                    self.tracebacks.append("".join(traceback.format_exception(error)))

    def violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)


def unclear(error: BaseException) -> str:
    """Why ``error`` is not a clear failure of a call whose zone died; "" if it is."""
    from canopy import CallTimeout, CanopyError

    if isinstance(error, CallTimeout):
        return (
            f"is a hang: the call waited {CALL_TIMEOUT:g} s for a link that should have failed it"
        )
    if not isinstance(error, CanopyError):
        return "is not a Canopy error"
    if error.code_name not in CLEAR:
        return f"is not one of the failures a dead zone gives ({', '.join(CLEAR)})"
    if not error.message:
        return "carries no message"
    return ""


# ---------------------------------------------------------------- the zones under chaos


@dataclass
class Slot:
    """A place for one zone this one is linked to: a child process or a link to the server."""

    kind: str  # "child" or "link"
    name: str
    proxy: Any
    url: str = ""  # a link's port on the relay
    pid: int = 0  # a child's process


class Rig:
    """This zone, its slots, and how each is broken and mended."""

    def __init__(self, zone: Any, idl: ModuleType, where: str, relay: Relay) -> None:
        self.zone = zone
        self.idl = idl
        self.env = child_env(where)
        self.relay = relay
        self.item: Any = suite.implementations(idl)[1]
        self.slots: list[Slot] = []
        self.pids: list[int] = []
        self.kills = 0
        self.cuts = 0
        self._generations = itertools.count(1)

    def pick(self, rng: random.Random) -> Slot:
        return rng.choice(self.slots)

    async def start(self, children: int) -> None:
        """``children`` child zones and the link to the server (one: a zone has at most
        one link to another)."""
        for i in range(children):
            self.slots.append(await self.spawned(f"child{i}"))
        self.slots.append(await self.connected("server", self.relay.open()))

    async def spawned(self, name: str) -> Slot:
        proxy = await settled(
            self.zone.spawn(
                name, "chaos:child_root", self.idl.i_bench, env=self.env, call_timeout=CALL_TIMEOUT
            )
        )
        pid: int = self.zone.children[name].pid
        self.pids.append(pid)
        return Slot("child", name, proxy, pid=pid)

    async def connected(self, name: str, url: str) -> Slot:
        proxy = await settled(
            self.zone.connect(
                url, self.idl.i_bench, timeout=CALL_TIMEOUT, call_timeout=CALL_TIMEOUT
            )
        )
        return Slot("link", name, proxy, url=url)

    async def strike(self, rng: random.Random) -> None:
        """One round: kill a child zone's process or cut a link, and put a new one in
        its place."""
        index = rng.randrange(len(self.slots))
        slot = self.slots[index]
        name = f"{slot.name.partition('.')[0]}.{next(self._generations)}"
        if slot.kind == "child":
            os.kill(slot.pid, signal.SIGKILL)
            self.kills += 1
            self.slots[index] = await self.spawned(name)
        else:
            self.relay.cut(slot.url)
            self.cuts += 1
            self.slots[index] = await self.connected(name, slot.url)

    async def left(self) -> list[str]:
        """What the zones still standing hold beyond their links' roots: nothing, once
        every drop has arrived."""
        self.zone.collect()
        found = []
        if exported := self.zone.exported():
            found.append(f"this zone's objects still held: {exported}")
        imported = len(self.zone.imported())
        if imported != len(self.slots):
            found.append(
                f"this zone holds {imported} proxies, not just its {len(self.slots)} roots"
            )
        if self.item.alive:
            found.append(f"{self.item.alive} objects of this zone still alive")
        for slot in self.slots:  # each linked to this zone only, holding its root for it
            tables = (*await settled(slot.proxy.tables()), await settled(slot.proxy.live()))
            if tables != ROOT_ONLY:
                found.append(f"{slot.name}: {describe(tables)}; expected {describe(ROOT_ONLY)}")
        return found

    async def close(self) -> list[str]:
        """Drop every slot and close the zone; what it held after, or left running."""
        from canopy import close

        for slot in self.slots:
            close(slot.proxy)
        self.slots.clear()
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            self.zone.collect()
            if not self._still_there():
                break
            await asyncio.sleep(0.05)
        found = self._still_there()
        await settled(self.zone.aclose() if hasattr(self.zone, "aclose") else self.zone.close())
        running = [pid for pid in self.pids if not gone(pid)]
        if running:
            found.append(f"child processes still running once closed: {running}")
        return found

    def _still_there(self) -> list[str]:
        found = []
        if self.zone.exported() or self.zone.imported():
            found.append(
                f"this zone still exports {self.zone.exported()} and imports "
                f"{self.zone.imported()} with every proxy closed"
            )
        if self.zone.children:
            found.append(f"child zones still known: {sorted(self.zone.children)}")
        if running := [pid for pid in self.pids if not gone(pid)]:
            found.append(f"child processes still running: {running}")
        return found


def describe(tables: tuple[int, ...]) -> str:
    links, exported, imported, items = tables
    return f"{links} links, {exported} exported objects, {imported} proxies, {items} items alive"


# ---------------------------------------------------------------- the workers


class Worker:
    """Makes random operations on random slots until told to stop; the watchdog reads
    ``doing`` and ``since`` to see one that hangs."""

    def __init__(self, rig: Rig, tally: Tally, number: int, seed: int) -> None:
        self.rig = rig
        self.tally = tally
        self.rng = random.Random(f"{seed}/worker/{number}")
        self.doing = ""
        self.since: float | None = None
        self.calls = 0
        self.operations = 0
        self.slowest = 0.0

    async def call(self, outcome: Any) -> Any:
        """``outcome`` settled (see ``settled``), and counted."""
        result = await settled(outcome)
        self.calls += 1
        return result

    async def run(self, stopping: Callable[[], bool]) -> None:
        while not stopping():
            operation = self.rng.choice(OPERATIONS)
            a, b = self.rig.pick(self.rng), self.rig.pick(self.rng)
            self.doing = f"{operation.__name__}({a.name}, {b.name})"
            self.since = began = time.monotonic()
            try:
                await operation(self, a.proxy, b.proxy)
            except AssertionError as error:
                self.tally.violation(f"{self.doing}: a wrong answer: {error}")
            except Exception as error:  # whatever the caller sees is what is judged
                self.calls += 1
                self.tally.failed(self.doing, error)
                pause = BACK_OFF
            else:
                pause = 0.0
            self.since = None
            self.slowest = max(self.slowest, time.monotonic() - began)
            self.operations += 1
            del a, b  # the slots they were: a dead one's proxy goes now
            await asyncio.sleep(pause)  # asyncio: the others' turn


async def add(w: Worker, a: Any, b: Any) -> None:
    n = w.rng.randrange(1 << 30)
    got = await w.call(a.add(n, 1))
    assert got == n + 1, f"add({n}, 1) gave {got}"


async def post(w: Worker, a: Any, b: Any) -> None:
    await w.call(a.put(TEXT))


async def made_and_dropped(w: Worker, a: Any, b: Any) -> None:
    item = await w.call(a.make_item())
    assert await w.call(item.id()) == 1


async def given_and_dropped(w: Worker, a: Any, b: Any) -> None:
    await w.call(a.take_item(w.rig.item()))


async def given_and_kept(w: Worker, a: Any, b: Any) -> None:
    await w.call(a.keep_item(w.rig.item()))


async def handed_on(w: Worker, a: Any, b: Any) -> None:
    """An object of one zone passed to another through this one."""
    item = await w.call(a.make_item())
    await w.call(b.take_item(item))


async def handed_on_and_kept(w: Worker, a: Any, b: Any) -> None:
    """An object of one zone kept by another, through this one, until ``dropped``."""
    item = await w.call(a.make_item())
    await w.call(b.keep_item(item))


async def dropped(w: Worker, a: Any, b: Any) -> None:
    await w.call(a.drop_items())


OPERATIONS: list[Callable[[Worker, Any, Any], Awaitable[None]]] = [
    add,
    add,
    add,
    post,
    post,
    made_and_dropped,
    made_and_dropped,
    given_and_dropped,
    given_and_kept,
    handed_on,
    handed_on_and_kept,
    dropped,
]
"""Drawn from at random: the repeated ones more often."""


def watch(
    workers: list[Worker], tally: Tally, done: threading.Event, end_by: float
) -> threading.Thread:
    """A thread that reports an operation that has not returned after ``HUNG_AFTER`` s,
    with every thread's stack, and ends the whole run at ``end_by``: a hang cannot
    make the command hang."""

    def run() -> None:
        nonlocal end_by
        reported: set[tuple[int, float]] = set()
        while not done.wait(0.5):
            now = time.monotonic()
            for worker in workers:
                since = worker.since
                if since is None or now - since <= HUNG_AFTER:
                    continue
                if (id(worker), since) not in reported:
                    reported.add((id(worker), since))
                    tally.violation(f"{worker.doing} hung: nothing after {now - since:.0f} s")
                    faulthandler.dump_traceback(all_threads=True)
                    end_by = min(end_by, now + CALL_TIMEOUT)  # time for the rest to report
            if now > end_by:
                print("chaos: the run did not end within its bound; every stack:", file=sys.stderr)
                faulthandler.dump_traceback(all_threads=True)
                for text in tally.violations:
                    print(f"  {text}", file=sys.stderr)
                os._exit(2)  # the server and the children end with this process

    thread = threading.Thread(target=run, name="chaos-watchdog", daemon=True)
    thread.start()
    return thread


# ---------------------------------------------------------------- one run


@dataclass
class Report:
    mode: str
    rounds: int = 0
    kills: int = 0
    cuts: int = 0
    calls: int = 0
    operations: int = 0
    slowest: float = 0.0
    processes: int = 0
    seconds: float = 0.0
    baseline: tuple[int, ...] = ()
    tally: Tally = field(default_factory=Tally)
    leaks: list[str] = field(default_factory=list)


async def server_tables(mode: str, url: str, idl: ModuleType) -> tuple[int, ...]:
    """The server's links, exported objects, proxies and live items, seen from a zone of
    its own connected for the purpose (it counts as the one link and object)."""
    import canopy

    zone: Any = (
        canopy.Zone("chaos-probe") if mode == "blocking" else canopy.AsyncZone("chaos-probe")
    )
    try:
        probe = await settled(zone.connect(url, idl.i_bench, timeout=CALL_TIMEOUT))
        return (*await settled(probe.tables()), await settled(probe.live()))
    finally:
        await settled(zone.aclose() if mode == "asyncio" else zone.close())


async def back_to(baseline: tuple[int, ...], mode: str, url: str, idl: ModuleType) -> list[str]:
    """Nothing, once the server is back to ``baseline``; what it holds if it is not
    within ``SETTLE_TIMEOUT``."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        now = await server_tables(mode, url, idl)
        if now == baseline:
            return []
        if time.monotonic() > deadline:
            return [f"the server holds {describe(now)}; at the start {describe(baseline)}"]
        await asyncio.sleep(0.1)


async def chaos(mode: str, args: argparse.Namespace, where: str, url: str, until: float) -> Report:
    """``args.rounds`` rounds of chaos in ``mode`` (till ``until`` at most), then the checks."""
    import canopy

    report = Report(mode)
    started = time.monotonic()
    idl = suite.load_idl(where)
    report.baseline = await server_tables(mode, url, idl)
    relay = Relay(url)
    rig = Rig(
        canopy.Zone("chaos") if mode == "blocking" else canopy.AsyncZone("chaos"), idl, where, relay
    )
    tally = report.tally
    workers = [Worker(rig, tally, i, args.seed) for i in range(args.workers)]
    stop = threading.Event()
    done = threading.Event()
    watch(workers, tally, done, until + GRACE)
    try:
        await rig.start(args.children)
        running = start(mode, workers, stop)
        rng = random.Random(f"{args.seed}/{mode}")
        try:
            while report.rounds < args.rounds and time.monotonic() < until:
                await asyncio.sleep(rng.uniform(0, 2 * args.gap))
                await rig.strike(rng)
                report.rounds += 1
        finally:
            stop.set()
            await finish(running)
        for slot in rig.slots:
            await settled(slot.proxy.drop_items())
        report.leaks = await quiet(rig)
    except Exception as error:  # a violation, reported; the zones are cleaned up all the same
        tally.violation("the chaos itself failed: " + "".join(traceback.format_exception(error)))
    finally:
        report.leaks += await rig.close()
        relay.close()
        done.set()
    report.leaks += await back_to(report.baseline, mode, url, idl)
    if report.rounds < args.rounds:
        tally.violation(f"only {report.rounds} of {args.rounds} rounds within --time")
    report.kills, report.cuts, report.processes = rig.kills, rig.cuts, len(rig.pids)
    report.calls = sum(w.calls for w in workers)
    report.operations = sum(w.operations for w in workers)
    report.slowest = max((w.slowest for w in workers), default=0.0)
    report.seconds = time.monotonic() - started
    return report


def start(mode: str, workers: list[Worker], stop: threading.Event) -> list[Any]:
    """The workers running: on threads of their own (blocking) or as tasks (asyncio)."""
    if mode == "asyncio":
        return [asyncio.get_running_loop().create_task(w.run(stop.is_set)) for w in workers]
    threads = [
        threading.Thread(target=asyncio.run, args=(w.run(stop.is_set),), name=f"chaos-worker-{i}")
        for i, w in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    return threads


async def finish(running: list[Any]) -> None:
    """Wait for the workers to stop (each ends its operation first); the watchdog sees one
    that does not."""
    if running and isinstance(running[0], threading.Thread):
        for thread in running:
            thread.join()
    else:
        await asyncio.gather(*running)


async def quiet(rig: Rig) -> list[str]:
    """What is left once every drop had ``SETTLE_TIMEOUT`` s to arrive."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        left = await rig.left()
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- the command


def summary(r: Report) -> str:
    t = r.tally
    failures = ", ".join(f"{name} {n:,}" for name, n in t.failures.most_common()) or "none"
    leaks = "; ".join(r.leaks) or (
        f"none (the server back to {describe(r.baseline)}; {r.processes} child processes, "
        "all ended)"
    )
    lines = [
        f"{r.mode}: {r.rounds} rounds ({r.kills} child processes killed, {r.cuts} TCP links "
        f"cut) in {r.seconds:.1f} s",
        f"  {r.calls:,} calls in {r.operations:,} operations; slowest operation {r.slowest:.2f} s",
        f"  failures callers saw: {failures}",
        f"  leaks: {leaks}",
        f"  violations: {len(t.violations) or 'none'}",
    ]
    lines += [f"    {name}, e.g. {t.examples[name]}" for name in t.failures]
    lines += [f"    {text}" for text in t.violations[:20]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100, help="rounds of chaos in each mode")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mode", choices=("blocking", "asyncio", "both"), default="both")
    parser.add_argument("--time", type=float, default=600.0, help="seconds of rounds, in all")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--children", type=int, default=2, help="child-process zones")
    parser.add_argument("--gap", type=float, default=0.05, help="mean seconds between rounds")
    args = parser.parse_args()
    modes = ("blocking", "asyncio") if args.mode == "both" else (args.mode,)
    began = time.monotonic()
    reports = []
    with suite.workdir("canopy-chaos-", args.time + 2 * GRACE, tls=False) as where:
        for i, mode in enumerate(modes):
            share = (began + args.time - time.monotonic()) / (len(modes) - i)
            with suite.server(mode, where) as urls:
                until = time.monotonic() + share
                reports.append(asyncio.run(chaos(mode, args, where, urls["tcp"], until)))
            print(summary(reports[-1]), flush=True)
            for text in reports[-1].tally.tracebacks:
                print(text, file=sys.stderr)
    print(f"seed {args.seed}, {time.monotonic() - began:.1f} s in all")
    sys.exit(1 if any(r.tally.violations or r.leaks for r in reports) else 0)


if __name__ == "__main__":
    main()
