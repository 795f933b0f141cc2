"""Nothing in the package can turn bytes into code: no ``pickle``, ``marshal``, ``eval``
or ``exec`` anywhere in src/canopy (DESIGN.md, security rules), and ruff's bandit rules
stay on for it. A grep over the source text, with the few legitimate mentions
allowed one by one, and an AST pass that a comment cannot fool."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "canopy"
FORBIDDEN = re.compile(r"\bpickle|\bcPickle\b|\bmarshal\b|\bshelve\b|\beval\(|\bexec\(")
# (file, line) where a forbidden word is prose, not code. ``_marshal`` (canopy's own
# module for references in payloads) has no word boundary before ``marshal``.
ALLOWED = {
    (
        "runtime/_plans.py",
        "in_nested_refs: bool  # a reference inside a struct or container: marshal with hooks",
    ),
}
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle"}
UNSAFE_BUILTINS = {"eval", "exec", "compile", "__import__"}


def grep(text: str) -> list[tuple[int, str]]:
    return [
        (n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if FORBIDDEN.search(line)
    ]


def unsafe_nodes(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if (node.module or "").split(".")[0] in UNSAFE_MODULES:
                found.append(str(node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in UNSAFE_BUILTINS:
            found.append(f"{ast.unparse(node.func)}() at line {node.lineno}")
    return found


SOURCES = sorted(SRC.rglob("*.py"))


def test_the_package_has_sources() -> None:
    assert len(SOURCES) > 30


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_source_file_can_run_bytes_as_code(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    name = path.relative_to(SRC).as_posix()
    assert [hit for hit in grep(text) if (name, hit[1]) not in ALLOWED] == []
    assert unsafe_nodes(ast.parse(text)) == []


def test_every_allowed_mention_is_still_there() -> None:
    # An allow-list entry whose line changed must be looked at again, not kept blindly.
    for name, line in ALLOWED:
        assert line in [hit for _, hit in grep((SRC / name).read_text(encoding="utf-8"))]


@pytest.mark.parametrize(
    "code",
    [
        "import pickle",
        "from marshal import loads",
        "data = pickle.loads(frame)",
        "value = eval(text)",
        "exec(source, scope)",
        "import shelve",
    ],
)
def test_the_checks_catch_each_form(code: str) -> None:
    assert grep(code)
    tree = ast.parse(code)
    if not code.startswith("data"):
        assert unsafe_nodes(tree)


def test_ruff_bandit_rules_are_on_for_the_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]
    lint = config["lint"]
    assert "S" in lint["select"]
    assert not any(rule.startswith("S") for rule in lint.get("ignore", []))
    for pattern, rules in lint.get("per-file-ignores", {}).items():
        if any(rule.startswith("S") for rule in rules):
            assert not pattern.startswith("src"), pattern
