"""The Python generator: a checked ``Model`` becomes one package per IDL namespace of
typed source (enums, error domains, typedefs, structs, interfaces with their
``__canopy__`` metadata), returned as text, written to disk or loaded in memory.

Layout. A namespace is a package (``guide/__init__.py``), a nested namespace a
subpackage; definitions at global scope go in a package named after the IDL
file's stem. A package imports its subpackages where the IDL declares them and,
for an ``[inline]`` one, re-exports its names (``from .v1 import x as x``), so
``guide.i_calculator is guide.v1.i_calculator``.

Imports. A module imports a name from another package of the same file just
before the first definition that needs it, not at the top: with C++
declaration order that is the one place where the name is sure to exist even
when two packages refer to each other (a parent and its inline child always
do). Within one top-level package the import is relative, so the output can be
placed under any parent package; across top-level packages it is absolute.
Definitions of ``#import``ed files are not generated: a reference imports them
absolutely from their own namespace package (``rpc::x`` -> ``from rpc import
x``), except that the ``rpc`` namespace of canopy's shipped
``rpc/rpc_types.idl`` lives in ``canopy.rpc_types``
(``rpc::encoding`` -> ``from canopy.rpc_types import encoding``).

Names stay as written, except that a Python keyword or a builtin the generated
code refers to (``str``, ``list``, ``type``...) gets a trailing underscore; a
renamed struct field keeps its IDL name on the wire (``msgspec.field(name=)``)
and a renamed method keeps it in ``MethodInfo.name``.

Generated modules pass ``ruff check`` and ``mypy --strict``. A file-level
``# ruff: noqa`` names only the rules the file needs: E402 for the imports
placed before first use, E501 for lines that IDL strings make long.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import json
import keyword
import re
import sys
import textwrap
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from canopy.generated import MAX_VARIANT_ALTERNATIVES
from canopy.idl._model import (
    NOWHERE,
    ArrayType,
    Attributes,
    ConstantRef,
    Enum,
    EnumValueRef,
    ErrorDomain,
    Field,
    Interface,
    InterfaceType,
    JsonType,
    Location,
    MapType,
    Method,
    Model,
    NamedType,
    Namespace,
    NullableType,
    OptionalType,
    Primitive,
    PrimitiveType,
    SetType,
    Struct,
    TemplateParamType,
    Typedef,
    TypeDefinition,
    TypeRef,
    Value,
    VariantType,
    VectorType,
)

__all__ = ["CodegenError", "IdFunction", "generate_python", "load_python", "write_python"]

IdFunction = Callable[[Interface | Struct], int]

_RPC_TYPES_FILE = "rpc/rpc_types.idl"
_RPC_TYPES_PACKAGE = ("canopy", "rpc_types")

# The modules generated code imports, by the name it binds; IDL names may not take
# them. ``typing`` stays unaliased because msgspec recognises a ``ClassVar`` in a
# string annotation only when it is spelled ``ClassVar[`` or ``typing.ClassVar[``.
_ALIASES = {"abc": "abc", "enum": "enum", "typing": "typing", "canopy.generated": "_cg"}

# Builtins that generated annotations and class bodies name; an IDL name equal to
# one would shadow it in the module or class body that defines it.
_SHADOWING = frozenset({"bool", "bytes", "dict", "float", "int", "list", "set", "str", "type"})

# Attributes an error domain class has besides its codes.
_ERROR_CLASS_NAMES = frozenset(
    {"Code", "_by_code", "domain", "code", "code_name", "message", "args"}
    | {"add_note", "with_traceback"}
)

_INT_ALIASES = {
    Primitive.INT8: "int8",
    Primitive.UINT8: "uint8",
    Primitive.INT16: "int16",
    Primitive.UINT16: "uint16",
    Primitive.INT32: "int32",
    Primitive.UINT32: "uint32",
    Primitive.INT64: "int64",
    Primitive.UINT64: "uint64",
    Primitive.INT128: "int128",
    Primitive.UINT128: "uint128",
    Primitive.ERROR_CODE: "int32",
}

_LINE_LENGTH = 100  # the project's ruff line length; longer lines need E501
_DOC_WIDTH = 88

# ruff's S105 (hardcoded password) pattern, for string defaults of such names.
_PASSWORD_NAME = re.compile(r"(^|_)(pas+wo?r?d|pass(phrase)?|pwd|token|secrete?)($|_)", re.I)


class CodegenError(ValueError):
    """The model cannot be expressed in Python as it stands (names the IDL location)."""

    def __init__(self, location: Location, message: str) -> None:
        super().__init__(f"{location}: {message}" if location != NOWHERE else message)
        self.location = location


# ---------------------------------------------------------------- public API


def generate_python(model: Model, *, ids: IdFunction | None = None) -> dict[str, str]:
    """The generated modules: relative posix path (``guide/v1/__init__.py``) -> source.

    ``ids`` gives the fingerprint of an interface or struct; by default
    ``canopy.idl.fingerprint``.
    """
    return _Generator(model, _id_function(model, ids), root=None).files()


def write_python(model: Model, out_dir: Path, *, ids: IdFunction | None = None) -> list[Path]:
    """Write the generated modules under ``out_dir``; the paths written, parents first."""
    written: list[Path] = []
    for relative, source in generate_python(model, ids=ids).items():
        path = out_dir.joinpath(*relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
        written.append(path)
    return written


def load_python(model: Model, *, ids: IdFunction | None = None) -> types.ModuleType:
    """Import the generated modules from memory under a package of their own.

    The package is ``canopy_idl_<hash of the sources>`` (so loading the same
    model twice gives the same package), registered in ``sys.modules``; its
    attributes are the top-level namespaces: ``load_python(m).calculator``.
    Definitions of ``#import``ed files must be importable as usual.
    """
    id_function = _id_function(model, ids)
    digest = hashlib.sha256()
    for relative, source in sorted(_Generator(model, id_function, root=None).files().items()):
        digest.update(relative.encode() + b"\0" + source.encode() + b"\0")
    root = f"canopy_idl_{digest.hexdigest()[:8]}"
    if root not in sys.modules:
        generator = _Generator(model, id_function, root=root)
        sources = {root: generator.root_source()}
        for relative, source in generator.files().items():
            parts = relative.split("/")[:-1]  # drop __init__.py
            sources[".".join((root, *parts))] = source
        _FINDER.add(sources)
    return importlib.import_module(root)


def _id_function(model: Model, ids: IdFunction | None) -> IdFunction:
    if ids is not None:
        return ids
    from canopy.idl import fingerprint  # the idl package imports nothing from codegen

    return lambda definition: fingerprint(model, definition)


class _SourceLoader(importlib.abc.SourceLoader):
    """Serves generated sources from memory; the import system compiles and runs them."""

    def __init__(self, sources: dict[str, str]) -> None:
        self._sources = sources  # module name -> source; every module is a package
        self._names = {self.get_filename(name): name for name in sources}

    def get_filename(self, fullname: str) -> str:
        # A pseudo path: tracebacks and linecache show it, nothing reads it from disk.
        return "/".join(("<canopy-generated>", *fullname.split("."), "__init__.py"))

    def get_data(self, path: str) -> bytes:
        return self._sources[self._names[path]].encode("utf-8")


class _MemoryFinder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self._loaders: dict[str, _SourceLoader] = {}

    def add(self, sources: dict[str, str]) -> None:
        loader = _SourceLoader(sources)
        for name in sources:
            self._loaders[name] = loader
        if self not in sys.meta_path:
            sys.meta_path.append(self)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        loader = self._loaders.get(fullname)
        if loader is None:
            return None
        spec = importlib.machinery.ModuleSpec(
            fullname, loader, origin=loader.get_filename(fullname), is_package=True
        )
        # A location, though a pseudo one, gives the module a ``__file__``, which
        # ``inspect`` and tracebacks need to find the source through the loader.
        spec.has_location = True
        return spec


_FINDER = _MemoryFinder()

# ---------------------------------------------------------------- names


def _py_name(name: str, location: Location = NOWHERE) -> str:
    """The Python spelling of an IDL name (see the module docstring)."""
    if name.startswith("__"):
        raise CodegenError(location, f"'{name}': names starting with '__' are reserved")
    if keyword.iskeyword(name) or name in _SHADOWING or name in _ALIASES.values():
        return name + "_"
    return name


def _stem_package(path: str) -> str:
    stem = re.sub(r"\W", "_", Path(path.replace("\\", "/")).stem) or "_"
    if stem[0].isdigit():
        stem = "_" + stem
    return _py_name(stem)


def _natural(s: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|\D+", s))


def _all_key(name: str) -> tuple[int, tuple[tuple[int, int | str], ...]]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then the rest, each naturally."""
    kind = 0 if len(name) > 1 and name.isupper() else 1 if name[:1].isupper() else 2
    return (kind, _natural(name))


