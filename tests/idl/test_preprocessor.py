"""The IDL preprocessor: comments, includes, imports, macros, conditionals and quote blocks,
with the exact diagnostics a user sees for each mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from canopy.idl._diagnostics import IdlError
from canopy.idl._model import Location
from canopy.idl._preprocessor import (
    BUILTIN_DIR,
    MAX_INCLUDE_DEPTH,
    ImportDirective,
    Preprocessed,
    SourceLine,
    preprocess,
)
from contract import EXAMPLES

ACCEPTED_EXPRESSION = (
    "#if accepts integers, macro names, defined(NAME), parentheses and the C operators "
    "! ~ - + * / % << >> < <= > >= == != & ^ | && || ?:"
)
DIRECTIVES = (
    "#include, #import, #define, #undef, #if, #ifdef, #ifndef, #elif, #else, #endif, "
    "#pragma, #cpp_quote and #rust_quote"
)


def run(text: str, path: str | Path = "main.idl", **options: Any) -> Preprocessed:
    return preprocess(path, text=text, **options)


def texts(text: str, **options: Any) -> list[str]:
    return [line.text for line in run(text, **options).lines]


def code(text: str, **options: Any) -> str:
    """The non-blank output lines, stripped, for tests about what survives."""
    return "\n".join(t.strip() for t in texts(text, **options) if t.strip())


def errors(text: str, path: str | Path = "main.idl", **options: Any) -> list[str]:
    with pytest.raises(IdlError) as info:
        run(text, path, **options)
    return [f"{d.location}: {d.message}" for d in info.value.diagnostics]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- the result records


def test_result_records_lines_with_their_origin() -> None:
    result = run("a\nb\n")
    assert result.lines == (SourceLine("a", "main.idl", 1), SourceLine("b", "main.idl", 2))
    assert result.text == "a\nb"
    assert result.imports == ()
    assert result.sources == {"main.idl": "a\nb\n"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("\n", [""]),
        ("x", ["x"]),
        ("x\n\ny", ["x", "", "y"]),
        ("a\r\nb\rc", ["a", "b", "c"]),
    ],
)
def test_line_splitting(text: str, expected: list[str]) -> None:
    assert texts(text) == expected


def test_reads_the_file_when_no_text_is_given(tmp_path: Path) -> None:
    path = write(tmp_path / "f.idl", "\ufeffstruct s {};\n")
    result = preprocess(path)
    assert result.lines == (SourceLine("struct s {};", str(path), 1),)


def test_missing_root_file_is_a_diagnostic(tmp_path: Path) -> None:
    path = tmp_path / "absent.idl"
    with pytest.raises(IdlError) as info:
        preprocess(path)
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.location == Location(str(path), 1, 1)
    assert diagnostic.message == f"cannot read {path}: No such file or directory"


# ---------------------------------------------------------------- comments


def test_comments_become_spaces_so_columns_do_not_move() -> None:
    source = "int a; // note\nint /* x */ b; /* y */ int c;\n"
    out = texts(source)
    assert out == ["int a;        ", "int         b;         int c;"]
    for before, after in zip(source.splitlines(), out, strict=True):
        assert len(before) == len(after)
    assert out[1].index("c") == source.splitlines()[1].index("c")


def test_multi_line_block_comment_keeps_line_numbers_and_columns() -> None:
    result = run("a /* one\ntwo\nthree */ b\nc")
    assert [line.text for line in result.lines] == ["a       ", "", "         b", "c"]
    assert [line.line for line in result.lines] == [1, 2, 3, 4]
    assert run("/*\n\n*/").text == "  \n\n  "


@pytest.mark.parametrize(
    "line",
    [
        's = "a // b";',
        's = "/* not a comment */";',
        r's = "escaped \" // still inside";',
        'cpp_text = R"x(// raw /* )x";',
    ],
)
def test_comment_markers_inside_strings_are_text(line: str) -> None:
    assert texts(line) == [line]


def test_directives_inside_comments_are_ignored() -> None:
    source = "// #define A 1\n/*\n#define B 2\n#foo\n*/\nA B"
    assert [t.strip() for t in texts(source)] == ["", "", "", "", "", "A B"]


def test_block_comment_inside_a_directive_continues_it() -> None:
    assert code("#define X /* spans\n lines */ 2\nX") == "2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\n  /* open\n", "main.idl:2:3: unterminated /* comment: close it with */"),
        (
            'x = "abc;\n',
            'main.idl:1:5: unterminated string literal: close it with " on the same line',
        ),
        (
            'x = "abc\\\n',
            'main.idl:1:5: unterminated string literal: close it with " on the same line',
        ),
        ('\n q = R"d(text)x";', 'main.idl:2:6: unterminated raw string literal: close it with )d"'),
    ],
)
def test_unterminated_comments_and_strings(text: str, expected: str) -> None:
    assert errors(text) == [expected]


# ---------------------------------------------------------------- #include


def test_include_inlines_lines_that_keep_their_own_origin(tmp_path: Path) -> None:
    write(tmp_path / "inc.idl", "one\ntwo\n")
    main = write(tmp_path / "main.idl", 'first\n#include "inc.idl"\nlast\n')
    result = preprocess(main)
    inc = str(tmp_path / "inc.idl")
    assert result.lines == (
        SourceLine("first", str(main), 1),
        SourceLine("", str(main), 2),
        SourceLine("one", inc, 1),
        SourceLine("two", inc, 2),
        SourceLine("last", str(main), 3),
    )
    assert result.sources == {str(main): main.read_text(), inc: "one\ntwo\n"}


@pytest.mark.parametrize("spelling", ['"inc.idl"', "<inc.idl>", ' "inc.idl" ', '"sub/../inc.idl"'])
def test_include_spellings(tmp_path: Path, spelling: str) -> None:
    write(tmp_path / "inc.idl", "included")
    write(tmp_path / "sub" / "keep.idl", "")
    result = run(f"#  include {spelling}", tmp_path / "main.idl")
    assert result.lines[1] == SourceLine("included", str(tmp_path / "inc.idl"), 1)


def test_include_search_order(tmp_path: Path) -> None:
    """The including file's directory, then include paths in order, then BUILTIN_DIR."""
    first, second = tmp_path / "first", tmp_path / "second"
    write(first / "x.idl", "from first")
    write(second / "x.idl", "from second")
    write(second / "rpc" / "rpc_types.idl", "shadowed builtin")
    main = tmp_path / "main.idl"
    source = '#include "x.idl"\n#include "rpc/rpc_types.idl"'

    def included(*paths: Path) -> list[str]:
        return [line.text for line in run(source, main, include_paths=paths).lines if line.text]

    assert included(first, second)[0] == "from first"
    assert included(second, first)[0] == "from second"
    assert included(first, second)[1] == "shadowed builtin"
    assert "namespace rpc" in included(first)
    write(tmp_path / "x.idl", "from beside")
    assert included(first, second)[0] == "from beside"


