"""The soak command in short form: mixed calls, posts and reference transfers over TCP leave
no object behind and no memory growth beyond its bound (the long run: bench/soak.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[1] / "bench" / "soak.py"


def test_a_short_soak_leaks_nothing() -> None:
    run = subprocess.run(
        [sys.executable, str(SOAK), "--ops", "4000", "--max-seconds", "60"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "server live items 0; client objects still held by the server 0" in run.stdout
