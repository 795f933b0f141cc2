"""The compiler driver: preprocess, parse, follow ``#import``s, check, build the model.

An imported file is compiled on its own (its macros stay its own); its
definitions join the importing file's model flagged ``imported`` so that
names resolve but nothing is generated for them. Imports are transitive and
each file is compiled once per ``compile_file`` call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from canopy.idl._checks import Resolver, build_index, mark_imported, qualify
from canopy.idl._diagnostics import Diagnostic, IdlError, Reporter
from canopy.idl._model import Definition, Location, Model
from canopy.idl._parser import parse
from canopy.idl._preprocessor import Preprocessed, preprocess

PathLike = str | os.PathLike[str]


def compile_file(
    path: PathLike,
    *,
    include_paths: Sequence[PathLike] = (),
    defines: Mapping[str, str] | None = None,
) -> Model:
    """Compile the IDL file at ``path`` into a checked model; raises ``IdlError``."""
    return _Compilation(include_paths, defines or {}).compile(Path(path), None)


def compile_text(
    text: str,
    *,
    filename: str = "<string>",
    include_paths: Sequence[PathLike] = (),
    defines: Mapping[str, str] | None = None,
) -> Model:
    """Compile IDL source held in memory; ``filename`` names it in errors and
    anchors relative ``#include``/``#import`` paths (the working directory if it
    has no directory part)."""
    return _Compilation(include_paths, defines or {}).compile(Path(filename), text)


class _Compilation:
    def __init__(self, include_paths: Sequence[PathLike], defines: Mapping[str, str]) -> None:
        self.include_paths = tuple(include_paths)
        self.defines = dict(defines)
        self.done: dict[Path, Model] = {}
        self.stack: list[Path] = []

    def compile(self, path: Path, text: str | None) -> Model:
        key = path.resolve() if text is None else path
        self.stack.append(key)
        try:
            return self._compile(path, text)
        finally:
            self.stack.pop()

    def _compile(self, path: Path, text: str | None) -> Model:
        if text is None:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise IdlError(
                    [Diagnostic(Location(str(path), 0, 0), f"cannot read IDL file: {e}")]
                ) from None
        pre = preprocess(path, text=text, include_paths=self.include_paths, defines=self.defines)
        reporter = Reporter()
        for file, source in pre.sources.items():
            reporter.add_source(file, source)

        imported: list[Definition] = []
        import_paths: list[str] = []
        for imp in pre.imports:
            target = imp.path.resolve()
            if target in self.stack:
                chain = " -> ".join(
                    p.name for p in [*self.stack[self.stack.index(target) :], target]
                )
                reporter.error(
                    imp.location,
                    f"import cycle: {chain}; move the shared types to a file both import",
                )
                continue
            model = self.done.get(target)
            if model is None:
                model = self.compile(target, None)
                self.done[target] = model
            import_paths.append(str(target))
            imported.extend(mark_imported(model.definitions))
        reporter.raise_if_errors()

        lines = pre.lines

        def origin(n: int) -> tuple[str, int]:
            if 1 <= n <= len(lines):
                return lines[n - 1].file, lines[n - 1].line
            last = lines[-1] if lines else None
            return (last.file, last.line) if last else (str(path), 1)

        own = parse(pre.text, origin, reporter)
        if own is None:
            reporter.raise_if_errors()
            own = []
        definitions = _dedupe_imported(imported) + qualify(own)
        index, aliases = build_index(definitions, reporter)
        checked = Resolver(index, aliases, reporter).definitions(definitions)
        reporter.raise_if_errors()
        index, aliases = build_index(checked, reporter)
        return Model(str(path), checked, tuple(dict.fromkeys(import_paths)), index, aliases)


def _dedupe_imported(definitions: list[Definition]) -> tuple[Definition, ...]:
    """A file imported along two paths contributes its definitions once."""
    seen: set[tuple[str, str, int]] = set()
    out: list[Definition] = []
    for d in definitions:
        key = (d.qualified_name, d.location.file, d.location.line)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return tuple(out)


__all__ = ["Preprocessed", "compile_file", "compile_text"]
