"""``canopy mcp serve`` in front of a real ``canopy serve`` of the inference demo, driven
by the ``mcp`` SDK's own client: over stdio (the server a subprocess of the client) and
over streamable HTTP (the server a subprocess the test starts and ends by its PID)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.shared.memory import create_client_server_memory_streams

import canopy
from canopy._demo import _implementations
from canopy.mcp import Tools, server
from test_cli_reflect import ENV, TESTS, serve
from test_serve import urls

ROOT_TOOLS = ["i_inference_service.list_models", "i_inference_service.create_session"]
WAIT = 15.0  # seconds, for any one scenario


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    """The tcp URL of one ``canopy serve`` of the inference demo, killed by its PID."""
    process = serve("--listen", "tcp://127.0.0.1:0")
    try:
        (url,) = urls(process, 1)
        yield url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        assert process.stdout is not None
        process.stdout.close()


class Changes:
    """The client's message handler: counts ``notifications/tools/list_changed``."""

    def __init__(self) -> None:
        self.count = 0
        self.event = anyio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.count += 1
            self.event.set()


def text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def walkthrough(session: ClientSession, changes: Changes) -> None:
    """The issue's scenario: list, list_models, create_session, then generate."""
    init = await session.initialize()
    assert init.capabilities.tools is not None and init.capabilities.tools.list_changed
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert list(tools) == [*ROOT_TOOLS, "canopy.release"]
    create = tools["i_inference_service.create_session"]
    assert create.input_schema["required"] == ["model_id"]
    assert create.output_schema is not None and "session" in create.output_schema["properties"]

    models = await session.call_tool("i_inference_service.list_models", {})
    assert isinstance(models, types.CallToolResult) and not models.is_error, text(models)
    assert models.structured_content == {"model_ids": ["echo", "tiny-1"]}

    made = await session.call_tool("i_inference_service.create_session", {"model_id": "tiny-1"})
    assert isinstance(made, types.CallToolResult) and not made.is_error, text(made)
    assert set(made.structured_content["session"]) == {"zone", "object", "interface", "kind"}
    assert "session is object o1 (inference::v1::i_session)" in text(made)
    with anyio.fail_after(5):
        await changes.event.wait()
    names = [t.name for t in (await session.list_tools()).tools]
    assert names == [*ROOT_TOOLS, "o1.i_session.generate", "o1.i_session.cancel", "canopy.release"]

    generated = await session.call_tool(
        "o1.i_session.generate",
        {"prompt": "Tell me about foxes", "options": {"max_tokens": 3}, "sink": None},
    )
    assert isinstance(generated, types.CallToolResult) and not generated.is_error, text(generated)

    for arguments, expected in [
        ({"model_id": "nope"}, "ApplicationError (1): no model 'nope'"),
        ({"model_id": 7}, "INVALID_DATA (-4): "),
    ]:
        bad = await session.call_tool("i_inference_service.create_session", arguments)
        assert isinstance(bad, types.CallToolResult) and bad.is_error
        assert expected in text(bad)

    released = await session.call_tool("canopy.release", {"handle": "o1"})
    assert isinstance(released, types.CallToolResult) and not released.is_error
    assert changes.count == 2
    names = [t.name for t in (await session.list_tools()).tools]
    assert names == [*ROOT_TOOLS, "canopy.release"]
    with pytest.raises(MCPError, match=r"unknown tool 'o1\.i_session\.generate'"):
        await session.call_tool("o1.i_session.generate", {"prompt": "x", "sink": None})


def test_over_stdio(service: str, tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "canopy", "mcp", "serve", service],
        env=ENV,
        cwd=TESTS,
    )

    async def run() -> None:
        changes = Changes()
        with (tmp_path / "stderr.txt").open("w") as errlog, anyio.fail_after(WAIT):
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write, message_handler=changes) as session,
            ):
                await walkthrough(session, changes)

    anyio.run(run)


def test_over_streamable_http(service: str) -> None:
    command = [sys.executable, "-m", "canopy", "mcp", "serve", service]
    process = subprocess.Popen(
        [*command, "--transport", "http", "--port", "0"],
        cwd=TESTS,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        url = announced(process)

        async def run() -> None:
            changes = Changes()
            with anyio.fail_after(WAIT):
                async with (
                    streamable_http_client(url) as (read, write),
                    ClientSession(read, write, message_handler=changes) as session,
                ):
                    await walkthrough(session, changes)

        anyio.run(run)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        assert process.stderr is not None
        process.stderr.close()


def announced(process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 15
    assert process.stderr is not None
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("canopy mcp: serving "):
            return line.removeprefix("canopy mcp: serving ").strip()
    raise AssertionError(f"canopy mcp serve did not say where it listens: {''.join(seen)}")


def test_objects_are_released_when_the_session_ends() -> None:
    """In one process: the sessions an MCP session made are released as it ends, while
    the root, which every MCP session shares, stays."""
    examples = Path(canopy.__file__).parent / "examples"
    inference = canopy.load_idl(examples / "inference.idl").inference
    service_cls, _ = _implementations(inference)

    async def run() -> None:
        async with canopy.AsyncZone("mcp-host") as host:
            proxy = await host.child(
                "inference", lambda zone: service_cls(), inference.i_inference_service
            )
            root = await canopy.adynamic(proxy)
            del proxy
            shared = Tools(root)
            mcp_server = server(shared)
            ended = anyio.Event()

            async def serve_one() -> None:
                try:
                    options = mcp_server.create_initialization_options()
                    await mcp_server.run(mine[0], mine[1], options)
                finally:
                    ended.set()

            with anyio.fail_after(WAIT):
                async with (
                    create_client_server_memory_streams() as (theirs, mine),
                    anyio.create_task_group() as tg,
                ):
                    tg.start_soon(serve_one)
                    async with ClientSession(*theirs) as session:
                        await session.initialize()
                        for model in ("echo", "tiny-1"):
                            made = await session.call_tool(
                                "i_inference_service.create_session", {"model_id": model}
                            )
                            assert not made.is_error
                        assert len(host.imported()) == 3  # the root and two sessions
                    await theirs[1].aclose()  # the client goes: the MCP session ends
                    await ended.wait()
                assert len(host.imported()) == 1
            shared.close()
            root.close()

    anyio.run(run)
