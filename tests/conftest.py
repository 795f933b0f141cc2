"""What every test directory shares: a cheap ``gc.collect()``, and steady hypothesis
draws under CI.

The tests call ``gc.collect()`` often, to see the releases that dropping a proxy
produces. A full collection walks every tracked object in the process, and once pytest,
hypothesis, lark and the generated modules are loaded that is a hundred thousand
objects: about 0.1 s a call, most of the suite's time. So what exists when collection
ends is moved out of the collector's reach with ``gc.freeze()``, and so is what each
test leaves alive: a later collection walks only what the running test made. Objects
freed by their reference count are still freed at once; only cycles among frozen objects
would stay, and those were not garbage when frozen.

Under CI (``CI`` set, as CI services set it) hypothesis draws the same examples every
run, so CI's verdict is the code's, not the draw's; elsewhere each run explores new
ones, and what they find is kept in ``.hypothesis/`` and replayed first.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield
    # What a test leaves alive (caches, the fixtures of its module and session) is
    # frozen too, after one look at what it made: the next test's collections walk
    # only what that test makes.
    gc.collect()
    gc.freeze()
