"""Child-process zones: a Python process started to host one service, linked to its parent
over a socketpair, so that it can crash, hang or be killed without taking the parent
with it.

The parent starts ``python -m canopy.transports.child`` with the child's end of the
socketpair inherited and the entry point named on the command line; the child
imports the entry point, makes its zone and its root object (the entry point is
called with the zone if it takes an argument), and accepts the one link over
which the parent receives that root. Objects travel both ways from then on:
the parent hands the child callbacks as arguments, like any peer. The child
lives exactly as long as the link: when the parent closes it, exits or dies (the
socket ends), the child's link ends and the child exits. Its standard output and
errors reach the parent's logging, a logger per child zone
(``canopy.child.<name>``), line by line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import IO, Any

from canopy._loops import run
from canopy.errors import RpcError, TransportError
from canopy.runtime._zone import DEFAULT_CALL_TIMEOUT, HANDSHAKE_TIMEOUT, KEEPALIVE, Service
from canopy.streams._base import AsyncStream
from canopy.streams._socket import AsyncSocketStream, SocketStream
from canopy.streams.shm import Channel, aattach, attach
from canopy.transports.stream import (
    AsyncStreamLink,
    BlockingStreamLink,
)
from canopy.wire import ENCODINGS, Encoding, Role

log = logging.getLogger("canopy.transports.child")

STOP_TIMEOUT = 5.0
"""Seconds a child may take to exit once its link has closed, before it is killed."""


class ChildProcess:
    """The parent's handle on a child zone's process: its pid, its link, and how to
    stop it. The child also ends by itself once the link is gone."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], link: Any) -> None:
        self.name = name
        self.process = process
        self.link = link
        self.on_exit: Callable[[ChildProcess], None] | None = None
        self._pumps: list[threading.Thread] = []

    def __repr__(self) -> str:
        return f"<ChildProcess {self.name!r} pid {self.pid} {self.state}>"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def state(self) -> str:
        code = self.process.poll()
        return "running" if code is None else f"exited {code}"

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """Close the link, wait for the child to exit (killing it after ``timeout``
        seconds), and return its exit code."""
        if self.link is not None and not self.link.closed:
            with contextlib.suppress(Exception):
                self.link.close()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%r did not exit within %g s: killed", self, timeout)
            self.process.kill()
            code = self.process.wait(timeout)
        for pump in self._pumps:
            pump.join(timeout)
        if self.on_exit is not None:
            self.on_exit(self)
        return code

    def _link_ended(self, _: object) -> None:
        # However the link ended, the child is on its way out: reap it off this thread.
        threading.Thread(target=self.stop, name=f"canopy-reap-{self.name}", daemon=True).start()

    def _pipe_to_log(self, watch: bool = False) -> None:
        """Log the child's output; with ``watch``, end its link when it exits."""
        logger = logging.getLogger(f"canopy.child.{self.name}")
        for stream, level, then in (
            (self.process.stdout, logging.INFO, None),
            (self.process.stderr, logging.WARNING, self._exited if watch else None),
        ):
            if stream is not None:
                pump = threading.Thread(
                    target=_pump,
                    args=(stream, logger, level, then),
                    name=f"canopy-log-{self.name}",
                    daemon=True,
                )
                pump.start()
                self._pumps.append(pump)

    def _exited(self) -> None:
        """The child's standard error ended: it is exiting. A blocking link reads only
        while the child holds something here, so nobody may be reading to see the
        socket end: end the link now, or the parent would count routes and references
        into a dead process until its next call there."""
        try:
            code = self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return  # it closed its standard error and runs on: its link says when it ends
        link = self.link
        if link is not None and not (link.closed or getattr(link, "_closing", False)):
            link.abort(f"the child process exited (code {code})")


def _pump(
    stream: IO[bytes], logger: logging.Logger, level: int, then: Callable[[], None] | None
) -> None:
    with stream:
        for raw in stream:
            logger.log(level, "%s", raw.decode("utf-8", "replace").rstrip("\n"))
    if then is not None:
        then()


