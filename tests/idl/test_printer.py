"""The printer: printed IDL compiles back to an equal model with the same ids."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

import canopy.idl
from canopy.idl import (
    Direction,
    Enum,
    ErrorDomain,
    Interface,
    Model,
    Namespace,
    Passing,
    Struct,
    compile_file,
    compile_text,
    fingerprint,
    print_model,
)
from contract import EXAMPLES
from idl_strategies import idl_sources, string_literal


def ids(model: Model) -> dict[str, int]:
    return {
        d.qualified_name: fingerprint(model, d)
        for d in model.walk(include_imported=True)
        if isinstance(d, Interface | Struct | Enum | ErrorDomain)
    }


def round_trip(model: Model) -> str:
    """Print ``model``, compile the text, check both models agree; the text."""
    text = print_model(model)
    again = compile_text(text, filename=model.path)
    assert again.definitions == model.definitions
    assert again.imports == model.imports
    assert ids(again) == ids(model)
    # Printing is a fixed point: the printed form of the reprinted model is the same text.
    assert print_model(again) == text
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(idl_sources())
def test_any_valid_source_round_trips(source: str) -> None:
    round_trip(compile_text(source))


@pytest.mark.parametrize("name", ["calculator", "idl_guide", "inference", "macros"])
def test_examples_round_trip(name: str) -> None:
    round_trip(compile_file(EXAMPLES / f"{name}.idl"))


def test_imports_are_printed_and_imported_definitions_are_not() -> None:
    model = compile_file(EXAMPLES / "inference.idl")
    text = round_trip(model)
    assert text.startswith(f'#import "{model.imports[0]}"\n')
    assert "yas_binary" not in text
    assert "namespace inference" in text


def test_both_spellings_of_an_inline_namespace_round_trip() -> None:
    source = """
        [inline] namespace a { struct s1 {}; }
        inline namespace b { struct s2 {}; }
        [inline] inline namespace c { struct s3 {}; }
        [description="plain"] namespace d { struct s4 {}; }
    """
    text = round_trip(compile_text(source))
    assert "[inline] namespace a" in text
    assert "inline namespace b" in text and "[inline] inline" not in text
    assert "[inline] namespace c" in text
    assert '[description="plain"] namespace d' in text


def test_reopened_and_nested_namespaces_print_merged() -> None:
    source = """
        namespace a::b { struct x {}; }
        namespace a { inline namespace b { struct y { x first; }; } }
    """
    model = compile_text(source)
    text = round_trip(model)
    assert text.count("namespace b") == 1
    outer = model.definitions[0]
    assert isinstance(outer, Namespace)
    inner = outer.members[0]
    assert isinstance(inner, Namespace) and inner.inline
    assert "::a::b::x first;" in text


def test_directions_and_passing_round_trip() -> None:
    source = """
        interface i_peer {};
        interface i_all {
            error_code f(int a, const std::string& b, std::string& c, std::string&& d,
                         const int e, [in] int g, [out] int& h, [in, out] int& k,
                         [out, description="x"] std::string& m,
                         [out] rpc::shared_ptr<i_peer>& n, rpc::optimistic_ptr<i_all> o);
        };
    """
    model = compile_text(source)
    text = round_trip(model)
    i = model.lookup("i_all")
    assert isinstance(i, Interface)
    params = {p.name: (p.direction, p.passing) for p in i.methods[0].parameters}
    assert params["b"] == (Direction.IN, Passing.CONST_REF)
    assert params["d"] == (Direction.IN, Passing.RVALUE)
    assert params["e"] == (Direction.IN, Passing.CONST_VALUE)
    assert params["k"] == (Direction.IN_OUT, Passing.REF)
    assert '[out, description="x"] std::string& m' in text
    assert "[in]" not in text


def test_defaults_that_need_care_round_trip() -> None:
    source = """
        enum class color : uint8_t { red = 2, green, blue = 7 };
        namespace n { enum plain { one, two }; }
        struct s {
            double inf = 1e999;
            double ninf = -1e999;
            double nzero = -0.0;
            float tenth = 0.1;
            double big = 1e300;
            int64_t low = -9223372036854775808;
            unsigned __int128 high = 0xffffffffffffffffffffffffffffffff;
            std::string text = "q\\"b\\\\ \\x85\\x41 \\t // not /* a */ comment";
            color c = blue;
            n::plain p = n::plain::one;
            std::vector<color> cs = {red, color::green};
            std::array<int, 2> pair = {1, 2};
            rpc::optional<int> none = nullptr;
            std::map<int, int> empty = {};
            rpc::variant<bool, std::string> v = false;
        };
    """
    text = round_trip(compile_text(source))
    assert "1e999" in text and "-0.0" in text
    assert "::color::blue" in text
    assert "green," in text and "green =" not in text


def test_private_and_protected_sections_round_trip() -> None:
    source = """
        struct base { int a; };
        struct s : base {
            int b;
        private:
            int c;
            int d;
        protected:
            int e;
        public:
            int f;
            static constexpr int limit = 4;
        };
        template<typename T, class U> struct pair { T first; rpc::optional<U> second; };
        typedef pair<int, base> int_base;
        using pairs = std::vector<pair<std::string, s>>;
    """
    text = round_trip(compile_text(source))
    assert text.count("private:") == 1 and text.count("protected:") == 1
    assert "static constexpr int32_t limit = 4;" in text
    assert "template<typename T, typename U>" in text


def test_error_domains_and_attributes_round_trip() -> None:
    source = """
        [status=production, description="Failures"] error failures { busy, gone = 10, late };
        [status="demo", x_flag, x_ratio=2.5, x_count=-3, x_yes=true, x_word=true_ish,
         x_scoped=a::b]
        interface i_x {
            [post, tag=7, deprecated] error_code ping(const std::string& s);
            [const] failures state([out] int& n);
        };
    """
    text = round_trip(compile_text(source))
    assert "[status=production" in text
    assert 'x_word="true_ish"' in text and 'x_scoped="a::b"' in text


@pytest.mark.parametrize(
    "text",
    ["", "plain", 'q"uote', "back\\slash", "\n\r\t\x00\x7f", "\x85A", "\u2028", "\x0b7f", "ü ✓ 🌲"],
)
def test_string_literals_read_back_as_the_same_text(text: str) -> None:
    from canopy.idl._printer import value_text

    for literal in (value_text(text), string_literal(text)):
        model = compile_text(f"struct s {{ std::string v = {literal}; }};")
        s = model.lookup("s")
        assert isinstance(s, Struct)
        assert s.fields[0].default == text


def test_print_model_is_exported() -> None:
    assert canopy.idl.print_model is print_model
    assert "print_model" in canopy.idl.__all__
