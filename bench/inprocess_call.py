"""An in-process call between two zones, fully marshalled, against a plain method call.

Both are timed in the same run, in alternating batches so machine noise hits
both alike; the figure that matters is the ratio. Blocking and asyncio zones.

    .venv/bin/python bench/inprocess_call.py [--calls 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from importlib import resources
from pathlib import Path
from typing import Any

import canopy

CALCULATOR = Path(str(resources.files("canopy") / "examples" / "calculator.idl"))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    calculator: Any = canopy.load_idl(CALCULATOR).calculator

    class Calculator(calculator.i_calculator):  # type: ignore[misc]
        def add(self, a: int, b: int) -> int:
            return a + b

    local = Calculator()
    zone = canopy.Zone("bench")
    remote = zone.child("calc", lambda z: Calculator(), calculator.i_calculator)

    async def async_rounds() -> list[float]:
        async with canopy.AsyncZone("bench-async") as azone:
            aremote = await azone.child("calc", lambda z: Calculator(), calculator.i_calculator)
            await per_call_async(aremote.add, 1000)
            return [await per_call_async(aremote.add, args.calls) for _ in range(args.rounds)]

    plain, blocking = [], []
    per_call(remote.add, 1000)  # warm up
    for _ in range(args.rounds):
        plain.append(per_call(local.add, args.calls))
        blocking.append(per_call(remote.add, args.calls))
    in_async = asyncio.run(async_rounds())

    base = statistics.median(plain)
    print(f"{'call':38} {'median':>10} {'ratio to plain':>15}")
    for name, times in [
        ("plain Python method call", plain),
        ("in-process zone call, blocking", blocking),
        ("in-process zone call, asyncio", in_async),
    ]:
        median = statistics.median(times)
        print(f"{name:38} {median * 1e6:8.2f} us {median / base:14.1f}x")


if __name__ == "__main__":
    main()
