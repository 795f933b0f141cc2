"""Calls and posts across a socket to a zone in another process, against raw sockets.

For each transport (tcp, unix, tls) a child process serves the calculator and a
counting sink with canopy, and a raw socket server of the same kind (plain TCP,
a plain Unix socket, TLS through ``ssl.SSLContext.wrap_socket``). The parent
measures, alternating within each round so that noise hits all alike:

* latency: the calculator's ``add(1, 2)``, canopy blocking and asyncio clients,
  each call timed on its own (median and p99), against a raw blocking ping-pong
  of the same kind and size (4-byte length and two int64, one 12-byte reply);
* throughput: ``posts`` one-way ``[post] put`` of a 16-byte string, timed until
  the server has them all (the sink counts; one ordinary ``count()`` call then
  reads the count, waited for with a timeout), against a raw client of the same
  kind writing the same number of length-prefixed 16-byte messages, once with
  one ``sendall`` per message (the per-message floor) and once through a 64 KiB
  buffered writer (the batched floor), to a raw server that counts them and
  replies once it has them all.

    .venv/bin/python bench/stream_call.py [--calls 2000] [--rounds 5] [--posts 20000]

The asyncio rows call the same blocking server: only their client is asyncio.
Ratios compare figures measured in the same run only; each child lives at most
``CHILD_LIFETIME`` seconds and is stopped (stdin closed, then killed) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import canopy
from canopy.streams import tls

CALCULATOR = Path(str(resources.files("canopy") / "examples" / "calculator.idl"))
SINK_IDL = """\
namespace benchpost
{
    interface i_sink
    {
        [post] error_code put(const std::string& value);
        error_code count([out] uint64_t& received);
    };
}
"""
KINDS = ("tcp", "unix", "tls")
VALUE = "0123456789abcdef"  # the 16-byte string every post carries
PAYLOAD = VALUE.encode()
CHILD_LIFETIME = 900.0  # seconds a server child waits for its stdin to close at most
START_TIMEOUT = 30.0  # seconds a server child may take to be ready
STOP_TIMEOUT = 10.0  # seconds a server child may take to stop once its stdin is closed
COUNT_TIMEOUT = 60.0  # seconds the sink may take to have received every post
MAX_RAW_CONNECTIONS = 16  # a raw server accepts no more than this
BATCH = 64 * 1024  # the batched raw client's write buffer
WARM_CALLS = 500
_FRAME = struct.Struct("<Iqq")  # a raw add: length 16, a, b
_REPLY = struct.Struct("<Iq")  # its reply: length 8, a + b
_LENGTH = struct.Struct("<I")  # a raw post's length prefix
_COUNT = struct.Struct("<Q")  # how many posts a raw batch has, and the server's count


# ---------------------------------------------------------------- the child: servers


def serve(kind: str, where: str, ready_file: str, chain_pem: str) -> None:
    """A canopy server (calculator and sink) and a raw server of ``kind``, until
    stdin closes or ``CHILD_LIFETIME`` passes."""
    calculator: Any = canopy.load_idl(CALCULATOR).calculator
    benchpost: Any = canopy.load_idl(Path(where) / "sink.idl").benchpost

    class Calculator(calculator.i_calculator):  # type: ignore[misc]
        def add(self, a: int, b: int) -> int:
            return a + b

    class Sink(benchpost.i_sink):  # type: ignore[misc]
        def __init__(self) -> None:
            self.received = 0
            self.lock = threading.Lock()

        def put(self, value: str) -> None:
            with self.lock:
                self.received += 1

        def count(self) -> int:
            with self.lock:
                return self.received

    context = tls.server_context(chain_pem) if kind == "tls" else None
    zone = canopy.Zone("bench-server")
    calc = zone.serve(
        _url(kind, where, "calc"), lambda z: Calculator(), calculator.i_calculator, tls=context
    )
    sink = zone.serve(_url(kind, where, "sink"), lambda z: Sink(), benchpost.i_sink, tls=context)
    if kind == "unix":
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.bind(f"{where}/raw.sock")
        raw.listen()
        address: Any = f"{where}/raw.sock"
    else:
        raw = socket.create_server(("127.0.0.1", 0))
        address = raw.getsockname()[1]
    threading.Thread(target=_raw_server, args=(raw, context), daemon=True).start()
    ready = {"calc": calc.url, "sink": sink.url, "raw": address}
    partial = Path(f"{ready_file}.part")
    partial.write_text(json.dumps(ready), encoding="utf-8")
    partial.rename(ready_file)
    stdin_closed = threading.Event()
    threading.Thread(target=_wait_for_eof, args=(stdin_closed,), daemon=True).start()
    stdin_closed.wait(CHILD_LIFETIME)
    zone.close()
    raw.close()


def _wait_for_eof(closed: threading.Event) -> None:
    sys.stdin.read()
    closed.set()


def _url(kind: str, where: str, name: str) -> str:
    if kind == "unix":
        return f"unix:{where}/{name}.sock"
    return f"{kind}://127.0.0.1:0"


def _raw_server(listener: socket.socket, context: ssl.SSLContext | None) -> None:
    for _ in range(MAX_RAW_CONNECTIONS):
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # closed
        threading.Thread(target=_raw_connection, args=(conn, context), daemon=True).start()


def _raw_connection(conn: socket.socket, context: ssl.SSLContext | None) -> None:
    """One raw client: a mode byte, then add ping-pongs (A) or batches of posts (P)."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(conn)
        if conn.family != socket.AF_UNIX:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            conn = stack.enter_context(context.wrap_socket(conn, server_side=True))
        reader = stack.enter_context(conn.makefile("rb"))
        mode = reader.read(1)
        if mode == b"A":
            while len(frame := reader.read(_FRAME.size)) == _FRAME.size:
                _, a, b = _FRAME.unpack(frame)
                conn.sendall(_REPLY.pack(8, a + b))
        elif mode == b"P":
            while len(head := reader.read(_COUNT.size)) == _COUNT.size:
                (expected,) = _COUNT.unpack(head)
                received = 0
                for _ in range(expected):
                    prefix = reader.read(_LENGTH.size)
                    if len(prefix) < _LENGTH.size:
                        return
                    (size,) = _LENGTH.unpack(prefix)
                    if len(reader.read(size)) < size:
                        return
                    received += 1
                conn.sendall(_COUNT.pack(received))


