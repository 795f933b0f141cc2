"""Proxies type-check in user code under mypy --strict: a wrong argument is a type error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import canopy
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


ASYNC_USER = """\
from __future__ import annotations

import canopy
from calculator import i_calculator, i_calculator_async


class Calculator(i_calculator):
    async def add(self, a: int, b: int) -> int:  # type: ignore[override]
        return a + b


async def use() -> int:
    async with canopy.AsyncZone("host") as host:
        remote = await host.child("calc", lambda zone: Calculator(), i_calculator_async)
        same = await canopy.acast(remote, i_calculator_async)
        total: int = await remote.add(1, 2) + await same.add(3, 4)
        await remote.add("one", 2)  # error: arg-type
        text: str = await remote.add(1, 2)  # error: assignment
        return total + len(text)
"""


def test_asyncio_proxies_type_check(tmp_path: Path) -> None:
    write_python(compile_file(EXAMPLES / "calculator.idl"), tmp_path)
    (tmp_path / "user.py").write_text(ASYNC_USER, encoding="utf-8")
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


def test_the_asyncio_protocol_names_its_interface() -> None:
    import asyncio

    from canopy.codegen import load_python

    calculator = load_python(compile_file(EXAMPLES / "calculator.idl")).calculator

    class Calculator(calculator.i_calculator):  # type: ignore[misc, name-defined]
        async def add(self, a: int, b: int) -> int:
            return a + b

    async def scenario() -> int:
        async with canopy.AsyncZone("host") as host:
            remote = await host.child("c", lambda z: Calculator(), calculator.i_calculator_async)
            again = await canopy.acast(remote, calculator.i_calculator_async)
            assert again is remote
            result: int = await remote.add(20, 22)
            return result

    assert asyncio.run(scenario()) == 42
