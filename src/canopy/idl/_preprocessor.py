"""The IDL preprocessor: comments, ``#include``/``#import``, macros, conditionals and
``cpp_quote``/``rust_quote`` blocks, turning one file into the lines the parser reads.
Every output line remembers the file and line it came from, so diagnostics point at source.

Theory of operation: each file goes through two passes. The lexical pass blanks
comments in place (columns and line numbers never move) and notes which lines
start inside a multi-line raw string, so that text quoted for C++ is never
mistaken for a directive. The line pass then walks the lines with a stack of
conditional branches, runs directives, recurses into ``#include``d files with
the same macro table, and macro-expands the active ordinary lines with C's
hide-set rule, so that a macro is never expanded inside its own expansion.
"""

from __future__ import annotations

import functools
import operator
import os
import re
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from types import MappingProxyType
from typing import Final, cast

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from canopy.idl._diagnostics import IdlError, Reporter
from canopy.idl._model import Location

BUILTIN_DIR: Final = Path(__file__).parent

MAX_INCLUDE_DEPTH: Final = 64
"""How deeply ``#include`` may nest; deeper is almost surely a runaway include."""

MAX_EXPANSION_TOKENS: Final = 100_000
"""Tokens one line may grow to by macro expansion; stops exponential macro bombs."""

_COMMAND_LINE: Final = "<command line>"
_NO_DEFINES: Final[Mapping[str, str]] = MappingProxyType({})

_DIRECTIVES: Final = (
    "#include, #import, #define, #undef, #if, #ifdef, #ifndef, #elif, #else, #endif, "
    "#pragma, #cpp_quote and #rust_quote"
)

# ---------------------------------------------------------------- public records


@dataclass(frozen=True, slots=True)
class SourceLine:
    """One line of preprocessed text, with the file and line it came from."""

    text: str
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class ImportDirective:
    """An ``#import`` of another file, which the caller compiles separately."""

    path: Path
    written: str
    location: Location


@dataclass(frozen=True, slots=True)
class Preprocessed:
    """The result of preprocessing one file and everything it includes."""

    lines: tuple[SourceLine, ...]
    imports: tuple[ImportDirective, ...]
    sources: dict[str, str]

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


def preprocess(
    path: str | os.PathLike[str],
    *,
    text: str | None = None,
    include_paths: Sequence[str | os.PathLike[str]] = (),
    defines: Mapping[str, str] = _NO_DEFINES,
) -> Preprocessed:
    """Preprocess ``path`` (or ``text``, shown as ``path``); raise ``IdlError`` on errors.

    ``#include`` and ``#import`` search the including file's directory, then
    ``include_paths`` in order, then the files shipped with Canopy. ``defines``
    holds ``-D NAME=VALUE`` macros, defined before the first line is read.
    """
    display = os.fspath(path)
    root = Path(display)
    reporter = Reporter()
    state = _Preprocessor(tuple(Path(p) for p in include_paths), reporter)
    state.predefine(defines)
    if text is None:
        content = state.read(root)
        if isinstance(content, _ReadFailure):
            reporter.error(Location(display, 1, 1), f"cannot read {display}: {content.reason}")
            raise IdlError(reporter.diagnostics)
        text = content
    state.process(display, root.resolve(), root.parent, text)
    reporter.raise_if_errors()
    return Preprocessed(tuple(state.lines), tuple(state.imports), state.sources)


# ---------------------------------------------------------------- lexical pass

_RAW_PREFIX = r'(?<![A-Za-z0-9_])(?:u8|[uUL])?R"(?P<delim>[^()\\\s"]{0,16})\('
_LEXICAL = re.compile(r'//|/\*|"|' + _RAW_PREFIX)
_STRING = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"')


@dataclass(slots=True)
class _Stripped:
    """A file with its comments blanked, and what the lexical pass learnt of its lines."""

    text: str
    in_raw: set[int] = field(default_factory=set)  # lines that start inside a raw string
    joins: set[int] = field(default_factory=set)  # lines that end inside a block comment