def _member_key(name: str) -> tuple[object, ...]:
    """ruff isort's order of the names of one ``from`` import (order-by-type)."""
    kind, natural = _all_key(name)
    return (kind, _natural(name.lower()), natural)


# ---------------------------------------------------------------- literals


def _literal(s: str) -> str:
    """A double-quoted ASCII literal; non-ASCII is escaped so no linter sees confusables."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _chunked(text: str, indent: str, width: int = _LINE_LENGTH - 4) -> list[str]:
    """JSON text (ASCII, no control characters) as adjacent single-quoted literals, one
    a line, each line within ``width``; single quotes spare JSON's double ones."""
    lines: list[str] = []
    room = width - len(indent) - 2  # the quotes
    start, used = 0, 0
    for end, ch in enumerate(text):
        size = 2 if ch in "'\\" else 1
        if used + size > room and end > start:
            lines.append(_single_quoted(text[start:end], indent))
            start, used = end, 0
        used += size
    lines.append(_single_quoted(text[start:], indent))
    return lines


def _single_quoted(text: str, indent: str) -> str:
    return indent + "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _bytes_literal(data: bytes) -> str:
    return 'b"' + "".join(f"\\x{b:02x}" for b in data) + '"'


def _float_literal(v: float) -> str:
    if v != v or v in (float("inf"), float("-inf")):
        return f'float("{v}")'
    return repr(float(v))


def _docstring(text: str, indent: str) -> list[str]:
    """A docstring, wrapped, escaped as ``_literal`` escapes (quotes aside)."""
    lines: list[str] = []
    for paragraph in text.strip().split("\n"):
        for line in textwrap.wrap(paragraph, _DOC_WIDTH - len(indent)) or [""]:
            lines.append(_literal(line)[1:-1].replace('\\"', '"').replace('"""', '\\"""'))
    if lines[-1].endswith('"'):  # it would run into the closing quotes
        lines[-1] = lines[-1][:-1] + '\\"'
    if len(lines) == 1:
        return [f'{indent}"""{lines[0]}"""']
    return [
        f'{indent}"""{lines[0]}',
        *(f"{indent}{x}" if x else "" for x in lines[1:]),
        f'{indent}"""',
    ]


# ---------------------------------------------------------------- layout


@dataclass
class _Package:
    """One generated module: a namespace (merged over reopenings) or the global scope."""

    parts: tuple[str, ...]  # Python names from the top-level package down
    qualified_name: str  # the IDL namespace; "" for the global scope
    inline: bool = False
    description: str | None = None
    # In declaration order: definitions, and each child package at its first opening.
    members: list[TypeDefinition | _Package] = field(default_factory=list)

    @property
    def children(self) -> Iterator[_Package]:
        return (m for m in self.members if isinstance(m, _Package))


@dataclass(frozen=True)
class _Target:
    """Where a definition lives: its module and its Python name there."""

    parts: tuple[str, ...]
    name: str
    own: bool  # generated from this model (False: an #import-ed file)


