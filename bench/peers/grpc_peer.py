"""gRPC (grpcio) over TCP loopback, insecure channel, protobuf messages (peerbench's
bench_grpc.py). The code for bench.proto is generated into a temporary folder first.

    python -m peers.grpc_peer sync   # grpc.server(ThreadPoolExecutor(16)), blocking stub
    python -m peers.grpc_peer aio    # grpc.aio server and stub

Rows: grpc-sync (a) RTT, (b) 16 outstanding ``stub.Add.future()`` calls (a blocking
client), (c) client-streaming ``Post`` fed by a generator, (d) echo; grpc-aio (b) RTT
and 16 coroutines, (c) from an async generator, (d) echo.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from peers import common as C

HERE = os.path.dirname(os.path.abspath(__file__))
OPTIONS = [("grpc.use_local_subchannel_pool", 1)]  # a connection of its own per channel


def generate(where: str) -> None:
    from grpc_tools import protoc

    args = ["protoc", f"-I{HERE}", f"--python_out={where}", f"--grpc_python_out={where}"]
    if protoc.main([*args, os.path.join(HERE, "bench.proto")]) != 0:
        raise RuntimeError("grpc_tools.protoc failed on bench.proto")


def load(where: str) -> tuple[Any, Any]:
    sys.path.insert(0, where)
    return importlib.import_module("bench_pb2"), importlib.import_module("bench_pb2_grpc")


def servicers(pb: Any, pbg: Any) -> tuple[type, type]:
    class Sync(pbg.BenchServicer):  # type: ignore[misc]
        def Add(self, request: Any, context: Any) -> Any:
            return pb.AddReply(result=request.a + request.b)

        def Post(self, notes: Iterator[Any], context: Any) -> Any:
            n = 0
            for note in notes:
                self.latest = note.text  # the handler
                n += 1
            return pb.Count(n=n)

        def Echo(self, request: Any, context: Any) -> Any:
            return pb.Blob(data=request.data)

    class Aio(pbg.BenchServicer):  # type: ignore[misc]
        async def Add(self, request: Any, context: Any) -> Any:
            return pb.AddReply(result=request.a + request.b)

        async def Post(self, notes: AsyncIterator[Any], context: Any) -> Any:
            n = 0
            async for note in notes:
                self.latest = note.text
                n += 1
            return pb.Count(n=n)

        async def Echo(self, request: Any, context: Any) -> Any:
            return pb.Blob(data=request.data)

    return Sync, Aio


def server_sync(pb: Any, pbg: Any) -> None:
    served = grpc.server(ThreadPoolExecutor(max_workers=16))
    pbg.add_BenchServicer_to_server(servicers(pb, pbg)[0](), served)
    port = served.add_insecure_port(f"{C.HOST}:0")
    served.start()
    C.server_ready(port)
    served.wait_for_termination()


async def server_aio(pb: Any, pbg: Any) -> None:
    served = grpc.aio.server()
    pbg.add_BenchServicer_to_server(servicers(pb, pbg)[1](), served)
    port = served.add_insecure_port(f"{C.HOST}:0")
    await served.start()
    C.server_ready(port)
    await C.wait_sigterm()
    await served.stop(None)


def notes(pb: Any, n: int, state: dict[str, Any]) -> Iterator[Any]:
    deadline = time.perf_counter() + C.TIME_CAP
    for i in range(n):
        if (i & 1023) == 0 and time.perf_counter() > deadline:
            state["capped"] = True
            return
        state["sent"] += 1
        yield pb.Note(text=C.ONEWAY_TEXT)


async def anotes(pb: Any, n: int, state: dict[str, Any]) -> AsyncIterator[Any]:
    for note in notes(pb, n, state):
        yield note


def client_sync(pb: Any, pbg: Any, port: int) -> None:
    peer = "grpc-sync"
    payload = C.echo_payload()
    with grpc.insecure_channel(f"{C.HOST}:{port}", options=OPTIONS) as warm:
        grpc.channel_ready_future(warm).result(timeout=15)
        warm_stub = pbg.BenchStub(warm)
        for _ in range(C.N_CONN_WARM):
            warm_stub.Add(pb.AddRequest(a=1, b=2))
        for _ in range(C.N_CONN_WARM_ECHO):
            warm_stub.Echo(pb.Blob(data=payload))
    with grpc.insecure_channel(f"{C.HOST}:{port}", options=OPTIONS) as channel:
        grpc.channel_ready_future(channel).result(timeout=15)
        stub = pbg.BenchStub(channel)
        request = pb.AddRequest

        def add() -> int:
            return int(stub.Add(request(a=1, b=2)).result)

        assert add() == 3
        C.emit(peer, "a_sync_rtt", **C.measure_sync_rtt(add))
        future = stub.Add.future
        C.emit(
            peer,
            "b_conc16",
            **C.measure_windowed(lambda: future(request(a=1, b=2)), lambda f: f.result().result),
        )
        state: dict[str, Any] = {"sent": 0, "capped": False}
        stub.Post(notes(pb, C.N_ONEWAY // 10, state))  # warm-up
        state = {"sent": 0, "capped": False}
        started = time.perf_counter()
        got = stub.Post(notes(pb, C.N_ONEWAY, state)).n
        seconds = time.perf_counter() - started
        C.emit(peer, "c_oneway", **C.oneway_fields(state["sent"], got, seconds, state["capped"]))
        C.emit(
            peer,
            "d_echo_1mib",
            **C.measure_echo(lambda p: stub.Echo(pb.Blob(data=p)).data, payload),
        )


async def client_aio(pb: Any, pbg: Any, port: int) -> None:
    peer = "grpc-aio"
    payload = C.echo_payload()
    async with grpc.aio.insecure_channel(f"{C.HOST}:{port}", options=OPTIONS) as warm:
        await asyncio.wait_for(warm.channel_ready(), 15)
        warm_stub = pbg.BenchStub(warm)
        for _ in range(C.N_CONN_WARM):
            await warm_stub.Add(pb.AddRequest(a=1, b=2))
        for _ in range(C.N_CONN_WARM_ECHO):
            await warm_stub.Echo(pb.Blob(data=payload))
    async with grpc.aio.insecure_channel(f"{C.HOST}:{port}", options=OPTIONS) as channel:
        await asyncio.wait_for(channel.channel_ready(), 15)
        stub = pbg.BenchStub(channel)
        request = pb.AddRequest

        async def add() -> int:
            return int((await stub.Add(request(a=1, b=2))).result)

        assert await add() == 3
        C.emit(peer, "b_async_rtt", **await C.measure_async_rtt(add))
        C.emit(peer, "b_conc16", **await C.measure_async_concurrent(add))
        state: dict[str, Any] = {"sent": 0, "capped": False}
        await stub.Post(anotes(pb, C.N_ONEWAY // 10, state))  # warm-up
        state = {"sent": 0, "capped": False}
        started = time.perf_counter()
        got = (await stub.Post(anotes(pb, C.N_ONEWAY, state))).n
        seconds = time.perf_counter() - started
        C.emit(peer, "c_oneway", **C.oneway_fields(state["sent"], got, seconds, state["capped"]))

        async def echo(data: bytes) -> bytes:
            return bytes((await stub.Echo(pb.Blob(data=data))).data)

        C.emit(peer, "d_echo_1mib", **await C.measure_async_echo(echo, payload))


def main(argv: list[str]) -> None:
    C.process_setup()
    if argv[0] == "server":
        C.server_watchdog()
        pb, pbg = load(argv[2])
        if argv[1] == "sync":
            server_sync(pb, pbg)
        else:
            asyncio.run(server_aio(pb, pbg))
        return
    mode = argv[0]
    with tempfile.TemporaryDirectory(prefix="suite-grpc-") as where:
        generate(where)
        pb, pbg = load(where)
        with C.ServerProcess("peers.grpc_peer", mode, where) as running:
            if mode == "sync":
                client_sync(pb, pbg, int(running.address))
            else:
                asyncio.run(client_aio(pb, pbg, int(running.address)))


if __name__ == "__main__":
    main(sys.argv[1:])
