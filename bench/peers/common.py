"""The workload sizes, bounded timing loops and child-process handling that every
driver of bench/suite.py shares: Canopy's, the raw floors' and the peers'.

Adapted from the team's peerbench kit (common.py): the same sizes, loops and
``RESULT {json}`` lines, so that the figures sit beside peerbench's. Standard
library only, as the peers run in a venv of their own.

Every timed loop is bounded by a count and by ``TIME_CAP`` seconds. A server child
prints ``READY <address>`` once listening, exits if its parent goes or after
``SERVER_MAX_LIFETIME`` seconds, and is stopped by its PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import select
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from types import FrameType, TracebackType
from typing import Any, Self

HOST = "127.0.0.1"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


# peerbench's sizes; the suite shrinks them through the environment for --quick.
N_RTT = _env_int("PB_N_RTT", 20_000)  # (a)/(b) timed calls
N_WARM = _env_int("PB_N_WARM", 2_000)  # warm-up calls
N_CONC_TOTAL = _env_int("PB_N_CONC", 20_000)  # (b) calls at 16 in flight
CONCURRENCY = 16
N_ONEWAY = _env_int("PB_N_ONEWAY", 200_000)  # (c) messages
N_ECHO = _env_int("PB_N_ECHO", 300)  # (d) 1 MiB round trips
N_ECHO_WARM = 5
# A throwaway connection first (200 adds and three 1 MiB echoes): glibc's mmap
# threshold rises with the first large free, which takes ~30 us off every stdlib
# asyncio round trip; every driver does the same, so all are measured warm.
N_CONN_WARM = 200
N_CONN_WARM_ECHO = 3
TIME_CAP = float(os.environ.get("PB_TIME_CAP", "4.0"))  # seconds per timed loop
ONEWAY_TEXT = "0123456789abcdef"  # 16 bytes
ONEWAY_BYTES = ONEWAY_TEXT.encode()
ECHO_SIZE = 1 << 20
N_REFS = _env_int("PB_N_REFS", 10_000)  # (f) references made, passed and released
N_LIVE = _env_int("PB_N_LIVE", 10_000)  # (g) live proxies and exported objects
N_LIVE_CALL = _env_int("PB_N_LIVE_CALL", 100_000)  # (a) again with this many live objects
N_CLIENTS = _env_int("PB_N_CLIENTS", 1_000)  # (h) concurrent clients
CLIENTS_CAP = float(os.environ.get("PB_CLIENTS_CAP", "60.0"))  # (h) seconds per phase
CALLS_PER_CLIENT = 3  # (h) sequential calls each client makes, all clients at once
CONNECTS_AT_ONCE = 64  # (h) connects in progress at once (the listen backlog is 128)
SERVER_MAX_LIFETIME = float(os.environ.get("PB_SERVER_MAX_LIFETIME", "300"))
SERVER_START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0

Fields = dict[str, Any]


def emit(peer: str, test: str, **fields: Any) -> None:
    """One ``RESULT {json}`` line, which the suite collects from standard output."""
    print("RESULT " + json.dumps({"peer": peer, "test": test, **fields}), flush=True)


def note(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def p99(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def latency_fields(samples_ns: Sequence[int], capped: bool) -> Fields:
    return {
        "med_us": round(statistics.median(samples_ns) / 1000, 2),
        "p99_us": round(p99(samples_ns) / 1000, 2),
        "n": len(samples_ns),
        "capped": capped,
    }


def measure_sync_rtt(
    call: Callable[[], object], n: int | None = None, warm: int | None = None
) -> Fields:
    """Each call of a blocking ``call()`` timed on its own: median and p99."""
    n = N_RTT if n is None else n
    warm = N_WARM if warm is None else warm
    deadline = time.perf_counter() + TIME_CAP
    for i in range(warm):
        call()
        if (i & 255) == 0 and time.perf_counter() > deadline:
            break
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    deadline = time.perf_counter() + TIME_CAP
    capped = False
    for i in range(n):
        started = clock()
        call()
        append(clock() - started)
        if (i & 255) == 0 and time.perf_counter() > deadline:
            capped = True
            break
    return latency_fields(samples, capped)


async def measure_async_rtt(
    acall: Callable[[], Awaitable[object]], n: int | None = None, warm: int | None = None
) -> Fields:
    """Each sequential ``await acall()`` timed on its own: median and p99."""
    n = N_RTT if n is None else n
    warm = N_WARM if warm is None else warm
    deadline = time.perf_counter() + TIME_CAP
    for i in range(warm):
        await acall()
        if (i & 255) == 0 and time.perf_counter() > deadline:
            break
    clock = time.perf_counter_ns
    samples: list[int] = []
    append = samples.append
    deadline = time.perf_counter() + TIME_CAP
    capped = False
    for i in range(n):
        started = clock()
        await acall()
        append(clock() - started)
        if (i & 255) == 0 and time.perf_counter() > deadline:
            capped = True
            break
    return latency_fields(samples, capped)


async def measure_async_concurrent(
    acall: Callable[[], Awaitable[object]], conc: int = CONCURRENCY, total: int | None = None
) -> Fields:
    """Calls per second with ``conc`` coroutines each awaiting ``acall()`` in a loop."""
    total = N_CONC_TOTAL if total is None else total
    await asyncio.gather(*[acall() for _ in range(conc * 10)])  # warm, at full concurrency
    left, done = total, 0
    deadline = time.perf_counter() + TIME_CAP

    async def worker() -> None:
        nonlocal left, done
        while left > 0 and time.perf_counter() < deadline:
            left -= 1
            await acall()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(conc)])
    seconds = time.perf_counter() - started
    return {"per_s": round(done / seconds, 1), "n": done, "capped": left > 0, "conc": conc}


def measure_windowed(
    submit: Callable[[], Any],
    wait: Callable[[Any], object],
    conc: int = CONCURRENCY,
    total: int | None = None,
) -> Fields:
    """Calls per second of a blocking client with futures, ``conc`` kept outstanding."""
    total = N_CONC_TOTAL if total is None else total
    for _ in range(conc * 10):
        wait(submit())
    window: deque[Any] = deque()
    done = sent = 0
    capped = False
    deadline = time.perf_counter() + TIME_CAP
    started = time.perf_counter()
    while sent < total:
        while len(window) < conc and sent < total:
            window.append(submit())
            sent += 1
        wait(window.popleft())
        done += 1
        if (done & 63) == 0 and time.perf_counter() > deadline:
            capped = True
            break
    while window:
        wait(window.popleft())
        done += 1
    seconds = time.perf_counter() - started
    return {"per_s": round(done / seconds, 1), "n": done, "capped": capped, "conc": conc}


def oneway_fields(sent: int, acked: int, seconds: float, capped: bool) -> Fields:
    return {
        "per_s": round(acked / seconds, 1),
        "n": acked,
        "sent": sent,
        "capped": capped,
        "ok": sent == acked,
    }


def _echo_fields(samples_ns: list[int], seconds: float, ok: bool, capped: bool) -> Fields:
    mib = ECHO_SIZE * len(samples_ns) / (1 << 20)
    return {
        "mib_s": round(mib / seconds, 1),
        "med_ms": round(statistics.median(samples_ns) / 1e6, 3),
        "p99_ms": round(p99(samples_ns) / 1e6, 3),
        "n": len(samples_ns),
        "capped": capped,
        "ok": ok,
    }


def measure_echo(call: Callable[[bytes], Any], payload: bytes, n: int | None = None) -> Fields:
    """MiB of payload per second of ``call(payload)`` echoing it (up and back down)."""
    n = N_ECHO if n is None else n
    ok = bytes(call(payload)) == payload
    for _ in range(N_ECHO_WARM - 1):
        call(payload)
    clock = time.perf_counter_ns
    samples: list[int] = []
    deadline = time.perf_counter() + TIME_CAP
    capped = False
    started = time.perf_counter()
    for i in range(n):
        if i and time.perf_counter() > deadline:
            capped = True
            break
        one = clock()
        call(payload)
        samples.append(clock() - one)
    return _echo_fields(samples, time.perf_counter() - started, ok, capped)


async def measure_async_echo(
    acall: Callable[[bytes], Awaitable[Any]], payload: bytes, n: int | None = None
) -> Fields:
    n = N_ECHO if n is None else n
    ok = bytes(await acall(payload)) == payload
    for _ in range(N_ECHO_WARM - 1):
        await acall(payload)
    clock = time.perf_counter_ns
    samples: list[int] = []
    deadline = time.perf_counter() + TIME_CAP
    capped = False
    started = time.perf_counter()
    for i in range(n):
        if i and time.perf_counter() > deadline:
            capped = True
            break
        one = clock()
        await acall(payload)
        samples.append(clock() - one)
    return _echo_fields(samples, time.perf_counter() - started, ok, capped)


async def calls_from_all(adds: Sequence[Callable[[], Awaitable[int]]]) -> tuple[float, bool]:
    """(h): every client makes ``CALLS_PER_CLIENT`` adds in turn, all clients at once;
    the seconds that took and whether every result was right."""

    async def one(add: Callable[[], Awaitable[int]]) -> bool:
        return all([await add() == 3 for _ in range(CALLS_PER_CLIENT)])

    started = time.perf_counter()
    results = await asyncio.wait_for(asyncio.gather(*[one(a) for a in adds]), CLIENTS_CAP)
    return time.perf_counter() - started, all(results)


def clients_fields(clients: int, connect_s: float, calls_s: float, ok: bool) -> Fields:
    calls = clients * CALLS_PER_CLIENT
    return {
        "clients": clients,
        "n": calls,
        "connect_s": round(connect_s, 3),
        "calls_s": round(calls_s, 4),
        "per_s": round(calls / calls_s, 1),
        "ok": ok,
    }


def echo_payload() -> bytes:
    """1 MiB of fixed, incompressible bytes."""
    return random.Random(1234).randbytes(ECHO_SIZE)


# ---------------------------------------------------------------- processes


def process_setup() -> None:
    """First thing in every driver: SIGTERM becomes SystemExit, so ``finally`` runs."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def server_watchdog(max_lifetime: float = SERVER_MAX_LIFETIME) -> None:
    """Exit the server at once if its parent goes or after ``max_lifetime`` seconds."""
    parent = os.getppid()
    end = time.monotonic() + max_lifetime

    def watch() -> None:
        while True:
            time.sleep(0.25)
            if os.getppid() != parent or time.monotonic() > end:
                os._exit(3)

    threading.Thread(target=watch, name="suite-watchdog", daemon=True).start()


