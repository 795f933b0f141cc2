"""Times compiling a realistic 5,000-line IDL file against the 2 s budget.

The file is generated (fixed seed): service namespaces with versioned inline
namespaces, enums, structs with defaults, interfaces with commented methods, a
shared ``#include`` of ``#define``s and an ``#import`` of the packaged rpc types.
Exits non-zero when the median compile time is over budget.

    .venv/bin/python bench/idl_compile.py [--lines 5000] [--runs 5] [--budget 2.0]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from canopy.idl import compile_file

COMMON = """\
// common.idl: limits shared by every service, pulled in with #include.
#pragma once
#define MAX_ITEMS 256
#define DEFAULT_TIMEOUT_MS (30 * 1000)
#define RETRY_LIMIT 5
#define FLAG(n) (1 << (n))
"""

_SCALARS = [
    "int",
    "int32_t",
    "uint32_t",
    "int64_t",
    "uint64_t",
    "uint8_t",
    "double",
    "float",
    "bool",
    "std::string",
]
_DEFAULTS = {
    "int": "DEFAULT_TIMEOUT_MS",
    "int32_t": "-1",
    "uint32_t": "MAX_ITEMS",
    "int64_t": "0",
    "uint64_t": "FLAG(4)",
    "uint8_t": "RETRY_LIMIT",
    "double": "0.5",
    "float": "1.25",
    "bool": "true",
    "std::string": '"unknown"',
}


class _Source:
    """Writes one service namespace after another until the line target is met."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lines: list[str] = [
            "// bench.idl: generated service contracts for the compile-time benchmark.",
            '#include "common.idl"',
            '#import "rpc/rpc_types.idl"',
            "",
        ]

    def add(self, depth: int = 0, text: str = "") -> None:
        self.lines.append("    " * depth + text if text else "")

    def service(self, n: int) -> None:
        rng = self.rng
        self.add(0, f"// Service {n}: contracts grouped by version.")
        self.add(0, f"namespace service_{n}")
        self.add(0, "{")
        for version in range(1, rng.randint(2, 3)):
            inline = "[inline] " if version == 1 else ""
            self.add(1, f"{inline}namespace v{version}")
            self.add(1, "{")
            self.module(n, 2)
            self.add(1, "}")
        self.add(0, "}")
        self.add()

    def module(self, n: int, d: int) -> None:
        rng = self.rng
        self.add(d, f"/* States of a service {n} job. */")
        self.add(d, "enum class job_state : uint8_t")
        self.add(d, "{")
        states = ["queued", "running", "paused", "done", "failed", "cancelled"]
        for i, s in enumerate(states):
            value = f" = {i * 2}" if i % 2 else ""
            self.add(d + 1, f"{s}{value}{',' if i < len(states) - 1 else ''}")
        self.add(d, "};")
        self.add()
        self.add(d, "error job_error { not_found = 1, busy, quota_exceeded = 10 };")
        self.add()
        structs = [f"record_{i}" for i in range(rng.randint(3, 5))]
        for i, name in enumerate(structs):
            self.add(d, f'[description="A record of kind {i} for service {n}"]')
            # Field names carry the struct's index: a derived struct may not repeat them.
            base = f" : {structs[0]}" if i == 2 else ""
            self.add(d, f"struct {name}{base}")
            self.add(d, "{")
            for f in range(rng.randint(4, 9)):
                scalar = rng.choice(_SCALARS)
                if f == 0:
                    self.add(d + 1, "// identity and bookkeeping")
                kind = rng.random()
                if kind < 0.5:
                    self.add(d + 1, f"{scalar} field_{i}_{f} = {_DEFAULTS[scalar]};")
                elif kind < 0.65:
                    self.add(d + 1, f"std::vector<{scalar}> list_{i}_{f};")
                elif kind < 0.75:
                    self.add(d + 1, f"std::map<std::string, {scalar}> by_name_{i}_{f};")
                elif kind < 0.85:
                    self.add(d + 1, f"rpc::optional<{scalar}> maybe_{i}_{f};")
                elif kind < 0.92 and i > 0:
                    self.add(d + 1, f"std::vector<{structs[i - 1]}> children_{i}_{f};")
                else:
                    self.add(d + 1, f"job_state state_{i}_{f} = job_state::queued;")
            self.add(d, "};")
            self.add()
        self.add(d, f"typedef std::vector<{structs[-1]}> {structs[-1]}_list;")
        self.add()
        self.add(d, "[status=production]")
        self.add(d, "interface i_events")
        self.add(d, "{")
        self.add(d + 1, "// fire-and-forget notifications")
        self.add(d + 1, f"[post] error_code on_change(const {structs[0]}& record);")
        self.add(d + 1, "error_code on_state(job_state state, uint64_t job_id);")
        self.add(d, "};")
        self.add()
        self.add(d, f'[status=production, description="Service {n} operations"]')
        self.add(d, "interface i_service : i_events")
        self.add(d, "{")
        for m in range(rng.randint(5, 10)):
            record = rng.choice(structs)
            self.add(d + 1, f"// Operation {m}: reads or writes {record}.")
            shape = rng.random()
            if shape < 0.3:
                self.add(d + 1, f"error_code get_{m}(uint64_t id, [out] {record}& result);")
            elif shape < 0.5:
                self.add(
                    d + 1,
                    f"job_error put_{m}(const {record}& value, [in, out] uint32_t& version);",
                )
            elif shape < 0.7:
                self.add(
                    d + 1,
                    f"error_code list_{m}(const std::string& filter, uint32_t limit, "
                    f"[out] {structs[-1]}_list& items);",
                )
            elif shape < 0.85:
                self.add(d + 1, f"error_code watch_{m}(const rpc::shared_ptr<i_events>& sink);")
            else:
                self.add(d + 1, f"[tag={m}, deprecated] error_code legacy_{m}(int code);")
        self.add(d, "};")
        self.add()


def write_source(folder: Path, lines: int, seed: int = 1) -> Path:
    """Write bench.idl (and the common.idl it includes) of about ``lines`` lines."""
    (folder / "common.idl").write_text(COMMON, encoding="utf-8")
    source = _Source(random.Random(seed))
    n = 0
    while len(source.lines) < lines:
        source.service(n)
        n += 1
    path = folder / "bench.idl"
    path.write_text("\n".join(source.lines) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5000, help="size of the generated file")
    parser.add_argument("--runs", type=int, default=5, help="timed compiles after a warm-up")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds allowed (median)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = write_source(Path(tmp), args.lines)
        line_count = len(path.read_text(encoding="utf-8").splitlines())
        start = time.perf_counter()
        model = compile_file(path)  # the first compile also builds the lark parser
        cold = time.perf_counter() - start
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            compile_file(path)
            times.append(time.perf_counter() - start)

    median = statistics.median(times)
    definitions = sum(1 for _ in model.walk())
    print(f"compiled {line_count} lines ({definitions} definitions) {args.runs} times")
    print(f"first compile (builds the parser): {cold:.3f} s")
    print("runs: " + ", ".join(f"{t:.3f}" for t in times) + " s")
    print(f"median {median:.3f} s = {median / args.budget:.0%} of the {args.budget:g} s budget")
    if median > args.budget:
        print("over budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
