"""``canopy serve module:factory --listen URL``: serve one object at one or more URLs until
interrupted, as ``uvicorn module:app`` serves a web app.

The factory is called once (with the serving zone if it takes an argument) and
every connection gets that object as its root. SIGINT and SIGTERM close every
listener and link cleanly: peers are told goodbye and release what they held.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("canopy.serve")


class ServeError(Exception):
    """What the command line got wrong; printed without a traceback."""


def load(target: str) -> Any:
    """The object named by ``package.module:attribute`` (the current directory importable)."""
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise ServeError(f"{target!r}: name the factory as package.module:attribute")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ServeError(f"cannot import {module_name!r}: {e}") from None
    found: Any = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ServeError(f"{module_name!r} has no attribute {attribute!r}") from None
    return found


def make_root(factory: Any, zone: Any) -> Any:
    if not callable(factory):
        raise ServeError(f"{factory!r} is not callable: name a class or a function")
    try:
        takes_zone = bool(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        takes_zone = False
    return factory(zone) if takes_zone else factory()


def interface_for(root: Any, name: str | None) -> type[Any]:
    from canopy.runtime._plans import implemented

    interfaces = implemented(type(root))
    if not interfaces:
        raise ServeError(
            f"the factory returned {type(root).__qualname__}, which implements no Canopy "
            "interface: subclass a generated interface class"
        )
    if name is None:
        return next(iter(interfaces.values()))  # the most derived one
    for cls in interfaces.values():
        if name in (cls.__name__, cls.__canopy__.name):
            return cls
    offered = ", ".join(cls.__canopy__.name for cls in interfaces.values())
    raise ServeError(f"the root does not implement {name!r}; it implements {offered}")


async def serve(
    target: str,
    urls: Sequence[str],
    *,
    interface: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    tls_client_ca: str | None = None,
    origins: Sequence[str] | None = None,
    ready: Callable[[list[str]], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM; ``ready`` gets the URLs really listened at."""
    import canopy

    tls = None
    if tls_cert is not None:
        from canopy.streams.tls import server_context

        tls = server_context(tls_cert, tls_key, client_cafile=tls_client_ca)
    factory = load(target)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with canopy.AsyncZone(target) as zone:
            root = make_root(factory, zone)
            cls = interface_for(root, interface)
            servers = []
            for url in urls:
                try:
                    server = await zone.serve(
                        url, lambda z: root, cls, tls=tls, origins=origins or None
                    )
                except (OSError, ValueError) as e:
                    raise ServeError(f"cannot listen at {url}: {e}") from None
                servers.append(server)
            (ready or _announce)([s.url for s in servers])
            await stop.wait()
            log.info("shutting down")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _announce(urls: list[str]) -> None:
    for url in urls:
        print(f"canopy: serving at {url}", flush=True)
    print("canopy: press Ctrl-C to stop", flush=True)
