"""Each semantic check of the IDL front end, on its exact message and location."""

from __future__ import annotations

from pathlib import Path

import pytest

from canopy.idl import EnumValueRef, IdlError, Struct, compile_file, compile_text


def errors(text: str) -> list[str]:
    """The head line (location and message) of every diagnostic for ``text``."""
    with pytest.raises(IdlError) as caught:
        compile_text(text, filename="t.idl")
    return [d.format().splitlines()[0] for d in caught.value.diagnostics]


CASES = {
    "std::optional": (
        "struct s { std::optional<int> x; };",
        ["t.idl:1:12: error: std::optional is not allowed: use rpc::optional<T>"],
    ),
    "std::variant": (
        "struct s { std::variant<int, std::string> x; };",
        ["t.idl:1:12: error: std::variant is not allowed: use rpc::variant<T...>"],
    ),
    "raw pointer": (
        "interface i { error_code f(int* p); };",
        [
            "t.idl:1:28: error: raw pointers are not allowed: an address has no meaning in another"
            " address space; pass the value, or an interface as rpc::shared_ptr<I> or"
            " rpc::optimistic_ptr<I>"
        ],
    ),
    "[in, out] shared_ptr": (
        "interface i { error_code f([in, out] rpc::shared_ptr<i>& p); };",
        [
            "t.idl:1:28: error: [in, out] is not allowed on rpc::shared_ptr parameter 'p':"
            " interface pointers are [in] or [out]"
        ],
    ),
    "[in, out] optimistic_ptr": (
        "interface i { error_code f([in, out] rpc::optimistic_ptr<i>& p); };",
        [
            "t.idl:1:28: error: [in, out] is not allowed on rpc::optimistic_ptr parameter 'p':"
            " interface pointers are [in] or [out]"
        ],
    ),
    "[post] with [out]": (
        "interface i { [post] error_code f([out] int& x); };",
        [
            "t.idl:1:35: error: [post] method 'i::f' cannot have [out] parameter 'x': a post has"
            " no reply; make it a normal method or drop the parameter"
        ],
    ),
    "[post] with an interface": (
        "interface i { [post] error_code f(const rpc::optimistic_ptr<i>& p); };",
        [
            "t.idl:1:35: error: [post] method 'i::f' cannot pass interface pointers (parameter"
            " 'p'): a post has no reply to confirm the reference; make it a normal method"
        ],
    ),
    "[post] with an interface inside a struct": (
        "struct h { rpc::shared_ptr<i> p; };\n"
        "interface i { [post] error_code f(const std::vector<h>& v); };",
        [
            "t.idl:2:35: error: [post] method 'i::f' cannot pass interface pointers (parameter"
            " 'v'): a post has no reply to confirm the reference; make it a normal method"
        ],
    ),
    "unknown type, near miss": (
        "struct config {};\nstruct s { confgi c; };",
        ["t.idl:2:12: error: unknown type 'confgi'; did you mean 'config'?"],
    ),
    "unknown type, known misspelling": (
        "struct s { string c; };",
        ["t.idl:1:12: error: unknown type 'string': write std::string"],
    ),
    "unknown type, nothing close": (
        "struct s { zzz c; };",
        [
            "t.idl:1:12: error: unknown type 'zzz'; a type is a built-in (int32_t, std::string,"
            " ...), a container (std::vector<T>, std::map<K, V>, ...) or a struct, enum or"
            " typedef declared before use or imported with #import"
        ],
    ),
    "unknown interface": (
        "interface i { error_code f(rpc::shared_ptr<i_nope> p); };",
        ["t.idl:1:28: error: unknown interface 'i_nope'"],
    ),
    "duplicate symbol": (
        "namespace a { struct s {}; }\nnamespace a { enum s { x }; }",
        ["t.idl:2:15: error: duplicate definition of 'a::s' (first defined at t.idl:1:15)"],
    ),
    "duplicate field": (
        "struct s { int a; int a; };",
        ["t.idl:1:19: error: duplicate field 'a' in struct 's'"],
    ),
    "duplicate method": (
        "interface i { error_code f(); error_code f(int x); };",
        [
            "t.idl:1:31: error: duplicate method 'f' in interface 'i' (first at t.idl:1:15):"
            " overloads are not allowed, methods are called by name"
        ],
    ),
    "enum value too large": (
        "enum e : uint8_t { a = 255, b };",
        [
            "t.idl:1:29: error: enum value 'e::b' = 256 does not fit the underlying type uint8_t"
            " (0..255)"
        ],
    ),
    "enum value negative for unsigned": (
        "enum class e : uint16_t { a = -1 };",
        [
            "t.idl:1:27: error: enum value 'e::a' = -1 does not fit the underlying type uint16_t"
            " (0..65535)"
        ],
    ),
    "default of the wrong type": (
        'struct s { int timeout = "abc"; };',
        [
            "t.idl:1:12: error: default value \"abc\" does not fit field 'timeout' of type"
            " int32_t (-2147483648..2147483647)"
        ],
    ),
    "default out of range": (
        "struct s { uint8_t small = 300; };",
        [
            "t.idl:1:12: error: default value 300 does not fit field 'small' of type uint8_t"
            " (0..255)"
        ],
    ),
    "default naming a missing enum value": (
        "enum class e { a, b };\nstruct s { e x = e::c; };",
        [
            "t.idl:2:12: error: default value of field 'x' is not a constant: enum 'e' has no"
            " value 'c' (it has a, b)"
        ],
    ),
    "interface by value": (
        "interface i { error_code f(i x); };",
        [
            "t.idl:1:28: error: interface 'i' cannot be passed by value: use rpc::shared_ptr<i>"
            " (owning) or rpc::optimistic_ptr<i> (non-owning)"
        ],
    ),
    "result type": (
        "interface i { std::string f(); };",
        [
            "t.idl:1:15: error: method 'i::f' returns std::string: a method returns error_code,"
            " an integer error code or an error domain; pass results through [out] parameters"
        ],
    ),
    "error code repeated": (
        "error e { A, B = 1 };",
        [
            "t.idl:1:14: error: error 'e::B' repeats code 1 of 'A': each error value needs its"
            " own code"
        ],
    ),
    "error code not positive": (
        "error e { A = 0 };",
        [
            "t.idl:1:11: error: error 'e::A' has code 0: application error codes are positive"
            " (negative codes belong to the framework, 0 is OK)"
        ],
    ),
    "template arity": (
        "template<typename T> struct box { T v; };\nstruct s { box<int, int> b; };",
        ["t.idl:2:12: error: template struct 'box' takes 1 type argument(s) <T>, got 2"],
    ),
    "inheritance cycle": (
        "struct a : b {};\nstruct b : a {};",
        [
            "t.idl:1:1: error: struct 'a' inherits from itself",
            "t.idl:2:1: error: struct 'b' inherits from itself",
        ],
    ),
    "unknown status": (
        "[status=prod] interface i {};",
        [
            "t.idl:1:2: error: unknown status 'prod': use one of development, demo, production,"
            " deprecated"
        ],
    ),
    "tag not an integer": (
        'interface i { [tag="x"] error_code f(); };',
        ["t.idl:1:16: error: [tag] needs an integer value, got 'x'"],
    ),
    "variant repeats a type": (
        "struct s { rpc::variant<int, int32_t> v; };",
        ["t.idl:1:12: error: rpc::variant lists the same type twice: each alternative must differ"],
    ),
    "syntax error": (
        "struct s { int x }",
        ["t.idl:1:18: error: syntax error: unexpected '}'; expected ';' or '=' or '{'"],
    ),
}


