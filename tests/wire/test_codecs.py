"""The payload codecs: every value of the type matrix round-trips in every encoding,
out-of-range integers and malformed payloads are refused with ``InvalidData`` naming
the path, the JSON profile's exact shapes, and the zstd decompression-bomb guard."""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any

import msgspec
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import canopy
from canopy.errors import InvalidData
from canopy.generated import Alt0, Alt1, int32
from canopy.wire import Encoding, ObjectRef, codec
from canopy.wire.codecs import BinaryZstdCodec, encoding_of
from canopy.wire.codecs._zstd import RATIO_FLOOR
from type_matrix import BARE, COMPOSITE, TYPES, examples, matrix, same, values

ENCODINGS = ["binary", "binary_zstd", "json", "protobuf"]
FAST = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PROFILE = """
namespace profile
{
    enum class colour { red, green = 5 };
    struct point
    {
        int32_t x;
        int32_t y = 7;
        rpc::optional<std::string> label;
        rpc::optional<int32_t> hint = 3;
        colour c = colour::green;
        rpc::variant<int32_t, std::string> v;
        std::map<int32_t, std::string> by_id;
        std::map<std::string, int32_t> by_name;
        std::set<std::string> tags;
        std::vector<uint8_t> data;
        double d;
        rpc::shared_ptr<i_thing> thing;
    };
    interface i_thing { error_code ping(); };
    interface i_api { error_code call(int32_t a, const std::string& self, [out] point& p); };
}
"""


@pytest.fixture(scope="module")
def profile() -> Any:
    from canopy.codegen import load_python
    from canopy.idl import compile_text

    return load_python(compile_text(PROFILE, filename="profile.idl")).profile


# ---------------------------------------------------------------- the codec interface


def test_codec_finds_one_shared_codec_for_every_spelling() -> None:
    for name, member in [
        ("binary", Encoding.BINARY),
        ("binary_zstd", Encoding.BINARY_ZSTD),
        ("json", Encoding.JSON),
        ("protobuf", Encoding.PROTOBUF),
    ]:
        assert codec(name) is codec(member) is codec(int(member))
        assert codec(name).encoding is member
        assert encoding_of(name.upper()) is member
    for bad in ("xml", 3, True):
        with pytest.raises(ValueError, match="unknown encoding"):
            codec(bad)


def test_encoders_and_decoders_are_built_once_per_type() -> None:
    for encoding in ENCODINGS:
        c = codec(encoding)
        assert c.encoder(matrix.leaf) is c.encoder(matrix.leaf)
        assert c.decoder(list[int32]) is c.decoder(list[int32])  # equal type expressions


def test_a_type_outside_the_idl_is_refused_when_its_codec_is_built() -> None:
    for encoding in ENCODINGS:
        with pytest.raises(TypeError, match="not a type Canopy can encode"):
            codec(encoding).encoder(int | str)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", sorted(TYPES))
def test_every_value_round_trips_in_every_encoding(name: str) -> None:
    type_ = TYPES[name]

    @settings(FAST, max_examples=examples(name))
    @given(value=values(type_))
    def round_trip(value: Any) -> None:
        for encoding in ENCODINGS:
            c = codec(encoding)
            back = c.decoder(type_)(c.encoder(type_)(value))
            assert same(back, value), (encoding, value, back)
            again = canopy.decode(type_, canopy.encode(value, encoding, type=type_), encoding)
            assert same(again, value)

    round_trip()


@pytest.mark.parametrize("name", sorted(BARE))
@FAST
@given(data=st.data())
def test_bare_values_round_trip_in_every_encoding(name: str, data: st.DataObject) -> None:
    type_ = BARE[name]
    value = data.draw(values(type_))
    for encoding in ENCODINGS:
        c = codec(encoding)
        assert same(c.decoder(type_)(c.encoder(type_)(value)), value), encoding


def test_decoders_accept_memoryviews() -> None:
    value = matrix.leaf(name="x", n=3)
    for encoding in ENCODINGS:
        payload = memoryview(codec(encoding).encoder(matrix.leaf)(value))
        assert codec(encoding).decoder(matrix.leaf)(payload) == value


def test_128_bit_values_beyond_64_bits_travel_as_a_msgpack_extension() -> None:
    value = matrix.i_matrix.__canopy__.methods[1].in_type(-1, (1 << 128) - 1, 0.5, "s")
    payload = codec("binary").encoder(type(value))(value)
    raw = msgspec.msgpack.decode(payload)
    assert raw[1] == msgspec.msgpack.Ext(1, b"\xff" * 16)
    small = msgspec.msgpack.decode(codec("binary").encoder(type(value))(type(value)(1, 5, 0.5, "")))
    assert small[1] == 5  # within MessagePack's range: a plain integer


