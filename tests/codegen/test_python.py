"""The Python generator: generated modules for the IDL examples and for models that
exercise every construct, checked by ruff, mypy --strict, and by running them."""

from __future__ import annotations

import asyncio
import enum
import inspect
import re
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest

from canopy.codegen import CodegenError, generate_python, load_python, write_python
from canopy.errors import ApplicationError, InvalidData
from canopy.generated import (
    Alt0,
    Alt1,
    Encoding,
    Interface,
    InterfaceInfo,
    MethodInfo,
    decode,
    encode,
    int128,
    uint8,
    uint64,
    validate,
)
from canopy.idl import (
    Attribute,
    Attributes,
    Direction,
    EnumValue,
    ErrorDomain,
    ErrorValue,
    Field,
    Location,
    Method,
    Model,
    NamedType,
    Namespace,
    Parameter,
    Primitive,
    PrimitiveType,
    Struct,
    VariantType,
    compile_file,
    compile_text,
    fingerprint,
)
from canopy.idl import Enum as IdlEnum
from canopy.idl import Interface as IdlInterface
from contract import EXAMPLES

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
INT32 = PrimitiveType(Primitive.INT32)
STRING = PrimitiveType(Primitive.STRING)

# One file with every construct the examples leave out.
CONSTRUCTS = """
namespace calc
{
    [description="Calculator failures"]
    error calc_error { DIVIDE_BY_ZERO = 1, OVERFLOW };

    template<typename T> struct box { T value; std::vector<T> more; };
    typedef box<int> int_box;
    typedef std::vector<uint8_t> blob;

    struct base_s
    {
        static constexpr uint8_t LIMIT = 4;
        uint64_t big = 5;
        uint8_t small = base_s::LIMIT;
        box<int> zero = {};
    };

    [deprecated]
    struct derived_s : base_s
    {
        __int128 huge = 0;
        unsigned __int128 uhuge = 1;
        std::array<int16_t, 3> triple = {1, 2, 3};
        std::array<uint8_t, 4> mac;
        std::set<std::string> names;
        rpc::nullable<std::string> maybe;
        json::v1::object extra;
        rpc::variant<int32_t, int64_t> either;
        int_box boxed;
        blob data;
        std::string from = "x";
        std::unordered_map<uint32_t, box<std::string>> table;
    };

    interface i_calc
    {
        calc_error divide(int a, int b, [out] int& q, [in, out] int& r);
        error_code list([in] std::vector<std::string> in, [out] std::vector<std::string>& out);
    };

    [status=deprecated]
    interface i_old
    {
        error_code ping();
    };

    [inline] namespace v1
    {
        [description="TICKET_DESCRIPTION"]
        struct ticket
        {
            std::string api_token = "t0k";
            [description="LEVEL_DESCRIPTION"]
            int level = 0;
            base_s base;
            rpc::shared_ptr<i_calc> owner;
        };

        interface i_more : i_calc
        {
            static constexpr int VERSION = 2;
            [description="Does more."]
            error_code more([description="the input"] int x, [out] ticket& t);
        };
    }

    struct after { ticket t; v1::ticket same; };

    namespace util
    {
        [description="How fast"]
        enum class mode { fast, slow = 5, slower };
        struct uses { mode m = mode::slower; int x = v1::i_more::VERSION; };
    }
}

struct at_global { int x = 1; calc::box<std::string> named; };
""".replace(
    "TICKET_DESCRIPTION",
    "A ticket names its owner; this description is long enough to need its own line in the output.",
).replace(
    "LEVEL_DESCRIPTION",
    "A member description far too long to fit on one line of generated Python, so the file "
    "says E501.",
)


# ---------------------------------------------------------------- helpers


def hand_model(*definitions: Any, path: str = "hand.idl") -> Model:
    """A checked model built without the parser: qualified names already resolved."""
    index: dict[str, Any] = {}

    def visit(members: tuple[Any, ...]) -> None:
        for d in members:
            index[d.qualified_name] = d
            if isinstance(d, Namespace):
                visit(d.members)

    visit(definitions)
    return Model(path, definitions, index=index)


