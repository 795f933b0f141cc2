"""Run one fuzz target of fuzz/targets.py under atheris (coverage-guided libFuzzer).

    python fuzz/run.py wire --runs 2000000
    python fuzz/run.py codecs --time 600
    python fuzz/run.py idl --time 600 -only_ascii=1

Targets: ``wire`` (the sans-I/O protocol fed a peer's bytes in both roles, before and
after the handshake), ``codecs`` (the four payload decoders over the type matrix) and
``idl`` (``compile_text``). Needs atheris: ``pip install -e '.[fuzz]'``. Seeds (valid
frames, payloads and IDL files) are written to ``fuzz/corpus/TARGET`` on the first run,
and the corpus grows there; crashes land in ``fuzz/crashes``. Replay one input with
``python fuzz/run.py wire fuzz/crashes/crash-...``. Exits non-zero when a target fails.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]
LAZY = (
    "canopy.codegen.python",
    "canopy.wire.codecs._json",
    "canopy.wire.codecs._protobuf",
    "canopy.wire.codecs._zstd",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=["wire", "codecs", "idl"])
    parser.add_argument("inputs", nargs="*", help="replay these inputs instead of fuzzing")
    parser.add_argument("--runs", type=int, default=0, help="stop after this many inputs")
    parser.add_argument("--time", type=int, default=0, help="stop after this many seconds")
    parser.add_argument("--corpus", type=Path, help="default: fuzz/corpus/TARGET")
    # Anything else (-jobs=2, -dict=...) goes to libFuzzer as it is.
    args, extra = parser.parse_known_args()

    import atheris

    with atheris.instrument_imports(include=["canopy"]):
        # What canopy loads on first use is instrumented only if it loads here. The
        # targets' own checks are not: coverage of them guides nothing.
        for module in LAZY:
            importlib.import_module(module)
        import targets

    run = targets.TARGETS[args.target]
    corpus = args.corpus or HERE / "corpus" / args.target
    if not args.inputs and not corpus.exists():
        corpus.mkdir(parents=True)
        for seed in targets.seeds(args.target):
            (corpus / hashlib.sha1(seed, usedforsecurity=False).hexdigest()).write_bytes(seed)
    crashes = HERE / "crashes"
    crashes.mkdir(exist_ok=True)
    flags = [
        "-timeout=10",  # seconds for one input: longer is a hang
        "-rss_limit_mb=2048",
        "-max_len=65536" if args.target == "idl" else "-max_len=2048",
        f"-artifact_prefix={crashes}/{args.target}-",
        "-print_final_stats=1",
    ]
    if args.target == "idl":
        flags.append(f"-dict={HERE / 'idl.dict'}")
    if args.runs:
        flags.append(f"-runs={args.runs}")
    if args.time:
        flags.append(f"-max_total_time={args.time}")
    where = [str(p) for p in args.inputs] if args.inputs else [str(corpus)]
    atheris.Setup([sys.argv[0], *flags, *extra, *where], run)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
