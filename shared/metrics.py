"""Prometheus metrics of every service, served at ``GET /metrics`` in the text format.

Each service keeps its metrics in a registry of its own (several services share one process
in the tests, and each ``/metrics`` must show only its own figures). What is counted as it
happens costs a counter increment: HTTP requests, events consumed and produced (FastStream's
own Prometheus middleware), dead letters, store round trips (a PyMongo command listener),
routing decisions, escalations. Gauges that need the store or the broker (backlogs, open
tickets, consumer lag) are refreshed by a loop every ``metrics_refresh_seconds`` with bounded
queries, never at scrape time: a scrape costs no query and answers while the store is down,
when the failed refresh shows in ``disposisi_metrics_refresh_errors_total`` and
``disposisi_metrics_refresh_ok`` (0) and the gauges keep their last values.

A new service is wired with one call: ``install_metrics(app, metrics)`` (and, when it has them,
``make_broker(..., metrics=metrics)`` and ``mongo.connect(..., metrics=metrics)``).
"""

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from faststream._internal.middlewares import BaseMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from pymongo import monitoring
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.contracts import Topics
from shared.kafka import Outgoing
from shared.settings import Settings

log = logging.getLogger(__name__)

# Where each service listens (the Settings field of its port): `disposisi status` asks each
# one's /readyz and /metrics. A new service is one more line here.
SERVICE_PORTS: Mapping[str, str] = {
    "intake": "intake_port", "router": "router_port", "sla": "sla_port",
    "console": "console_port", "notify": "notify_port", "chat": "chat_port",
    "mailbox": "mailbox_port", "lapor": "lapor_port",
}

# Seconds: from a fast store round trip (~1 ms) to a slow report (30 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# The scheduler's delay from due to fired: its interval is about a second; late is 30 s.
DELAY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)

Refresh = Callable[[], Awaitable[None]]


class Metrics:
    """The metrics of one service process, on a registry of its own."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self._refreshes: dict[str, Refresh] = {}
        self.http_seconds = Histogram(
            "disposisi_http_request_duration_seconds", "HTTP requests by route template and status",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.store_seconds = Histogram(
            "disposisi_store_command_duration_seconds", "Store round trips by command and outcome",
            ["command", "outcome"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.dead_letters = Counter(
            "disposisi_dead_letters_total", "Records dead-lettered, by source topic and reason",
            ["source_topic", "reason"], registry=self.registry)
        self.refresh_errors = Counter(
            "disposisi_metrics_refresh_errors_total",
            "Failed refreshes of a gauge that needs the store or the broker", ["gauge"],
            registry=self.registry)
        self.refresh_ok = Gauge(
            "disposisi_metrics_refresh_ok", "1 when the gauge's last refresh worked, else 0",
            ["gauge"], registry=self.registry)
        self._routing: RoutingMetrics | None = None
        self._sla: SlaMetrics | None = None
        self._backlogs: BacklogMetrics | None = None

    # --- families of one service, registered by the service that reports them --------------

    @property
    def routing(self) -> "RoutingMetrics":
        if self._routing is None:
            self._routing = RoutingMetrics(self.registry)
        return self._routing

    @property
    def sla(self) -> "SlaMetrics":
        if self._sla is None:
            self._sla = SlaMetrics(self.registry)
        return self._sla

    @property
    def backlogs(self) -> "BacklogMetrics":
        if self._backlogs is None:
            self._backlogs = BacklogMetrics(self.registry)
        return self._backlogs

    # --- adapters --------------------------------------------------------------------------

    def kafka_middlewares(self) -> list[Any]:
        """FastStream's Prometheus middleware (events consumed and produced per topic, as
        ``faststream_*`` with ``app_name`` the service) and the dead-letter counter."""
        counted = KafkaPrometheusMiddleware(registry=self.registry, app_name=self.service)

        def dead_letters(msg: Any, /, *, context: Any) -> DeadLetterCounter:
            return DeadLetterCounter(msg, context=context, counter=self.dead_letters)

        return [counted, dead_letters]

    def store_listener(self) -> "StoreRoundTrips":
        return StoreRoundTrips(self.store_seconds)

    # --- gauges refreshed by a loop --------------------------------------------------------

    def refresh_with(self, gauge: str, refresh: Refresh) -> None:
        """Have ``refresh`` (which sets gauges) called by ``refresh_forever``."""
        self._refreshes[gauge] = refresh
        self.refresh_ok.labels(gauge).set(0)

    async def refresh_once(self, within: float) -> None:
        """Refresh every gauge side by side, each bounded by ``within``: a broker that does
        not answer holds up the lag, not the store's gauges."""
        await asyncio.gather(*(self._refresh(gauge, refresh, within)
                               for gauge, refresh in self._refreshes.items()))

    async def _refresh(self, gauge: str, refresh: Refresh, within: float) -> None:
        try:
            async with asyncio.timeout(within):
                await refresh()
            self.refresh_ok.labels(gauge).set(1)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.refresh_errors.labels(gauge).inc()
            self.refresh_ok.labels(gauge).set(0)
            log.warning("metrics: refreshing %s failed: %s", gauge, type(error).__name__)

    async def refresh_forever(self, settings: Settings) -> None:
        """Refresh every gauge, then wait ``metrics_refresh_seconds``; forever."""
        while True:
            await self.refresh_once(settings.metrics_refresh_timeout_seconds)
            await asyncio.sleep(settings.metrics_refresh_seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RoutingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "disposisi_routing_decisions_total",
            "Routing decisions by tenant, agency (TRIAGE: the triage desk) and confidence band",
            ["tenant", "agency", "confidence"], registry=registry)

    def decided(self, tenant: str, agency: str, confidence: float) -> None:
        self.decisions.labels(tenant, agency, confidence_band(confidence)).inc()

    def routed(self, outgoing: Sequence[Outgoing]) -> None:
        """Count the decisions among a batch's outgoing events (``ticket.routed``)."""
        for out in outgoing:
            if out.topic == Topics.ROUTED:
                data = out.event.data
                self.decided(out.event.tenant, data.agency, data.routing.confidence)


class SlaMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.escalations = Counter(
            "disposisi_escalations_total", "Escalation notices fired, by clock and level",
            ["clock", "level"], registry=registry)
        self.breaches = Counter(
            "disposisi_sla_breaches_total",
            "Deadlines passed: the first notice at or past a clock's target, by clock",
            ["clock"], registry=registry)
        self.scheduler_delay = Histogram(
            "disposisi_scheduler_delay_seconds", "From a notice's due time to its firing",
            buckets=DELAY_BUCKETS, registry=registry)
        self.open_tickets = Gauge(
            "disposisi_open_tickets", "Open tickets by tenant, agency and clock state",
            ["tenant", "agency", "clock_state"], registry=registry)

    def fired(self, notices: Sequence["FiredNotice"]) -> None:
        for notice in notices:
            self.escalations.labels(notice.clock, str(notice.level)).inc()
            if notice.breach:
                self.breaches.labels(notice.clock).inc()
            self.scheduler_delay.observe(max(0.0, notice.delay_seconds))

    def set_open(self, counts: Mapping[tuple[str, str, str], int]) -> None:
        """Replace the open-ticket gauge: a combination no longer counted goes away."""
        self.open_tickets.clear()
        for (tenant, agency, state), count in counts.items():
            self.open_tickets.labels(tenant, agency, state).set(count)


class BacklogMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.outbox = Gauge(
            "disposisi_outbox_backlog", "Stored events not yet published, by outbox (capped)",
            ["outbox"], registry=registry)
        self.outbox_age = Gauge(
            "disposisi_outbox_oldest_age_seconds", "Age of the oldest unpublished event, by outbox",
            ["outbox"], registry=registry)
        self.reconciliation = Gauge(
            "disposisi_reconciliation_backlog",
            "What reconciliation found overdue at its last turn, by what it reconciles",
            ["reconciler"], registry=registry)
        self.reconciliation_age = Gauge(
            "disposisi_reconciliation_oldest_seconds",
            "Age of the oldest overdue item at reconciliation's last turn", ["reconciler"],
            registry=registry)
        self.consumer_lag = Gauge(
            "disposisi_consumer_lag", "Records a consumer group has not committed, by topic",
            ["group", "topic"], registry=registry)


