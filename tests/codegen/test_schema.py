"""The JSON Schema generator: the walkthrough's fragments, every document valid draft-07,
every value the JSON encoder writes valid against its type's schema in both profiles
(and the config profile refusing what the decoder refuses), defaults as the encoder
writes them, cross-file references, recursion and the ``--schema`` command."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urljoin

import msgspec
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator, ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT7

from canopy.cli import main
from canopy.codegen import CodegenError, load_python
from canopy.codegen.schema import (
    DRAFT_07,
    MethodSchema,
    complete_inputs,
    generate_schemas,
    method_schemas,
    struct_schema,
    write_schemas,
)
from canopy.errors import InvalidData
from canopy.idl import Interface, Model, Struct, compile_file, compile_text
from canopy.wire import codec
from contract import PACKAGED_EXAMPLES, SHARED_EXAMPLES
from idl_strategies import idl_sources
from type_matrix import MATRIX_IDL, values

TESTS = Path(__file__).resolve().parents[1]
IDL_FILES = sorted(
    [
        *PACKAGED_EXAMPLES.glob("*.idl"),
        *(SHARED_EXAMPLES.glob("*.idl") if SHARED_EXAMPLES.is_dir() else []),
        MATRIX_IDL,
        TESTS / "behaviour.idl",
    ]
)
INFERENCE = PACKAGED_EXAMPLES / "inference.idl"


def label(path: Path) -> str:
    where = {PACKAGED_EXAMPLES: "packaged", SHARED_EXAMPLES: "shared", TESTS: "tests"}
    return f"{where[path.parent]}/{path.name}"


FAST = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# The walkthrough, Step 5, as printed: the config profile of generation_options and
# the MCP profile of i_session.generate (both fragments).
GENERATION_OPTIONS = json.loads("""
{ "$schema": "http://json-schema.org/draft-07/schema#", "title": "generation_options",
  "properties": {
    "max_tokens": { "type": "integer", "default": 512,
                    "description": "Maximum tokens to generate" },
    "temperature": { "type": "number", "default": 0.7,
                     "description": "Sampling temperature 0.0\u20132.0" } },
  "additionalProperties": false }
""")
GENERATE_TOOL = json.loads("""
{ "name": "i_session.generate",
  "inputSchema": {
    "type": "object",
    "properties": {
      "prompt": { "type": "string", "description": "The prompt text" },
      "options": {
        "type": "object",
        "properties": {
          "max_tokens": { "type": "integer", "description": "Maximum tokens to generate" },
          "temperature": { "type": "number",
                           "description": "Sampling temperature 0.0\u20132.0" } } } },
    "required": ["prompt"] } }
