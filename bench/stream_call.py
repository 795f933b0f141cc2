"""A call across a socket to a zone in another process, against a raw socket ping-pong.

The server runs in a child process; the client times the calculator's ``add``
over TCP and a Unix socket, blocking and asyncio, next to a raw blocking
socket exchange of the same shape (4-byte length, small payload, one reply)
so that the figure that matters, the ratio, comes from one run.

    .venv/bin/python bench/stream_call.py [--calls 2000] [--rounds 5]

The asyncio rows call the same blocking server: only their client is asyncio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import canopy

CALCULATOR = Path(str(resources.files("canopy") / "examples" / "calculator.idl"))
_FRAME = struct.Struct("<Iqq")
_REPLY = struct.Struct("<Iq")


def serve(canopy_url: str, raw_port_file: str) -> None:
    """The child: a blocking canopy server and a raw ping-pong server, until stdin closes."""
    calculator: Any = canopy.load_idl(CALCULATOR).calculator

    class Calculator(calculator.i_calculator):  # type: ignore[misc]
        def add(self, a: int, b: int) -> int:
            return a + b

    zone = canopy.Zone("bench-server")
    server = zone.serve(canopy_url, lambda z: Calculator(), calculator.i_calculator)
    raw = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_raw_server, args=(raw,), daemon=True).start()
    Path(raw_port_file).write_text(f"{raw.getsockname()[1]} {server.url}", encoding="utf-8")
    sys.stdin.read()
    zone.close()


def _raw_server(listener: socket.socket) -> None:
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_raw_connection, args=(conn,), daemon=True).start()


def _raw_connection(conn: socket.socket) -> None:
    reader = conn.makefile("rb")
    while True:
        frame = reader.read(_FRAME.size)
        if len(frame) < _FRAME.size:
            return
        _, a, b = _FRAME.unpack(frame)
        conn.sendall(_REPLY.pack(8, a + b))


def per_call(fn: Any, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn(1, 2)
    return (time.perf_counter() - start) / calls


async def per_call_async(fn: Any, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        await fn(1, 2)
    return (time.perf_counter() - start) / calls


def raw_add(port: int) -> Any:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = sock.makefile("rb")

    def add(a: int, b: int) -> int:
        sock.sendall(_FRAME.pack(16, a, b))
        return int(_REPLY.unpack(reader.read(_REPLY.size))[1])

    return add


def start_server(kind: str, where: str) -> tuple[subprocess.Popen[bytes], int, str]:
    """A server process for ``kind``: the process, its raw port, its canopy URL."""
    url = "tcp://127.0.0.1:0" if kind == "tcp" else f"unix:{where}/bench.sock"
    ready = Path(where) / f"{kind}.ready"
    command = [sys.executable, __file__, "--serve", url, str(ready)]
    child = subprocess.Popen(command, stdin=subprocess.PIPE)  # noqa: S603 - this script
    deadline = time.monotonic() + 30
    while not ready.exists() or not ready.read_text(encoding="utf-8"):
        if time.monotonic() > deadline:
            child.kill()
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    port, served = ready.read_text(encoding="utf-8").split()
    return child, int(port), served


async def async_rounds(url: str, interface: Any, calls: int, rounds: int) -> list[float]:
    async with canopy.AsyncZone("bench-async") as zone:
        remote = await zone.connect(url, interface)
        await per_call_async(remote.add, 500)
        return [await per_call_async(remote.add, calls) for _ in range(rounds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    calculator: Any = canopy.load_idl(CALCULATOR).calculator
    where = tempfile.mkdtemp(prefix="canopy-bench-")
    results: dict[str, list[float]] = {}
    try:
        for kind in ("tcp", "unix"):
            child, port, served = start_server(kind, where)
            try:
                with canopy.Zone("bench-client") as zone:
                    remote = zone.connect(served, calculator.i_calculator)
                    raw = raw_add(port)
                    per_call(remote.add, 500)  # warm up
                    per_call(raw, 500)
                    for _ in range(args.rounds):  # alternate, so that noise hits both alike
                        timed = per_call(remote.add, args.calls)
                        results.setdefault(f"canopy blocking {kind}", []).append(timed)
                        if kind == "tcp":
                            results.setdefault("raw blocking tcp", []).append(
                                per_call(raw, args.calls)
                            )
                results[f"canopy asyncio {kind}"] = asyncio.run(
                    async_rounds(served, calculator.i_calculator, args.calls, args.rounds)
                )
            finally:
                assert child.stdin is not None
                child.stdin.close()
                child.wait(10)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    floor = statistics.median(results["raw blocking tcp"])
    print(f"{args.calls} calls x {args.rounds} rounds, medians ({os.cpu_count()} cpus):")
    for name, times in results.items():
        median = statistics.median(times)
        print(f"  {name:24} {median * 1e6:8.1f} us/call   {median / floor:5.2f}x raw tcp")


if __name__ == "__main__":
    main()