def method(name: str, id: int, *params: Parameter, **attributes: Any) -> Method:
    attrs = Attributes(tuple(Attribute(k, v) for k, v in attributes.items()))
    return Method(name, id, PrimitiveType(Primitive.ERROR_CODE), params, attrs)


def param(name: str, t: Any, direction: Direction = Direction.IN) -> Parameter:
    return Parameter(name, t, direction)


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m <args>`` in ``cwd``; the caller checks the outcome."""
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def example(name: str) -> Model:
    return compile_file(EXAMPLES / f"{name}.idl")


def constructs_model(tmp_path: Path) -> Model:
    path = tmp_path / "constructs.idl"
    path.write_text(CONSTRUCTS)
    return compile_file(path)


@pytest.fixture(scope="module")
def calculator() -> ModuleType:
    module: ModuleType = load_python(example("calculator")).calculator
    return module


@pytest.fixture(scope="module")
def guide() -> ModuleType:
    module: ModuleType = load_python(example("idl_guide")).guide
    return module


@pytest.fixture(scope="module")
def inference() -> ModuleType:
    module: ModuleType = load_python(example("inference")).inference
    return module


@pytest.fixture(scope="module")
def constructs(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return load_python(constructs_model(tmp_path_factory.mktemp("constructs")))


@pytest.fixture(autouse=True)
def _deprecations_are_errors() -> Iterator[None]:
    # A deprecation warning that a test does not expect fails it.
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        yield


# ---------------------------------------------------------------- ruff and mypy

USER_OK = """
from __future__ import annotations

import calculator
import calculator.v1
import guide
import guide.v2
import inference
from canopy.generated import Alt0, Alt1


class Calc(calculator.i_calculator):
    def add(self, a: int, b: int) -> int:
        return a + b


