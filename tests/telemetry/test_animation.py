"""The recorder's animated page: the zones laid out as a tree, names escaped, and the
page of the inference walkthrough in real headless Chromium (Debian's, driven by
Playwright, as in tests/test_demo_web.py), opened from a file with no server.

The browser test leaves a screenshot at test-artefacts/animation.png.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

import canopy
from canopy import _demo
from canopy.telemetry import Event
from canopy.telemetry.recorder import Recorder
from test_demo_web import ARTEFACTS, CHROMIUM, CHROMIUM_FLAGS

HOSTILE = '</script><img src=x onerror="document.title=1">&amp; {{TITLE}} "zone"'


def recorded(*events: Event) -> Recorder:
    recorder = Recorder()
    for event in events:
        recorder.event(event)
    return recorder


def tree() -> Recorder:
    """r links to a and b, a to c; a calls c through nothing in between, c posts to r."""
    r, a, b, c = 1, 2, 3, 4
    names = {r: "r", a: "a", b: HOSTILE, c: "c"}

    def on(zone: int, kind: str, peer: int = 0, **more: Any) -> Event:
        return Event(kind, zone, names[zone], peer, **more)

    return recorded(
        *(on(z, "zone_created") for z in (r, a, b)),
        on(r, "link_up", a),
        on(a, "link_up", r),
        on(r, "link_up", b),
        on(b, "link_up", r),
        on(c, "zone_created"),
        on(a, "link_up", c),
        on(c, "link_up", a),
        on(c, "call", a, interface="x::i_c", method="go", side="server"),
        on(a, "reply", c, interface="x::i_c", method="go", side="client", error=5),
        on(r, "post", c, interface="x::i_r", method="tell", side="server"),
        on(r, "release", b, object=7, side="server", detail="shared"),
        on(a, "link_down", c),
        on(c, "zone_closed"),
    )


def test_zones_are_laid_out_as_a_tree_and_every_step_is_kept() -> None:
    picture = tree().animation()
    layout = {z["name"]: (z["depth"], z["x"], z["parent"]) for z in picture["zones"]}
    assert layout == {"r": (0, 0.5, -1), "a": (1, 0.0, 0), HOSTILE: (1, 1.0, 0), "c": (2, 0.0, 1)}
    assert [(link["a"], link["b"], link["down"] != -1) for link in picture["links"]] == [
        (0, 1, False),
        (0, 2, False),
        (1, 3, True),
    ]
    kinds = [s["kind"] for s in picture["steps"]]
    assert kinds == [
        "zone_created",
        "zone_created",
        "zone_created",
        "link_up",
        "link_up",
        "zone_created",
        "link_up",
        "call",
        "reply",
        "post",
        "release",
        "link_down",
        "zone_closed",
    ]
    reply = picture["steps"][8]
    assert (reply["from"], reply["to"], reply["failed"]) == (3, 1, True)


def test_the_page_is_self_contained_and_names_cannot_escape_it(tmp_path: Path) -> None:
    recorder = tree()
    page = recorder.html(title="<b>trace</b>")
    assert "{{CSP}}" not in page and "{{RECORDING}}" not in page
    assert "<title>&lt;b&gt;trace&lt;/b&gt;</title>" in page
    assert "<img" not in page and "<link" not in page and "<iframe" not in page
    assert re.findall(r"https?://[^\s\"'`]+", page) == ["http://www.w3.org/2000/svg"]
    data = page.split('<script type="application/json" id="recording">', 1)[1]
    recording = data.split("</script>", 1)[0]
    # A name that looks like a placeholder is left alone, and only there.
    assert page.count("{{TITLE}}") == recording.count("{{TITLE}}") > 0
    picture = json.loads(recording)
    assert HOSTILE in {z["name"] for z in picture["zones"]}
    assert "default-src 'none'" in page
    written = recorder.write(tmp_path / "out")
    assert [p.name for p in written] == ["sequence.mmd", "sequence.puml", "animation.html"]
    assert written[2].read_text(encoding="utf-8") == recorder.html()
    assert f'participant "{HOSTILE.replace(chr(34), chr(39))}" as z' in written[1].read_text(
        encoding="utf-8"
    )


# ---------------------------------------------------------------- in Chromium


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Recorder]:
    """The inference walkthrough's page, recorded before the browser starts: Playwright's
    synchronous API runs an event loop on this thread, and the blocking zones would
    find it there."""
    inference: Any = canopy.load_idl(_demo.EXAMPLES / "inference.idl").inference
    with redirect_stdout(io.StringIO()):
        recorder = _demo.record(inference)
    return recorder.write(tmp_path_factory.mktemp("trace"))[2], recorder


@pytest.fixture(scope="module")
def browser(
    walkthrough: tuple[Path, Recorder], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            timeout=20_000,
            viewport={"width": 1280, "height": 800},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    tab = browser.new_page()
    tab.set_default_timeout(10_000)
    problems: list[str] = []
    tab.on(
        "console",
        lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None,
    )
    tab.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    try:
        yield tab, problems
    finally:
        tab.close()


def until(tab: Any, check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll ``check`` every 20 ms (bounded): the page's Content Security Policy forbids
    the string evaluation ``wait_for_function`` uses."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {timeout} s: {what}")
        tab.wait_for_timeout(20)


def test_the_walkthrough_animates_in_chromium(
    walkthrough: tuple[Path, Recorder], page: tuple[Any, list[str]]
) -> None:
    tab, problems = page
    started = time.monotonic()
    html, recorder = walkthrough
    steps = len(recorder.animation()["steps"])

    tab.goto(html.as_uri())
    tab.wait_for_selector("body[data-state=ready]")
    names = tab.locator("#stage svg .zone .name").all_text_contents()
    assert names == ["host", "inference", "async-host", "inference"]
    assert tab.input_value("#timeline") == "0"
    assert tab.get_attribute("#timeline", "max") == str(steps - 1)

    def position() -> int:
        return int(tab.input_value("#timeline"))

    tab.select_option("#speed", "4")
    tab.click("#play")
    until(tab, lambda: position() >= 3, "the timeline advanced while playing")
    assert tab.get_attribute("body", "data-playing") == "true"
    tab.click("#play")  # pause
    assert tab.get_attribute("body", "data-playing") == "false"
    paused = position()
    tab.wait_for_timeout(400)
    assert position() == paused, "the animation went on while paused"
    assert tab.get_attribute("body", "data-step") == str(paused)
    tab.click("#forward")
    assert position() == paused + 1
    assert tab.locator("#log li.current").count() == 1

    ARTEFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTEFACTS / "animation.png"))
    assert not problems, problems
    assert time.monotonic() - started < 15


def test_a_hostile_zone_name_is_only_text(tmp_path: Path, page: tuple[Any, list[str]]) -> None:
    tab, problems = page
    html = tree().write(tmp_path)[2]
    tab.goto(html.as_uri())
    tab.wait_for_selector("body[data-state=ready]")
    tab.select_option("#speed", "10")
    assert HOSTILE in tab.locator("#stage svg .zone title").all_text_contents()[2]
    assert tab.locator("img").count() == 0
    assert tab.title() == "Canopy: what crossed which boundary"
    tab.click("#play")
    until(tab, lambda: tab.get_attribute("body", "data-playing") == "false", "played to the end")
    assert tab.input_value("#timeline") == str(len(tree().animation()["steps"]) - 1)
    assert not problems, problems
