"""Routing across real separate hosts: three network namespaces joined by veth links,
A <-> B <-> C (A and C not directly connected), a Canopy process in each
(tests/netns_zones.py). A reaches C's objects through B and C holds A's; then the
B <-> C link goes down mid-run, and every side must see the failure for what it is.

Needs root and iproute2's ``ip``; skipped where namespaces cannot be made.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

import netns_zones as zones

TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"
KEEPALIVE = 0.5
"""Seconds of silence after which B and C ping each other: a link that is down is
declared dead about twice this long after the last thing it carried."""


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


class Hosts:
    """Three namespaces, their links, and the zones' processes started in them."""

    def __init__(self) -> None:
        self.names = {x: f"canopy{os.getpid()}{x}" for x in "abc"}
        self.made: list[str] = []
        self.launcher: subprocess.Popen[str] | None = None
        self.pids: dict[str, int] = {}  # zone -> its process, forked by the launcher
        self.lines: dict[str, queue.Queue[dict[str, Any]]] = {x: queue.Queue() for x in "abc"}

    def build(self) -> str:
        """Make the namespaces and links; why it failed, or "" when it did not."""
        a, b, c = (self.names[x] for x in "abc")
        for name in (a, b, c):
            made = _ip("netns", "add", name)
            if made.returncode != 0:
                return made.stderr.strip()
            self.made.append(name)
        steps = [
            ("link", "add", "va", "netns", a, "type", "veth", "peer", "name", "vba", "netns", b),
            ("link", "add", "vbc", "netns", b, "type", "veth", "peer", "name", "vc", "netns", c),
            ("-n", a, "addr", "add", f"{zones.A_ADDRESS}/24", "dev", "va"),
            ("-n", b, "addr", "add", f"{zones.B_ADDRESS}/24", "dev", "vba"),
            ("-n", b, "addr", "add", f"{zones.B_ADDRESS_TO_C}/24", "dev", "vbc"),
            ("-n", c, "addr", "add", f"{zones.C_ADDRESS}/24", "dev", "vc"),
        ]
        steps += [("-n", ns, "link", "set", dev, "up") for ns, dev in _devices(a, b, c)]
        for step in steps:
            done = _ip(*step)
            if done.returncode != 0:
                return f"ip {' '.join(step)}: {done.stderr.strip()}"
        return ""

    def start(self) -> None:
        """Run tests/netns_zones.py: a zone in each namespace, whose lines go to ``lines``."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(SRC)])}
        names = [self.names[x] for x in "abc"]
        self.launcher = subprocess.Popen(
            [sys.executable, str(TESTS / "netns_zones.py"), *names, str(KEEPALIVE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.launcher.stdout is not None
        threading.Thread(target=self._read, args=(self.launcher.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        """Each zone's JSON lines, to its queue; then the end, to every queue."""
        for raw in stream:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if "ready" in line:
                self.pids[line["zone"]] = line["ready"]
            self.lines[line["zone"]].put(line)
        for lines in self.lines.values():
            lines.put({"eof": True})

    def expect(self, role: str, key: str, seconds: float = 10.0) -> Any:
        """The value of ``key`` in the next line of zone ``role`` that has it."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                line = self.lines[role].get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"zone {role} said no {key!r} within {seconds} s") from None
            if "eof" in line:
                raise AssertionError(f"zone {role} ended before saying {key!r}:\n{self.errors()}")
            if key in line:
                return line[key]

    def errors(self) -> str:
        """What the zones wrote on stderr (once they have ended)."""
        launcher = self.launcher
        if launcher is None or launcher.stderr is None:
            return ""
        self.stop()
        return launcher.stderr.read()

    def tell(self, word: str) -> None:
        """Say ``word`` to zone A."""
        assert self.launcher is not None and self.launcher.stdin is not None
        self.launcher.stdin.write(word + "\n")
        self.launcher.stdin.flush()

    def cut(self) -> None:
        """Take the B <-> C link down, in B's namespace."""
        done = _ip("-n", self.names["b"], "link", "set", "vbc", "down")
        assert done.returncode == 0, done.stderr

    def stop(self) -> None:
        """End the zones' processes (ours: the launcher and the children it reported)."""
        for pid in self.pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        launcher = self.launcher
        if launcher is not None and launcher.poll() is None:
            launcher.kill()
        if launcher is not None:
            launcher.wait(5.0)

    def clean(self) -> None:
        self.stop()
        if self.launcher is not None:
            for stream in (self.launcher.stdin, self.launcher.stdout, self.launcher.stderr):
                if stream is not None:
                    stream.close()
        for name in self.made:
            _ip("netns", "del", name)


def _devices(a: str, b: str, c: str) -> list[tuple[str, str]]:
    return [(a, "lo"), (a, "va"), (b, "lo"), (b, "vba"), (b, "vbc"), (c, "lo"), (c, "vc")]


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    if sys.platform != "linux" or shutil.which("ip") is None:
        pytest.skip("needs Linux network namespaces and iproute2's ip")
    if os.geteuid() != 0:
        pytest.skip("making network namespaces needs root")
    made = Hosts()
    try:
        why = made.build()
        if why:
            pytest.skip(f"this machine does not allow network namespaces: {why}")
        yield made
    finally:
        made.clean()
        left = _ip("netns", "list").stdout
        assert not any(name in left for name in made.names.values()), left


def test_a_link_going_down_between_hosts_ends_what_went_through_it(hosts: Hosts) -> None:
    hosts.start()
    for role in "abc":
        hosts.expect(role, "ready")
    hosts.tell("go")
    checks = hosts.expect("a", "checks")  # A called C, and C holds A's host, through B
    assert checks == {"add": True, "blob": True, "optimistic": True}

    hosts.cut()
    hosts.tell("cut")  # A calls C at once: the call is in flight while B finds out
    a, b, c = (hosts.expect(role, "report") for role in "abc")

    # A: the call through the dead route fails clearly and soon, then C's objects are
    # gone; its host, whose last holder was C, is destroyed; B still answers.
    assert a["first"] in ("TransportError", "CallCancelled", "ObjectGone"), a
    assert a["failed_in"] < 8 * KEEPALIVE, a
    assert a["settled"] and a["host_destroyed"] and a["b_works"], a
    assert a["left"] == {"holders": [], "imported": []}, a
    # B, the relay: nothing of C's, and nothing of A's that it held for C.
    assert b["lost"] and b["left"] == {"holders": [], "imported": []}, b
    # C: A's host is unreachable; C's foo, whose only shared holder was A, is destroyed
    # and C2, which held it optimistically, was told; nothing of A's or B's is left.
    assert c["lost"], c
    assert c["optimistic_gone"] is True and c["host_gone"] is True, c
    assert c["left"] == {"holders": [], "imported": []}, c