# ---------------------------------------------------------------- the parent: raw clients


class Raw:
    """A blocking raw client of one kind, in mode A (add) or P (posts)."""

    def __init__(
        self, kind: str, address: Any, context: ssl.SSLContext | None, mode: bytes
    ) -> None:
        if kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(address)
        else:
            sock = socket.create_connection(("127.0.0.1", address))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.writer = sock.makefile("wb", buffering=BATCH)
        sock.sendall(mode)

    def add(self, a: int, b: int) -> int:
        self.sock.sendall(_FRAME.pack(16, a, b))
        return int(_REPLY.unpack(self.reader.read(_REPLY.size))[1])

    def posts_each(self, count: int) -> float:
        """Seconds for ``count`` posts, one ``sendall`` each, until the server has them."""
        start = time.perf_counter()
        sendall = self.sock.sendall
        sendall(_COUNT.pack(count))
        for _ in range(count):
            sendall(_LENGTH.pack(len(PAYLOAD)) + PAYLOAD)
        self._received(count)
        return time.perf_counter() - start

    def posts_batched(self, count: int) -> float:
        """Seconds for ``count`` posts through a buffered writer, until the server has them."""
        start = time.perf_counter()
        write = self.writer.write
        write(_COUNT.pack(count))
        for _ in range(count):
            write(_LENGTH.pack(len(PAYLOAD)) + PAYLOAD)
        self.writer.flush()
        self._received(count)
        return time.perf_counter() - start

    def _received(self, count: int) -> None:
        (received,) = _COUNT.unpack(self.reader.read(_COUNT.size))
        assert received == count, f"the raw server received {received} of {count}"

    def close(self) -> None:
        for closing in (self.writer, self.reader, self.sock):
            with contextlib.suppress(OSError):
                closing.close()


# ---------------------------------------------------------------- timing


def timed_calls(fn: Callable[[int, int], Any], calls: int) -> list[float]:
    """Seconds of each of ``calls`` calls of ``fn(1, 2)``."""
    clock = time.perf_counter
    samples = []
    for _ in range(calls):
        start = clock()
        fn(1, 2)
        samples.append(clock() - start)
    return samples


async def atimed_calls(fn: Callable[[int, int], Awaitable[Any]], calls: int) -> list[float]:
    clock = time.perf_counter
    samples = []
    for _ in range(calls):
        start = clock()
        await fn(1, 2)
        samples.append(clock() - start)
    return samples


