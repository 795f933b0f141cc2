"""Round-trip latency of a 16-byte message echoed by a child process: the shared
memory stream (spinning as by default, and with ``spin=0``, doorbell only)
against a ``SocketStream`` over a Unix socket pair and a raw socket pair
(``sendall``/``recv``, no canopy at all).

    .venv/bin/python bench/shm_stream.py [--messages 2000] [--rounds 5]

Each kind has its own echoing child. Every round times ``messages`` round trips of
each kind, one after the other in an order that rotates each round, so that
noise hits all alike; each round trip is timed on its own (median and p99) and
ratios compare with the raw socket pair of the same run. A child echoes at most
``MAX_ECHOES`` messages for at most ``CHILD_LIFETIME`` seconds, and is stopped by
its PID (its stream closed, then killed) at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

from canopy.streams import shm
from canopy.streams._socket import SocketStream

MESSAGE = b"0123456789abcdef"
CHILD_LIFETIME = 60.0
STOP_TIMEOUT = 5.0
MAX_ECHOES = 10_000_000
WARM = 500
KINDS = ("raw socketpair", "SocketStream", "shm", "shm spin=0")

CHILD = f"""
import socket, sys, time
from canopy.streams import shm
from canopy.streams._socket import SocketStream
kind, where = sys.argv[1], sys.argv[2]
until = time.monotonic() + {CHILD_LIFETIME}
if kind == "raw":
    sock = socket.socket(fileno=int(where))
    receive, send = sock.recv, sock.sendall
else:
    stream = SocketStream(socket.socket(fileno=int(where))) if kind == "stream" else (
        shm.attach(where, spin=float(sys.argv[3])))
    receive, send = stream.receive, stream.send
for count in range({MAX_ECHOES}):
    data = receive(65536)
    if not data or (count % 1024 == 0 and time.monotonic() > until):
        break
    send(data)
"""


class Echo:
    """One echoing child and this side's ends: ``round_trip`` sends the message and
    waits for all of it back."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._send: Callable[[bytes], object]
        self._receive: Callable[[int], bytes]
        self._close: Callable[[], object]
        if kind.startswith("shm"):
            spin = 0.0 if kind == "shm spin=0" else shm.DEFAULT_SPIN
            channel = shm.Channel.create(spin=spin)
            args, fds = ["shm", channel.spec, str(spin)], channel.pass_fds
            stream = channel.stream()
            self.child = self._start(args, fds)
            channel.close_child_end()
            self._send, self._receive, self._close = stream.send, stream.receive, stream.close
            return
        mine, theirs = socket.socketpair()
        self.child = self._start(
            ["raw" if kind.startswith("raw") else "stream", str(theirs.fileno())],
            (theirs.fileno(),),
        )
        theirs.close()
        if kind.startswith("raw"):
            self._send, self._receive, self._close = mine.sendall, mine.recv, mine.close
        else:
            wrapped = SocketStream(mine)
            self._send, self._receive, self._close = wrapped.send, wrapped.receive, wrapped.close

    @staticmethod
    def _start(args: list[str], fds: tuple[int, ...]) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-c", CHILD, *args]
        return subprocess.Popen(command, pass_fds=fds)  # noqa: S603 - this script

    def round_trip(self) -> None:
        self._send(MESSAGE)
        got = len(self._receive(65536))
        for _ in range(len(MESSAGE)):
            if got >= len(MESSAGE):
                return
            part = self._receive(65536)
            if not part:
                break
            got += len(part)
        if got < len(MESSAGE):
            raise OSError(f"the {self.kind} child stopped echoing")

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._close()
        try:
            self.child.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.child.kill()  # by its PID, through its Popen
            self.child.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def echoes() -> Iterator[list[Echo]]:
    started: list[Echo] = []
    try:
        for kind in KINDS:
            started.append(Echo(kind))
        yield started
    finally:
        for echo in started:
            echo.stop()


def measure(messages: int, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with echoes() as all_echoes:
        for echo in all_echoes:
            for _ in range(WARM):  # the child has started and every path is warm
                echo.round_trip()
        for index in range(rounds):
            order = all_echoes[index % len(all_echoes) :] + all_echoes[: index % len(all_echoes)]
            for echo in order:
                samples = times[echo.kind]
                for _ in range(messages):
                    started = time.perf_counter_ns()
                    echo.round_trip()
                    samples.append((time.perf_counter_ns() - started) / 1000)
    return times


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="round trips per kind a round")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    times = measure(options.messages, options.rounds)
    raw_median = statistics.median(times[KINDS[0]])
    raw_p99 = p99(times[KINDS[0]])
    print(
        f"{options.rounds} rounds x {options.messages} round trips of {len(MESSAGE)} bytes "
        "per kind, alternating; microseconds"
    )
    print(f"{'kind':<16}{'median':>10}{'p99':>10}{'median/raw':>12}{'p99/raw':>10}")
    for kind in KINDS:
        median, tail = statistics.median(times[kind]), p99(times[kind])
        print(
            f"{kind:<16}{median:>10.1f}{tail:>10.1f}"
            f"{median / raw_median:>12.2f}{tail / raw_p99:>10.2f}"
        )


if __name__ == "__main__":
    main()
