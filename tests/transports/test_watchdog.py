"""The stall watcher: a run still going after a moment is told, once; a quick one never."""

from __future__ import annotations

import threading
import time

import pytest

from canopy.transports import _watchdog as watchdog
from canopy.transports._watchdog import Stalls


def test_a_run_that_goes_on_is_told_once_and_a_quick_one_never() -> None:
    stalls = Stalls(after=0.01)
    told: list[str] = []
    quick = stalls.begin(lambda: told.append("quick"))
    stalls.end(quick)
    slow = stalls.begin(lambda: told.append("slow"))
    deadline = time.monotonic() + 2
    while not told and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)  # long enough to be told again, were it told twice
    stalls.end(slow)
    assert told == ["slow"]


def test_a_run_after_a_quiet_spell_is_still_watched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchdog, "AWAKE_SECONDS", 0.02)  # the watcher sleeps sooner
    # A quick run must not be told, even when a busy machine pauses this thread between
    # its begin and its end: so "after" is long, next to the watcher's sleeps.
    stalls = Stalls(after=0.25)
    told = threading.Event()
    for _ in range(20):
        # Quick runs that wake the sleeping watcher and end before it looks: it must
        # go back to sleep in a state where the next run wakes it again.
        stalls.end(stalls.begin(told.set))
        time.sleep(0.03)
    assert not told.is_set()
    run = stalls.begin(told.set)
    assert told.wait(2), "a run begun while the watcher slept was never told"
    stalls.end(run)
