"""OpenTelemetry: a chain of calls R -> E -> Z and Z's callback into R is one trace, over
in-process zones and TCP, in both modes; spans follow the RPC conventions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the dev extras install opentelemetry-sdk")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

import canopy
from canopy import telemetry
from canopy.telemetry.otel import OpenTelemetryObserver
from scenarios import MODES, Baz, World


@pytest.fixture(params=[(m, t) for m in MODES for t in ("local", "tcp")], ids=str)
def traced(request: pytest.FixtureRequest) -> Iterator[tuple[World, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with telemetry.observing(OpenTelemetryObserver(provider)):
        world = World(*request.param)
        yield world, exporter
        world.close()


def test_a_chain_of_calls_and_a_callback_is_one_trace(
    traced: tuple[World, InMemorySpanExporter],
) -> None:
    world, exporter = traced
    z = world.do(world.e.create_example_in_subordinate_zone, world.host)
    exporter.clear()
    world.do(z.give_interface, Baz())  # R -> (E) -> Z, and Z -> (E) -> R: baz.callback(22)
    spans = {(s.name, s.kind): s for s in exporter.get_finished_spans()}
    give = "scenarios::i_example/give_interface"
    callback = "scenarios::i_baz/callback"
    outer_client = spans[(give, SpanKind.CLIENT)]
    outer_server = spans[(give, SpanKind.SERVER)]
    inner_client = spans[(callback, SpanKind.CLIENT)]
    inner_server = spans[(callback, SpanKind.SERVER)]
    trace_ids = {
        s.context.trace_id for s in (outer_client, outer_server, inner_client, inner_server)
    }
    assert len(trace_ids) == 1
    assert outer_server.parent is not None and outer_server.parent.span_id == (
        outer_client.context.span_id
    )
    assert inner_client.parent is not None
    assert inner_client.parent.span_id == outer_server.context.span_id
    assert inner_server.parent is not None
    assert inner_server.parent.span_id == inner_client.context.span_id
    assert outer_client.attributes is not None
    assert outer_client.attributes["rpc.system"] == "canopy"
    assert outer_client.attributes["rpc.service"] == "scenarios::i_example"
    assert outer_client.attributes["rpc.method"] == "give_interface"
    del z


def test_a_failed_call_has_an_error_status_and_code(
    traced: tuple[World, InMemorySpanExporter],
) -> None:
    world, exporter = traced
    world.do(world.e.set_host, None)
    exporter.clear()
    with pytest.raises(canopy.RemoteException):
        world.do(world.e.call_host_look_up_app_not_return, "x")
    failed = [s for s in exporter.get_finished_spans() if s.status.status_code is StatusCode.ERROR]
    assert {s.kind for s in failed} == {SpanKind.CLIENT, SpanKind.SERVER}
    for span in failed:
        assert span.attributes is not None
        assert span.attributes["rpc.canopy.error_code"] == int(canopy.ErrorCode.EXCEPTION)
        assert (span.status.description or "").startswith("EXCEPTION")


def test_posts_are_producer_and_consumer_spans(
    traced: tuple[World, InMemorySpanExporter],
) -> None:
    world, exporter = traced
    foo = world.do(world.e.create_foo)
    exporter.clear()
    world.do(foo.record_message, 1)
    assert world.do(foo.get_recorded_messages) == [1]
    kinds = {s.kind for s in exporter.get_finished_spans() if s.name.endswith("/record_message")}
    assert kinds == {SpanKind.PRODUCER, SpanKind.CONSUMER}
    del foo