@pytest.mark.parametrize("text, expected", CASES.values(), ids=CASES.keys())
def test_check_message(text: str, expected: list[str]) -> None:
    assert errors(text) == expected


def test_diagnostic_shows_the_line_with_a_caret() -> None:
    with pytest.raises(IdlError) as caught:
        compile_text("namespace n {\n  struct s { std::optional<int> x; };\n}", filename="t.idl")
    assert str(caught.value) == (
        "t.idl:2:14: error: std::optional is not allowed: use rpc::optional<T>\n"
        "      struct s { std::optional<int> x; };\n"
        "                 ^"
    )


def test_every_error_of_a_file_is_reported() -> None:
    text = (
        "struct s { std::optional<int> x; foo y; };\n"
        "interface i { [post] error_code f([out] int& x); };\n"
        "enum e : int8_t { big = 1000 };"
    )
    found = errors(text)
    assert len(found) == 4
    assert [line.split(": error: ")[0] for line in found] == [
        "t.idl:1:12",
        "t.idl:1:34",
        "t.idl:2:35",
        "t.idl:3:19",
    ]
    with pytest.raises(IdlError) as caught:
        compile_text(text, filename="t.idl")
    assert str(caught.value).endswith("\n4 errors")


def test_duplicate_symbols_when_a_file_is_included_twice(tmp_path: Path) -> None:
    root = tmp_path
    (root / "types.idl").write_text("namespace shared {\n  struct point { int x; };\n}\n")
    (root / "main.idl").write_text('#include "types.idl"\n#include "types.idl"\n')
    with pytest.raises(IdlError) as caught:
        compile_file(root / "main.idl")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.message.startswith("duplicate definition of 'shared::point'")
    assert diagnostic.location.file.endswith("types.idl")


