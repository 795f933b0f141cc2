"""Compiler diagnostics: every IDL error names file, line and column, shows the
line with a caret under the column, and says what would be accepted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from canopy.idl._model import Location


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One error found in an IDL file."""

    location: Location
    message: str
    source_line: str | None = None  # the text of the line, for the caret display

    def format(self) -> str:
        head = f"{self.location}: error: {self.message}"
        if self.source_line is None or self.location.column < 1:
            return head
        line = self.source_line.rstrip("\n").expandtabs(1)
        caret = " " * (self.location.column - 1) + "^"
        return f"{head}\n    {line}\n    {caret}"


class IdlError(Exception):
    """The IDL did not compile. ``diagnostics`` lists every error found, in order."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__(self.format())

    def format(self) -> str:
        count = len(self.diagnostics)
        body = "\n".join(d.format() for d in self.diagnostics)
        return body if count == 1 else f"{body}\n{count} errors"


class Reporter:
    """Collects diagnostics so that one pass can report every error it finds."""

    def __init__(self, lines: dict[str, list[str]] | None = None) -> None:
        self.diagnostics: list[Diagnostic] = []
        self._lines = lines if lines is not None else {}

    def add_source(self, file: str, text: str) -> None:
        self._lines[file] = text.splitlines()

    def error(self, location: Location, message: str) -> None:
        lines = self._lines.get(location.file)
        source = None
        if lines is not None and 1 <= location.line <= len(lines):
            source = lines[location.line - 1]
        self.diagnostics.append(Diagnostic(location, message, source))

    def raise_if_errors(self) -> None:
        if self.diagnostics:
            raise IdlError(self.diagnostics)
