"""Entry points the child-process tests start in a child: the behaviour suite's service,
and children that misbehave on purpose."""

from __future__ import annotations

import os
import sys
from typing import Any

from behaviour import TestService, b


def service(zone: Any) -> TestService:
    print(f"child {zone.name} serving", flush=True)
    print("a line on stderr", file=sys.stderr, flush=True)
    return TestService()


class Crashing(TestService):
    """Dies, with no goodbye, in the middle of a call."""

    async def slow(self, milliseconds: int) -> Any:
        os._exit(3)


def crashing() -> Crashing:
    return Crashing()


def broken() -> Any:
    raise RuntimeError("this entry point fails on purpose")


def not_an_interface() -> object:
    return object()


def inference_service() -> Any:
    """The walkthrough's inference service, as ``canopy demo`` runs it."""
    from importlib import resources
    from pathlib import Path

    import canopy
    from canopy._demo import _implementations

    idl = Path(str(resources.files("canopy") / "examples" / "inference.idl"))
    service, _ = _implementations(canopy.load_idl(idl).inference)
    return service()


__all__ = ["b"]


class LoopReporting(TestService):
    """Says, as ``who``'s method, which event loop the child runs its zone on."""

    async def who(self) -> tuple[int, str, str]:
        from canopy._loops import loop_name

        return 0, loop_name(), ""


def loop_reporting() -> LoopReporting:
    return LoopReporting()