# ---------------------------------------------------------------- integer ranges

INTEGER_FIELDS = {
    "i8": (-(1 << 7), (1 << 7) - 1),
    "u8": (0, 255),
    "i16": (-(1 << 15), (1 << 15) - 1),
    "u16": (0, (1 << 16) - 1),
    "i32": (-(1 << 31), (1 << 31) - 1),
    "u32": (0, (1 << 32) - 1),
    "i64": (-(1 << 63), (1 << 63) - 1),
    "u64": (0, (1 << 64) - 1),
    "i128": (-(1 << 127), (1 << 127) - 1),
    "u128": (0, (1 << 128) - 1),
    "code": (-(1 << 31), (1 << 31) - 1),
}


def integers(**changes: int) -> Any:
    return matrix.integers(**{**dict.fromkeys(INTEGER_FIELDS, 0), **changes})


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("field", sorted(INTEGER_FIELDS))
def test_out_of_range_integers_are_refused_on_encode(encoding: str, field: str) -> None:
    lo, hi = INTEGER_FIELDS[field]
    encode = codec(encoding).encoder(matrix.integers)
    assert same(
        codec(encoding).decoder(matrix.integers)(encode(integers(**{field: lo}))),
        integers(**{field: lo}),
    )
    for bad in (lo - 1, hi + 1):
        with pytest.raises(InvalidData, match=rf"cannot encode integers: .* - at `\$\.{field}`"):
            encode(integers(**{field: bad}))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_paths_name_nested_fields_and_record_positions(encoding: str) -> None:
    c = codec(encoding)
    containers = c.encoder(matrix.containers)
    base = matrix.containers(
        ints=[1, 2, 1 << 31], nested=[], strings=[], set64=set(), names=set(), by_name={},
        by_id={}, by_flag={}, by_colour={}, by_wide={}, lists_by_name={}, maybe_by_id={},
        triple=[1, 2, 3], leaves=[], maybe_ints=[], maps=[], wides=[],
    )  # fmt: skip
    with pytest.raises(InvalidData, match=r"- at `\$\.ints\[2\]`"):
        containers(base)
    with pytest.raises(InvalidData, match=r"- at `\$\.wides\[1\]`"):
        containers(msgspec.structs.replace(base, ints=[], wides=[0, -1]))
    with pytest.raises(InvalidData, match=r"- at `\$\.maps\[0\]\['k'\]`"):
        containers(msgspec.structs.replace(base, ints=[], maps=[{"k": 1 << 64}]))
    with pytest.raises(InvalidData, match="length"):
        containers(msgspec.structs.replace(base, ints=[], triple=[1, 2]))
    record = matrix.i_matrix.__canopy__.methods[1].in_type
    step = r"\[0\]" if encoding.startswith("binary") else r"\.a"
    with pytest.raises(InvalidData, match=rf"- at `\${step}`"):
        c.encoder(record)(record(128, 0, 0.0, ""))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _proto_field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    return _varint(number << 3) + _varint(value)


FIELD_NUMBERS = {name: i for i, name in enumerate(INTEGER_FIELDS, 1)}


def _bad_payloads(field: str) -> dict[str, list[bytes]]:
    """Payloads holding an out-of-range ``field``, as each encoding can carry one."""
    lo, hi = INTEGER_FIELDS[field]
    carried = [v for v in (lo - 1, hi + 1) if -(1 << 63) <= v < (1 << 64)]
    plain = dict.fromkeys(INTEGER_FIELDS, 0)
    binary = [msgspec.msgpack.encode({**plain, field: v}) for v in carried]
    if field == "i128":  # every 16-byte value fits: a 17-byte one cannot
        binary = [msgspec.msgpack.encode({**plain, field: msgspec.msgpack.Ext(1, bytes(17))})]
    payloads = {
        "binary": binary,
        "json": [msgspec.json.encode({**plain, field: v}) for v in (lo - 1, hi + 1)],
        "protobuf": [],
    }
    payloads["binary_zstd"] = [zstandard.compress(p) for p in binary]
    number = FIELD_NUMBERS[field]
    if field in ("i8", "u8", "i16", "u16"):  # carried as 32 bits on the wire
        payloads["protobuf"] = [_proto_field(number, hi + 1)]
    elif field in ("i128", "u128"):
        payloads["protobuf"] = [_proto_field(number, bytes(17))]
    return payloads