class _Layout:
    """The package tree of a model and the location of every definition it can name."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.file_name = Path(model.path.replace("\\", "/")).name
        self.packages: dict[tuple[str, ...], _Package] = {}
        self.tops: list[_Package] = []
        for d in model.definitions:
            if d.imported:
                continue
            if isinstance(d, Namespace):
                self._namespace(d, None)
            else:
                self._top((_stem_package(model.path),), "").members.append(d)

    def _top(self, parts: tuple[str, ...], qualified_name: str) -> _Package:
        package = self.packages.get(parts)
        if package is None:
            package = self.packages[parts] = _Package(parts, qualified_name)
            self.tops.append(package)
        return package

    def _namespace(self, ns: Namespace, parent: _Package | None) -> None:
        name = _py_name(ns.name, ns.location)
        if parent is None:
            package = self._top((name,), ns.qualified_name)
        else:
            parts = (*parent.parts, name)
            found = self.packages.get(parts)
            if found is None:
                found = self.packages[parts] = _Package(parts, ns.qualified_name)
                parent.members.append(found)
            package = found
        package.qualified_name = ns.qualified_name
        package.inline = package.inline or ns.inline
        package.description = package.description or ns.attributes.description
        for member in ns.members:
            if member.imported:
                continue
            if isinstance(member, Namespace):
                self._namespace(member, package)
            else:
                package.members.append(member)

    def target(self, qualified_name: str, location: Location) -> _Target:
        d = self.model.index.get(qualified_name)
        if d is None:
            raise CodegenError(location, f"'{qualified_name}' is not defined in the model")
        *namespaces, _ = qualified_name.split("::")
        name = _py_name(d.name, d.location)
        if not d.imported:
            if namespaces:
                parts = tuple(_py_name(n) for n in namespaces)
            else:
                parts = (_stem_package(self.model.path),)
            return _Target(parts, name, own=True)
        file = d.location.file.replace("\\", "/")
        if not namespaces:
            return _Target((_stem_package(file),), name, own=False)
        parts = tuple(_py_name(n) for n in namespaces)
        if (file == _RPC_TYPES_FILE or file.endswith("/" + _RPC_TYPES_FILE)) and parts[0] == "rpc":
            parts = (*_RPC_TYPES_PACKAGE, *parts[1:])
        return _Target(parts, name, own=False)

    def exports(self, package: _Package) -> list[str]:
        """The public names of a package: its definitions, children and inline re-exports."""
        names: list[str] = []
        for member in package.members:
            if isinstance(member, _Package):
                names.append(member.parts[-1])
                if member.inline:
                    names.extend(n for n in self.exports(member) if n not in names)
            else:
                names.append(_py_name(member.name, member.location))
                if isinstance(member, Interface):
                    names.append(_py_name(member.name, member.location) + "_async")
        return list(dict.fromkeys(names))


# ---------------------------------------------------------------- one module


@dataclass(frozen=True)
class _Import:
    module: str  # "..v1", ".", "rpc", "canopy.rpc_types"
    name: str
    alias: str  # equal to name for a plain import
    reexport: bool = False  # written ``name as name``, which mypy and ruff read as public


class _Module:
    """Renders one package's ``__init__.py``: the emitters for each kind of definition."""

    def __init__(self, generator: _Generator, package: _Package) -> None:
        self.g = generator
        self.layout = generator.layout
        self.model = generator.layout.model
        self.package = package
        self.uses: set[str] = set()  # library aliases used
        self.imported: dict[tuple[str, str], str] = {}  # (module, name) -> local name
        self.pending: list[_Import] = []  # imports needed by the member being rendered
        self.typevars: set[str] = set()
        self.current: str | None = None  # the struct or interface whose body is rendered
        self.defined = self._defined_names()
        # Names an inline child re-exports here, unless a definition here shadows them.
        reexported: dict[str, str] = {}  # name -> the child it comes from; the first wins
        for child in self.package.children:
            if child.inline:
                for name in self.layout.exports(child):
                    if name not in self.defined:
                        reexported.setdefault(name, child.parts[-1])
        self.reexported = [(owner, name) for name, owner in reexported.items()]

    # ------------------------------------------------------------ whole module

    def render(self) -> str:
        body: list[str] = []
        late_imports = False
        for member in self.package.members:
            if isinstance(member, _Package):
                # Kept pending: consecutive subpackages share one sorted import block.
                self._child(member)
                continue
            chunk = self._definition(member)
            late_imports = self._flush_imports(body, chunk[0]) or late_imports
            body += [*chunk, "", ""]
        late_imports = self._flush_imports(body, None) or late_imports
        exports = sorted(self.layout.exports(self.package), key=_all_key)
        text = "\n".join([*self._head(exports), *body]).rstrip("\n")
        noqa = []
        if late_imports:
            noqa.append("E402")
        if any(len(line) > _LINE_LENGTH for line in text.splitlines()):
            noqa.append("E501")
        header = [f"# Generated by canopy from {self.layout.file_name} \u2014 do not edit."]
        if noqa:
            header.append(f"# ruff: noqa: {', '.join(noqa)}")
        return "\n".join([*header, text]) + "\n"

    def _flush_imports(self, body: list[str], next_line: str | None) -> bool:
        """Append the pending imports as one block; whether it follows a definition."""
        block = self._import_block(self.pending)
        self.pending = []
        if not block:
            return False
        late = bool(body)
        # isort's spacing: two blank lines before a class or function, else one.
        definition = next_line is None or next_line.startswith(("class ", "def ", "@"))
        body += [*block, "", ""] if definition else [*block, ""]
        return late

    def _head(self, exports: list[str]) -> list[str]:
        package = self.package
        if package.qualified_name:
            doc = f"IDL namespace ``{package.qualified_name}``"
            if package.inline:
                doc += " (inline: its parent re-exports its names)"
            doc += "."
        else:
            doc = f"Definitions at global scope of ``{self.layout.file_name}``."
        if package.description:
            doc += "\n\n" + package.description
        lines = [*_docstring(doc, ""), "", "from __future__ import annotations"]
        stdlib = [m for m in ("abc", "enum", "typing") if m in self.uses]
        if stdlib:
            lines += ["", *(f"import {m}" for m in stdlib)]
        if "_cg" in self.uses:
            lines += ["", "import canopy.generated as _cg"]
        lines += ["", *self._all(exports), "", ""]
        return lines

    @staticmethod
    def _all(exports: list[str]) -> list[str]:
        if not exports:
            return ["__all__: list[str] = []"]
        one_line = "__all__ = [" + ", ".join(f'"{n}"' for n in exports) + "]"
        if len(one_line) <= _LINE_LENGTH:
            return [one_line]
        return ["__all__ = [", *(f'    "{n}",' for n in exports), "]"]

    def _defined_names(self) -> dict[str, Location]:
        """Every name the module itself defines, checked for clashes once, up front."""
        names: dict[str, Location] = {}
        typevars: dict[str, Location] = {}

        def claim(name: str, location: Location) -> None:
            if name in names:
                raise CodegenError(
                    location,
                    f"'{name}' is defined twice in Python module "
                    f"'{'.'.join(self.package.parts)}' (first at {names[name]})",
                )
            names[name] = location

        for member in self.package.members:
            if isinstance(member, _Package):
                claim(member.parts[-1], NOWHERE)
                continue
            claim(_py_name(member.name, member.location), member.location)
            if isinstance(member, Struct):
                for param in member.template_params:
                    typevars.setdefault(param, member.location)  # one TypeVar serves all
            if isinstance(member, Interface):
                claim(_py_name(member.name, member.location) + "_async", member.location)
                for m in member.methods:
                    for direction in ("in", "out"):
                        claim(_struct_name(member, m, direction), m.location)
        for name, location in typevars.items():
            claim(name, location)
        return names

    # ------------------------------------------------------------ references

    def lib(self, alias: str) -> str:
        self.uses.add(alias)
        return alias

    def ref(self, qualified_name: str, location: Location, suffix: str = "") -> str:
        """The local expression for a definition (or its ``suffix`` companion, such as an
        interface's ``_async`` protocol), importing it if it lives elsewhere."""
        target = self.layout.target(qualified_name, location)
        name = target.name + suffix
        if target.own and target.parts == self.package.parts:
            return name
        module = self._module_path(target)
        key = (module, name)
        local = self.imported.get(key)
        if local is None:
            local = name
            taken = {*self.defined, *(n for _, n in self.reexported), *self.imported.values()}
            if local in taken:
                local = "_" + "_".join(target.parts) + "__" + name
            self.imported[key] = local
            self.pending.append(_Import(module, name, local))
        return local

    def _module_path(self, target: _Target) -> str:
        here = self.package.parts
        if not target.own:
            return ".".join(target.parts)
        if target.parts[0] != here[0]:
            root = (self.g.root,) if self.g.root else ()
            return ".".join((*root, *target.parts))
        common = 0
        while common < min(len(here), len(target.parts)) and here[common] == target.parts[common]:
            common += 1
        return "." * (1 + len(here) - common) + ".".join(target.parts[common:])

    @staticmethod
    def _import_block(imports: list[_Import]) -> list[str]:
        """Import statements in the order ruff's isort wants them."""
        if not imports:
            return []

        def module_key(module: str) -> tuple[object, ...]:
            level = len(module) - len(module.lstrip("."))
            rest = module[level:]
            return (-level, _natural(rest.lower()), rest)

        key: tuple[object, ...]
        statements: list[tuple[tuple[object, ...], str]] = []
        by_module: dict[str, list[_Import]] = {}
        for imp in imports:
            by_module.setdefault(imp.module, []).append(imp)
        for module, items in by_module.items():
            plain = sorted((i.name for i in items if not _aliased(i)), key=_member_key)
            if plain:
                key = (module_key(module), _member_key(plain[0]), "")
                statements.append((key, f"from {module} import {', '.join(plain)}"))
            for i in items:
                if _aliased(i):
                    key = (module_key(module), _member_key(i.name), i.alias)
                    statements.append((key, f"from {module} import {i.name} as {i.alias}"))
        # Two isort sections: installed packages (canopy.rpc_types and other IDL files'
        # packages, which a project using canopy sees as third-party), then this
        # file's own packages, imported relatively.
        sections: list[list[tuple[tuple[object, ...], str]]] = [[], []]
        for key, statement in statements:
            sections[1 if statement.startswith("from .") else 0].append((key, statement))
        lines: list[str] = []
        for section in sections:
            if section:
                lines += [*([""] if lines else []), *(s for _, s in sorted(section))]
        return lines

    # ------------------------------------------------------------ members

    def _child(self, child: _Package) -> None:
        name = child.parts[-1]
        self.pending.append(_Import(".", name, name, reexport=True))
        for owner, export in self.reexported:
            if owner == name:
                self.pending.append(_Import("." + name, export, export, reexport=True))
                self.imported[("." + name, export)] = export

    def _definition(self, d: TypeDefinition) -> list[str]:
        if isinstance(d, Enum):
            return self._enum(d)
        if isinstance(d, ErrorDomain):
            return self._error_domain(d)
        if isinstance(d, Typedef):
            return self._typedef(d)
        if isinstance(d, Struct):
            return self._struct(d)
        return self._interface(d)

    def _enum(self, e: Enum) -> list[str]:
        lines = [f"class {_py_name(e.name, e.location)}({self.lib('enum')}.IntEnum):"]
        body: list[str] = []
        if e.attributes.description:
            body += [*_docstring(e.attributes.description, "    "), ""]
        renamed: list[str] = []
        for v in e.values:
            if v.attributes.description:
                body.append(f"    #: {_literal(v.attributes.description)[1:-1]}")
            py = _py_name(v.name, v.location)
            body.append(f"    {py} = {v.value}")
            if py != v.name:
                renamed.append(f"{_literal(py)}: {_literal(v.name)}")
        if renamed:
            # The encodings write IDL names: the JSON profile spells values by name.
            t = self.lib("typing")
            names = "{" + ", ".join(renamed) + "}"
            body.append(f"    __canopy_names__: {t}.ClassVar[dict[str, str]] = {names}")
        return lines + (body or ["    pass"])

    def _error_domain(self, e: ErrorDomain) -> list[str]:
        name = _py_name(e.name, e.location)
        cg, t = self.lib("_cg"), self.lib("typing")
        doc = e.attributes.description or f"Errors of ``{e.qualified_name}``."
        lines = [f"class {name}({cg}.ApplicationError):", *_docstring(doc, "    "), ""]
        lines += [f"    domain = {_literal(e.qualified_name)}", ""]
        lines.append(f"    class Code({self.lib('enum')}.IntEnum):")
        codes: list[str] = []
        for v in e.values:
            reserved = v.name in _ERROR_CLASS_NAMES or v.name in _SHADOWING
            if reserved or keyword.iskeyword(v.name) or v.name.startswith("_"):
                raise CodegenError(
                    v.location,
                    f"error value '{v.name}' of '{e.qualified_name}' would hide an attribute of "
                    "the Python exception class: rename it",
                )
            lines.append(f"        {v.name} = {v.code}")
            codes.append(f"    {v.name}: {t}.ClassVar[type[{name}]]")
        if not e.values:
            lines.append("        pass")
        lines += ["", *codes, f"    _by_code: {t}.ClassVar[dict[int, type[{name}]]]", "", ""]
        lines.append(f"{cg}.define_error_codes({name}, {name}.Code)")
        return lines

    def _typedef(self, d: Typedef) -> list[str]:
        type_expr = self.type_expr(d.type, d.location, struct=True)
        return [f"{_py_name(d.name, d.location)}: {self.lib('typing')}.TypeAlias = {type_expr}"]

    def _struct(self, s: Struct) -> list[str]:
        name = _py_name(s.name, s.location)
        cg, t = self.lib("_cg"), self.lib("typing")
        lines: list[str] = []
        for param in s.template_params:
            if param not in self.typevars:
                self.typevars.add(param)
                lines.append(f'{param} = {t}.TypeVar("{param}")')
        if lines:
            lines += ["", ""]
        if s.attributes.deprecated:
            lines.append(
                f"@{cg}.deprecated({_literal(_deprecation(s.attributes, s.qualified_name))})"
            )
        bases = [self.ref(s.base, s.location)] if s.base else [f"{cg}.Struct"]
        if s.template_params:
            bases.append(f"{t}.Generic[{', '.join(s.template_params)}]")
        lines.append(f"class {name}({', '.join(bases)}, kw_only=True):")
        if s.attributes.description:
            lines += [*_docstring(s.attributes.description, "    "), ""]
        lines.append(f"    __canopy_id__: {t}.ClassVar[int] = {self.g.ids(s):#018x}")
        members: dict[str, Location] = {}
        self.current = s.qualified_name
        for c in s.constants:
            lines.append(self._constant(c.name, c.type, c.value, c.location, members))
        for f in s.fields:
            lines.append(self._field(f, members))
        self.current = None
        return lines

    def _constant(
        self, name: str, t: TypeRef, value: Value, location: Location, members: dict[str, Location]
    ) -> str:
        py = _claim(members, _py_name(name, location), location)
        expr, mutable = self.value(t, value, location)
        if mutable:
            raise CodegenError(location, f"constant '{name}' must have a scalar value")
        annotation = f"{self.lib('typing')}.ClassVar[{self.type_expr(t, location, struct=True)}]"
        return f"    {py}: {annotation} = {expr}" + _password_noqa(py, expr)

    def _field(self, f: Field, members: dict[str, Location]) -> str:
        py = _claim(members, _py_name(f.name, f.location), f.location)
        annotation = [self.type_expr(f.type, f.location, struct=True)]
        description = f.attributes.description
        if description:
            meta = f"{self.lib('_cg')}.Meta(description={_literal(description)})"
            annotation = [f"{self.lib('typing')}.Annotated[", f"{annotation[0]},", f"{meta},", "]"]
        options: list[str] = []
        if f.has_default:
            expr, mutable = self.value(f.type, f.default, f.location)
            if mutable:
                factory = {"[]": "list", "{}": "dict", "set()": "set"}.get(expr, f"lambda: {expr}")
                options.append(f"default_factory={factory}")
            else:
                options.append(f"default={expr}")
        elif isinstance(self.model.resolve(f.type), OptionalType):
            options.append("default=None")
        if py != f.name:
            options.append(f"name={_literal(f.name)}")
        if not options:
            value = ""
        elif len(options) == 1 and options[0].startswith("default="):
            value = options[0].removeprefix("default=")
        else:
            value = f"{self.lib('_cg')}.field({', '.join(options)})"
        return _field_lines(py, annotation, value, _password_noqa(py, value))

    def _interface(self, i: Interface) -> list[str]:
        name = _py_name(i.name, i.location)
        cg = self.lib("_cg")
        lines: list[str] = []
        for m in i.methods:
            names = _param_names(m)
            for direction, params in (("in", m.inputs), ("out", m.outputs)):
                lines.append(
                    f"class {_struct_name(i, m, direction)}"
                    f"({cg}.Struct, frozen=True, array_like=True):"
                )
                for p in params:
                    annotation = self.type_expr(p.type, p.location, struct=True)
                    wire = ""
                    if names[p.name] != p.name:  # the IDL name stays on the wire
                        wire = f" = {self.lib('_cg')}.field(name={_literal(p.name)})"
                    lines.append(f"    {names[p.name]}: {annotation}{wire}")
                if not params:
                    lines.append("    pass")
                lines += ["", ""]
        if i.attributes.deprecated:
            lines.append(
                f"@{cg}.deprecated({_literal(_deprecation(i.attributes, i.qualified_name))})"
            )
        bases = [self.ref(b, i.location) for b in i.bases]
        # A base that another base already derives from is left out of the class's own
        # bases (it comes with the other): Python has no method order for i(i1, i10)
        # when i10 derives from i1. Its info still names every base the IDL does.
        inherited = {a for b in i.bases for a in self._ancestors(b)}
        direct = [r for b, r in zip(i.bases, bases, strict=True) if b not in inherited]
        lines.append(f"class {name}({', '.join(direct or [f'{cg}.Interface'])}):")
        if i.attributes.description:
            lines += [*_docstring(i.attributes.description, "    "), ""]
        lines += self._interface_info(i, bases)
        members: dict[str, Location] = {"__canopy__": i.location}
        self.current = i.qualified_name
        for c in i.constants:
            lines.append(self._constant(c.name, c.type, c.value, c.location, members))
        self.current = None
        for m in i.methods:
            lines += self._method(i, m, members)
        return lines + self._interface_async(i)

    def _ancestors(self, name: str) -> set[str]:
        """The qualified names of every interface ``name`` derives from, however far."""
        found: set[str] = set()
        todo = [name]
        while todo:
            definition = self.model.lookup(todo.pop())
            for base in getattr(definition, "bases", ()):
                if base not in found:
                    found.add(base)
                    todo.append(base)
        return found

    def _proxy_type(self, t: TypeRef, location: Location, direction: str) -> str:
        match t:
            case InterfaceType(interface):
                proxy = self.ref(interface, location, "_async")
                if direction == "out":
                    return f"{proxy} | None"
                return f"{self.ref(interface, location)} | {proxy} | None"
            case VectorType(element) if not _is_byte(self.model.resolve(element)):
                return f"list[{self._proxy_type(element, location, direction)}]"
            case OptionalType(inner) | NullableType(inner):
                return f"{self._proxy_type(inner, location, direction)} | None"
        return self.type_expr(t, location, struct=False)

    def _interface_async(self, i: Interface) -> list[str]:
        """The asyncio proxy's type: a Protocol with every method, bases' included."""
        name = _py_name(i.name, i.location)
        t = self.lib("typing")
        lines = [
            "",
            "",
            f"class {name}_async({t}.Protocol):",
            f'    """The asyncio proxy of ``{name}``: calls are awaited, posts are not.',
            "",
            "    Pass this class to ``AsyncZone.child`` and ``acast`` to get one.",
            '    """',
            "",
            f"    __canopy_interface__: {t}.ClassVar[object] = {name}",
        ]
        seen: set[str] = set()
        for owner, m in self.model.all_methods(i):
            py = _py_name(m.name, m.location)
            if py in seen:
                continue
            seen.add(py)
            names = _param_names(m)
            params = ["self"] + [
                f"{names[p.name]}: {self.type_expr(p.type, p.location, struct=False, proxies='in')}"
                for p in m.inputs
            ]
            outputs = m.outputs
            if len(outputs) > 1:
                owner_name = self.ref(owner.qualified_name, owner.location)
                returns = f"{owner_name}.{_py_name(f'{m.name}_result', m.location)}"
            elif outputs:
                returns = self.type_expr(
                    outputs[0].type, outputs[0].location, struct=False, proxies="out"
                )
            else:
                returns = "None"
            head = "def" if m.is_post else "async def"
            signature = f"    {head} {py}({', '.join(params)}) -> {returns}: ..."
            lines.append("")
            if len(signature) <= _LINE_LENGTH:
                lines.append(signature)
            else:
                lines += [f"    {head} {py}(", *(f"        {p}," for p in params)]
                lines.append(f"    ) -> {returns}: ...")
        return lines

    def _interface_info(self, i: Interface, bases: list[str]) -> list[str]:
        cg, t = self.lib("_cg"), self.lib("typing")
        base_infos = _tuple_expr([f"{b}.__canopy__" for b in bases])
        lines = [
            f"    __canopy__: {t}.ClassVar[{cg}.InterfaceInfo] = {cg}.InterfaceInfo(",
            f"        id={self.g.ids(i):#018x},",
            f"        name={_literal(i.qualified_name)},",
            f"        bases={base_infos},",
        ]
        if not i.methods:
            lines.append("        methods=(),")
        else:
            lines.append("        methods=(")
            for m in i.methods:
                lines += [
                    f"            {cg}.MethodInfo(",
                    *self._method_info(i, m),
                    "            ),",
                ]
            lines.append("        ),")
        if i.attributes.description:
            lines.append(f"        description={_literal(i.attributes.description)},")
        if i.status:
            lines.append(f"        status={_literal(i.status)},")
        if i.attributes.deprecated:
            message = _deprecation(i.attributes, i.qualified_name)
            lines.append(f"        deprecated={_literal(message)},")
        lines += ["        schemas=(", *_chunked(self._schemas(i), " " * 12), "        ),"]
        return [*lines, "    )"]

    def _schemas(self, i: Interface) -> str:
        """The JSON text of ``InterfaceInfo.schemas``: what describing an object sends."""
        from canopy.codegen.schema import method_schemas  # it imports this module

        out: dict[str, dict[str, object]] = {}
        for profile in ("mcp", "config"):
            out[profile] = {
                str(s.id): {"inputs": s.inputs, "outputs": s.outputs}
                for s in method_schemas(self.model, i, profile)
                if s.interface == i.qualified_name
            }
        return json.dumps(out, separators=(",", ":"), ensure_ascii=True)

    def _method_info(self, i: Interface, m: Method) -> list[str]:
        pad = " " * 16
        fields = [
            f"id={m.id}",
            f"name={_literal(m.name)}",
            f"python_name={_literal(_py_name(m.name, m.location))}",
            f"in_names={_tuple_literal(p.name for p in m.inputs)}",
            f"out_names={_tuple_literal(p.name for p in m.outputs)}",
            f"in_type={_struct_name(i, m, 'in')}",
            f"out_type={_struct_name(i, m, 'out')}",
        ]
        if m.is_post:
            fields.append("post=True")
        if m.tag:
            fields.append(f"tag={m.tag}")
        if m.is_const:
            fields.append("const=True")
        if m.deprecated:
            fields.append(f"deprecated={_literal(_deprecation(m.attributes, _method_name(i, m)))}")
        if m.description:
            fields.append(f"description={_literal(m.description)}")
        ret = self.model.resolve(m.return_type)
        if isinstance(ret, NamedType) and isinstance(self.model.index.get(ret.name), ErrorDomain):
            fields.append(f"raises={self.ref(ret.name, m.location)}")
        return [f"{pad}{f}," for f in fields]

    def _method(self, i: Interface, m: Method, members: dict[str, Location]) -> list[str]:
        cg, t = self.lib("_cg"), self.lib("typing")
        py = _claim(members, _py_name(m.name, m.location), m.location)
        names = _param_names(m)
        lines: list[str] = [""]
        outputs = m.outputs
        if len(outputs) > 1:
            result = _claim(members, _py_name(f"{m.name}_result", m.location), m.location)
            lines.append(f"    class {result}({t}.NamedTuple):")
            for p in outputs:
                field_name = names[p.name]
                if field_name.startswith("_"):
                    raise CodegenError(
                        p.location, f"[out] parameter '{p.name}' cannot start with '_' in Python"
                    )
                lines.append(
                    f"        {field_name}: {self.type_expr(p.type, p.location, struct=False)}"
                )
            lines.append("")
            returns = f"{_py_name(i.name, i.location)}.{result}"
        elif outputs:
            returns = self.type_expr(outputs[0].type, outputs[0].location, struct=False)
        else:
            returns = "None"
        params = ["self"]
        for p in m.inputs:
            params.append(f"{names[p.name]}: {self.type_expr(p.type, p.location, struct=False)}")
        if m.deprecated:
            lines.append(
                f"    @{cg}.deprecated({_literal(_deprecation(m.attributes, _method_name(i, m)))})"
            )
        lines.append(f"    @{self.lib('abc')}.abstractmethod")
        signature = f"    def {py}({', '.join(params)}) -> {returns}:"
        if len(signature) <= _LINE_LENGTH:
            lines.append(signature)
        else:
            lines += [f"    def {py}(", *(f"        {p}," for p in params), f"    ) -> {returns}:"]
        doc = _method_doc(m)
        lines += _docstring(doc, "        ") if doc else ["        ..."]
        return lines

    # ------------------------------------------------------------ types and values

    def type_expr(self, t: TypeRef, location: Location, *, struct: bool, proxies: str = "") -> str:
        """The annotation for an IDL type; ``struct`` adds metadata only msgspec reads.

        ``proxies`` types interface references for an asyncio proxy: "in" accepts a
        local object or an asyncio proxy, "out" is an asyncio proxy."""
        if proxies:
            return self._proxy_type(t, location, proxies)
        match t:
            case PrimitiveType(kind):
                return self._primitive(kind, location)
            case VectorType(element):
                if _is_byte(self.model.resolve(element)):
                    return "bytes"
                return f"list[{self.type_expr(element, location, struct=struct)}]"
            case ArrayType(element, size):
                if _is_byte(self.model.resolve(element)):
                    inner = "bytes"
                else:
                    inner = f"list[{self.type_expr(element, location, struct=struct)}]"
                meta = f"{self.lib('_cg')}.Meta(min_length={size}, max_length={size})"
                return f"{self.lib('typing')}.Annotated[{inner}, {meta}]"
            case MapType(key, value):
                k = self.type_expr(key, location, struct=struct)
                return f"dict[{k}, {self.type_expr(value, location, struct=struct)}]"
            case SetType(element):
                return f"set[{self.type_expr(element, location, struct=struct)}]"
            case OptionalType(inner) | NullableType(inner):
                return f"{self.type_expr(inner, location, struct=struct)} | None"
            case VariantType(alternatives):
                if len(alternatives) > MAX_VARIANT_ALTERNATIVES:
                    raise CodegenError(
                        location,
                        f"rpc::variant with {len(alternatives)} alternatives: Python supports "
                        f"at most {MAX_VARIANT_ALTERNATIVES}",
                    )
                cg = self.lib("_cg")
                return " | ".join(
                    f"{cg}.Alt{n}[{self.type_expr(a, location, struct=struct)}]"
                    for n, a in enumerate(alternatives)
                )
            case InterfaceType(interface, owning):
                cls = self.ref(interface, location)
                if not struct:
                    return f"{cls} | None"
                ref = "SHARED" if owning else "OPTIMISTIC"
                return f"{self.lib('typing')}.Annotated[{cls} | None, {self.lib('_cg')}.Ref.{ref}]"
            case JsonType():
                return f"{self.lib('_cg')}.JsonValue"
            case TemplateParamType(name):
                return name
            case NamedType(name, args):
                return self._named(name, args, location, struct=struct)
        raise CodegenError(location, f"unsupported type {t!r}")

    def _primitive(self, kind: Primitive, location: Location) -> str:
        if kind is Primitive.BOOL:
            return "bool"
        if kind is Primitive.FLOAT:
            return f"{self.lib('_cg')}.float32"  # the width, for encodings that keep it
        if kind is Primitive.DOUBLE:
            return "float"
        if kind is Primitive.STRING:
            return "str"
        if kind in _INT_ALIASES:
            return f"{self.lib('_cg')}.{_INT_ALIASES[kind]}"
        raise CodegenError(location, f"'{kind.value}' is not a value type")

    def _named(
        self, name: str, args: tuple[TypeRef, ...], location: Location, *, struct: bool
    ) -> str:
        d = self.model.index.get(name)
        local = self.ref(name, location)
        if isinstance(d, ErrorDomain):
            return f"{local}.Code"
        if isinstance(d, Interface):
            return f"{local} | None"
        if args:
            return f"{local}[{', '.join(self.type_expr(a, location, struct=struct) for a in args)}]"
        return local

    def value(self, t: TypeRef, v: Value, location: Location) -> tuple[str, bool]:
        """A default or constant as an expression, and whether it is mutable."""
        if isinstance(v, ConstantRef):
            owner, _, constant = v.name.rpartition("::")
            if owner == self.current:  # the class body being executed: a plain name
                return _py_name(constant, location), False
            return f"{self.ref(owner, location)}.{_py_name(constant, location)}", False
        if isinstance(v, EnumValueRef):
            return f"{self.ref(v.enum, location)}.{_py_name(v.value, location)}", False
        rt = self.model.resolve(t)

        def bad() -> CodegenError:
            return CodegenError(location, f"{v!r} is not a value of type {_spell(rt)}")

        if v == () and not isinstance(rt, VectorType | ArrayType | SetType | MapType):
            return self._value_init(t, location)
        match rt:
            case OptionalType(inner) | NullableType(inner):
                return ("None", False) if v is None else self.value(inner, v, location)
            case InterfaceType() | JsonType() if v is None:
                return "None", False
            case PrimitiveType(kind):
                return _primitive_value(kind, v, bad), False
            case VectorType(element) | ArrayType(element) | SetType(element):
                items = _items(v, bad)
                size = rt.size if isinstance(rt, ArrayType) else None
                if size is not None:
                    if len(items) > size:
                        raise bad()
                    items = items + (_zero(self.model.resolve(element)),) * (size - len(items))
                byte = self.model.resolve(element)
                if (
                    isinstance(byte, PrimitiveType)
                    and _is_byte(byte)
                    and not isinstance(rt, SetType)
                ):
                    # int8_t (char) values are stored as their two's complement byte.
                    data = bytes(int(_primitive_value(byte.kind, x, bad)) % 256 for x in items)
                    return _bytes_literal(data), False
                rendered = [self.value(element, x, location)[0] for x in items]
                if isinstance(rt, SetType):
                    rendered = list(dict.fromkeys(rendered))  # a set holds each value once
                    return ("{" + ", ".join(rendered) + "}" if rendered else "set()"), True
                return "[" + ", ".join(rendered) + "]", True
            case MapType(key, value):
                pairs: list[str] = []
                for pair in _items(v, bad):
                    if not isinstance(pair, tuple) or len(pair) != 2:
                        raise bad()
                    k = self.value(key, pair[0], location)[0]
                    pairs.append(f"{k}: {self.value(value, pair[1], location)[0]}")
                return "{" + ", ".join(pairs) + "}", True
            case VariantType(alternatives):
                # The first alternative the value fits, as C++ would convert it.
                for n, alternative in enumerate(alternatives):
                    pending, imported = list(self.pending), dict(self.imported)
                    try:
                        expr, mutable = self.value(alternative, v, location)
                    except CodegenError:
                        self.pending, self.imported = pending, imported  # no stray imports
                        continue
                    return f"{self.lib('_cg')}.Alt{n}({expr})", mutable
                raise bad()
            case NamedType(name, args):
                return self._named_value(name, args, v, location, bad)
        raise bad()

    def _named_value(
        self,
        name: str,
        args: tuple[TypeRef, ...],
        v: Value,
        location: Location,
        bad: Callable[[], CodegenError],
    ) -> tuple[str, bool]:
        d = self.model.index.get(name)
        if isinstance(d, Enum) and isinstance(v, int) and not isinstance(v, bool):
            for member in d.values:
                if member.value == v:
                    return f"{self.ref(name, location)}.{_py_name(member.name, location)}", False
            raise bad()  # an IntEnum holds only its members
        if isinstance(d, Struct) and isinstance(v, tuple):
            fields = self._all_fields(d, args)
            if len(v) > len(fields):
                raise bad()
            values = [
                f"{_py_name(f.name, f.location)}={self.value(f.type, x, location)[0]}"
                for f, x in zip(fields, v, strict=False)
            ]
            # Members the initialiser leaves out are value-initialised, as in C++.
            for f in fields[len(v) :]:
                if not f.has_default and not isinstance(self.model.resolve(f.type), OptionalType):
                    values.append(
                        f"{_py_name(f.name, f.location)}={self._value_init(f.type, location)[0]}"
                    )
            return f"{self.ref(name, location)}({', '.join(values)})", True
        raise bad()

    def _value_init(self, t: TypeRef, location: Location) -> tuple[str, bool]:
        """``T{}``: the zero of a type (C++ value-initialisation), and whether mutable."""
        rt = self.model.resolve(t)
        unsupported = CodegenError(location, f"'{{}}' cannot value-initialise {_spell(rt)}")
        match rt:
            case OptionalType() | NullableType() | InterfaceType() | JsonType():
                return "None", False
            case PrimitiveType():
                return self.value(rt, _zero(rt), location)
            case VectorType() | ArrayType() | SetType() | MapType():
                return self.value(rt, (), location)
            case VariantType(alternatives):
                expr, mutable = self._value_init(alternatives[0], location)
                return f"{self.lib('_cg')}.Alt0({expr})", mutable
            case NamedType(name) if isinstance(self.model.index.get(name), Enum):
                try:
                    return self.value(rt, 0, location)
                except CodegenError:
                    raise CodegenError(
                        location,
                        f"'{{}}' makes {name} 0, which is none of its values, and a Python "
                        "enum holds only its values: give the member a default",
                    ) from None
            case NamedType(name, args) if isinstance(self.model.index.get(name), Struct):
                return self._named_value(name, args, (), location, lambda: unsupported)
        raise unsupported

    def _all_fields(self, s: Struct, args: tuple[TypeRef, ...] = ()) -> list[Field]:
        """A struct's fields, its bases' first; a template's with its arguments put in."""
        base = self.model.index.get(s.base) if s.base else None
        inherited = self._all_fields(base) if isinstance(base, Struct) else []
        fields = [*inherited, *s.fields]
        if s.template_params and args:
            bound = dict(zip(s.template_params, args, strict=False))
            fields = [replace(f, type=_substitute(f.type, bound)) for f in fields]
        return fields


