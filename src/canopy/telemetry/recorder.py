"""A recorder of what crossed which boundary, written as a sequence diagram.

    from canopy.telemetry import observing
    from canopy.telemetry.recorder import Recorder
    with observing(Recorder()) as recorder:
        ...                                   # calls between zones
    print(recorder.mermaid())                 # or recorder.plantuml()
    recorder.write("out")                     # both, and the animated page (html())

One lifeline per zone (named by the zone's name); calls, replies, posts, casts,
add_refs and releases as arrows from the zone that sent them to the zone that
received them, drawn once, where they were received. A call that zones in
between passed on is drawn from its caller to its callee, as both name each
other; references are drawn between neighbours, where they are counted. Errors
are marked on the reply.

``html()`` is one self-contained page (``animation.html`` with the recording in it
as JSON) that draws the zones as a tree, each linked under the zone it was linked
from, and moves the messages between them, with play, pause, speed and a timeline.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import threading
from collections.abc import Collection
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from canopy.errors import ErrorCode
from canopy.telemetry import Event, Observer

__all__ = ["Arrow", "Recorder"]

_RECEIVED = {"call": "server", "post": "server", "reply": "client"}
_REFERENCES = ("cast", "add_ref", "release")
_ZONE_STEPS = ("zone_created", "link_up", "link_down", "zone_closed")
_PLACEHOLDER = re.compile(r"\{\{(TITLE|CSP|RECORDING)\}\}")


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

    def _participants(self, arrows: list[Arrow]) -> dict[int, tuple[str, str]]:
        """Zone id -> (key, name), keys numbered in order of appearance."""
        seen: dict[int, tuple[str, str]] = {}
        for arrow in arrows:
            for zone in (arrow.sender, arrow.receiver):
                if zone not in seen:
                    seen[zone] = (f"z{len(seen) + 1}", self._name(zone))
        return seen

    def _name(self, zone: int) -> str:
        return self.names.get(zone, f"zone {zone:#x}")

    def _arrows(self, kinds: Collection[str] | None) -> list[Arrow]:
        with self._lock:
            arrows = list(self.arrows)
        return arrows if kinds is None else [a for a in arrows if a.kind in kinds]

    def mermaid(self, kinds: Collection[str] | None = None) -> str:
        """The recording as a Mermaid ``sequenceDiagram``; ``kinds``: only those arrows
        (``{"call", "reply", "post"}``, say)."""
        arrows = self._arrows(kinds)
        keys = self._participants(arrows)
        lines = ["sequenceDiagram"]
        lines += [f"    participant {key} as {_quote(name)}" for key, name in keys.values()]
        style = {"call": "->>", "reply": "-->>", "post": "-)", "cast": "->>"}
        for a in arrows:
            arrow = style.get(a.kind, "--)")
            label = f"{a.label} ✗" if a.failed else a.label
            lines.append(f"    {keys[a.sender][0]}{arrow}{keys[a.receiver][0]}: {_quote(label)}")
        return "\n".join(lines) + "\n"

    def plantuml(self, kinds: Collection[str] | None = None) -> str:
        """The recording as a PlantUML sequence diagram (``kinds`` as for ``mermaid``)."""
        arrows = self._arrows(kinds)
        keys = self._participants(arrows)
        lines = ["@startuml"]
        lines += [f'participant "{_quote_plantuml(name)}" as {key}' for key, name in keys.values()]
        style = {"call": "->", "reply": "-->", "post": "->>", "cast": "->"}
        for a in arrows:
            arrow = style.get(a.kind, "-->>")
            label = f"{a.label} (failed)" if a.failed else a.label
            sender, receiver = keys[a.sender][0], keys[a.receiver][0]
            lines.append(f"{sender} {arrow} {receiver} : {_quote_plantuml(label)}")
        lines.append("@enduml")
        return "\n".join(lines) + "\n"

    def animation(self) -> dict[str, Any]:
        """What the page animates: the zones laid out as a tree (``x`` a column,
        ``depth`` a row), the links between them, and the steps of the timeline: zones
        created and closed, links up and down, and every arrow, in the order they
        happened. Zones are numbered from 0 (ids do not fit a JavaScript number)."""
        with self._lock:
            events = list(self.events)
        index: dict[int, int] = {}
        for e in events:
            for zone in (e.zone, e.peer):
                if zone and zone not in index:
                    index[zone] = len(index)
        zones: list[dict[str, Any]] = [
            {"id": f"{zone:#x}", "name": self._name(zone), "parent": -1, "born": -1, "closed": -1}
            for zone in index
        ]
        links: dict[tuple[int, int], dict[str, int]] = {}
        steps: list[dict[str, Any]] = []
        for e in events:
            me, peer = index[e.zone], index.get(e.peer, -1)
            if e.kind in _ZONE_STEPS:
                step = self._zone_step(e, me, peer, zones, links, len(steps))
                if step is not None:
                    steps.append(step)
                continue
            arrow = _arrow(e)
            if arrow is not None:
                steps.append(
                    {
                        "kind": arrow.kind,
                        "from": index[arrow.sender] if arrow.sender else me,
                        "to": index[arrow.receiver] if arrow.receiver else me,
                        "label": arrow.label,
                        "failed": arrow.failed,
                    }
                )
        _lay_out(zones)
        return {
            "zones": zones,
            "links": [{"a": a, "b": b, **times} for (a, b), times in links.items()],
            "steps": steps,
        }

    @staticmethod
    def _zone_step(
        e: Event,
        me: int,
        peer: int,
        zones: list[dict[str, Any]],
        links: dict[tuple[int, int], dict[str, int]],
        at: int,
    ) -> dict[str, Any] | None:
        """A zone or link step, once per zone or link (both ends report a link)."""
        if e.kind in ("zone_created", "zone_closed"):
            field = "born" if e.kind == "zone_created" else "closed"
            if zones[me][field] != -1:
                return None
            zones[me][field] = at
            return {"kind": e.kind, "from": me, "to": me, "label": e.zone_name}
        if peer < 0:
            return None
        # A zone seen first is the one the other was linked from: its parent.
        pair = (min(me, peer), max(me, peer))
        link = links.setdefault(pair, {"up": -1, "down": -1})
        field = "up" if e.kind == "link_up" else "down"
        if link[field] != -1:
            return None
        link[field] = at
        if field == "up" and zones[pair[1]]["parent"] == -1:
            zones[pair[1]]["parent"] = pair[0]
        return {"kind": e.kind, "from": me, "to": peer, "label": e.kind.replace("_", " ")}

    def html(self, title: str = "Canopy: what crossed which boundary") -> str:
        """The recording as one self-contained HTML page: no network access, its script
        and style allowed by hash and nothing else (Content Security Policy)."""
        template = resources.files("canopy.telemetry").joinpath("animation.html").read_text("utf-8")
        values = {
            "TITLE": html.escape(title),
            "CSP": _policy(template),
            "RECORDING": _script_json(self.animation()),
        }
        # One pass: text put in is never searched for placeholders again.
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)

    def write(self, directory: str | Path) -> list[Path]:
        """Write ``sequence.mmd``, ``sequence.puml`` and ``animation.html`` into
        ``directory`` (made if missing); returns their paths."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "sequence.mmd": self.mermaid(),
            "sequence.puml": self.plantuml(),
            "animation.html": self.html(),
        }
        for name, text in files.items():
            (out / name).write_text(text, encoding="utf-8")
        return [out / name for name in files]


