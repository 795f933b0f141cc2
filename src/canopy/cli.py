"""The ``canopy`` command: generate code from IDL, check frozen contracts, serve an object,
describe and call a live one, run the demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from canopy.idl import IdlError, Model, compile_file


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
    except IdlError as e:
        print(e.format(), file=sys.stderr)
        return 2
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="canopy", description="Canopy RPC: one IDL, the same calls across every boundary."
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="compile an IDL file and write what it generates")
    _idl_options(gen)
    gen.add_argument("-o", "--output", type=Path, default=Path("."), help="output directory")
    target = gen.add_mutually_exclusive_group()
    target.add_argument(
        "--proto",
        action="store_true",
        help="write proto3 .proto files (one per IDL file) instead of Python packages",
    )
    target.add_argument(
        "--schema",
        action="store_true",
        help="write JSON Schema instead of Python packages: NAME.schema.json (config profile, "
        "draft-07: every struct, enum and method's inputs and outputs under definitions) for "
        "the IDL file and each imported file it refers to, and NAME.mcp.json (MCP profile: "
        "inlined struct schemas and each interface's tools)",
    )
    target.add_argument(
        "--js",
        action="store_true",
        help="write an ES module with TypeScript declarations, and the runtime it imports "
        "(canopy-runtime.js), instead of Python packages",
    )
    gen.add_argument(
        "--checksums",
        type=Path,
        help="where to write check_sums/<status>/<name> (default: check_sums beside the IDL file)",
    )
    gen.set_defaults(run=_generate)

    chk = sub.add_parser("check", help="fail if a [status=production] interface or struct changed")
    _idl_options(chk)
    chk.add_argument(
        "--checksums",
        type=Path,
        help="the committed check_sums directory (default: check_sums beside the IDL file)",
    )
    chk.set_defaults(run=_check)

    srv = sub.add_parser(
        "serve",
        help="serve the object a factory returns at one or more URLs until interrupted",
        description="Serve the object FACTORY returns (called once, with the zone if it "
        "takes an argument) to every connection, until Ctrl-C or SIGTERM.",
    )
    srv.add_argument("factory", metavar="MODULE:FACTORY", help="e.g. calc.server:Calculator")
    srv.add_argument(
        "--listen",
        action="append",
        required=True,
        metavar="URL",
        help="tcp://host:port, unix:/path, tls://, ws://host:port/path, wss://...; repeatable",
    )
    srv.add_argument(
        "--interface", help="the interface to serve (default: the root's most derived one)"
    )
    srv.add_argument("--tls-cert", metavar="PEM", help="certificate chain for tls:// and wss://")
    srv.add_argument("--tls-key", metavar="PEM", help="its private key (if not in --tls-cert)")
    srv.add_argument(
        "--tls-client-ca", metavar="PEM", help="require client certificates from this CA"
    )
    srv.add_argument(
        "--origin",
        dest="origins",
        action="append",
        metavar="ORIGIN",
        help="a web page's origin (https://app.example) whose scripts may call a ws:// or "
        "wss:// server; repeatable. Without it, only pages from the listening host:port "
        "itself and clients that are not browsers; '*' allows any page on the web (unsafe)",
    )
    srv.set_defaults(run=_serve)

    dsc = sub.add_parser(
        "describe",
        help="print the interfaces and methods of the object served at URL",
        description="Connect to URL and print what its root object says it implements.",
    )
    dsc.add_argument("url", metavar="URL", help="tcp://host:port, tls://, ws://, unix:/path...")
    dsc.add_argument("--json", action="store_true", help="print the description as JSON")
    _client_options(dsc)
    dsc.set_defaults(run=_describe)

    cal = sub.add_parser(
        "call",
        help="call a method of the object served at URL with JSON arguments",
        description="Call METHOD (interface.method, e.g. i_calculator.add) of the root "
        "object at URL with the JSON object ARGS, and print the result as JSON.",
    )
    cal.add_argument("url", metavar="URL")
    cal.add_argument("method", metavar="METHOD", help="interface.method")
    cal.add_argument("arguments", metavar="ARGS", nargs="?", help='e.g. \'{"a": 1, "b": 2}\'')
    _client_options(cal)
    cal.set_defaults(run=_call)

    mcp = sub.add_parser("mcp", help="serve a live object to AI agents over MCP")
    mcp_sub = mcp.add_subparsers(required=True, metavar="COMMAND")
    mcs = mcp_sub.add_parser(
        "serve",
        help="run a Model Context Protocol server whose tools are the methods of the object at URL",
        description="Connect to URL and serve its root object over MCP: each method is a "
        "tool named interface.method (i_session.generate); an object a call returns gets a "
        "handle (o1) and its methods become tools too (o1.i_session.generate), released "
        "when the MCP session ends.",
    )
    mcs.add_argument("url", metavar="URL", help="tcp://host:port, tls://, ws://, unix:/path...")
    mcs.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default="stdio",
        help="stdio (default: for an MCP client that starts this command) or streamable "
        "HTTP on 127.0.0.1",
    )
    mcs.add_argument(
        "--port",
        type=int,
        help="the port of --transport http (default 8765; 0: any free port)",
    )
    _client_options(mcs)
    mcs.set_defaults(run=_mcp_serve)

    demo = sub.add_parser(
        "demo",
        help="compile the example IDL files and show what they become; --web: the browser page",
    )
    demo.add_argument(
        "-o", "--output", type=Path, help="also write the generated Python packages here"
    )
    demo.add_argument(
        "--web",
        action="store_true",
        help="serve the calculator and the inference walkthrough as a web page on "
        "127.0.0.1 until interrupted",
    )
    demo.add_argument(
        "--trace",
        type=Path,
        metavar="DIR",
        help="record the walkthrough and write its sequence diagram (sequence.mmd, "
        "sequence.puml) and an animated page (animation.html) into DIR",
    )
    demo.add_argument(
        "--port",
        type=int,
        help="the port of --web (default 8765; 0: any free port)",
    )
    demo.set_defaults(run=_demo)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import logging

    from canopy._loops import run
    from canopy._serve import ServeError, serve

    logging.basicConfig(level=logging.INFO, format="canopy: %(message)s")
    if args.tls_client_ca and not args.tls_cert:
        print("canopy serve: --tls-client-ca needs --tls-cert", file=sys.stderr)
        return 2
    try:
        run(
            serve(
                args.factory,
                args.listen,
                interface=args.interface,
                tls_cert=args.tls_cert,
                tls_key=args.tls_key,
                tls_client_ca=args.tls_client_ca,
                origins=args.origins,
            )
        )
    except ServeError as e:
        print(f"canopy serve: {e}", file=sys.stderr)
        return 2
    return 0


def _client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tls-ca", metavar="PEM", help="verify a tls:// or wss:// server with this CA")
    p.add_argument("--tls-cert", metavar="PEM", help="a client certificate, for mutual TLS")
    p.add_argument("--tls-key", metavar="PEM", help="its private key (if not in --tls-cert)")
    p.add_argument("--server-hostname", metavar="NAME", help="the name the server proves")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="for connecting (10)")


def _poke(args: argparse.Namespace, what: Callable[[Any], str]) -> int:
    from canopy import CanopyError
    from canopy._poke import PokeError, connected, report

    try:
        with connected(
            args.url,
            tls_ca=args.tls_ca,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            server_hostname=args.server_hostname,
            timeout=args.timeout,
        ) as obj:
            print(what(obj))
    except CanopyError as e:
        report(e)
        return 1
    except (PokeError, OSError, ValueError, RuntimeError) as e:
        print(f"canopy {args.command}: {e}", file=sys.stderr)
        return 2
    return 0


def _describe(args: argparse.Namespace) -> int:
    import json

    from canopy._poke import describe_text
    from canopy.runtime._reflect import Description

    def show(obj: Any) -> str:
        d: Description = obj.description
        if args.json:
            import msgspec

            return json.dumps(msgspec.to_builtins(d), indent=2, ensure_ascii=False)
        return describe_text(d)

    args.command = "describe"
    return _poke(args, show)


def _call(args: argparse.Namespace) -> int:
    from canopy._poke import call

    args.command = "call"
    return _poke(args, lambda obj: call(obj, args.method, args.arguments))


def _mcp_serve(args: argparse.Namespace) -> int:
    import logging
    from importlib.util import find_spec

    from canopy import CanopyError, mcp
    from canopy._poke import report

    if find_spec("mcp") is None:
        print(
            "canopy mcp: the MCP SDK is not installed: pip install 'canopy[mcp]'", file=sys.stderr
        )
        return 2
    logging.basicConfig(level=logging.WARNING, format="canopy mcp: %(message)s")
    port = mcp.PORT if args.port is None else args.port
    if args.port is not None and args.transport != "http":
        print("canopy mcp: --port goes with --transport http", file=sys.stderr)
        return 2
    if not 0 <= port <= 65535:
        print(f"canopy mcp: --port {port} is not a port number (0 to 65535)", file=sys.stderr)
        return 2
    try:
        mcp.serve(
            args.url,
            transport=args.transport,
            port=port,
            tls_ca=args.tls_ca,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            server_hostname=args.server_hostname,
            timeout=args.timeout,
            ready=mcp.announce,
        )
    except CanopyError as e:
        report(e)
        return 1
    except (OSError, ValueError) as e:
        print(f"canopy mcp: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def _idl_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("idl", type=Path, help="the IDL file")
    p.add_argument(
        "-I", dest="include", action="append", default=[], metavar="DIR", help="include path"
    )
    p.add_argument(
        "-D",
        dest="define",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="predefine a macro (VALUE defaults to 1)",
    )


def _compile(args: argparse.Namespace) -> Model:
    defines = {}
    for d in args.define:
        name, _, value = d.partition("=")
        defines[name] = value if "=" in d else "1"
    return compile_file(args.idl, include_paths=args.include, defines=defines)


def _checksum_dir(args: argparse.Namespace) -> Path:
    chosen: Path | None = args.checksums
    idl: Path = args.idl
    return chosen if chosen is not None else idl.parent / "check_sums"


def _generate(args: argparse.Namespace) -> int:
    from canopy.codegen import write_python
    from canopy.codegen.checksums import write_checksums

    model = _compile(args)
    if args.proto:
        from canopy.codegen.proto import write_proto

        written = write_proto(model, args.output)
    elif args.schema:
        from canopy.codegen.schema import write_schemas

        written = write_schemas(model, args.output)
    elif args.js:
        from canopy.codegen.js import write_js

        written = write_js(model, args.output)
    else:
        written = write_python(model, args.output)
    for path in written:
        print(f"wrote {path}")
    sums = write_checksums(model, _checksum_dir(args))
    print(f"wrote {len(sums)} checksum file(s) under {_checksum_dir(args)}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from canopy.codegen.checksums import check

    model = _compile(args)
    problems = check(model, _checksum_dir(args))
    for p in problems:
        print(f"{args.idl}: {p}", file=sys.stderr)
    if not problems:
        print(f"{args.idl}: every production contract matches {_checksum_dir(args)}")
    return 1 if problems else 0


def _demo(args: argparse.Namespace) -> int:
    if args.web:
        return _demo_web(args)
    if args.port is not None:
        print("canopy demo: --port goes with --web", file=sys.stderr)
        return 2
    from canopy._demo import run

    run(args.output, args.trace)
    return 0


def _demo_web(args: argparse.Namespace) -> int:
    from canopy import _web
    from canopy._loops import run

    for option, given in (("--output", args.output), ("--trace", args.trace)):
        if given is not None:
            print(f"canopy demo: {option} goes with the console demo, not --web", file=sys.stderr)
            return 2
    port = _web.PORT if args.port is None else args.port
    if not 0 <= port <= 65535:
        print(f"canopy demo: --port {port} is not a port number (0 to 65535)", file=sys.stderr)
        return 2
    try:
        run(_web.serve(port))
    except OSError as e:
        print(f"canopy demo: cannot listen on {_web.HOST}:{port}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
