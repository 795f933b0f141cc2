"""RPyC in service mode over TCP loopback: ThreadedServer and ``rpyc.connect``
(peerbench's bench_rpyc.py, its "tuned" form: TCP_NODELAY on and compression off
at both ends, without which a 1 MiB echo takes 30 times longer).

    python -m peers.rpyc_peer

Rows (rpyc-tuned): (a) RTT through a cached method (``add = conn.root.add``);
(b) 16 outstanding ``rpyc.async_`` results from one thread, not asyncio (RPyC has
no asyncio client); (c) ``rpyc.async_(post)``, replies drained within a window of
1,000 (RPyC has no true one-way); (d) 1 MiB echo.
"""

from __future__ import annotations

import socket
import sys
import time
from collections import deque
from typing import Any

import rpyc
from rpyc.utils.server import ThreadedServer

from peers import common as C

PEER = "rpyc-tuned"


def tune(conn: Any) -> None:
    conn._channel.stream.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn._channel.compress = False


class BenchService(rpyc.Service):  # type: ignore[misc]
    def on_connect(self, conn: Any) -> None:
        tune(conn)
        self.n = 0
        self.latest: str | None = None

    def exposed_add(self, a: int, b: int) -> int:
        return a + b

    def exposed_post(self, text: str) -> None:
        self.latest = text  # the handler
        self.n += 1

    def exposed_count(self) -> int:
        n, self.n = self.n, 0
        return n

    def exposed_echo(self, data: bytes) -> bytes:
        return data


def server() -> None:
    C.server_watchdog()
    served = ThreadedServer(
        BenchService, hostname=C.HOST, port=0, protocol_config={"allow_public_attrs": False}
    )
    served._listen()  # listening before the port is announced
    C.server_ready(served.port)
    served.start()


def client() -> None:
    payload = C.echo_payload()
    with C.ServerProcess("peers.rpyc_peer") as running:
        port = int(running.address)
        warm = C.connect_retry(lambda: rpyc.connect(C.HOST, port))
        tune(warm)
        warm_add = warm.root.add
        for _ in range(C.N_CONN_WARM):
            warm_add(1, 2)
        for _ in range(C.N_CONN_WARM_ECHO):
            warm.root.echo(payload)
        warm.close()
        conn = C.connect_retry(
            lambda: rpyc.connect(C.HOST, port, config={"sync_request_timeout": 60})
        )
        tune(conn)
        try:
            root = conn.root
            add = root.add
            assert add(1, 2) == 3
            C.emit(PEER, "a_sync_rtt", **C.measure_sync_rtt(lambda: add(1, 2)))
            async_add = rpyc.async_(add)
            C.emit(
                PEER,
                "b_conc16",
                **C.measure_windowed(lambda: async_add(1, 2), lambda r: r.value),
            )
            post = rpyc.async_(root.post)
            count = root.count

            def oneway(n: int) -> C.Fields:
                count()
                window: deque[Any] = deque()
                deadline = time.perf_counter() + C.TIME_CAP
                sent = 0
                capped = False
                started = time.perf_counter()
                for i in range(n):
                    window.append(post(C.ONEWAY_TEXT))
                    sent += 1
                    if len(window) > 1000:
                        window.popleft().wait()
                    if (i & 1023) == 0 and time.perf_counter() > deadline:
                        capped = True
                        break
                got = count()  # replies come in order: every post is handled
                return C.oneway_fields(sent, got, time.perf_counter() - started, capped)

            oneway(C.N_ONEWAY // 10)  # warm-up
            C.emit(PEER, "c_oneway", **oneway(C.N_ONEWAY))
            C.emit(PEER, "d_echo_1mib", **C.measure_echo(root.echo, payload))
        finally:
            conn.close()


if __name__ == "__main__":
    C.process_setup()
    if sys.argv[1:2] == ["server"]:
        server()
    else:
        client()