# ---------------------------------------------------------------- helpers


def _field_lines(name: str, annotation: list[str], value: str, noqa: str) -> str:
    """A field, split the way ruff format would when it is too long for one line.

    ``annotation`` is one expression, or the lines of a ``typing.Annotated[...]``.
    """
    flat = "".join(a if a.endswith("[") or a == "]" else a + " " for a in annotation)
    flat = flat.replace(", ]", "]").rstrip()
    assignment = f" = {value}" if value else ""
    line = f"    {name}: {flat}{assignment}{noqa}"
    if len(line) <= _LINE_LENGTH:
        return line
    if len(annotation) > 1:  # Annotated[type, Meta(...)]: one part per line
        head, *middle, tail = annotation
        parts = [f"    {name}: {head}", *(f"        {m}" for m in middle), f"    {tail}"]
        return "\n".join([*parts[:-1], f"{parts[-1]}{assignment}{noqa}"])
    if not value:
        return line
    # A long default goes in parentheses on a line of its own.
    return "\n".join([f"    {name}: {flat} = (", f"        {value}{noqa}", "    )"])


def _aliased(i: _Import) -> bool:
    return i.reexport or i.alias != i.name


def _claim(members: dict[str, Location], name: str, location: Location) -> str:
    if name in members:
        raise CodegenError(location, f"'{name}' clashes with another member (at {members[name]})")
    members[name] = location
    return name


