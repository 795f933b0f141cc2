"""canopy.rpc_types is the generated Python of the shipped rpc/rpc_types.idl, kept fresh."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import canopy.rpc_types
from canopy.codegen import generate_python, load_python
from canopy.idl import compile_file, compile_text

SHIPPED = Path(str(resources.files("canopy.idl") / "rpc" / "rpc_types.idl"))


def test_committed_module_matches_the_shipped_idl() -> None:
    fresh = generate_python(compile_file(SHIPPED))["rpc/__init__.py"]
    committed = Path(canopy.rpc_types.__file__).read_text(encoding="utf-8")
    assert committed == fresh, (
        "src/canopy/rpc_types/__init__.py is stale: regenerate it from rpc/rpc_types.idl"
    )


def test_generated_code_that_imports_rpc_types_uses_it() -> None:
    model = compile_text(
        '#import "rpc/rpc_types.idl"\n'
        "namespace svc { struct options { rpc::encoding wire = rpc::encoding::yas_json; }; }\n"
    )
    svc = load_python(model).svc
    assert svc.options().wire is canopy.rpc_types.encoding.yas_json