def test_builtin_include_resolves_into_the_package() -> None:
    result = run('#include "rpc/rpc_types.idl"')
    assert {line.file for line in result.lines} == {
        "main.idl",
        str(BUILTIN_DIR / "rpc" / "rpc_types.idl"),
    }


def test_nested_include_searches_the_included_files_directory(tmp_path: Path) -> None:
    write(tmp_path / "sub" / "a.idl", '#include "b.idl"\na')
    write(tmp_path / "sub" / "b.idl", "b")
    write(tmp_path / "b.idl", "wrong b")
    assert code('#include "sub/a.idl"', path=tmp_path / "main.idl") == "b\na"


def test_including_a_file_twice_inlines_it_twice(tmp_path: Path) -> None:
    write(tmp_path / "s.idl", "struct s {};")
    assert code('#include "s.idl"\n#include "s.idl"', path=tmp_path / "m.idl") == (
        "struct s {};\nstruct s {};"
    )


def test_include_shares_macros_both_ways(tmp_path: Path) -> None:
    write(tmp_path / "defs.idl", "#define WIDTH 8\nint a[OUTER];")
    source = '#define OUTER 2\n#include "defs.idl"\nint b[WIDTH];'
    assert code(source, path=tmp_path / "m.idl") == "int a[2];\nint b[8];"


def test_include_cycle_names_the_chain(tmp_path: Path) -> None:
    a = write(tmp_path / "a.idl", '#include "b.idl"')
    b = write(tmp_path / "b.idl", '\n#include "a.idl"')
    with pytest.raises(IdlError) as info:
        preprocess(a)
    assert [f"{d.location}: {d.message}" for d in info.value.diagnostics] == [
        f"{b}:2:10: #include cycle: {a} -> {b} -> {a}; a file may not include itself, "
        "directly or through other files"
    ]


def test_a_file_including_itself_is_a_cycle(tmp_path: Path) -> None:
    main = write(tmp_path / "self.idl", '#include "self.idl"')
    with pytest.raises(IdlError, match=r"#include cycle: .*self\.idl -> .*self\.idl;"):
        preprocess(main)


