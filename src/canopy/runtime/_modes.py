"""The two modes: how a proxy method waits for its reply and how an implementation runs.

Blocking: the caller's thread sends and waits; an ``async def`` implementation
is run to completion on a private event loop of the serving thread. Asyncio:
the caller awaits; calls and posts arriving on a link go through one ordered
queue per link, a post's handler finishing before the next message starts and
a call's coroutine running as its own task, so that it can call back.
Everything else (tables, counting, marshalling) is the one ``Service``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import sys
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from inspect import CO_COROUTINE
from types import CoroutineType
from typing import Any, TypeVar

from canopy._loops import new_runner
from canopy.errors import CallCancelled, CallTimeout, CanopyError, InvalidCast
from canopy.generated import Interface
from canopy.runtime._plans import MethodPlan, interface_class, interface_of
from canopy.runtime._proxy import LocalOptimistic, Proxy, new_proxy
from canopy.runtime._zone import Dispatch, Link, Service, _caller, timeout_for

_runners = threading.local()
I = TypeVar("I")  # noqa: E741 - reads as "interface"


_PLAIN = frozenset({type(None), bool, int, float, str, bytes, tuple, list, dict})


def _awaitable(result: Any) -> bool:
    """``inspect.isawaitable``, with no abstract-class check for the usual results."""
    kind = type(result)
    if kind in _PLAIN:
        return False
    return kind is CoroutineType or inspect.isawaitable(result)


def _run_coroutine(awaitable: Any) -> Any:
    runner: asyncio.Runner | None = getattr(_runners, "runner", None)
    if runner is None:
        runner = _runners.runner = new_runner()
    depth = getattr(_runners, "depth", 0)
    _runners.depth = depth + 1
    try:
        if depth:
            # A callback reached from inside a coroutine implementation: this thread's
            # loop is busy and loops do not nest, so the callback runs on its own.
            with ThreadPoolExecutor(1, thread_name_prefix="canopy-callback") as pool:
                context = contextvars.copy_context()
                return pool.submit(context.run, _run_and_close, awaitable).result()
        # The runner would run it in the context it was made in; this call's context
        # (its caller, a chosen encoding) is the one the coroutine must see.
        return runner.run(_awaited(awaitable), context=contextvars.copy_context())
    finally:
        _runners.depth = depth


def close_thread_loop() -> None:
    """Close the event loop this thread made to run ``async def`` implementations, if it
    made one. A thread that serves calls and then ends calls this: the loop would
    otherwise keep its file descriptors until the garbage collector finds it."""
    runner: asyncio.Runner | None = getattr(_runners, "runner", None)
    if runner is not None:
        _runners.runner = None
        runner.close()


def _run_and_close(awaitable: Any) -> Any:
    """Run on a one-off thread: its event loop goes with it."""
    try:
        return _run_coroutine(awaitable)
    finally:
        close_thread_loop()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


async def _deferred(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return call(*args, **kwargs)


class BlockingMode:
    name = "blocking"

    def proxy_method(self, p: MethodPlan) -> Callable[..., Any]:
        if p.info.post:

            def post(self: Proxy, *args: Any, **kwargs: Any) -> None:
                zone = self._canopy_zone
                if zone.observer is not None:
                    _observed(zone, self, p, lambda trace: zone.post(self, p, args, kwargs, trace))
                    return
                with zone.inside():
                    zone.post(self, p, args, kwargs)

            return post

        def blocking(self: Proxy, *args: Any, **kwargs: Any) -> Any:
            zone = self._canopy_zone
            if zone.observer is not None:
                return _observed(
                    zone, self, p, lambda trace: _wait(zone, self, p, args, kwargs, trace)
                )
            with zone.inside():
                link, call_id, timeout = zone.begin_call(self, p, args, kwargs)
                try:
                    return link.wait(call_id, timeout)
                except CallTimeout as e:
                    raise CallTimeout(f"{p.qualified_name}: {e.message}") from None

        def call(self: Proxy, *args: Any, **kwargs: Any) -> Any:
            # An ``async def`` implementation served by the blocking runtime awaits
            # its proxies as it would under asyncio, so the same source runs in
            # both; plain functions, even ones it calls, get the result directly.
            if getattr(_runners, "depth", 0) and sys._getframe(1).f_code.co_flags & CO_COROUTINE:
                return _deferred(blocking, self, *args, **kwargs)
            return blocking(self, *args, **kwargs)

        call.__name__ = p.info.python_name
        return call

    def dispatch(self, d: Dispatch) -> None:
        token = d.serving()
        span = d.state.span
        entered = span.enter() if span is not None else None
        try:
            result = d.method(*d.args)
            if _awaitable(result):
                result = _run_coroutine(result)
        except Exception as e:
            d.zone.complete(d, error=e)
        else:
            d.zone.complete(d, result)
        finally:
            _caller.reset(token)
            if span is not None:
                span.leave(entered)


def _wait(zone: Service, proxy: Proxy, p: MethodPlan, args: Any, kwargs: Any, trace: str) -> Any:
    """A blocking call as ``BlockingMode`` makes it, with the observer's trace context."""
    with zone.inside():
        link, call_id, timeout = zone.begin_call(proxy, p, args, kwargs, trace)
        try:
            return link.wait(call_id, timeout)
        except CallTimeout as e:
            raise CallTimeout(f"{p.qualified_name}: {e.message}") from None


