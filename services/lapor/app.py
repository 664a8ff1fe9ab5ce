"""LAPOR! connector wiring: store, subscribers, HTTP."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from services.lapor import api, handlers
from services.lapor.flows import Connector
from services.lapor.store import LaporStore
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
    finish_within,
    serve,
    validation_error,
)
from shared.settings import Settings
from shared.tenants import load_tenants


def create_app(settings: Settings) -> FastAPI:
    tenants = load_tenants(settings)
    metrics = Metrics(handlers.SERVICE)
    broker = make_broker(settings, handlers.SERVICE, metrics=metrics)
    client = mongo.connect(settings, metrics=metrics)
    db = mongo.database(client, settings)
    store = LaporStore(db)
    handlers.register(broker, Connector(store), settings)
    auth = Authenticator(settings, AccountStore(db), tenants=tenants.ids)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings, [Topics.RECEIVED, Topics.CHANGES, Topics.DEADLETTER])
        await mongo.wait_until_reachable(db)
        await store.ensure_indexes()
        await auth.accounts.ensure_indexes()
        async with consuming(broker, settings), background(
            lambda: metrics.refresh_forever(settings), within=settings.loops_stop_seconds):
            yield
        await finish_within(client.close(), settings.store_close_seconds, "the store client's close")

    app = FastAPI(title="Disposisi SP4N-LAPOR! connector", version="1", lifespan=lifespan,
                  description="Records the status changes and replies of LAPOR! reports for "
                              "export to LAPOR! (`disposisi lapor import/export`).",
                  dependencies=[guard(handlers.SERVICE)], **NO_CDN_DOCS)
    app.state.lapor_store = store
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
    serve(create_app(settings), settings.http_host, settings.lapor_port,
          shutdown_seconds=settings.http_shutdown_seconds)