def _param_names(m: Method) -> dict[str, str]:
    """Python names of a method's parameters, by IDL name: unique, never ``self``."""
    names: dict[str, str] = {}
    taken = {"self"}
    for p in m.parameters:
        name = _py_name(p.name, p.location)
        while name in taken:
            name += "_"
        taken.add(name)
        names[p.name] = name
    return names


def _struct_name(i: Interface, m: Method, direction: str) -> str:
    return f"_{i.name}_{m.name}_{direction}"


def _method_name(i: Interface, m: Method) -> str:
    return f"{i.qualified_name}::{m.name}"


def _deprecation(attributes: Attributes, qualified_name: str) -> str:
    message = attributes.get("deprecated")
    if isinstance(message, str) and message:
        return message
    return f"{qualified_name} is deprecated"


def _method_doc(m: Method) -> str:
    lines = [m.description] if m.description else []
    params = [(p.name, p.attributes.description) for p in m.parameters if p.attributes.description]
    if params:
        if lines:
            lines.append("")
        lines += [f"{name}: {description}" for name, description in params]
    return "\n".join(x or "" for x in lines)


def _tuple_literal(items: Iterator[str]) -> str:
    return _tuple_expr([_literal(x) for x in items])


def _tuple_expr(items: list[str]) -> str:
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _password_noqa(name: str, expr: str) -> str:
    if _PASSWORD_NAME.search(name) and expr.startswith('"') and expr != '""':
        return "  # noqa: S105"
    return ""