""")


def contains(whole: Any, fragment: Any, path: str = "$") -> None:
    """Fail unless ``whole`` holds everything ``fragment`` states. A fragment's ``type``
    may be one of several ours allows: the codec also writes ``null`` for an optional
    that holds nothing and NaN as a string, so those fields accept more than a number."""
    if isinstance(fragment, dict):
        assert isinstance(whole, dict), path
        for key, value in fragment.items():
            assert key in whole, f"{path}.{key} missing"
            if key == "type" and isinstance(whole[key], list) and isinstance(value, str):
                assert value in whole[key], f"{path}.type: {whole[key]} lacks {value}"
            else:
                contains(whole[key], value, f"{path}.{key}")
    else:
        assert whole == fragment, f"{path}: {whole!r} != {fragment!r}"


def walk(schema: Any) -> Iterator[dict[str, Any]]:
    """Every object inside a schema, the schema itself included."""
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from walk(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from walk(value)


def registry(model: Model) -> Registry[Any]:
    """Every config-profile document of ``model``, each found by its ``$id``."""
    documents = [json.loads(text) for text in generate_schemas(model).values()]
    return Registry().with_resources(
        (d["$id"], DRAFT7.create_resource(d)) for d in documents if "$id" in d
    )


def validator(schema: dict[str, Any], model: Model) -> Draft7Validator:
    return Draft7Validator(schema, registry=registry(model))


def mcp_tool(model: Model, interface: str, name: str) -> MethodSchema:
    [found] = [m for m in method_schemas(model, interface, "mcp") if m.name == name]
    return found


# ---------------------------------------------------------------- the walkthrough


def test_the_config_profile_of_generation_options_is_the_walkthroughs() -> None:
    schema = struct_schema(compile_file(INFERENCE), "inference::v1::generation_options")
    contains(schema, GENERATION_OPTIONS)
    assert schema["type"] == "object" and "required" not in schema  # every field optional
    # Where the fragment says "integer" or "number", the codec also writes null (an
    # optional that holds nothing) and NaN or an infinity as a string.
    assert schema["properties"]["max_tokens"]["type"] == ["integer", "null"]
    assert schema["properties"]["temperature"]["type"] == ["number", "string", "null"]
    assert schema["properties"]["max_tokens"]["maximum"] == (1 << 32) - 1


def test_the_mcp_profile_of_i_session_generate_is_the_walkthroughs() -> None:
    # The walkthrough's IDL gives ``prompt`` no [description], though its fragment
    # shows one; with the attribute added, the fragment is reproduced whole.
    source = INFERENCE.read_text(encoding="utf-8")
    described = source.replace(
        "const std::string& prompt", '[description="The prompt text"] const std::string& prompt'
    )
    assert described != source
    model = compile_text(described, filename="inference.idl")
    contains(mcp_tool(model, "inference::i_session", "generate").tool(), GENERATE_TOOL)

    plain = mcp_tool(compile_file(INFERENCE), "inference::i_session", "generate").tool()
    without = json.loads(json.dumps(GENERATE_TOOL))
    del without["inputSchema"]["properties"]["prompt"]["description"]
    contains(plain, without)
    assert plain["inputSchema"]["required"] == ["prompt"]


def test_the_mcp_profile_inlines_everything_and_states_no_default() -> None:
    for path in IDL_FILES:
        model = compile_file(path)
        mcp = json.loads(generate_schemas(model)[f"{path.stem}.mcp.json"])
        schemas = [mcp]
        for i in model.interfaces():
            schemas += [m.tool() for m in method_schemas(model, i, "mcp")]
        for s in model.structs():
            if not s.is_template:
                schemas.append(struct_schema(model, s.qualified_name, "mcp"))
        for schema in schemas:
            for node in walk(schema):
                assert not {"$ref", "$id", "default", "definitions"} & set(node), (path, node)


def test_the_config_profile_states_defaults_as_the_encoder_writes_them() -> None:
    guide = struct_schema(compile_file(PACKAGED_EXAMPLES / "idl_guide.idl"), "guide::nested")
    assert guide["definitions"]["guide.config"]["properties"]["name"]["default"] == "default"
    preferred = guide["properties"]["preferred"]
    assert preferred == {
        "allOf": [{"$ref": "#/definitions/guide.encoding"}],
        "default": "yas_binary",
    }
    enums = struct_schema(compile_file(MATRIX_IDL), "matrix::enums")["properties"]
    assert enums["c"]["default"] == "red" and enums["b"]["default"] == "small"
    assert enums["wire"] == {
        "allOf": [{"$ref": "rpc.rpc_types.schema.json#/definitions/rpc.encoding"}],
        "default": "yas_binary",
    }


# ---------------------------------------------------------------- every document is draft-07


def all_schemas(model: Model) -> Iterator[dict[str, Any]]:
    """Every document the generator makes for ``model``, in both profiles."""
    for text in generate_schemas(model).values():
        document = json.loads(text)
        if "$schema" in document:
            yield document
        else:  # the MCP file: its struct schemas and its tools' schemas
            yield from document["structs"].values()
            for entry in document["interfaces"].values():
                for tool in entry["tools"]:
                    yield tool["inputSchema"]
                    yield tool["outputSchema"]
    for profile in ("config", "mcp"):
        for s in model.structs():
            if not s.is_template:
                yield struct_schema(model, s.qualified_name, profile)
        for i in model.interfaces():
            for m in method_schemas(model, i, profile):
                yield m.inputs
                yield m.outputs


def check_references(schema: dict[str, Any], model: Model) -> None:
    """Every ``$ref`` in ``schema`` leads to a schema."""
    uri = schema.get("$id", "")
    resolver = registry(model).with_resource(uri, DRAFT7.create_resource(schema)).resolver(uri)
    for node in walk(schema):
        if "$ref" in node:
            target = resolver.lookup(node["$ref"]).contents
            assert isinstance(target, dict), node["$ref"]


@pytest.mark.parametrize("path", IDL_FILES, ids=label)
def test_every_schema_is_valid_draft_07_and_its_references_resolve(path: Path) -> None:
    model = compile_file(path)
    for schema in all_schemas(model):
        Draft7Validator.check_schema(schema)
        check_references(schema, model)


# ---------------------------------------------------------------- encoder output validates


def find(package: ModuleType, qualified_name: str) -> Any:
    # Definitions outside any namespace live in the package named after the file.
    value: Any = package if "::" in qualified_name else package.t
    for part in qualified_name.split("::"):
        value = getattr(value, part, None) or getattr(value, part + "_")
    return value


def typed_schemas(path: Path) -> Iterator[tuple[str, Any, dict[str, Any], dict[str, Any]]]:
    """Every struct and method record of a file: a name, its Python type, and its config
    and MCP schemas."""
    model = compile_file(path)
    package = load_python(model)
    for s in model.structs():
        if not s.is_template:
            cls = find(package, s.qualified_name)
            config = struct_schema(model, s.qualified_name)
            yield s.qualified_name, cls, config, struct_schema(model, s.qualified_name, "mcp")
    for i in model.interfaces():
        info = find(package, i.qualified_name).__canopy__
        records = {m.name: m for m in info.methods}
        mcp = {(m.interface, m.name): m for m in method_schemas(model, i, "mcp")}
        for m in method_schemas(model, i):
            if m.interface != i.qualified_name:
                continue  # tested with the interface that declares it
            record = records[m.name]
            other = mcp[(m.interface, m.name)]
            name = f"{m.interface}.{m.name}"
            yield f"{name} inputs", record.in_type, m.inputs, other.inputs
            yield f"{name} outputs", record.out_type, m.outputs, other.outputs


MODELS = {path: compile_file(path) for path in IDL_FILES}
TYPED = {(path, name): rest for path in IDL_FILES for name, *rest in typed_schemas(path)}
CASES = list(TYPED)


@pytest.mark.parametrize(("path", "name"), CASES, ids=[f"{label(p)}:{n}" for p, n in CASES])
def test_every_value_the_encoder_writes_validates_in_both_profiles(path: Path, name: str) -> None:
    type_, config, mcp = TYPED[(path, name)]
    model = MODELS[path]
    encode = codec("json").encoder(type_)
    config_validator, mcp_validator = validator(config, model), Draft7Validator(mcp)
    heavy = "everything" in name or "i_matrix.all" in name

    @settings(FAST, max_examples=6 if heavy else 25)
    @given(value=values(type_))
    def check(value: Any) -> None:
        written = json.loads(encode(value))
        config_validator.validate(written)
        mcp_validator.validate(written)

    check()


def test_the_type_matrix_is_covered() -> None:
    names = {n for p, n in CASES if p == MATRIX_IDL}
    assert {"matrix::everything", "matrix::tree", "matrix::i_matrix.all inputs"} <= names
    assert len(CASES) > 60


# ---------------------------------------------------------------- the config profile refuses


MATRIX = compile_file(MATRIX_IDL)
MATRIX_PACKAGE = load_python(MATRIX)
INTEGERS = ["i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "i128", "u128", "code"]
REFUSED = [
    ("matrix::leaf", {"name": "a", "n": 1, "extra": 2}, None),  # the decoder ignores it
    ("matrix::leaf", {"name": 5}, "Expected `str`"),
    ("matrix::leaf", {"n": 1}, "missing required field `name`"),
    ("matrix::leaf", {"name": "a", "n": 1 << 31}, "int32"),
    ("matrix::leaf", {"name": "a", "n": 1.5}, "int32"),
    ("matrix::integers", {**dict.fromkeys(INTEGERS, 0), "u8": -1}, "uint8"),
    ("matrix::integers", {**dict.fromkeys(INTEGERS, 0), "u128": 1 << 128}, "uint128"),
    ("matrix::floats", {"f": "nan", "d": 1.0}, "float"),
    ("matrix::floats", {"f": True, "d": 1.0}, "float"),
    ("matrix::texts", {"s": "", "b": "AQ=", "c": "", "fixed": "AAAAAA==", "flag": True}, "base64"),
    ("matrix::texts", {"s": "", "b": "", "c": "", "fixed": "AAAA", "flag": True}, "length"),
    ("matrix::enums", {"lvl": 99, "n": "ok", "f": "BROKEN", "palette": []}, "values"),
    ("matrix::enums", {"lvl": True, "n": "ok", "f": "BROKEN", "palette": []}, "name of"),
    ("matrix::enums", {"lvl": "middle", "n": "ok", "f": "BROKEN", "palette": []}, "name of"),
    (
        "matrix::variants",
        {"colliding": {"0": 1, "1": 2}, "mixed": {"0": ""}, "odd": {"2": 1}},
        "variant",
    ),
    ("matrix::variants", {"colliding": {"2": 1}, "mixed": {"0": ""}, "odd": {"2": 1}}, "variant"),
    ("matrix::refs", {"shared": {"zone": 1}, "weak": None, "many": []}, "missing required field"),
    ("matrix::optionals", {"nullable_text": None, "maybe": "x"}, "int32"),
    ("matrix::optionals", {"maybe": 1}, "missing required field `nullable_text`"),
]


@pytest.mark.parametrize(("name", "value", "message"), REFUSED)
def test_the_config_profile_refuses_what_does_not_fit(
    name: str, value: dict[str, Any], message: str | None
) -> None:
    schema = struct_schema(MATRIX, name)
    assert not validator(schema, MATRIX).is_valid(value)
    decode = codec("json").decoder(find(MATRIX_PACKAGE, name))
    if message is None:
        decode(json.dumps(value).encode())  # read, the unknown property dropped
    else:
        with pytest.raises(InvalidData, match=message):
            decode(json.dumps(value).encode())


def test_the_config_profile_reads_what_the_decoder_reads() -> None:
    schema = struct_schema(MATRIX, "matrix::optionals")
    value = {
        "nullable_text": None,
        "maybe": None,
        "with_default": None,
        "maybe_variant": {"1": "x"},
    }
    assert validator(schema, MATRIX).is_valid(value)
    codec("json").decoder(MATRIX_PACKAGE.matrix.optionals)(json.dumps(value).encode())


# ---------------------------------------------------------------- defaults


DEFAULTS = """
namespace d
{
    enum class colour { red = 1, green = 2, verde = 2 };
    enum class level { low, high };
    struct inner { int32_t a = 1; };
    struct s
    {
        static constexpr int32_t K = 9;
        int32_t k = K;
        int64_t sum = K + 1;
        std::vector<uint8_t> raw = {1, 2, 255};
        std::vector<char> chars = {-1, 65};
        std::array<uint8_t, 4> fixed = {7, 0, 0, 1};
        std::array<uint8_t, 2> no_bytes = {};
        std::array<int16_t, 3> triple = {};
        std::vector<std::string> words = {"a", "b"};
        std::set<int32_t> numbers = {3, 1, 3};
        std::map<std::string, int32_t> by_name = {};
        std::map<int32_t, bool> by_id = {};
        colour c = colour::verde;
        level lv = {};
        double f = 1;
        float g = 0.5;
        bool flag = true;
        std::string text = {};
        rpc::optional<std::string> label = "x";
        inner nested = {};
        rpc::variant<int32_t, std::string> choice = 4;
        json::v1::object anything = {};
    };
}
"""


def defaults_of(model: Model, package: ModuleType) -> Iterator[tuple[str, str, Any, Any]]:
    """For every field whose schema states a default: where, and that default beside
    what the JSON encoder writes for the Python class's default."""
    for s in model.structs():
        if s.is_template:
            continue
        cls = find(package, s.qualified_name)
        properties = struct_schema(model, s.qualified_name)["properties"]
        for f in msgspec.structs.fields(cls):
            stated = properties[f.encode_name].get("default", msgspec.UNSET)
            if stated is msgspec.UNSET:
                continue
            default = f.default if f.default_factory is msgspec.NODEFAULT else f.default_factory()
            written = json.loads(codec("json").encoder(f.type)(default))
            yield s.qualified_name, f.encode_name, stated, written


