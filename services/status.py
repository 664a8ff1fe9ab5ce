"""``disposisi status``: is every service ready, how far behind is each consumer group, what
waits in the outboxes and for reconciliation. Services are asked at the settings' addresses
(``/readyz`` and ``/metrics``), the lag comes from the broker itself (so it shows while a
service is down). Exit 0 when every service is ready and the broker answered, else 1."""

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.drain import ALL_GROUPS
from shared.lag import GroupLag, consumer_lag
from shared.metrics import SERVICE_PORTS
from shared.settings import Settings

# The gauges of /metrics the status shows, each as (what, its age gauge).
_BACKLOGS = {"outbox": ("disposisi_outbox_backlog", "disposisi_outbox_oldest_age_seconds", "outbox"),
             "reconciliation": ("disposisi_reconciliation_backlog",
                                "disposisi_reconciliation_oldest_seconds", "reconciler")}


@dataclass(frozen=True)
class Backlog:
    service: str
    kind: str  # outbox or reconciliation
    name: str
    count: float
    oldest_seconds: float


@dataclass(frozen=True)
class ServiceState:
    name: str
    url: str
    ready: bool
    problem: str | None = None  # what /readyz named, or why it did not answer
    backlogs: tuple[Backlog, ...] = ()


@dataclass
class Status:
    services: list[ServiceState] = field(default_factory=list)
    lag: list[GroupLag] = field(default_factory=list)
    lag_error: str | None = None

    @property
    def ok(self) -> bool:
        return all(s.ready for s in self.services) and self.lag_error is None


def service_url(settings: Settings, port_field: str) -> str:
    host = settings.http_host
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: ask it on loopback
        host = "127.0.0.1"
    return f"http://{host}:{getattr(settings, port_field)}"


def readiness_problem(status_code: int, body: object) -> str | None:
    """None when ready; else the failed checks with what each said."""
    if status_code == 200:
        return None
    checks = body.get("checks", {}) if isinstance(body, dict) else {}
    failed = [f"{name} ({check.get('problem', 'failed')})" for name, check in checks.items()
              if isinstance(check, dict) and not check.get("ok")]
    return "; ".join(failed) or f"/readyz answered {status_code}"


def backlogs_in(service: str, exposition: str) -> list[Backlog]:
    """The outbox and reconciliation backlogs a service's /metrics reports."""
    samples: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            for kind, (count, age, label) in _BACKLOGS.items():
                if sample.name in (count, age) and label in sample.labels:
                    key = f"{kind}/{sample.labels[label]}"
                    samples.setdefault(key, {})[sample.name] = sample.value
    found = []
    for key, values in sorted(samples.items()):
        kind, name = key.split("/", 1)
        count, age, _ = _BACKLOGS[kind]
        found.append(Backlog(service, kind, name, values.get(count, math.nan), values.get(age, 0.0)))
    return found


async def service_state(http: httpx.AsyncClient, name: str, url: str) -> ServiceState:
    try:
        ready = await http.get(f"{url}/readyz")
        body = ready.json() if ready.headers.get("content-type", "").startswith("application/json") \
            else None
        problem = readiness_problem(ready.status_code, body)
        scraped = await http.get(f"{url}/metrics")
        backlogs = backlogs_in(name, scraped.text) if scraped.status_code == 200 else []
    except httpx.HTTPError as error:
        return ServiceState(name, url, False, f"not answering ({type(error).__name__})")
    return ServiceState(name, url, problem is None, problem, tuple(backlogs))


async def gather_status(settings: Settings,
                        groups: Mapping[str, Sequence[str]] = ALL_GROUPS) -> Status:
    status = Status()
    timeout = settings.status_timeout_seconds
    async with httpx.AsyncClient(timeout=timeout) as http:
        status.services = list(await asyncio.gather(*(
            service_state(http, name, service_url(settings, port))
            for name, port in SERVICE_PORTS.items())))
    try:
        status.lag = await consumer_lag(settings, groups, client_id="disposisi-status",
                                        within=timeout)
    except Exception as error:
        said = str(error)
        status.lag_error = (said if said.startswith(type(error).__name__)
                            else f"{type(error).__name__}: {said}")[:300]
    return status


def render(status: Status) -> str:
    lines = ["Services (/readyz)"]
    width = max((len(s.name) for s in status.services), default=0)
    for s in status.services:
        state = "ready" if s.ready else f"NOT READY: {s.problem}"
        lines.append(f"  {s.name:<{width}}  {s.url:<24}  {state}")
    lines.append("Consumer lag (records not committed)")
    if status.lag_error:
        lines.append(f"  BROKER NOT ANSWERING: {status.lag_error}")
    group_width = max((len(g.group) for g in status.lag), default=0)
    for g in status.lag:
        lines.append(f"  {g.group:<{group_width}}  {g.topic:<36}  {g.behind}")
    for kind, title in (("outbox", "Outbox backlogs (unpublished events)"),
                        ("reconciliation", "Reconciliation backlogs (overdue, at the last turn)")):
        lines.append(title)
        rows = [b for s in status.services for b in s.backlogs if b.kind == kind]
        lines += [f"  {b.service:<8}  {b.name:<18}  {_count(b.count):>6}"
                  + (f"  oldest {b.oldest_seconds:.0f} s" if b.count else "") for b in rows]
        if not rows:
            lines.append("  (no service reported any)")
    lines.append("OK: every service is ready" if status.ok else "NOT OK: see above")
    return "\n".join(lines)


def _count(value: float) -> str:
    return "?" if math.isnan(value) else f"{value:.0f}"


def run_status(settings: Settings) -> int:
    status = asyncio.run(gather_status(settings))
    print(render(status))
    return 0 if status.ok else 1
