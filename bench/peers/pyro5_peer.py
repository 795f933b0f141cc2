"""Pyro5 over TCP loopback: a Daemon (its default thread server) and a Proxy
(peerbench's bench_pyro5.py).

    python -m peers.pyro5_peer msgpack | serpent

Rows (pyro5-<serializer>): (a) RTT of ``proxy.add(1, 2)``; (c) ``@oneway`` posts
(Pyro5 runs each in a new server thread, so completion is confirmed by polling
``count()``); (d) 1 MiB echo (serpent carries bytes as base64). Pyro5 has neither
an asyncio client nor several calls in flight on one proxy: no (b).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import Pyro5.api
import serpent

from peers import common as C


@Pyro5.api.expose
class Bench:
    def __init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()
        self.latest: str | None = None

    def add(self, a: int, b: int) -> int:
        return a + b

    @Pyro5.api.oneway  # type: ignore[untyped-decorator,unused-ignore]
    def post(self, text: str) -> None:
        self.latest = text  # the handler
        with self._lock:
            self._n += 1

    def count(self, reset: bool = True) -> int:
        with self._lock:
            n = self._n
            if reset:
                self._n = 0
        return n

    def echo(self, data: Any) -> bytes:
        if isinstance(data, dict):  # serpent: {"data": base64, "encoding": "base64"}
            return bytes(serpent.tobytes(data))
        return bytes(data)


def server() -> None:
    C.server_watchdog()
    daemon = Pyro5.api.Daemon(host=C.HOST, port=0)
    uri = daemon.register(Bench(), "bench")
    C.server_ready(str(uri))
    daemon.requestLoop()


def client(serializer: str) -> None:
    peer = f"pyro5-{serializer}"
    Pyro5.api.config.SERIALIZER = serializer
    payload = C.echo_payload()
    with C.ServerProcess("peers.pyro5_peer") as running:
        with Pyro5.api.Proxy(running.address) as warm:  # the throwaway connection
            C.connect_retry(warm._pyroBind)
            for _ in range(C.N_CONN_WARM):
                warm.add(1, 2)
            for _ in range(C.N_CONN_WARM_ECHO):
                warm.echo(payload)
        with Pyro5.api.Proxy(running.address) as proxy:
            C.connect_retry(proxy._pyroBind)
            assert proxy.add(1, 2) == 3
            C.emit(peer, "a_sync_rtt", **C.measure_sync_rtt(lambda: proxy.add(1, 2)))

            def oneway(n: int) -> C.Fields:
                proxy.count()
                deadline = time.perf_counter() + C.TIME_CAP
                sent = 0
                capped = False
                started = time.perf_counter()
                for i in range(n):
                    proxy.post(C.ONEWAY_TEXT)
                    sent += 1
                    if (i & 1023) == 0 and time.perf_counter() > deadline:
                        capped = True
                        break
                got = 0
                end = time.perf_counter() + 30  # each post runs in a thread: poll, bounded
                while time.perf_counter() < end:
                    got = proxy.count(False)
                    if got >= sent:
                        break
                    time.sleep(0.001)
                return C.oneway_fields(sent, got, time.perf_counter() - started, capped)

            oneway(C.N_ONEWAY // 20)  # warm-up
            C.emit(peer, "c_oneway", **oneway(C.N_ONEWAY))

            def echo(data: bytes) -> bytes:
                back = proxy.echo(data)
                return bytes(serpent.tobytes(back)) if isinstance(back, dict) else bytes(back)

            C.emit(peer, "d_echo_1mib", **C.measure_echo(echo, payload))


if __name__ == "__main__":
    C.process_setup()
    if sys.argv[1] == "server":
        server()
    else:
        client(sys.argv[1])
