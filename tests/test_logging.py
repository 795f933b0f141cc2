"""Canopy logs through the standard logging module, one logger per layer under "canopy",
and is quiet until the application configures logging."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging, sys
import canopy
logging.getLogger("canopy.runtime").warning("a warning nobody asked to see")
if len(sys.argv) > 1:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("canopy.transports.stream").warning("now it is shown")
"""


def test_quiet_by_default_and_shown_once_configured() -> None:
    quiet = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    assert quiet.stderr == ""
    shown = subprocess.run(
        [sys.executable, "-c", SCRIPT, "configured"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert shown.stderr == "canopy.transports.stream: now it is shown\n"