def test_include_depth_is_capped(tmp_path: Path) -> None:
    count = MAX_INCLUDE_DEPTH + 5
    for n in range(count):
        write(tmp_path / f"f{n}.idl", f'#include "f{n + 1}.idl"')
    write(tmp_path / f"f{count}.idl", "end")
    with pytest.raises(IdlError) as info:
        preprocess(tmp_path / "f0.idl")
    (diagnostic,) = info.value.diagnostics
    last = MAX_INCLUDE_DEPTH - 1
    assert diagnostic.location == Location(str(tmp_path / f"f{last}.idl"), 1, 10)
    assert diagnostic.message == (
        f"#include nested more than {MAX_INCLUDE_DEPTH} levels deep: flatten the include chain"
    )


def test_missing_include_lists_the_directories_searched(tmp_path: Path) -> None:
    inc = tmp_path / "inc"
    main = tmp_path / "main.idl"
    assert errors('\n  #include "nope.idl"', main, include_paths=[inc]) == [
        f'{main}:2:12: cannot find "nope.idl" to include; searched: {tmp_path}, {inc}, '
        f"{BUILTIN_DIR}"
    ]


def test_missing_absolute_include(tmp_path: Path) -> None:
    target = tmp_path / "gone.idl"
    assert errors(f'#include "{target}"') == [
        f'main.idl:1:10: cannot find "{target}" to include; searched: {tmp_path}'
    ]


@pytest.mark.parametrize("argument", ["", "nope.idl", '""', '"a.idl" extra', "<a.idl"])
def test_include_needs_one_file_name(argument: str) -> None:
    column = 10
    assert errors(f"#include {argument}") == [
        f'main.idl:1:{column}: #include expects one file name: #include "file.idl" or '
        "#include <file.idl>"
    ]


def test_errors_in_an_included_file_point_into_it(tmp_path: Path) -> None:
    write(tmp_path / "bad.idl", "ok\n#bogus\n")
    with pytest.raises(IdlError) as info:
        run('#include "bad.idl"', tmp_path / "main.idl")
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.location == Location(str(tmp_path / "bad.idl"), 2, 1)
    assert diagnostic.format().endswith("\n    #bogus\n    ^")


def test_unreadable_include(tmp_path: Path) -> None:
    (tmp_path / "latin1.idl").write_bytes(b"caf\xe9")
    assert errors('#include "latin1.idl"', tmp_path / "main.idl") == [
        f"{tmp_path / 'main.idl'}:1:10: cannot read {tmp_path / 'latin1.idl'}: it is not valid "
        "UTF-8 (unexpected end of data at byte 3)"
    ]


# ---------------------------------------------------------------- #import


def test_import_is_recorded_not_inlined(tmp_path: Path) -> None:
    other = write(tmp_path / "lib" / "other.idl", "struct other {};")
    main = tmp_path / "main.idl"
    result = run('x\n  #import "lib/other.idl"\ny', main)
    assert [line.text for line in result.lines] == ["x", "", "y"]
    assert result.imports == (ImportDirective(other, "lib/other.idl", Location(str(main), 2, 3)),)
    assert list(result.sources) == [str(main)]


def test_import_resolves_like_include(tmp_path: Path) -> None:
    write(tmp_path / "inc" / "dep.idl", "")
    result = run(
        "#import <dep.idl>\n#import <rpc/rpc_types.idl>",
        tmp_path / "m.idl",
        include_paths=[tmp_path / "inc"],
    )
    assert [i.path for i in result.imports] == [
        tmp_path / "inc" / "dep.idl",
        BUILTIN_DIR / "rpc" / "rpc_types.idl",
    ]


def test_imports_inside_includes_are_recorded_and_inactive_ones_are_not(tmp_path: Path) -> None:
    write(tmp_path / "inc.idl", '\n#import "a.idl"')
    write(tmp_path / "a.idl", "")
    write(tmp_path / "b.idl", "")
    result = run('#include "inc.idl"\n#if 0\n#import "b.idl"\n#endif', tmp_path / "m.idl")
    assert [(i.written, i.location) for i in result.imports] == [
        ("a.idl", Location(str(tmp_path / "inc.idl"), 2, 1))
    ]


def test_missing_import_is_an_error(tmp_path: Path) -> None:
    main = tmp_path / "main.idl"
    assert errors('#import "gone.idl"', main) == [
        f'{main}:1:9: cannot find "gone.idl" to import; searched: {tmp_path}, {BUILTIN_DIR}'
    ]