def test_every_stated_default_is_what_the_encoder_writes() -> None:
    seen = 0
    models = [*MODELS.values(), compile_text(DEFAULTS, filename="defaults.idl")]
    for model in models:
        for where, field, stated, written in defaults_of(model, load_python(model)):
            assert stated == written, (where, field)
            seen += 1
    assert seen >= 30


def test_defaults_the_schema_can_state_are_stated() -> None:
    model = compile_text(DEFAULTS, filename="defaults.idl")
    properties = struct_schema(model, "d::s")["properties"]
    stated = {name: p["default"] for name, p in properties.items() if "default" in p}
    assert stated == {
        "k": 9,
        "sum": 10,
        "raw": "AQL/",
        "chars": "/0E=",
        "fixed": "BwAAAQ==",
        "no_bytes": "AAA=",
        "triple": [0, 0, 0],
        "words": ["a", "b"],
        "numbers": [1, 3],
        "by_name": {},
        "by_id": [],
        "c": "green",
        "lv": "low",
        "f": 1.0,
        "g": 0.5,
        "flag": True,
        "text": "",
        "label": "x",
    }  # not `nested`, `choice` or `anything`: a struct's, a variant's, a JSON value's


# ---------------------------------------------------------------- references and recursion


def test_a_struct_of_an_imported_file_is_referenced_by_its_documents_id(tmp_path: Path) -> None:
    (tmp_path / "geo").mkdir()
    (tmp_path / "geo" / "shapes.idl").write_text(
        "namespace shapes { struct point { int32_t x; int32_t y = 2; }; }", encoding="utf-8"
    )
    (tmp_path / "scene.idl").write_text(
        '#import "geo/shapes.idl"\n#import "rpc/rpc_types.idl"\n'
        "namespace scene { struct view { shapes::point origin; "
        "std::vector<shapes::point> path; rpc::encoding wire = rpc::encoding::yas_json; }; }",
        encoding="utf-8",
    )
    model = compile_file(tmp_path / "scene.idl")
    out = tmp_path / "out"
    written = write_schemas(model, out)
    assert sorted(p.name for p in written) == [
        "geo.shapes.schema.json",
        "rpc.rpc_types.schema.json",
        "scene.mcp.json",
        "scene.schema.json",
    ]
    documents = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in written}
    shapes = documents["geo.shapes.schema.json"]
    assert shapes["$id"] == "geo.shapes.schema.json"
    assert "shapes.point" in shapes["definitions"]
    view = documents["scene.schema.json"]["definitions"]["scene.view"]["properties"]
    assert view["origin"] == {"$ref": "geo.shapes.schema.json#/definitions/shapes.point"}

    # Read from disk, as an editor would: each reference resolves by the file's URI.
    files = Registry().with_resources(
        (p.as_uri(), DRAFT7.create_resource(documents[p.name])) for p in written
    )
    root = (out / "scene.schema.json").as_uri()
    check = Draft7Validator({"$ref": urljoin(root, "#/definitions/scene.view")}, registry=files)
    assert check.is_valid({"origin": {"x": 1}, "path": [{"x": 2, "y": 3}], "wire": "yas_json"})
    assert not check.is_valid({"origin": {"y": 1}, "path": []})
    assert not check.is_valid({"origin": {"x": 1}, "path": [], "wire": "json"})

    inlined = documents["scene.mcp.json"]["structs"]["scene.view"]["properties"]["origin"]
    assert inlined["properties"]["x"]["type"] == "integer" and inlined["required"] == ["x"]


