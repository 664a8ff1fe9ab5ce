"""Structured logs for every process: one line of JSON per record (or readable lines for a
terminal, ``DISPOSISI_LOG_FORMAT=console``), rendered by structlog for both structlog loggers
and the standard ``logging`` calls of Disposisi and its libraries (uvicorn, faststream,
aiokafka, pymongo).

Each line carries, where known: ``ticket_id`` and ``event_id`` (bound by the code handling
them, ``bound_ids``), and ``trace_id``/``span_id`` of the current span, so a line can be found
from a trace and a trace from a line. Health probes and metric scrapes are not logged at INFO.

Privacy: no reporter's name, phone or e-mail is ever put into a log line; a complaint's text
and reporter never are (tests/integration/test_log_privacy.py runs a full flow and checks).
"""

import contextlib
import logging
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any, Literal, Protocol, TextIO

import structlog
from opentelemetry import trace
from structlog.types import Processor

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
LogFormat = Literal["json", "console"]


def add_trace_ids(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The current span's trace and span ids, as hex (the form trace viewers search by)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def _common() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_trace_ids,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter every handler uses: structlog's, rendering standard records too."""
    renderer: Processor = (structlog.processors.JSONRenderer() if log_format == "json"
                           else structlog.dev.ConsoleRenderer(colors=False))
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_common(), structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
    )


class QuietProbes(logging.Filter):
    """Uvicorn's access line of a health probe or a metrics scrape, every few seconds from
    every orchestrator and scraper, would drown the rest: such lines count as DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        path = args[2] if isinstance(args, tuple) and len(args) >= 3 else None
        if isinstance(path, str) and path.split("?", 1)[0] in PROBE_PATHS:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def configure_logging(level: str = "INFO", log_format: LogFormat = "json", *,
                      stream: TextIO | None = None) -> None:
    """Route every logger of the process through one structlog-rendered handler (on stderr,
    or ``stream``)."""
    structlog.configure(
        processors=[*_common(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # What a record gathers that no line shows (the rendered fields are _common's): the
    # caller's frame, thread, process and multiprocessing names. The logging HOWTO's
    # "Optimization" switches; each HTTP request's access line paid for them twice (the
    # formatter copies the record), about a third of the line's cost.
    logging._srcfile = None  # documented there: skips findCaller
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # PyMongo's DEBUG lines quote whole commands: complaints with their reporters.
    logging.getLogger("pymongo").setLevel(max(root.level, logging.INFO))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # Uvicorn's own handlers would print a second, unstructured copy.
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
        logging.getLogger(name).setLevel(logging.NOTSET)  # the root's level
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, QuietProbes) for f in access.filters):
        access.addFilter(QuietProbes())


class _Identified(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def ticket_id(self) -> str | None: ...


@contextlib.contextmanager
def bound_ids(event: _Identified) -> Iterator[None]:
    """Every log line written while this event is handled names it and its ticket."""
    ids = {"event_id": event.id, **({"ticket_id": event.ticket_id} if event.ticket_id else {})}
    with structlog.contextvars.bound_contextvars(**ids):
        yield


def get_logger(name: str) -> Any:
    """A structlog logger (key-value lines: ``log.info("escalation fired", level=2)``)."""
    return structlog.stdlib.get_logger(name)
