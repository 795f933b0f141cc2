"""Soak: a long run of mixed calls, posts and reference transfers over TCP against one
server process, reporting both processes' memory at the start and the end.

    .venv/bin/python bench/soak.py                       # 1,000,000 operations (a few minutes)
    .venv/bin/python bench/soak.py --ops 20000 --max-growth-mib 10

Each round is an ``add``, a ``put`` post, an object made by the server and dropped
by the client, and an object of the client's passed to the server and dropped
there. Memory is the resident set size (``VmRSS``) of each process after the
warm-up and at the end; the command exits non-zero if either grew by more than
``--max-growth-mib``, if the server still holds any object the client made, or
if the server's count of live objects is not back to zero. Bounded by
``--max-seconds`` (it stops early and says so).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import suite


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def soak(ops: int, max_seconds: float) -> dict[str, Any]:
    """Run ``ops`` operations (in rounds of four); what was measured."""
    with suite.workdir("canopy-soak-", max_seconds + 120, tls=False) as where:
        return _soak(where, ops, max_seconds)


def _soak(where: str, ops: int, max_seconds: float) -> dict[str, Any]:
    import canopy

    idl = suite.load_idl(where)
    item_class = suite.implementations(idl)[1]
    rounds = max(1, ops // 4)
    warm = min(2000, rounds // 10 + 1)
    with suite.server("blocking", where) as urls, canopy.Zone("soak-client") as zone:
        server_pid = _server_pid()
        bench = zone.connect(urls["tcp"], idl.i_bench)
        done = 0
        started = time.monotonic()
        before: tuple[float, float] = (0.0, 0.0)
        stopped_early = False
        for i in range(rounds):
            if i == warm:
                gc.collect()
                before = (rss_mib(os.getpid()), rss_mib(server_pid))
            assert bench.add(i, 1) == i + 1
            bench.put("sixteen bytes!!!")
            made = bench.make_item()
            assert made.id() == 1
            del made
            bench.take_item(item_class())
            done += 4
            if time.monotonic() - started > max_seconds:
                stopped_early = True
                break
        bench.count()  # every post before it has run
        gc.collect()
        zone.collect()
        deadline = time.monotonic() + 5
        while bench.live() != 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        live = bench.live()
        exported = zone.exported()
        after = (rss_mib(os.getpid()), rss_mib(server_pid))
        seconds = time.monotonic() - started
    return {
        "ops": done,
        "seconds": seconds,
        "stopped_early": stopped_early,
        "client_mib": (before[0], after[0]),
        "server_mib": (before[1], after[1]),
        "server_live_items": live,
        "client_objects_held_by_server": sum(len(h) for h in exported.values()),
    }


def _server_pid() -> int:
    """The pid of the server ``suite.server`` started: this process's only child."""
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one server process, found {children}")
    return int(children[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--max-growth-mib", type=float, default=10.0)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    args = parser.parse_args()
    r = soak(args.ops, args.max_seconds)
    growth = (r["client_mib"][1] - r["client_mib"][0], r["server_mib"][1] - r["server_mib"][0])
    print(f"{r['ops']:,} operations in {r['seconds']:.1f} s ({r['ops'] / r['seconds']:,.0f}/s)")
    print(f"client RSS {r['client_mib'][0]:.1f} -> {r['client_mib'][1]:.1f} MiB ({growth[0]:+.1f})")
    print(f"server RSS {r['server_mib'][0]:.1f} -> {r['server_mib'][1]:.1f} MiB ({growth[1]:+.1f})")
    print(
        f"server live items {r['server_live_items']}; client objects still held by the server "
        f"{r['client_objects_held_by_server']}"
    )
    failed = (
        max(growth) > args.max_growth_mib
        or r["server_live_items"] != 0
        or r["client_objects_held_by_server"] != 0
    )
    if r["stopped_early"]:
        print(f"stopped after --max-seconds {args.max_seconds:g}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
