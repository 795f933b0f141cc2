"""Zones in child processes: started from an entry point, called and calling back, ended
by the last reference or by the parent's death, and crashes that cost the parent
nothing but the calls in flight."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import canopy
from behaviour import Widget, b
from canopy.runtime import close
from waiting import until

TESTS = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie nobody reaped counts as ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):  # reaped before or while it was read
        return True
    return "State:\tZ" in status


def clean(zone: canopy.Zone) -> bool:
    return zone.exported() == {} and zone.imported() == []


def test_a_child_serves_calls_callbacks_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="canopy.child")
    with canopy.Zone("parent") as zone:
        root = zone.spawn("svc", "child_entries:service", b.i_test, env=ENV)
        child = zone.children["svc"]
        assert child.pid != os.getpid()
        assert root.add(2, 3) == 5
        assert root.widget_name(Widget("from the parent")) == "from the parent"
        widget = root.make_widget("from the child")
        assert widget.name() == "from the child"
        close(widget)
        close(root)  # the last reference into the child: it exits
        assert until(lambda: gone(child.pid))
        assert child.process.wait(5) == 0
        assert until(lambda: zone.children == {} and clean(zone))
    records = {(r.name, r.levelno, r.getMessage()) for r in caplog.records}
    assert ("canopy.child.svc", logging.INFO, "child svc serving") in records
    assert ("canopy.child.svc", logging.WARNING, "a line on stderr") in records


@pytest.mark.parametrize(("setting", "loop"), [("1", "uvloop"), ("0", "asyncio")])
def test_an_asyncio_child_runs_on_uvloop_when_installed(setting: str, loop: str) -> None:
    pytest.importorskip("uvloop", reason="uvloop is optional; the dev extras install it")

    async def scenario() -> str:
        async with canopy.AsyncZone("parent") as zone:
            env = {**ENV, "CANOPY_UVLOOP": setting}
            root = await zone.spawn("svc", "child_entries:loop_reporting", b.i_test_async, env=env)
            _, reported, _ = await root.who()
            close(root)
            return str(reported)

    assert asyncio.run(scenario()) == loop


def test_an_asyncio_parent() -> None:
    async def scenario() -> None:
        async with canopy.AsyncZone("parent") as zone:
            root = await zone.spawn("svc", "child_entries:service", b.i_test_async, env=ENV)
            assert await root.add(20, 22) == 42
            assert await root.widget_name(Widget("cb")) == "cb"
            pid = zone.children["svc"].pid
            close(root)
            for _ in range(500):
                if gone(pid) and not zone.children:
                    break
                await asyncio.sleep(0.01)
            assert gone(pid) and not zone.children

    asyncio.run(asyncio.wait_for(scenario(), 30))


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("child_entries:broken", "did not start: it exited with 1"),
        ("child_entries:not_an_interface", "did not start: it exited with 1"),
        ("child_entries:missing", "did not start"),
    ],
)
def test_a_child_that_cannot_start_is_a_clear_error(
    target: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="canopy.child")
    with canopy.Zone("parent") as zone, pytest.raises(canopy.TransportError, match=message):
        zone.spawn("bad", target, b.i_test, env=ENV)
    assert zone.children == {}
    assert any(r.name == "canopy.child.bad" for r in caplog.records)  # its traceback


def test_killed_mid_call_again_and_again() -> None:
    """Each time the pending call fails within a second, the parent keeps nothing of the
    dead child, and a fresh child works. (bench/chaos.py does this a hundred times
    under load; three rounds here keep the suite quick.)"""
    with canopy.Zone("parent") as zone:
        for round_ in range(3):
            root = zone.spawn(f"svc{round_}", "child_entries:service", b.i_test, env=ENV)
            assert root.add(round_, 1) == round_ + 1
            mine = Widget("held by the child")
            root.keep(mine)  # the child holds one of the parent's objects
            child = zone.children[f"svc{round_}"]
            # kills the child a little after the call starts
            killer = threading.Timer(0.1, os.kill, (child.pid, signal.SIGKILL))
            killer.start()
            start = time.monotonic()
            with pytest.raises((canopy.TransportError, canopy.CallCancelled)):
                root.slow(10_000)
            assert time.monotonic() - start < 1.1
            killer.join(5)
            with pytest.raises(canopy.CanopyError):
                root.add(1, 1)
            del root, mine
            assert until(lambda: clean(zone) and not zone.children, 2), zone.exported()
        last = zone.spawn("last", "child_entries:service", b.i_test, env=ENV)
        assert last.add(1, 1) == 2
        close(last)


def test_a_child_that_crashes_by_itself() -> None:
    with canopy.Zone("parent") as zone:
        root = zone.spawn("crash", "child_entries:crashing", b.i_test, env=ENV)
        child = zone.children["crash"]
        with pytest.raises((canopy.TransportError, canopy.CallCancelled)):
            root.slow(1)
        assert child.process.wait(5) == 3
        assert until(lambda: clean(zone) and not zone.children)


def test_a_hung_call_times_out_and_the_child_stays_usable() -> None:
    with canopy.Zone("parent") as zone:
        root = zone.spawn("hung", "child_entries:service", b.i_test, env=ENV, call_timeout=0.3)
        start = time.monotonic()
        with pytest.raises(canopy.CallTimeout, match="slow"):
            root.slow(5_000)  # an implementation that does not come back in time
        assert time.monotonic() - start < 1.0
        assert root.add(1, 2) == 3
        child = zone.children["hung"]
        assert child.stop() == 0
        assert gone(child.pid)


PARENT = """
import os, sys, time
import canopy
from behaviour import b
zone = canopy.Zone("doomed-parent")
root = zone.spawn("orphan", "child_entries:service", b.i_test, env=dict(os.environ))
print(zone.children["orphan"].pid, flush=True)
time.sleep(60)
"""


def test_the_child_dies_with_its_parent() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], env=ENV, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert not gone(child_pid)
        parent.kill()  # SIGKILL: no cleanup of any kind in the parent
        parent.wait(5)
        start = time.monotonic()
        assert until(lambda: gone(child_pid), 1.0), "the child outlived its parent"
        assert time.monotonic() - start < 1.0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(5)


def test_the_inference_walkthrough_with_the_service_in_a_child(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from importlib import resources

    from canopy._demo import _implementations

    idl = Path(str(resources.files("canopy") / "examples" / "inference.idl"))
    inference = canopy.load_idl(idl).inference
    _, sink_cls = _implementations(inference)
    with canopy.Zone("parent") as zone:
        service = zone.spawn(
            "inference", "child_entries:inference_service", inference.i_inference_service, env=ENV
        )
        assert service.list_models() == ["echo", "tiny-1"]
        session = service.create_session("tiny-1")  # an owning reference into the child
        sink = sink_cls(label="parent")
        session.generate("Tell me about foxes", inference.generation_options(max_tokens=4), sink)
        assert sink.tokens == ["the", "quick", "brown", "fox"]  # [post]s, in order
        assert sink.reason == "max_tokens"
        assert session.cancel() is None
        caplog.set_level(logging.INFO, logger="canopy.child")
        del session
        zone.collect()
        assert len(zone.imported()) == 1  # the service root only: the session is released
        assert until(lambda: any("session destroyed" in r.getMessage() for r in caplog.records)), (
            "the child did not destroy the session"
        )
        close(service)
        assert until(lambda: not zone.children and clean(zone))


@pytest.mark.parametrize("mode", ["blocking", "asyncio"])
def test_a_shared_memory_child_killed_mid_call(mode: str) -> None:
    """Over shared-memory rings the child's death is seen on the doorbell socket: the
    pending call fails at once, and no segment is left behind."""

    async def call_and_kill(zone: canopy.AsyncZone) -> None:
        root = await zone.spawn(
            "shm", "child_entries:service", b.i_test_async, env=ENV, shared_memory=True
        )
        assert await root.add(1, 2) == 3
        pid = zone.children["shm"].pid
        asyncio.get_running_loop().call_later(0.1, os.kill, pid, 9)
        start = time.monotonic()
        with pytest.raises((canopy.TransportError, canopy.CallCancelled)):
            await root.slow(10_000)
        assert time.monotonic() - start < 1.1

    if mode == "asyncio":

        async def scenario() -> None:
            async with canopy.AsyncZone("parent") as zone:
                await call_and_kill(zone)
                for _ in range(300):
                    if not zone.children:
                        break
                    await asyncio.sleep(0.01)
                assert not zone.children and zone.exported() == {}

        asyncio.run(asyncio.wait_for(scenario(), 30))
    else:
        with canopy.Zone("parent") as zone:
            root = zone.spawn("shm", "child_entries:service", b.i_test, env=ENV, shared_memory=True)
            assert root.add(1, 2) == 3
            pid = zone.children["shm"].pid
            killer = threading.Timer(0.1, os.kill, (pid, signal.SIGKILL))
            killer.start()
            start = time.monotonic()
            with pytest.raises((canopy.TransportError, canopy.CallCancelled)):
                root.slow(10_000)
            assert time.monotonic() - start < 1.1
            killer.join(5)
            del root
            assert until(lambda: clean(zone) and not zone.children)
    # The segments this process made (other test processes may have theirs meanwhile).
    assert not [n for n in os.listdir("/dev/shm") if n.startswith(f"canopy-{os.getpid()}-")]
