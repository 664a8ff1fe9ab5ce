"""Traces: OpenTelemetry spans from an HTTP submission through every Kafka hop to the agency's
message, the ticket and its escalations, exported over OTLP/HTTP when
``DISPOSISI_OTLP_ENDPOINT`` is set. Unset (the default), every tracer is the API's no-op tracer
and nothing is added to messages or documents.

The context travels in W3C ``traceparent``/``tracestate`` Kafka headers. FastStream's
``KafkaTelemetryMiddleware`` is not used: for a batch subscriber (every Disposisi consumer) it
starts a new trace per batch and only links the records, and it injects the context current
when ``publish`` is called, which for an outbox sweep publishing after a crash is none. Here
each consumed record gets a span of its own, child of the span that produced it; an outbox
document keeps the context it was stored under (its ``trace`` field), and the relay publishes
it with that context however much later; a ticket keeps the context it was opened under, so
its escalations, fired by the scheduler hours later, join the same trace.

Each service's tracer hangs off its broker (``bind``): the tests run several services in one
process, each with its own ``service.name``.
"""

import asyncio
import contextlib
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from faststream.kafka import KafkaBroker
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import NoOpTracer, Span, SpanKind, Status, StatusCode, Tracer

from shared.settings import Settings

TRACE_FIELD = "trace"  # where documents keep the context they were stored under
_NO_OP = NoOpTracer()
_PROBES = "healthz,readyz,metrics"
Carrier = dict[str, str]


@dataclass
class Tracing:
    """One service's tracer; ``provider`` is None when tracing is off."""

    tracer: Tracer
    provider: Any = None  # opentelemetry.sdk.trace.TracerProvider, imported only when on

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    async def shutdown(self) -> None:
        """Send what is buffered (the SDK's batch processor) and stop exporting; in a thread,
        as the exporter blocks (retrying up to its timeout when the collector is away)."""
        if self.provider is not None:
            await asyncio.to_thread(self.provider.shutdown)


def start_tracing(settings: Settings, service: str) -> Tracing:
    if not settings.otlp_endpoint:
        return Tracing(_NO_OP)
    # The SDK and the exporter load only when tracing is on.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    resource = Resource.create({SERVICE_NAME: f"disposisi-{service}",
                                SERVICE_INSTANCE_ID: settings.instance_id,
                                "disposisi.tenant": settings.tenant})
    provider = TracerProvider(resource=resource,
                              sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)))
    endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return Tracing(provider.get_tracer("disposisi"), provider)


def instrument_http(app: Any, tracing: Tracing) -> None:
    """A server span per HTTP request (health probes and /metrics left out); nothing when off."""
    if not tracing.enabled:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracing.provider, excluded_urls=_PROBES)


_tracers: "weakref.WeakKeyDictionary[KafkaBroker, Tracer]" = weakref.WeakKeyDictionary()


def bind(broker: KafkaBroker, tracing: Tracing) -> None:
    if tracing.enabled:
        _tracers[broker] = tracing.tracer


def tracer_for(broker: KafkaBroker) -> Tracer | None:
    """The service's tracer, or None when tracing is off (callers then skip all span work)."""
    return _tracers.get(broker)


# While a batch is handled: each of its tickets' span context, so what a ticket's event causes
# (stored in an outbox, or published at the end of the batch) continues that ticket's trace.
_by_ticket: ContextVar[Mapping[str, Context] | None] = ContextVar("disposisi_trace_by_ticket",
                                                                 default=None)


def context_for(ticket_id: str | None) -> Context:
    found = (_by_ticket.get() or {}).get(ticket_id) if ticket_id else None
    return found if found is not None else otel_context.get_current()


def carrier_for(ticket_id: str | None) -> Carrier:
    """The W3C headers of the span this ticket's work runs under; empty when none (tracing
    off, or no span)."""
    carrier: Carrier = {}
    inject(carrier, context=context_for(ticket_id))
    return carrier


def trace_field(ticket_id: str | None) -> dict[str, Carrier]:
    """``{"trace": headers}`` to merge into a stored document, or nothing when untraced."""
    carrier = carrier_for(ticket_id)
    return {TRACE_FIELD: carrier} if carrier else {}


def parent_of(stored: Mapping[str, Any] | None, ticket_id: str | None) -> Context:
    """The context a stored document was written under, else the ticket's current one."""
    carrier = stored.get(TRACE_FIELD) if stored else None
    if isinstance(carrier, Mapping) and carrier:
        return extract(carrier)
    return context_for(ticket_id)


def header_carrier(headers: Iterable[tuple[str, bytes]]) -> Carrier:
    return {name: value.decode(errors="replace") for name, value in headers
            if name in ("traceparent", "tracestate")}


@contextlib.contextmanager
def ticket_spans(tracer: Tracer | None, name: str,
                 tickets: Sequence[tuple[str, Context, Mapping[str, Any]]], *,
                 kind: SpanKind = SpanKind.INTERNAL) -> Iterator[dict[str, Span]]:
    """One span per (ticket id, parent context, attributes), all open while the block runs;
    inside it, ``context_for(ticket)`` is that ticket's span, so whatever the block stores or
    publishes for it continues the trace. A failing block marks every span as failed."""
    if tracer is None or not tickets:
        yield {}
        return
    spans: dict[str, Span] = {}
    for ticket_id, parent, attributes in tickets:
        if ticket_id in spans:  # a ticket twice in one batch: one span
            continue
        spans[ticket_id] = tracer.start_span(name, context=parent, kind=kind,
                                             attributes={"disposisi.ticket_id": ticket_id,
                                                         **attributes})
    contexts = {**(_by_ticket.get() or {}),
                **{t: trace.set_span_in_context(s) for t, s in spans.items()}}
    token = _by_ticket.set(contexts)
    attached = None
    if len(spans) == 1:  # one ticket: its span is the current one (logs show its trace id)
        attached = otel_context.attach(trace.set_span_in_context(next(iter(spans.values()))))
    try:
        yield spans
    except BaseException as error:
        for span in spans.values():
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        raise
    finally:
        if attached is not None:
            otel_context.detach(attached)
        _by_ticket.reset(token)
        for span in spans.values():
            span.end()


def producer_span(tracer: Tracer, topic: str, parent: Context, key: str | None,
                  event_type: str) -> tuple[Span, Carrier]:
    """A span for sending one message, and the headers that make its consumer's span a child."""
    span = tracer.start_span(f"{topic} publish", context=parent, kind=SpanKind.PRODUCER,
                             attributes={"messaging.system": "kafka",
                                         "messaging.operation.type": "send",
                                         "messaging.destination.name": topic,
                                         "disposisi.event_type": event_type,
                                         **({"disposisi.ticket_id": key} if key else {})})
    carrier: Carrier = {}
    inject(carrier, context=trace.set_span_in_context(span))
    return span, carrier


@contextlib.contextmanager
def current(span: Span | None) -> Iterator[None]:
    """Make ``span`` the current one for a moment (so a log line shows its trace id)."""
    if span is None:
        yield
        return
    with trace.use_span(span, end_on_exit=False):
        yield