def _lay_out(zones: list[dict[str, Any]]) -> None:
    """Layered: a zone one row below its parent; leaves in successive columns, a parent
    centred over its children. Parents come before their children in ``zones``."""
    children: list[list[int]] = [[] for _ in zones]
    for i, zone in enumerate(zones):
        if zone["parent"] >= 0:
            children[zone["parent"]].append(i)
    column = 0
    for i in reversed(range(len(zones))):  # children first: every child is after its parent
        zones[i]["width"] = sum(zones[c]["width"] for c in children[i]) or 1
    for i, zone in enumerate(zones):
        if zone["parent"] == -1:
            zone["depth"], zone["left"] = 0, column
            column += zone["width"]
        left = zone["left"]
        for c in children[i]:
            zones[c]["depth"], zones[c]["left"] = zone["depth"] + 1, left
            left += zones[c]["width"]
        zone["x"] = zone["left"] + (zone["width"] - 1) / 2
    for zone in zones:
        del zone["width"], zone["left"]


def _policy(template: str) -> str:
    """Only the template's own style and script, by hash; no fetch, image or frame."""
    hashes = {}
    for tag in ("style", "script"):
        body = template.split(f"<{tag}>", 1)[1].split(f"</{tag}>", 1)[0]
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        hashes[tag] = f"'sha256-{digest}'"
    return (
        f"default-src 'none'; style-src {hashes['style']}; script-src {hashes['script']}; "
        "base-uri 'none'; form-action 'none'"
    )


def _script_json(value: Any) -> str:
    """JSON that cannot end the ``<script>`` element it is in, nor open a comment."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


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
    return text.replace(";", ",").replace("#", "#35;").replace("\n", " ").replace("\r", " ")


def _quote_plantuml(text: str) -> str:
    return text.replace('"', "'").replace("\n", " ").replace("\r", " ")
