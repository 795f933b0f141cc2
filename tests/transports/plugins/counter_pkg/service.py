"""The package plugin's service."""

from __future__ import annotations

from typing import Any

from behaviour import TestService

state = {"loads": 0}
state["loads"] += 1


def plugin(zone: Any) -> TestService:
    return TestService()
