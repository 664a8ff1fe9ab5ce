"""Router wiring: rulebook and its reloader, Kafka subscribers, HTTP."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from services.router import api, handlers
from services.router.flows import Router
from services.router.reload import RulebookReloader
from services.router.rulebook import Rulebook, load_rulebook
from shared import mongo
from shared.accounts import AccountStore
from shared.audit_store import AuditLog
from shared.auth import Authenticator, build_auth_router, guard
from shared.contracts import Topics
from shared.kafka import ensure_topics, make_broker
from shared.limits import install_abuse_limits
from shared.runtime import add_health, add_store_errors, background, consuming, every, serve, validation_error
from shared.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    rulebook = load_rulebook(settings.rulebook)  # an invalid rulebook stops start-up, loudly
    broker = make_broker(settings, handlers.SERVICE)
    router = Router(settings, rulebook)
    handlers.register(broker, router)
    client = mongo.connect(settings)  # accounts only: who may read or reload the rulebook
    auth = Authenticator(settings, AccountStore(mongo.database(client, settings)))

    async def create_queues(book: Rulebook) -> None:
        await ensure_topics(settings, [Topics.agency(code) for code in book.codes])

    # The router keeps no state of its own in the store; it appends its rulebook changes to
    # the audit log (routing decisions are audited where they take effect, by SLA).
    client = mongo.connect(settings)
    reloader = RulebookReloader(settings.rulebook, router, create_queues,
                                audit=AuditLog(mongo.database(client, settings)))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings, Topics.fixed())
        await create_queues(rulebook)
        async with consuming(broker, settings), background(
            lambda: every(settings.rulebook_reload_seconds, reloader.check, "rulebook reload"),
        ):
            yield
        await client.close()

    app = FastAPI(title="Disposisi router", version="1", lifespan=lifespan,
                  description="Routes complaints to the agency whose Tupoksi covers them.",
                  dependencies=[guard(handlers.SERVICE)])
    app.state.reloader = reloader
    app.state.auth = auth
    app.add_exception_handler(RequestValidationError, validation_error)
    install_abuse_limits(app, settings)
    app.include_router(api.build_router())
    app.include_router(build_auth_router())
    add_health(app, settings, handlers.SERVICE, broker=broker)
    add_store_errors(app, settings)  # accounts and the audit log live in the store
    return app


def run(settings: Settings) -> None:
    serve(create_app(settings), settings.http_host, settings.router_port)
