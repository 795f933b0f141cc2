"""The scenario trees of tests/scenarios.py as fixtures, for the routing and reflection
tests: each ends with condition C0 and with no zone having complained in the log."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from scenarios import MODES, Tree


@pytest.fixture(params=MODES)
def t(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[Tree]:
    """The standard tree, in both modes."""
    tree = Tree(request.param)
    with caplog.at_level(logging.WARNING, logger="canopy"):
        yield tree
        assert tree.close() == {}, "references or routes left behind"
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == [], "a zone complained"


@pytest.fixture(params=[(m, two) for m in MODES for two in (False, True)], ids=str)
def tn(request: pytest.FixtureRequest) -> Iterator[Tree]:
    """The fixture for scenarios that make R's "new zone": directly and two levels down."""
    mode, two_level = request.param
    tree = Tree(mode, two_level=two_level)
    yield tree
    assert tree.close() == {}, "references or routes left behind"
