"""The observer sees zones, links, objects, references and calls, in both modes, in
process and over TCP; the recorder draws them; OpenTelemetry makes one trace of a
chain of calls across zones, callback included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import canopy
from canopy import telemetry
from canopy.errors import ErrorCode
from canopy.telemetry.recorder import Recorder
from scenarios import MODES, World, s


@pytest.fixture(params=[(m, t) for m in MODES for t in ("local", "tcp")], ids=str)
def recorded(request: pytest.FixtureRequest) -> Iterator[tuple[World, Recorder]]:
    with telemetry.observing(Recorder()) as recorder:
        world = World(*request.param)
        yield world, recorder
        world.close()


def _kinds(recorder: Recorder) -> set[str]:
    return {e.kind for e in recorder.events}


def test_the_observer_sees_calls_objects_references_and_links(
    recorded: tuple[World, Recorder],
) -> None:
    world, recorder = recorded
    z = world.do(world.e.create_example_in_subordinate_zone, world.host)
    assert world.do(z.add, 2, 3) == 5
    baz = world.do(z.create_baz)
    assert world.do(world.e.send_interface_back, baz) is baz
    with pytest.raises(canopy.InvalidCast):
        world.do(canopy.cast if world.loop is None else canopy.acast, baz, s.i_foo)
    del baz, z
    world.do(world.e.set_host, None)
    expected = {
        "zone_created",
        "link_up",
        "stub_created",
        "proxy_created",
        "call",
        "reply",
        "cast",
        "add_ref",
        "release",
    }
    assert expected <= _kinds(recorder), expected - _kinds(recorder)
    calls = [e for e in recorder.events if e.kind == "call" and e.method == "add"]
    assert [c.side for c in calls] == ["client", "server"]
    assert calls[0].zone == calls[1].peer  # the callee names the caller, through E
    assert calls[0].interface == "scenarios::i_example"


def test_a_failed_call_is_a_reply_with_its_error_code(recorded: tuple[World, Recorder]) -> None:
    world, recorder = recorded
    world.do(world.e.set_host, None)
    with pytest.raises(canopy.RemoteException):  # E's example has no host to ask
        world.do(world.e.call_host_look_up_app_not_return, "x")
    failed = [e for e in recorder.events if e.kind == "reply" and e.error]
    assert {(e.side, e.method, e.error) for e in failed} == {
        ("client", "call_host_look_up_app_not_return", ErrorCode.EXCEPTION),
        ("server", "call_host_look_up_app_not_return", ErrorCode.EXCEPTION),
    }
    assert "call_host_look_up_app_not_return → EXCEPTION ✗" in recorder.mermaid()


def test_the_recorder_writes_mermaid_and_plantuml(recorded: tuple[World, Recorder]) -> None:
    world, recorder = recorded
    z = world.do(world.e.create_example_in_subordinate_zone, world.host)
    assert world.do(z.add, 1, 1) == 2
    foo = world.do(z.create_foo)
    world.do(foo.record_message, 7)
    assert world.do(foo.get_recorded_messages) == [7]
    del foo, z
    mermaid = recorder.mermaid()
    assert mermaid.startswith("sequenceDiagram\n")
    assert 'as "R"' in mermaid or "as R" in mermaid
    assert "i_example.add()" in mermaid and "i_example.add → ok" in mermaid
    assert "-)" in mermaid and "i_foo.record_message" in mermaid  # the post
    plantuml = recorder.plantuml()
    assert plantuml.startswith("@startuml\n") and plantuml.endswith("@enduml\n")
    assert 'participant "R"' in plantuml
    assert "->> " in plantuml  # the post


def test_with_no_observer_nothing_is_recorded() -> None:
    recorder = Recorder()
    world = World("blocking", "local")
    try:
        assert world.do(world.e.add, 1, 2) == 3
    finally:
        world.close()
    assert recorder.events == []
    assert telemetry.attached() is None