# ---------------------------------------------------------------- macros


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("#define N 42\nint a[N];", "int a[42];"),
        ("#define EMPTY\n[EMPTY]", "[]"),
        ("#define N 1\nNN N_ _N N1 N", "NN N_ _N N1 1"),
        ("#define ADD(a, b) a + b\nADD(1, 2)", "1 + 2"),
        ("#define ADD(a, b) a + b\nADD( (1, 2) , f(3, 4) )", "(1, 2) + f(3, 4)"),
        ("#define F(x) <x>\nF() F ( y )", "<> <y>"),
        ("#define NONE() n\nNONE()", "n"),
        ("#define F(x) x\nF + 1", "F + 1"),
        ("#define A B\n#define B 2\nA", "2"),
        ("#define N 1\n#undef N\nN", "N"),
        ("#define N 1\n#undef NEVER_DEFINED\nN", "1"),
        ("#define X 1\ns = \"X\"; c = 'X'; X", "s = \"X\"; c = 'X'; 1"),
        ('#define X 1\ns = R"(X)"; X', 's = R"(X)"; 1'),
        ('#define F(x) x\nF("a, b")', '"a, b"'),
        # C never expands a macro inside its own expansion:
        ("#define foo foo + 1\nfoo", "foo + 1"),
        ("#define a b\n#define b a\na b", "a b"),
        ("#define f(x) x f\nf(1)(2)", "1 f(2)"),
        ("#define f(x) x\nf(f(f(1)))", "1"),
        ("#define f(a) a*g\n#define g(a) f(a)\nf(2)(9)", "2*9*g"),
        # # and ## operators, placemarkers, variadic macros:
        ('#define S(x) #x\nS( a  "b\\n" ) S()', '"a \\"b\\\\n\\"" ""'),
        ("#define CAT(a, b) a ## b\nCAT(x, y) CAT(, z) CAT(z, ) [CAT(,)]", "xy z z []"),
        ("#define CAT3(a, b, c) a ## b ## c\nCAT3(x, , z)", "xz"),
        ("#define PRE(n) i_ ## n\nPRE(calculator)", "i_calculator"),
        ("#define OBJ x ## 1\nOBJ", "x1"),
        ("#define V(...) f(__VA_ARGS__)\nV() V(1) V(1, (2, 3), 4)", "f() f(1) f(1, (2, 3), 4)"),
        ("#define L(fmt, ...) <fmt: __VA_ARGS__>\nL(a) L(a, b, c)", "<a: > <a: b, c>"),
        ("#define N 4\n#define S(x) #x\n#define XS(x) S(x)\nS(N) XS(N)", '"N" "4"'),
    ],
)
def test_macro_expansion(source: str, expected: str) -> None:
    assert code(source) == expected


def test_macro_arguments_may_span_lines() -> None:
    result = run("#define ADD(a, b) a + b\nx = ADD(1,\n        2) + 3;\ny")
    assert [(line.text, line.line) for line in result.lines] == [
        ("", 1),
        ("x = 1 + 2 + 3;", 2),
        ("", 3),
        ("y", 4),
    ]


def test_function_like_macro_takes_parenthesis_from_the_next_line() -> None:
    assert code("#define F(x) [x]\nF\n(1) F\n+ 2") == "[1] F\n+ 2"


def test_lines_without_macros_keep_their_columns_exactly() -> None:
    source = "#define N 1\n   int   spaced ;  "
    assert texts(source)[1] == "   int   spaced ;  "


def test_command_line_defines() -> None:
    source = "#if FEATURE && WIDTH == 64\nint a[WIDTH]; SQUARE(3)\n#endif"
    defines = {"FEATURE": "1", "WIDTH": "64", "SQUARE(x)": "x * x"}
    assert code(source, defines=defines) == "int a[64]; 3 * 3"
    assert code(source) == ""


def test_file_may_guard_against_a_command_line_define() -> None:
    source = "#ifndef WIDTH\n#define WIDTH 32\n#endif\nWIDTH"
    assert code(source, defines={"WIDTH": "64"}) == "64"
    assert code(source) == "32"