@pytest.mark.parametrize("field", sorted(INTEGER_FIELDS))
def test_out_of_range_integers_are_refused_on_decode(field: str) -> None:
    for encoding, payloads in _bad_payloads(field).items():
        decode = codec(encoding).decoder(matrix.integers)
        for payload in payloads:
            with pytest.raises(InvalidData, match=rf"cannot decode integers: .*`\$\.{field}`"):
                decode(payload)


# ---------------------------------------------------------------- malformed input


def _decode_or_refuse(encoding: str, type_: Any, payload: bytes) -> None:
    # Either outcome is fine; any other exception fails the test.
    with contextlib.suppress(InvalidData):
        codec(encoding).decoder(type_)(payload)


@pytest.mark.parametrize("encoding", ENCODINGS)
@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(TYPES)), payload=st.binary(max_size=64))
def test_random_bytes_decode_or_raise_invalid_data(
    encoding: str, name: str, payload: bytes
) -> None:
    _decode_or_refuse(encoding, TYPES[name], payload)


def _builtins() -> st.SearchStrategy[Any]:
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(-(1 << 63), (1 << 64) - 1)
        | st.floats()
        | st.text(max_size=4)
        | st.sampled_from(["NaN", "0", "1", "red", "AAE="])
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["0", "1", "name", "n", "zone", "x", "value"]), inner, max_size=4
            )
        ),
        max_leaves=12,
    )


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(TYPES)), value=_builtins())
def test_wrongly_shaped_values_decode_or_raise_invalid_data(name: str, value: Any) -> None:
    _decode_or_refuse("binary", TYPES[name], msgspec.msgpack.encode(value))
    _decode_or_refuse("json", TYPES[name], msgspec.json.encode(value))


