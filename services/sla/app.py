"""SLA wiring: policy, ticket store, subscribers, scheduler, outbox sweep, HTTP."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from services.router.rulebook import load_rulebook
from services.sla import api, handlers
from services.sla.escalation_flows import EscalationDesk
from services.sla.escalation_store import EscalationAcks
from services.sla.escalations_api import build_escalations_router
from services.sla.flows import Sla
from services.sla.inbox import build_inbox_router, ensure_inbox_index
from services.sla.links import ProvinceLinks
from services.sla.metrics import fired_notices, report_open_tickets
from services.sla.policy import Policy, load_policy
from services.sla.policy_api import build_policy_router
from services.sla.policy_reload import PolicyReloader
from services.sla.read_model_store import CatchUp, OpenSnapshot, ReportCounters
from services.sla.reconcile import EscalationReconciler
from services.sla.report_store import ensure_report_indexes
from services.sla.reports_api import ReportSource, build_reports_router
from services.sla.store import TicketStore
from shared import mongo
from shared.accounts import AccountStore
from shared.audit_store import AuditLog
from shared.auth import Authenticator, build_auth_router, guard
from shared.contracts import Topics, utc_now
from shared.kafka import ensure_topics, make_broker
from shared.limits import install_abuse_limits
from shared.metric_gauges import report_consumer_lag, report_outboxes, report_reconcilers
from shared.metrics import Metrics, install_metrics
from shared.outbox import OutboxRelay
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
from shared.telemetry import bind, instrument_http, start_tracing
from shared.tenants import load_tenants


def create_app(settings: Settings) -> FastAPI:
    tenants = load_tenants(settings)
    # Every tenant's policy (an invalid one stops start-up, loudly) and rulebook (agency codes
    # and who holds escalation roles).
    books = {t.id: (load_policy(t.policy), load_rulebook(t.rulebook)) for t in tenants}
    policy, rulebook = books.pop(settings.tenant)
    metrics = Metrics(handlers.SERVICE)
    broker = make_broker(settings, handlers.SERVICE, metrics=metrics)
    tracing = start_tracing(settings, handlers.SERVICE)
    bind(broker, tracing)
    client = mongo.connect(settings, metrics=metrics)
    db = mongo.database(client, settings)
    store = TicketStore(db)
    relay = OutboxRelay(store.escalations, broker, lease_seconds=settings.outbox_lease_seconds,
                        owner=settings.instance_id, keep_positions=True)
    reroutes = OutboxRelay(store.reroutes, broker, lease_seconds=settings.outbox_lease_seconds,
                           owner=settings.instance_id)
    openings = OutboxRelay(store.openings, broker, lease_seconds=settings.outbox_lease_seconds,
                           owner=settings.instance_id)
    changes = OutboxRelay(store.changes, broker, lease_seconds=settings.outbox_lease_seconds,
                          owner=settings.instance_id)
    audit = AuditLog(db)
    sla = Sla(settings, policy, rulebook, store, relay, reroutes, openings, audit, changes, books)
    sla.report_counters = counters = ReportCounters(
        db, lambda tenant: sla.policy_for(tenant).timezone, home_tenant=settings.tenant,
        open_tickets=OpenSnapshot(store.tickets, store.inbox))
    catch_up = CatchUp(counters, store.tickets, store.escalations,
                       window_seconds=settings.report_catch_up_seconds)
    sla.links = links = ProvinceLinks(settings, tenants, db, broker, sla.agency_name)
    handlers.register(broker, sla)
    reconciler = EscalationReconciler(settings, store, relay)
    acks = EscalationAcks(db, store.escalations)
    escalations = EscalationDesk(sla, acks, OutboxRelay(
        acks.acks, broker, lease_seconds=settings.outbox_lease_seconds, owner=settings.instance_id))
    auth = Authenticator(settings, AccountStore(db), tenants=tenants.ids)
    sla.on_fired = lambda docs: metrics.sla.fired(fired_notices(docs, sla.policy_for))
    report_outboxes(metrics, {"escalations": store.escalations, "reroutes": store.reroutes,
                              "openings": store.openings, "changes": store.changes,
                              "escalation_acks": acks.acks})
    report_reconcilers(metrics, {"escalations": reconciler}, lambda backlog: backlog.missing)
    report_open_tickets(metrics, store.tickets, sorted(tenants.ids), utc_now,
                        snapshot=counters.open_documents)
    report_consumer_lag(metrics, settings, broker)

    def report_source(tenant: str, current: Policy) -> ReportSource:
        return ReportSource(store.tickets, store.escalations, current.reports, current.timezone,
                            tenant=tenant, counters=counters)

    def reloaded(new: Policy) -> None:
        app.state.report_sources[settings.tenant] = report_source(settings.tenant, new)

    # Hot reload (audited) serves the home tenant's policy; other tenants' load at start.
    reloader = PolicyReloader(tenants.get(settings.tenant).policy, sla, audit, on_loaded=reloaded)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings, [Topics.ROUTED, Topics.OPENED, Topics.UPDATES, Topics.REROUTE,
                                       Topics.ESCALATIONS, Topics.ESCALATION_ACKS,
                                       Topics.DEADLETTER, Topics.CHANGES, Topics.SUBMITTED])
        await mongo.wait_until_reachable(db)
        await store.ensure_indexes(home_tenant=settings.tenant)
        await auth.accounts.ensure_indexes()
        await audit.ensure_indexes()
        await relay.ensure_indexes()
        await reroutes.ensure_indexes()
        await openings.ensure_indexes()
        await acks.ensure_indexes()
        await escalations.relay.ensure_indexes()
        await changes.ensure_indexes()
        await links.ensure_indexes()
        await ensure_report_indexes(store.tickets, store.escalations)
        await counters.ensure_indexes()
        await ensure_inbox_index(store.inbox)
        await store.backfill_inbox()
        async with consuming(broker, settings), background(
            sla.run_scheduler,
            catch_up.run,
            lambda: every(settings.outbox_sweep_seconds, relay.sweep, "escalation outbox sweep"),
            lambda: every(settings.outbox_sweep_seconds, reroutes.sweep, "reroute outbox sweep"),
            lambda: every(settings.outbox_sweep_seconds, openings.sweep, "opened outbox sweep"),
            lambda: every(settings.outbox_sweep_seconds, changes.sweep, "changed outbox sweep"),
            lambda: every(settings.outbox_sweep_seconds, sla.expire_parked, "parked update expiry"),
            lambda: every(settings.outbox_sweep_seconds, escalations.sweep,
                          "escalation acknowledgement sweep"),
            lambda: every(settings.sla_policy_reload_seconds, reloader.check, "policy reload"),
            lambda: every(settings.province_forward_seconds, links.sweep, "province links"),
            lambda: every(settings.report_open_refresh_seconds, lambda: counters.refresh_open(
                rebuild_after=settings.report_open_rebuild_seconds), "report open tickets"),
            lambda: every(settings.escalation_check_interval_seconds, reconciler.turn,
                          "escalation reconciliation"),
            lambda: metrics.refresh_forever(settings),
            within=settings.loops_stop_seconds,
        ):
            yield
        await finish_within(client.close(), settings.store_close_seconds, "the store client's close")
        # sends the spans still buffered
        await finish_within(tracing.shutdown(), settings.store_close_seconds, "the trace export")

    app = FastAPI(title="Disposisi SLA", version="1", lifespan=lifespan,
                  description="Keeps every ticket, its clocks and its escalations.",
                  dependencies=[guard(handlers.SERVICE)], **NO_CDN_DOCS)
    app.state.sla = sla
    app.state.escalations = escalations
    app.state.auth = auth
    app.add_exception_handler(RequestValidationError, validation_error)
    install_abuse_limits(app, settings)
    app.state.report_sources = {tenant: report_source(tenant, sla.policy_for(tenant))
                                for tenant in tenants.ids}
    app.state.policy_reloader = reloader
    app.include_router(api.build_router())
    app.include_router(build_reports_router())
    app.include_router(build_inbox_router())
    app.include_router(build_escalations_router())
    app.include_router(build_policy_router())
    app.include_router(build_auth_router())
    add_local_docs(app)
    add_health(app, settings, handlers.SERVICE, db, broker=broker,
               checks={"escalations": reconciler.readiness,
                       "report_counters": catch_up.readiness})
    instrument_http(app, tracing)
    add_store_errors(app, settings)
    install_metrics(app, metrics)
    return app


def run(settings: Settings) -> None:
    serve(create_app(settings), settings.http_host, settings.sla_port,
          shutdown_seconds=settings.http_shutdown_seconds)
