"""A package plugin: its entry function lives in a submodule."""

from .service import plugin

__all__ = ["plugin"]
