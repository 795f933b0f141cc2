"""The language as Canopy users write it, including what the examples do not show."""

from __future__ import annotations

from pathlib import Path

import pytest

from canopy.idl import (
    Access,
    ArrayType,
    Direction,
    Enum,
    ErrorDomain,
    Interface,
    InterfaceType,
    JsonType,
    MapKind,
    MapType,
    Model,
    NamedType,
    NullableType,
    OptionalType,
    Passing,
    Primitive,
    PrimitiveType,
    SetKind,
    SetType,
    Struct,
    TemplateParamType,
    Typedef,
    VariantType,
    VectorType,
    compile_file,
    compile_text,
)
from canopy.idl._model import EnumValueRef
from contract import EXAMPLES, PACKAGED_EXAMPLES, SHARED_EXAMPLES


def field_type(model: Model, struct: str, name: str) -> object:
    s = model.lookup(struct)
    assert isinstance(s, Struct)
    return next(f.type for f in s.fields if f.name == name)


INTEGER_SPELLINGS = {
    "bool": Primitive.BOOL,
    "char": Primitive.INT8,
    "signed char": Primitive.INT8,
    "unsigned char": Primitive.UINT8,
    "short": Primitive.INT16,
    "short int": Primitive.INT16,
    "unsigned short": Primitive.UINT16,
    "int": Primitive.INT32,
    "signed": Primitive.INT32,
    "unsigned": Primitive.UINT32,
    "unsigned int": Primitive.UINT32,
    "long": Primitive.INT64,
    "long int": Primitive.INT64,
    "long long": Primitive.INT64,
    "unsigned long long": Primitive.UINT64,
    "signed long long int": Primitive.INT64,
    "size_t": Primitive.UINT64,
    "std::size_t": Primitive.UINT64,
    "int8_t": Primitive.INT8,
    "std::uint16_t": Primitive.UINT16,
    "int32_t": Primitive.INT32,
    "uint64_t": Primitive.UINT64,
    "__int128": Primitive.INT128,
    "unsigned __int128": Primitive.UINT128,
    "int128_t": Primitive.INT128,
    "uint128_t": Primitive.UINT128,
    "float": Primitive.FLOAT,
    "double": Primitive.DOUBLE,
    "std::string": Primitive.STRING,
    "error_code": Primitive.ERROR_CODE,
}


@pytest.mark.parametrize("spelling, kind", INTEGER_SPELLINGS.items())
def test_builtin_spellings(spelling: str, kind: Primitive) -> None:
    model = compile_text(f"struct s {{ {spelling} v; }};")
    assert field_type(model, "s", "v") == PrimitiveType(kind)


def test_containers_and_wrappers() -> None:
    model = compile_text(
        """
        struct item { int id; };
        struct s {
            std::vector<std::vector<unsigned long long>> grid;
            std::array<uint8_t, 16> digest;
            std::map<std::string, item> by_name;
            std::unordered_map<int, double> u;
            std::flat_map<int, int> f;
            std::set<int> ids;
            std::unordered_set<std::string> names;
            rpc::optional<std::vector<std::string>> stops;
            rpc::nullable<item> maybe;
            rpc::variant<int32_t, std::string, item> choice;
            json::v1::object extra;
        };
        """
    )
    u64 = PrimitiveType(Primitive.UINT64)
    assert field_type(model, "s", "grid") == VectorType(VectorType(u64))
    assert field_type(model, "s", "digest") == ArrayType(PrimitiveType(Primitive.UINT8), 16)
    assert field_type(model, "s", "by_name") == MapType(
        PrimitiveType(Primitive.STRING), NamedType("item")
    )
    assert field_type(model, "s", "u") == MapType(
        PrimitiveType(Primitive.INT32), PrimitiveType(Primitive.DOUBLE), MapKind.UNORDERED_MAP
    )
    assert isinstance(field_type(model, "s", "f"), MapType)
    assert field_type(model, "s", "ids") == SetType(PrimitiveType(Primitive.INT32))
    assert field_type(model, "s", "names") == SetType(
        PrimitiveType(Primitive.STRING), SetKind.UNORDERED_SET
    )
    assert field_type(model, "s", "stops") == OptionalType(
        VectorType(PrimitiveType(Primitive.STRING))
    )
    assert field_type(model, "s", "maybe") == NullableType(NamedType("item"))
    assert field_type(model, "s", "choice") == VariantType(
        (PrimitiveType(Primitive.INT32), PrimitiveType(Primitive.STRING), NamedType("item"))
    )
    assert field_type(model, "s", "extra") == JsonType()