def test_identical_redefinition_is_allowed() -> None:
    assert code("#define N  (1 + 2)\n#define N (1 +  2)\nN") == "(1 +  2)"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "#define F(a, b) a b\n\nF(1)",
            "main.idl:3:1: macro 'F' takes 2 arguments (a, b), but 1 was given",
        ),
        (
            "#define F(a) a\n  F(1, 2)",
            "main.idl:2:3: macro 'F' takes 1 argument (a), but 2 were given",
        ),
        (
            "#define F(a, b, ...) a\nF(1)",
            "main.idl:2:1: macro 'F' takes at least 2 arguments (a, b, ...), but 1 was given",
        ),
        (
            "#define F(a) a\nx F(1,\n2\n#pragma x",
            "main.idl:2:3: unterminated argument list invoking macro 'F': close it with ')' "
            "(arguments may span lines, but not a directive or the end of the file)",
        ),
        (
            "#define A 1\n#define  A 2",
            "main.idl:2:10: macro 'A' is already defined differently at main.idl:1:9: "
            "#undef A first, or guard the #define with #ifndef A",
        ),
        (
            "#define",
            "main.idl:1:8: #define needs a macro name: #define NAME, #define NAME value or "
            "#define NAME(a, b) body",
        ),
        (
            "#define 1X",
            "main.idl:1:9: #define needs a macro name: #define NAME, #define NAME value or "
            "#define NAME(a, b) body",
        ),
        (
            "#define defined 1",
            "main.idl:1:9: 'defined' cannot be a macro name: choose another name",
        ),
        (
            "#define G(a, a) a",
            "main.idl:1:10: invalid parameter list for macro 'G': write distinct names between "
            "parentheses, e.g. #define G(a, b) or #define G(fmt, ...)",
        ),
        (
            "#define G(a",
            "main.idl:1:10: invalid parameter list for macro 'G': write distinct names between "
            "parentheses, e.g. #define G(a, b) or #define G(fmt, ...)",
        ),
        (
            "#define S(a) #b",
            "main.idl:1:14: '#' in a function-like macro must be followed by a parameter name",
        ),
        (
            "#define P(a) a ##",
            "main.idl:1:16: '##' cannot be at either end of a macro body: it joins two tokens",
        ),
        (
            "#define P ## a",
            "main.idl:1:11: '##' cannot be at either end of a macro body: it joins two tokens",
        ),
        ("#undef", "main.idl:1:7: #undef expects one macro name: #undef NAME"),
        ("#undef A B", "main.idl:1:8: #undef expects one macro name: #undef NAME"),
    ],
)
def test_macro_errors(source: str, expected: str) -> None:
    assert errors(source) == [expected]


def test_bad_command_line_define_points_at_it() -> None:
    with pytest.raises(IdlError) as info:
        run("", defines={"OK": "1", "1BAD": "2"})
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.format() == (
        "<command line>:2:4: error: invalid macro name '1BAD': write -D NAME, -D NAME=VALUE "
        "or -D 'NAME(a, b)=BODY'\n    -D 1BAD=2\n       ^"
    )


def test_exponential_macro_expansion_is_capped() -> None:
    layers = "".join(f"#define A{n} A{n - 1} A{n - 1}\n" for n in range(1, 20))
    assert errors("#define A0 x x\n" + layers + "A19") == [
        "main.idl:21:1: expanding macro 'A0' produces more than 100000 tokens: check for "
        "macros that multiply each other"
    ]


def test_several_errors_are_reported_together() -> None:
    assert errors("#bogus\n#define\n#endif") == [
        f"main.idl:1:1: unknown directive '#bogus': accepted are {DIRECTIVES}",
        "main.idl:2:8: #define needs a macro name: #define NAME, #define NAME value or "
        "#define NAME(a, b) body",
        "main.idl:3:1: #endif without a matching #if: #endif may only follow #if, #ifdef, "
        "#ifndef or #elif",
    ]


# ---------------------------------------------------------------- conditionals


@pytest.mark.parametrize(
    "expression",
    [
        "1",
        "-1",
        "0x10 == 16 && 0X1f == 31",
        "010 == 8 && 0 == 00",
        "0b101 == 5 && 0B1 == 1",
        "10u == 10 && 10UL == 10 && 1ll && 2LLU == 2 && 0x10lu == 16",
        "-1 < 0 && +1 == 1 && ~0 == -1",
        "!0 && !5 == 0",
        "7 / 2 == 3 && -7 / 2 == -3 && 7 % 3 == 1 && -7 % 2 == -1",
        "1 << 4 == 16 && 256 >> 4 == 16",
        "3 <= 3 && (3 >= 4) == 0 && 2 > 1 && !(2 < 1) && 1 != 2",
        "(6 & 3) == 2 && (6 ^ 3) == 5 && (6 | 3) == 7",
        "2 + 3 * 4 == 14 && (2 + 3) * 4 == 20 && 10 - 2 - 3 == 5",
        "1 ? 2 : 0",
        "0 ? 0 : 1 ? 3 : 0",
        "0 || 2",
        "UNKNOWN == 0 && !UNKNOWN",
        "defined(N) && defined N && !defined(M) && !defined M",
        "N == 3 && TWICE(N) == 6 && TWICE(TWICE(1)) == 4",
        "!(0 && 1 / 0)",
        "1 || 1 % 0",
        "0 ? 1 / 0 : 1",
        "true && !false",
        "TWICE == 0",
    ],
)
def test_if_expressions_that_hold(expression: str) -> None:
    source = f"#define N 3\n#define TWICE(x) ((x) * 2)\n#if {expression}\nyes\n#else\nno\n#endif"
    assert code(source) == "yes"