def _is_byte(t: TypeRef) -> bool:
    # The model spells ``char`` as int8_t, so vectors of either are byte strings.
    return isinstance(t, PrimitiveType) and t.kind in (Primitive.UINT8, Primitive.INT8)


def _items(v: Value, bad: Callable[[], CodegenError]) -> tuple[Value, ...]:
    if not isinstance(v, tuple):
        raise bad()
    return v


def _zero(t: TypeRef) -> Value:
    if isinstance(t, PrimitiveType):
        if t.kind is Primitive.BOOL:
            return False
        if t.kind.is_float:
            return 0.0
        if t.kind is Primitive.STRING:
            return ""
        return 0
    return ()


def _primitive_value(kind: Primitive, v: Value, bad: Callable[[], CodegenError]) -> str:
    if kind is Primitive.BOOL:
        if isinstance(v, bool):
            return repr(v)
        if isinstance(v, int) and v in (0, 1):
            return repr(bool(v))
        raise bad()
    if kind.is_float:
        if isinstance(v, int | float) and not isinstance(v, bool):
            return _float_literal(float(v))
        raise bad()
    if kind is Primitive.STRING:
        if isinstance(v, str):
            return _literal(v)
        raise bad()
    if kind.is_integer:
        if isinstance(v, bool):
            v = int(v)
        if not isinstance(v, int):
            raise bad()
        lo, hi = kind.int_range
        if not lo <= v <= hi:
            raise bad()
        return str(v)
    raise bad()