def _command(
    name: str, target: str, link: list[str], mode: str, encodings: Sequence[Encoding]
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "canopy.transports.child",
        "--name",
        name,
        *link,
        "--mode",
        mode,
        "--encodings",
        ",".join(str(int(e)) for e in encodings),
        target,
    ]


def _start(
    name: str,
    target: str,
    mode: str,
    encodings: Sequence[Encoding],
    env: dict[str, str] | None,
    shared_memory: bool,
) -> tuple[socket.socket | Channel, subprocess.Popen[bytes]]:
    """The child process, and the parent's end of the link: a socket, or a shared-memory
    channel whose doorbell the child inherits."""
    parent_end: socket.socket | Channel
    if shared_memory:
        parent_end = Channel.create()
        link, fds = ["--shm", parent_end.spec], parent_end.pass_fds
    else:
        parent_end, child_end = socket.socketpair()
        link, fds = ["--fd", str(child_end.fileno())], (child_end.fileno(),)
    try:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            _command(name, target, link, mode, encodings),
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
    except BaseException:
        parent_end.close()
        raise
    finally:
        if isinstance(parent_end, Channel):
            parent_end.close_child_end()  # the child's death must end the doorbell
        else:
            child_end.close()
    return parent_end, process


def spawn(
    zone: Service,
    name: str,
    target: str,
    *,
    root: Any = None,
    root_interface: int = 0,
    encodings: tuple[Encoding, ...] = ENCODINGS,
    call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
    keepalive: float | None = KEEPALIVE,
    timeout: float = HANDSHAKE_TIMEOUT,
    env: dict[str, str] | None = None,
    shared_memory: bool = False,
) -> ChildProcess:
    """Start a child process serving ``target``'s object, linked to ``zone`` (blocking)
    over a socketpair or, with ``shared_memory``, over shared-memory rings."""
    end, process = _start(name, target, "blocking", encodings, env, shared_memory)
    child = ChildProcess(name, process, None)
    child._pipe_to_log(watch=True)
    link = BlockingStreamLink(
        zone,
        end.stream() if isinstance(end, Channel) else SocketStream(end),
        Role.CONNECTING,
        root=root,
        root_interface=root_interface,
        encodings=encodings,
        call_timeout=call_timeout,
        keepalive=keepalive,
        on_end=child._link_ended,
    )
    child.link = link
    try:
        link.open(timeout)
    except BaseException:
        link.abort("the child did not link")
        child.stop(1.0)
        raise _failed(name, process) from None
    link.on_idle = link.close  # the last reference into the child ends it
    return child


async def aspawn(
    zone: Service,
    name: str,
    target: str,
    *,
    root: Any = None,
    root_interface: int = 0,
    encodings: tuple[Encoding, ...] = ENCODINGS,
    call_timeout: float | None = DEFAULT_CALL_TIMEOUT,
    keepalive: float | None = KEEPALIVE,
    timeout: float = HANDSHAKE_TIMEOUT,
    env: dict[str, str] | None = None,
    shared_memory: bool = False,
) -> ChildProcess:
    """Start a child process serving ``target``'s object, linked to ``zone`` (asyncio)."""
    end, process = _start(name, target, "asyncio", encodings, env, shared_memory)
    child = ChildProcess(name, process, None)
    child._pipe_to_log()
    stream: AsyncStream
    if isinstance(end, Channel):
        stream = end.astream()
    else:
        reader, writer = await asyncio.open_connection(sock=end)
        stream = AsyncSocketStream(reader, writer)
    link = AsyncStreamLink(
        zone,
        stream,
        Role.CONNECTING,
        root=root,
        root_interface=root_interface,
        encodings=encodings,
        call_timeout=call_timeout,
        keepalive=keepalive,
        on_end=child._link_ended,
    )
    child.link = link
    link.on_idle = link.close  # the last reference into the child ends it
    try:
        await link.open(timeout)
    except BaseException:
        link.abort("the child did not link")
        await link.wait_closed()
        await asyncio.get_running_loop().run_in_executor(None, child.stop, 1.0)
        raise _failed(name, process) from None
    return child