def _observed(zone: Service, proxy: Proxy, p: MethodPlan, send: Callable[[str], Any]) -> Any:
    """``send(trace)`` within the observer's client span (a call waits for its reply)."""
    span = zone.client_span(proxy, p)
    try:
        with zone.inside():
            result = send(span.trace if span is not None else "")
    except BaseException as e:
        zone.client_done(span, proxy, p, e)
        raise
    zone.client_done(span, proxy, p, None)
    return result


async def _aobserved(zone: Service, proxy: Proxy, p: MethodPlan, args: Any, kwargs: Any) -> Any:
    span = zone.client_span(proxy, p)
    try:
        with zone.inside():
            trace = span.trace if span is not None else ""
            link, call_id, timeout = zone.begin_call(proxy, p, args, kwargs, trace)
        try:
            result = await link.wait_async(call_id, timeout)
        except CallTimeout as e:
            raise CallTimeout(f"{p.qualified_name}: {e.message}") from None
    except BaseException as e:
        zone.client_done(span, proxy, p, e)
        raise
    zone.client_done(span, proxy, p, None)
    return result


class AsyncMode:
    name = "asyncio"

    def proxy_method(self, p: MethodPlan) -> Callable[..., Any]:
        if p.info.post:
            return BlockingMode().proxy_method(p)  # a post never waits: the same in both modes

        async def call(self: Proxy, *args: Any, **kwargs: Any) -> Any:
            zone = self._canopy_zone
            if zone.observer is not None:
                return await _aobserved(zone, self, p, args, kwargs)
            with zone.inside():
                link, call_id, timeout = zone.begin_call(self, p, args, kwargs)
            try:
                return await link.wait_async(call_id, timeout)
            except CallTimeout as e:
                raise CallTimeout(f"{p.qualified_name}: {e.message}") from None

        call.__name__ = p.info.python_name
        return call

    def dispatch(self, d: Dispatch) -> None:
        link = d.link
        inbox: _Inbox | None = link.inbound
        if inbox is None:
            inbox = link.inbound = _Inbox()
        if inbox.busy:
            inbox.queue.put_nowait(d)  # behind a post still running: in order
        else:
            # Nothing runs before it: it starts here, with no hop through a task.
            post = _start(d, inbox.tasks)
            if post is None:
                return
            inbox.busy = True  # later messages wait until this post has finished
            inbox.queue.put_nowait(post)
        if link.consumer is None:
            link.consumer = asyncio.get_running_loop().create_task(_consume(inbox))


class _Inbox:
    """A link's calls and posts under asyncio. A message starts as it arrives while
    nothing is ahead of it; a post whose coroutine is still running holds back the
    messages behind it, which the link's consumer task then starts in order. A link
    whose inbox is full stops reading until there is ``room`` again."""

    __slots__ = ("busy", "low", "queue", "tasks", "waiter")

    def __init__(self) -> None:
        self.busy = False  # a post is running, or messages wait in ``queue``
        self.queue: asyncio.Queue[Dispatch | Awaitable[None]] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()  # calls' coroutines, running
        self.waiter: asyncio.Future[None] | None = None  # the link's reader, for room
        self.low = 0

    async def room(self, low: int) -> None:
        """Wait until no more than ``low`` messages wait in the queue."""
        if self.queue.qsize() <= low:
            return
        self.low = low
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None


