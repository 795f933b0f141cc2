"""The IDL compiler fuzzed: arbitrary text and mutated valid IDL give a model or an
``IdlError`` whose every diagnostic has a location, never another exception; and
``canopy generate`` on a garbage file exits non-zero with an error line, no traceback.
fuzz/run.py idl runs the same check for as long as one likes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canopy.idl import IdlError, Model, compile_text
from idl_strategies import idl_sources

BOUNDED = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TOKENS = [
    "{", "}", ";", "<", ">", "::", "=", "[post]", "[out]", "#import", "#include", "#define X",
    "#if", "#endif", "namespace", "interface", "struct", "enum class", "rpc::variant<",
    "std::vector<", "/*", '"', "R\"(", "\x00", "\u202e", "9" * 40, "-", "&",
]  # fmt: skip


def compiles_or_says_where(text: str, tmp: Path) -> Model | IdlError:
    try:
        return compile_text(text, filename=str(tmp / "fuzz.idl"))
    except IdlError as e:
        assert e.diagnostics
        for d in e.diagnostics:
            assert d.location.file, d
            assert d.location.line >= 1, d  # in-memory text: always a real line
            assert d.message
        assert "Traceback" not in e.format()
        return e


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-idl")  # empty: relative #includes find nothing


@BOUNDED
@given(text=st.text(max_size=200) | st.lists(st.sampled_from(TOKENS), max_size=30).map(" ".join))
def test_any_text_compiles_or_raises_idl_error(where: Path, text: str) -> None:
    compiles_or_says_where(text, where)


@st.composite
def mutated_idl(draw: st.DrawFn) -> str:
    text = draw(idl_sources(max_definitions=6))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        how = draw(st.sampled_from(["cut", "delete", "insert", "duplicate"]))
        if how == "cut":
            text = text[:i]
        elif how == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 20)) :]
        elif how == "insert":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
        else:
            text = text[:i] + text[i : i + draw(st.integers(1, 60))] + text[i:]
    return text


@BOUNDED
@given(text=mutated_idl())
def test_mutated_valid_idl_compiles_or_raises_idl_error(where: Path, text: str) -> None:
    compiles_or_says_where(text, where)


@pytest.mark.parametrize(
    "text",
    [
        "{" * 5000,
        "namespace a {" * 2000,
        "struct s { std::vector<" + "std::vector<" * 2000 + "int32_t" + ">" * 2001 + " v; };",
        "#if " + "(" * 5000 + "1" + ")" * 5000 + "\n#endif\n",
        "#define A B\n#define B A\nstruct A {};",
        "enum e { a = " + "9" * 5000 + " };",
    ],
    ids=["braces", "namespaces", "vectors", "if-parens", "macro-loop", "huge-number"],
)
def test_deep_or_huge_input_is_a_model_or_an_idl_error(where: Path, text: str) -> None:
    compiles_or_says_where(text, where)


def test_types_nested_past_the_stack_are_refused_where_they_are_deepest(where: Path) -> None:
    # Was a RecursionError out of the parse tree's builder.
    text = "struct s\n{\n  std::vector<" + "std::vector<" * 400 + "int32_t" + ">" * 401 + " v;\n};"
    error = compiles_or_says_where(text, where)
    assert isinstance(error, IdlError)
    [d] = error.diagnostics
    assert (d.location.line, d.location.column) == (3, len("  std::vector<") + 12 * 400)
    assert "nested 402 levels deep" in d.message and "typedef" in d.message


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("enum e { a = " + "9" * 5000 + " };", 14),  # past Python's int digits limit
        ('struct s { std::string x = "\\x110000"; };', 28),  # past the last code point
    ],
    ids=["5000-digits", "escape-past-unicode"],
)
def test_a_literal_python_cannot_hold_is_an_idl_error(where: Path, text: str, column: int) -> None:
    # Were a ValueError out of the parse tree's builder.
    error = compiles_or_says_where(text, where)
    assert isinstance(error, IdlError)
    [d] = error.diagnostics
    assert (d.location.line, d.location.column) == (1, column)
    assert d.message.startswith("invalid value: ")


@pytest.mark.parametrize(
    "content",
    [b"garbage \x01 }}{{\n", b"\xff\xfe\x00bad", b"interface i { error_code f(; };", b"\x00" * 64],
    ids=["syntax", "not-utf8", "cut-method", "nul-bytes"],
)
def test_canopy_generate_on_garbage_exits_with_an_error_line(
    tmp_path: Path, content: bytes
) -> None:
    idl = tmp_path / "garbage.idl"
    idl.write_bytes(content)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", "import sys, canopy.cli; sys.exit(canopy.cli.main())",
         "generate", str(idl), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith(f"{idl}:") and ": error: " in first, done.stderr
    assert len(done.stderr.splitlines()) <= 3  # the error, then the line and its caret
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("directive", ["#import", "#include"])
@pytest.mark.parametrize("name", ["a" * 300, "/" + "a" * 300], ids=["relative", "absolute"])
def test_a_file_name_too_long_for_the_system_is_not_found(
    where: Path, directive: str, name: str
) -> None:
    # Was an OSError (ENAMETOOLONG) out of Path.is_file; found by fuzz/run.py idl.
    error = compiles_or_says_where(f'{directive} "{name}"\n', where)
    assert isinstance(error, IdlError)
    [d] = error.diagnostics
    assert d.location.line == 1 and d.message.startswith(f'cannot find "{name}"')
