"""Zone ids: unique across every process that may link to another, forked ones included."""

from __future__ import annotations

import os

import pytest

from canopy.runtime._zone import ZONE_IDS


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_allocates_zone_ids_of_its_own() -> None:
    ZONE_IDS.next()  # the parent has drawn ids before it forks, as a pre-forking server has
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id, and leave at once
        try:
            os.write(write, ZONE_IDS.next().to_bytes(8, "little"))
        finally:
            os._exit(0)
    os.close(write)
    try:
        child = int.from_bytes(os.read(read, 8), "little")
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    ours = ZONE_IDS.next()
    assert child >> 32 != ours >> 32, "the child drew the parent's prefix"
