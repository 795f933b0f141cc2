"""The raw floors: the same workloads with no RPC framework at all, framed as
peerbench's bench_raw.py and bench_raw_asyncio.py frame them.

    python -m peers.raw tcp | unix | tls CERTDIR | shm   # blocking ping-pong and more
    python -m peers.raw tcp-poll | unix-poll             # (a) only, polling as canopy does
    python -m peers.raw asyncio | uvloop [unix]          # asyncio streams, direct and mux

Blocking frame: <u32 length><u8 type><payload>; asyncio frame adds a u32 request id.
Types: ADD (<qq>, reply <q>), POST (one-way), COUNT (reply <q>, the posts since the
last COUNT), ECHO (reply: the payload). The servers parse every frame in Python and
call a handler per message, as a dispatcher would: floors for a Python framework.
Rows (peer names): raw-<kind> (a) RTT, (c) one ``sendall`` per post, (d) 1 MiB echo;
raw-<kind>-bufw (c) through a 64 KiB buffered writer; raw-<loop> (b) ping-pong RTT,
(c), (d) and (h) ``N_CLIENTS`` connections making a few ADDs each; raw-<loop>-mux (b) RTT
and 16 in flight through a minimal request-id multiplexer; over a Unix socket
(raw-<loop>-unix, raw-<loop>-unix-mux) only (b). TLS and shared memory give
(a) only; shm needs canopy (its ``canopy.streams.shm`` rings carry the frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from peers import common as C

HEAD = struct.Struct("<IB")
AHEAD = struct.Struct("<IBI")  # asyncio: with a request id
ADD = struct.Struct("<qq")
RESULT = struct.Struct("<q")
T_ADD, T_POST, T_COUNT, T_ECHO = 1, 2, 3, 4
READ_BUFFER = 256 * 1024
WRITE_BUFFER = 64 * 1024


class Reader(Protocol):
    def read(self, size: int, /) -> bytes: ...


class StreamReader:
    """``read(n)`` over a canopy stream's ``receive``: at most n bytes, short at the end."""

    def __init__(self, receive: Callable[[int], bytes]) -> None:
        self.receive = receive
        self.buffer = bytearray()

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self.receive(READ_BUFFER)
            if not data:
                break
            self.buffer += data
        taken = bytes(self.buffer[:size])
        del self.buffer[:size]
        return taken


# ---------------------------------------------------------------- blocking server


def serve_frames(read: Callable[[int], bytes], send: Callable[[bytes], object]) -> None:
    count = 0
    latest: list[bytes] = []

    def on_post(payload: bytes) -> None:  # the handler: keeps the latest
        latest[:] = (payload,)

    with contextlib.suppress(ConnectionError, OSError):
        while len(head := read(HEAD.size)) == HEAD.size:
            size, kind = HEAD.unpack(head)
            body = read(size) if size else b""
            if kind == T_ADD:
                a, b = ADD.unpack(body)
                send(HEAD.pack(8, T_ADD) + RESULT.pack(a + b))
            elif kind == T_POST:
                on_post(body)
                count += 1
            elif kind == T_COUNT:
                send(HEAD.pack(8, T_COUNT) + RESULT.pack(count))
                count = 0
            elif kind == T_ECHO:
                send(HEAD.pack(size, T_ECHO))
                send(body)


def serve_connection(conn: socket.socket, context: ssl.SSLContext | None, poll: bool) -> None:
    with conn:
        if conn.family != socket.AF_UNIX:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            conn = context.wrap_socket(conn, server_side=True)
        if poll:
            stream = polling(conn)
            serve_frames(StreamReader(stream.receive).read, stream.send)
            return
        with conn.makefile("rb", buffering=READ_BUFFER) as reader:
            serve_frames(reader.read, conn.sendall)


def polling(sock: socket.socket) -> Any:
    """``sock`` read as canopy's blocking socket stream reads: polled briefly, then
    waited on in the kernel (the ``-poll`` floors: same exchange, same waiting)."""
    from canopy.streams._socket import SocketStream

    return SocketStream(sock)