def test_enums() -> None:
    model = compile_text(
        """
        enum plain { a, b = 5, c, };
        enum class flags : uint8_t { read = 1, write = 2, both = read | write, exec = 1 << 2 };
        enum class finish_reason { complete, error };
        enum hex : int64_t { big = 0x7fff'ffff'ffff'ffffLL, neg = -3 };
        """
    )
    plain, flags, reason, hexes = (
        model.lookup(n) for n in ("plain", "flags", "finish_reason", "hex")
    )
    assert isinstance(plain, Enum) and isinstance(flags, Enum)
    assert isinstance(reason, Enum) and isinstance(hexes, Enum)
    assert [(v.name, v.value, v.explicit) for v in plain.values] == [
        ("a", 0, False),
        ("b", 5, True),
        ("c", 6, False),
    ]
    assert not plain.is_class and plain.underlying is None
    assert flags.is_class and flags.underlying is Primitive.UINT8
    assert [v.value for v in flags.values] == [1, 2, 3, 4]
    assert [v.name for v in reason.values] == ["complete", "error"]
    assert [v.value for v in hexes.values] == [2**63 - 1, -3]


def test_error_domains_typedefs_and_error_code() -> None:
    model = compile_text(
        """
        typedef int error_code;
        namespace calc {
            error calc_error { [description="bad input"] INVALID_ARGUMENT, OVERFLOW, LATE = 10, };
            typedef std::vector<int> ints;
            using names = std::vector<std::string>;
            interface i { calc_error divide(int a, int b, [out] ints& q); error_code ping(); };
        }
        """
    )
    domain = model.lookup("calc::calc_error")
    assert isinstance(domain, ErrorDomain)
    assert [(v.name, v.code) for v in domain.values] == [
        ("INVALID_ARGUMENT", 1),
        ("OVERFLOW", 2),
        ("LATE", 10),
    ]
    assert domain.values[0].attributes.description == "bad input"
    assert isinstance(model.lookup("calc::names"), Typedef)
    i = model.lookup("calc::i")
    assert isinstance(i, Interface)
    assert i.methods[0].return_type == NamedType("calc::calc_error")
    assert i.methods[0].parameters[2].type == NamedType("calc::ints")


def test_structs() -> None:
    model = compile_text(
        """
        namespace geo {
            struct base { int id = 0; };
            template<typename T, class U> struct pair { T first; U second; };
            [description="A point"]
            struct point : base {
                static constexpr int dimensions = 2;
                static const int version = 1;
            public:
                [description="x coordinate"] double x = 0.5;
                double y{};
                pair<int, std::string> tag;
            private:
                std::string secret = "s\\"q\\n";
            };
        }
        """
    )
    point = model.lookup("geo::point")
    assert isinstance(point, Struct)
    assert point.base == "geo::base"
    assert [(c.name, c.value) for c in point.constants] == [("dimensions", 2), ("version", 1)]
    assert [(f.name, f.access) for f in point.fields] == [
        ("x", Access.PUBLIC),
        ("y", Access.PUBLIC),
        ("tag", Access.PUBLIC),
        ("secret", Access.PRIVATE),
    ]
    assert point.fields[0].attributes.description == "x coordinate"
    assert point.fields[1].default == 0.0
    assert point.fields[3].default == 's"q\n'
    assert point.fields[2].type == NamedType(
        "geo::pair", (PrimitiveType(Primitive.INT32), PrimitiveType(Primitive.STRING))
    )
    pair = model.lookup("geo::pair")
    assert isinstance(pair, Struct)
    assert pair.template_params == ("T", "U")
    assert pair.fields[0].type == TemplateParamType("T")


