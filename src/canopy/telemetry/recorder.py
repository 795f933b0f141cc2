"""A recorder of what crossed which boundary, written as a sequence diagram.

    from canopy.telemetry import observing
    from canopy.telemetry.recorder import Recorder
    with observing(Recorder()) as recorder:
        ...                                   # calls between zones
    print(recorder.mermaid())                 # or recorder.plantuml()

One lifeline per zone (named by the zone's name); calls, replies, posts, casts,
add_refs and releases as arrows from the zone that sent them to the zone that
received them, drawn once, where they were received. A call that zones in
between passed on is drawn from its caller to its callee, as both name each
other; references are drawn between neighbours, where they are counted. Errors
are marked on the reply.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from canopy.errors import ErrorCode
from canopy.telemetry import Event, Observer

__all__ = ["Arrow", "Recorder"]

_RECEIVED = {"call": "server", "post": "server", "reply": "client"}
_REFERENCES = ("cast", "add_ref", "release")


@dataclass(frozen=True, slots=True)
class Arrow:
    """One message in the diagram: ``sender`` to ``receiver`` (zone ids)."""

    kind: str  # call, reply, post, cast, add_ref, release
    sender: int
    receiver: int
    label: str
    failed: bool = False


class Recorder(Observer):
    """Keeps every event (``events``) and the arrows they make (``arrows``)."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self.events: list[Event] = []
        self.names: dict[int, str] = {}
        self.arrows: list[Arrow] = []
        self._lock = threading.Lock()

    def event(self, event: Event) -> None:
        with self._lock:
            if len(self.events) >= self.limit:
                return
            self.events.append(event)
            self.names.setdefault(event.zone, event.zone_name)
            arrow = _arrow(event)
            if arrow is not None:
                self.arrows.append(arrow)

    def _participants(self) -> list[tuple[str, str]]:
        seen: dict[int, None] = {}
        for arrow in self.arrows:
            seen.setdefault(arrow.sender)
            seen.setdefault(arrow.receiver)
        return [(f"z{zone:x}", self.names.get(zone, f"zone {zone:#x}")) for zone in seen]

    def mermaid(self) -> str:
        """The recording as a Mermaid ``sequenceDiagram``."""
        lines = ["sequenceDiagram"]
        lines += [f"    participant {key} as {_quote(name)}" for key, name in self._participants()]
        style = {"call": "->>", "reply": "-->>", "post": "-)", "cast": "->>"}
        for a in self.arrows:
            arrow = style.get(a.kind, "--)")
            label = f"{a.label} ✗" if a.failed else a.label
            lines.append(f"    z{a.sender:x}{arrow}z{a.receiver:x}: {_quote(label)}")
        return "\n".join(lines) + "\n"

    def plantuml(self) -> str:
        """The recording as a PlantUML sequence diagram."""
        lines = ["@startuml"]
        lines += [f'participant "{name}" as {key}' for key, name in self._participants()]
        style = {"call": "->", "reply": "-->", "post": "->>", "cast": "->"}
        for a in self.arrows:
            arrow = style.get(a.kind, "-->>")
            label = f"{a.label} (failed)" if a.failed else a.label
            lines.append(f"z{a.sender:x} {arrow} z{a.receiver:x} : {label}")
        lines.append("@enduml")
        return "\n".join(lines) + "\n"


def _arrow(e: Event) -> Arrow | None:
    """The arrow an event draws: a message is drawn once, where it was received."""
    if _RECEIVED.get(e.kind) == e.side:
        what = f"{e.interface.rpartition('::')[2]}.{e.method}"
        if e.kind == "reply":
            error = _error_name(e.error) if e.error else "ok"
            return Arrow("reply", e.peer, e.zone, f"{what} → {error}", bool(e.error))
        return Arrow(e.kind, e.peer, e.zone, f"{what}()" if e.kind == "call" else what)
    if e.kind in _REFERENCES and e.side == "server":
        detail = f" {e.detail}" if e.detail else ""
        return Arrow(e.kind, e.peer, e.zone, f"{e.kind}{detail} #{e.object}")
    return None


def _error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error {code}"


def _quote(text: str) -> str:
    return text.replace(";", ",").replace("#", "#35;").replace("\n", " ")
