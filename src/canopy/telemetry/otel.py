"""OpenTelemetry for Canopy: every call a client span in the caller and a server span in
the callee, one trace across zones, processes and machines.

    from canopy.telemetry import attach
    from canopy.telemetry.otel import OpenTelemetryObserver
    attach(OpenTelemetryObserver())      # uses the global TracerProvider

Spans follow the OpenTelemetry RPC conventions: named ``<rpc.service>/<rpc.method>``,
with ``rpc.system`` = ``canopy``, ``rpc.service`` the interface's qualified name
(``inference::v1::i_session``), ``rpc.method`` the method, and on failure an error
status with ``rpc.canopy.error_code`` (the Canopy error code) and the error's name.
A post is a PRODUCER span in the caller and a CONSUMER span in the callee. The
caller's context travels with the call as a W3C ``traceparent`` (``tracestate`` is
not carried), over every transport. Needs ``opentelemetry-api``
(``pip install 'canopy-rpc[otel]'``).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from canopy.errors import ErrorCode
from canopy.telemetry import Event, Observer, Span

__all__ = ["OpenTelemetryObserver"]


class _OtelSpan(Span):
    def __init__(self, span: trace.Span, trace_context: str = "") -> None:
        self.span = span
        self.trace = trace_context

    def enter(self) -> Any:
        return context.attach(trace.set_span_in_context(self.span))

    def leave(self, token: Any) -> None:
        if token is not None:
            context.detach(token)

    def end(self, error: BaseException | None = None, code: int = 0) -> None:
        if error is not None:
            self.span.set_attribute("rpc.canopy.error_code", code)
            try:
                name = ErrorCode(code).name
            except ValueError:
                name = "APPLICATION_ERROR"
            self.span.set_status(Status(StatusCode.ERROR, f"{name}: {error}"))
        self.span.end()


class OpenTelemetryObserver(Observer):
    """Spans for calls and posts; other events are left to ``event`` (override it)."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.tracer = trace.get_tracer("canopy", tracer_provider=tracer_provider)

    def client_call(self, event: Event) -> Span | None:
        kind = SpanKind.PRODUCER if event.kind == "post" else SpanKind.CLIENT
        span = self.tracer.start_span(_name(event), kind=kind, attributes=_attributes(event))
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        return _OtelSpan(span, carrier.get("traceparent", ""))

    def server_call(self, event: Event, trace_context: str) -> Span | None:
        parent = propagate.extract({"traceparent": trace_context}) if trace_context else None
        kind = SpanKind.CONSUMER if event.kind == "post" else SpanKind.SERVER
        span = self.tracer.start_span(
            _name(event), context=parent, kind=kind, attributes=_attributes(event)
        )
        return _OtelSpan(span)


def _name(event: Event) -> str:
    return f"{event.interface}/{event.method}"


def _attributes(event: Event) -> dict[str, Any]:
    return {
        "rpc.system": "canopy",
        "rpc.service": event.interface,
        "rpc.method": event.method,
        "rpc.canopy.zone": f"{event.zone:#x}",
        "rpc.canopy.zone_name": event.zone_name,
        "rpc.canopy.peer_zone": f"{event.peer:#x}",
    }