@pytest.mark.parametrize(
    "expression", ["0", "1 && 0", "0 || 0", "2 < 1", "!1", "3 - 3", "0 ? 1 : 0"]
)
def test_if_expressions_that_do_not_hold(expression: str) -> None:
    assert code(f"#if {expression}\nyes\n#else\nno\n#endif") == "no"


@pytest.mark.parametrize(
    ("version", "expected"), [("1", "one"), ("2", "two"), ("3", "three"), ("9", "other")]
)
def test_elif_chain_takes_the_first_true_branch(version: str, expected: str) -> None:
    source = (
        "#if V == 1\none\n#elif V == 2\ntwo\n#elif V >= 2 && V < 5\nthree\n#elif V >= 2\n"
        "other\n#else\nnone\n#endif"
    )
    assert code(source, defines={"V": version}) == expected


def test_ifdef_and_ifndef() -> None:
    source = (
        "#define HAVE\n#ifdef HAVE\na\n#endif\n#ifndef HAVE\nb\n#endif\n"
        "#ifdef NOPE\nc\n#else\nd\n#endif"
    )
    assert code(source) == "a\nd"


def test_inactive_lines_become_blank_and_keep_numbering() -> None:
    result = run("#if 0\nhidden\n#else\nshown\n#endif\nafter")
    assert [(line.text, line.line) for line in result.lines] == [
        ("", 1),
        ("", 2),
        ("", 3),
        ("shown", 4),
        ("", 5),
        ("after", 6),
    ]


def test_nested_inactive_blocks_never_activate_and_are_not_checked() -> None:
    source = """\
#if 0
  #if 1
    a
  #elif 1
    b
  #else
    c
  #endif
  #if 1 / 0
  #elif garbage (((
  #endif
  #bogus directive
  #include "missing.idl"
  #define HIDDEN 1
#elif 1
  #ifdef HIDDEN
    d
  #else
    e
  #endif
#else
  f
#endif"""
    assert code(source) == "e"


