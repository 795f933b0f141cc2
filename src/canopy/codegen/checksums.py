"""Frozen contracts: ``check_sums/<status>/<qualified name>`` files and the check against them.

Each file holds a definition's fingerprint on its first line and, below it,
the canonical seed the fingerprint was made from, one member per line. The
seed lets ``check`` say which member of a ``[status=production]`` interface or
struct changed, not only that its id did.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from canopy.idl import Interface, Model, Struct, canonical_seed, fingerprint

DEFAULT_STATUS = "development"


@dataclass(frozen=True, slots=True)
class Checksum:
    qualified_name: str
    status: str
    fingerprint: int
    seed: str

    def render(self) -> str:
        return f"{self.fingerprint}\n{self.seed}\n"


def checksums(model: Model) -> list[Checksum]:
    """One checksum per interface and struct the model itself defines."""
    out = []
    for d in model.walk():
        if isinstance(d, Interface | Struct):
            status = d.attributes.get("status", DEFAULT_STATUS)
            out.append(
                Checksum(
                    d.qualified_name,
                    status if isinstance(status, str) else DEFAULT_STATUS,
                    fingerprint(model, d),
                    canonical_seed(model, d),
                )
            )
    return out


def write_checksums(model: Model, directory: Path) -> list[Path]:
    """Write ``directory/<status>/<qualified name>`` for every interface and struct."""
    written = []
    for c in checksums(model):
        path = directory / c.status / c.qualified_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(c.render(), encoding="utf-8")
        written.append(path)
    return written


def check(model: Model, directory: Path) -> list[str]:
    """Problems with the model's production contracts, compared with ``directory``.

    Empty when every ``[status=production]`` interface and struct matches the
    file recorded for it.
    """
    problems = []
    for c in checksums(model):
        if c.status != "production":
            continue
        kind = "interface" if isinstance(model.lookup(c.qualified_name), Interface) else "struct"
        path = directory / "production" / c.qualified_name
        if not path.is_file():
            problems.append(
                f"{kind} {c.qualified_name} is [status=production] but has no checksum file "
                f"{path}: run `canopy generate` and commit what it writes"
            )
            continue
        recorded_id, _, recorded_seed = path.read_text(encoding="utf-8").partition("\n")
        if recorded_id.strip() == str(c.fingerprint):
            continue
        changes = _changes(recorded_seed.rstrip("\n"), c.seed)
        problems.append(
            f"{kind} {c.qualified_name} is [status=production] and its contract changed "
            f"(id {recorded_id.strip()} is now {c.fingerprint}):\n{changes}\n"
            "A production contract is frozen: revert the change and add the new version in a "
            "new inline namespace (for example v2 beside v1) instead."
        )
    return problems


def _changes(before: str, after: str) -> str:
    lines = []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        sign = "was" if line.startswith("-") else "now"
        lines.append(f"  {sign}: {line[1:]}")
    return "\n".join(lines) or "  (the seed reads the same; a type it refers to changed)"
