"""``canopy mcp serve URL``: the object at URL as a Model Context Protocol server, over
stdio or streamable HTTP, with the official ``mcp`` SDK (``pip install 'canopy[mcp]'``).

Each method of the object is a tool named ``i_session.generate`` (interface, dot,
method), described and typed from ``adescribe`` (MCP profile). A call that returns
interfaces gives each new object a handle (``o1``, ``o2``...) and makes its methods
tools too, named with the handle in front (``o1.i_session.generate``), then announces
``notifications/tools/list_changed``. Those objects belong to the MCP session and are
released when it ends (or with the ``canopy.release`` tool).
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import canopy
from canopy.errors import CanopyError
from canopy.runtime._dynamic import DynamicObject
from canopy.runtime._reflect import MethodDescription

if TYPE_CHECKING:
    import mcp_types as types
    from mcp.server import Server, ServerRequestContext

Transport = Literal["stdio", "http"]
RELEASE = "canopy.release"
HOST = "127.0.0.1"
PORT = 8765
PATH = "/mcp"


class Tools:
    """The tools one MCP session sees: the root object's, and those of every object a
    call returned to it, each under its handle. Closing releases those objects (never
    the root, which every session shares)."""

    def __init__(self, root: DynamicObject) -> None:
        self.root = root
        self.objects: dict[str, DynamicObject] = {}  # handle -> object
        self._count = 0

    def __iter__(self) -> Iterator[tuple[str, MethodDescription]]:
        """(tool name, method) for every tool, the root's first."""
        for m in self.root.description.methods():
            yield m.tool_name, m
        for handle, obj in self.objects.items():
            for m in obj.description.methods():
                yield f"{handle}.{m.tool_name}", m

    def find(self, name: str) -> tuple[DynamicObject, str]:
        """The object and the method (``interface.method``) tool ``name`` calls."""
        for obj, prefix in [(self.root, ""), *((o, f"{h}.") for h, o in self.objects.items())]:
            if not name.startswith(prefix):
                continue
            for m in obj.description.methods():
                if name == prefix + m.tool_name:
                    return obj, f"{m.interface}.{m.name}"
        raise KeyError(name)

    def handle_of(self, obj: DynamicObject) -> str | None:
        for handle, held in self.objects.items():
            if held.proxy is obj.proxy:
                return handle
        return None

    async def adopt(self, value: Any) -> tuple[Any, list[str]]:
        """``value`` as JSON (each object as its reference), and a line for each object
        new to this session, which is now held under a handle of its own."""
        lines: list[str] = []

        async def walk(v: Any, where: str) -> Any:
            if isinstance(v, DynamicObject):
                if v.proxy is self.root.proxy:
                    return v.ref
                handle = self.handle_of(v)
                if handle is None:
                    await v.adescribe()
                    self._count += 1
                    handle = f"o{self._count}"
                    self.objects[handle] = v
                    names = ", ".join(f"{handle}.{m.tool_name}" for m in v.description.methods())
                    kind = v.description.interfaces[0].name if v.description.interfaces else "?"
                    lines.append(
                        f"{where or 'the result'} is object {handle} ({kind}); its tools: "
                        f"{names or 'none'}. {RELEASE} with handle {handle!r} releases it."
                    )
                return v.ref
            if isinstance(v, dict):
                return {k: await walk(x, f"{where}.{k}" if where else k) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [await walk(x, f"{where}[{i}]") for i, x in enumerate(v)]
            return v

        return await walk(value, ""), lines

    def resolve(self, arguments: Any) -> Any:
        """``arguments`` with each reference to an object held here as that object, so
        that passing it on counts the reference."""
        if isinstance(arguments, dict):
            if set(arguments) <= {"zone", "object", "interface", "kind"}:
                for obj in [self.root, *self.objects.values()]:
                    ref = obj.ref
                    if all(arguments.get(k) == ref[k] for k in ("zone", "object", "interface")):
                        return obj
            return {k: self.resolve(v) for k, v in arguments.items()}
        if isinstance(arguments, list):
            return [self.resolve(v) for v in arguments]
        return arguments

    def release(self, handle: str) -> bool:
        obj = self.objects.pop(handle, None)
        if obj is None:
            return False
        if self.handle_of(obj) is None:  # the same proxy may be held under another handle
            obj.close()
        return True

    def close(self) -> None:
        objects, self.objects = self.objects, {}
        for obj in objects.values():
            obj.close()


def server(shared: Tools, *, name: str = "canopy") -> Server[Any]:
    """An MCP server (the SDK's low-level ``Server``) whose tools call ``shared.root``
    (described: from ``adynamic``) and the objects its calls return. Each MCP session
    holds its objects in a ``Tools`` of its own; ``shared`` serves requests that come
    with no session (the 2026 protocol's), and is the caller's to close."""
    import mcp_types as types
    from mcp.server import NotificationOptions, Server
    from mcp.server.connection import Connection
    from mcp.server.models import InitializationOptions
    from mcp.shared.exceptions import MCPError
    from mcp_types.version import MODERN_PROTOCOL_VERSIONS

    root = shared.root

    def tools_of(ctx: ServerRequestContext[Any]) -> Tools:
        # The SDK keeps per-connection state and teardown on its Connection, which
        # the request's session holds (no public accessor in mcp 2.x).
        connection = getattr(ctx.session, "_connection", None)
        if not isinstance(connection, Connection) or ctx.protocol_version in (
            MODERN_PROTOCOL_VERSIONS
        ):
            return shared
        found = connection.state.get(__name__)
        if not isinstance(found, Tools):
            found = connection.state[__name__] = Tools(root)
            connection.exit_stack.callback(found.close)
        return found

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        listed = [
            types.Tool(
                name=name,
                description=m.description,
                input_schema=m.inputs or {"type": "object"},
                output_schema=m.outputs or None,
            )
            for name, m in tools_of(ctx)
        ]
        listed.append(
            types.Tool(
                name=RELEASE,
                description="Release an object a tool returned, and drop its tools.",
                input_schema={
                    "type": "object",
                    "properties": {"handle": {"type": "string", "description": "e.g. o1"}},
                    "required": ["handle"],
                    "additionalProperties": False,
                },
            )
        )
        return types.ListToolsResult(tools=listed)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tools = tools_of(ctx)
        arguments = params.arguments or {}
        if params.name == RELEASE:
            handle = str(arguments.get("handle"))
            if not tools.release(handle):
                return _error(f"there is no object {handle!r}: {_handles(tools)}")
            await _changed(ctx)
            return _text(f"released {handle}")
        try:
            obj, method = tools.find(params.name)
        except KeyError:
            raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name!r}") from None
        try:
            value = await obj.acall(method, tools.resolve(arguments))
            result, lines = await tools.adopt(value)
        except CanopyError as e:
            return _error(f"{e.code_name} ({int(e.code)}): {e.message}")
        if lines:
            await _changed(ctx)
        structured = result if isinstance(result, dict) else {}
        content: list[types.ContentBlock] = [
            types.TextContent(text=json.dumps(structured, ensure_ascii=False))
        ]
        content += [types.TextContent(text=line) for line in lines]
        return types.CallToolResult(content=content, structured_content=structured)

    async def _changed(ctx: ServerRequestContext[Any]) -> None:
        # On the request's own channel: over HTTP it rides the call's response stream,
        # which the client reads for sure (the standalone GET stream is optional).
        await ctx.session.send_notification(
            types.ToolListChangedNotification(), related_request_id=ctx.request_id
        )

    class _Server(Server[Any]):
        def create_initialization_options(
            self,
            notification_options: NotificationOptions | None = None,
            experimental_capabilities: dict[str, dict[str, Any]] | None = None,
            extensions: dict[str, dict[str, Any]] | None = None,
        ) -> InitializationOptions:
            # The HTTP session manager asks with no options: say so there too.
            return super().create_initialization_options(
                notification_options or NotificationOptions(tools_changed=True),
                experimental_capabilities,
                extensions,
            )

    description = "; ".join(i.name for i in root.description.interfaces)
    found = _Server(
        name,
        version=canopy.__version__,
        description=f"Canopy object: {description}" if description else None,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    return found


def _handles(tools: Tools) -> str:
    held = ", ".join(tools.objects)
    return f"held: {held}" if held else "none is held"


def _text(text: str) -> types.CallToolResult:
    import mcp_types as types

    return types.CallToolResult(content=[types.TextContent(text=text)])


def _error(text: str) -> types.CallToolResult:
    import mcp_types as types

    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


async def aserve(
    url: str,
    *,
    transport: Transport = "stdio",
    port: int = PORT,
    name: str = "canopy",
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    server_hostname: str | None = None,
    timeout: float | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Connect to the Canopy object at ``url`` and serve it over MCP until the client
    goes (stdio) or until cancelled (``"http"``: ``http://127.0.0.1:PORT/mcp``; port 0
    picks a free one). ``ready`` is called with the HTTP URL once it listens."""
    if transport not in ("stdio", "http"):
        raise ValueError(f"unknown MCP transport {transport!r}: use 'stdio' or 'http'")
    tls = None
    if tls_ca is not None or tls_cert is not None:
        from canopy.streams.tls import client_context

        tls = client_context(cafile=tls_ca, certfile=tls_cert, keyfile=tls_key)
    async with canopy.AsyncZone("canopy-mcp") as zone:
        proxy = await zone.connect(
            url, canopy.AnyObject, tls=tls, server_hostname=server_hostname, timeout=timeout
        )
        root = await canopy.adynamic(proxy)
        del proxy
        shared = Tools(root)
        mcp_server = server(shared, name=name)
        try:
            if transport == "stdio":
                from mcp.server.stdio import stdio_server

                async with stdio_server() as (read, write):
                    await mcp_server.run(read, write, mcp_server.create_initialization_options())
            else:
                await _serve_http(mcp_server, port, ready)
        finally:
            shared.close()
            root.close()


async def _serve_http(
    mcp_server: Server[Any], port: int, ready: Callable[[str], None] | None
) -> None:
    import uvicorn

    app = mcp_server.streamable_http_app(streamable_http_path=PATH, host=HOST)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(128)
        url = f"http://{HOST}:{sock.getsockname()[1]}{PATH}"
        if ready is not None:
            ready(url)
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        sock.close()


def serve(url: str, **options: Any) -> None:
    """``aserve`` on an event loop of its own (``canopy.run``)."""
    canopy.run(aserve(url, **options))


def announce(url: str) -> None:
    print(f"canopy mcp: serving {url}", file=sys.stderr, flush=True)
