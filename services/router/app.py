"""Router wiring: rulebook and its reloader, Kafka subscribers, HTTP."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from services.router import api, handlers
from services.router.flows import Router
from services.router.label_store import LabelStore
from services.router.opinion_training import OpinionTrainer
from services.router.reload import RulebookReloader
from services.router.rulebook import Rulebook, load_rulebook
from services.router.second_opinion import Gate, Reviewer
from shared import mongo
from shared.accounts import AccountStore
from shared.audit_store import AuditLog
from shared.auth import Authenticator, build_auth_router, document_credentials, guard
from shared.contracts import Topics
from shared.kafka import ensure_topics, make_broker
from shared.limits import install_abuse_limits
from shared.metric_gauges import report_consumer_lag
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
from shared.telemetry import bind, instrument_http, start_tracing
from shared.tenants import load_tenants


def create_app(settings: Settings) -> FastAPI:
    tenants = load_tenants(settings)
    # Every tenant's rulebook: an invalid one stops start-up, loudly.
    books = {tenant.id: load_rulebook(tenant.rulebook) for tenant in tenants}
    metrics = Metrics(handlers.SERVICE)
    broker = make_broker(settings, handlers.SERVICE, metrics=metrics)
    tracing = start_tracing(settings, handlers.SERVICE)
    bind(broker, tracing)
    reviewer = Reviewer(Gate(agree=settings.second_opinion_agree_probability,
                             dispute=settings.second_opinion_dispute_probability,
                             confident=settings.second_opinion_confident,
                             certain=settings.second_opinion_certain))
    router = Router(settings, books.pop(settings.tenant), tenants, books,
                    reviewer=reviewer if settings.second_opinion_enabled else None)
    # One store client: accounts (who may read or reload the rulebook), the audit log of
    # rulebook changes, and the desk's labelled examples.
    client = mongo.connect(settings, metrics=metrics)
    auth = Authenticator(settings, AccountStore(mongo.database(client, settings)),
                         tenants=tenants.ids)

    def queue_creator(tenant: str) -> Callable[[Rulebook], Awaitable[None]]:
        async def create_queues(book: Rulebook) -> None:
            await ensure_topics(settings, [tenants.agency_topic(tenant, code) for code in book.codes])
        return create_queues

    # Besides the desk's labelled examples the router keeps no state in the store; it appends
    # its rulebook changes to the audit log (decisions are audited where they take effect, by SLA).
    audit = AuditLog(mongo.database(client, settings))
    # The router's own collection: the desk's corrections, learnt from (labels.py).
    labels = LabelStore(mongo.database(client, settings))
    handlers.register(broker, router, on_routed=metrics.routing.routed, labels=labels)
    report_consumer_lag(metrics, settings, broker)  # after register: the groups are the subscribers'
    trainer = OpinionTrainer(settings, labels, reviewer, router.rulebook.fallback)
    reloaders = {tenant.id: RulebookReloader(tenant.rulebook, router, queue_creator(tenant.id),
                                             audit=audit, tenant=tenant.id) for tenant in tenants}

    async def check_all() -> None:
        for reloader in reloaders.values():
            await reloader.check()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings, Topics.fixed())
        for tenant in tenants:
            await queue_creator(tenant.id)(router.book(tenant.id))
        # the store may still be coming up (its timeouts are short, for requests)
        await mongo.wait_until_reachable(mongo.database(client, settings))
        await labels.ensure_indexes()
        async with consuming(broker, settings), background(
            lambda: every(settings.rulebook_reload_seconds, check_all, "rulebook reload"),
            *([lambda: every(settings.second_opinion_refresh_seconds, trainer.refresh,
                             "second opinion training")] if settings.second_opinion_enabled else []),
            lambda: metrics.refresh_forever(settings),
            within=settings.loops_stop_seconds,
        ):
            yield
        await finish_within(client.close(), settings.store_close_seconds, "the store client's close")
        # sends the spans still buffered
        await finish_within(tracing.shutdown(), settings.store_close_seconds, "the trace export")

    app = FastAPI(title="Disposisi router", version="1", lifespan=lifespan,
                  description="Routes complaints to the agency whose Tupoksi covers them.",
                  dependencies=[guard(handlers.SERVICE)], **NO_CDN_DOCS)
    document_credentials(app)
    app.state.reloader = reloaders[settings.tenant]
    app.state.reloaders = reloaders  # the API serves the caller's tenant's
    app.state.auth = auth
    app.state.reviewer = router.reviewer  # GET /v1/rulebook shows the serving model
    app.state.home_tenant = settings.tenant
    app.add_exception_handler(RequestValidationError, validation_error)
    install_abuse_limits(app, settings)
    app.include_router(api.build_router())
    app.include_router(build_auth_router())
    add_local_docs(app)
    add_health(app, settings, handlers.SERVICE, broker=broker)
    instrument_http(app, tracing)
    add_store_errors(app, settings)  # accounts and the audit log live in the store
    install_metrics(app, metrics)
    return app


def run(settings: Settings) -> None:
    serve(create_app(settings), settings.http_host, settings.router_port,
          shutdown_seconds=settings.http_shutdown_seconds)
