"""Canopy against the raw floors and the peers (grpcio, RPyC, Pyro5, pycapnp) on one
set of workloads, one after another in one run, reported as medians, p99s and ratios.

    .venv/bin/python bench/suite.py [--out FILE.md] [--quick] [--peers] [--only DRIVERS]

Workloads (peerbench's sizes; every timed loop stops at its count or after 4 s, 16 s
for (g) under tracemalloc, 60 s for each phase of (h)):
(a) blocking ``add(1, 2)`` round trip: Canopy over tcp, unix, tls, shared memory and
in-process zones; floors: raw blocking TCP, Unix, TLS and shared-memory ping-pong, a
plain method call. (b) the same from asyncio, sequential and 16 calls in flight from
one client; floors: raw asyncio ping-pong and the raw multiplexed client. (c) 200,000
``[post] put`` of 16 bytes, until the server has them all; floors: one ``sendall`` per
message, and buffered writes. (d) a 1 MiB byte vector echoed; floor: raw echo. (e)
encode and decode of a small struct in each encoding; floor: msgspec, array_like.
(f) 10,000 references made and released over tcp, returned and passed in. (g) bytes
per live proxy and per exported object (tracemalloc). (h) 1,000 asyncio clients of
one server, 3 calls each once all are connected; floor: 1,000 raw asyncio clients.
Canopy's servers are blocking zones, except for (b) and (h): asyncio zones, as the
asyncio floors' and peers' servers are.

Every measurement runs in a process of its own (a "driver" printing ``RESULT {json}``
lines), each Canopy server in a child of that driver, started and stopped by PID;
each child exits if its parent goes or after a maximum lifetime. Canopy's drivers are
this script (``--client GROUP``, ``--serve MODE``), the floors' and the peers' are in
bench/peers/. ``--peers`` creates bench/.venv-peers and installs the peers there from
bench/peers/requirements.txt; without it, or for a peer that is not installed, the
suite runs Canopy and the floors only and says which peers it skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import functools
import gc
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import tracemalloc
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peers import common as C

if TYPE_CHECKING:
    from canopy.generated import Encoding

BENCH = Path(__file__).resolve().parent
PEERS_VENV = BENCH / ".venv-peers"
PEERS_REQUIREMENTS = BENCH / "peers" / "requirements.txt"
IDL = """\
namespace suite
{
    struct config
    {
        std::string name;
        int64_t timeout;
        std::vector<std::string> tags;
        std::map<std::string, int64_t> name_to_id;
    };

    interface i_item
    {
        error_code id([out] int64_t& value);
    };

    interface i_bench
    {
        error_code add(int a, int b, [out] int& result);
        [post] error_code put(const std::string& value);
        error_code count([out] uint64_t& received);
        error_code echo(const std::vector<uint8_t>& data, [out] std::vector<uint8_t>& back);
        error_code make_item([out] rpc::shared_ptr<i_item>& item);
        error_code make_items(uint32_t count, [out] std::vector<rpc::shared_ptr<i_item>>& items);
        error_code take_item(const rpc::shared_ptr<i_item>& item);
        error_code keep_item(const rpc::shared_ptr<i_item>& item);
        error_code drop_items();
        error_code live([out] uint64_t& items);
        error_code tables(
            [out] uint64_t& links, [out] uint64_t& exported, [out] uint64_t& imported);
    };
}
"""
ENCODINGS: tuple[Encoding, ...] = ("binary", "json", "protobuf", "binary_zstd")
QUICK = {  # sizes of a smoke run, through the drivers' environment
    "PB_TIME_CAP": "0.5",
    "PB_N_RTT": "1000",
    "PB_N_WARM": "100",
    "PB_N_CONC": "1000",
    "PB_N_ONEWAY": "5000",
    "PB_N_ECHO": "10",
    "PB_N_REFS": "1000",
    "PB_N_LIVE": "1000",
    "PB_N_LIVE_CALL": "1000",
    "PB_N_CLIENTS": "100",
    "PB_CLIENTS_CAP": "20",
}
DRIVER_TIMEOUT = 240.0  # seconds a driver may take before it is killed (by its PID)
SETTLE_TIMEOUT = 30.0  # seconds posts and releases may take to arrive once sent
MEMORY_CAP = 4.0  # times TIME_CAP that a (g) loop may take, slowed by tracemalloc


@contextlib.contextmanager
def workdir(prefix: str, lifetime: float, *, tls: bool = True) -> Iterator[str]:
    """A fresh directory holding what ``server`` needs (bench.idl compiled to its Python
    module, and a TLS chain unless ``tls`` is false: the blocking server then has no
    TLS port), removed afterwards; the servers started meanwhile end themselves after
    ``lifetime`` seconds (peerbench's safety net), so give the whole run's bound."""
    from canopy.codegen.python import write_python
    from canopy.idl import compile_file

    where = tempfile.mkdtemp(prefix=prefix)
    try:
        idl = Path(where) / "bench.idl"
        idl.write_text(IDL, encoding="utf-8")
        write_python(compile_file(idl), Path(where) / GENERATED)
        if tls:
            import trustme

            chain = trustme.CA().issue_cert("localhost").private_key_and_cert_chain_pem
            chain.write_to_path(f"{where}/chain.pem")
        os.environ["PB_SERVER_MAX_LIFETIME"] = str(lifetime)
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


GENERATED = "generated"
"""Where ``workdir`` writes bench.idl's Python module: each process imports it in
milliseconds instead of compiling the IDL again (most of a second)."""


def load_idl(where: str) -> Any:
    """bench.idl's ``suite`` namespace: the module ``workdir`` wrote (imported under a
    name of its own: ``suite`` is this script), or else compiled here."""
    import canopy

    module = Path(where, GENERATED, "suite", "__init__.py")
    if not module.exists():
        return canopy.load_idl(Path(where) / "bench.idl").suite
    name = "canopy_bench_suite"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, module)
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        spec.loader.exec_module(loaded)
    return sys.modules[name]


# ---------------------------------------------------------------- Canopy's servers


def implementations(suite: Any) -> tuple[type, type]:
    """The bench root and the item it hands out; both count what is alive."""

    class Item(suite.i_item):  # type: ignore[misc]
        lock = threading.Lock()
        alive = 0

        def __init__(self) -> None:
            with Item.lock:
                Item.alive += 1

        def __del__(self) -> None:
            with Item.lock:
                Item.alive -= 1

        def id(self) -> int:
            return 1

    class Bench(suite.i_bench):  # type: ignore[misc]
        def __init__(self, zone: Any = None) -> None:
            self.zone = zone  # the zone serving it, for ``tables``
            self.received = 0
            self.lock = threading.Lock()
            self.kept: list[Any] = []

        def add(self, a: int, b: int) -> int:
            return a + b

        def put(self, value: str) -> None:
            with self.lock:
                self.received += 1

        def count(self) -> int:
            with self.lock:
                return self.received

        def echo(self, data: bytes) -> bytes:
            return data

        def make_item(self) -> Any:
            return Item()

        def make_items(self, count: int) -> list[Any]:
            return [Item() for _ in range(count)]

        def take_item(self, item: Any) -> None:
            pass  # the proxy goes with the call

        def keep_item(self, item: Any) -> None:
            self.kept.append(item)

        def drop_items(self) -> None:
            self.kept.clear()

        def live(self) -> int:
            return Item.alive

        def tables(self) -> tuple[int, int, int]:
            """How many links the serving zone has, objects it exports and proxies it
            holds: what a leak would leave behind. Garbage is collected first, so that
            what is counted here and by ``live`` is what is really held."""
            if self.zone is None:
                raise RuntimeError("this Bench was made without its zone: nothing to look at")
            gc.collect()
            return len(self.zone.links), len(self.zone.exported()), len(self.zone.imported())

    return Bench, Item


def serve(mode: str, where: str, spec: str | None) -> None:
    """A Canopy server child: ``blocking`` (tcp, unix, tls), ``asyncio`` (tcp, unix) or
    ``shm`` (one link over the shared-memory channel ``spec``); until SIGTERM."""
    import canopy
    from canopy.streams import shm, tls
    from canopy.wire import Limits

    C.server_watchdog()
    suite = load_idl(where)
    bench = implementations(suite)[0]
    if mode in ("asyncio", "uvloop"):

        async def main() -> None:
            async with canopy.AsyncZone("suite-server") as zone:
                tcp = await zone.serve("tcp://127.0.0.1:0", bench, suite.i_bench)
                unix = await zone.serve(f"unix:{where}/canopy-async.sock", bench, suite.i_bench)
                C.server_ready(json.dumps({"tcp": tcp.url, "unix": unix.url}))
                await C.wait_sigterm()

        run_on(mode, main())
        return
    # (a) with N_LIVE_CALL live objects exports that many to one client, and the root:
    # more than a link's default limit, which is there for untrusted peers.
    limits = Limits(max_exported_objects=2 * C.N_LIVE_CALL + 16)
    with canopy.Zone("suite-server", limits=limits) as zone:
        if mode == "shm":
            assert spec is not None
            zone.accept(shm.attach(spec), bench, suite.i_bench)
            C.server_ready("{}")
        else:
            urls = {
                "tcp": zone.serve("tcp://127.0.0.1:0", bench, suite.i_bench).url,
                "unix": zone.serve(f"unix:{where}/canopy.sock", bench, suite.i_bench).url,
            }
            if Path(f"{where}/chain.pem").exists():
                context = tls.server_context(f"{where}/chain.pem")
                urls["tls"] = zone.serve("tls://127.0.0.1:0", bench, suite.i_bench, tls=context).url
            C.server_ready(json.dumps(urls))
        threading.Event().wait(C.SERVER_MAX_LIFETIME)  # SIGTERM ends it sooner


def run_on(loop: str, main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on asyncio's own loop (``asyncio``) or on uvloop's (``uvloop``)."""
    factory = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