class _LineCounter:
    """Maps offsets, visited in increasing order, to 1-based (line, column)."""

    __slots__ = ("_line", "_offset", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._offset = 0
        self._line = 1

    def locate(self, offset: int) -> tuple[int, int]:
        if offset < self._offset:
            self._offset, self._line = 0, 1
        self._line += self._text.count("\n", self._offset, offset)
        self._offset = offset
        return self._line, offset - self._text.rfind("\n", 0, offset)


def _strip_comments(display: str, text: str, reporter: Reporter) -> _Stripped:
    result = _Stripped("")
    counter = _LineCounter(text)
    out: list[str] = []
    copied = pos = 0

    def error(offset: int, message: str) -> None:
        line, column = counter.locate(offset)
        reporter.error(Location(display, line, column), message)

    while (m := _LEXICAL.search(text, pos)) is not None:
        start = m.start()
        found = m.group()
        if found == "//":
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            out += (text[copied:start], " " * (end - start))
            copied = pos = end
        elif found == "/*":
            close = text.find("*/", start + 2)
            if close < 0:
                error(start, "unterminated /* comment: close it with */")
                end = len(text)
            else:
                end = close + 2
            comment = text[start:end]
            newlines = comment.count("\n")
            if newlines:
                first, _ = counter.locate(start)
                result.joins.update(range(first, first + newlines))
                # Only the last line's part must stay as spaces, to keep later columns.
                head, *_, tail = comment.split("\n")
                blank = " " * len(head) + "\n" * newlines + " " * len(tail)
                out += (text[copied:start], blank)
            else:
                out += (text[copied:start], " " * (end - start))
            copied = pos = end
        elif found == '"':
            string = _STRING.match(text, start)
            if string is None:
                error(start, 'unterminated string literal: close it with " on the same line')
                end = text.find("\n", start)
                pos = len(text) if end < 0 else end
            else:
                pos = string.end()
        else:
            delim = m.group("delim")
            terminator = ")" + delim + '"'
            close = text.find(terminator, m.end())
            if close < 0:
                error(start, f"unterminated raw string literal: close it with {terminator}")
                pos = len(text)
            else:
                pos = close + len(terminator)
                newlines = text.count("\n", start, pos)
                if newlines:
                    first, _ = counter.locate(start)
                    result.in_raw.update(range(first + 1, first + newlines + 1))
    out.append(text[copied:])
    result.text = "".join(out)
    return result


# ---------------------------------------------------------------- tokens and macros

_WS, _IDENT, _NUMBER, _STRING_LIT, _PUNCT = "ws", "ident", "number", "string", "punct"
_PARAM, _PASTE, _STRINGIFY, _PLACEMARKER = "param", "paste", "stringify", "placemarker"

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>(?:u8|[uUL])?R"(?P<delim>[^()\\\s"]{0,16})\(.*?\)(?P=delim)"
      | (?:u8|[uUL])?R"[^()\\\s"]{0,16}\(.*
      | (?:u8|[uUL])?"(?:[^"\\\n]|\\.)*"
      | '(?:[^'\\\n]|\\.)*')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\.?[0-9](?:[eEpP][+-]|[A-Za-z0-9_.])*)
  | (?P<punct>\#\#|\.\.\.|.)
    """,
    re.VERBOSE | re.DOTALL,
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NO_HIDE: Final[frozenset[str]] = frozenset()


class _Tok:
    """A preprocessing token. ``pos`` is where it (or the macro it came from) was
    written; ``hide`` names the macros it must not expand (C's hide set)."""

    __slots__ = ("hide", "kind", "pos", "text")

    def __init__(self, kind: str, text: str, pos: int, hide: frozenset[str] = _NO_HIDE) -> None:
        self.kind = kind
        self.text = text
        self.pos = pos
        self.hide = hide


def _tokenize(text: str, base: int = 0) -> list[_Tok]:
    return [_Tok(m.lastgroup or _PUNCT, m.group(), base + m.start()) for m in _TOKEN.finditer(text)]


def _skip_ws(tokens: Sequence[_Tok], i: int) -> int:
    while i < len(tokens) and tokens[i].kind == _WS:
        i += 1
    return i


def _strip_ws(tokens: list[_Tok]) -> list[_Tok]:
    start, end = 0, len(tokens)
    while start < end and tokens[start].kind == _WS:
        start += 1
    while end > start and tokens[end - 1].kind == _WS:
        end -= 1
    return tokens[start:end]


def _stringify(tokens: Sequence[_Tok]) -> str:
    parts = []
    for t in tokens:
        if t.kind == _WS:
            parts.append(" ")
        elif t.kind == _STRING_LIT:
            parts.append(t.text.replace("\\", "\\\\").replace('"', '\\"'))
        else:
            parts.append(t.text)
    return '"' + "".join(parts) + '"'


@dataclass(frozen=True, slots=True)
class _Macro:
    name: str
    params: tuple[str, ...] | None  # None for an object-like macro
    body: tuple[_Tok, ...]
    location: Location

    @property
    def variadic(self) -> bool:
        return self.params is not None and self.params[-1:] == ("__VA_ARGS__",)

    def signature(self) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
        return self.params, tuple(" " if t.kind == _WS else t.text for t in self.body)


class _MacroError(Exception):
    def __init__(self, pos: int, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


class _Unclosed(Exception):
    """A function-like macro's argument list runs past the end of the text."""

    def __init__(self, name: _Tok) -> None:
        super().__init__(name.text)
        self.name = name


def _collect_arguments(tokens: list[_Tok], open_paren: int) -> tuple[list[list[_Tok]], int] | None:
    args: list[list[_Tok]] = [[]]
    depth = 0
    for k in range(open_paren, len(tokens)):
        t = tokens[k]
        if t.kind == _PUNCT:
            if t.text == "(":
                depth += 1
                if depth == 1:
                    continue
            elif t.text == ")":
                depth -= 1
                if depth == 0:
                    return [_strip_ws(a) for a in args], k
            elif t.text == "," and depth == 1:
                args.append([])
                continue
        args[-1].append(t)
    return None


# ---------------------------------------------------------------- #if expressions

_EXPRESSION_GRAMMAR = r"""
?start: conditional
?conditional: logical_or
    | logical_or "?" conditional ":" conditional -> ternary
?logical_or: logical_and
    | logical_or OROR logical_and -> logical
?logical_and: bit_or
    | logical_and ANDAND bit_or -> logical
?bit_or: bit_xor
    | bit_or BAR bit_xor -> binary
?bit_xor: bit_and
    | bit_xor CARET bit_and -> binary
?bit_and: equality
    | bit_and AMP equality -> binary
?equality: relational
    | equality (EQ | NE) relational -> binary
?relational: shift
    | relational (LT | LE | GT | GE) shift -> binary
?shift: additive
    | shift (SHL | SHR) additive -> binary
?additive: multiplicative
    | additive (PLUS | MINUS) multiplicative -> binary
?multiplicative: unary
    | multiplicative (STAR | SLASH | PERCENT) unary -> binary
?unary: primary
    | (BANG | TILDE | MINUS | PLUS) unary -> unary
?primary: NUMBER
    | NAME
    | "(" conditional ")"

OROR: "||"
ANDAND: "&&"
BAR: "|"
CARET: "^"
AMP: "&"
EQ: "=="
NE: "!="
LT: "<"
LE: "<="
GT: ">"
GE: ">="
SHL: "<<"
SHR: ">>"
PLUS: "+"
MINUS: "-"
STAR: "*"
SLASH: "/"
PERCENT: "%"
BANG: "!"
TILDE: "~"
NUMBER: /[0-9](?:[eEpP][+-]|[A-Za-z0-9_.])*/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
%ignore /\s+/
"""


@functools.cache
def _expression_parser() -> Lark:
    """Built on the first ``#if``: most IDL has none, and building it costs a fresh
    process as much as importing the rest of the compiler."""
    return Lark(_EXPRESSION_GRAMMAR, parser="lalr", propagate_positions=False)


_INTEGER = re.compile(
    r"(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[bB](?P<bin>[01]+)|(?P<oct>0[0-7]*)|(?P<dec>[1-9][0-9]*))"
    r"(?:[uU](?:ll|LL|[lL])?|(?:ll|LL|[lL])[uU]?)?"
)
_ACCEPTED_EXPRESSION: Final = (
    "#if accepts integers, macro names, defined(NAME), parentheses and the C operators "
    "! ~ - + * / % << >> < <= > >= == != & ^ | && || ?:"
)


class _EvalError(Exception):
    def __init__(self, token: Token, message: str) -> None:
        super().__init__(message)
        self.offset = token.start_pos or 0
        self.message = message


def _integer(token: Token) -> int:
    m = _INTEGER.fullmatch(token.value)
    if m is None:
        raise _EvalError(
            token,
            f"invalid integer {token.value!r} in #if: write decimal 42, hex 0x2A, octal 052 "
            "or binary 0b101010, optionally with u/l suffixes",
        )
    if m.group("hex") is not None:
        return int(m.group("hex"), 16)
    if m.group("bin") is not None:
        return int(m.group("bin"), 2)
    if m.group("oct") is not None:
        return int(m.group("oct"), 8)
    return int(m.group("dec"))


def _operator(node: Tree[Token], index: int) -> Token:
    # The grammar puts a named operator terminal at this index of unary and binary nodes.
    return cast(Token, node.children[index])


def _evaluate(node: Tree[Token] | Token) -> int:
    """Evaluate with C semantics: integer division truncates, && || ?: short-circuit
    (so ``0 && 1/0`` is fine), and an identifier that is not a macro is 0."""
    if isinstance(node, Token):
        if node.type == "NUMBER":
            return _integer(node)
        return 1 if node.value == "true" else 0
    kind = node.data
    children = node.children
    if kind == "ternary":
        return _evaluate(children[1]) if _evaluate(children[0]) else _evaluate(children[2])
    if kind == "unary":
        op = _operator(node, 0).value
        value = _evaluate(children[1])
        if op == "!":
            return int(not value)
        if op == "~":
            return ~value
        return -value if op == "-" else value
    left = _evaluate(children[0])
    op_token = _operator(node, 1)
    op = op_token.value
    if kind == "logical":
        if op == "&&":
            return int(bool(left) and bool(_evaluate(children[2])))
        return int(bool(left) or bool(_evaluate(children[2])))
    right = _evaluate(children[2])
    return _binary(op_token, left, right)


_ARITHMETIC: Final[dict[str, Callable[[int, int], int | bool]]] = {
    "*": operator.mul,
    "+": operator.add,
    "-": operator.sub,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "&": operator.and_,
    "^": operator.xor,
    "|": operator.or_,
}


def _binary(op_token: Token, left: int, right: int) -> int:
    op = op_token.value
    if op in ("/", "%"):
        if right == 0:
            raise _EvalError(op_token, f"division by zero in #if: the right operand of {op} is 0")
        quotient = abs(left) // abs(right)
        if (left < 0) != (right < 0):
            quotient = -quotient
        return quotient if op == "/" else left - right * quotient
    if op in ("<<", ">>"):
        if not 0 <= right < 64:
            raise _EvalError(op_token, f"shift count {right} in #if is out of range: use 0 to 63")
        return left << right if op == "<<" else left >> right
    return int(_ARITHMETIC[op](left, right))


# ---------------------------------------------------------------- line pass

_HASH = re.compile(r"[ \t]*#")
_QUOTE = re.compile(r"[ \t]*#?[ \t]*(?P<keyword>cpp_quote|rust_quote)[ \t]*\(")
_QUOTE_SCAN = re.compile(r'[()]|"(?:[^"\\\n]|\\[^\n])*"|' + _RAW_PREFIX)
_DIRECTIVE_NAME = re.compile(r"[ \t]*(?P<name>[A-Za-z_][A-Za-z0-9_]*)")
_CONTINUED = re.compile(r"\\[ \t]*$")
_FILE_ARGUMENT = re.compile(r'[ \t]*(?:"(?P<quoted>[^"]*)"|<(?P<angled>[^>]*)>)[ \t]*')
_ONE_NAME = re.compile(r"[ \t]*(?P<name>[A-Za-z_][A-Za-z0-9_]*)[ \t]*")
_DEFINE_HEAD = re.compile(r"[ \t]*(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<paren>\()?")
_COMMAND_LINE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\([^()]*\))?")
_CONDITIONALS: Final = frozenset({"if", "ifdef", "ifndef", "elif", "else", "endif"})


@dataclass(slots=True)
class _Directive:
    """A directive's logical text (continuation lines joined) and where each part was."""

    text: str
    file: str
    segments: list[tuple[int, int, int]]  # (offset in text, line, column of that offset)

    def loc(self, offset: int) -> Location:
        index = max(bisect_right([s[0] for s in self.segments], offset) - 1, 0)
        start, line, column = self.segments[index]
        return Location(self.file, line, column + offset - start)

    def loc_of_text(self, offset: int) -> Location:
        """Where the first non-blank character at or after ``offset`` is."""
        rest = self.text[offset:]
        return self.loc(offset + len(rest) - len(rest.lstrip()))


@dataclass(slots=True)
class _Branch:
    keyword: str
    location: Location
    parent_active: bool
    taken: bool
    seen_else: bool = False


@dataclass(slots=True)
class _Conditionals:
    stack: list[_Branch] = field(default_factory=list)
    active: bool = True


@dataclass(frozen=True, slots=True)
class _ReadFailure:
    reason: str


def _is_file(path: Path) -> bool:
    """``Path.is_file``, but a name the system cannot look up (too long) is no file."""
    try:
        return path.is_file()
    except OSError:
        return False


class _Preprocessor:
    """State shared by one file and all it includes: macros, output and import list."""

    def __init__(self, include_paths: tuple[Path, ...], reporter: Reporter) -> None:
        self.include_paths = include_paths
        self.reporter = reporter
        self.macros: dict[str, _Macro] = {}
        self.lines: list[SourceLine] = []
        self.imports: list[ImportDirective] = []
        self.sources: dict[str, str] = {}
        self._stack: list[tuple[Path, str]] = []  # (identity, display) of open files
        self._read_cache: dict[Path, str | _ReadFailure] = {}
        self._budget = 0

    # ------------------------------------------------------------ files

    def read(self, path: Path) -> str | _ReadFailure:
        identity = path.resolve()
        cached = self._read_cache.get(identity)
        if cached is None:
            try:
                cached = path.read_text(encoding="utf-8-sig")
            except UnicodeDecodeError as exc:
                cached = _ReadFailure(f"it is not valid UTF-8 ({exc.reason} at byte {exc.start})")
            except OSError as exc:
                cached = _ReadFailure(exc.strerror or str(exc))
            self._read_cache[identity] = cached
        return cached

    def process(self, display: str, identity: Path, directory: Path, text: str) -> None:
        self.sources[display] = text
        self.reporter.add_source(display, text)
        if text.startswith("\ufeff"):
            text = text[1:]
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        self._stack.append((identity, display))
        try:
            self._process_lines(display, directory, text)
        finally:
            self._stack.pop()

    def _resolve(self, written: str, directory: Path) -> tuple[str, Path] | list[Path]:
        """The display path and path of the file ``written``, or the directories searched."""
        if Path(written).is_absolute():
            candidate = Path(written)
            return (written, candidate) if _is_file(candidate) else [candidate.parent]
        searched = [directory, *self.include_paths, BUILTIN_DIR]
        for folder in searched:
            candidate = folder / written
            if _is_file(candidate):
                return os.path.normpath(candidate), candidate
        return searched

    # ------------------------------------------------------------ the line loop

    def _process_lines(self, display: str, directory: Path, text: str) -> None:
        stripped = _strip_comments(display, text, self.reporter)
        lines = stripped.text.split("\n") if text else []
        if text.endswith("\n"):
            lines.pop()
        starts = [0, *accumulate(len(line) + 1 for line in lines)]
        conds = _Conditionals()
        out = self.lines
        i = 0
        while i < len(lines):
            line = lines[i]
            if i + 1 in stripped.in_raw:
                out.append(SourceLine(line if conds.active else "", display, i + 1))
                i += 1
                continue
            if conds.active and (quote := _QUOTE.match(line)) is not None:
                i = self._quote(display, stripped, lines, starts, i, quote)
                continue
            if _HASH.match(line):
                end = i
                while end + 1 < len(lines) and (
                    _CONTINUED.search(lines[end]) or end + 1 in stripped.joins
                ):
                    end += 1
                directive = self._join(display, lines, i, end)
                out.extend(SourceLine("", display, k + 1) for k in range(i, end + 1))
                self._directive(directive, directory, conds)
                i = end + 1
                continue
            if not conds.active:
                out.append(SourceLine("", display, i + 1))
                i += 1
            elif not self.macros or self.macros.keys().isdisjoint(_IDENTIFIER.findall(line)):
                out.append(SourceLine(line, display, i + 1))
                i += 1
            else:
                i = self._expand_lines(display, lines, i, stripped)
        for branch in conds.stack:
            self.reporter.error(
                branch.location,
                f"#{branch.keyword} without a matching #endif: add #endif before the end of "
                f"{display}",
            )

    @staticmethod
    def _join(display: str, lines: list[str], first: int, last: int) -> _Directive:
        pieces: list[str] = []
        segments: list[tuple[int, int, int]] = []
        offset = 0
        for k in range(first, last + 1):
            piece = lines[k]
            if k < last and (cont := _CONTINUED.search(piece)) is not None:
                piece = piece[: cont.start()]
            segments.append((offset, k + 1, 1))
            pieces.append(piece)
            offset += len(piece)
        return _Directive("".join(pieces), display, segments)

    def _quote(
        self,
        display: str,
        stripped: _Stripped,
        lines: list[str],
        starts: list[int],
        i: int,
        quote: re.Match[str],
    ) -> int:
        """Blank a cpp_quote/rust_quote block; return the next line to process."""
        text = stripped.text
        pos = starts[i] + quote.end() - 1
        depth = 0
        end: int | None = None
        while end is None and (m := _QUOTE_SCAN.search(text, pos)) is not None:
            pos = m.end()
            if m.group() == "(":
                depth += 1
            elif m.group() == ")":
                depth -= 1
                if depth == 0:
                    end = pos
            elif m.group("delim") is not None:
                close = text.find(")" + m.group("delim") + '"', pos)
                if close < 0:
                    break
                pos = close + len(m.group("delim")) + 2
        if end is None:
            keyword = quote.group("keyword")
            self.reporter.error(
                Location(display, i + 1, quote.start("keyword") + 1),
                f"unterminated {keyword}(...): it needs a closing ')'; write "
                f'{keyword}("text") or {keyword}(R"(text)")',
            )
            self.lines.append(SourceLine("", display, i + 1))
            return i + 1
        last = bisect_right(starts, end - 1) - 1
        self.lines.extend(SourceLine("", display, k + 1) for k in range(i, last))
        column = end - starts[last]
        tail = lines[last][column:]
        if not tail.strip():
            self.lines.append(SourceLine("", display, last + 1))
            return last + 1
        # Text after the closing ')' is ordinary source: reprocess it, columns intact.
        lines[last] = " " * column + tail
        stripped.in_raw.discard(last + 1)
        return last

    def _expand_lines(self, display: str, lines: list[str], i: int, stripped: _Stripped) -> int:
        """Macro-expand line ``i``, joining the following lines while a function-like
        macro's arguments are still open, as C does; return the next line to process."""
        last = i
        text = lines[i]
        expanded: list[_Tok] | None = None
        while expanded is None:
            following = last + 1
            joinable = (
                following < len(lines)
                and following + 1 not in stripped.in_raw
                and not _HASH.match(lines[following])
                and not _QUOTE.match(lines[following])
            )
            try:
                self._budget = MAX_EXPANSION_TOKENS
                open_end = joinable and lines[following].lstrip().startswith("(")
                expanded = self._expand(_tokenize(text), open_end=open_end)
            except _Unclosed as unclosed:
                if not joinable:
                    name = unclosed.name
                    self._error_in_text(
                        display,
                        i,
                        text,
                        name.pos,
                        f"unterminated argument list invoking macro '{name.text}': close it "
                        "with ')' (arguments may span lines, but not a directive or the end "
                        "of the file)",
                    )
                    break
                last = following
                text += "\n" + lines[last]
            except _MacroError as exc:
                self._error_in_text(display, i, text, exc.pos, exc.message)
                break
        if expanded is None:
            self.lines.extend(SourceLine(lines[k], display, k + 1) for k in range(i, last + 1))
            return last + 1
        result = "".join(t.text for t in expanded)
        self.lines.append(SourceLine(result.replace("\n", " "), display, i + 1))
        self.lines.extend(SourceLine("", display, k + 1) for k in range(i + 1, last + 1))
        return last + 1

    def _error_in_text(self, display: str, i: int, text: str, pos: int, message: str) -> None:
        line = i + 1 + text.count("\n", 0, pos)
        self.reporter.error(Location(display, line, pos - text.rfind("\n", 0, pos)), message)

    # ------------------------------------------------------------ directives

    def _directive(self, directive: _Directive, directory: Path, conds: _Conditionals) -> None:
        hash_at = directive.text.index("#")
        head = _DIRECTIVE_NAME.match(directive.text, hash_at + 1)
        name = None if head is None else head.group("name")
        rest_offset = hash_at + 1 if head is None else head.end()
        rest = directive.text[rest_offset:]
        where = directive.loc(hash_at)
        if name in _CONDITIONALS:
            self._conditional(name, directive, rest_offset, where, conds)
        elif not conds.active:
            return
        elif name is None:
            if rest.strip():
                self.reporter.error(
                    where, f"expected a directive name after '#': accepted are {_DIRECTIVES}"
                )
        elif name in ("include", "import"):
            self._include(name, directive, rest_offset, where, directory)
        elif name == "define":
            self._define(directive, rest_offset)
        elif name == "undef":
            self._undef(directive, rest_offset)
        elif name in ("cpp_quote", "rust_quote"):
            self.reporter.error(where, f"expected '(' after #{name}: write #{name}(\"text\")")
        elif name != "pragma":
            self.reporter.error(where, f"unknown directive '#{name}': accepted are {_DIRECTIVES}")

    def _conditional(
        self,
        keyword: str,
        directive: _Directive,
        rest_offset: int,
        where: Location,
        conds: _Conditionals,
    ) -> None:
        rest = directive.text[rest_offset:]
        if keyword in ("if", "ifdef", "ifndef"):
            parent = conds.active
            value = parent and self._condition(keyword, directive, rest_offset, where)
            conds.stack.append(_Branch(keyword, where, parent, value))
            conds.active = value
            return
        if not conds.stack:
            self.reporter.error(
                where,
                f"#{keyword} without a matching #if: #{keyword} may only follow "
                "#if, #ifdef, #ifndef or #elif",
            )
            return
        branch = conds.stack[-1]
        if keyword != "elif" and rest.strip():
            self.reporter.error(
                directive.loc_of_text(rest_offset),
                f"unexpected text after #{keyword}: #{keyword} takes nothing (put remarks in a "
                "// comment)",
            )
        if keyword == "endif":
            conds.stack.pop()
            conds.active = branch.parent_active
            return
        if branch.seen_else:
            self.reporter.error(
                where,
                f"#{keyword} after #else: #else must be the last branch of the "
                f"#{branch.keyword} at {branch.location}",
            )
            conds.active = False
            return
        if keyword == "else":
            branch.seen_else = True
            conds.active = branch.parent_active and not branch.taken
            branch.taken = True
            return
        if branch.parent_active and not branch.taken:
            conds.active = self._condition(keyword, directive, rest_offset, where)
            branch.taken = conds.active
        else:
            conds.active = False

    def _condition(
        self, keyword: str, directive: _Directive, rest_offset: int, where: Location
    ) -> bool:
        rest = directive.text[rest_offset:]
        if keyword in ("ifdef", "ifndef"):
            m = _ONE_NAME.fullmatch(rest)
            if m is None:
                self.reporter.error(where, f"#{keyword} expects one macro name: #{keyword} NAME")
                return False
            return (m.group("name") in self.macros) == (keyword == "ifdef")
        return self._expression(keyword, directive, rest_offset, where) != 0

    def _expression(
        self, keyword: str, directive: _Directive, rest_offset: int, where: Location
    ) -> int:
        tokens = _tokenize(directive.text[rest_offset:], rest_offset)
        if all(t.kind == _WS for t in tokens):
            self.reporter.error(
                where,
                f"#{keyword} needs an expression, e.g. #{keyword} defined(NAME) or "
                f"#{keyword} VERSION >= 2",
            )
            return 0
        try:
            self._budget = MAX_EXPANSION_TOKENS
            replaced = self._replace_defined(tokens)
            tokens = self._expand(list(replaced))
        except _Unclosed as unclosed:
            self.reporter.error(
                directive.loc(unclosed.name.pos),
                f"unterminated argument list invoking macro '{unclosed.name.text}': close it "
                "with ')' on the same line",
            )
            return 0
        except _MacroError as exc:
            self.reporter.error(directive.loc(exc.pos), exc.message)
            return 0
        starts = list(accumulate((len(t.text) for t in tokens), initial=0))
        text = "".join(t.text for t in tokens)

        def origin(offset: int) -> Location:
            index = min(max(bisect_right(starts, offset) - 1, 0), len(tokens) - 1)
            return directive.loc(tokens[index].pos)

        try:
            tree = _expression_parser().parse(text)
        except UnexpectedInput as exc:
            if isinstance(exc, UnexpectedCharacters) and exc.pos_in_stream is not None:
                offset: int = exc.pos_in_stream
                found = f"unexpected '{text[offset]}'"
            elif isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
                found, offset = f"unexpected '{exc.token.value}'", exc.token.start_pos or 0
            else:
                found, offset = "the expression ends too early", len(text.rstrip()) - 1
            changed = [t.text for t in tokens] != [t.text for t in replaced]
            expanded = f" (after macro expansion: {text.strip()})" if changed else ""
            self.reporter.error(
                origin(offset),
                f"invalid #{keyword} expression: {found}{expanded}; {_ACCEPTED_EXPRESSION}",
            )
            return 0
        try:
            return _evaluate(tree)
        except _EvalError as exc:
            self.reporter.error(origin(exc.offset), exc.message)
        except RecursionError:
            self.reporter.error(where, f"#{keyword} expression is nested too deeply")
        return 0

    def _replace_defined(self, tokens: list[_Tok]) -> list[_Tok]:
        """Turn ``defined NAME`` and ``defined(NAME)`` into 1 or 0, before expansion."""
        out: list[_Tok] = []
        i = 0
        while i < len(tokens):
            t = tokens[i]
            if t.kind != _IDENT or t.text != "defined":
                out.append(t)
                i += 1
                continue
            j = _skip_ws(tokens, i + 1)
            paren = j < len(tokens) and tokens[j].text == "("
            if paren:
                j = _skip_ws(tokens, j + 1)
            if j >= len(tokens) or tokens[j].kind != _IDENT:
                raise _MacroError(
                    t.pos, "'defined' needs a macro name: defined(NAME) or defined NAME"
                )
            name = tokens[j].text
            if paren:
                j = _skip_ws(tokens, j + 1)
                if j >= len(tokens) or tokens[j].text != ")":
                    raise _MacroError(
                        t.pos, f"missing ')' after defined({name}: write defined({name})"
                    )
            out.append(_Tok(_NUMBER, "1" if name in self.macros else "0", t.pos))
            i = j + 1
        return out

    def _include(
        self,
        keyword: str,
        directive: _Directive,
        rest_offset: int,
        where: Location,
        directory: Path,
    ) -> None:
        rest = directive.text[rest_offset:]
        m = _FILE_ARGUMENT.fullmatch(rest)
        written = None if m is None else m.group("quoted") or m.group("angled")
        argument = directive.loc_of_text(rest_offset)
        if m is None or not written:
            self.reporter.error(
                argument,
                f'#{keyword} expects one file name: #{keyword} "file.idl" or #{keyword} <file.idl>',
            )
            return
        found = self._resolve(written, directory)
        if isinstance(found, list):
            searched = ", ".join(str(folder) for folder in found)
            self.reporter.error(
                argument, f'cannot find "{written}" to {keyword}; searched: {searched}'
            )
            return
        display, path = found
        identity = path.resolve()
        if keyword == "import":
            self.imports.append(ImportDirective(identity, written, where))
            return
        chain = [ident for ident, _ in self._stack]
        if identity in chain:
            cycle = [shown for _, shown in self._stack[chain.index(identity) :]]
            self.reporter.error(
                argument,
                f"#include cycle: {' -> '.join([*cycle, display])}; a file may not include "
                "itself, directly or through other files",
            )
            return
        if len(self._stack) >= MAX_INCLUDE_DEPTH:
            self.reporter.error(
                argument,
                f"#include nested more than {MAX_INCLUDE_DEPTH} levels deep: "
                "flatten the include chain",
            )
            return
        content = self.read(path)
        if isinstance(content, _ReadFailure):
            self.reporter.error(argument, f"cannot read {display}: {content.reason}")
            return
        self.process(display, identity, path.parent, content)

    # ------------------------------------------------------------ macros

    def predefine(self, defines: Mapping[str, str]) -> None:
        if not defines:
            return
        shown = [f"-D {name}={value}" for name, value in defines.items()]
        self.reporter.add_source(_COMMAND_LINE, "\n".join(shown))
        for number, (name, value) in enumerate(defines.items(), 1):
            directive = _Directive(f"{name} {value}", _COMMAND_LINE, [(0, number, 4)])
            if _COMMAND_LINE_NAME.fullmatch(name) is None:
                self.reporter.error(
                    directive.loc(0),
                    f"invalid macro name {name!r}: write -D NAME, -D NAME=VALUE or "
                    "-D 'NAME(a, b)=BODY'",
                )
            else:
                self._define(directive, 0)

    def _define(self, directive: _Directive, rest_offset: int) -> None:
        text = directive.text
        head = _DEFINE_HEAD.match(text, rest_offset)
        if head is None:
            self.reporter.error(
                directive.loc_of_text(rest_offset),
                "#define needs a macro name: #define NAME, #define NAME value or "
                "#define NAME(a, b) body",
            )
            return
        name = head.group("name")
        where = directive.loc(head.start("name"))
        if name == "defined":
            self.reporter.error(where, "'defined' cannot be a macro name: choose another name")
            return
        params: tuple[str, ...] | None = None
        body_offset = head.end()
        if head.group("paren"):
            close = text.find(")", body_offset)
            params = self._parameters(text[body_offset:close] if close >= 0 else None)
            if params is None:
                self.reporter.error(
                    directive.loc(body_offset - 1),
                    f"invalid parameter list for macro '{name}': write distinct names between "
                    f"parentheses, e.g. #define {name}(a, b) or #define {name}(fmt, ...)",
                )
                return
            body_offset = close + 1
        body = self._classify(
            directive, params, _strip_ws(_tokenize(text[body_offset:], body_offset))
        )
        if body is None:
            return
        macro = _Macro(name, params, body, where)
        previous = self.macros.get(name)
        if previous is not None and previous.signature() != macro.signature():
            self.reporter.error(
                where,
                f"macro '{name}' is already defined differently at {previous.location}: "
                f"#undef {name} first, or guard the #define with #ifndef {name}",
            )
        self.macros[name] = macro

    @staticmethod
    def _parameters(text: str | None) -> tuple[str, ...] | None:
        if text is None:
            return None
        if not text.strip():
            return ()
        names = [p.strip() for p in text.split(",")]
        if names[-1] == "...":
            names[-1] = "__VA_ARGS__"
        if len(set(names)) != len(names) or not all(_IDENTIFIER.fullmatch(n) for n in names):
            return None
        return tuple(names)

    def _classify(
        self, directive: _Directive, params: tuple[str, ...] | None, body: list[_Tok]
    ) -> tuple[_Tok, ...] | None:
        """Mark the body's parameters and # and ## operators, checking C's rules for them."""
        names = set(params or ())
        out: list[_Tok] = []
        for k, t in enumerate(body):
            kind = t.kind
            if t.text == "##" and kind == _PUNCT:
                if k == 0 or k == len(body) - 1:
                    self.reporter.error(
                        directive.loc(t.pos),
                        "'##' cannot be at either end of a macro body: it joins two tokens",
                    )
                    return None
                kind = _PASTE
            elif t.text == "#" and kind == _PUNCT and params is not None:
                following = _skip_ws(body, k + 1)
                if following == len(body) or body[following].text not in names:
                    self.reporter.error(
                        directive.loc(t.pos),
                        "'#' in a function-like macro must be followed by a parameter name",
                    )
                    return None
                kind = _STRINGIFY
            elif kind == _IDENT and t.text in names:
                kind = _PARAM
            out.append(_Tok(kind, t.text, t.pos))
        return tuple(out)

    def _undef(self, directive: _Directive, rest_offset: int) -> None:
        m = _ONE_NAME.fullmatch(directive.text, rest_offset)
        if m is None:
            self.reporter.error(
                directive.loc_of_text(rest_offset), "#undef expects one macro name: #undef NAME"
            )
            return
        self.macros.pop(m.group("name"), None)

    def _expand(self, tokens: list[_Tok], *, open_end: bool = False) -> list[_Tok]:
        """Fully macro-expand ``tokens`` (which this consumes), C style: a replacement is
        rescanned together with the rest of the text, and each token's hide set keeps
        the macros it came from from expanding again. ``open_end`` says the text goes on
        with a '(', so a function-like macro name at its very end is an invocation."""
        out: list[_Tok] = []
        i = 0
        while i < len(tokens):
            t = tokens[i]
            macro = self.macros.get(t.text) if t.kind == _IDENT else None
            if macro is None or macro.name in t.hide:
                out.append(t)
                i += 1
                continue
            if macro.params is None:
                replacement = self._substitute(macro, t, [], t.hide | {macro.name})
                end = i + 1
            else:
                j = _skip_ws(tokens, i + 1)
                if j == len(tokens) and open_end:
                    raise _Unclosed(t)
                if j == len(tokens) or tokens[j].text != "(":
                    out.append(t)
                    i += 1
                    continue
                collected = _collect_arguments(tokens, j)
                if collected is None:
                    raise _Unclosed(t)
                args, close = collected
                hide = (t.hide & tokens[close].hide) | {macro.name}
                replacement = self._substitute(macro, t, self._bind(macro, t, args), hide)
                end = close + 1
            self._budget -= len(replacement) + 1
            if self._budget < 0:
                raise _MacroError(
                    t.pos,
                    f"expanding macro '{t.text}' produces more than {MAX_EXPANSION_TOKENS} tokens: "
                    "check for macros that multiply each other",
                )
            tokens[i:end] = replacement
        return out

    @staticmethod
    def _bind(macro: _Macro, name: _Tok, args: list[list[_Tok]]) -> list[list[_Tok]]:
        params = macro.params or ()
        if not params and args == [[]]:
            return []
        if macro.variadic and len(args) >= len(params) - 1:
            fixed, extra = args[: len(params) - 1], args[len(params) - 1 :]
            joined: list[_Tok] = []
            for n, arg in enumerate(extra):
                if n:
                    joined += (_Tok(_PUNCT, ",", name.pos), _Tok(_WS, " ", name.pos))
                joined += arg
            return [*fixed, joined]
        if len(args) == len(params):
            return args
        count = len(params) - 1 if macro.variadic else len(params)
        wanted = f"at least {count}" if macro.variadic else str(count)
        plural = "" if count == 1 else "s"
        raise _MacroError(
            name.pos,
            f"macro '{macro.name}' takes {wanted} argument{plural} "
            f"({', '.join(params).replace('__VA_ARGS__', '...')}), but {len(args)} "
            f"{'was' if len(args) == 1 else 'were'} given",
        )

    def _substitute(
        self, macro: _Macro, name: _Tok, args: list[list[_Tok]], hide: frozenset[str]
    ) -> list[_Tok]:
        index = {p: k for k, p in enumerate(macro.params or ())}
        expanded: dict[int, list[_Tok]] = {}
        body = macro.body
        result: list[_Tok] = []
        k = 0
        while k < len(body):
            b = body[k]
            if b.kind == _PASTE:
                while result and result[-1].kind == _WS:
                    result.pop()
                k = _skip_ws(body, k + 1)
                operand = body[k]
                if operand.kind == _PARAM:
                    right = args[index[operand.text]]
                elif operand.kind == _STRINGIFY:
                    k = _skip_ws(body, k + 1)
                    right = [_Tok(_STRING_LIT, _stringify(args[index[body[k].text]]), name.pos)]
                else:
                    right = [operand]
                k += 1
                if right:
                    left = result.pop()
                    if left.kind != _PLACEMARKER:
                        right = [*_tokenize(left.text + right[0].text, name.pos), *right[1:]]
                    result += right
            elif b.kind == _STRINGIFY:
                k = _skip_ws(body, k + 1)
                result.append(_Tok(_STRING_LIT, _stringify(args[index[body[k].text]]), name.pos))
                k += 1
            elif b.kind == _PARAM:
                slot = index[b.text]
                following = _skip_ws(body, k + 1)
                if following < len(body) and body[following].kind == _PASTE:
                    result += args[slot] or [_Tok(_PLACEMARKER, "", name.pos)]
                else:
                    if slot not in expanded:
                        expanded[slot] = self._expand(list(args[slot]))
                    result += expanded[slot]
                k += 1
            else:
                result.append(b)
                k += 1
        return [
            _Tok(t.kind, t.text, name.pos, t.hide | hide) for t in result if t.kind != _PLACEMARKER
        ]
