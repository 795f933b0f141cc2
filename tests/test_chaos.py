"""The chaos command in short form: child-process zones killed and a TCP link cut under
load leave no object behind, no call hanging, and only clear errors for the callers (the
long run: bench/chaos.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHAOS = Path(__file__).resolve().parents[1] / "bench" / "chaos.py"


def test_a_short_chaos_run_leaks_nothing_and_hangs_nothing() -> None:
    run = subprocess.run(
        [sys.executable, str(CHAOS), "--rounds", "5", "--mode", "blocking", "--children", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "blocking: 5 rounds" in run.stdout
    assert "leaks: none" in run.stdout
    assert "violations: none" in run.stdout