def test_a_recursive_struct_refers_to_itself_or_is_cut_once_inlined() -> None:
    config = struct_schema(MATRIX, "matrix::tree")
    assert config["properties"]["kids"]["items"] == {"$ref": "#/definitions/matrix.tree"}
    assert config["definitions"]["matrix.tree"]["properties"] == config["properties"]
    deep = {"label": "a", "kids": [{"label": "b", "kids": [{"label": "c", "kids": []}]}]}
    assert validator(config, MATRIX).is_valid(deep)
    assert not validator(config, MATRIX).is_valid({"label": "a", "kids": [{"kids": []}]})

    mcp = struct_schema(MATRIX, "matrix::tree", "mcp")
    again = mcp["properties"]["kids"]["items"]
    assert again["type"] == "object" and "same fields" in again["description"]
    assert Draft7Validator(mcp).is_valid(deep)


def test_a_template_instantiation_is_a_definition_of_its_own() -> None:
    config = struct_schema(MATRIX, "matrix::generic")
    assert config["properties"]["ints"] == {"$ref": "#/definitions/matrix.box%3Cint32_t%3E"}
    box = config["definitions"]["matrix.box<std::string>"]
    assert box["title"] == "box<std::string>" and box["required"] == ["value", "more"]
    assert validator(config, MATRIX).is_valid(
        {"ints": {"value": 1, "more": []}, "texts": {"value": "a", "more": ["b"]}}
    )
    assert not validator(config, MATRIX).is_valid(
        {"ints": {"value": "a", "more": []}, "texts": {"value": "a", "more": ["b"]}}
    )