def _substitute(t: TypeRef, bound: dict[str, TypeRef]) -> TypeRef:
    """``t`` with template parameters replaced by the types bound to them."""
    match t:
        case TemplateParamType(name):
            return bound.get(name, t)
        case VectorType(element):
            return VectorType(_substitute(element, bound))
        case ArrayType(element, size):
            return ArrayType(_substitute(element, bound), size)
        case MapType(key, value, kind):
            return MapType(_substitute(key, bound), _substitute(value, bound), kind)
        case SetType(element, kind):
            return SetType(_substitute(element, bound), kind)
        case OptionalType(inner):
            return OptionalType(_substitute(inner, bound))
        case NullableType(inner):
            return NullableType(_substitute(inner, bound))
        case VariantType(alternatives):
            return VariantType(tuple(_substitute(a, bound) for a in alternatives))
        case NamedType(name, args):
            return NamedType(name, tuple(_substitute(a, bound) for a in args))
    return t


def _spell(t: TypeRef) -> str:
    match t:
        case PrimitiveType(kind):
            return kind.value
        case NamedType(name):
            return name
        case TemplateParamType(name):
            return f"template parameter '{name}' (Python has no zero of an unknown type)"
    return type(t).__name__


# ---------------------------------------------------------------- the generator


class _Generator:
    """All modules of one model; ``root`` prefixes absolute imports of its own packages."""

    def __init__(self, model: Model, ids: IdFunction, root: str | None) -> None:
        self.layout = _Layout(model)
        self.ids = ids
        self.root = root

    def files(self) -> dict[str, str]:
        return {
            "/".join((*package.parts, "__init__.py")): _Module(self, package).render()
            for package in self._packages()
        }

    def _packages(self) -> Iterator[_Package]:
        def visit(package: _Package) -> Iterator[_Package]:
            yield package
            for child in package.children:
                yield from visit(child)

        for top in self.layout.tops:
            yield from visit(top)

    def root_source(self) -> str:
        names = [top.parts[0] for top in self.layout.tops]
        lines = [
            f"# Generated by canopy from {self.layout.file_name} \u2014 do not edit.",
            f'"""The in-memory package of ``{self.layout.file_name}`` (canopy load_python)."""',
            "",
            *(f"from . import {name} as {name}" for name in names),
            "",
            *_Module._all(sorted(names, key=_all_key)),
        ]
        return "\n".join(lines) + "\n"
