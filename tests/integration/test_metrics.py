"""Every service's /metrics after traffic passed end to end (submit → route → ticket → an
escalation under the 5-second demo policy, a poison record, the console's sign-in page),
scraped over HTTP from the real servers and parsed with prometheus_client's own parser: the
series are there, non-zero where the traffic went, and no label carries a ticket id.
And `disposisi status` against the same servers: all ready (exit 0), then with the console
stopped (exit 1, naming it)."""

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from services import cli
from services.chat.app import create_app as chat_app
from services.console.app import create_app as console_app
from services.intake.app import create_app as intake_app
from services.lapor.app import create_app as lapor_app
from services.mailbox.app import create_app as mailbox_app
from services.notify.app import create_app as notify_app
from services.router.app import create_app as router_app
from services.sla.app import create_app as sla_app
from services.status import gather_status, render
from shared import mongo
from shared.contracts import Topics
from shared.embedded import free_port
from shared.metric_gauges import report_lag_of, report_outboxes
from shared.metrics import Metrics, install_metrics
from shared.settings import Settings, as_environment
from tests.integration.auth_support import Accounts
from tests.integration.support import eventually, produce, serving, serving_together

pytestmark = pytest.mark.integration

GARBAGE = "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"
UNROUTABLE = "Halo selamat pagi, terima kasih"  # no agency's terms: the triage desk
TICKET_ID = re.compile(r"[A-Z]{2,5}-\d{6}-[0-9A-Z]{8}")


def samples(exposition: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(exposition) for s in family.samples]


