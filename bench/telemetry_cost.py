"""What telemetry costs an in-process call: none attached, a do-nothing observer, and the
recorder, measured in turns in one run (ratios to "none attached").

    .venv/bin/python bench/telemetry_cost.py [--calls 5000] [--rounds 9]

With none attached the call path makes one check per call on each side: the same
number of Python function calls per round trip as before telemetry existed
(cProfile: 146 before and after).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import suite

import canopy
from canopy import telemetry
from canopy.telemetry.recorder import Recorder


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    where = tempfile.mkdtemp(prefix="canopy-telemetry-")
    (Path(where) / "bench.idl").write_text(suite.IDL, encoding="utf-8")
    idl = suite.load_idl(where)
    bench = suite.implementations(idl)[0]
    cases: dict[str, telemetry.Observer | None] = {
        "none attached": None,
        "do-nothing observer": telemetry.Observer(),
        "recorder": Recorder(limit=10),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    with canopy.Zone("host") as zone:
        remote = zone.child("bench", lambda _: bench(), idl.i_bench)
        for _ in range(2000):
            remote.add(1, 2)
        for _ in range(args.rounds):  # in turns, so that drift hits every case alike
            for name, observer in cases.items():
                if observer is None:
                    telemetry.detach()
                else:
                    telemetry.attach(observer)
                started = time.perf_counter()
                for _ in range(args.calls):
                    remote.add(1, 2)
                times[name].append((time.perf_counter() - started) / args.calls * 1e6)
        telemetry.detach()
    base = statistics.median(times["none attached"])
    print("| observer | median per call | x none attached |")
    print("|---|--:|--:|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} µs | {median / base:.2f} |")


if __name__ == "__main__":
    main()
