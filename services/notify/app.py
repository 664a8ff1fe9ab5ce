"""Notification wiring: directory, store, subscribers, the sender loop, HTTP."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from services.notify import api, handlers
from services.notify.directory import load_directory
from services.notify.flows import AppriseSender, Notifier, Sender
from services.notify.store import NotifyStore
from shared import mongo
from shared.accounts import AccountStore
from shared.auth import Authenticator, build_auth_router, guard
from shared.contracts import Topics
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


def create_app(settings: Settings, *, sender: Sender | None = None) -> FastAPI:
    directory = load_directory(settings.notify_directory)  # an invalid one stops start-up
    tenants = load_tenants(settings)
    metrics = Metrics(handlers.SERVICE)
    broker = make_broker(settings, handlers.SERVICE, metrics=metrics)
    client = mongo.connect(settings, metrics=metrics)
    db = mongo.database(client, settings)
    store = NotifyStore(db)
    notifier = Notifier(settings, directory, store,
                        sender or AppriseSender(settings.notify_send_timeout_seconds))
    handlers.register(broker, notifier)
    auth = Authenticator(settings, AccountStore(db), tenants=tenants.ids)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings, [Topics.ESCALATIONS, Topics.ESCALATION_ACKS, Topics.ROUTED,
                                       Topics.RECEIVED, Topics.CHANGES, Topics.DEADLETTER])
        await mongo.wait_until_reachable(db)
        await store.ensure_indexes()
        await auth.accounts.ensure_indexes()
        async with consuming(broker, settings), background(
            lambda: every(settings.notify_poll_seconds, notifier.send_due, "notification sender"),
            lambda: metrics.refresh_forever(settings),
            within=settings.loops_stop_seconds,
        ):
            yield
        await finish_within(client.close(), settings.store_close_seconds, "the store client's close")

    app = FastAPI(title="Disposisi notifications", version="1", lifespan=lifespan,
                  description="Delivers escalations, new assignments and replies to people.",
                  dependencies=[guard(handlers.SERVICE)], **NO_CDN_DOCS)
    app.state.notifier = notifier
    app.state.notify_store = store
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


def run(settings: Settings) -> None:
    serve(create_app(settings), settings.http_host, settings.notify_port,
          shutdown_seconds=settings.http_shutdown_seconds)
