"""``canopy serve``: a real process serving a factory's object at URLs, callable from
another zone, and shut down cleanly by SIGINT and SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

import canopy

CALCULATOR = Path(str(resources.files("canopy") / "examples" / "calculator.idl"))
calc = canopy.load_idl(CALCULATOR).calculator

SERVER_MODULE = f"""
import canopy

calc = canopy.load_idl({str(CALCULATOR)!r}).calculator


class Calculator(calc.i_calculator):
    def add(self, a: int, b: int) -> int:
        return a + b


def broken():
    return object()
"""


@pytest.fixture
def module_dir(tmp_path: Path) -> Path:
    (tmp_path / "calc_server.py").write_text(SERVER_MODULE)
    return tmp_path


def start(module_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "canopy", "serve", *args],
        cwd=module_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture
def stop() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:  # only what this test started, by its PID
        if process.poll() is None:
            process.kill()
            process.wait(5)


def urls(process: subprocess.Popen[str], count: int) -> list[str]:
    found: list[str] = []
    deadline = time.monotonic() + 20
    assert process.stdout is not None
    while len(found) < count and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("canopy: serving at "):
            found.append(line.removeprefix("canopy: serving at ").strip())
    assert len(found) == count, f"the server did not say where it listens: {found}"
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_until_interrupted(
    module_dir: Path, stop: list[subprocess.Popen[str]], sig: signal.Signals
) -> None:
    sock = module_dir / "calc.sock"
    process = start(
        module_dir,
        "calc_server:Calculator",
        "--listen",
        "tcp://127.0.0.1:0",
        "--listen",
        f"unix:{sock}",
        "--listen",
        "ws://127.0.0.1:0/calc",
        "--origin",
        "https://app.example",
    )
    stop.append(process)
    tcp_url, unix_url, ws_url = urls(process, 3)
    # One link joins a pair of zones: a client zone for each URL.
    with (
        canopy.Zone("client") as client,
        canopy.Zone("other") as other,
        canopy.Zone("page") as page,
    ):
        over_tcp = client.connect(tcp_url, calc.i_calculator)
        over_unix = other.connect(unix_url, calc.i_calculator)
        assert over_tcp.add(2, 3) == 5 and over_unix.add(4, 5) == 9
        # --origin names the only pages served: no other, and no client without one.
        for origin in ("https://evil.example", None):
            with pytest.raises(canopy.TransportError, match="403 Forbidden"):
                page.connect(ws_url, calc.i_calculator, origin=origin, timeout=5)
        from_app = page.connect(ws_url, calc.i_calculator, origin="https://app.example")
        assert from_app.add(6, 7) == 13
        process.send_signal(sig)
        assert process.wait(10) == 0
        with pytest.raises(canopy.CanopyError):
            over_tcp.add(1, 1)  # the server said goodbye
    assert not sock.exists()  # the Unix listener removed its socket file


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere:Calculator"], "cannot import 'nowhere'"),
        (["calc_server:Missing"], "has no attribute 'Missing'"),
        (["calc_server"], "name the factory as package.module:attribute"),
        (["calc_server:broken"], "implements no Canopy interface"),
        (["calc_server:Calculator", "--interface", "i_other"], "does not implement 'i_other'"),
    ],
)
def test_mistakes_are_reported_without_a_traceback(
    module_dir: Path, stop: list[subprocess.Popen[str]], args: list[str], message: str
) -> None:
    process = start(module_dir, *args, "--listen", "tcp://127.0.0.1:0")
    stop.append(process)
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 2
    assert message in out and "Traceback" not in out