def total(found: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(s.value for s in found if s.name == name
               and all(s.labels.get(k) == v for k, v in labels.items()))


def present(found: list[Sample], name: str, **labels: str) -> bool:
    return any(s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
               for s in found)


@asynccontextmanager
async def system(settings: Settings) -> AsyncIterator[tuple[dict[str, str], AsyncExitStack]]:
    """Intake, router, SLA, notifications, chat, the mailbox, the LAPOR! connector and the
    console on their settings' ports; the exit stack closes the console first."""
    async with AsyncExitStack() as stack:
        urls = await serving_together(stack, {
            "intake": (intake_app(settings), settings.intake_port),
            "router": (router_app(settings), settings.router_port),
            "sla": (sla_app(settings), settings.sla_port),
            "notify": (notify_app(settings), settings.notify_port),
            "chat": (chat_app(settings), settings.chat_port),
            "mailbox": (mailbox_app(settings), settings.mailbox_port),
            "lapor": (lapor_app(settings), settings.lapor_port),
        })
        console = AsyncExitStack()
        stack.push_async_exit(console)
        urls["console"] = await console.enter_async_context(
            serving(console_app(settings), settings.console_port))
        yield urls, console


def metrics_settings(settings: Settings) -> Settings:
    intake = f"http://127.0.0.1:{settings.intake_port}"
    sla = f"http://127.0.0.1:{settings.sla_port}"
    return settings.model_copy(update={
        "metrics_refresh_seconds": 0.3, "console_port": free_port(), "notify_port": free_port(),
        "chat_port": free_port(),
        "mailbox_port": free_port(), "mailbox_smtp_port": free_port(), "lapor_port": free_port(),
        "console_intake_url": intake, "console_sla_url": sla})


async def scrape(http: httpx.AsyncClient, urls: Mapping[str, str]) -> dict[str, list[Sample]]:
    found = {}
    for name, url in urls.items():
        response = await http.get(f"{url}/metrics")
        assert response.status_code == 200, (name, response.status_code)
        assert response.headers["content-type"].startswith("text/plain"), name
        found[name] = samples(response.text)
    return found


async def test_every_service_reports_the_traffic_that_passed(
        settings: Settings, accounts: Accounts) -> None:
    settings = metrics_settings(settings)
    web = await accounts.channel("web")
    async with system(settings) as (urls, _), httpx.AsyncClient(timeout=30) as http:
        for text in (GARBAGE, UNROUTABLE):
            posted = await http.post(f"{urls['intake']}/v1/complaints", headers=web.headers,
                                     json={"channel": "web", "text": text})
            assert posted.status_code == 202, posted.text
        await produce(settings.kafka_bootstrap_servers, Topics.SUBMITTED, [("poison", b"not json")])
        assert (await http.get(f"{urls['console']}/login")).status_code == 200
        # The router's one use of the store: accounts, when someone signs in there.
        refused = await http.post(f"{urls['router']}/v1/auth/token",
                                  data={"username": "nobody", "password": "not-this-one"})
        assert refused.status_code == 400, refused.text

        async def sla_has_fired() -> list[Sample] | None:
            # Response level 1 at 3.75 s, level 2 (the breach) at 5 s; open tickets every 0.3 s.
            sla = samples((await http.get(f"{urls['sla']}/metrics")).text)
            fired = total(sla, "disposisi_sla_breaches_total", clock="response") > 0
            counted = total(sla, "disposisi_open_tickets", agency="DLH", clock_state="overdue") > 0
            return sla if fired and counted else None

        assert await eventually(sla_has_fired, timeout=90), "no breach or open ticket reported"

        async def intake_has_all() -> dict[str, list[Sample]] | None:
            found = await scrape(http, urls)
            intake = found["intake"]
            ready = (total(intake, "disposisi_dead_letters_total", reason="invalid") > 0
                     and present(intake, "disposisi_consumer_lag", group="disposisi-intake"))
            return found if ready else None

        found = await eventually(intake_has_all, timeout=60)
        assert found, "intake never reported its dead letter and consumer lag"

    intake, router, sla, console = (found[n] for n in ("intake", "router", "sla", "console"))
    # HTTP latency by route template and status.
    assert total(intake, "disposisi_http_request_duration_seconds_count", method="POST",
                 route="/v1/complaints", status="202") == 2
    assert total(console, "disposisi_http_request_duration_seconds_count", method="GET",
                 route="/login", status="200") == 1
    assert total(sla, "disposisi_http_request_duration_seconds_count", route="/metrics") > 0
    assert total(router, "disposisi_http_request_duration_seconds_count", method="POST",
                 route="/v1/auth/token", status="400") == 1
    # Events consumed and produced per topic (FastStream's middleware, app_name = service).
    assert total(intake, "faststream_published_messages_total", app_name="intake",
                 destination=Topics.RECEIVED, status="success") >= 2
    assert total(intake, "faststream_received_messages_total", handler=Topics.SUBMITTED) >= 1
    assert total(router, "faststream_received_messages_total", handler=Topics.RECEIVED) >= 2
    assert total(router, "faststream_published_messages_total", destination=Topics.ROUTED) >= 2
    assert total(router, "faststream_published_messages_total",
                 destination=Topics.agency("DLH")) >= 1
    assert total(sla, "faststream_received_messages_total", handler=Topics.ROUTED) >= 2
    assert total(sla, "faststream_published_messages_total", destination=Topics.ESCALATIONS) >= 2
    # Consumer lag of each service's own groups.
    assert present(router, "disposisi_consumer_lag", group="disposisi-router", topic=Topics.RECEIVED)
    assert present(sla, "disposisi_consumer_lag", group="disposisi-sla", topic=Topics.ROUTED)
    # Dead letters by reason: the poison record's.
    assert total(intake, "disposisi_dead_letters_total", source_topic=Topics.SUBMITTED,
                 reason="invalid") == 1
    # Outbox and reconciliation backlogs (present; nothing waits once published).
    for name in ("complaints", "replies"):
        assert present(intake, "disposisi_outbox_backlog", outbox=name)
        assert present(intake, "disposisi_outbox_oldest_age_seconds", outbox=name)
    assert present(sla, "disposisi_outbox_backlog", outbox="escalations")
    assert present(intake, "disposisi_reconciliation_backlog", reconciler="complaints")
    assert present(sla, "disposisi_reconciliation_backlog", reconciler="escalations")
    # Routing decisions by agency and confidence band; the triage desk's share.
    assert total(router, "disposisi_routing_decisions_total", agency="DLH") == 1
    assert total(router, "disposisi_routing_decisions_total", agency="TRIAGE",
                 confidence="low") == 1
    # Open tickets by agency and clock state; escalations by level; breaches; the scheduler.
    assert total(sla, "disposisi_open_tickets", agency="DLH", clock_state="overdue") == 1
    assert total(sla, "disposisi_escalations_total", clock="response", level="1") >= 1
    assert total(sla, "disposisi_escalations_total", clock="response", level="2") >= 1
    assert total(sla, "disposisi_sla_breaches_total", clock="response") >= 1
    assert total(sla, "disposisi_scheduler_delay_seconds_count") >= 2
    # Store round trips, by command.
    for service in (intake, router, sla):
        assert total(service, "disposisi_store_command_duration_seconds_count", outcome="ok") > 0
    assert total(intake, "disposisi_store_command_duration_seconds_count", command="insert") > 0
    assert total(sla, "disposisi_metrics_refresh_ok", gauge="open_tickets") == 1
    # Bounded labels: no ticket id anywhere.
    for name, service in found.items():
        labelled = [v for s in service for v in s.labels.values() if TICKET_ID.search(v)]
        assert labelled == [], (name, labelled[:3])


async def test_status_shows_readiness_lag_and_backlogs(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    settings = metrics_settings(settings)
    for name, value in as_environment(settings).items():  # what `disposisi status` reads
        monkeypatch.setenv(name, value)
    async with system(settings) as (_, console):
        async def all_ready() -> bool:
            return (await gather_status(settings)).ok

        assert await eventually(all_ready, timeout=60), render(await gather_status(settings))
        capsys.readouterr()
        ready_exit = await asyncio.to_thread(cli.main, ["status"])
        shown = capsys.readouterr().out
        await console.aclose()
        stopped_exit = await asyncio.to_thread(cli.main, ["status"])
        stopped = capsys.readouterr().out
    assert ready_exit == 0, shown
    assert shown.rstrip().endswith("OK: every service is ready")
    for service in ("intake", "router", "sla", "console", "notify", "chat", "mailbox", "lapor"):
        assert re.search(rf"^  {service} +http://127\.0\.0\.1:\d+ +ready$", shown, re.M), shown
    assert re.search(rf"^  disposisi-router +{re.escape(Topics.RECEIVED)} +0$", shown, re.M), shown
    assert re.search(r"^  intake +complaints +0$", shown, re.M), shown
    assert re.search(r"^  sla +escalations +0$", shown, re.M), shown
    assert stopped_exit == 1, stopped
    assert re.search(r"^  console +http://\S+ +NOT READY: not answering", stopped, re.M), stopped
    assert re.search(r"^  sla +http://\S+ +ready$", stopped, re.M), stopped
    assert stopped.rstrip().endswith("NOT OK: see above")


async def test_a_scrape_answers_while_the_store_and_broker_are_unreachable(settings: Settings) -> None:
    """The gauges that need the store or the broker fail to refresh (nothing listens on their
    ports): the failure is counted, the scrape still answers at once."""
    dead = f"127.0.0.1:{free_port()}"
    unreachable = settings.model_copy(update={
        "kafka_bootstrap_servers": dead, "mongodb_timeout_ms": 300,
        "mongodb_url": f"mongodb://{dead}/?directConnection=true"})
    metrics = Metrics("intake")
    client = mongo.connect(unreachable, metrics=metrics)
    try:
        report_outboxes(metrics, {"complaints": client["x"]["complaints"]})
        report_lag_of(metrics, unreachable, {"disposisi-intake": (Topics.SUBMITTED,)})
        await metrics.refresh_once(within=3.0)
    finally:
        await client.close()
    app = FastAPI()
    install_metrics(app, metrics)
    async with serving(app, free_port(), consumers_assigned=False) as url, \
            httpx.AsyncClient(timeout=5) as http:
        scraped = await http.get(f"{url}/metrics")
    assert scraped.status_code == 200
    found = samples(scraped.text)
    for gauge in ("outbox", "consumer_lag"):
        assert total(found, "disposisi_metrics_refresh_errors_total", gauge=gauge) == 1, gauge
        assert total(found, "disposisi_metrics_refresh_ok", gauge=gauge) == 0, gauge
    assert total(found, "disposisi_store_command_duration_seconds_count") == 0  # none got through