def test_import_cycle(tmp_path: Path) -> None:
    root = tmp_path
    (root / "a.idl").write_text('#import "b.idl"\nstruct a {};\n')
    (root / "b.idl").write_text('#import "a.idl"\nstruct b {};\n')
    with pytest.raises(IdlError) as caught:
        compile_file(root / "a.idl")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.message == (
        "import cycle: a.idl -> b.idl -> a.idl; move the shared types to a file both import"
    )
    assert diagnostic.location.file.endswith("b.idl")
    assert diagnostic.location.line == 1


def test_enum_values_resolve_through_typedefs_in_wrappers() -> None:
    model = compile_text(
        "enum class color { red, green };\ntypedef color c_t;\n"
        "struct s { rpc::optional<c_t> x = red; std::vector<c_t> y = {green, red}; };"
    )
    s = model.lookup("s")
    assert isinstance(s, Struct)
    assert [f.default for f in s.fields] == [
        EnumValueRef("color", "red"),
        (EnumValueRef("color", "green"), EnumValueRef("color", "red")),
    ]


def test_in_out_interface_pointer_behind_a_typedef_is_refused() -> None:
    assert errors(
        "interface i {};\ntypedef rpc::shared_ptr<i> p;\n"
        "interface j { error_code f([in, out] p& x); };"
    ) == [
        "t.idl:3:28: error: [in, out] is not allowed on rpc::shared_ptr parameter 'x':"
        " interface pointers are [in] or [out]"
    ]


def test_unscoped_enum_values_are_named_through_their_namespace() -> None:
    model = compile_text(
        "namespace n { enum plain { one, two }; }\nstruct s { n::plain p = n::two; };"
    )
    s = model.lookup("s")
    assert isinstance(s, Struct)
    assert s.fields[0].default == EnumValueRef("n::plain", "two")


def test_a_struct_uses_its_own_constants_by_bare_name() -> None:
    model = compile_text(
        "struct k { static constexpr int n = 4; static constexpr int m = n * 2; int x = m + 1; };"
    )
    k = model.lookup("k")
    assert isinstance(k, Struct)
    assert [c.value for c in k.constants] == [4, 8]
    assert k.fields[0].default == 9
