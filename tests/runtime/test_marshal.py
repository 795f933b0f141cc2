"""The reference walk the non-binary encodings use: every reference swapped, nothing else
copied, in both directions."""

from __future__ import annotations

from typing import Any

from behaviour import Widget, b
from canopy.runtime._marshal import from_refs, to_refs
from canopy.wire import ObjectRef


def test_references_anywhere_in_a_value_are_swapped_and_back() -> None:
    w1, w2 = Widget("a"), Widget("b")
    refs: dict[int, Any] = {}

    def out(obj: Any) -> ObjectRef:
        refs[id(obj)] = obj
        return ObjectRef(1, id(obj), 2, 0)

    value = {"k": [w1, (w2, None)], "plain": [1, 2]}
    swapped = to_refs(value, out)
    assert swapped == {
        "k": [ObjectRef(1, id(w1), 2, 0), (ObjectRef(1, id(w2), 2, 0), None)],
        "plain": [1, 2],
    }
    assert swapped["plain"] is value["plain"]  # untouched branches are not copied
    back = from_refs(swapped, lambda ref: refs[ref.object])
    assert back == value and back["k"][0] is w1 and back["k"][1][0] is w2


def test_structs_are_rebuilt_only_where_a_reference_lies() -> None:
    record = b.point(x=1, y=2)
    assert to_refs(record, lambda obj: obj) is record
    assert to_refs(None, lambda obj: obj) is None
    assert from_refs(ObjectRef(1, 2, 3, 1), lambda ref: ref.kind) == 1
