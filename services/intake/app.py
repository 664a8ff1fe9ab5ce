"""Intake wiring: the one place that connects settings, Kafka, MongoDB, handlers and HTTP."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from services.intake import api, attachments_api, handlers, open311
from services.intake.attachment_store import AttachmentStore
from services.intake.attachments import Attachments
from services.intake.flows import AuditedRelay, Grouped, Intake
from services.intake.reconcile import REPLIES_WAITING, Reconciler
from services.intake.store import ComplaintStore, ReplyStore, TrackingStore
from shared import mongo
from shared.accounts import AccountStore
from shared.audit_store import AuditLog
from shared.auth import Authenticator, build_auth_router, document_credentials, guard
from shared.contracts import Topics
from shared.kafka import ensure_topics, make_broker
from shared.limits import install_abuse_limits
from shared.metric_gauges import report_consumer_lag, report_outboxes, report_reconcilers
from shared.metrics import Metrics, install_metrics
from shared.outbox import OutboxRelay
from shared.runtime import (
    NO_CDN_DOCS,
    NO_NATIVE_TELEMETRY,
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
from shared.telemetry import bind, instrument_http, start_tracing
from shared.tenants import load_tenants


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics(handlers.SERVICE)
    broker = make_broker(settings, handlers.SERVICE, metrics=metrics)
    tracing = start_tracing(settings, handlers.SERVICE)
    bind(broker, tracing)
    client = mongo.connect(settings, metrics=metrics)
    db = mongo.database(client, settings)
    complaints = ComplaintStore(db, settings)
    # No audit_keys document per submission: AuditedRelay marks what it appended.
    audit = AuditLog(db, register_keys=False)
    relay = AuditedRelay(complaints.collection, broker, lease_seconds=settings.outbox_lease_seconds,
                         owner=settings.instance_id, audit=audit, tenant=settings.tenant)
    replies = ReplyStore(db, settings)
    reply_relay = OutboxRelay(replies.collection, broker, lease_seconds=settings.outbox_lease_seconds,
                              owner=settings.instance_id)
    tenants = load_tenants(settings)
    intake = Intake(settings, complaints, relay, replies, reply_relay, TrackingStore(db), tenants)
    reconciler = Reconciler(settings, complaints, relay)
    attachments = Attachments(settings, AttachmentStore(db))
    reply_reconciler = Reconciler(settings, replies, reply_relay, waiting=REPLIES_WAITING)
    handlers.register(broker, intake)
    auth = Authenticator(settings, AccountStore(db), tenants=tenants.ids)
    report_outboxes(metrics, {"complaints": complaints.collection, "replies": replies.collection})
    report_reconcilers(metrics, {"complaints": reconciler, "replies": reply_reconciler},
                       lambda backlog: backlog.overdue)
    report_consumer_lag(metrics, settings, broker)

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
        await attachments.store.ensure_indexes()
        async def after_log_lost() -> None:
            await reconciler.after_log_lost()
            await reply_reconciler.after_log_lost()

        async with consuming(broker, settings, on_log_replaced=after_log_lost), background(
            lambda: every(settings.outbox_sweep_seconds, relay.sweep, "intake outbox sweep"),
            lambda: every(settings.outbox_sweep_seconds, reply_relay.sweep,
                          "intake reply outbox sweep"),
            lambda: every(settings.reconcile_interval_seconds, reconciler.turn, "reconciliation"),
            lambda: every(settings.reconcile_interval_seconds, reply_reconciler.turn,
                          "reply reconciliation"),
            lambda: metrics.refresh_forever(settings),
            within=settings.loops_stop_seconds,
        ):
            yield
            # what the last answers handed over, while the broker is there (bounded: the
            # outbox sweep of the next start sends whatever a dead broker kept back)
            await finish_within(intake.flush(), settings.loops_stop_seconds,
                                "the publish queue's flush")
        await finish_within(client.close(), settings.store_close_seconds, "the store client's close")
        # sends the spans still buffered
        await finish_within(tracing.shutdown(), settings.store_close_seconds, "the trace export")

    app = FastAPI(title="Disposisi intake", version="1", lifespan=lifespan,
                  description="Accepts citizens' complaints from every channel.",
                  dependencies=[guard(handlers.SERVICE)], **NO_CDN_DOCS, **NO_NATIVE_TELEMETRY)
    document_credentials(app)
    app.state.intake = intake
    app.state.grouped = Grouped(intake, most=settings.submission_group_max)
    app.state.auth = auth
    app.state.reconciler = reconciler
    app.state.reply_reconciler = reply_reconciler
    app.add_exception_handler(RequestValidationError, validation_error)
    install_abuse_limits(app, settings, uploads=attachments_api.is_upload)
    app.include_router(api.build_router())
    app.state.attachments = attachments
    app.include_router(attachments_api.build_router())
    open311.install(app)
    app.include_router(build_auth_router())
    add_local_docs(app)
    add_health(app, settings, handlers.SERVICE, db, broker=broker,
               checks={"reconciliation": reconciler.readiness,
                       "reply_reconciliation": reply_reconciler.readiness})
    instrument_http(app, tracing)
    add_store_errors(app, settings)
    install_metrics(app, metrics)
    return app


def run(settings: Settings) -> None:
    serve(create_app(settings), settings.http_host, settings.intake_port,
          shutdown_seconds=settings.http_shutdown_seconds)