class Divider(guide.v2.i_calculator):
    def add(self, a: int, b: int) -> int:
        return a + b

    def divide(self, a: int, b: int) -> guide.v2.i_calculator.divide_result:
        return guide.v2.i_calculator.divide_result(quotient=a // b, remainder=a % b)


class Sink(inference.i_token_sink):
    def on_token(self, token: str) -> None:
        pass

    def on_finish(self, reason: inference.finish_reason, tokens_generated: int) -> None:
        pass


same: bool = calculator.i_calculator is calculator.v1.i_calculator
total: int = Calc().add(1, 2)
quotient, remainder = Divider().divide(7, 2)
checked: int = quotient + remainder
options = inference.generation_options(max_tokens=None)
tokens: int | None = options.max_tokens
selector: Alt0[int] | Alt1[str] = guide.request_options(selector=Alt1("x")).selector
config = guide.config(tags=["a"], name_to_id={"a": 1})
nested = guide.nested(settings=config, history=[], preferred=guide.encoding.yas_json)
methods: tuple[str, ...] = tuple(m.name for m in guide.i_scientific.__canopy__.methods)
Sink().on_finish(inference.finish_reason.complete, 3)
"""

# Each line marked ``# E: code`` must be a mypy error with that code, and no other
# line may be one.
USER_BAD = """
from __future__ import annotations

import calculator
import guide
import inference


class Calc(calculator.i_calculator):
    def add(self, a: int, b: int) -> int:
        return a + b


Calc().add("1", 2)  # E: arg-type
Calc().add(1)  # E: call-arg
guide.config(name=3, tags=[], name_to_id={})  # E: arg-type
guide.config(name="x")  # E: call-arg
inference.generation_options(max_tokens="many")  # E: arg-type
guide.v1.i_example()  # E: abstract
text: str = guide.v2.i_calculator.divide_result(1, 2).quotient  # E: assignment
"""


@pytest.fixture(scope="module")
def checked_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generated")
    for name in ("calculator", "idl_guide", "inference", "macros"):
        write_python(example(name), root)
    (root / "user_ok.py").write_text(USER_OK)
    (root / "user_bad.py").write_text(USER_BAD)
    return root


@pytest.fixture(scope="module")
def mypy_output(checked_tree: Path) -> str:
    # One run over everything: mypy is the slow part of this file.
    mypy = ["-m", "mypy", "--strict", "--no-error-summary", "--cache-dir", ".mypy_cache"]
    result = run(
        checked_tree, *mypy, "calculator", "guide", "inference", "user_ok.py", "user_bad.py"
    )
    return result.stdout + result.stderr


def test_generated_examples_pass_ruff_with_the_project_config(checked_tree: Path) -> None:
    ruff = ["-m", "ruff", "check", "--no-cache", "--config", str(PYPROJECT)]
    result = run(checked_tree, *ruff, "calculator", "guide", "inference")
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_examples_pass_mypy_strict(mypy_output: str) -> None:
    errors = [line for line in mypy_output.splitlines() if not line.startswith("user_bad.py")]
    assert errors == []


def test_mypy_reports_exactly_the_marked_user_errors(mypy_output: str) -> None:
    expected = {
        (number, code)
        for number, line in enumerate(USER_BAD.splitlines(), start=1)
        if (match := re.search(r"# E: ([\w-]+)", line)) is not None
        for code in [match.group(1)]
    }
    reported = {
        (int(m.group(1)), m.group(2))
        for m in re.finditer(r"^user_bad\.py:(\d+): error: .*\[([\w-]+)\]$", mypy_output, re.M)
    }
    assert reported == expected, mypy_output


def test_written_packages_import_from_disk(checked_tree: Path) -> None:
    script = textwrap.dedent(
        """
        import calculator, guide, inference
        assert calculator.i_calculator is calculator.v1.i_calculator
        assert guide.i_calculator is guide.v1.i_calculator
        assert guide.v2.i_calculator is not guide.i_calculator
        assert inference.i_session is inference.v1.i_session
        import user_ok
        assert user_ok.total == 3
        print("ok")
        """
    )
    result = run(checked_tree, "-W", "error", "-c", script)
    assert result.stdout.strip() == "ok", result.stderr


def test_constructs_pass_ruff_and_mypy(tmp_path: Path) -> None:
    written = write_python(constructs_model(tmp_path), tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in written] == [
        "calc/__init__.py",
        "calc/v1/__init__.py",
        "calc/util/__init__.py",
        "constructs/__init__.py",
    ]
    out = tmp_path / "out"
    ruff = run(out, "-m", "ruff", "check", "--no-cache", "--config", str(PYPROJECT), ".")
    assert ruff.returncode == 0, ruff.stdout
    mypy = run(out, "-m", "mypy", "--strict", "--cache-dir", ".mypy_cache", "calc", "constructs")
    assert mypy.returncode == 0, mypy.stdout


# ---------------------------------------------------------------- the output as text


@pytest.mark.parametrize("name", ["calculator", "idl_guide", "inference", "macros"])
def test_output_is_deterministic(name: str) -> None:
    assert generate_python(example(name)) == generate_python(example(name))


def test_every_module_has_a_header_and_an_all() -> None:
    files = generate_python(example("idl_guide"))
    assert sorted(files) == ["guide/__init__.py", "guide/v1/__init__.py", "guide/v2/__init__.py"]
    for source in files.values():
        assert source.startswith("# Generated by canopy from idl_guide.idl \u2014 do not edit.\n")
        assert "\n__all__ = [" in source
        assert str(EXAMPLES) not in source  # no absolute paths


def test_a_file_without_definitions_generates_nothing() -> None:
    assert generate_python(example("macros")) == {}


def test_ids_come_from_the_fingerprint_unless_given() -> None:
    model = example("calculator")
    expected = fingerprint(model, model.interfaces()[0])
    assert f"id={expected:#018x}," in generate_python(model)["calculator/v1/__init__.py"]
    mine = generate_python(model, ids=lambda d: 0xABC)["calculator/v1/__init__.py"]
    assert "id=0x0000000000000abc," in mine


def test_inline_namespace_is_reexported_explicitly() -> None:
    source = generate_python(example("calculator"))["calculator/__init__.py"]
    assert "from . import v1 as v1\nfrom .v1 import i_calculator as i_calculator\n" in source
    assert "from .v1 import i_calculator_async as i_calculator_async\n" in source
    assert '__all__ = ["i_calculator", "i_calculator_async", "v1"]' in source


def test_imports_of_other_files_and_of_rpc_types_are_absolute(tmp_path: Path) -> None:
    (tmp_path / "shared.idl").write_text("namespace shared { struct point { int x; }; }")
    (tmp_path / "user.idl").write_text(
        textwrap.dedent(
            """
            #import "shared.idl"
            #import "rpc/rpc_types.idl"
            namespace app
            {
                struct s { shared::point p; rpc::encoding e = rpc::encoding::yas_json; };
            }
            """
        )
    )
    written = write_python(compile_file(tmp_path / "user.idl"), tmp_path / "out")
    assert written == [tmp_path / "out" / "app" / "__init__.py"]  # nothing of imported files
    source = written[0].read_text()
    assert "from canopy.rpc_types import encoding\nfrom shared import point\n" in source
    assert "    e: encoding = encoding.yas_json\n" in source
    ruff = run(tmp_path / "out", "-m", "ruff", "check", "--no-cache", "--config", str(PYPROJECT))
    assert ruff.returncode == 0, ruff.stdout


def test_python_keywords_and_builtins_get_a_trailing_underscore(tmp_path: Path) -> None:
    source = generate_python(constructs_model(tmp_path))["calc/__init__.py"]
    assert '    from_: str = _cg.field(default="x", name="from")\n' in source
    assert "    def list_(self, in_: list[str]) -> list[str]:\n" in source
    assert 'python_name="list_",' in source


def test_long_descriptions_do_not_need_e501() -> None:
    source = generate_python(example("inference"))["inference/v1/__init__.py"]
    assert "# ruff: noqa" not in source
    assert all(len(line) <= 100 for line in source.splitlines())
    assert '_cg.Meta(description="Sampling temperature 0.0\\u20132.0"),' in source


def test_lint_exemptions_are_exactly_the_needed_ones(tmp_path: Path) -> None:
    files = generate_python(constructs_model(tmp_path))
    assert files["calc/__init__.py"].splitlines()[1] == "# ruff: noqa: E402"  # after v1
    assert files["calc/v1/__init__.py"].splitlines()[1] == "# ruff: noqa: E501"
    assert '    api_token: str = "t0k"  # noqa: S105\n' in files["calc/v1/__init__.py"]
    assert "# ruff" not in files["calc/util/__init__.py"]


def test_members_of_the_constructs_file(constructs: ModuleType) -> None:
    calc = constructs.calc
    assert calc.ticket is calc.v1.ticket
    assert [f.name for f in msgspec.structs.fields(calc.after)] == ["t", "same"]
    assert calc.after.__annotations__["same"] == "ticket"
    assert calc.v1.i_more.VERSION == 2
    assert inspect.getdoc(calc.v1.i_more.more) == "Does more.\n\nx: the input"
    assert calc.util.mode.__doc__ == "How fast"
    assert [int(m) for m in calc.util.mode] == [0, 5, 6]
    assert calc.util.uses().m is calc.util.mode.slower
    assert calc.v1.i_more.__canopy__.bases == (calc.i_calc.__canopy__,)


# ---------------------------------------------------------------- load_python


def test_load_python_builds_modules_in_memory(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    root = load_python(example("calculator"))
    assert re.fullmatch(r"canopy_idl_[0-9a-f]{8}", root.__name__)
    assert sys.modules[root.__name__] is root
    assert root.calculator.i_calculator is root.calculator.v1.i_calculator
    assert root.calculator.__spec__.origin.startswith("<canopy-generated>/")
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert load_python(example("calculator")) is root  # same sources, same package
    assert inspect.getsource(root.calculator.v1.i_calculator).startswith("class i_calculator(")


def test_load_python_resolves_references_across_top_level_packages(
    constructs: ModuleType,
) -> None:
    named = constructs.constructs.at_global.__annotations__["named"]
    assert "box" in named
    value = constructs.constructs.at_global(named=constructs.calc.box(value="a", more=[]))
    assert decode(constructs.constructs.at_global, encode(value)) == value


# ---------------------------------------------------------------- enums and errors


def test_enums_are_int_enums_with_the_written_values(
    guide: ModuleType, inference: ModuleType
) -> None:
    assert issubclass(guide.encoding, enum.IntEnum)
    assert [(m.name, m.value) for m in guide.encoding] == [
        ("yas_binary", 1),
        ("yas_json", 8),
        ("protocol_buffers", 16),
    ]
    assert [m.value for m in inference.finish_reason] == [0, 1, 2, 3]


def test_error_domain_classes_and_codes(constructs: ModuleType) -> None:
    calc_error = constructs.calc.calc_error
    assert issubclass(calc_error, ApplicationError)
    assert calc_error.domain == "calc::calc_error"
    assert calc_error.__doc__ == "Calculator failures"
    assert [(c.name, int(c)) for c in calc_error.Code] == [("DIVIDE_BY_ZERO", 1), ("OVERFLOW", 2)]
    assert issubclass(calc_error.OVERFLOW, calc_error)
    assert calc_error.OVERFLOW.code == 2
    assert calc_error.OVERFLOW.__qualname__ == "calc_error.OVERFLOW"
    assert calc_error._by_code == {1: calc_error.DIVIDE_BY_ZERO, 2: calc_error.OVERFLOW}
    with pytest.raises(calc_error) as caught:
        raise calc_error.OVERFLOW("too big")
    assert caught.value.code == 2
    assert caught.value.code_name == "OVERFLOW"
    assert str(caught.value) == "too big"
    info = constructs.calc.i_calc.__canopy__.methods[0]
    assert info.raises is calc_error


def test_error_values_that_would_hide_exception_attributes_are_refused() -> None:
    domain = ErrorDomain("bad", "ns::bad", (ErrorValue("code", 1),))
    model = hand_model(Namespace("ns", "ns", (domain,)))
    with pytest.raises(CodegenError, match="error value 'code'"):
        generate_python(model, ids=lambda d: 1)


# ---------------------------------------------------------------- structs


def test_struct_defaults(guide: ModuleType, inference: ModuleType) -> None:
    config = guide.config(tags=[], name_to_id={})
    assert (config.name, config.timeout) == ("default", 30)
    nested = guide.nested(settings=config, history=[])
    assert nested.preferred is guide.encoding.yas_binary
    options = inference.generation_options()
    assert (options.max_tokens, options.temperature, options.stop_sequences) == (512, 0.7, None)
    with pytest.raises(TypeError, match="tags"):
        guide.config(name_to_id={})  # no IDL default: required


def test_struct_metadata(guide: ModuleType, inference: ModuleType) -> None:
    assert guide.config.__doc__ == "Plain data: members, defaults, vectors, maps and nesting"
    model = example("idl_guide")
    assert guide.config.__canopy_id__ == fingerprint(model, "guide::config")
    info = msgspec.inspect.type_info(inference.generation_options)
    assert isinstance(info, msgspec.inspect.StructType)
    fields = {f.name: f for f in info.fields}
    described = fields["max_tokens"].type
    assert isinstance(described, msgspec.inspect.Metadata)
    assert described.extra_json_schema == {"description": "Maximum tokens to generate"}


def test_struct_inheritance_constants_and_mutable_defaults(constructs: ModuleType) -> None:
    calc = constructs.calc
    assert issubclass(calc.derived_s, calc.base_s)
    assert calc.base_s.LIMIT == 4
    assert calc.base_s().small == 4
    assert calc.base_s().zero == calc.box(value=0, more=[])  # C++ value-initialisation
    with pytest.warns(DeprecationWarning, match="derived_s is deprecated"):

        class _Sub(calc.derived_s):  # type: ignore[misc,name-defined]  # warns: deprecated
            pass

    values = make_derived(calc)
    other = make_derived(calc)
    values.triple.append(4)
    assert other.triple == [1, 2, 3]  # a fresh list per instance


def make_derived(calc: ModuleType, **changes: Any) -> Any:
    fields: dict[str, Any] = {
        "mac": b"abcd",
        "names": {"a"},
        "maybe": None,
        "extra": {"k": [1, None]},
        "either": Alt0(1),
        "boxed": calc.box(value=1, more=[2]),
        "data": b"",
        "table": {},
    }
    fields.update(changes)
    return calc.derived_s(**fields)


def test_template_instantiation_and_wire_names(constructs: ModuleType) -> None:
    calc = constructs.calc
    value = make_derived(calc, table={7: calc.box(value="s", more=["t"])})
    data = encode(value, "json")
    assert b'"from":"x"' in data
    assert decode(calc.derived_s, data, "json") == value
    assert decode(calc.derived_s, encode(value)) == value


def test_variant_keeps_the_alternative_index(constructs: ModuleType) -> None:
    calc = constructs.calc
    as_int32 = make_derived(calc, either=Alt0(5))
    as_int64 = make_derived(calc, either=Alt1(5))
    assert b'"either":{"0":5}' in encode(as_int32, "json")
    assert b'"either":{"1":5}' in encode(as_int64, "json")
    assert decode(calc.derived_s, encode(as_int64)).either == Alt1(5)
    with pytest.raises(InvalidData, match=r"\$\.either"):
        encode(make_derived(calc, either=Alt0(1 << 40)))  # too big for the int32 alternative
    assert encode(make_derived(calc, either=Alt1(1 << 40)))


def test_variant_alternatives_are_limited_to_sixteen() -> None:
    big = VariantType((INT32,) * 17)
    s = Struct("s", "ns::s", (Field("v", big),))
    with pytest.raises(CodegenError, match="17 alternatives"):
        generate_python(hand_model(Namespace("ns", "ns", (s,))), ids=lambda d: 1)


# ---------------------------------------------------------------- integer widths


def test_out_of_range_values_are_refused_on_encode(inference: ModuleType) -> None:
    options = inference.generation_options(max_tokens=1 << 32)
    for encoding in ("binary", "json"):
        with pytest.raises(InvalidData, match=r"<= 4294967295(, got \d+)? - at `\$\.max_tokens`"):
            encode(options, encoding)
    assert decode(inference.generation_options, encode(inference.generation_options())) == (
        inference.generation_options()
    )


def test_out_of_range_values_are_refused_on_decode(inference: ModuleType) -> None:
    data = {"max_tokens": -1}
    encodings: list[tuple[Encoding, bytes]] = [
        ("binary", msgspec.msgpack.encode(data)),
        ("json", msgspec.json.encode(data)),
    ]
    for encoding, payload in encodings:
        with pytest.raises(InvalidData, match=r">= 0(, got -1)? - at `\$\.max_tokens`"):
            decode(inference.generation_options, payload, encoding)


def test_wide_integers_are_checked_by_canopy(constructs: ModuleType) -> None:
    calc = constructs.calc
    cases = {
        "big": (1 << 64, "uint64"),
        "huge": (1 << 127, "int128"),
        "uhuge": (-1, "uint128"),
    }
    for field_name, (bad, width) in cases.items():
        value = make_derived(calc, **{field_name: bad})
        with pytest.raises(InvalidData, match=rf"`{width}` .* - at `\$\.{field_name}`"):
            encode(value, "json")
        with pytest.raises(InvalidData, match=rf"`{width}`"):
            validate(value)
    data = msgspec.json.encode({**msgspec.to_builtins(make_derived(calc)), "big": 1 << 64})
    with pytest.raises(InvalidData, match=r"cannot decode derived_s: Expected `uint64`"):
        decode(calc.derived_s, data, "json")
    nested = make_derived(calc, table={1: calc.box(value="a", more=[])})
    validate(nested)  # no error


def test_128_bit_values_travel_in_every_encoding(constructs: ModuleType) -> None:
    calc = constructs.calc
    value = make_derived(calc, huge=-(1 << 100))
    encodings: list[Encoding] = ["binary", "binary_zstd", "json", "protobuf"]
    for encoding in encodings:
        assert decode(calc.derived_s, encode(value, encoding), encoding).huge == -(1 << 100)
    assert encode(-(1 << 127), "json", type=int128) == str(-(1 << 127)).encode()


def test_bare_values_take_their_type_explicitly() -> None:
    assert encode(255, type=uint8) == b"\xcc\xff"
    with pytest.raises(InvalidData, match="<= 255"):
        encode(256, type=uint8)
    with pytest.raises(InvalidData, match="uint64"):
        encode(-1, type=uint64)
    with pytest.raises(InvalidData, match="cannot decode"):
        decode(uint8, b"\xcd\x01\x00")
    with pytest.raises(ValueError, match="unknown encoding"):
        encode(1, "xml")  # type: ignore[arg-type]


# ---------------------------------------------------------------- interfaces


def test_an_implementation_subclass_instantiates(calculator: ModuleType) -> None:
    class Calc(calculator.i_calculator):  # type: ignore[misc,name-defined]
        def add(self, a: int, b: int) -> int:
            return a + b

    assert Calc().add(2, 3) == 5
    assert isinstance(Calc(), Interface)

    class Incomplete(calculator.i_calculator):  # type: ignore[misc,name-defined]
        pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


def test_interface_metadata(guide: ModuleType) -> None:
    example_info: InterfaceInfo = guide.i_example.__canopy__
    model = example("idl_guide")
    assert example_info.id == fingerprint(model, "guide::v1::i_example")
    assert example_info.name == "guide::v1::i_example"
    name, old_name, secured = example_info.methods
    assert (name.id, name.const, name.out_names) == (1, True, ("value",))
    assert old_name.deprecated == "guide::v1::i_example::old_name is deprecated"
    assert (secured.id, secured.tag, secured.in_names) == (3, 7, ("payload",))
    calc: InterfaceInfo = guide.i_calculator.__canopy__
    assert (calc.description, calc.status) == ("Calculator service", "production")
    log_event: MethodInfo = calc.methods[1]
    assert (log_event.post, log_event.out_names) == (True, ())
    scientific = guide.i_scientific
    assert scientific.__canopy__.bases == (calc, example_info)
    assert issubclass(scientific, guide.i_calculator)
    assert issubclass(scientific, guide.i_example)
    assert scientific.__canopy__.methods[0].id == 1  # ids count within the interface


def test_method_records_are_array_like_structs(guide: ModuleType) -> None:
    add = guide.i_calculator.__canopy__.methods[0]
    record = add.in_type(1, 2)
    assert msgspec.msgpack.decode(encode(record)) == [1, 2]
    with pytest.raises(InvalidData, match=r"\$\[0\]"):
        encode(add.in_type(1 << 31, 0))
    assert decode(add.out_type, msgspec.msgpack.encode([3])) == add.out_type(3)
    host = guide.i_host.__canopy__.methods[2]
    hints = host.in_type.__annotations__["observer"]
    assert "Ref.OPTIMISTIC" in hints and "i_example" in hints


def test_several_outs_return_a_named_tuple(guide: ModuleType, constructs: ModuleType) -> None:
    result = guide.v2.i_calculator.divide_result
    assert issubclass(result, tuple)
    assert result._fields == ("quotient", "remainder")
    signature = inspect.signature(guide.v2.i_calculator.divide)
    assert list(signature.parameters) == ["self", "a", "b"]
    assert signature.return_annotation == "i_calculator.divide_result"
    in_out = inspect.signature(constructs.calc.i_calc.divide)
    assert list(in_out.parameters) == ["self", "a", "b", "r"]  # [in, out] is both
    assert constructs.calc.i_calc.divide_result._fields == ("q", "r")


def test_one_out_is_the_return_value_and_none_is_none(guide: ModuleType) -> None:
    assert inspect.signature(guide.i_calculator.add).return_annotation == "_cg.int32"
    assert inspect.signature(guide.i_calculator.log_event).return_annotation == "None"
    assert inspect.signature(guide.i_host.create_example).return_annotation == "i_example | None"


def test_deprecated_method_warns_at_run_time(guide: ModuleType) -> None:
    class Example(guide.i_example):  # type: ignore[misc,name-defined]
        def name(self) -> str:
            return "n"

        def old_name(self) -> str:
            return "o"

        def secured(self, payload: Any) -> Any:
            return payload.settings

    implementation = Example()
    assert implementation.name() == "n"  # no warning
    with pytest.warns(DeprecationWarning, match="old_name is deprecated"):
        assert implementation.old_name() == "o"
    with pytest.warns(DeprecationWarning, match="old_name is deprecated"):
        guide.i_example.old_name(implementation)


def test_async_overrides_stay_coroutine_functions(guide: ModuleType) -> None:
    class Example(guide.i_example):  # type: ignore[misc,name-defined]
        async def name(self) -> str:
            return "n"

        async def old_name(self) -> str:
            return "o"

        def secured(self, payload: Any) -> Any:
            return payload

    assert inspect.iscoroutinefunction(Example.old_name)
    with pytest.warns(DeprecationWarning):
        assert asyncio.run(Example().old_name()) == "o"


def test_deprecated_interface_warns_when_implemented(constructs: ModuleType) -> None:
    with pytest.warns(DeprecationWarning, match="calc::i_old is deprecated"):

        class _Old(constructs.calc.i_old):  # type: ignore[misc,name-defined]
            def ping(self) -> None:
                pass


# ---------------------------------------------------------------- hand-built models


def test_hand_built_model_generates_and_loads() -> None:
    colour = IdlEnum("colour", "paint::colour", (EnumValue("red", 0), EnumValue("blue", 5)))
    tin = Struct(
        "tin",
        "paint::tin",
        (
            Field("shade", NamedType("paint::colour")),
            Field("label", STRING, default="plain", has_default=True),
        ),
    )
    mixer = IdlInterface(
        "i_mixer",
        "paint::i_mixer",
        (
            method(
                "mix",
                1,
                param("a", NamedType("paint::tin")),
                param("out", NamedType("paint::tin"), Direction.OUT),
                description="Mixes a tin.",
            ),
        ),
    )
    loc = Location("hand.idl", 1, 1)
    model = hand_model(Namespace("paint", "paint", (colour, tin, mixer), location=loc))
    ids = {"paint::tin": 11, "paint::i_mixer": 22}
    files = generate_python(model, ids=lambda d: ids[d.qualified_name])
    assert list(files) == ["paint/__init__.py"]
    paint = load_python(model, ids=lambda d: ids[d.qualified_name]).paint
    assert paint.tin.__canopy_id__ == 11
    assert paint.i_mixer.__canopy__.id == 22
    assert paint.tin(shade=paint.colour.blue).label == "plain"
    assert paint.i_mixer.mix.__doc__ == "Mixes a tin."


def test_names_that_clash_in_python_are_refused() -> None:
    first = Struct("x", "ns::x", ())
    second = Struct("x_in", "ns::x_in", ())
    clash = IdlInterface("x", "ns::x", ())
    with pytest.raises(CodegenError, match="defined twice"):
        generate_python(hand_model(Namespace("ns", "ns", (first, clash))), ids=lambda d: 1)
    dunder = Struct("__x", "ns::__x", ())
    with pytest.raises(CodegenError, match="reserved"):
        generate_python(hand_model(Namespace("ns", "ns", (dunder,))), ids=lambda d: 1)
    assert generate_python(hand_model(Namespace("ns", "ns", (second,))), ids=lambda d: 1)


def test_strings_are_ascii_literals() -> None:
    s = Struct(
        "s",
        "ns::s",
        (Field("t", STRING, default='q"\\\u00e9\u2013\U0001f600\n', has_default=True),),
    )
    source = generate_python(hand_model(Namespace("ns", "ns", (s,))), ids=lambda d: 1)
    text = source["ns/__init__.py"]
    assert '    t: str = "q\\"\\\\\\xe9\\u2013\\U0001f600\\n"\n' in text
    module = load_python(hand_model(Namespace("ns", "ns", (s,))), ids=lambda d: 1)
    assert module.ns.s().t == 'q"\\\u00e9\u2013\U0001f600\n'


def test_compile_text_models_generate_a_stem_package() -> None:
    model = compile_text("struct point { int x = 1; };", filename="geo-shapes.idl")
    files = generate_python(model)
    assert list(files) == ["geo_shapes/__init__.py"]
    assert load_python(model).geo_shapes.point().x == 1


def test_a_base_another_base_derives_from_is_inherited_once() -> None:
    """``i12 : i1, i10`` with ``i10 : i1``: Python has no method order for the class
    i12(i1, i10), so the class derives from i10 alone; its info names both bases."""
    ns = load_python(
        compile_text(
            """
            namespace n {
                interface i1 { error_code a(); };
                interface i10 : i1 { error_code b(); };
                interface i12 : i1, i10 { error_code c(); };
            }
            """
        )
    ).n
    assert ns.i12.__mro__[1:3] == (ns.i10, ns.i1)
    assert [b.name for b in ns.i12.__canopy__.bases] == ["n::i1", "n::i10"]
