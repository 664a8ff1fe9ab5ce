"""Mailbox wiring: store, intake client, the inbound SMTP server, the subscriber, the
submission and sender loops, HTTP (health, metrics, the summary)."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.mailbox import api, handlers
from services.mailbox.flows import Mailbox
from services.mailbox.intake_client import IntakeClient
from services.mailbox.smtp import start_smtp
from services.mailbox.store import INBOUND, OUTGOING, MailboxStore
from shared.auth import build_auth_router
from shared.contracts import Topics, utc_now
from shared.metrics import Metrics
from shared.runtime import every, finish_within
from shared.service_app import ConsumerService, serve_on
from shared.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    service = ConsumerService.connect(settings, handlers.SERVICE)
    store = MailboxStore(service.db)
    mailbox = Mailbox(settings, settings.tenant, store, IntakeClient(settings))
    handlers.register(service.broker, mailbox)
    _report_backlogs(service.metrics, store)

    @asynccontextmanager
    async def smtp_server() -> AsyncIterator[None]:
        _warn_if_unconfigured(settings)
        smtp = await start_smtp(mailbox, host=settings.mailbox_smtp_host,
                                port=settings.mailbox_smtp_port, max_bytes=settings.mailbox_max_bytes)
        try:
            yield
        finally:
            smtp.close()  # no new connections; a mail not yet stored was not answered 250
            await finish_within(smtp.wait_closed(), settings.loops_stop_seconds, "the SMTP server's close")

    lifespan = service.lifespan(
        topics=[Topics.CHANGES, Topics.DEADLETTER], prepare=[store.ensure_indexes],
        around=smtp_server,
        loops=[lambda: every(settings.mailbox_poll_seconds, mailbox.submit_due, "mail submission"),
               lambda: every(settings.mailbox_poll_seconds, mailbox.send_due, "mail sender")])
    app = service.app(title="Disposisi mailbox", lifespan=lifespan,
                      description="The e-mail channel: complaints in by SMTP, replies out by mail.",
                      routers=[api.build_router(), build_auth_router()])
    app.state.mailbox = mailbox
    app.state.mailbox_store = store
    return app


def _warn_if_unconfigured(settings: Settings) -> None:
    if not settings.mailbox_addresses:
        log.warning("DISPOSISI_MAILBOX_ADDRESSES is empty: the SMTP server refuses every recipient")
    if settings.mailbox_api_key is None or not settings.mailbox_api_key.get_secret_value():
        log.warning("DISPOSISI_MAILBOX_API_KEY is not set: intake will refuse the mails, which "
                    "stay stored and are retried until a key is set")


def _report_backlogs(metrics: Metrics, store: MailboxStore) -> None:
    """The mails waiting to be submitted and to be sent, as outbox backlogs (`disposisi status`)."""
    gauges = metrics.backlogs

    async def refresh() -> None:
        for name, (count, age) in (await store.backlog(utc_now())).items():
            gauges.outbox.labels(name).set(count)
            gauges.outbox_age.labels(name).set(age)

    for name in (INBOUND, OUTGOING):
        gauges.outbox.labels(name).set(0)
    metrics.refresh_with("outbox", refresh)


def run(settings: Settings) -> None:
    serve_on(create_app(settings), settings, settings.mailbox_port)