def test_if_expression_uses_directive_continuation() -> None:
    assert code("#if 1 + \\\n    1 == 2\nyes\n#endif") == "yes"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "#else",
            "main.idl:1:1: #else without a matching #if: #else may only follow #if, #ifdef, "
            "#ifndef or #elif",
        ),
        (
            "\n #endif",
            "main.idl:2:2: #endif without a matching #if: #endif may only follow #if, #ifdef, "
            "#ifndef or #elif",
        ),
        (
            "#elif 1",
            "main.idl:1:1: #elif without a matching #if: #elif may only follow #if, #ifdef, "
            "#ifndef or #elif",
        ),
        (
            "#if 1\n#else\n#elif 1\n#endif",
            "main.idl:3:1: #elif after #else: #else must be the last branch of the #if at "
            "main.idl:1:1",
        ),
        (
            "#ifdef X\n#else\n#else\n#endif",
            "main.idl:3:1: #else after #else: #else must be the last branch of the #ifdef at "
            "main.idl:1:1",
        ),
        (
            "x\n  #ifndef G\n",
            "main.idl:2:3: #ifndef without a matching #endif: add #endif before the end of "
            "main.idl",
        ),
        (
            "#if 1\n#else junk\n#endif",
            "main.idl:2:7: unexpected text after #else: #else takes nothing (put remarks in a "
            "// comment)",
        ),
        (
            "#if 1\n#endif X",
            "main.idl:2:8: unexpected text after #endif: #endif takes nothing (put remarks in "
            "a // comment)",
        ),
        ("#ifdef\n#endif", "main.idl:1:1: #ifdef expects one macro name: #ifdef NAME"),
        ("#ifndef A B\n#endif", "main.idl:1:1: #ifndef expects one macro name: #ifndef NAME"),
        (
            "#if\n#endif",
            "main.idl:1:1: #if needs an expression, e.g. #if defined(NAME) or #if VERSION >= 2",
        ),
        (
            "#if 0\n#elif\n#endif",
            "main.idl:2:1: #elif needs an expression, e.g. #elif defined(NAME) or #elif "
            "VERSION >= 2",
        ),
        ("#if 1 / 0\n#endif", "main.idl:1:7: division by zero in #if: the right operand of / is 0"),
        (
            "#if 1 % (2 - 2)\n#endif",
            "main.idl:1:7: division by zero in #if: the right operand of % is 0",
        ),
        ("#if 1 << 64\n#endif", "main.idl:1:7: shift count 64 in #if is out of range: use 0 to 63"),
        ("#if 1 >> -1\n#endif", "main.idl:1:7: shift count -1 in #if is out of range: use 0 to 63"),
        (
            "#if 08\n#endif",
            "main.idl:1:5: invalid integer '08' in #if: write decimal 42, hex 0x2A, octal 052 or "
            "binary 0b101010, optionally with u/l suffixes",
        ),
        (
            "#if 1.5\n#endif",
            "main.idl:1:5: invalid integer '1.5' in #if: write decimal 42, hex 0x2A, octal 052 or "
            "binary 0b101010, optionally with u/l suffixes",
        ),
        (
            "#if 1 +\n#endif",
            "main.idl:1:7: invalid #if expression: the expression ends too early; "
            f"{ACCEPTED_EXPRESSION}",
        ),
        (
            "#if (1\n#endif",
            "main.idl:1:6: invalid #if expression: the expression ends too early; "
            f"{ACCEPTED_EXPRESSION}",
        ),
        (
            "#if 1 2\n#endif",
            f"main.idl:1:7: invalid #if expression: unexpected '2'; {ACCEPTED_EXPRESSION}",
        ),
        (
            "#if 1 $ 2\n#endif",
            f"main.idl:1:7: invalid #if expression: unexpected '$'; {ACCEPTED_EXPRESSION}",
        ),
        (
            '#if "s"\n#endif',
            f"main.idl:1:5: invalid #if expression: unexpected '\"'; {ACCEPTED_EXPRESSION}",
        ),
        (
            "#define HALF 1 +\n#if HALF\n#endif",
            "main.idl:2:5: invalid #if expression: the expression ends too early (after macro "
            f"expansion: 1 +); {ACCEPTED_EXPRESSION}",
        ),
        (
            "#if defined\n#endif",
            "main.idl:1:5: 'defined' needs a macro name: defined(NAME) or defined NAME",
        ),
        (
            "#if defined(1)\n#endif",
            "main.idl:1:5: 'defined' needs a macro name: defined(NAME) or defined NAME",
        ),
        ("#if defined(X\n#endif", "main.idl:1:5: missing ')' after defined(X: write defined(X)"),
        (
            "#define F(x) x\n#if F(1\n#endif",
            "main.idl:2:5: unterminated argument list invoking macro 'F': close it with ')' on the "
            "same line",
        ),
        (
            "#if 1 + \\\n  1 / 0\n#endif",
            "main.idl:2:5: division by zero in #if: the right operand of / is 0",
        ),
    ],
)
def test_conditional_errors(source: str, expected: str) -> None:
    assert errors(source) == [expected]


def test_expression_nested_too_deeply() -> None:
    depth = 2000
    assert errors("#if " + "-" * depth + "1\n#endif") == [
        "main.idl:1:1: #if expression is nested too deeply"
    ]


# ---------------------------------------------------------------- other directives


def test_pragma_and_null_directive_are_blanked() -> None:
    assert texts("#pragma once\n#pragma anything (at all)\n#\n  #  \nx") == ["", "", "", "", "x"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("#foo", f"main.idl:1:1: unknown directive '#foo': accepted are {DIRECTIVES}"),
        ("  # error oops", f"main.idl:1:3: unknown directive '#error': accepted are {DIRECTIVES}"),
        ("#123", f"main.idl:1:1: expected a directive name after '#': accepted are {DIRECTIVES}"),
        ("#cpp_quote", "main.idl:1:1: expected '(' after #cpp_quote: write #cpp_quote(\"text\")"),
    ],
)
def test_unknown_directives(source: str, expected: str) -> None:
    assert errors(source) == [expected]