@dataclass(frozen=True)
class FiredNotice:
    """What the metrics need of one fired escalation notice."""

    clock: str
    level: int
    breach: bool
    delay_seconds: float


# --- pure decisions (unit-tested) -----------------------------------------------------------

CONFIDENCE_BANDS = ((0.8, "high"), (0.5, "medium"), (0.0, "low"))


def confidence_band(confidence: float) -> str:
    """A routing confidence as one of three bands (a label of bounded cardinality)."""
    return next(band for floor, band in CONFIDENCE_BANDS if confidence >= floor) \
        if confidence >= 0 else "low"


# A dead letter's reason is free text naming fields and values; its label is its kind. The
# first pattern that matches names it (see shared/kafka.py decode_event and the refusals).
_REASONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("oversized", re.compile(r"^record is \d+ bytes, over the limit")),
    ("invalid", re.compile(r"^invalid [a-z_.]+: ")),
    ("wrong_type", re.compile(r"^type: expected ")),
    ("no_ticket_id", re.compile(r"^ticket_id: required")),
    ("unknown_ticket", re.compile(r"^no ticket \S+ within ")),
    ("unknown_tenant", re.compile(r"tenant .* is not served")),
    ("not_processed", re.compile(r"^not processed: ")),
)


def reason_kind(reason: str) -> str:
    """The kind of a dead letter's reason; "refused" for a refusal of the domain."""
    return next((kind for kind, pattern in _REASONS if pattern.search(reason)), "refused")


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def http_method(scope: Scope) -> str:
    """The request's method, or "other": the client chooses it, and a label must not let a
    client create series at will."""
    method = str(scope.get("method", ""))
    return method if method in _METHODS else "other"


def http_route(scope: Scope) -> str:
    """The route template a request matched ("/v1/tickets/{ticket_id}"), never the path
    itself (ids in paths would make a label per ticket); for a mounted app (the console's
    /static) its mount point; "unmatched" when nothing matched."""
    mounted = str(scope.get("root_path") or "")  # where a mounted app's routes start
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return mounted + path
    return mounted or "unmatched"


# --- adapters --------------------------------------------------------------------------------


class HttpMetrics:
    """ASGI middleware: each request's duration (until its response is sent) by method,
    route template and status."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram
        self._children: dict[tuple[str, str, str], Histogram] = {}  # bounded: routes x statuses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            key = (http_method(scope), http_route(scope), str(status))
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.histogram.labels(*key)
            child.observe(time.perf_counter() - started)


class StoreRoundTrips(monitoring.CommandListener):
    """Each store command's round trip, as PyMongo measured it (no per-command allocation
    beyond the observation)."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self._children: dict[tuple[str, str], Histogram] = {}  # labels() takes a lock each time

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._child(event.command_name, "ok").observe(event.duration_micros / 1e6)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._child(event.command_name, "failed").observe(event.duration_micros / 1e6)

    def _child(self, command: str, outcome: str) -> Histogram:
        key = (command, outcome)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.histogram.labels(command, outcome)
        return child


class DeadLetterCounter(BaseMiddleware):
    """Counts every dead letter the service publishes, by source topic and reason kind. It
    reads only dead letters (a few), never the other events."""

    def __init__(self, msg: Any, /, *, context: Any, counter: Counter) -> None:
        super().__init__(msg, context=context)
        self.counter = counter

    async def publish_scope(self, call_next: Callable[[Any], Awaitable[Any]], cmd: Any) -> Any:
        result = await call_next(cmd)
        if getattr(cmd, "destination", None) == Topics.DEADLETTER:
            self.counter.labels(*_letter_labels(cmd.body)).inc()
        return result


def _letter_labels(body: object) -> tuple[str, str]:
    try:
        data = json.loads(body if isinstance(body, bytes | str) else b"{}")["data"]
        return str(data["source_topic"]), reason_kind(str(data["reason"]))
    except (ValueError, KeyError, TypeError):
        return "unknown", "unreadable"


def install_metrics(app: FastAPI, metrics: Metrics) -> None:
    """``GET /metrics`` and the HTTP latency of every request."""
    app.state.metrics = metrics
    app.add_middleware(HttpMetrics, histogram=metrics.http_seconds)

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    _ = prometheus_metrics