def test_interfaces_methods_and_parameters() -> None:
    model = compile_text(
        """
        namespace app {
            interface i_base { error_code ping(); };
            interface i_other { error_code pong(); };
            [description="Does things"]
            interface i_thing : public i_base, i_other {
                static constexpr uint32_t version = 3;
                [post, tag=7] error_code notify(const std::string& what);
                [const, description="Read it"] error_code get([out] std::string& value);
                [deprecated] error_code old(int x);
                error_code move(std::vector<int>&& v, const int c, int& r, [in, out] int& both,
                                [in] const rpc::shared_ptr<i_base> owner,
                                [out] rpc::optimistic_ptr<i_other>& watcher);
            };
        }
        """
    )
    thing = model.lookup("app::i_thing")
    assert isinstance(thing, Interface)
    assert thing.bases == ("app::i_base", "app::i_other")
    notify, get, old, move = thing.methods
    assert [m.id for m in thing.methods] == [1, 2, 3, 4]
    assert notify.is_post and notify.tag == 7
    assert get.is_const and get.description == "Read it"
    assert old.deprecated and not get.deprecated
    assert [(p.name, p.direction, p.passing) for p in move.parameters] == [
        ("v", Direction.IN, Passing.RVALUE),
        ("c", Direction.IN, Passing.CONST_VALUE),
        ("r", Direction.IN, Passing.REF),
        ("both", Direction.IN_OUT, Passing.REF),
        ("owner", Direction.IN, Passing.CONST_VALUE),
        ("watcher", Direction.OUT, Passing.REF),
    ]
    assert move.parameters[4].type == InterfaceType("app::i_base", owning=True)
    assert move.parameters[5].type == InterfaceType("app::i_other", owning=False)
    assert [p.name for p in move.inputs] == ["v", "c", "r", "both", "owner"]
    assert [p.name for p in move.outputs] == ["both", "watcher"]


def test_namespaces_inline_nested_and_reopened() -> None:
    model = compile_text(
        """
        [description="Top"] namespace top {
            [inline] namespace v1 { struct a {}; }
            inline namespace v2 { struct b {}; }
        }
        namespace top::inner { struct c { top::a x; ::top::b y; }; }
        namespace top { struct d { inner::c z; }; }
        """
    )
    assert model.lookup("top::a") is model.lookup("top::v1::a")
    assert model.lookup("top::b") is model.lookup("top::v2::b")
    assert field_type(model, "top::inner::c", "x") == NamedType("top::v1::a")
    assert field_type(model, "top::d", "z") == NamedType("top::inner::c")
    tops = [d for d in model.definitions if d.name == "top"]
    assert len(tops) == 1  # reopened namespaces merge


def test_defaults() -> None:
    model = compile_text(
        """
        #define LIMIT 16
        enum encoding : uint64_t { yas_binary = 1, yas_json = 8 };
        struct s {
            encoding preferred = encoding::yas_binary;
            encoding short_form = yas_json;
            int limit = LIMIT * 2;
            rpc::optional<uint32_t> max_tokens = 512;
            rpc::optional<float> temperature = 0.7;
            std::vector<int> empty = {};
            std::vector<int> some = {1, 2, -3};
            bool flag = true;
            double ratio = 1e-3;
        };
        """
    )
    s = model.lookup("s")
    assert isinstance(s, Struct)
    assert [f.default for f in s.fields] == [
        EnumValueRef("encoding", "yas_binary"),
        EnumValueRef("encoding", "yas_json"),
        32,
        512,
        0.7,
        (),
        (1, 2, -3),
        True,
        0.001,
    ]


