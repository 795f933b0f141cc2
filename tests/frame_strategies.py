"""Hypothesis strategies for hostile byte streams: valid frames mutated (bytes flipped,
cut short, length prefixes lying or huge, padded), message arrays with a real tag and
fields of the wrong types, deep nesting; and fuzz/targets.py, loaded for its checks
and its honest messages."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import strategies as st

from canopy.wire import Message

_spec = importlib.util.spec_from_file_location(
    "fuzz_targets", Path(__file__).resolve().parents[1] / "fuzz" / "targets.py"
)
assert _spec is not None and _spec.loader is not None
targets: Any = importlib.util.module_from_spec(_spec)
sys.modules["fuzz_targets"] = targets
_spec.loader.exec_module(targets)

TAGS = range(1, 19)
HEADER = 4


def frame_of(body: bytes) -> bytes:
    return len(body).to_bytes(HEADER, "little") + body


# ---------------------------------------------------------------- strategies

_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(1 << 63), (1 << 64) - 1)
    | st.floats()
    | st.text(max_size=6)
    | st.binary(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=10,
)


@st.composite
def wrong_fields(draw: st.DrawFn) -> bytes:
    """A message array with a real tag and whatever fields: wrong types, too few, too many."""
    tag = draw(st.sampled_from(TAGS) | st.integers(-5, 300))
    return msgspec.msgpack.encode([tag, *draw(st.lists(_values, max_size=12))])


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    """A frame nested very deep: the message itself, or the payload of a Call."""
    depth = draw(st.integers(50, 20_000))
    if draw(st.booleans()):
        return b"\x91" * depth + b"\xc0"
    call = msgspec.msgpack.encode([4, 1, 5, 6, 1, 7, 2, 1, None])
    return call[:-1] + b"\x91" * depth + b"\xc0"


@st.composite
def mutated(draw: st.DrawFn, messages: Sequence[Message] = ()) -> bytes:
    """Valid frames, then each one possibly flipped, cut, lied about or padded."""
    honest = st.sampled_from(messages or targets.MESSAGES)
    out = b""
    for message in draw(st.lists(honest, min_size=1, max_size=6)):
        body = bytearray(msgspec.msgpack.encode(message))
        how = draw(st.sampled_from(["keep", "flip", "cut", "lie", "huge", "pad", "wrong"]))
        if how == "flip" and body:
            for _ in range(draw(st.integers(1, 4))):
                i = draw(st.integers(0, len(body) - 1))
                body[i] ^= draw(st.integers(1, 255))
        elif how == "cut":
            del body[draw(st.integers(0, len(body))) :]
        elif how == "pad":
            body += draw(st.binary(min_size=1, max_size=8))
        elif how == "wrong":
            body = bytearray(draw(wrong_fields()))
        if how == "lie":
            size = max(0, len(body) + draw(st.integers(-8, 8)))
            out += size.to_bytes(HEADER, "little") + body
        elif how == "huge":
            size = draw(st.sampled_from([4097, 1 << 24, (1 << 24) + 1, (1 << 32) - 1]))
            out += size.to_bytes(HEADER, "little") + body
        else:
            out += frame_of(bytes(body))
    return out


def streams(messages: Sequence[Message] = ()) -> st.SearchStrategy[bytes]:
    """Any hostile stream: ``messages`` (default: one of each type) mutated, or worse."""
    return (
        mutated(messages)
        | wrong_fields().map(frame_of)
        | nested().map(frame_of)
        | st.binary(max_size=256)
        | st.lists(wrong_fields().map(frame_of), max_size=10).map(b"".join)
    )