# ---------------------------------------------------------------- methods


def test_methods_come_with_their_bases_and_tool_names() -> None:
    model = compile_file(PACKAGED_EXAMPLES / "idl_guide.idl")
    methods = method_schemas(model, "guide::i_scientific", "mcp")
    assert [m.tool_name for m in methods] == [
        "i_calculator.add",
        "i_calculator.log_event",
        "i_example.name",
        "i_example.old_name",
        "i_example.secured",
        "i_scientific.power",
    ]
    add = methods[0]
    assert add.outputs["properties"] == {
        "result": {"type": "integer", "minimum": -(1 << 31), "maximum": (1 << 31) - 1}
    }
    assert add.outputs["required"] == ["result"]  # the [out] parameters; the code is no result
    assert methods[1].post and methods[3].deprecated
    mcp = json.loads(generate_schemas(model)["idl_guide.mcp.json"])
    example = mcp["interfaces"]["guide.v1.i_example"]
    assert example["deprecated"] == ["i_example.old_name"]
    assert mcp["interfaces"]["guide.v1.i_calculator"]["description"] == "Calculator service"


def test_inputs_the_mcp_profile_lets_a_caller_leave_out_are_put_back() -> None:
    model = compile_file(INFERENCE)
    package = load_python(model)
    [generate] = [m for m in model.interfaces()[1].methods if m.name == "generate"]
    arguments = complete_inputs(model, generate, {"prompt": "Explain RAII."})
    assert arguments == {"prompt": "Explain RAII.", "options": {}, "sink": None}
    [config] = [m for m in method_schemas(model, "inference::i_session") if m.name == "generate"]
    validator(config.inputs, model).validate(arguments)
    in_type = package.inference.i_session.__canopy__.methods[0].in_type
    decoded = codec("json").decoder(in_type)(json.dumps(arguments).encode())
    assert decoded.options.max_tokens == 512 and decoded.sink is None
    with pytest.raises(InvalidData, match="missing required field `options`"):
        codec("json").decoder(in_type)(b'{"prompt": "x", "sink": null}')


