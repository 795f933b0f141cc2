"""The error codes and exception types shared by every layer and by generated code.

0 is OK; the framework's own errors are negative; application error domains
declared with ``error`` in the IDL are positive. Every error that reaches a
caller is a ``CanopyError`` carrying its code.
"""

from __future__ import annotations

import enum
from typing import ClassVar


class ErrorCode(enum.IntEnum):
    """Framework error codes (negative), as the original Canopy numbers them."""

    OK = 0
    OUT_OF_MEMORY = -1
    NEED_MORE_MEMORY = -2
    SECURITY_ERROR = -3
    INVALID_DATA = -4
    TRANSPORT_ERROR = -5
    INVALID_METHOD_ID = -6
    INVALID_INTERFACE_ID = -7
    INVALID_CAST = -8
    ZONE_NOT_SUPPORTED = -9
    ZONE_NOT_INITIALISED = -10
    ZONE_NOT_FOUND = -11
    OBJECT_NOT_FOUND = -12
    INVALID_VERSION = -13
    EXCEPTION = -14
    PROXY_DESERIALISATION_ERROR = -15
    STUB_DESERIALISATION_ERROR = -16
    INCOMPATIBLE_SERIALISATION = -17
    REFERENCE_COUNT_ERROR = -18
    OBJECT_GONE = -19
    CALL_TIMEOUT = -20
    CALL_CANCELLED = -21
    PROTOCOL_ERROR = -22
    LIMIT_EXCEEDED = -23
    UNAUTHORISED = -24


class CanopyError(Exception):
    """Base of every error a Canopy call can raise; ``code`` is never 0."""

    code: int = ErrorCode.EXCEPTION

    def __init__(self, message: str = "", *, code: int | None = None) -> None:
        if code is not None:
            self.code = code
        self.message = message
        super().__init__(message or self.code_name)

    @property
    def code_name(self) -> str:
        try:
            return ErrorCode(self.code).name
        except ValueError:
            return str(self.code)


class RpcError(CanopyError):
    """A framework error (negative code): the call could not be carried out."""

    _by_code: ClassVar[dict[int, type[RpcError]]] = {}

    @classmethod
    def from_code(cls, code: int, message: str = "") -> RpcError:
        return cls._by_code.get(code, RpcError)(message, code=code)


class ApplicationError(CanopyError):
    """An error of an IDL ``error`` domain (positive code), raised by an implementation.

    Generated error domains subclass this; each of their values is a further
    subclass with its own ``code``, so callers can catch the whole domain or
    one value.
    """

    code = 1
    domain: ClassVar[str] = ""

    @property
    def code_name(self) -> str:
        return type(self).__name__


def _define(name: str, code: ErrorCode, doc: str) -> type[RpcError]:
    cls = type(name, (RpcError,), {"code": int(code), "__doc__": doc})
    RpcError._by_code[int(code)] = cls
    return cls


ObjectGone = _define("ObjectGone", ErrorCode.OBJECT_GONE, "The remote object no longer exists.")
ObjectNotFound = _define(
    "ObjectNotFound", ErrorCode.OBJECT_NOT_FOUND, "No such object is reachable by this caller."
)
InvalidMethodId = _define("InvalidMethodId", ErrorCode.INVALID_METHOD_ID, "No such method.")
InvalidInterfaceId = _define(
    "InvalidInterfaceId", ErrorCode.INVALID_INTERFACE_ID, "No such interface."
)
InvalidCast = _define(
    "InvalidCast", ErrorCode.INVALID_CAST, "The object does not implement that interface."
)
InvalidData = _define("InvalidData", ErrorCode.INVALID_DATA, "A value did not fit its type.")
IncompatibleSerialisation = _define(
    "IncompatibleSerialisation",
    ErrorCode.INCOMPATIBLE_SERIALISATION,
    "The peer does not speak the requested encoding.",
)
InvalidVersion = _define(
    "InvalidVersion", ErrorCode.INVALID_VERSION, "No protocol version in common."
)
TransportError = _define("TransportError", ErrorCode.TRANSPORT_ERROR, "The link failed.")
CallTimeout = _define("CallTimeout", ErrorCode.CALL_TIMEOUT, "The call's deadline passed.")
CallCancelled = _define("CallCancelled", ErrorCode.CALL_CANCELLED, "The call was cancelled.")
ProtocolError = _define("ProtocolError", ErrorCode.PROTOCOL_ERROR, "The peer broke the protocol.")
RemoteException = _define(
    "RemoteException",
    ErrorCode.EXCEPTION,
    "The implementation raised an unexpected exception; its type and message are kept.",
)
LimitExceeded = _define("LimitExceeded", ErrorCode.LIMIT_EXCEEDED, "A configured limit was hit.")
