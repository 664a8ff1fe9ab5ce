"""SLA wiring: policy, ticket store, subscribers, scheduler, outbox sweep, HTTP."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from services.router.rulebook import load_rulebook
from services.sla import api, handlers
from services.sla.flows import Sla
from services.sla.policy import load_policy
from services.sla.reconcile import EscalationReconciler
from services.sla.report_store import ensure_report_indexes
from services.sla.reports_api import ReportSource, build_reports_router
from services.sla.store import TicketStore
from shared import mongo
from shared.accounts import AccountStore
from shared.audit_store import AuditLog
from shared.auth import Authenticator, build_auth_router, guard
from shared.contracts import Topics
from shared.kafka import ensure_topics, make_broker
from shared.limits import install_abuse_limits
from shared.outbox import OutboxRelay
from shared.runtime import add_health, add_store_errors, background, every, serve, validation_error
from shared.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    policy = load_policy(settings.sla_policy)  # an invalid policy stops start-up, loudly
    rulebook = load_rulebook(settings.rulebook)  # agency codes and who holds escalation roles
    broker = make_broker(settings, handlers.SERVICE)
    client = mongo.connect(settings)
    db = mongo.database(client, settings)
    store = TicketStore(db)
    relay = OutboxRelay(store.escalations, broker, lease_seconds=settings.outbox_lease_seconds,
                        owner=settings.instance_id, keep_positions=True)
    reroutes = OutboxRelay(store.reroutes, broker, lease_seconds=settings.outbox_lease_seconds,
                           owner=settings.instance_id)
    openings = OutboxRelay(store.openings, broker, lease_seconds=settings.outbox_lease_seconds,
                           owner=settings.instance_id)
    audit = AuditLog(db)
    sla = Sla(settings, policy, rulebook, store, relay, reroutes, openings, audit)
    handlers.register(broker, sla)
    reconciler = EscalationReconciler(settings, store, relay)
    auth = Authenticator(settings, AccountStore(db))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings, [Topics.ROUTED, Topics.OPENED, Topics.UPDATES, Topics.REROUTE,
                                       Topics.ESCALATIONS, Topics.DEADLETTER])
        await mongo.wait_until_reachable(db)
        await store.ensure_indexes()
        await auth.accounts.ensure_indexes()
        await audit.ensure_indexes()
        await relay.ensure_indexes()
        await reroutes.ensure_indexes()
        await openings.ensure_indexes()
        await ensure_report_indexes(store.tickets, store.escalations)
        await broker.start()
        async with background(
            sla.run_scheduler,
            lambda: every(settings.outbox_sweep_seconds, relay.sweep, "escalation outbox sweep"),
            lambda: every(settings.outbox_sweep_seconds, reroutes.sweep, "reroute outbox sweep"),
            lambda: every(settings.outbox_sweep_seconds, openings.sweep, "opened outbox sweep"),
            lambda: every(settings.outbox_sweep_seconds, sla.expire_parked, "parked update expiry"),
            lambda: every(settings.escalation_check_interval_seconds, reconciler.turn,
                          "escalation reconciliation"),
        ):
            yield
        await broker.stop()
        await client.close()

    app = FastAPI(title="Disposisi SLA", version="1", lifespan=lifespan,
                  description="Keeps every ticket, its clocks and its escalations.",
                  dependencies=[guard(handlers.SERVICE)])
    app.state.sla = sla
    app.state.auth = auth
    app.add_exception_handler(RequestValidationError, validation_error)
    install_abuse_limits(app, settings)
    app.state.report_source = ReportSource(store.tickets, store.escalations, policy.reports,
                                           policy.timezone)
    app.include_router(api.build_router())
    app.include_router(build_reports_router())
    app.include_router(build_auth_router())
    add_health(app, settings, handlers.SERVICE, db, broker=broker,
               checks={"escalations": reconciler.readiness})
    add_store_errors(app, settings)
    return app


def run(settings: Settings) -> None:
    serve(create_app(settings), settings.http_host, settings.sla_port)
