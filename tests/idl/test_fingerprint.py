"""Interface and struct ids: what changes them and what does not."""

from __future__ import annotations

from canopy.idl import compile_text, fingerprint, hash_seed

CALC = """
namespace calculator {
    [inline] namespace v1 {
        [status=production, description="Calculator"]
        interface i_calculator {
            [description="Adds"] error_code add(int a, int b, [out] int& result);
            [post] error_code log(const std::string& message);
        };
        struct point { int x = 1; std::string label; };
        interface i_plotter : i_calculator {
            error_code plot(const point& p);
        };
    }
}
"""


def ids(text: str) -> dict[str, int]:
    model = compile_text(text)
    return {d.qualified_name: fingerprint(model, d) for d in model.interfaces() + model.structs()}


def test_empty_seed_gives_the_published_constant() -> None:
    assert hash_seed("") == 7410425521722818471 == 0x66D71EBFF8C6FFA7


def test_ids_are_64_bit_and_deterministic() -> None:
    first, second = ids(CALC), ids(CALC)
    assert first == second
    assert all(0 <= v < 2**64 for v in first.values())
    assert len(set(first.values())) == len(first)


def test_description_deprecated_and_status_change_no_id() -> None:
    changed = CALC.replace(
        'description="Adds"', 'description="Adds two numbers", deprecated'
    ).replace("status=production, ", "status=deprecated, ")
    assert ids(changed) == ids(CALC)


def test_comments_and_whitespace_change_no_id() -> None:
    assert ids("// header\n" + CALC.replace("    ", "\t")) == ids(CALC)


def test_parameter_type_changes_the_id() -> None:
    before = ids(CALC)
    after = ids(CALC.replace("error_code add(int a", "error_code add(int64_t a"))
    assert after["calculator::v1::i_calculator"] != before["calculator::v1::i_calculator"]


def test_parameter_name_direction_and_post_change_the_id() -> None:
    base = ids(CALC)["calculator::v1::i_calculator"]
    for old, new in [
        ("int b,", "int c,"),
        ("int b,", "[out] int& b,"),
        ("[post] error_code log", "error_code log"),
        ("[post] error_code log", "[post, tag=3] error_code log"),
    ]:
        assert ids(CALC.replace(old, new))["calculator::v1::i_calculator"] != base, new


def test_method_order_is_part_of_the_contract() -> None:
    swapped = CALC.replace(
        '[description="Adds"] error_code add(int a, int b, [out] int& result);\n'
        "            [post] error_code log(const std::string& message);",
        "[post] error_code log(const std::string& message);\n"
        '            [description="Adds"] error_code add(int a, int b, [out] int& result);',
    )
    assert swapped != CALC
    assert ids(swapped)["calculator::v1::i_calculator"] != ids(CALC)["calculator::v1::i_calculator"]


def test_method_ids_are_declaration_order() -> None:
    model = compile_text(CALC)
    calc = model.lookup("calculator::i_calculator")
    assert [(m.name, m.id) for m in calc.methods] == [("add", 1), ("log", 2)]  # type: ignore[union-attr]


def test_a_change_below_a_definition_reaches_it() -> None:
    before = ids(CALC)
    after = ids(CALC.replace("int x = 1;", "int x = 2;"))
    assert after["calculator::v1::point"] != before["calculator::v1::point"]
    # i_plotter takes a point, and derives from i_calculator: both reach it.
    assert after["calculator::v1::i_plotter"] != before["calculator::v1::i_plotter"]
    assert after["calculator::v1::i_calculator"] == before["calculator::v1::i_calculator"]
    based = ids(CALC.replace("int b,", "int c,"))
    assert based["calculator::v1::i_plotter"] != before["calculator::v1::i_plotter"]


def test_version_namespace_is_part_of_the_id() -> None:
    assert (
        ids(CALC.replace("v1", "v2"))["calculator::v2::i_calculator"]
        != (ids(CALC)["calculator::v1::i_calculator"])
    )


def test_typedef_is_transparent() -> None:
    direct = compile_text("struct s { std::vector<int> v; };")
    via = compile_text("typedef std::vector<int> ints; struct s { ints v; };")
    assert fingerprint(direct, "s") == fingerprint(via, "s")


def test_recursive_struct_has_a_fingerprint() -> None:
    model = compile_text("struct tree { std::vector<tree> children; int value; };")
    assert fingerprint(model, "tree") == fingerprint(model, "tree") > 0