@contextlib.contextmanager
def server(mode: str, where: str, channel: Any = None) -> Iterator[dict[str, str]]:
    command = [sys.executable, __file__, "--serve", mode, where]
    if channel is not None:
        command.append(channel.spec)
    with C.ServerProcess("", command=command, pass_fds=channel.pass_fds if channel else ()) as s:
        if channel is not None:
            channel.close_child_end()  # the child's death must end the doorbell
        yield json.loads(s.address)


# ---------------------------------------------------------------- Canopy's clients


LIVE_ROW = "canopy blocking, live objects"  # how many: the row's notes


def emit(client: str, transport: str, test: str, fields: C.Fields) -> None:
    C.emit(f"canopy {client}", test, transport=transport, **fields)


def until(condition: Callable[[], bool]) -> bool:
    """Poll ``condition`` until it holds or ``SETTLE_TIMEOUT`` passes; whether it held."""
    deadline = time.perf_counter() + SETTLE_TIMEOUT
    while not condition():
        if time.perf_counter() > deadline:
            return False
        time.sleep(0.001)
    return True


def adding(proxy: Any) -> Callable[[], Any]:
    """``proxy.add(1, 2)`` as a call without arguments (no lambda frame in the timing)."""
    return functools.partial(proxy.add, 1, 2)


def posts(bench: Any, n: int) -> C.Fields:
    """(c): ``n`` posts (capped), timed until the server has counted them all."""
    before = bench.count()
    put = bench.put
    deadline = time.perf_counter() + C.TIME_CAP
    sent, capped = 0, False
    started = time.perf_counter()
    for i in range(n):
        put(C.ONEWAY_TEXT)
        sent += 1
        if (i & 1023) == 0 and time.perf_counter() > deadline:
            capped = True
            break
    until(lambda: bench.count() >= before + sent)
    got = bench.count() - before
    return C.oneway_fields(sent, got, time.perf_counter() - started, capped)


async def aposts(bench: Any, n: int) -> C.Fields:
    before = await bench.count()
    put = bench.put  # a post is not awaited
    deadline = time.perf_counter() + C.TIME_CAP
    sent, capped = 0, False
    started = time.perf_counter()
    for i in range(n):
        put(C.ONEWAY_TEXT)
        sent += 1
        if (i & 1023) == 0 and time.perf_counter() > deadline:
            capped = True
            break
    end = time.perf_counter() + SETTLE_TIMEOUT
    while (got := await bench.count() - before) < sent and time.perf_counter() < end:
        await asyncio.sleep(0.001)
    return C.oneway_fields(sent, got, time.perf_counter() - started, capped)


