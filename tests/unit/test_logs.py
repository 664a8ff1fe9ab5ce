"""The shared log configuration: JSON lines with the ids bound by handlers and the current
trace, readable lines on request, and health probes kept out of INFO."""

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from shared.logs import bound_ids, configure_logging, get_logger


class Event:
    id = "evt-1"
    ticket_id = "BKL-261130-AAAA1111"


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    access = logging.getLogger("uvicorn.access")
    access_state = (access.handlers[:], access.propagate, access.filters[:])
    stream = io.StringIO()
    try:
        yield stream
    finally:
        root.handlers, root.level = handlers, level
        access.handlers, access.propagate, access.filters = (
            access_state[0], access_state[1], access_state[2])


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def access_line(path: str) -> None:
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
                                             path, "1.1", 200)


def test_a_standard_log_call_is_one_json_line_with_the_bound_ids(output: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=output)
    with bound_ids(Event()):
        logging.getLogger("disposisi.test").warning("publishing %s failed", "BKL-1")
    logging.getLogger("disposisi.test").info("after")
    first, second = lines(output)
    assert first["event"] == "publishing BKL-1 failed" and first["level"] == "warning"
    assert first["ticket_id"] == Event.ticket_id and first["event_id"] == Event.id
    assert first["logger"] == "disposisi.test" and first["timestamp"].endswith("Z")
    assert "ticket_id" not in second  # unbound when the event is done


def test_a_line_written_inside_a_span_names_its_trace(output: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=output)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        get_logger("disposisi.test").info("escalation fired", escalation_level=2)
    [line] = lines(output)
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")
    assert line["escalation_level"] == 2 and line["level"] == "info"


def test_health_probes_and_scrapes_are_not_logged_at_info(output: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=output)
    for path in ("/healthz", "/readyz", "/metrics", "/readyz?verbose=1", "/v1/complaints"):
        access_line(path)
    assert [line["event"] for line in lines(output)] == [
        '127.0.0.1:5000 - "GET /v1/complaints HTTP/1.1" 200']


def test_at_debug_health_probes_are_logged_as_debug(output: io.StringIO) -> None:
    configure_logging("DEBUG", "json", stream=output)
    access_line("/healthz")
    [line] = lines(output)
    assert line["level"] == "debug" and "/healthz" in line["event"]


def test_console_format_is_readable_not_json(output: io.StringIO) -> None:
    configure_logging("INFO", "console", stream=output)
    with bound_ids(Event()):
        logging.getLogger("disposisi.test").info("ticket opened")
    text = output.getvalue()
    assert "ticket opened" in text and f"ticket_id={Event.ticket_id}" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_pymongo_command_lines_stay_out_even_at_debug(output: io.StringIO) -> None:
    configure_logging("DEBUG", "json", stream=output)
    assert not logging.getLogger("pymongo.command").isEnabledFor(logging.DEBUG)
