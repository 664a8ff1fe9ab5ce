"""Mailbox wiring: store, intake client, the inbound SMTP server, the subscriber, the
submission and sender loops, HTTP (health, metrics, the summary)."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from services.mailbox import api, handlers
from services.mailbox.flows import Mailbox
from services.mailbox.intake_client import IntakeClient
from services.mailbox.smtp import start_smtp
from services.mailbox.store import INBOUND, OUTGOING, MailboxStore
from shared import mongo
from shared.accounts import AccountStore
from shared.auth import Authenticator, build_auth_router, guard
from shared.contracts import Topics, utc_now
from shared.kafka import ensure_topics, make_broker
from shared.limits import install_abuse_limits
from shared.metrics import Metrics, install_metrics
from shared.runtime import (
    NO_CDN_DOCS,
    add_health,
    add_local_docs,
    add_store_errors,
    background,
    consuming,
    every,
    finish_within,
    serve,
    validation_error,
)
from shared.settings import Settings
from shared.tenants import load_tenants

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    tenants = load_tenants(settings)
    metrics = Metrics(handlers.SERVICE)
    broker = make_broker(settings, handlers.SERVICE, metrics=metrics)
    client = mongo.connect(settings, metrics=metrics)
    db = mongo.database(client, settings)
    store = MailboxStore(db)
    mailbox = Mailbox(settings, settings.tenant, store, IntakeClient(settings))
    handlers.register(broker, mailbox)
    _report_backlogs(metrics, store)
    auth = Authenticator(settings, AccountStore(db), tenants=tenants.ids)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings, [Topics.CHANGES, Topics.DEADLETTER])
        await mongo.wait_until_reachable(db)
        await store.ensure_indexes()
        await auth.accounts.ensure_indexes()
        _warn_if_unconfigured(settings)
        smtp = await start_smtp(mailbox, host=settings.mailbox_smtp_host,
                                port=settings.mailbox_smtp_port, max_bytes=settings.mailbox_max_bytes)
        try:
            async with consuming(broker, settings), background(
                lambda: every(settings.mailbox_poll_seconds, mailbox.submit_due, "mail submission"),
                lambda: every(settings.mailbox_poll_seconds, mailbox.send_due, "mail sender"),
                lambda: metrics.refresh_forever(settings),
                within=settings.loops_stop_seconds,
            ):
                yield
        finally:
            smtp.close()  # no new connections; a mail not yet stored was not answered 250
            await finish_within(smtp.wait_closed(), settings.loops_stop_seconds, "the SMTP server's close")
        await finish_within(client.close(), settings.store_close_seconds, "the store client's close")

    app = FastAPI(title="Disposisi mailbox", version="1", lifespan=lifespan,
                  description="The e-mail channel: complaints in by SMTP, replies out by mail.",
                  dependencies=[guard(handlers.SERVICE)], **NO_CDN_DOCS)
    app.state.mailbox = mailbox
    app.state.mailbox_store = store
    app.state.auth = auth
    app.add_exception_handler(RequestValidationError, validation_error)
    install_abuse_limits(app, settings)
    app.include_router(api.build_router())
    app.include_router(build_auth_router())
    add_health(app, settings, handlers.SERVICE, db, broker=broker)
    add_store_errors(app, settings)
    install_metrics(app, metrics)
    add_local_docs(app)
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
    serve(create_app(settings), settings.http_host, settings.mailbox_port,
          shutdown_seconds=settings.http_shutdown_seconds)
