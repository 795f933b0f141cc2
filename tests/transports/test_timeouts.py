"""Calls that wait too long: CallTimeout after the link's or the block's timeout, the link
still working, and the late reply dropped with every reference it carried released."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import canopy
from behaviour import MODES, Harness, b

# A blocking call to a zone of this process runs on the caller's thread: nothing to time.
CASES = [(m, t) for m in MODES for t in ("local", "tcp", "unix") if (m, t) != ("blocking", "local")]


@pytest.fixture(params=CASES, ids=lambda p: "-".join(p))
def h(request: pytest.FixtureRequest) -> Iterator[Harness]:
    mode, transport = request.param
    harness = Harness(mode, transport=transport)
    yield harness
    assert harness.close() == {}, "references or objects left behind"


def test_a_call_past_its_timeout_raises_call_timeout(h: Harness) -> None:
    start = time.monotonic()
    with canopy.call_timeout(0.2), pytest.raises(canopy.CallTimeout) as raised:
        h.do(h.root.slow, 400)
    took = time.monotonic() - start
    assert 0.2 <= took < 0.9, took
    assert raised.value.code == canopy.ErrorCode.CALL_TIMEOUT
    assert "behaviour::i_test::slow: no reply from zone" in str(raised.value)
    assert "within 0.2 s" in str(raised.value)
    assert h.do(h.root.add, 1, 2) == 3  # the link still works
    h.pause(0.3)
    # The late reply is read (a blocking client reads while it calls) and dropped, and
    # the widget it carried is released: the fixture finds nothing left.
    assert h.do(h.root.add, 0, 0) == 0


def test_a_call_within_its_timeout_is_untouched(h: Harness) -> None:
    with canopy.call_timeout(5):
        widget = h.do(h.root.slow, 50)
    assert h.do(widget.name) == "late"
    with canopy.call_timeout(None):  # no limit at all
        assert h.do(h.root.add, 2, 2) == 4


def test_the_link_has_a_timeout_of_its_own() -> None:
    with canopy.Zone("service") as service, canopy.Zone("client") as client:
        from behaviour import TestService

        server = service.serve("tcp://127.0.0.1:0", lambda z: TestService(), b.i_test)
        root = client.connect(server.url, b.i_test, call_timeout=0.2)
        with pytest.raises(canopy.CallTimeout, match=r"within 0\.2 s"):
            root.slow(1000)
        with canopy.call_timeout(3):  # the block wins over the link
            assert root.slow(400).name() == "late"
        canopy.close(root)


def test_a_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        canopy.call_timeout(0).__enter__()
