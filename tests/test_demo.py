"""`canopy demo` (the README's first command) runs the inference walkthrough across zones."""

from __future__ import annotations

from pathlib import Path

import pytest

from canopy.cli import main


def test_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "interface inference::v1::i_session  id 0x" in out
    assert "list_models() -> ['echo', 'tiny-1']" in out
    assert "  [host] token 6: 'over'\n  [host] finished: max_tokens after 6 tokens" in out
    assert "the sink saw ['the', 'quick', 'brown'] and finish reason cancelled" in out
    assert "session destroyed: its last reference was released\nhost imports 1 object(s)" in out
    assert "the sink saw ['the', 'quick', 'brown', 'fox'], finish reason max_tokens" in out
    assert "feed.idl:3:39: error: [post] method 'i_feed::push' cannot have [out]" in out
    assert (tmp_path / "inference" / "v1" / "__init__.py").is_file()


def test_demo_trace_writes_the_diagram_and_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trace"
    assert main(["demo", "--trace", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("sequence.mmd", "sequence.puml", "animation.html"):
        assert f"wrote {out / name}\n" in printed
    mermaid = (out / "sequence.mmd").read_text(encoding="utf-8")
    assert mermaid.startswith("sequenceDiagram\n    participant z1 as host\n")
    assert "participant z3 as async-host" in mermaid
    assert "z2-)z1: i_token_sink.on_token" in mermaid
    assert "z1->>z2: i_session.cancel()" in mermaid
    plantuml = (out / "sequence.puml").read_text(encoding="utf-8")
    assert plantuml.startswith("@startuml\n") and plantuml.endswith("@enduml\n")
    page = (out / "animation.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and '"name":"async-host"' in page
    assert main(["demo", "--web", "--trace", str(out)]) == 2
    assert "--trace goes with the console demo, not --web" in capsys.readouterr().err
