"""The public surface is curated: these lists change only on purpose."""

from __future__ import annotations

import canopy
import canopy.idl
import canopy.wire


def test_canopy_exports() -> None:
    assert canopy.__all__ == [
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


def test_every_export_exists() -> None:
    for module in (canopy, canopy.idl, canopy.wire):
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == [], module.__name__


def test_error_codes_map_to_typed_errors() -> None:
    error = canopy.RpcError.from_code(canopy.ErrorCode.OBJECT_GONE, "gone")
    assert isinstance(error, canopy.ObjectGone)
    assert error.code == -19 and error.code_name == "OBJECT_GONE" and str(error) == "gone"
    unknown = canopy.RpcError.from_code(-999)
    assert type(unknown) is canopy.RpcError and unknown.code_name == "-999"


def test_importing_canopy_does_not_load_the_idl_compiler() -> None:
    import subprocess
    import sys

    code = "import sys, canopy, canopy.generated; print('lark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert canopy.IdlError is canopy.idl.IdlError


def test_load_idl_builds_the_package_in_memory() -> None:
    from contract import EXAMPLES

    calculator = canopy.load_idl(EXAMPLES / "calculator.idl").calculator
    assert calculator.i_calculator is calculator.v1.i_calculator
    assert [m.name for m in calculator.i_calculator.__canopy__.methods] == ["add"]
