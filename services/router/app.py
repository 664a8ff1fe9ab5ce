"""Router wiring: rulebook, Kafka subscriber, health endpoint."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.router import handlers
from services.router.flows import Router
from services.router.rulebook import load_rulebook
from shared.contracts import Topics
from shared.kafka import ensure_topics, make_broker
from shared.runtime import add_health, serve
from shared.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    rulebook = load_rulebook(settings.rulebook)  # an invalid rulebook stops start-up, loudly
    broker = make_broker(settings, handlers.SERVICE)
    router = Router(settings, rulebook)
    handlers.register(broker, router)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        agency_topics = [Topics.agency(code) for code in rulebook.codes]
        await ensure_topics(settings, [*Topics.fixed(), *agency_topics])
        await broker.start()
        yield
        await broker.stop()

    app = FastAPI(title="Disposisi router", version="1", lifespan=lifespan,
                  description="Routes complaints to the agency whose Tupoksi covers them.")
    add_health(app, settings, handlers.SERVICE)
    return app


def run(settings: Settings) -> None:
    serve(create_app(settings), settings.http_host, settings.router_port)
