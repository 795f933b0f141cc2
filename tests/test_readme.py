"""The README's Python examples run as written (against the example calculator.idl)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from contract import EXAMPLES

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_examples_run(tmp_path: Path) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 3
    script = []
    for block in blocks:
        if "await " in block:  # an asyncio example: run it in a coroutine
            body = textwrap.indent(block, "    ")
            script.append(
                f"import asyncio\n\nasync def _example():\n{body}\nasyncio.run(_example())\n"
            )
        else:
            script.append(block)
    shutil.copy(EXAMPLES / "calculator.idl", tmp_path / "calculator.idl")
    (tmp_path / "readme.py").write_text("\n".join(script), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "readme.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["5"] * 5
