"""Canopy: one IDL, typed proxies and stubs, the same calls across every boundary.

The public surface: zones (``Zone`` blocking, ``AsyncZone`` asyncio), the servers
they run (``Server``, ``AsyncServer``), what proxies need (``cast``, ``acast``,
``close``, ``on_gone``, ``use_encoding``, ``call_timeout``, ``adrain``), what an
implementation may ask (``caller``), reflection and calls with no generated code
(``describe``, ``dynamic``, ``AnyObject``), compiling IDL (``load_idl``), running a
coroutine on uvloop when it is installed (``run``), values stored with the schema
they travel with (``encode``/``decode``), and the errors every call can raise.
"""

from __future__ import annotations

import logging
import os
import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from canopy._loops import run
from canopy.errors import (
    ApplicationError,
    CallCancelled,
    CallTimeout,
    CanopyError,
    ErrorCode,
    IncompatibleSerialisation,
    InvalidCast,
    InvalidData,
    InvalidInterfaceId,
    InvalidMethodId,
    InvalidVersion,
    LimitExceeded,
    ObjectGone,
    ObjectNotFound,
    ProtocolError,
    RemoteException,
    RpcError,
    TransportError,
)
from canopy.generated import decode, encode, validate
from canopy.runtime import (
    AnyObject,
    AsyncZone,
    Caller,
    Description,
    DynamicObject,
    Intercepted,
    Zone,
    acast,
    adescribe,
    adrain,
    adynamic,
    call_timeout,
    caller,
    cast,
    close,
    describe,
    dynamic,
    on_gone,
    to_json,
    use_encoding,
)

if TYPE_CHECKING:
    from canopy.idl import IdlError
    from canopy.transports.server import AsyncServer, Server

__version__ = "0.1.0"

# Each layer logs to its own logger under "canopy" (canopy.runtime, canopy.transports.*,
# canopy.serve ...), and the library stays quiet until the application configures
# logging: without this, Python's last-resort handler would print warnings to stderr.
logging.getLogger("canopy").addHandler(logging.NullHandler())


def __getattr__(name: str) -> object:
    # The IDL compiler (and lark) load only when asked for: generated modules
    # import canopy at run time and need none of it.
    if name == "IdlError":
        from canopy.idl import IdlError

        return IdlError
    if name in ("Server", "AsyncServer"):
        # Sockets load with the first server or connection, not with canopy.
        import canopy.runtime

        return getattr(canopy.runtime, name)
    raise AttributeError(f"module 'canopy' has no attribute {name!r}")


def load_idl(
    path: str | os.PathLike[str],
    *,
    include_paths: Sequence[str | os.PathLike[str]] = (),
    defines: Mapping[str, str] | None = None,
) -> types.ModuleType:
    """Compile an IDL file and build its Python package in memory.

    The result's attributes are the file's top-level namespaces
    (``load_idl("calculator.idl").calculator.i_calculator``), exactly as
    ``canopy generate`` would write them to disk.
    """
    from canopy.codegen import load_python
    from canopy.idl import compile_file

    return load_python(compile_file(path, include_paths=include_paths, defines=defines))


__all__ = [
    "AnyObject",
    "ApplicationError",
    "AsyncServer",
    "AsyncZone",
    "CallCancelled",
    "CallTimeout",
    "Caller",
    "CanopyError",
    "Description",
    "DynamicObject",
    "ErrorCode",
    "IdlError",
    "IncompatibleSerialisation",
    "Intercepted",
    "InvalidCast",
    "InvalidData",
    "InvalidInterfaceId",
    "InvalidMethodId",
    "InvalidVersion",
    "LimitExceeded",
    "ObjectGone",
    "ObjectNotFound",
    "ProtocolError",
    "RemoteException",
    "RpcError",
    "Server",
    "TransportError",
    "Zone",
    "__version__",
    "acast",
    "adescribe",
    "adrain",
    "adynamic",
    "call_timeout",
    "caller",
    "cast",
    "close",
    "decode",
    "describe",
    "dynamic",
    "encode",
    "load_idl",
    "on_gone",
    "run",
    "to_json",
    "use_encoding",
    "validate",
]