def canopy_posts(sink: Any, count: int) -> float:
    """Seconds for ``count`` posts until the sink has counted them all."""
    before = sink.count()
    start = time.perf_counter()
    put = sink.put
    for _ in range(count):
        put(VALUE)
    deadline = start + COUNT_TIMEOUT
    while (received := sink.count()) < before + count:  # the first count is normally enough
        if time.perf_counter() > deadline:
            raise SystemExit(f"the sink received {received - before} of {count} posts")
        time.sleep(0.001)
    return time.perf_counter() - start


async def acanopy_posts(sink: Any, count: int) -> float:
    before = await sink.count()
    start = time.perf_counter()
    put = sink.put  # a post is not awaited, under asyncio too
    for _ in range(count):
        put(VALUE)
    deadline = start + COUNT_TIMEOUT
    while (received := await sink.count()) < before + count:
        if time.perf_counter() > deadline:
            raise SystemExit(f"the sink received {received - before} of {count} posts")
        await asyncio.sleep(0.001)
    return time.perf_counter() - start


# ---------------------------------------------------------------- the run


class Child:
    """A server child for one kind: started, read when ready, always stopped."""

    def __init__(self, kind: str, where: str, chain_pem: str) -> None:
        ready = Path(where) / f"{kind}.ready"
        command = [sys.executable, __file__, "--serve", kind, where, str(ready), chain_pem]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE)  # noqa: S603 - this script
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not ready.exists():
                if self.process.poll() is not None:
                    raise SystemExit(f"the {kind} server exited ({self.process.returncode})")
                if time.monotonic() > deadline:
                    raise SystemExit(f"the {kind} server did not start in {START_TIMEOUT:g} s")
                time.sleep(0.05)
            self.urls: dict[str, Any] = json.loads(ready.read_text(encoding="utf-8"))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Close its stdin, wait, and kill it (by its PID) if it does not exit."""
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def child(kind: str, where: str, chain_pem: str) -> Iterator[Child]:
    started = Child(kind, where, chain_pem)
    try:
        yield started
    finally:
        started.stop()


Latency = dict[str, list[list[float]]]  # row -> each round's per-call seconds
Posts = dict[str, list[float]]  # row -> each round's seconds for all the posts


def measure(
    kind: str,
    urls: dict[str, Any],
    ifaces: tuple[Any, Any],
    ca_pem: str,
    args: argparse.Namespace,
    latency: Latency,
    posts: Posts,
) -> None:
    i_calculator, i_sink = ifaces
    context = tls.client_context(cafile=ca_pem) if kind == "tls" else None
    options: dict[str, Any] = {}
    if context is not None:
        options = {"tls": context, "server_hostname": "localhost"}
    warm_posts = min(args.posts, 2000)
    with contextlib.ExitStack() as stack:
        # A zone links to another zone once: one client zone per connection.
        calc = stack.enter_context(canopy.Zone("bench-calc")).connect(
            urls["calc"], i_calculator, **options
        )
        sink = stack.enter_context(canopy.Zone("bench-sink")).connect(
            urls["sink"], i_sink, **options
        )
        runner = stack.enter_context(asyncio.Runner())

        async def open_async(name: str, url: str, iface: Any) -> Any:
            azone = canopy.AsyncZone(name)
            stack.callback(lambda: runner.run(azone.aclose()))
            return await azone.connect(url, iface, **options)

        acalc = runner.run(open_async("bench-async-calc", urls["calc"], i_calculator))
        asink = runner.run(open_async("bench-async-sink", urls["sink"], i_sink))
        ping = Raw(kind, urls["raw"], context, b"A")
        stack.callback(ping.close)
        batch = Raw(kind, urls["raw"], context, b"P")
        stack.callback(batch.close)

        assert calc.add(1, 2) == 3 and ping.add(1, 2) == 3
        assert runner.run(acalc.add(1, 2)) == 3
        timed_calls(calc.add, WARM_CALLS)
        timed_calls(ping.add, WARM_CALLS)
        runner.run(atimed_calls(acalc.add, WARM_CALLS))
        canopy_posts(sink, warm_posts)
        batch.posts_each(warm_posts)
        batch.posts_batched(warm_posts)
        runner.run(acanopy_posts(asink, warm_posts))

        for _ in range(args.rounds):  # alternate, so that noise hits every row alike
            latency.setdefault(f"raw blocking {kind}", []).append(timed_calls(ping.add, args.calls))
            latency.setdefault(f"canopy blocking {kind}", []).append(
                timed_calls(calc.add, args.calls)
            )
            latency.setdefault(f"canopy asyncio {kind}", []).append(
                runner.run(atimed_calls(acalc.add, args.calls))
            )
            posts.setdefault(f"raw {kind}, one sendall each", []).append(
                batch.posts_each(args.posts)
            )
            posts.setdefault(f"raw {kind}, batched", []).append(batch.posts_batched(args.posts))
            posts.setdefault(f"canopy blocking {kind}", []).append(canopy_posts(sink, args.posts))
            posts.setdefault(f"canopy asyncio {kind}", []).append(
                runner.run(acanopy_posts(asink, args.posts))
            )


def report(latency: Latency, posts: Posts, args: argparse.Namespace, seconds: float) -> None:
    print(
        f"add(1, 2): {args.calls} calls x {args.rounds} rounds, per call ({os.cpu_count()} "
        "cpus);\n  x floor: this figure / the raw blocking socket's of the same kind"
    )
    print(f"  {'client':22} {'median':>9} {'p99':>9}  {'round medians':>17}  x floor: median  p99")
    for kind in KINDS:
        floor = _pooled(latency[f"raw blocking {kind}"])
        for name in (f"raw blocking {kind}", f"canopy blocking {kind}", f"canopy asyncio {kind}"):
            rounds = latency[name]
            median, p99 = _pooled(rounds)
            medians = [statistics.median(one) * 1e6 for one in rounds]
            spread = f"{min(medians):.1f}-{max(medians):.1f} us"
            print(
                f"  {name:22} {median * 1e6:6.1f} us {p99 * 1e6:6.1f} us  {spread:>17}"
                f"  {median / floor[0]:15.2f} {p99 / floor[1]:5.2f}"
            )
    print(
        f"\n[post] put of a {len(PAYLOAD)}-byte string: {args.posts} posts x {args.rounds} "
        "rounds, until the server has them all (median rate);\n  x floor: the floor's rate "
        "/ this rate, i.e. how many times longer per post"
    )
    print(f"  {'client':28} {'posts/s':>9}  {'round rates':>17}  x floor: 1 send  batched")
    for kind in KINDS:
        each = statistics.median(posts[f"raw {kind}, one sendall each"])
        batched = statistics.median(posts[f"raw {kind}, batched"])
        for name in (
            f"raw {kind}, one sendall each",
            f"raw {kind}, batched",
            f"canopy blocking {kind}",
            f"canopy asyncio {kind}",
        ):
            median = statistics.median(posts[name])
            rates = [args.posts / s / 1000 for s in posts[name]]
            spread = f"{min(rates):.0f}k-{max(rates):.0f}k"
            print(
                f"  {name:28} {args.posts / median:9,.0f}  {spread:>17}"
                f"  {median / each:15.2f} {median / batched:8.2f}"
            )
    print(f"\nthe whole run took {seconds:.1f} s")


def _pooled(rounds: list[list[float]]) -> tuple[float, float]:
    """The median and p99 of every call of every round."""
    samples = [s for one in rounds for s in one]
    return statistics.median(samples), statistics.quantiles(samples, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round (2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    parser.add_argument("--posts", type=int, default=20000, help="posts per round (20000)")
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    if args.calls < 100 or args.rounds < 1 or args.posts < 1:
        parser.error("--calls must be at least 100 (for a p99), --rounds and --posts at least 1")
    began = time.perf_counter()
    import trustme

    calculator: Any = canopy.load_idl(CALCULATOR).calculator
    where = tempfile.mkdtemp(prefix="canopy-bench-")
    latency: Latency = {}
    posts: Posts = {}
    try:
        (Path(where) / "sink.idl").write_text(SINK_IDL, encoding="utf-8")
        benchpost: Any = canopy.load_idl(Path(where) / "sink.idl").benchpost
        authority = trustme.CA()
        ca_pem, chain_pem = f"{where}/ca.pem", f"{where}/chain.pem"
        authority.cert_pem.write_to_path(ca_pem)
        authority.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(chain_pem)
        ifaces = (calculator.i_calculator, benchpost.i_sink)
        for kind in KINDS:
            with child(kind, where, chain_pem) as server:
                measure(kind, server.urls, ifaces, ca_pem, args, latency, posts)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    report(latency, posts, args, time.perf_counter() - began)


if __name__ == "__main__":
    main()