def _failed(name: str, process: subprocess.Popen[bytes]) -> RpcError:
    code = process.poll()
    why = f"it exited with {code}" if code is not None else "it did not answer"
    return TransportError(
        f"child zone {name!r} (pid {process.pid}) did not start: {why}; its output is logged "
        f"under canopy.child.{name}"
    )


# ---------------------------------------------------------------- the child's side


def load(target: str) -> Callable[..., Any]:
    """The entry point ``package.module:function`` (or a class)."""
    import importlib

    module_name, colon, attribute = target.partition(":")
    if not colon:
        raise ValueError(f"{target!r}: name the entry point as package.module:function")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    if not callable(found):
        raise TypeError(f"{target!r} is not callable")
    return found  # type: ignore[no-any-return]


def make_root(entry: Callable[..., Any], zone: Any) -> tuple[Any, int]:
    """The root the entry point makes (given the zone if it takes an argument), and the
    interface it is served as: its most derived one."""
    import inspect

    from canopy.runtime._plans import implemented

    try:
        takes_zone = bool(inspect.signature(entry).parameters)
    except (TypeError, ValueError):
        takes_zone = False
    root = entry(zone) if takes_zone else entry()
    interfaces = implemented(type(root))
    if not interfaces:
        raise TypeError(
            f"the entry point returned {type(root).__qualname__}, which implements no Canopy "
            "interface"
        )
    return root, next(iter(interfaces))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m canopy.transports.child")
    parser.add_argument("--name", required=True)
    over = parser.add_mutually_exclusive_group(required=True)
    over.add_argument("--fd", type=int, help="the child's end of a socketpair")
    over.add_argument("--shm", help="a shared-memory channel's spec")
    parser.add_argument("--mode", choices=("blocking", "asyncio"), required=True)
    parser.add_argument("--encodings", required=True)
    parser.add_argument("target")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    encodings = tuple(Encoding(int(e)) for e in args.encodings.split(","))
    where: socket.socket | str = socket.socket(fileno=args.fd) if args.shm is None else args.shm
    if args.mode == "asyncio":
        run(_serve_async(args.name, args.target, where, encodings))
    else:
        _serve_blocking(args.name, args.target, where, encodings)
    sys.stdout.flush()
    sys.stderr.flush()
    # Worker threads may still be inside a hung implementation: the process ends anyway.
    os._exit(0)


def _serve_blocking(
    name: str, target: str, where: socket.socket | str, encodings: tuple[Encoding, ...]
) -> None:
    from canopy.runtime import Zone

    entry = load(target)
    ended = threading.Event()
    with Zone(name) as zone:
        root, interface = make_root(entry, zone)
        link = BlockingStreamLink(
            zone,
            SocketStream(where) if isinstance(where, socket.socket) else attach(where),
            Role.ACCEPTING,
            root=root,
            root_interface=interface,
            encodings=encodings,
            on_end=lambda _: ended.set(),
        )
        del root
        link.start()
        ended.wait()


async def _serve_async(
    name: str, target: str, where: socket.socket | str, encodings: tuple[Encoding, ...]
) -> None:
    from canopy.runtime import AsyncZone

    entry = load(target)
    ended = asyncio.Event()
    async with AsyncZone(name) as zone:
        root, interface = make_root(entry, zone)
        stream: AsyncStream
        if isinstance(where, socket.socket):
            reader, writer = await asyncio.open_connection(sock=where)
            stream = AsyncSocketStream(reader, writer)
        else:
            stream = aattach(where)
        AsyncStreamLink(
            zone,
            stream,
            Role.ACCEPTING,
            root=root,
            root_interface=interface,
            encodings=encodings,
            on_end=lambda _: ended.set(),
        )
        del root
        await ended.wait()


if __name__ == "__main__":
    sys.exit(main())
