"""``canopy describe URL`` and ``canopy call URL interface.method JSON``: poke at a live
service with no generated code, as ``grpcurl`` does for gRPC."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import canopy


class PokeError(Exception):
    """What the command line got wrong; printed without a traceback."""


@contextmanager
def connected(
    url: str,
    *,
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    server_hostname: str | None = None,
    timeout: float | None = None,
) -> Iterator[canopy.DynamicObject]:
    """The root object at ``url``, described, for dynamic calls; closed on leaving."""
    tls = None
    if tls_ca is not None or tls_cert is not None:
        from canopy.streams.tls import client_context

        tls = client_context(cafile=tls_ca, certfile=tls_cert, keyfile=tls_key)
    with canopy.Zone("canopy-cli") as zone:
        root = zone.connect(
            url, canopy.AnyObject, tls=tls, server_hostname=server_hostname, timeout=timeout
        )
        with canopy.dynamic(root, deprecated=True) as obj:
            del root
            yield obj


def describe_text(description: canopy.Description) -> str:
    """A description as people read it: interfaces, then each method's signature."""
    lines: list[str] = []
    for i in description.interfaces:
        flags = " [deprecated]" if i.deprecated else ""
        lines.append(f"interface {i.name}  (id {i.id:#018x}){flags}")
        if i.description:
            lines.append(f"    {i.description}")
        for m in i.methods:
            ins = _fields(m.inputs)
            outs = _fields(m.outputs)
            head = "[post] " if m.post else ""
            tail = " [deprecated]" if m.deprecated else ""
            lines.append(f"  {head}{m.tool_name}({ins}) -> ({outs}){tail}")
            if m.description:
                lines.append(f"      {m.description}")
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def _fields(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", ()))
    parts = []
    for name, s in schema.get("properties", {}).items():
        optional = "" if name in required else "?"
        parts.append(f"{name}{optional}: {_type(s)}")
    return ", ".join(parts)


def _type(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    if set(schema.get("properties", {})) == {"zone", "object", "interface", "kind"}:
        return "object " + str(schema.get("description", "")).rsplit(" ", 1)[-1]
    if "enum" in schema:
        return "|".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"[{_type(schema.get('items'))}]"
    if isinstance(kind, list):
        return "|".join(kind)
    if "anyOf" in schema:
        return "|".join(_type(s) for s in schema["anyOf"])
    return str(kind) if kind else "any"


def call(obj: canopy.DynamicObject, method: str, arguments: str | None) -> str:
    try:
        args = json.loads(arguments) if arguments else {}
    except json.JSONDecodeError as e:
        raise PokeError(f"the arguments are not JSON: {e}") from None
    if not isinstance(args, dict):
        raise PokeError('the arguments are a JSON object: {"name": value, ...}')
    result = canopy.to_json(obj.call(method, args))
    return json.dumps(result, indent=2, ensure_ascii=False)


def report(error: canopy.CanopyError) -> None:
    print(f"canopy: {error.code_name} ({int(error.code)}): {error.message}", file=sys.stderr)