def server(kind: str, arg: str) -> None:
    C.server_watchdog()
    context: ssl.SSLContext | None = None
    poll = kind.endswith("-poll")
    kind = kind.removesuffix("-poll")
    if kind == "shm":
        from canopy.streams import shm

        stream = shm.attach(arg)
        C.server_ready("shm")
        serve_frames(StreamReader(stream.receive).read, stream.send)
        return
    if kind == "unix":
        address: Any = os.path.join(arg, "raw.sock")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)  # an earlier raw server's, in the same folder
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(address)
    else:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((C.HOST, 0))
        address = listener.getsockname()[1]
        if kind == "tls":
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(os.path.join(arg, "chain.pem"))
    listener.listen(16)
    C.server_ready(address)
    for _ in range(64):  # a bounded number of connections
        conn, _ = listener.accept()
        threading.Thread(target=serve_connection, args=(conn, context, poll), daemon=True).start()


# ---------------------------------------------------------------- blocking client


class Client:
    def __init__(self, kind: str, address: str, where: str) -> None:
        self.reader: Reader
        self.sock: socket.socket | None = None
        poll = kind.endswith("-poll")
        kind = kind.removesuffix("-poll")
        if kind == "shm":
            raise ValueError("use ShmClient")
        if kind == "unix":

            def unix() -> socket.socket:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(address)
                return sock

            self.sock = C.connect_retry(unix)
        else:
            self.sock = C.connect_retry(lambda: socket.create_connection((C.HOST, int(address))))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if kind == "tls":
                context = ssl.create_default_context(cafile=os.path.join(where, "ca.pem"))
                self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        self.send: Callable[[bytes], object] = self.sock.sendall
        if poll:
            stream = polling(self.sock)
            self.reader = StreamReader(stream.receive)
            self.send = stream.send
        else:
            self.reader = self.sock.makefile("rb", buffering=READ_BUFFER)

    def _reply(self) -> bytes:
        size, _ = HEAD.unpack(self.reader.read(HEAD.size))
        return self.reader.read(size)

    def add(self, a: int, b: int) -> int:
        self.send(HEAD.pack(16, T_ADD) + ADD.pack(a, b))
        return int(RESULT.unpack(self._reply())[0])

    def count(self) -> int:
        self.send(HEAD.pack(0, T_COUNT))
        return int(RESULT.unpack(self._reply())[0])

    def echo(self, payload: bytes) -> bytes:
        self.send(HEAD.pack(len(payload), T_ECHO))
        self.send(payload)
        return self._reply()

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()


class ShmClient(Client):
    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.reader = StreamReader(stream.receive)
        self.send = stream.send
        self.sock = None

    def close(self) -> None:
        self.stream.close()


def oneway(client: Client, buffered: bool, n: int) -> C.Fields:
    """``n`` posts, then COUNT, which the server answers after all earlier posts."""
    assert client.sock is not None
    client.count()  # reset
    payload = C.ONEWAY_BYTES
    pack = HEAD.pack
    writer = client.sock.makefile("wb", buffering=WRITE_BUFFER) if buffered else None
    write = writer.write if writer is not None else client.sock.sendall
    deadline = time.perf_counter() + C.TIME_CAP
    sent = 0
    capped = False
    started = time.perf_counter()
    for i in range(n):
        write(pack(len(payload), T_POST) + payload)
        sent += 1
        if (i & 1023) == 0 and time.perf_counter() > deadline:
            capped = True
            break
    if writer is not None:
        writer.flush()
    got = client.count()
    seconds = time.perf_counter() - started
    if writer is not None:
        writer.close()
    return C.oneway_fields(sent, got, seconds, capped)


