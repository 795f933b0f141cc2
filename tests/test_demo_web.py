"""``canopy demo --web``: the page in real headless Chromium (Debian's, driven by
Playwright), and the edge it is served from, which takes the browser for a hostile
client: one root object, the page's own origin and host only, bounded requests.

The browser test leaves a screenshot at test-artefacts/demo-web.png.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import canopy
from canopy import _web
from canopy.runtime import Zone

ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = ROOT / "test-artefacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root on a machine with no network: no sandbox, no GPU, and none of the
# connections Chromium makes on its own (they would be refused, many at a time).
# Playwright adds --headless; the profile is a new empty directory per run.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP = 20.0  # seconds the server may take to say where it listens

inference: Any = canopy.load_idl(_web._EXAMPLES / "inference.idl").inference
calculator: Any = canopy.load_idl(_web._EXAMPLES / "calculator.idl").calculator


class Demo:
    """A ``canopy demo --web --port 0`` process and everything it printed."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "canopy", "demo", "--web", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = self._wait_for_url()
        self.port = int(self.url.rstrip("/").rpartition(":")[2])
        self.origin = self.url.rstrip("/")
        self.ws_url = f"ws://127.0.0.1:{self.port}{_web.ENDPOINT}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + STARTUP
        prefix = "canopy demo: the page is at "
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line.startswith(prefix):
                return line.removeprefix(prefix).strip()
        self.stop()
        pytest.fail(f"canopy demo --web did not say where it serves:\n{''.join(self.output)}")

    def stop(self) -> None:
        """SIGTERM, as Ctrl-C would; killed (by its PID) if it does not end in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(5)


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    server = Demo()
    try:
        yield server
    finally:
        server.stop()
    assert server.process.returncode == 0, "".join(server.output)


def http(port: int, request: bytes) -> bytes:
    """Send one raw request to the demo and read the answer to its end (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if len(answer) > 1 << 20:
                break
    return answer


# ---------------------------------------------------------------- the edge, without a browser


def test_the_page_and_its_client_are_served(demo: Demo) -> None:
    host = f"127.0.0.1:{demo.port}".encode()
    page = http(demo.port, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert page.startswith(b"HTTP/1.1 200 OK\r\n"), page[:200]
    assert b"Content-Type: text/html; charset=utf-8\r\n" in page
    assert b"Content-Security-Policy: default-src 'self'" in page
    assert b"<title>Canopy in the browser</title>" in page
    for path in ("/app.js", "/inference.js", "/calculator.js", "/canopy-runtime.js"):
        answer = http(
            demo.port, f"GET {path} HTTP/1.1\r\nHost: localhost:{demo.port}\r\n\r\n".encode()
        )
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), (path, answer[:200])
        assert b"Content-Type: text/javascript; charset=utf-8\r\n" in answer
    gone = http(demo.port, b"GET /etc/passwd HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert gone.startswith(b"HTTP/1.1 404 Not Found\r\n"), gone[:200]
    posted = http(demo.port, b"POST / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert posted.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n"), posted[:200]


def test_a_foreign_host_or_an_oversized_request_is_refused(demo: Demo) -> None:
    # A page whose name resolves to the loopback (DNS rebinding) sends its own Host.
    rebound = http(demo.port, f"GET / HTTP/1.1\r\nHost: evil.example:{demo.port}\r\n\r\n".encode())
    assert rebound.startswith(b"HTTP/1.1 421 Misdirected Request\r\n"), rebound[:200]
    huge = b"GET / HTTP/1.1\r\nX-Filler: " + b"a" * (_web.REQUEST_LIMIT + 10) + b"\r\n\r\n"
    refused = http(demo.port, huge)
    assert refused.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), refused[:200]
    garbage = http(demo.port, b"\x16\x03\x01 hello\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400 Bad Request\r\n"), garbage[:200]


def test_only_the_pages_own_origin_may_connect(demo: Demo) -> None:
    refused = Zone("stranger")
    try:
        for origin in ("http://evil.example", f"http://127.0.0.1:{demo.port + 1}", None):
            with pytest.raises(canopy.TransportError, match="403"):
                refused.connect(demo.ws_url, inference.i_inference_service, origin=origin)
    finally:
        refused.close()
    for origin in (demo.origin, f"http://localhost:{demo.port}"):
        zone = Zone("visitor")
        try:
            service = zone.connect(demo.ws_url, inference.i_inference_service, origin=origin)
            assert service.list_models() == sorted(_web.WEB_MODELS)
            # The one root is also the calculator; nothing else is reachable.
            assert canopy.cast(service, calculator.i_calculator).add(40, 2) == 42
        finally:
            zone.close()


# ---------------------------------------------------------------- the page, in Chromium


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(
            f"Chromium is not installed at {CHROMIUM}: `make test` installs Debian's "
            "chromium package when run as root (apt-get install chromium)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            timeout=20_000,
            viewport={"width": 1100, "height": 900},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(10_000)
            yield page
        finally:
            context.close()


def tokens(page: Any) -> list[str]:
    result: list[str] = page.locator("#tokens .token").all_inner_texts()
    return result


def until(page: Any, check: Any, what: str, timeout: float = 10.0) -> None:
    """Poll ``check`` from here every 20 ms (bounded): the page's Content Security
    Policy forbids the string evaluation ``wait_for_function`` uses."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {timeout} s: {what}")
        page.wait_for_timeout(20)


def test_the_page_in_chromium(demo: Demo, browser_page: Any) -> None:
    page = browser_page
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    started = time.monotonic()
    page.goto(demo.url)
    page.wait_for_selector("body[data-state=ready]")
    assert page.locator("#models option").all_inner_texts() == sorted(_web.WEB_MODELS)

    # The calculator answers, and a value outside int says why.
    page.fill("#calc-a", "40")
    page.fill("#calc-b", "2")
    page.click("#calc-add")
    page.wait_for_selector("#calc-result:has-text('40 + 2 = 42')")
    page.fill("#calc-a", "2147483648")
    page.click("#calc-add")
    page.wait_for_selector("#calc-result.error:has-text('INVALID_DATA')")
    page.fill("#calc-a", "40")
    page.click("#calc-add")
    page.wait_for_selector("#calc-result:has-text('40 + 2 = 42')")

    # Tokens stream into the page as they come: some are there before the end.
    words = _web.WEB_MODELS["tiny-1"].split()
    page.select_option("#models", "tiny-1")
    page.click("#create-session")
    page.wait_for_selector("#generate:enabled")
    page.click("#generate")
    seen: list[tuple[list[str], str | None]] = []

    def streamed() -> bool:
        got = tokens(page)  # read before the finish, so a finish not yet seen came later
        seen.append((got, page.get_attribute("#finish", "data-reason")))
        return len(got) >= 3

    until(page, streamed, "three tokens arrived")
    partial, finished = seen[-1]
    assert finished is None, seen
    assert 3 <= len(partial) < len(words) and partial == words[: len(partial)], partial
    page.wait_for_selector("#finish[data-reason=complete]")
    assert tokens(page) == words
    assert page.inner_text("#finish") == f"on_finish(complete, {len(words)})"

    # Cancel stops a long generation part way; what came is still in order.
    story = _web.WEB_MODELS["story-1"].split()
    page.select_option("#models", "story-1")
    page.click("#create-session")
    page.wait_for_selector("#generate:enabled")
    page.click("#generate")
    until(page, lambda: len(tokens(page)) >= 4, "four tokens arrived")
    page.click("#cancel")
    page.wait_for_selector("#finish[data-reason=cancelled]")
    got = tokens(page)
    assert 4 <= len(got) < len(story) and got == story[: len(got)], got
    assert page.inner_text("#finish") == f"on_finish(cancelled, {len(got)})"
    page.wait_for_selector("#generate:enabled")

    ARTEFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / "demo-web.png"), full_page=True)

    # Releasing the session: the server destroys it (it says so on its output).
    page.click("#release-session")
    page.wait_for_selector("#generate:disabled")
    assert time.monotonic() - started < 20
    assert not problems, problems


def test_the_options_that_do_not_go_together(capsys: pytest.CaptureFixture[str]) -> None:
    from canopy.cli import main

    assert main(["demo", "--port", "8000"]) == 2
    assert main(["demo", "--web", "-o", "out"]) == 2
    assert main(["demo", "--web", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "--port goes with --web" in err
    assert "--output goes with the console demo, not --web" in err
    assert "--port 70000 is not a port number" in err
