"""CPU per call on each side: ``add(1, 2)`` to a server in a child process, blocking or
asyncio, over a Unix socket or TCP; the median round trip and the CPU time each
process spent per call (user + system, from /proc), which is what a hot-path change
moves even when the machine's wake-up latencies hide it in the round trip.

    .venv/bin/python bench/call_cpu.py [--mode blocking|asyncio] [--url unix|tcp] [--calls N]

To compare two commits, run it alternately against each, in the same minutes (these
machines drift by 2x in an hour): ``git worktree add /tmp/old REV`` and then
``PYTHONPATH=/tmp/old/src .venv/bin/python bench/call_cpu.py`` against the plain
command. Linux only (/proc). The child is stopped by closing its stdin, then by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import canopy

CALCULATOR = Path(str(resources.files("canopy") / "examples" / "calculator.idl"))
SERVER = """
import asyncio, sys, canopy
from importlib import resources
from pathlib import Path
calc = canopy.load_idl(Path(str(resources.files("canopy") / "examples" / "calculator.idl")))
calculator = calc.calculator
class Calculator(calculator.i_calculator):
    def add(self, a, b):
        return a + b
mode, url = sys.argv[1], sys.argv[2]
if mode == "asyncio":
    async def main():
        async with canopy.AsyncZone("server") as zone:
            server = await zone.serve(url, lambda z: Calculator(), calculator.i_calculator)
            print(server.url, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    asyncio.run(main())
else:
    with canopy.Zone("server") as zone:
        server = zone.serve(url, lambda z: Calculator(), calculator.i_calculator)
        print(server.url, flush=True)
        sys.stdin.read()
"""
WARM = 2000
LIFETIME = 120.0  # seconds the child may live


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(mode: str, url: str, calls: int, times: list[float], mine: float, its: float) -> None:
    print(
        f"{mode:8} {url.split(':')[0]:4}  median {statistics.median(times) * 1e6:7.1f} us  "
        f"client CPU {mine / calls * 1e6:6.1f} us/call  server CPU {its / calls * 1e6:6.1f} us/call"
    )


def blocking(url: str, pid: int, calls: int, iface: Any) -> None:
    with canopy.Zone("client") as zone:
        calc = zone.connect(url, iface)
        for _ in range(WARM):
            calc.add(1, 2)
        times = []
        mine, its = time.process_time(), cpu_seconds(pid)
        for _ in range(calls):
            start = time.perf_counter()
            calc.add(1, 2)
            times.append(time.perf_counter() - start)
        report("blocking", url, calls, times, time.process_time() - mine, cpu_seconds(pid) - its)


async def in_asyncio(url: str, pid: int, calls: int, iface: Any) -> None:
    async with canopy.AsyncZone("client") as zone:
        calc = await zone.connect(url, iface)
        for _ in range(WARM):
            await calc.add(1, 2)
        times = []
        mine, its = time.process_time(), cpu_seconds(pid)
        for _ in range(calls):
            start = time.perf_counter()
            await calc.add(1, 2)
            times.append(time.perf_counter() - start)
        report("asyncio", url, calls, times, time.process_time() - mine, cpu_seconds(pid) - its)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("blocking", "asyncio"), default="blocking")
    parser.add_argument("--url", choices=("unix", "tcp"), default="unix")
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    iface = canopy.load_idl(CALCULATOR).calculator.i_calculator
    with tempfile.TemporaryDirectory(prefix="call-cpu-") as where:
        url = f"unix:{where}/calc.sock" if args.url == "unix" else "tcp://127.0.0.1:0"
        child = subprocess.Popen(  # noqa: S603 - this interpreter, this script's server
            [sys.executable, "-c", SERVER, args.mode, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            served = child.stdout.readline().strip()
            if not served:
                raise SystemExit("the server did not start")
            if args.mode == "blocking":
                blocking(served, child.pid, args.calls, iface)
            else:
                asyncio.run(
                    asyncio.wait_for(in_asyncio(served, child.pid, args.calls, iface), LIFETIME)
                )
        finally:
            if child.stdin is not None:
                child.stdin.close()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)


if __name__ == "__main__":
    main()
