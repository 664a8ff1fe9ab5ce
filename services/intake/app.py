"""Intake wiring: the one place that connects settings, Kafka, MongoDB, handlers and HTTP."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from services.intake import api, handlers
from services.intake.flows import AuditedRelay, Intake
from services.intake.reconcile import REPLIES_WAITING, Reconciler
from services.intake.store import ComplaintStore, ReplyStore, TrackingStore
from shared import mongo
from shared.accounts import AccountStore
from shared.audit_store import AuditLog
from shared.auth import Authenticator, build_auth_router, guard
from shared.contracts import Topics
from shared.kafka import ensure_topics, make_broker
from shared.limits import install_abuse_limits
from shared.outbox import OutboxRelay
from shared.runtime import (
    add_health,
    add_store_errors,
    background,
    consuming,
    every,
    serve,
    validation_error,
)
from shared.settings import Settings
from shared.telemetry import bind, instrument_http, start_tracing
from shared.tenants import load_tenants


def create_app(settings: Settings) -> FastAPI:
    broker = make_broker(settings, handlers.SERVICE)
    tracing = start_tracing(settings, handlers.SERVICE)
    bind(broker, tracing)
    client = mongo.connect(settings)
    db = mongo.database(client, settings)
    complaints = ComplaintStore(db, settings)
    audit = AuditLog(db)
    relay = AuditedRelay(complaints.collection, broker, lease_seconds=settings.outbox_lease_seconds,
                         owner=settings.instance_id, audit=audit, tenant=settings.tenant)
    replies = ReplyStore(db, settings)
    reply_relay = OutboxRelay(replies.collection, broker, lease_seconds=settings.outbox_lease_seconds,
                              owner=settings.instance_id)
    tenants = load_tenants(settings)
    intake = Intake(settings, complaints, relay, replies, reply_relay, TrackingStore(db), tenants)
    reconciler = Reconciler(settings, complaints, relay)
    reply_reconciler = Reconciler(settings, replies, reply_relay, waiting=REPLIES_WAITING)
    handlers.register(broker, intake)
    auth = Authenticator(settings, AccountStore(db), tenants=tenants.ids)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings, [Topics.SUBMITTED, Topics.RECEIVED, Topics.OPENED,
                                       Topics.UPDATES, Topics.DEADLETTER, Topics.CHANGES])
        await mongo.wait_until_reachable(db)
        await complaints.ensure_indexes()
        await auth.accounts.ensure_indexes()
        await audit.ensure_indexes()
        await relay.ensure_indexes()
        await reply_relay.ensure_indexes()
        await replies.ensure_indexes()
        async with consuming(broker, settings), background(
            lambda: every(settings.outbox_sweep_seconds, relay.sweep, "intake outbox sweep"),
            lambda: every(settings.outbox_sweep_seconds, reply_relay.sweep,
                          "intake reply outbox sweep"),
            lambda: every(settings.reconcile_interval_seconds, reconciler.turn, "reconciliation"),
            lambda: every(settings.reconcile_interval_seconds, reply_reconciler.turn,
                          "reply reconciliation"),
        ):
            yield
        await client.close()
        await tracing.shutdown()  # sends the spans still buffered

    app = FastAPI(title="Disposisi intake", version="1", lifespan=lifespan,
                  description="Accepts citizens' complaints from every channel.",
                  dependencies=[guard(handlers.SERVICE)])
    app.state.intake = intake
    app.state.auth = auth
    app.state.reconciler = reconciler
    app.state.reply_reconciler = reply_reconciler
    app.add_exception_handler(RequestValidationError, validation_error)
    install_abuse_limits(app, settings)
    app.include_router(api.build_router())
    app.include_router(build_auth_router())
    add_health(app, settings, handlers.SERVICE, db, broker=broker,
               checks={"reconciliation": reconciler.readiness,
                       "reply_reconciliation": reply_reconciler.readiness})
    instrument_http(app, tracing)
    add_store_errors(app, settings)
    return app


def run(settings: Settings) -> None:
    serve(create_app(settings), settings.http_host, settings.intake_port)