def test_error_is_a_keyword_only_where_a_definition_starts() -> None:
    model = compile_text("enum class e { ok, error };\nstruct s { int error = 1; };")
    assert [v.name for v in model.lookup("e").values] == ["ok", "error"]  # type: ignore[union-attr]


def test_quotes_and_comments_are_ignored() -> None:
    model = compile_text(
        """
        #cpp_quote(R"__(
            #include <vector>   // C++ only )( "
        )__")
        #rust_quote("use std::vec::Vec;")
        /* a block
           comment */ struct s { int x; }; // trailing
        #pragma once
        """
    )
    assert [d.name for d in model.definitions] == ["s"]


def test_rpc_types_import_works_from_anywhere(tmp_path: Path) -> None:
    (tmp_path / "svc.idl").write_text(
        '#import "rpc/rpc_types.idl"\nstruct s { rpc::encoding e = rpc::encoding::yas_json; };\n'
    )
    model = compile_file(tmp_path / "svc.idl")
    assert [d.name for d in model.walk()] == ["s"]
    assert model.imports and model.imports[0].endswith("rpc/rpc_types.idl")
    assert isinstance(model.lookup("rpc::encoding"), Enum)


def test_import_makes_types_known_without_generating_them(tmp_path: Path) -> None:
    (tmp_path / "types.idl").write_text("namespace shared { struct point { int x; }; }\n")
    (tmp_path / "svc.idl").write_text(
        '#import "types.idl"\nnamespace svc { struct s { shared::point p; }; }\n'
    )
    model = compile_file(tmp_path / "svc.idl")
    assert [d.qualified_name for d in model.walk()] == ["svc", "svc::s"]
    assert [d.qualified_name for d in model.walk(include_imported=True)] == [
        "shared",
        "shared::point",
        "svc",
        "svc::s",
    ]


def test_defines_from_the_command_line() -> None:
    text = (
        "#if defined(WIDE) && WIDTH > 32\n"
        "struct s { int64_t v; };\n"
        "#else\n"
        "struct s { int v; };\n"
        "#endif"
    )
    wide = compile_text(text, defines={"WIDE": "1", "WIDTH": "64"})
    narrow = compile_text(text)
    assert field_type(wide, "s", "v") == PrimitiveType(Primitive.INT64)
    assert field_type(narrow, "s", "v") == PrimitiveType(Primitive.INT32)


@pytest.mark.parametrize("name", ["calculator.idl", "idl_guide.idl", "inference.idl", "macros.idl"])
def test_examples_compile(name: str) -> None:
    path = EXAMPLES / name
    model = compile_file(path)
    assert model.path == str(path)


def test_packaged_examples_are_the_contract() -> None:
    if not SHARED_EXAMPLES.is_dir():
        pytest.skip("shared/idl/examples is not beside this checkout")
    for contract in sorted(SHARED_EXAMPLES.glob("*.idl")):
        packaged = PACKAGED_EXAMPLES / contract.name
        assert packaged.read_text(encoding="utf-8") == contract.read_text(encoding="utf-8")


def test_inference_example_model() -> None:
    path = EXAMPLES / "inference.idl"
    model = compile_file(path)
    names = [i.qualified_name for i in model.interfaces()]
    assert names == [
        "inference::v1::i_token_sink",
        "inference::v1::i_session",
        "inference::v1::i_inference_service",
    ]
    sink = model.lookup("inference::i_token_sink")
    assert isinstance(sink, Interface)
    assert sink.methods[0].is_post and sink.methods[0].return_type == PrimitiveType(Primitive.INT32)
    session = model.lookup("inference::i_session")
    assert isinstance(session, Interface)
    assert session.methods[0].parameters[2].type == InterfaceType(
        "inference::v1::i_token_sink", owning=False
    )