def test_directive_continuation_lines() -> None:
    result = run("#define LONG 1 + \\\n  2 +\\  \n  3\nLONG")
    assert [(line.text, line.line) for line in result.lines] == [
        ("", 1),
        ("", 2),
        ("", 3),
        ("1 +   2 +  3", 4),
    ]


# ---------------------------------------------------------------- cpp_quote and rust_quote


@pytest.mark.parametrize(
    "block",
    [
        '#cpp_quote("#include <vector>")',
        'cpp_quote("int f(); // ) not the end")',
        '  # rust_quote ( "use std::fmt;" )',
        'cpp_quote("a" "b")',
        "cpp_quote((nested (parens)))",
        'cpp_quote(R"(x)")',
    ],
)
def test_single_line_quote_blocks_are_removed(block: str) -> None:
    assert texts(f"{block}\nafter") == ["", "after"]


def test_multi_line_raw_string_quote_block_is_removed() -> None:
    source = """\
#cpp_quote(R"__(
#include <map>
#if SOMETHING
inline int f(std::map<int, int> m) { return m.size() > 0 ? (1) : 0; } // "quoted" )
/* not a comment */ const char* s = ")";
)__")
after"""
    result = run(source)
    assert [line.text for line in result.lines] == ["", "", "", "", "", "", "after"]
    assert result.lines[-1].line == 7


def test_text_after_a_quote_block_is_kept_in_its_columns() -> None:
    assert texts('cpp_quote(R"(a\nb)") struct s {};') == ["", "     struct s {};"]
    source = 'cpp_quote("x") rust_quote("y") z'
    assert texts(source) == [" " * source.index("z") + "z"]


def test_raw_string_in_an_inactive_block_does_not_end_it() -> None:
    source = '#if 0\ncpp_quote(R"(\n#endif\n#else\n)")\n#endif\nafter'
    assert code(source) == "after"


def test_unterminated_quote_block() -> None:
    assert errors('\n  cpp_quote("a" (\n') == [
        "main.idl:2:3: unterminated cpp_quote(...): it needs a closing ')'; write "
        'cpp_quote("text") or cpp_quote(R"(text)")'
    ]


# ---------------------------------------------------------------- shipped and example files


def test_shipped_rpc_types() -> None:
    result = preprocess(BUILTIN_DIR / "rpc" / "rpc_types.idl")
    text = " ".join(result.text.split())
    assert "namespace rpc { enum class encoding : uint64_t {" in text
    assert "yas_binary = 1, yas_compressed_binary = 2, yas_json = 8, protocol_buffers = 16" in text


def test_idl_guide_example_includes_macros() -> None:
    guide = EXAMPLES / "idl_guide.idl"
    result = preprocess(guide)
    macros = str(EXAMPLES / "macros.idl")
    assert [(line.file, line.line) for line in result.lines[:4]] == [
        (str(guide), 1),
        (str(guide), 2),
        (macros, 1),
        (macros, 2),
    ]
    assert set(result.sources) == {str(guide), macros}
    assert "namespace guide" in result.text
    assert result.imports == ()


def test_macros_from_the_example_are_defined_for_later_lines() -> None:
    result = run('#include "macros.idl"\nint tags[GUIDE_MAX_TAGS];', EXAMPLES / "use.idl")
    assert result.lines[-1] == SourceLine("int tags[16];", str(EXAMPLES / "use.idl"), 2)


def test_inference_example_imports_the_shipped_types() -> None:
    path = EXAMPLES / "inference.idl"
    result = preprocess(path)
    assert result.imports == (
        ImportDirective(
            BUILTIN_DIR / "rpc" / "rpc_types.idl", "rpc/rpc_types.idl", Location(str(path), 3, 1)
        ),
    )
    assert result.imports[0].path.is_file()
    assert len(result.lines) == len(path.read_text(encoding="utf-8").splitlines())


def test_a_long_file_keeps_every_line() -> None:
    unit = (
        "// a comment line\n"
        '[description="a // string"] /* block */\n'
        "error_code call(T a, PAIR(T, T) b, [out] std::string& r);\n"
        "#if defined(T) && WIDTH > 16\n"
        "int32_t wide;\n"
        "#endif\n"
        "/* two\n lines */ struct s { int v = 1; };\n"
        "interface i_x { error_code f(int a); };\n"
    )
    source = "#define T int32_t\n#define WIDTH 32\n#define PAIR(a, b) a, b\n" + unit * 560
    assert source.count("\n") > 5000
    result = run(source)
    assert len(result.lines) == source.count("\n")
    assert result.lines[-1].text.strip() == "interface i_x { error_code f(int a); };"
