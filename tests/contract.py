"""Where the IDL contract lives: shared/idl/examples beside the checkout when it is
there (CI and developers), else the copies packaged with canopy."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHARED_EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "idl" / "examples"
PACKAGED_EXAMPLES = Path(str(resources.files("canopy") / "examples"))
EXAMPLES = SHARED_EXAMPLES if SHARED_EXAMPLES.is_dir() else PACKAGED_EXAMPLES