async def wait_sigterm() -> None:
    """An asyncio server returns from here on SIGTERM, to close cleanly."""
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    await stopped.wait()


def server_ready(address: object) -> None:
    sys.stdout.write(f"READY {address}\n")
    sys.stdout.flush()


class ServerProcess:
    """``python -m <module> server <args>`` (or any command): started, its READY line
    read, and stopped by its PID."""

    def __init__(
        self,
        module: str,
        *args: object,
        command: Sequence[str] | None = None,
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.command = (
            list(command)
            if command is not None
            else [sys.executable, "-m", module, "server", *map(str, args)]
        )
        self.pass_fds = tuple(pass_fds)
        self.process: subprocess.Popen[str] | None = None
        self.address = ""

    def __enter__(self) -> Self:
        self.process = subprocess.Popen(  # noqa: S603 - a driver of this suite
            self.command,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            pass_fds=self.pass_fds,
        )
        assert self.process.stdout is not None
        line = ""
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while time.monotonic() < deadline:
                readable, _, _ = select.select([self.process.stdout], [], [], 0.2)
                if readable:
                    line = self.process.stdout.readline()
                    if line.startswith("READY ") or line == "":
                        break
                if self.process.poll() is not None:
                    break
            if not line.startswith("READY "):
                raise RuntimeError(
                    f"the server did not start: {self.command} rc={self.process.poll()}"
                )
        except BaseException:
            self.stop()
            raise
        self.address = line.split(" ", 1)[1].strip()
        return self

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()  # this PID only
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def connect_retry(fn: Callable[[], Any], attempts: int = 50, delay: float = 0.05) -> Any:
    """A connect that may race the server's listen(), retried a bounded number of times."""
    last: OSError | None = None
    for _ in range(attempts):
        try:
            return fn()
        except OSError as e:
            last = e
            time.sleep(delay)
    assert last is not None
    raise last
