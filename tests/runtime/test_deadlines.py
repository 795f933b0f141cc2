"""Deadlines travel with calls, a caller giving up cancels its callee, and interceptors
see (and may refuse) every call before it goes or runs: in both modes, between zones
of one process and over TCP."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import canopy
from canopy.codegen import load_python
from canopy.errors import ErrorCode
from canopy.idl import compile_text
from scenarios import call_in

c: Any = load_python(
    compile_text(
        """
        namespace calls
        {
            interface i_clock
            {
                // What is left of the call's deadline as the callee sees it (-1: none).
                error_code remaining([out] int64_t& milliseconds);
                // The same, as the next clock sees it when this one calls it.
                error_code relay(const rpc::shared_ptr<i_clock>& next, [out] int64_t& milliseconds);
                // Waits up to milliseconds, or until the caller gives up.
                error_code wait(int32_t milliseconds);
                [tag=1] error_code secret([out] std::string& value);
                error_code open([out] std::string& value);
            };
        }
        """,
        filename="calls.idl",
    )
).calls

TRANSPORTS = ("local", "tcp")
gave_up: list[str] = []  # what each wait saw end it
gave_up_event = threading.Event()


def _left() -> int:
    deadline = canopy.caller().deadline
    return -1 if deadline is None else round((deadline - time.monotonic()) * 1000)


class Clock(c.i_clock):  # type: ignore[misc]
    def remaining(self) -> int:
        return _left()

    async def relay(self, following: Any) -> int:
        return int(await following.remaining())

    async def open(self) -> str:
        return "open"

    async def secret(self) -> str:
        return "secret"


class AsyncWaiting(Clock):
    async def wait(self, milliseconds: int) -> None:
        try:
            await asyncio.sleep(milliseconds / 1000)
        except asyncio.CancelledError:
            gave_up.append("cancelled")
            gave_up_event.set()
            raise
        gave_up.append("finished")


class BlockingWaiting(Clock):
    def wait(self, milliseconds: int) -> None:
        end = time.monotonic() + milliseconds / 1000
        while time.monotonic() < end:
            if canopy.caller().cancelled:
                gave_up.append("cancelled")
                gave_up_event.set()
                return
            time.sleep(0.005)
        gave_up.append("finished")


class Pair:
    """A client zone and a clock served by another zone (a child zone, or a peer zone
    over TCP), in one mode; ``do`` runs a call in either."""

    def __init__(self, mode: str, transport: str) -> None:
        self.mode = mode
        self.loop = asyncio.new_event_loop() if mode == "asyncio" else None
        zone_class: Any = canopy.Zone if mode == "blocking" else canopy.AsyncZone
        self.client = zone_class("client")
        self.server = None if transport == "local" else zone_class("server")
        waiting = BlockingWaiting if mode == "blocking" else AsyncWaiting
        if self.server is None:
            self.clock = self.do(self.client.child, "server", lambda z: waiting(), c.i_clock)
        else:
            server = self.do(self.server.serve, "tcp://127.0.0.1:0", lambda z: waiting(), c.i_clock)
            self.clock = self.do(self.client.connect, server.url, c.i_clock)
        gave_up.clear()
        gave_up_event.clear()

    def do(self, fn: Callable[..., Any], *args: Any) -> Any:
        return call_in(self.loop, fn, *args)

    def close(self) -> None:
        self.clock = None
        for zone in (self.client, self.server):
            if zone is None:
                continue
            if self.loop is not None:
                self.loop.run_until_complete(zone.aclose())
            else:
                zone.close()
        if self.loop is not None:
            self.loop.close()


@pytest.fixture(params=[(m, t) for m in ("blocking", "asyncio") for t in TRANSPORTS], ids=str)
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    made = Pair(*request.param)
    yield made
    made.close()


def test_the_callers_timeout_is_the_callees_deadline(pair: Pair) -> None:
    with canopy.call_timeout(5.0):
        left = pair.do(pair.clock.remaining)
    assert 3000 < left <= 5000
    with canopy.call_timeout(None):
        assert pair.do(pair.clock.remaining) == -1  # no timeout, no deadline


def test_the_deadline_travels_across_hops(pair: Pair) -> None:
    """The callee calls back into the caller's zone: the nested call's deadline is the
    outer call's, not the link's 30 s default."""
    with canopy.call_timeout(4.0):
        left = pair.do(pair.clock.relay, BlockingWaiting())
    assert 2000 < left <= 4000


def test_a_call_past_the_served_calls_deadline_is_not_sent(pair: Pair) -> None:
    """The server calls back into the client with the client's deadline; the callback
    outlives it, and its own nested call is refused before it is sent. (Under asyncio
    the caller's giving up cancels the whole chain first: see the cancel tests.)"""
    if pair.mode != "blocking":
        pytest.skip("under asyncio the chain is cancelled before the deadline matters")
    outcome: list[str] = []

    class Late(BlockingWaiting):
        def __init__(self, following: Any) -> None:
            self.following = following

        async def remaining(self) -> int:
            await asyncio.sleep(0.3)  # past the deadline the server's call gave it
            try:
                await self.following.remaining()
            except canopy.CallTimeout:
                outcome.append("not sent")
                raise
            outcome.append("sent")
            return 0

    with canopy.call_timeout(0.2), pytest.raises(canopy.CallTimeout):
        pair.do(pair.clock.relay, Late(pair.clock))
    deadline = time.monotonic() + 3
    while not outcome and time.monotonic() < deadline:
        time.sleep(0.01)
    assert outcome == ["not sent"]


def test_an_asyncio_caller_cancelled_cancels_its_callee(pair: Pair) -> None:
    if pair.mode != "asyncio":
        pytest.skip("a blocking caller has no task to cancel (see the timeout test)")

    async def scenario() -> None:
        call = asyncio.ensure_future(pair.clock.wait(5000))
        await asyncio.sleep(0.1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        for _ in range(200):  # the Cancel is on its way
            if gave_up:
                break
            await asyncio.sleep(0.01)

    assert pair.loop is not None
    pair.loop.run_until_complete(scenario())
    assert gave_up == ["cancelled"]
    assert pair.do(pair.clock.open) == "open"  # the link serves on


def test_a_caller_that_times_out_cancels_its_callee(pair: Pair) -> None:
    if pair.mode == "blocking" and pair.server is None:
        pytest.skip("a blocking call within a process runs on the caller's thread: no timeout")
    with canopy.call_timeout(0.2), pytest.raises(canopy.CallTimeout):
        pair.do(pair.clock.wait, 5000)
    if pair.loop is None:
        assert gave_up_event.wait(3)
    else:
        pair.loop.run_until_complete(_until(lambda: bool(gave_up), 3))
    assert gave_up == ["cancelled"]
    assert pair.do(pair.clock.open) == "open"


async def _until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def test_an_interceptor_requires_an_authenticated_peer_for_tagged_methods(pair: Pair) -> None:
    server = pair.server if pair.server is not None else _child_zone(pair)
    authenticated: set[int] = set()

    def only_authenticated(seen: canopy.Intercepted) -> None:
        if seen.side == "server" and seen.tag == 1 and seen.zone not in authenticated:
            raise canopy.RpcError(f"{seen.method} needs an authenticated caller", code=-3)

    server.intercept(only_authenticated)
    assert pair.do(pair.clock.open) == "open"  # untagged: let through
    with pytest.raises(canopy.RpcError) as refused:
        pair.do(pair.clock.secret)
    assert refused.value.code == ErrorCode.SECURITY_ERROR
    assert "calls::i_clock::secret needs an authenticated caller" in str(refused.value)
    authenticated.add(pair.client.id)
    assert pair.do(pair.clock.secret) == "secret"


def test_a_client_interceptor_sees_calls_before_they_go_and_may_stop_them(pair: Pair) -> None:
    seen: list[tuple[str, str, int]] = []

    def audit(call: canopy.Intercepted) -> None:
        seen.append((call.side, call.method, call.tag))
        if call.method.endswith("::secret"):
            raise PermissionError("not from this client")

    pair.client.intercept(audit)
    assert pair.do(pair.clock.open) == "open"
    with pytest.raises(PermissionError):
        pair.do(pair.clock.secret)
    assert seen == [
        ("client", "calls::i_clock::open", 0),
        ("client", "calls::i_clock::secret", 1),
    ]


def test_an_interceptor_that_fails_refuses_with_security_error(pair: Pair) -> None:
    server = pair.server if pair.server is not None else _child_zone(pair)

    def broken(seen: canopy.Intercepted) -> None:
        raise KeyError("no policy")

    server.intercept(broken)
    with pytest.raises(canopy.RpcError) as refused:
        pair.do(pair.clock.open)
    assert refused.value.code == ErrorCode.SECURITY_ERROR


def _child_zone(pair: Pair) -> Any:
    owner = pair.clock._canopy_remote.zone
    return next(z for z in pair.client._local_zones() if z.id == owner)
