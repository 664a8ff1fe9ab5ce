"""The tracing helpers on their own: off by default; inside ``ticket_spans`` each ticket's
stored context is its own span's; a stored context is found again; a failure marks the spans."""

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from shared.kafka import make_broker
from shared.settings import Settings
from shared.telemetry import (
    bind,
    carrier_for,
    parent_of,
    start_tracing,
    ticket_spans,
    trace_field,
    tracer_for,
)


def recorder() -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def test_tracing_is_off_unless_an_endpoint_is_set() -> None:
    settings = Settings(auth_secret="x" * 40)
    tracing = start_tracing(settings, "intake")
    assert not tracing.enabled and settings.otlp_endpoint is None
    broker = make_broker(settings, "intake")
    bind(broker, tracing)
    assert tracer_for(broker) is None
    assert trace_field("BKL-1") == {} and carrier_for(None) == {}


def test_each_ticket_of_a_batch_stores_its_own_spans_context() -> None:
    tracer, exporter = recorder()
    with tracer.start_as_current_span("upstream") as upstream:
        parent = trace.set_span_in_context(upstream)
    with ticket_spans(tracer, "ticket open", [("BKL-1", parent, {}), ("BKL-2", parent, {}),
                                              ("BKL-1", parent, {})]) as spans:
        first, second = trace_field("BKL-1")["trace"], trace_field("BKL-2")["trace"]
    assert sorted(spans) == ["BKL-1", "BKL-2"]  # a ticket twice in a batch: one span
    assert format(spans["BKL-1"].get_span_context().span_id, "016x") in first["traceparent"]
    assert format(spans["BKL-2"].get_span_context().span_id, "016x") in second["traceparent"]
    assert trace_field("BKL-1") == {}  # outside the block, nothing is current
    finished = exporter.get_finished_spans()
    assert [s.name for s in finished].count("ticket open") == 2
    assert all(s.parent is not None and s.parent.span_id == upstream.get_span_context().span_id
               for s in finished if s.name == "ticket open")
    # Later (the scheduler): the stored context is the parent again.
    again = trace.get_current_span(parent_of({"trace": first}, "BKL-1")).get_span_context()
    assert again.span_id == spans["BKL-1"].get_span_context().span_id


def test_a_failing_block_marks_its_spans_failed() -> None:
    tracer, exporter = recorder()
    with pytest.raises(RuntimeError), ticket_spans(tracer, "ticket open",
                                                   [("BKL-1", trace.set_span_in_context(
                                                       trace.INVALID_SPAN), {})]):
        raise RuntimeError("store down")
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