def test_a_struct_parameter_with_a_required_field_stays_required() -> None:
    model = compile_file(TESTS / "behaviour.idl")
    [names] = [m for m in method_schemas(model, "behaviour::i_test", "mcp") if m.name == "names"]
    assert names.inputs["required"] == ["value"]  # holder.widget has no default
    [listen] = [m for m in method_schemas(model, "behaviour::i_test", "mcp") if m.name == "listen"]
    assert listen.inputs["required"] == ["count"]  # the listener may be left out


def test_unknown_names_and_profiles_are_refused() -> None:
    model = compile_file(INFERENCE)
    with pytest.raises(KeyError, match="no definition"):
        struct_schema(model, "inference::nothing")
    with pytest.raises(KeyError, match="not a struct"):
        struct_schema(model, "inference::i_session")
    with pytest.raises(KeyError, match="not an interface"):
        method_schemas(model, "inference::generation_options")
    with pytest.raises(ValueError, match="unknown schema profile"):
        struct_schema(model, "inference::generation_options", "yaml")  # type: ignore[arg-type]
    with pytest.raises(CodegenError, match="per instantiation"):
        struct_schema(MATRIX, "matrix::box")


# ---------------------------------------------------------------- random IDL


@settings(FAST, max_examples=25)
@given(source=idl_sources(max_definitions=8), data=st.data())
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_random_idl_gives_valid_schemas_its_values_fit(source: str, data: st.DataObject) -> None:
    model = compile_text(source, filename="t.idl")
    try:
        package = load_python(model)
    except CodegenError:
        reject()  # a model Python cannot express
    for d in model.walk():
        if isinstance(d, Struct) and not d.is_template:
            cls = find(package, d.qualified_name)
            config = struct_schema(model, d.qualified_name)
            mcp = struct_schema(model, d.qualified_name, "mcp")
            for schema in (config, mcp):
                Draft7Validator.check_schema(schema)
            written = json.loads(codec("json").encoder(cls)(data.draw(values(cls))))
            validator(config, model).validate(written)
            Draft7Validator(mcp).validate(written)
        elif isinstance(d, Interface):
            for m in method_schemas(model, d):
                Draft7Validator.check_schema(m.inputs)
                Draft7Validator.check_schema(m.outputs)


