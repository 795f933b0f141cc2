"""The base URL of each stream kind the stream tests run over."""

from __future__ import annotations

from pathlib import Path

KINDS = ("tcp", "unix")


def url_for(kind: str, where: Path) -> str:
    """A URL to listen at: any free TCP port, or a socket in ``where``."""
    return "tcp://127.0.0.1:0" if kind == "tcp" else f"unix:{where}/s.sock"
