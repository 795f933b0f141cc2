"""`canopy demo` (the README's first command) runs and shows the contracts compiled."""

from __future__ import annotations

from pathlib import Path

import pytest

from canopy.cli import main


def test_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "interface calculator::v1::i_calculator  id 0xf5ec46c8e025657f" in out
    assert "guide::encoding preferred = guide::encoding::yas_binary" in out
    assert "    def add(self, a: _cg.int32, b: _cg.int32) -> _cg.int32:" in out
    assert "Calculator().add(2, 3) = 5" in out
    assert "max_tokens=-1 is refused: cannot encode generation_options" in out
    assert "feed.idl:3:39: error: [post] method 'i_feed::push' cannot have [out]" in out
    assert (tmp_path / "inference" / "v1" / "__init__.py").is_file()
