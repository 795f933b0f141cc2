"""The behaviour suite's service as a plugin: ``Harness(transport="plugin")`` loads this."""

from __future__ import annotations

from typing import Any

from behaviour import TestService


def plugin(zone: Any) -> TestService:
    return TestService()