@pytest.mark.parametrize("encoding", ENCODINGS)
@FAST
@given(data=st.data())
def test_truncated_payloads_decode_or_raise_invalid_data(
    encoding: str, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(set(TYPES) - COMPOSITE)))
    payload = codec(encoding).encoder(TYPES[name])(data.draw(values(TYPES[name])))
    for end in range(0, len(payload), max(1, len(payload) // 16)):
        _decode_or_refuse(encoding, TYPES[name], payload[:end])


def test_deep_nesting_is_refused_not_crashed() -> None:
    deep = 100_000
    for encoding, payload in [
        ("binary", b"\x91" * deep + b"\xc0"),
        ("json", b"[" * deep),
        ("json", b'{"label":"","kids":[' * 2000),
    ]:
        with pytest.raises(InvalidData):
            codec(encoding).decoder(matrix.tree)(payload)


def test_wrong_python_values_are_refused_on_encode() -> None:
    for encoding in ENCODINGS:
        encode = codec(encoding).encoder(matrix.leaf)
        with pytest.raises(InvalidData):
            encode("not a leaf")
        with pytest.raises(InvalidData):
            encode(matrix.leaf(name=b"bytes", n=1))


# ---------------------------------------------------------------- the JSON profile


def test_json_profile_writes_the_documented_shapes(profile: Any) -> None:
    point = profile.point(
        x=1,
        hint=None,
        v=Alt1("a"),
        by_id={2: "b"},
        by_name={"k": 3},
        tags={"z", "a"},
        data=b"\x01\x02",
        d=-math.inf,
        thing=ObjectRef(1, 2, 3, 1),
    )
    assert codec("json").encoder(profile.point)(point) == (
        b'{"x":1,"y":7,"hint":null,"c":"green","v":{"1":"a"},"by_id":[[2,"b"]],'
        b'"by_name":{"k":3},"tags":["a","z"],"data":"AQI=","d":"-Infinity",'
        b'"thing":{"zone":1,"object":2,"interface":3,"kind":1}}'
    )


def test_json_profile_fills_defaults_and_reads_names(profile: Any) -> None:
    decode = codec("json").decoder(profile.point)
    value = decode(
        b'{"x":1,"v":{"0":5},"by_id":[],"by_name":{},"tags":[],"data":"","d":"NaN",'
        b'"thing":null,"unknown":true}'
    )
    assert (value.y, value.label, value.hint, value.c) == (7, None, 3, profile.colour.green)
    assert value.v == Alt0(5) and math.isnan(value.d) and value.thing is None
    assert decode(b'{"x":1,"hint":null,"v":{"1":"s"},"by_id":[[1,"a"]],"by_name":{},"tags":[],'
                  b'"data":"","d":1,"thing":null}').hint is None  # fmt: skip


def test_json_profile_refuses_with_a_clear_message(profile: Any) -> None:
    decode = codec("json").decoder(profile.point)
    base = b'{"x":1,"v":{"0":5},"by_id":[],"by_name":{},"tags":[],"data":"","d":0,"thing":null'
    with pytest.raises(
        InvalidData, match=r"\(red, green\) or one of its values .*got 7 - at `\$\.c`"
    ):
        decode(base + b',"c":7}')
    assert decode(base + b',"c":5}').c == profile.colour.green  # a number is read too
    with pytest.raises(InvalidData, match=r'one key out of "0", "1".* - at `\$\.v`'):
        decode(base.replace(b'{"0":5}', b'{"0":5,"1":"a"}') + b"}")
    with pytest.raises(InvalidData, match="missing required field `x`"):
        decode(base.replace(b'"x":1,', b"") + b"}")
    with pytest.raises(InvalidData, match="base64"):
        decode(base.replace(b'"data":""', b'"data":"!!"') + b"}")


def test_json_records_are_objects_keyed_by_idl_name(profile: Any) -> None:
    call = profile.i_api.__canopy__.methods[0]
    record = call.in_type(7, "me")
    assert codec("json").encoder(call.in_type)(record) == b'{"a":7,"self":"me"}'
    assert msgspec.msgpack.decode(codec("binary").encoder(call.in_type)(record)) == [7, "me"]
    assert codec("json").decoder(call.in_type)(b'{"self":"me","a":7}') == record


def test_json_enum_names_are_the_idl_names() -> None:
    value = matrix.enums(
        lvl=matrix.level.low, n=matrix.names.None_, f=matrix.failure.Code.WORSE, palette=[]
    )
    text = codec("json").encoder(matrix.enums)(value)
    assert b'"n":"None"' in text and b'"wire":"yas_binary"' in text and b'"f":"WORSE"' in text
    assert codec("json").decoder(matrix.enums)(text) == value


def test_json_object_fields_refuse_what_json_cannot_hold() -> None:
    everything_js = codec("json").encoder(canopy.generated.JsonValue)
    assert everything_js({"a": [1, None]}) == b'{"a":[1,null]}'
    for bad in (math.nan, {1: "x"}, b"bytes"):
        with pytest.raises(InvalidData):
            everything_js(bad)
    binary = codec("binary").decoder(canopy.generated.JsonValue)
    with pytest.raises(InvalidData, match="JSON value"):
        binary(msgspec.msgpack.encode({"a": b"bytes"}))


# ---------------------------------------------------------------- zstd


def test_zstd_refuses_a_decompression_bomb() -> None:
    payload = msgspec.msgpack.encode(bytes(100_000_000))
    decode = codec("binary_zstd").decoder(bytes)
    with_size = zstandard.ZstdCompressor(level=1).compress(payload)
    assert len(with_size) < 100_000
    with pytest.raises(InvalidData, match="declares 100000005 bytes, beyond the limit"):
        decode(with_size)
    unsized = zstandard.ZstdCompressor(level=1, write_content_size=False).compress(payload)
    with pytest.raises(InvalidData, match="expands to over"):
        decode(unsized)


def test_zstd_bounds_the_expansion_ratio_beyond_a_floor() -> None:
    decode = codec("binary_zstd").decoder(bytes)
    for size, refused in ((RATIO_FLOOR // 2, False), (RATIO_FLOOR * 4, True)):
        frame = zstandard.compress(msgspec.msgpack.encode(bytes(size)))
        if refused:
            with pytest.raises(InvalidData, match="1000 times its size"):
                decode(frame)
        else:
            assert decode(frame) == bytes(size)


def test_zstd_limits_are_set_per_codec() -> None:
    small = BinaryZstdCodec(max_output_size=1000)
    frame = small.encoder(bytes)(bytes(2000))
    with pytest.raises(InvalidData, match="limit of 1000 bytes"):
        small.decoder(bytes)(frame)
    assert codec("binary_zstd").decoder(bytes)(frame) == bytes(2000)


def test_zstd_refuses_malformed_frames() -> None:
    decode = codec("binary_zstd").decoder(matrix.leaf)
    frame = codec("binary_zstd").encoder(matrix.leaf)(matrix.leaf(name="x" * 100))
    for bad in (b"", b"not zstd", frame[:-4], frame + b"junk", frame + frame):
        with pytest.raises(InvalidData):
            decode(bad)
    assert re.fullmatch(rb"\x28\xb5\x2f\xfd.*", frame, re.S)
