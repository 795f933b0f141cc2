"""Generators: a checked IDL model becomes artefacts (Python modules first)."""

from canopy.codegen.python import (
    CodegenError,
    IdFunction,
    generate_python,
    load_python,
    write_python,
)

__all__ = ["CodegenError", "IdFunction", "generate_python", "load_python", "write_python"]