def blocking_client(kind: str, where: str) -> None:
    peer = f"raw-{kind}"
    payload = C.echo_payload()
    if kind == "shm":
        from canopy.streams import shm

        channel = shm.Channel.create()
        command = [sys.executable, "-m", "peers.raw", "server", "shm", channel.spec]
        with C.ServerProcess("", command=command, pass_fds=channel.pass_fds):
            channel.close_child_end()
            client: Client = ShmClient(channel.stream())
            try:
                for _ in range(C.N_CONN_WARM):
                    client.add(1, 2)
                for _ in range(C.N_CONN_WARM_ECHO):
                    client.echo(payload)
                assert client.add(1, 2) == 3
                C.emit(peer, "a_sync_rtt", **C.measure_sync_rtt(lambda: client.add(1, 2)))
            finally:
                client.close()
        return
    with C.ServerProcess("peers.raw", kind, where) as running:
        warm = Client(kind, running.address, where)  # the throwaway connection
        for _ in range(C.N_CONN_WARM):
            warm.add(1, 2)
        for _ in range(C.N_CONN_WARM_ECHO):
            warm.echo(payload)
        warm.close()
        client = Client(kind, running.address, where)
        try:
            assert client.add(1, 2) == 3
            C.emit(peer, "a_sync_rtt", **C.measure_sync_rtt(lambda: client.add(1, 2)))
            if kind == "tls" or kind.endswith("-poll"):
                return
            oneway(client, False, C.N_ONEWAY // 10)  # warm-up
            C.emit(peer, "c_oneway", **oneway(client, False, C.N_ONEWAY))
            C.emit(f"{peer}-bufw", "c_oneway", **oneway(client, True, C.N_ONEWAY))
            C.emit(peer, "d_echo_1mib", **C.measure_echo(client.echo, payload))
        finally:
            client.close()


# ---------------------------------------------------------------- asyncio


def run(coro: Coroutine[Any, Any, None], loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        uvloop.run(coro)
        return
    asyncio.run(coro)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    count = 0
    latest: list[bytes] = []
    readexactly, write, drain = reader.readexactly, writer.write, writer.drain
    try:
        while True:
            size, kind, rid = AHEAD.unpack(await readexactly(AHEAD.size))
            body = await readexactly(size) if size else b""
            if kind == T_ADD:
                a, b = ADD.unpack(body)
                write(AHEAD.pack(8, T_ADD, rid) + RESULT.pack(a + b))
                await drain()
            elif kind == T_POST:
                latest[:] = (body,)  # the handler
                count += 1
            elif kind == T_COUNT:
                write(AHEAD.pack(8, T_COUNT, rid) + RESULT.pack(count))
                count = 0
                await drain()
            elif kind == T_ECHO:
                write(AHEAD.pack(size, T_ECHO, rid))
                write(body)
                await drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def server_main(where: str | None) -> None:
    if where is None:
        listening = await asyncio.start_server(handle, C.HOST, 0, backlog=1024)
        address: Any = listening.sockets[0].getsockname()[1]
    else:
        address = os.path.join(where, "raw-asyncio.sock")
        listening = await asyncio.start_unix_server(handle, address, backlog=1024)
    C.server_ready(address)
    async with listening:
        await C.wait_sigterm()


class Direct:
    """One call at a time: write, drain, read the reply."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer

    async def _call(self, kind: int, payload: bytes) -> bytes:
        self.w.write(AHEAD.pack(len(payload), kind, 0) + payload)
        await self.w.drain()
        size, _, _ = AHEAD.unpack(await self.r.readexactly(AHEAD.size))
        return await self.r.readexactly(size)

    async def add(self, a: int, b: int) -> int:
        return int(RESULT.unpack(await self._call(T_ADD, ADD.pack(a, b)))[0])

    async def count(self) -> int:
        return int(RESULT.unpack(await self._call(T_COUNT, b""))[0])

    async def echo(self, payload: bytes) -> bytes:
        self.w.write(AHEAD.pack(len(payload), T_ECHO, 0))
        self.w.write(payload)
        await self.w.drain()
        size, _, _ = AHEAD.unpack(await self.r.readexactly(AHEAD.size))
        return await self.r.readexactly(size)

    async def close(self) -> None:
        self.w.close()
        with contextlib.suppress(ConnectionError):
            await self.w.wait_closed()


class Mux(Direct):
    """The least a concurrent-call client must do: request id -> Future, one reader."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.next_id = 0
        self.loop = asyncio.get_running_loop()
        self.task = self.loop.create_task(self._read())

    async def _read(self) -> None:
        readexactly, pending = self.r.readexactly, self.pending
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                size, _, rid = AHEAD.unpack(await readexactly(AHEAD.size))
                body = await readexactly(size) if size else b""
                future = pending.pop(rid, None)
                if future is not None and not future.done():
                    future.set_result(body)

    async def add(self, a: int, b: int) -> int:
        self.next_id = rid = (self.next_id + 1) & 0xFFFFFFFF
        future = self.loop.create_future()
        self.pending[rid] = future
        self.w.write(AHEAD.pack(16, T_ADD, rid) + ADD.pack(a, b))
        await self.w.drain()
        return int(RESULT.unpack(await future)[0])

    async def close(self) -> None:
        self.task.cancel()
        await super().close()


async def aoneway(client: Direct, n: int) -> C.Fields:
    await client.count()  # reset
    payload = C.ONEWAY_BYTES
    write, drain = client.w.write, client.w.drain
    deadline = time.perf_counter() + C.TIME_CAP
    sent = 0
    capped = False
    started = time.perf_counter()
    for i in range(n):
        write(AHEAD.pack(len(payload), T_POST, 0) + payload)
        await drain()
        sent += 1
        if (i & 1023) == 0 and time.perf_counter() > deadline:
            capped = True
            break
    got = await client.count()
    return C.oneway_fields(sent, got, time.perf_counter() - started, capped)


async def aconnect(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP port on the loopback, or a Unix socket's path."""
    for _ in range(50):
        try:
            if address.isdigit():
                return await asyncio.open_connection(C.HOST, int(address))
            return await asyncio.open_unix_connection(address)
        except OSError:
            await asyncio.sleep(0.05)
    raise ConnectionError(f"cannot connect to {address}")


async def many_clients(port: str, count: int) -> C.Fields:
    """(h): ``count`` connections, then ``CALLS_PER_CLIENT`` adds on each, all at once."""
    gate = asyncio.Semaphore(C.CONNECTS_AT_ONCE)

    async def connect() -> Direct:
        async with gate:
            return Direct(*await aconnect(port))

    started = time.perf_counter()
    clients = await asyncio.wait_for(
        asyncio.gather(*[connect() for _ in range(count)]), C.CLIENTS_CAP
    )
    connected = time.perf_counter() - started
    try:
        seconds, ok = await C.calls_from_all([functools.partial(c.add, 1, 2) for c in clients])
    finally:
        await asyncio.gather(*[c.close() for c in clients], return_exceptions=True)
    return C.clients_fields(count, connected, seconds, ok)


async def async_client(address: str, loop: str, unix: bool) -> None:
    peer = f"raw-{loop}-unix" if unix else f"raw-{loop}"
    payload = C.echo_payload()
    warm = Direct(*await aconnect(address))  # the throwaway connection
    for _ in range(C.N_CONN_WARM):
        await warm.add(1, 2)
    for _ in range(C.N_CONN_WARM_ECHO):
        await warm.echo(payload)
    await warm.close()
    direct = Direct(*await aconnect(address))
    assert await direct.add(1, 2) == 3
    C.emit(peer, "b_async_rtt", **await C.measure_async_rtt(lambda: direct.add(1, 2)))
    if not unix:
        await aoneway(direct, C.N_ONEWAY // 10)  # warm-up
        C.emit(peer, "c_oneway", **await aoneway(direct, C.N_ONEWAY))
        C.emit(peer, "d_echo_1mib", **await C.measure_async_echo(direct.echo, payload))
    await direct.close()
    mux = Mux(*await aconnect(address))
    assert await mux.add(1, 2) == 3
    C.emit(f"{peer}-mux", "b_async_rtt", **await C.measure_async_rtt(lambda: mux.add(1, 2)))
    C.emit(f"{peer}-mux", "b_conc16", **await C.measure_async_concurrent(lambda: mux.add(1, 2)))
    await mux.close()
    if not unix:
        C.emit(peer, "h_clients", **await many_clients(address, C.N_CLIENTS))


def main(argv: list[str]) -> None:
    C.process_setup()
    if argv[0] == "server":
        if argv[1] in ("asyncio", "uvloop"):
            C.server_watchdog()
            run(server_main(argv[2] if len(argv) > 2 else None), argv[1])
        else:
            server(argv[1], argv[2])
        return
    kind = argv[0]
    if kind in ("asyncio", "uvloop"):
        unix = argv[1:2] == ["unix"]
        with contextlib.ExitStack() as stack:
            folder = tempfile.TemporaryDirectory(prefix="suite-")
            extra = [stack.enter_context(folder)] if unix else []
            running = stack.enter_context(C.ServerProcess("peers.raw", kind, *extra))
            run(async_client(running.address, kind, unix), kind)
        return
    if len(argv) > 1:
        blocking_client(kind, argv[1])
        return
    with tempfile.TemporaryDirectory(prefix="suite-raw-") as where:
        blocking_client(kind, where)


if __name__ == "__main__":
    main(sys.argv[1:])
