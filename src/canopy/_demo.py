"""``canopy demo``: the example contracts compiled, and what they become in Python.

The runtime that carries these calls across boundaries is the next piece of
Canopy; until it lands, the demo shows the compiler and the generated code,
and uses the generated types directly.
"""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import canopy
from canopy.codegen import generate_python, load_python, write_python
from canopy.idl import (
    Interface,
    Model,
    Struct,
    TypeRef,
    compile_file,
    compile_text,
    fingerprint,
)
from canopy.idl._printer import as_written, type_text, value_text

EXAMPLES = ("calculator.idl", "idl_guide.idl", "inference.idl")


def run(output: Path | None) -> None:
    examples = Path(str(resources.files("canopy") / "examples"))
    out = output or Path(tempfile.mkdtemp(prefix="canopy-demo-"))
    _title("Canopy demo: the IDL contract, compiled")
    models = {}
    for name in EXAMPLES:
        model = compile_file(examples / name)
        models[name] = model
        written = write_python(model, out)
        _summary(name, model, [p.relative_to(out) for p in written])
    print(f"\nGenerated packages written under {out}")

    _title("What calculator.idl becomes: calculator/v1/__init__.py")
    print(generate_python(models["calculator.idl"])["calculator/v1/__init__.py"])

    _title("The generated types at work")
    _calculator(models["calculator.idl"])
    _inference(models["inference.idl"])

    _title("An IDL error, as the compiler reports it")
    try:
        compile_text(
            "interface i_feed\n{\n    [post] error_code push(int value, [out] int& ack);\n};\n",
            filename="feed.idl",
        )
    except canopy.IdlError as e:
        print(e.format())


def _spell(t: TypeRef) -> str:
    return type_text(t, as_written)


def _title(text: str) -> None:
    print(f"\n{text}\n{'=' * len(text)}")


def _summary(name: str, model: Model, files: list[Path]) -> None:
    print(f"\n{name}")
    for d in model.walk():
        if isinstance(d, Struct):
            print(f"  struct {d.qualified_name}  id {fingerprint(model, d):#018x}")
            for f in d.fields:
                default = f" = {value_text(f.default, as_written)}" if f.has_default else ""
                print(f"      {_spell(f.type)} {f.name}{default}")
        elif isinstance(d, Interface):
            status = f"  [status={d.status}]" if d.status else ""
            print(f"  interface {d.qualified_name}  id {fingerprint(model, d):#018x}{status}")
            for m in d.methods:
                ins = ", ".join(f"{p.name}: {_spell(p.type)}" for p in m.inputs)
                outs = ", ".join(f"{p.name}: {_spell(p.type)}" for p in m.outputs)
                flags = " [post]" if m.is_post else ""
                print(f"      #{m.id} {m.name}({ins}) -> ({outs}){flags}")
    print("  python: " + ", ".join(str(f) for f in files))


def _calculator(model: Model) -> None:
    calculator: Any = load_python(model).calculator

    class Calculator(calculator.i_calculator):  # type: ignore[misc]
        def add(self, a: int, b: int) -> int:
            return a + b

    calc = Calculator()
    print("calculator.i_calculator is calculator.v1.i_calculator:", end=" ")
    print(calculator.i_calculator is calculator.v1.i_calculator)
    print(f"Calculator().add(2, 3) = {calc.add(2, 3)}   ([out] int& result is the return value)")
    info = calculator.i_calculator.__canopy__
    print(f"interface id {info.id:#018x}, methods {[(m.id, m.name) for m in info.methods]}")


def _inference(model: Model) -> None:
    inference: Any = load_python(model).inference
    options = inference.generation_options(stop_sequences=["\n\n"])
    print(f"\n{options!r}")
    for encoding in ("binary", "json"):
        data = canopy.encode(options, encoding)
        back = canopy.decode(inference.generation_options, data, encoding)
        shown = data.decode() if encoding == "json" else data.hex(" ")
        print(f"  {encoding:6} {len(data):3} bytes  {shown}")
        assert back == options  # noqa: S101 - the demo shows the round trip holds
    try:
        canopy.encode(inference.generation_options(max_tokens=-1))
    except canopy.InvalidData as e:
        print(f"\nmax_tokens=-1 is refused: {e}")
