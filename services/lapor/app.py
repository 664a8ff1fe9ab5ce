"""LAPOR! connector wiring: store, subscribers, HTTP."""

from fastapi import FastAPI

from services.lapor import api, handlers
from services.lapor.flows import Connector
from services.lapor.store import LaporStore
from shared.auth import build_auth_router
from shared.contracts import Topics
from shared.service_app import ConsumerService, serve_on
from shared.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    service = ConsumerService.connect(settings, handlers.SERVICE)
    store = LaporStore(service.db)
    handlers.register(service.broker, Connector(store), settings)
    lifespan = service.lifespan(topics=[Topics.RECEIVED, Topics.CHANGES, Topics.DEADLETTER],
                                prepare=[store.ensure_indexes])
    app = service.app(title="Disposisi SP4N-LAPOR! connector", lifespan=lifespan,
                      description="Records the status changes and replies of LAPOR! reports "
                                  "for export to LAPOR! (`disposisi lapor import/export`).",
                      routers=[api.build_router(), build_auth_router()])
    app.state.lapor_store = store
    return app


def run(settings: Settings) -> None:
    serve_on(create_app(settings), settings, settings.lapor_port)
