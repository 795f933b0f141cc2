"""Proxies type-check in user code under mypy --strict: a wrong argument is a type error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from canopy.codegen import write_python
from canopy.idl import compile_file
from contract import EXAMPLES

USER = """\
from __future__ import annotations

import canopy
from calculator import i_calculator


class Calculator(i_calculator):
    def add(self, a: int, b: int) -> int:
        return a + b


def use() -> int:
    host = canopy.Zone("host")
    remote = host.child("calc", lambda zone: Calculator(), i_calculator)
    same = canopy.cast(remote, i_calculator)
    total: int = remote.add(1, 2) + same.add(3, 4)
    remote.add("one", 2)  # error: arg-type
    text: str = remote.add(1, 2)  # error: assignment
    return total + len(text)
"""


def test_blocking_proxies_type_check(tmp_path: Path) -> None:
    write_python(compile_file(EXAMPLES / "calculator.idl"), tmp_path)
    (tmp_path / "user.py").write_text(textwrap.dedent(USER), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = sorted(
        (int(line.split(":")[1]), line.rsplit("[", 1)[-1].rstrip("]"))
        for line in run.stdout.splitlines()
        if ": error:" in line
    )
    assert errors == [(17, "arg-type"), (18, "assignment")], run.stdout