# ---------------------------------------------------------------- the command


def test_canopy_generate_schema_writes_the_documents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "schemas"
    args = ["generate", str(INFERENCE), "--schema", "-o", str(out)]
    assert main([*args, "--checksums", str(tmp_path / "sums")]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out / 'inference.schema.json'}" in printed
    assert f"wrote {out / 'inference.mcp.json'}" in printed
    assert sorted(p.name for p in out.iterdir()) == ["inference.mcp.json", "inference.schema.json"]
    config = json.loads((out / "inference.schema.json").read_text(encoding="utf-8"))
    assert config["$schema"] == DRAFT_07 and config["$id"] == "inference.schema.json"
    Draft7Validator.check_schema(config)
    mcp = json.loads((out / "inference.mcp.json").read_text(encoding="utf-8"))
    tools = [tool["name"] for tool in mcp["interfaces"]["inference.v1.i_session"]["tools"]]
    assert tools == ["i_session.generate", "i_session.cancel"]

    with pytest.raises(SystemExit):
        main([*args, "--proto"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_config_profile_takes_an_enums_number_as_the_decoder_does() -> None:
    """Names in both profiles; numbers in the config profile only, and the JSON decoder
    reads either."""
    model = compile_file(MATRIX_IDL)
    config = struct_schema(model, "matrix::enums")
    mcp = struct_schema(model, "matrix::enums", "mcp")
    cls = find(load_python(model), "matrix::enums")
    by_number = {"lvl": 1, "n": "ok", "f": "BROKEN", "palette": []}
    validator(config, model).validate(by_number)
    with pytest.raises(ValidationError):
        Draft7Validator(mcp).validate(by_number)
    decoded = codec("json").decoder(cls)(json.dumps(by_number).encode())
    assert decoded.lvl == 1 and decoded.lvl.name == "high"
