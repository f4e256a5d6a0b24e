"""Trace context from intake to delivery: W3C `traceparent` on Kafka headers, spans by OpenTelemetry.

- Ingest gives every accepted request a trace; a caller's own `traceparent` header continues
  theirs. Each event carries it in the intake log and on `events`.
- A consumer continues the traces of the batch it applies (one span per batch, linked to them).
  What it publishes about a customer carries that customer's trace on, so `customer-changes`,
  `scores` and `campaign-outcomes` messages join the trace of the event that caused them.
- Campaigns keep the trace of the lapse on the enrolment, and hand it to the provider with each
  message (the `traceparent` header of a webhook, a header of an email).

Spans go to an OTLP collector when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and nowhere otherwise;
the context travels either way, so log lines (`trace_id`) can be joined across services.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
_VALID = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_PROPAGATOR = TraceContextTextMapPropagator()
_BATCH: ContextVar[Mapping[tuple[str, str], str]] = ContextVar("cartera_batch_traces", default=MappingProxyType({}))
MAX_LINKS = 32  # a batch of 2,000 events links to the first few traces it continues, not all

_configured = False


def setup_tracing(service: str) -> None:
    """Once per process; an exporter only when an OTLP endpoint is configured."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"cartera-{service}"}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer() -> Tracer:
    return trace.get_tracer("cartera")


def valid(traceparent: str | None) -> str | None:
    """A caller's header is used only if it is well formed: a bad one starts a new trace, never an error."""
    if traceparent and _VALID.match(traceparent.strip().lower()):
        return traceparent.strip().lower()
    return None


def context_of(traceparent: str | None) -> Context | None:
    if traceparent is None:
        return None
    return _PROPAGATOR.extract({TRACEPARENT: traceparent})


def traceparent_of(span: Span) -> str | None:
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def trace_id_of(traceparent: str | None) -> str | None:
    return traceparent.split("-")[1] if traceparent else None


@contextmanager
def request_span(name: str, incoming: str | None) -> Iterator[str | None]:
    """A span for one HTTP request, continuing the caller's trace; yields its `traceparent`."""
    with tracer().start_as_current_span(name, context=context_of(valid(incoming)), kind=trace.SpanKind.SERVER) as span:
        yield traceparent_of(span)


@contextmanager
def batch_span(name: str, traces: Mapping[tuple[str, str], str]) -> Iterator[None]:
    """One span per consumed batch, child of the first trace and linked to the others; while it is
    open, `trace_for` gives each customer's trace to whatever is published about them."""
    parents = list(dict.fromkeys(traces.values()))
    first = context_of(parents[0]) if parents else None
    links = [Link(c.get_span_context()) for tp in parents[1:MAX_LINKS] if (c := _span_context(tp)) is not None]
    token = _BATCH.set(traces)
    try:
        with tracer().start_as_current_span(name, context=first, links=links, kind=trace.SpanKind.CONSUMER):
            yield
    finally:
        _BATCH.reset(token)


def _span_context(traceparent: str) -> Span | None:
    ctx = context_of(traceparent)
    span = trace.get_current_span(ctx) if ctx is not None else None
    return span if span is not None and span.get_span_context().is_valid else None


_REQUEST: ContextVar[str | None] = ContextVar("cartera_request_trace", default=None)


def trace_for(workspace_id: str, customer_id: str) -> str | None:
    """The trace of the event being applied for this customer, else of the HTTP request being served:
    what either causes joins it."""
    return _BATCH.get().get((workspace_id, customer_id)) or _REQUEST.get()


@contextmanager
def request_trace(traceparent: str | None) -> Iterator[None]:
    token = _REQUEST.set(traceparent)
    try:
        yield
    finally:
        _REQUEST.reset(token)


@contextmanager
def traces_for(traces: Mapping[tuple[str, str], str]) -> Iterator[None]:
    """`trace_for` answers from `traces` inside the block (for work outside a consumer batch)."""
    token = _BATCH.set(traces)
    try:
        yield
    finally:
        _BATCH.reset(token)
