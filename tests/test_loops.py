"""Canopy's own event loops: uvloop's when installed and not turned off, asyncio's
otherwise; and the places that make one use them."""

from __future__ import annotations

import asyncio
import sys

import pytest

import canopy
from canopy import _loops

uvloop = pytest.importorskip("uvloop", reason="uvloop is optional; the dev extras install it")


async def _which() -> str:
    return _loops.loop_name()


def test_run_takes_uvloop_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CANOPY_UVLOOP", raising=False)
    assert _loops.loop_factory() is uvloop.new_event_loop
    assert canopy.run(_which()) == "uvloop"


def test_canopy_uvloop_0_keeps_asyncios_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANOPY_UVLOOP", "0")
    assert _loops.loop_factory() is None
    assert canopy.run(_which()) == "asyncio"


def test_without_uvloop_asyncio_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CANOPY_UVLOOP", raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    assert _loops.loop_factory() is None
    assert canopy.run(_which()) == "asyncio"


def test_run_returns_the_result_and_closes_its_loop() -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def main() -> int:
        seen.append(asyncio.get_running_loop())
        return 42

    assert canopy.run(main()) == 42
    assert seen[0].is_closed()


def test_run_refuses_inside_a_running_loop() -> None:
    async def outer() -> None:
        with pytest.raises(RuntimeError, match="running event loop"):
            canopy.run(_which())

    canopy.run(outer())


def test_a_blocking_zones_async_implementation_runs_on_uvloop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The private loop a blocking zone runs ``async def`` implementations on."""
    from canopy.runtime._modes import _run_coroutine, close_thread_loop

    monkeypatch.delenv("CANOPY_UVLOOP", raising=False)
    close_thread_loop()  # a loop an earlier test left on this thread was made before
    try:
        assert _run_coroutine(_which()) == "uvloop"
    finally:
        close_thread_loop()
