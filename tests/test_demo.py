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