def references(bench: Any, zone: Any, item: type, passed: bool) -> C.Fields:
    """(f): ``N_REFS`` references returned by the server (or passed to it) and released,
    timed until every one is gone at its owner."""
    make = bench.make_item
    take = bench.take_item
    clock = time.perf_counter_ns
    samples: list[int] = []
    deadline = time.perf_counter() + C.TIME_CAP
    capped = False
    started = time.perf_counter()
    for i in range(C.N_REFS):
        one = clock()
        if passed:
            take(item())
        else:
            make()  # the proxy is dropped at once
        samples.append(clock() - one)
        if (i & 255) == 0 and time.perf_counter() > deadline:
            capped = True
            break
    zone.flush()
    ok = until(lambda: not zone.exported()) if passed else until(lambda: bench.live() == 0)
    seconds = time.perf_counter() - started
    fields = C.latency_fields(samples, capped)
    return {**fields, "mean_us": round(seconds / len(samples) * 1e6, 2), "ok": ok}


def blocking_group(where: str) -> None:
    """(a) over tcp, unix and tls; (c), (d) over tcp and unix; (f) over tcp."""
    import canopy
    from canopy.streams import tls

    suite = load_idl(where)
    item = implementations(suite)[1]
    payload = C.echo_payload()
    with server("blocking", where) as urls:
        for transport in ("tcp", "unix", "tls"):
            options: dict[str, Any] = {}
            if transport == "tls":
                options = {
                    "tls": tls.client_context(cafile=f"{where}/ca.pem"),
                    "server_hostname": "localhost",
                }
            with canopy.Zone("suite-warm") as zone:  # the throwaway connection
                warm = zone.connect(urls[transport], suite.i_bench, **options)
                for _ in range(C.N_CONN_WARM):
                    warm.add(1, 2)
                for _ in range(C.N_CONN_WARM_ECHO):
                    warm.echo(payload)
                del warm
            with canopy.Zone("suite-client") as zone:
                bench = zone.connect(urls[transport], suite.i_bench, **options)
                assert bench.add(1, 2) == 3
                emit("blocking", transport, "a_sync_rtt", C.measure_sync_rtt(adding(bench)))
                if transport == "tls":
                    continue
                posts(bench, C.N_ONEWAY // 10)  # warm-up
                emit("blocking", transport, "c_oneway", posts(bench, C.N_ONEWAY))
                emit("blocking", transport, "d_echo_1mib", C.measure_echo(bench.echo, payload))
                if transport == "tcp":
                    # (a) again with N_LIVE_CALL objects exported to this client and as
                    # many proxies alive here: a call's cost must not grow with them.
                    live = bench.make_items(C.N_LIVE_CALL)
                    rtt = C.measure_sync_rtt(adding(bench))
                    C.emit(LIVE_ROW, "a_sync_rtt", transport=transport, live=len(live), **rtt)
                    del live
                    zone.flush()
                    until(lambda bench=bench: bench.live() == 0)  # type: ignore[misc]
                    for passed, test in ((False, "f_refs_returned"), (True, "f_refs_passed")):
                        references(bench, zone, item, passed)  # warm-up
                        emit("blocking", transport, test, references(bench, zone, item, passed))


def shm_group(where: str) -> None:
    """(a) over a shared-memory channel (one link: no throwaway connection)."""
    import canopy
    from canopy.streams import shm

    suite = load_idl(where)
    payload = C.echo_payload()
    channel = shm.Channel.create()
    with server("shm", where, channel), canopy.Zone("suite-client") as zone:
        bench = zone.connect(channel.stream(), suite.i_bench)
        for _ in range(C.N_CONN_WARM):
            bench.add(1, 2)
        for _ in range(C.N_CONN_WARM_ECHO):
            bench.echo(payload)
        emit("blocking", "shm", "a_sync_rtt", C.measure_sync_rtt(adding(bench)))


def inprocess_group(where: str) -> None:
    """(a) and (b) through a child zone in this process, against plain calls."""
    import canopy

    suite = load_idl(where)
    bench_class = implementations(suite)[0]
    local = bench_class()
    C.emit("plain call", "a_sync_rtt", transport="in-process", **C.measure_sync_rtt(adding(local)))
    with canopy.Zone("suite-host") as zone:
        remote = zone.child("bench", lambda z: bench_class(), suite.i_bench)
        emit("blocking", "in-process", "a_sync_rtt", C.measure_sync_rtt(adding(remote)))

    async def plain_add(a: int, b: int) -> int:
        return a + b

    async def main() -> None:
        rtt = await C.measure_async_rtt(functools.partial(plain_add, 1, 2))
        C.emit("plain await", "b_async_rtt", transport="in-process", **rtt)
        async with canopy.AsyncZone("suite-host") as zone:
            remote = await zone.child("bench", lambda z: bench_class(), suite.i_bench_async)
            rtt = await C.measure_async_rtt(adding(remote))
            emit("asyncio", "in-process", "b_async_rtt", rtt)
            conc = await C.measure_async_concurrent(adding(remote))
            emit("asyncio", "in-process", "b_conc16", conc)

    asyncio.run(main())


def async_group(where: str, loop: str = "asyncio") -> None:
    """(b) over tcp and unix, (c) and (d) over tcp, against an asyncio server; client and
    server on asyncio's own loop, or both on uvloop's (``loop``)."""
    import canopy

    suite = load_idl(where)
    payload = C.echo_payload()

    async def main(urls: dict[str, str]) -> None:
        for transport in ("tcp", "unix"):
            async with canopy.AsyncZone("suite-warm") as zone:  # the throwaway connection
                warm = await zone.connect(urls[transport], suite.i_bench_async)
                for _ in range(C.N_CONN_WARM):
                    await warm.add(1, 2)
                for _ in range(C.N_CONN_WARM_ECHO):
                    await warm.echo(payload)
                del warm
            async with canopy.AsyncZone("suite-client") as zone:
                bench = await zone.connect(urls[transport], suite.i_bench_async)
                assert await bench.add(1, 2) == 3
                rtt = await C.measure_async_rtt(adding(bench))
                emit(loop, transport, "b_async_rtt", rtt)
                conc = await C.measure_async_concurrent(adding(bench))
                emit(loop, transport, "b_conc16", conc)
                if transport == "tcp":
                    await aposts(bench, C.N_ONEWAY // 10)  # warm-up
                    emit(loop, transport, "c_oneway", await aposts(bench, C.N_ONEWAY))
                    echo = await C.measure_async_echo(bench.echo, payload)
                    emit(loop, transport, "d_echo_1mib", echo)

    with server(loop, where) as urls:
        run_on(loop, main(urls))


def clients_group(where: str) -> None:
    """(h): ``N_CLIENTS`` asyncio zones, each linked to one asyncio server, then
    ``CALLS_PER_CLIENT`` adds on each, all at once."""
    import canopy

    suite = load_idl(where)

    async def main(url: str) -> None:
        zones = [canopy.AsyncZone(f"suite-client-{i}") for i in range(C.N_CLIENTS)]
        gate = asyncio.Semaphore(C.CONNECTS_AT_ONCE)

        async def connect(zone: canopy.AsyncZone) -> Any:
            async with gate:
                return await zone.connect(url, suite.i_bench_async)

        try:
            started = time.perf_counter()
            proxies = await asyncio.wait_for(
                asyncio.gather(*[connect(z) for z in zones]), C.CLIENTS_CAP
            )
            connected = time.perf_counter() - started
            seconds, ok = await C.calls_from_all([adding(p) for p in proxies])
            fields = C.clients_fields(len(zones), connected, seconds, ok)
            emit("asyncio", "tcp", "h_clients", fields)
        finally:
            closing = asyncio.gather(*[z.aclose() for z in zones], return_exceptions=True)
            await asyncio.wait_for(closing, C.CLIENTS_CAP)

    with server("asyncio", where) as urls:
        asyncio.run(main(urls["tcp"]))


def _loops(fn: Callable[[], object], target: float = 0.03) -> int:
    """peerbench's bounded autorange: how many calls of ``fn`` take about ``target`` s
    (once warm: a first call may build a codec)."""
    timeit.timeit(fn, number=100)
    number = 1
    while (seconds := timeit.timeit(fn, number=number)) < target / 5 and number < 10_000_000:
        number *= 10
    return max(1, int(number * target / max(seconds, 1e-9)))


# peerbench's config message: a string, an int, 3 strings, a map of 3 entries
NAME, TIMEOUT, TAGS, NAME_TO_ID = (
    "service-alpha",
    30000,
    ("red", "green", "blue"),
    (
        ("alpha", 1),
        ("beta", 2),
        ("gamma", 3),
    ),
)


def codec_group(where: str) -> None:
    """(e): encode then decode of peerbench's ``config`` in each of Canopy's encodings, and
    with msgspec directly; 7 rounds of about 30 ms per row, the rows taking turns."""
    import msgspec

    import canopy

    suite = load_idl(where)

    class Flat(msgspec.Struct, array_like=True):
        name: str
        timeout: int
        tags: list[str]
        name_to_id: dict[str, int]

    class Named(msgspec.Struct):
        name: str
        timeout: int
        tags: list[str]
        name_to_id: dict[str, int]

    flat = Flat(NAME, TIMEOUT, list(TAGS), dict(NAME_TO_ID))
    named = Named(NAME, TIMEOUT, list(TAGS), dict(NAME_TO_ID))
    value = suite.config(name=NAME, timeout=TIMEOUT, tags=list(TAGS), name_to_id=dict(NAME_TO_ID))
    pack, unpack, jsoned, unjson = (
        msgspec.msgpack.Encoder().encode,
        msgspec.msgpack.Decoder(Flat).decode,
        msgspec.json.Encoder().encode,
        msgspec.json.Decoder(Named).decode,
    )
    rows: list[tuple[str, str, Callable[[], bytes], Callable[[bytes], Any], Any]] = [
        ("msgspec", "msgpack array_like", functools.partial(pack, flat), unpack, flat),
        ("msgspec", "json", functools.partial(jsoned, named), unjson, named),
    ]
    for e in ENCODINGS:
        decoder = functools.partial(canopy.decode, suite.config, encoding=e)
        rows.append(("canopy", e, functools.partial(canopy.encode, value, e), decoder, value))
    trips: list[Callable[[], object]] = [
        lambda: unpack(pack(flat)),
        lambda: unjson(jsoned(named)),
        *(lambda e=e: canopy.decode(suite.config, canopy.encode(value, e), e) for e in ENCODINGS),
    ]
    numbers = [_loops(trip) for trip in trips]
    rounds: list[list[float]] = [[] for _ in rows]
    for _ in range(7):
        for trip, number, times in zip(trips, numbers, rounds, strict=True):
            times.append(timeit.timeit(trip, number=number) / number * 1e9)
    for (peer, encoding, encode, decode, original), times in zip(rows, rounds, strict=True):
        data = encode()
        fields = {"rt_ns": round(statistics.median(times), 1), "bytes": len(data)}
        C.emit(peer, "e_config", transport=encoding, ok=decode(data) == original, **fields)


def traced(make: Callable[[int], object], n: int) -> C.Fields:
    """Bytes tracemalloc sees more per ``make(i)`` kept (the list of results excluded)."""
    kept: list[object] = [None] * n
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    deadline = time.perf_counter() + C.TIME_CAP * MEMORY_CAP
    made, capped = 0, False
    for i in range(n):
        kept[i] = make(i)
        made += 1
        if (i & 255) == 0 and time.perf_counter() > deadline:
            capped = True
            break
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del kept
    return {"bytes": round(grown / made), "n": made, "capped": capped}


def memory_group(where: str) -> None:
    """(g): bytes per live proxy, and per object exported, over tcp, blocking."""
    import canopy

    suite = load_idl(where)
    item = implementations(suite)[1]
    n = C.N_LIVE
    C.emit("plain object", "g_memory", transport="in-process", **traced(lambda i: item(), n))
    with server("blocking", where) as urls, canopy.Zone("suite-client") as zone:
        bench = zone.connect(urls["tcp"], suite.i_bench)
        for _ in range(C.N_CONN_WARM):
            bench.make_item()
            bench.keep_item(item())
        bench.drop_items()
        fields = traced(lambda i: bench.make_item(), n)
        zone.flush()
        emit("proxy", "tcp", "g_memory", {**fields, "ok": until(lambda: bench.live() == 0)})
        mine = [item() for _ in range(n)]
        fields = traced(lambda i: bench.keep_item(mine[i]), n)
        bench.drop_items()
        emit(
            "exported object",
            "tcp",
            "g_memory",
            {**fields, "ok": until(lambda: not zone.exported())},
        )


GROUPS: dict[str, Callable[[str], None]] = {
    "blocking": blocking_group,
    "shm": shm_group,
    "inprocess": inprocess_group,
    "async": async_group,
    "async-uvloop": functools.partial(async_group, loop="uvloop"),
    "clients": clients_group,
    "codec": codec_group,
    "memory": memory_group,
}


# ---------------------------------------------------------------- the run


@dataclasses.dataclass(frozen=True)
class Driver:
    """One measuring process: its arguments (after the interpreter), and for a peer,
    the modules the peers' venv must have."""

    name: str
    argv: tuple[str, ...]
    needs: tuple[str, ...] = ()

    @property
    def peer(self) -> bool:
        return bool(self.needs)


def drivers(where: str) -> list[Driver]:
    """Floors next to the Canopy rows that are compared with them, then the peers."""
    canopy = (str(BENCH / "suite.py"), "--client")
    return [
        Driver("raw-tcp", ("-m", "peers.raw", "tcp", where)),
        Driver("raw-unix", ("-m", "peers.raw", "unix", where)),
        Driver("raw-tls", ("-m", "peers.raw", "tls", where)),
        Driver("raw-tcp-poll", ("-m", "peers.raw", "tcp-poll", where)),
        Driver("raw-unix-poll", ("-m", "peers.raw", "unix-poll", where)),
        Driver("canopy-blocking", (*canopy, "blocking", where)),
        Driver("raw-shm", ("-m", "peers.raw", "shm", where)),
        Driver("canopy-shm", (*canopy, "shm", where)),
        Driver("canopy-inprocess", (*canopy, "inprocess", where)),
        Driver("raw-asyncio", ("-m", "peers.raw", "asyncio")),
        Driver("raw-asyncio-unix", ("-m", "peers.raw", "asyncio", "unix")),
        Driver("canopy-async", (*canopy, "async", where)),
        Driver("canopy-uvloop", (*canopy, "async-uvloop", where)),
        Driver("canopy-clients", (*canopy, "clients", where)),
        Driver("canopy-codec", (*canopy, "codec", where)),
        Driver("canopy-memory", (*canopy, "memory", where)),
        Driver("grpc-sync", ("-m", "peers.grpc_peer", "sync"), ("grpc", "grpc_tools")),
        Driver("grpc-aio", ("-m", "peers.grpc_peer", "aio"), ("grpc", "grpc_tools")),
        Driver("rpyc", ("-m", "peers.rpyc_peer"), ("rpyc",)),
        Driver("pyro5-msgpack", ("-m", "peers.pyro5_peer", "msgpack"), ("Pyro5", "msgpack")),
        Driver("capnp", ("-m", "peers.capnp_peer", "asyncio"), ("capnp",)),
        Driver("capnp-uvloop", ("-m", "peers.capnp_peer", "uvloop"), ("capnp", "uvloop")),
        Driver("raw-uvloop", ("-m", "peers.raw", "uvloop")),  # uvloop: a dev dependency
    ]


PEER_PACKAGES = ("grpcio", "grpcio-tools", "rpyc", "Pyro5", "msgpack", "pycapnp", "uvloop")
_PROBE = """\
import importlib.metadata as m, importlib.util as u, json, sys
found = {n: u.find_spec(n) is not None for n in sys.argv[1].split(",")}
versions = {}
for p in sys.argv[2].split(","):
    try:
        versions[p] = m.version(p)
    except m.PackageNotFoundError:
        pass
print(json.dumps({"found": found, "versions": versions}))
"""


def peers_venv() -> tuple[Path | None, str]:
    """The peers' interpreter, creating bench/.venv-peers and installing the peers
    into it first if needed; or None and why not."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".installed"
    if stamp.exists() and stamp.stat().st_mtime >= PEERS_REQUIREMENTS.stat().st_mtime:
        return python, ""
    print(f"creating {PEERS_VENV} and installing {PEERS_REQUIREMENTS.name} ...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(PEERS_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(PEERS_REQUIREMENTS)],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)  # noqa: S603
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"{' '.join(step[:4])}: {e}"
        if done.returncode != 0:
            return None, f"{' '.join(step[:4])} failed: {done.stderr.strip()[-300:]}"
    stamp.touch()
    return python, ""


def probe(python: Path, modules: set[str]) -> tuple[dict[str, bool], dict[str, str]]:
    """Which of ``modules`` the peers' venv can import, and its peers' versions."""
    command = [str(python), "-c", _PROBE, ",".join(sorted(modules)), ",".join(PEER_PACKAGES)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)  # noqa: S603
        found = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return {m: False for m in modules}, {}
    return found["found"], found["versions"]


def run_driver(
    python: str, driver: Driver, env: dict[str, str], log: Path
) -> tuple[list[C.Fields], str]:
    """Run one driver (bounded by DRIVER_TIMEOUT, killed by its PID past it); its RESULT
    records and, if it failed, why."""
    with log.open("a", encoding="utf-8") as errors:
        errors.write(f"==== {driver.name}\n")
        errors.flush()
        process = subprocess.Popen(  # noqa: S603 - this suite's own drivers
            [python, *driver.argv],
            cwd=BENCH,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        failure = ""
        try:
            out, _ = process.communicate(timeout=DRIVER_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
            failure = f"killed after {DRIVER_TIMEOUT:g} s"
    records = []
    for line in out.splitlines():
        if line.startswith("RESULT "):
            record = json.loads(line[len("RESULT ") :])
            record.setdefault("transport", _TRANSPORTS.get(record["peer"], "tcp"))
            records.append(record)
    if not failure and process.returncode != 0:
        failure = f"exit status {process.returncode} (see the log)"
    return records, failure


_TRANSPORTS = {
    "raw-unix": "unix",
    "raw-unix-bufw": "unix",
    "raw-unix-poll": "unix",
    "raw-tls": "tls",
    "raw-shm": "shm",
    "raw-asyncio-unix": "unix",
    "raw-asyncio-unix-mux": "unix",
}


# ---------------------------------------------------------------- the report

LOWER, HIGHER = True, False
FIGURES: dict[str, tuple[str, str | None, str, bool]] = {
    # test: (headline field, p99 field, unit, lower is better)
    "a_sync_rtt": ("med_us", "p99_us", "µs", LOWER),
    "b_async_rtt": ("med_us", "p99_us", "µs", LOWER),
    "b_conc16": ("per_s", None, "calls/s", HIGHER),
    "c_oneway": ("per_s", None, "msg/s", HIGHER),
    "d_echo_1mib": ("mib_s", None, "MiB/s", HIGHER),
    "e_config": ("rt_ns", None, "ns", LOWER),
    "f_refs_returned": ("mean_us", "p99_us", "µs/ref", LOWER),
    "f_refs_passed": ("mean_us", "p99_us", "µs/ref", LOWER),
    "g_memory": ("bytes", None, "bytes", LOWER),
    "h_clients": ("per_s", None, "calls/s", HIGHER),
}
Key = tuple[str, str, str]  # test, peer, transport
TCP_PEERS_SYNC = ("grpc-sync", "rpyc-tuned", "pyro5-msgpack")
TCP_PEERS_ASYNC = ("grpc-aio", "capnp", "capnp-uvloop")
ASYNC_CANOPY = ("canopy asyncio", "canopy uvloop")
ALL_PEERS = ("grpc-sync", "grpc-aio", "rpyc-tuned", "pyro5-msgpack", "capnp", "capnp-uvloop")
BLOCKING_WITH_FUTURES = ("grpc-sync", "rpyc-tuned")  # (b) 16 in flight, not from asyncio


def _rows() -> list[tuple[str, Key, tuple[Key, ...]]]:
    """The table: (workload, the row, the floors it is compared with)."""
    rows: list[tuple[str, Key, tuple[Key, ...]]] = []

    def add(workload: str, test: str, peer: str, transport: str, *floors: tuple[str, str]) -> None:
        rows.append((workload, (test, peer, transport), tuple((test, *f) for f in floors)))

    a = "(a) blocking add"
    for transport, floor in (
        ("tcp", "raw-tcp"),
        ("unix", "raw-unix"),
        ("tls", "raw-tls"),
        ("shm", "raw-shm"),
        ("in-process", "plain call"),
    ):
        add(a, "a_sync_rtt", floor, transport)
        if transport in ("tcp", "unix"):
            # Canopy's blocking sockets poll briefly before sleeping: the -poll floor
            # waits the same way, so the ratio to it is Canopy's own cost per call.
            add(a, "a_sync_rtt", f"{floor}-poll", transport)
            add(
                a,
                "a_sync_rtt",
                "canopy blocking",
                transport,
                (floor, transport),
                (f"{floor}-poll", transport),
            )
        else:
            add(a, "a_sync_rtt", "canopy blocking", transport, (floor, transport))
    add(a, "a_sync_rtt", LIVE_ROW, "tcp", ("canopy blocking", "tcp"))
    for peer in TCP_PEERS_SYNC:
        add(a, "a_sync_rtt", peer, "tcp", ("raw-tcp", "tcp"))
    b = "(b) asyncio add"
    for transport, floor in (("tcp", "raw-asyncio"), ("unix", "raw-asyncio-unix")):
        add(b, "b_async_rtt", floor, transport)
        add(b, "b_async_rtt", f"{floor}-mux", transport, (floor, transport))
        add(b, "b_async_rtt", "canopy asyncio", transport, (floor, transport))
    add(b, "b_async_rtt", "plain await", "in-process")
    add(b, "b_async_rtt", "canopy asyncio", "in-process", ("plain await", "in-process"))
    add(b, "b_async_rtt", "raw-uvloop", "tcp", ("raw-asyncio", "tcp"))
    add(b, "b_async_rtt", "raw-uvloop-mux", "tcp", ("raw-uvloop", "tcp"))
    add(b, "b_async_rtt", "canopy uvloop", "tcp", ("raw-uvloop", "tcp"))
    add(b, "b_async_rtt", "canopy uvloop", "unix", ("raw-asyncio-unix", "unix"))
    for peer in TCP_PEERS_ASYNC:
        add(b, "b_async_rtt", peer, "tcp", ("raw-asyncio", "tcp"))
    b16 = "(b) 16 in flight"
    for transport, floor in (("tcp", "raw-asyncio-mux"), ("unix", "raw-asyncio-unix-mux")):
        add(b16, "b_conc16", floor, transport)
        add(b16, "b_conc16", "canopy asyncio", transport, (floor, transport))
    add(b16, "b_conc16", "canopy asyncio", "in-process")
    add(b16, "b_conc16", "raw-uvloop-mux", "tcp", ("raw-asyncio-mux", "tcp"))
    add(b16, "b_conc16", "canopy uvloop", "tcp", ("raw-uvloop-mux", "tcp"))
    add(b16, "b_conc16", "canopy uvloop", "unix", ("raw-asyncio-unix-mux", "unix"))
    for peer in (*TCP_PEERS_ASYNC, *BLOCKING_WITH_FUTURES):
        add(b16, "b_conc16", peer, "tcp", ("raw-asyncio-mux", "tcp"))
    c = "(c) 16-byte posts"
    for transport in ("tcp", "unix"):
        floors = ((f"raw-{transport}", transport), (f"raw-{transport}-bufw", transport))
        add(c, "c_oneway", f"raw-{transport}", transport)
        add(c, "c_oneway", f"raw-{transport}-bufw", transport)
        add(c, "c_oneway", "canopy blocking", transport, *floors)
    add(c, "c_oneway", "raw-asyncio", "tcp")
    add(c, "c_oneway", "canopy asyncio", "tcp", ("raw-asyncio", "tcp"), ("raw-tcp-bufw", "tcp"))
    add(c, "c_oneway", "raw-uvloop", "tcp", ("raw-asyncio", "tcp"))
    add(c, "c_oneway", "canopy uvloop", "tcp", ("raw-uvloop", "tcp"), ("raw-tcp-bufw", "tcp"))
    for peer in ALL_PEERS:
        add(c, "c_oneway", peer, "tcp", ("raw-tcp", "tcp"), ("raw-tcp-bufw", "tcp"))
    d = "(d) 1 MiB echo"
    for transport in ("tcp", "unix"):
        add(d, "d_echo_1mib", f"raw-{transport}", transport)
        add(d, "d_echo_1mib", "canopy blocking", transport, (f"raw-{transport}", transport))
    add(d, "d_echo_1mib", "raw-asyncio", "tcp")
    add(d, "d_echo_1mib", "canopy asyncio", "tcp", ("raw-asyncio", "tcp"))
    add(d, "d_echo_1mib", "raw-uvloop", "tcp", ("raw-asyncio", "tcp"))
    add(d, "d_echo_1mib", "canopy uvloop", "tcp", ("raw-uvloop", "tcp"))
    for peer in ALL_PEERS:
        add(d, "d_echo_1mib", peer, "tcp", ("raw-tcp", "tcp"))
    e = "(e) config encode+decode"
    floor_e = ("msgspec", "msgpack array_like")
    add(e, "e_config", *floor_e)
    add(e, "e_config", "msgspec", "json", floor_e)
    for encoding in ENCODINGS:
        add(e, "e_config", "canopy", encoding, floor_e)
    for test, f in (
        ("f_refs_returned", "(f) ref made, dropped"),
        ("f_refs_passed", "(f) ref passed in"),
    ):
        floors_f = (("a_sync_rtt", "raw-tcp", "tcp"), ("a_sync_rtt", "canopy blocking", "tcp"))
        rows.append((f, (test, "canopy blocking", "tcp"), floors_f))
    g = "(g) memory"
    add(g, "g_memory", "plain object", "in-process")
    add(g, "g_memory", "canopy proxy", "tcp", ("plain object", "in-process"))
    add(g, "g_memory", "canopy exported object", "tcp", ("plain object", "in-process"))
    h = "(h) concurrent clients"
    add(h, "h_clients", "raw-asyncio", "tcp")
    add(h, "h_clients", "canopy asyncio", "tcp", ("raw-asyncio", "tcp"))
    return rows


def _number(value: float) -> str:
    if value >= 100_000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"
    return f"{value:.2f}"


def _ratio(test: str, value: float, floor: float) -> float:
    lower = FIGURES[test][3]
    return value / floor if lower else floor / value


def _headline(record: C.Fields) -> float:
    return float(record[FIGURES[record["test"]][0]])


def _notes(record: C.Fields) -> str:
    test = record["test"]
    notes = []
    if record.get("capped"):
        notes.append("capped")
    if record.get("ok") is False:
        notes.append("**check failed**")
    if test == "d_echo_1mib":
        notes.append(f"per echo: median {record['med_ms']} ms, p99 {record['p99_ms']} ms")
    if test == "e_config":
        notes.append(f"{record['bytes']} bytes")
    if test == "h_clients":
        notes.append(
            f"{record['clients']:,} clients connected in {record['connect_s']} s, "
            f"{record['n']:,} calls in {record['calls_s']} s"
        )
    if test.startswith("f_"):
        notes.append(f"per call: median {record['med_us']} µs")
    if "live" in record:
        notes.append(f"{record['live']:,} objects exported to the client, a proxy of each alive")
    if test == "b_conc16" and record["peer"] in BLOCKING_WITH_FUTURES:
        notes.append("blocking client, 16 futures")
    if "spread" in record:
        notes.append(f"spread {record['spread']:.0%}")
    if "n" in record and test != "h_clients":
        notes.append(f"n={record['n']:,}")
    return "; ".join(notes)


def _fastest(results: dict[Key, C.Fields], test: str, names: tuple[str, ...]) -> C.Fields | None:
    """The best of these implementations' tcp rows for ``test``, if any was measured."""
    candidates = [results[(test, n, "tcp")] for n in names if (test, n, "tcp") in results]
    if not candidates:
        return None
    return (min if FIGURES[test][3] else max)(candidates, key=_headline)


def report(results: dict[Key, C.Fields]) -> tuple[str, str]:
    """The table of every row, and Canopy against the fastest peer for (a) to (d)."""
    lines = [
        "| workload | implementation | transport | median or rate | p99 | unit | x floor | floor "
        "| notes |",
        "|---|---|---|--:|--:|---|--:|---|---|",
    ]
    for workload, key, floors in _rows():
        record = results.get(key)
        if record is None:
            continue
        test, peer, transport = key
        value = _headline(record)
        p99_field = FIGURES[test][1]
        p99 = _number(float(record[p99_field])) if p99_field else ""
        found = [(f, results[f]) for f in floors if f in results]
        if not floors:
            floor = not peer.startswith("canopy") and peer not in ALL_PEERS
            ratio, names = ("floor", "") if floor else ("", "(none)")
        elif found:
            ratio = " · ".join(f"{_ratio(test, value, _headline(r)):.2f}" for _, r in found)
            names = " · ".join(f[1] if f[0] == test else f"{f[1]} {f[0][:1]}" for f, _ in found)
        else:
            ratio, names = "", "(not measured)"
        lines.append(
            f"| {workload} | {peer} | {transport} | {_number(value)} | {p99} | "
            f"{FIGURES[test][2]} | {ratio} | {names} | {_notes(record)} |"
        )
    best = [
        "| workload | Canopy (best tcp row) | fastest peer | x fastest peer |",
        "|---|---|---|--:|",
    ]
    for label, test, mine, theirs in (
        ("(a) blocking add", "a_sync_rtt", ("canopy blocking",), TCP_PEERS_SYNC),
        ("(b) asyncio add", "b_async_rtt", ASYNC_CANOPY, TCP_PEERS_ASYNC),
        ("(b) 16 in flight", "b_conc16", ASYNC_CANOPY, (*TCP_PEERS_ASYNC, *BLOCKING_WITH_FUTURES)),
        ("(c) 16-byte posts", "c_oneway", ("canopy blocking", *ASYNC_CANOPY), ALL_PEERS),
        ("(d) 1 MiB echo", "d_echo_1mib", ("canopy blocking", *ASYNC_CANOPY), ALL_PEERS),
    ):
        unit = FIGURES[test][2]
        ours, fastest = _fastest(results, test, mine), _fastest(results, test, theirs)
        if ours is None:
            continue
        ours_text = f"{ours['peer']}: {_number(_headline(ours))} {unit}"
        if fastest is None:
            best.append(f"| {label} | {ours_text} | (no peer measured) | |")
            continue
        times = _ratio(test, _headline(ours), _headline(fastest))
        peer_text = f"{fastest['peer']}: {_number(_headline(fastest))} {unit}"
        best.append(f"| {label} | {ours_text} | {peer_text} | {times:.2f} |")
    return "\n".join(lines), "\n".join(best)


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    revision = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = ["git", "-C", str(BENCH), "rev-parse", "--short", "HEAD"]
        revision = subprocess.run(head, capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603
        status = ["git", "-C", str(BENCH.parent), "status", "--porcelain", "--", "src"]
        dirty = subprocess.run(status, capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603
        if dirty:
            revision += " with uncommitted changes under src/"
    return (
        f"{os.cpu_count()} cpus ({model or platform.machine()}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; canopy {revision}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", help="also write the report (markdown) to this file")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    parser.add_argument("--peers", action="store_true", help="also the peers, in bench/.venv-peers")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every driver N times, interleaved (1; odd N for a true median)",
    )
    parser.add_argument("--only", help="comma-separated driver names, as the progress lines say")
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        C.process_setup()
        serve(args.serve[0], args.serve[1], args.serve[2] if len(args.serve) > 2 else None)
        return
    if args.client:
        C.process_setup()
        GROUPS[args.client[0]](args.client[1])
        return
    began = time.perf_counter()
    load_start = os.getloadavg()[0]
    import trustme

    where = tempfile.mkdtemp(prefix="canopy-suite-")
    env = {**os.environ, **(QUICK if args.quick else {})}
    log = Path(where) / "drivers.log"
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    repeated: dict[Key, list[C.Fields]] = {}
    versions: dict[str, str] = {}
    try:
        (Path(where) / "bench.idl").write_text(IDL, encoding="utf-8")
        authority = trustme.CA()
        authority.cert_pem.write_to_path(f"{where}/ca.pem")
        chain = authority.issue_cert("localhost").private_key_and_cert_chain_pem
        chain.write_to_path(f"{where}/chain.pem")
        plan = drivers(where)
        if args.only:
            wanted = set(args.only.split(","))
            plan = [d for d in plan if d.name in wanted]
        peers_python: Path | None = None
        found: dict[str, bool] = {}
        if not args.peers:
            for d in plan:
                if d.peer:
                    skipped[d.name] = "not asked for (--peers)"
        elif any(d.peer for d in plan):
            peers_python, why = peers_venv()
            if peers_python is None:
                for d in plan:
                    if d.peer:
                        skipped[d.name] = why
            else:
                found, versions = probe(peers_python, {m for d in plan for m in d.needs})
                for d in plan:
                    missing = [m for m in d.needs if not found.get(m)]
                    if missing:
                        skipped[d.name] = f"not installed: {', '.join(missing)}"
        for repetition in range(args.repeat):  # interleaved: every driver, then again
            for d in plan:
                if d.name in skipped:
                    continue
                python = str(peers_python) if d.peer else sys.executable
                print(f"  {repetition + 1} {d.name:18}", end="", flush=True)
                started = time.perf_counter()
                records, failure = run_driver(python, d, env, log)
                for record in records:
                    key = (record["test"], record["peer"], record["transport"])
                    repeated.setdefault(key, []).append(record)
                if failure:
                    failed[d.name] = failure
                status = f"FAILED: {failure}" if failure else "ok"
                took = time.perf_counter() - started
                print(f" {took:6.1f} s  {len(records):2} results  {status}")
        if failed:
            print(f"--- driver log ({log}), last lines:\n" + _tail(log, 40), file=sys.stderr)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    seconds = time.perf_counter() - began
    table, best = report({key: _median(records) for key, records in repeated.items()})
    text = render(args, table, best, skipped, failed, versions, seconds, load_start)
    print("\n" + text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


def _median(records: list[C.Fields]) -> C.Fields:
    """The repetition whose headline figure is the median, with the spread of all of them."""
    ordered = sorted(records, key=_headline)
    middle = dict(ordered[(len(ordered) - 1) // 2])
    if len(ordered) > 1:
        low, high = _headline(ordered[0]), _headline(ordered[-1])
        middle["spread"] = (high - low) / max(_headline(middle), 1e-12)
    return middle


def _tail(path: Path, lines: int) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(encoding="utf-8").splitlines()[-lines:])
    return ""


def render(
    args: argparse.Namespace,
    table: str,
    best: str,
    skipped: dict[str, str],
    failed: dict[str, str],
    versions: dict[str, str],
    seconds: float,
    load_start: float,
) -> str:
    flags = [f for f, on in (("--quick", args.quick), ("--peers", args.peers)) if on]
    if args.repeat > 1:
        flags.append(f"--repeat {args.repeat}")
    command = " ".join([".venv/bin/python bench/suite.py", *flags])
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [
        f"## bench/suite.py: Canopy, the raw floors and the peers ({stamp})",
        "",
        f"    {command}",
        "",
        f"{machine()}. The whole run took {seconds:.0f} s; load average "
        f"{load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end."
        + (
            " A --quick run: small counts, 0.5 s caps; figures are indicative only."
            if args.quick
            else ""
        ),
        "",
        "Median and p99 of each call timed on its own, or a rate (calls, messages or MiB "
        "per second) over the whole loop. x floor: times worse than the floor named, "
        "measured in the same run (time / the floor's time, or the floor's rate / this "
        "rate), so 1.00 is as good as the floor; two floors are separated by ·, and "
        "`a` after a floor's name means its (a) round trip. capped: the 4 s cap ended the "
        "loop before its count. With --repeat, each row is the repetition with the median "
        "figure, and spread is (max - min) / median over the repetitions.",
        "",
        table,
        "",
        "Canopy against the fastest peer (x fastest peer: times worse, as above):",
        "",
        best,
    ]
    if versions:
        parts += [
            "",
            "Peers' versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + ".",
        ]
    if skipped:
        parts += ["", "Skipped: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + "."]
    if failed:
        parts += ["", "Failed: " + "; ".join(f"{k} ({v})" for k, v in failed.items()) + "."]
    return "\n".join(parts)


if __name__ == "__main__":
    main()
