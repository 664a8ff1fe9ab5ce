"""Notification wiring: directory, store, subscribers, the sender loop, HTTP."""

from fastapi import FastAPI

from services.notify import api, handlers
from services.notify.directory import load_directory
from services.notify.flows import AppriseSender, Notifier, Sender
from services.notify.store import NotifyStore
from shared.auth import build_auth_router
from shared.contracts import Topics
from shared.runtime import every
from shared.service_app import ConsumerService, serve_on
from shared.settings import Settings


def create_app(settings: Settings, *, sender: Sender | None = None) -> FastAPI:
    directory = load_directory(settings.notify_directory)  # an invalid one stops start-up
    service = ConsumerService.connect(settings, handlers.SERVICE)
    store = NotifyStore(service.db)
    notifier = Notifier(settings, directory, store,
                        sender or AppriseSender(settings.notify_send_timeout_seconds))
    handlers.register(service.broker, notifier)
    lifespan = service.lifespan(
        topics=[Topics.ESCALATIONS, Topics.ESCALATION_ACKS, Topics.ROUTED, Topics.RECEIVED,
                Topics.CHANGES, Topics.DEADLETTER],
        prepare=[store.ensure_indexes],
        loops=[lambda: every(settings.notify_poll_seconds, notifier.send_due,
                             "notification sender")])
    app = service.app(title="Disposisi notifications", lifespan=lifespan,
                      description="Delivers escalations, new assignments and replies to people.",
                      routers=[api.build_router(), build_auth_router()])
    app.state.notifier = notifier
    app.state.notify_store = store
    return app


def run(settings: Settings) -> None:
    serve_on(create_app(settings), settings, settings.notify_port)
