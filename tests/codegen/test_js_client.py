"""The generated JavaScript client against live Canopy servers: ``canopy generate --js``
output runs under Node's own test runner (tests/js/*.test.mjs) and talks to Python
servers over WebSocket on the loopback, in JSON; afterwards each server's tables must
be empty: every reference the page held was released."""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import subprocess
import time
import weakref
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import behaviour
import canopy
from canopy._demo import _implementations
from canopy.codegen.js import write_js
from canopy.idl import compile_file
from canopy.runtime import Zone

EXAMPLES = Path(str(resources.files("canopy") / "examples"))
TESTS = Path(__file__).resolve().parents[1]
JS_TESTS = TESTS / "js"
NODE_TIMEOUT = 120  # seconds for the whole node run

inference: Any = canopy.load_idl(EXAMPLES / "inference.idl").inference
probe: Any = canopy.load_idl(JS_TESTS / "probe.idl").probe
calculator: Any = canopy.load_idl(EXAMPLES / "calculator.idl").calculator
Service, _ = _implementations(inference)


class Calculator(calculator.i_calculator):  # type: ignore[misc]
    def add(self, a: int, b: int) -> int:
        return a + b


class Sessions:
    """Live sessions by the zone that created them, shared by every connection's root."""

    def __init__(self) -> None:
        self.live: dict[int, int] = {}

    def made(self, session: Any, zone: int) -> None:
        self.live[zone] = self.live.get(zone, 0) + 1
        weakref.finalize(session, self._gone, zone)

    def _gone(self, zone: int) -> None:
        self.live[zone] -= 1


class ProbedService(Service, probe.i_probe):  # type: ignore[misc]
    """The demo's inference service, which also answers questions about its server."""

    def __init__(self, zone: Zone, sessions: Sessions) -> None:
        self.zone = zone
        self.sessions = sessions

    def create_session(self, model_id: str) -> Any:
        session = super().create_session(model_id)
        self.sessions.made(session, canopy.caller().zone)
        return session

    def live_sessions(self, zone: int) -> int:
        # A call that failed as its link ended leaves the session in a reference cycle
        # (an asyncio task and its exception's traceback) until the collector runs.
        gc.collect()
        return self.sessions.live.get(zone, 0)

    def held_by(self, zone: int) -> int:
        return sum(1 for holders in self.zone.exported().values() if zone in holders)

    def linked(self, zone: int) -> bool:
        return zone in self.zone.links


def behaviour_root(zone: Zone) -> Any:
    return behaviour.TestService()


def node_command() -> list[str]:
    """node with a global WebSocket (Node 22 has one; Node 20 behind a flag)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the JavaScript client's tests need Node 20 or later")
    for flags in ([], ["--experimental-websocket"]):
        probe_ws = [node, *flags, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"]
        if subprocess.run(probe_ws, capture_output=True, timeout=30, check=False).returncode == 0:
            return [node, *flags]
    pytest.fail("this node has no WebSocket, even with --experimental-websocket: use Node 20+")


@pytest.fixture
def client_dir(tmp_path: Path) -> Path:
    """The generated modules and the node tests, side by side."""
    for idl in (EXAMPLES / "calculator.idl", EXAMPLES / "inference.idl"):
        write_js(compile_file(idl), tmp_path)
    write_js(compile_file(TESTS / "behaviour.idl"), tmp_path)
    write_js(compile_file(JS_TESTS / "probe.idl"), tmp_path)
    for source in JS_TESTS.glob("*.mjs"):
        shutil.copy(source, tmp_path / source.name)
    return tmp_path


@contextlib.contextmanager
def serving(name: str, factory: Any, interface: Any) -> Iterator[tuple[Zone, str]]:
    """A zone of its own serving ``factory``'s roots over WebSocket on the loopback."""
    zone = Zone(name)
    try:
        server = zone.serve("ws://127.0.0.1:0/canopy", factory, interface)
        yield zone, server.url
    finally:
        zone.close()


def settled(zone: Zone, deadline: float) -> bool:
    """Wait until nobody holds anything of ``zone`` and no link is left (bounded)."""
    while time.monotonic() < deadline:
        if not zone.exported() and not zone.links:
            return True
        time.sleep(0.05)
    return False


def test_generated_client_against_live_servers(client_dir: Path) -> None:
    command = node_command()
    sessions = Sessions()
    with (
        serving("calculator", lambda zone: Calculator(), calculator.i_calculator) as (calc, c_url),
        serving(
            "inference", lambda zone: ProbedService(zone, sessions), inference.i_inference_service
        ) as (infer, i_url),
        serving("behaviour", behaviour_root, behaviour.b.i_test) as (behave, b_url),
    ):
        env = {
            **os.environ,
            "CANOPY_CALCULATOR_URL": c_url,
            "CANOPY_INFERENCE_URL": i_url,
            "CANOPY_BEHAVIOUR_URL": b_url,
        }
        tests = sorted(p.name for p in client_dir.glob("*.test.mjs"))
        assert len(tests) >= 4, tests
        try:
            run = subprocess.run(
                [*command, "--test", "--test-concurrency=1", *tests],
                cwd=client_dir,
                env=env,
                capture_output=True,
                text=True,
                timeout=NODE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"node did not finish within {NODE_TIMEOUT} s:\n{e.stdout}\n{e.stderr}")
        report = f"{run.stdout}\n{run.stderr}"
        assert run.returncode == 0, report
        assert "# fail 0" in run.stdout, report
        # Every page has gone: nothing of any server is held, no link is left.
        deadline = time.monotonic() + 10
        for zone in (calc, infer, behave):
            assert settled(zone, deadline), (zone.name, zone.exported(), list(zone.links))
        assert all(count == 0 for count in sessions.live.values()), sessions.live
        assert sessions.live, "no session was ever made: the inference tests did not run"