async def _consume(inbox: _Inbox) -> None:
    queue = inbox.queue
    while True:
        item = await queue.get()
        waiter = inbox.waiter
        if waiter is not None and queue.qsize() <= inbox.low and not waiter.done():
            waiter.set_result(None)
        del waiter
        post = _start(item, inbox.tasks) if isinstance(item, Dispatch) else item
        del item  # hold nothing of a finished call: its arguments may be the last references
        if post is not None:
            await post
            del post
        if queue.empty():
            inbox.busy = False


def _start(d: Dispatch, tasks: set[asyncio.Task[None]]) -> Any:
    """Run a dispatch; a post's coroutine is returned to be awaited before the next message."""
    token = d.serving()
    span = d.state.span
    entered = span.enter() if span is not None else None
    try:
        result = d.method(*d.args)
    except Exception as e:
        d.zone.complete(d, error=e)
        return None
    finally:
        _caller.reset(token)
        if span is not None:
            span.leave(entered)
    if not _awaitable(result):
        d.zone.complete(d, result)
        return None
    finishing = _finish(d, result)
    if d.call_id is None:
        return finishing  # posts finish in order
    task = d.state.task = asyncio.ensure_future(finishing)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return None


async def _finish(d: Dispatch, awaitable: Any) -> None:
    # A coroutine's body runs where it is awaited: here, so name its caller here.
    token = d.serving()
    span = d.state.span
    entered = span.enter() if span is not None else None
    try:
        result = await awaitable
    except asyncio.CancelledError:
        if not d.state.cancelled:
            raise  # not the caller's doing: the loop or the zone is shutting down
        # The caller gave up (it timed out, or its task was cancelled): the reply is
        # dropped at its end, but it still ends the call here.
        with contextlib.suppress(CanopyError):
            d.zone.complete(d, error=CallCancelled("the caller gave up on the call"))
    except Exception as e:
        d.zone.complete(d, error=e)
    else:
        d.zone.complete(d, result)
    finally:
        _caller.reset(token)
        if span is not None:
            span.leave(entered)


BLOCKING = BlockingMode()
ASYNCIO = AsyncMode()


def _cast_local(proxy: Any, cls: type[Interface]) -> tuple[Any, Service, Link, int] | Any:
    if isinstance(proxy, cls):
        return proxy
    if isinstance(proxy, LocalOptimistic):  # its object is here: no message needed
        info = interface_of(cls)
        target = proxy._canopy_target("cast")
        if info is None or not isinstance(target, cls):
            raise InvalidCast(f"the object does not implement {info.name if info else cls}")
        return proxy._canopy_zone._optimistic_home(proxy._canopy_object, target, cls)
    if not isinstance(proxy, Proxy):
        raise TypeError(f"{proxy!r} is neither a Canopy proxy nor an implementation of {cls!r}")
    info = interface_of(cls)
    if info is None:
        raise TypeError(f"{cls!r} is not a generated Canopy interface")
    existing = proxy._canopy_remote.proxy(info.id, proxy._canopy_kind)
    if existing is not None:
        return existing
    zone = proxy._canopy_zone
    with zone.inside():
        link, call_id = zone.try_cast(proxy, info.id)
    return proxy, zone, link, call_id


def _cast_result(proxy: Any, cls: type[Interface], zone: Service, reply: Any) -> Any:
    if reply.code != 0:
        error = zone._error(None, reply)
        if isinstance(error, InvalidCast):
            info = interface_of(cls)
            error.message = f"the object does not implement {info.name if info else cls}"
            error.args = (error.message,)
        raise error
    return new_proxy(zone, proxy._canopy_remote, cls, proxy._canopy_kind)


def cast(proxy: object, cls: Callable[..., I]) -> I:
    """``proxy`` as interface ``cls`` of the same object (blocking), or InvalidCast."""
    iface = interface_class(cls)
    step = _cast_local(proxy, iface)
    if not isinstance(step, tuple):
        result: I = step
        return result
    proxy, zone, link, call_id = step
    result = _cast_result(proxy, iface, zone, link.wait(call_id, timeout_for(link)))
    return result


async def acast(proxy: object, cls: Callable[..., I]) -> I:
    """``proxy`` as interface ``cls`` of the same object (asyncio), or InvalidCast.

    Pass the generated ``<interface>_async`` protocol for a typed asyncio proxy."""
    iface = interface_class(cls)
    step = _cast_local(proxy, iface)
    if not isinstance(step, tuple):
        result: I = step
        return result
    proxy, zone, link, call_id = step
    result = _cast_result(proxy, iface, zone, await link.wait_async(call_id, timeout_for(link)))
    return result
