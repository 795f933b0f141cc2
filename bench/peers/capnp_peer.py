"""pycapnp (Cap'n Proto RPC, two-party) over TCP loopback, asyncio and the KJ loop
(peerbench's bench_capnp.py).

    python -m peers.capnp_peer asyncio | uvloop

Rows (capnp, capnp-uvloop): (b) sequential ``await cap.add(1, 2)`` and 16 coroutines;
(c) Cap'n Proto has no one-way call (pycapnp has no ``-> stream``), so calls are
fired without awaiting each, at most 1,000 outstanding, then ``count()``; (d) 1 MiB
echo. The API is asyncio only: no (a).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

import capnp

from peers import common as C

capnp.remove_import_hook()
schema: Any = capnp.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench.capnp"))


class BenchImpl(schema.Bench.Server):  # type: ignore[misc]
    def __init__(self) -> None:
        self.n = 0
        self.latest: str | None = None

    async def add(self, a: int, b: int, _context: Any, **kwargs: Any) -> int:
        return a + b

    async def post(self, text: str, _context: Any, **kwargs: Any) -> None:
        self.latest = text  # the handler
        self.n += 1

    async def count(self, _context: Any, **kwargs: Any) -> int:
        n, self.n = self.n, 0
        return n

    async def echo(self, data: bytes, _context: Any, **kwargs: Any) -> bytes:
        return data


def run(coro: Coroutine[Any, Any, None], loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        uvloop.run(capnp.run(coro))
        return
    asyncio.run(capnp.run(coro))


async def server_main() -> None:
    async def connected(stream: Any) -> None:
        await capnp.TwoPartyServer(stream, bootstrap=BenchImpl()).on_disconnect()

    served = await capnp.AsyncIoStream.create_server(connected, C.HOST, 0)
    C.server_ready(served.sockets[0].getsockname()[1])
    async with served:
        await C.wait_sigterm()


async def connect(port: int) -> Any:
    for _ in range(50):
        try:
            stream = await capnp.AsyncIoStream.create_connection(host=C.HOST, port=port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        # pycapnp 2.2.4: a first request that reaches the server before its
        # TwoPartyServer exists drops the connection; a pause, outside any timing.
        await asyncio.sleep(0.05)
        return stream
    raise ConnectionError(f"cannot connect to port {port}")


async def client_main(port: int, loop: str) -> None:
    peer = "capnp" if loop == "asyncio" else f"capnp-{loop}"
    payload = C.echo_payload()
    warm_stream = await connect(port)  # the throwaway connection
    warm_client = capnp.TwoPartyClient(warm_stream)
    warm = warm_client.bootstrap().cast_as(schema.Bench)
    for _ in range(C.N_CONN_WARM):
        await warm.add(1, 2)
    for _ in range(C.N_CONN_WARM_ECHO):
        await warm.echo(payload)
    del warm
    warm_client.close()
    warm_stream.close()

    stream = await connect(port)
    client = capnp.TwoPartyClient(stream)
    cap = client.bootstrap().cast_as(schema.Bench)

    async def add() -> int:
        return int((await cap.add(1, 2)).result)

    assert await add() == 3
    C.emit(peer, "b_async_rtt", **await C.measure_async_rtt(add))
    C.emit(peer, "b_conc16", **await C.measure_async_concurrent(add))

    async def oneway(n: int) -> C.Fields:
        await cap.count()
        window: deque[Any] = deque()
        deadline = time.perf_counter() + C.TIME_CAP
        sent = 0
        capped = False
        started = time.perf_counter()
        for i in range(n):
            window.append(cap.post(C.ONEWAY_TEXT))
            sent += 1
            if len(window) > 1000:
                await window.popleft()
            if (i & 1023) == 0 and time.perf_counter() > deadline:
                capped = True
                break
        while window:
            await window.popleft()
        got = (await cap.count()).n
        return C.oneway_fields(sent, got, time.perf_counter() - started, capped)

    await oneway(C.N_ONEWAY // 10)  # warm-up
    C.emit(peer, "c_oneway", **await oneway(C.N_ONEWAY))

    async def echo(data: bytes) -> bytes:
        return bytes((await cap.echo(data)).data)

    C.emit(peer, "d_echo_1mib", **await C.measure_async_echo(echo, payload))


if __name__ == "__main__":
    C.process_setup()
    if sys.argv[1] == "server":
        C.server_watchdog()
        run(server_main(), sys.argv[2])
    else:
        with C.ServerProcess("peers.capnp_peer", sys.argv[1]) as running:
            run(client_main(int(running.address), sys.argv[1]), sys.argv[1])
