"""The .proto generator and protobuf interop: the written files compile with protoc, and
for every type of the type matrix a message Canopy encodes parses with the
protoc-generated classes into the same values, and their bytes decode back."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings

from canopy.cli import main
from canopy.codegen.proto import generate_proto, write_proto
from canopy.errors import InvalidData
from canopy.idl import compile_file, compile_text
from canopy.wire import ObjectRef, codec
from canopy.wire.codecs import _schema as t
from contract import EXAMPLES
from type_matrix import MATRIX_IDL, TYPES, examples, matrix, same, values

FAST = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def protoc(root: Path, files: list[str]) -> None:
    """Compile ``files`` (relative to ``root``) to Python with grpc_tools' protoc."""
    command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{root}", f"--python_out={root}"]
    done = subprocess.run([*command, *files], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def pb2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The protoc-generated module of the type matrix (its imports compiled beside it)."""
    root = tmp_path_factory.mktemp("proto")
    written = write_proto(compile_file(MATRIX_IDL), root)
    protoc(root, [p.relative_to(root).as_posix() for p in written])
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("type_matrix_pb2")
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n.startswith(("type_matrix_pb2", "rpc"))]:
            del sys.modules[name]


# ---------------------------------------------------------------- reading protoc messages


def read(node: t.Node, message: Any) -> Any:
    """A value read from a protoc-generated message by the documented mapping."""
    if isinstance(node, t.Int):
        if node.wide:
            return int.from_bytes(message, "big", signed=node.width == "int128") if message else 0
        return message
    if isinstance(node, t.Json):
        return msgspec.json.decode(message)
    if isinstance(node, t.Enum):
        assert node.cls is not None
        return node.cls(message)
    if isinstance(node, t.Ref):
        return ObjectRef(message.zone, message.object, message.interface, message.kind)
    if isinstance(node, t.Struct):
        return node.origin(**{f.name: read_field(f.node, message, f.wire) for f in node.fields})
    if isinstance(node, t.Variant):
        which = message.WhichOneof("value")
        alternative = node.alternatives[int(which.removeprefix("alt"))]
        return alternative.cls(read(alternative.node, getattr(message, which)))
    if isinstance(node, t.List | t.Set | t.Map | t.Opt):
        return read_field(node, message, "value")
    return message


def read_field(node: t.Node, message: Any, name: str) -> Any:
    if isinstance(node, t.Opt):
        return read(node.inner, getattr(message, name)) if message.HasField(name) else None
    if isinstance(node, t.List):
        return [read(node.item, v) for v in getattr(message, name)]
    if isinstance(node, t.Set):
        return {read(node.item, v) for v in getattr(message, name)}
    if isinstance(node, t.Map):
        field = getattr(message, name)
        if isinstance(node.key, t.Bool | t.Str) or (
            isinstance(node.key, t.Int) and not node.key.wide
        ):
            return {read(node.key, k): read(node.value, v) for k, v in field.items()}
        return {read_field(node.key, e, "key"): read_field(node.value, e, "value") for e in field}
    return read(node, getattr(message, name))


def assert_no_unknown_fields(message: Any) -> None:
    """A field Canopy wrote that the .proto does not describe would land here."""
    from google.protobuf.unknown_fields import UnknownFieldSet

    assert len(UnknownFieldSet(message)) == 0, message
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = (
                value.values() if field.message_type.fields_by_name["value"].message_type else []
            )
        elif _repeated(field):
            items = value
        else:
            items = [value]
        for item in items:
            assert_no_unknown_fields(item)


def _repeated(field: Any) -> bool:
    # protobuf 7 replaced ``label`` with ``is_repeated``.
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return bool(field.label == field.LABEL_REPEATED)


# ---------------------------------------------------------------- interop


@pytest.mark.parametrize("name", sorted(TYPES))
def test_canopy_messages_are_the_protoc_messages(pb2: ModuleType, name: str) -> None:
    type_ = TYPES[name]
    node = t.schema(type_)
    protoc_class = getattr(pb2, name)

    @settings(FAST, max_examples=examples(name))
    @given(value=values(type_))
    def interop(value: Any) -> None:
        payload = codec("protobuf").encoder(type_)(value)
        message = protoc_class.FromString(payload)
        assert_no_unknown_fields(message)
        assert same(read(node, message), value)
        assert same(codec("protobuf").decoder(type_)(message.SerializeToString()), value)

    interop()


def test_method_fields_are_numbered_in_parameter_order(pb2: ModuleType) -> None:
    request = pb2.i_matrix_scalarsRequest.DESCRIPTOR
    assert [(f.name, f.number) for f in request.fields] == [
        ("a", 1),
        ("b", 2),
        ("c", 3),
        ("self", 4),
    ]
    response = pb2.i_matrix_allResponse.DESCRIPTOR
    assert [(f.name, f.number) for f in response.fields] == [("echoed", 1), ("back", 2)]
    assert response.fields_by_name["back"].message_type.full_name == "rpc.ObjectRef"


def test_enums_get_a_zero_value_and_reading_it_is_refused(pb2: ModuleType) -> None:
    colour = pb2.DESCRIPTOR.enum_types_by_name["colour"]
    assert [(v.name, v.number) for v in colour.values] == [
        ("colour_UNSPECIFIED", 0),
        ("colour_red", 1),
        ("colour_green", 2),
        ("colour_blue", 4),
    ]
    level = pb2.DESCRIPTOR.enum_types_by_name["level"]
    assert [v.number for v in level.values] == [0, 1]  # the IDL's own zero, no extra value
    unset = pb2.enums(lvl=1, n=0, f=1).SerializeToString()  # c left at 0
    with pytest.raises(InvalidData, match=r"Invalid enum value 0 .* - at `\$\.c`"):
        codec("protobuf").decoder(matrix.enums)(unset)


def test_an_enum_beyond_int32_travels_as_its_integer(pb2: ModuleType) -> None:
    field = pb2.enums.DESCRIPTOR.fields_by_name["b"]
    assert field.type == field.TYPE_UINT64
    value = matrix.enums(
        b=matrix.big.huge,
        lvl=matrix.level.low,
        n=matrix.names.ok,
        f=matrix.failure.Code.BROKEN,
        palette=[],
    )
    assert pb2.enums.FromString(codec("protobuf").encoder(matrix.enums)(value)).b == 1 << 32


def test_a_float_is_32_bits_and_out_of_range_ones_are_refused() -> None:
    encode = codec("protobuf").encoder(matrix.floats)
    assert codec("protobuf").decoder(matrix.floats)(encode(matrix.floats(f=0.1, d=0.1))).f == (
        0.10000000149011612
    )
    with pytest.raises(InvalidData, match=r"32-bit `float`.* - at `\$\.f`"):
        encode(matrix.floats(f=1e300, d=0.0))


def test_a_variant_with_no_alternative_is_refused() -> None:
    empty = codec("protobuf").decoder(matrix.variants)
    with pytest.raises(InvalidData, match=r"one alternative set, got none - at `\$\.colliding`"):
        empty(b"")


# ---------------------------------------------------------------- the generator


def test_example_contracts_compile_with_protoc(tmp_path: Path) -> None:
    for example in ("calculator", "inference", "idl_guide"):
        out = tmp_path / example
        written = write_proto(compile_file(EXAMPLES / f"{example}.idl"), out)
        protoc(out, [p.relative_to(out).as_posix() for p in written])


def test_proto_output_is_deterministic_and_documents_its_source() -> None:
    model = compile_file(MATRIX_IDL)
    files = generate_proto(model)
    assert files == generate_proto(compile_file(MATRIX_IDL))
    assert sorted(files) == ["rpc/object_ref.proto", "rpc/rpc_types.proto", "type_matrix.proto"]
    text = files["type_matrix.proto"]
    assert text.startswith("// Generated by canopy from type_matrix.idl")
    assert 'syntax = "proto3";\n\npackage matrix;\n' in text
    assert "  map<string, int32> by_name = 6;\n" in text
    assert "  repeated Entry_colour_double by_colour = 9;\n" in text
    assert "message box_int32 {\n  int32 value = 1;\n  repeated int32 more = 2;\n}" in text


def test_nested_namespaces_share_one_package() -> None:
    model = compile_text(
        "namespace a { struct x { int v; }; namespace b { struct x { int w; }; } }",
        filename="deep.idl",
    )
    text = generate_proto(model)["deep.proto"]
    assert "package a;" in text and "message x {" in text and "message b_x {" in text


def test_canopy_generate_proto_writes_files_protoc_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "proto"
    idl = EXAMPLES / "inference.idl"
    assert (
        main(
            ["generate", str(idl), "--proto", "-o", str(out), "--checksums", str(tmp_path / "sums")]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert f"wrote {out / 'inference.proto'}" in printed
    assert not list(out.rglob("*.py"))
    protoc(out, ["inference.proto", "rpc/object_ref.proto"])
