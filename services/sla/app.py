"""SLA wiring: policy, ticket store, subscribers, scheduler, outbox sweep, HTTP."""

from fastapi import FastAPI

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
from shared.audit_store import AuditLog
from shared.auth import build_auth_router
from shared.contracts import Topics, utc_now
from shared.metric_gauges import report_consumer_lag, report_outboxes, report_reconcilers
from shared.outbox import OutboxRelay
from shared.runtime import every
from shared.service_app import ConsumerService, serve_on
from shared.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    service = ConsumerService.connect(settings, handlers.SERVICE, traced=True)
    tenants, metrics, broker, db = service.tenants, service.metrics, service.broker, service.db
    # Every tenant's policy (an invalid one stops start-up, loudly) and rulebook (agency codes
    # and who holds escalation roles).
    books = {t.id: (load_policy(t.policy), load_rulebook(t.rulebook)) for t in tenants}
    policy, rulebook = books.pop(settings.tenant)
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

    lifespan = service.lifespan(
        on_log_replaced=sla.announce_again_after_log_lost,
        topics=[Topics.ROUTED, Topics.OPENED, Topics.UPDATES, Topics.REROUTE, Topics.ESCALATIONS,
                Topics.ESCALATION_ACKS, Topics.DEADLETTER, Topics.CHANGES, Topics.SUBMITTED],
        prepare=[lambda: store.ensure_indexes(home_tenant=settings.tenant), audit.ensure_indexes,
                 relay.ensure_indexes, reroutes.ensure_indexes, openings.ensure_indexes,
                 acks.ensure_indexes, escalations.relay.ensure_indexes, changes.ensure_indexes,
                 links.ensure_indexes,
                 lambda: ensure_report_indexes(store.tickets, store.escalations),
                 counters.ensure_indexes, lambda: ensure_inbox_index(store.inbox),
                 store.backfill_inbox],
        loops=[
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
        ])
    app = service.app(
        title="Disposisi SLA", lifespan=lifespan,
        description="Keeps every ticket, its clocks and its escalations.",
        routers=[api.build_router(), build_reports_router(), build_inbox_router(),
                 build_escalations_router(), build_policy_router(), build_auth_router()],
        checks={"escalations": reconciler.readiness, "report_counters": catch_up.readiness})
    app.state.sla = sla
    app.state.escalations = escalations
    app.state.report_sources = {tenant: report_source(tenant, sla.policy_for(tenant))
                                for tenant in tenants.ids}
    app.state.policy_reloader = reloader
    return app


def run(settings: Settings) -> None:
    serve_on(create_app(settings), settings, settings.sla_port)
