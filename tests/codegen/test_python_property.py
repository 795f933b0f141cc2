"""The generator over random valid IDL: every file loads, and its classes carry the model's ids."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings

from canopy.codegen import CodegenError, generate_python, load_python
from canopy.idl import Interface, Struct, compile_text, fingerprint
from idl_strategies import idl_sources


def find(package: ModuleType, qualified_name: str) -> Any:
    # Definitions outside any namespace live in the package named after the file.
    value: Any = package if "::" in qualified_name else package.t
    for part in qualified_name.split("::"):
        value = getattr(value, part, None) or getattr(value, part + "_")
    return value


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@given(idl_sources(max_definitions=10))
def test_random_idl_loads_with_the_model_ids(source: str) -> None:
    model = compile_text(source, filename="t.idl")
    try:
        package = load_python(model)
    except CodegenError:
        reject()  # a model Python cannot express, refused with a clear error on purpose
    assert generate_python(model) == generate_python(model)
    for d in model.walk():
        if isinstance(d, Interface):
            info = find(package, d.qualified_name).__canopy__
            assert info.id == fingerprint(model, d)
            assert [(m.id, m.name, m.post) for m in info.methods] == [
                (m.id, m.name, m.is_post) for m in d.methods
            ]
        elif isinstance(d, Struct):
            assert find(package, d.qualified_name).__canopy_id__ == fingerprint(model, d)
