"""Chat wiring (WhatsApp and SMS): store, providers, intake's API, the subscriber, the
submitter and sender loops, the webhooks."""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from services.chat import api, handlers
from services.chat.domain import ChatChannel
from services.chat.flows import Chat, Intake
from services.chat.providers import ChatSender, MediaSource, SmsGateway, WhatsAppCloud
from services.chat.store import ChatStore
from shared import mongo
from shared.accounts import AccountStore
from shared.auth import Authenticator, guard
from shared.contracts import Topics
from shared.kafka import ensure_topics, make_broker
from shared.limits import install_abuse_limits
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
from shared.tenants import load_tenants


def create_app(settings: Settings, *, senders: Mapping[ChatChannel, ChatSender] | None = None,
               media: MediaSource | None = None) -> FastAPI:
    """``senders``/``media``: a city's own providers; by default the WhatsApp Cloud API and
    the generic SMS gateway of the settings."""
    tenants = load_tenants(settings)
    metrics = Metrics(handlers.SERVICE)
    broker = make_broker(settings, handlers.SERVICE, metrics=metrics)
    client = mongo.connect(settings, metrics=metrics)
    db = mongo.database(client, settings)
    store = ChatStore(db)
    http = httpx.AsyncClient(timeout=settings.chat_http_timeout_seconds)
    whatsapp = WhatsAppCloud.of(settings, http)
    keys = {"whatsapp": settings.chat_whatsapp_api_key.get_secret_value(),
            "sms": settings.chat_sms_api_key.get_secret_value()}
    chat = Chat(settings, store, Intake(http, settings.chat_intake_url.rstrip("/"), keys),
                senders or {"whatsapp": whatsapp, "sms": SmsGateway.of(settings, http)},
                media or whatsapp)
    handlers.register(broker, chat)
    auth = Authenticator(settings, AccountStore(db), tenants=tenants.ids)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings, [Topics.CHANGES, Topics.DEADLETTER])
        await mongo.wait_until_reachable(db)
        await store.ensure_indexes()
        async with consuming(broker, settings), background(
            lambda: every(settings.chat_poll_seconds, chat.submit_due, "chat submitter"),
            lambda: every(settings.chat_poll_seconds, chat.send_due, "chat sender"),
            lambda: metrics.refresh_forever(settings),
            within=settings.loops_stop_seconds,
        ):
            yield
        await finish_within(http.aclose(), settings.store_close_seconds, "the HTTP client's close")
        await finish_within(client.close(), settings.store_close_seconds, "the store client's close")

    app = FastAPI(title="Disposisi chat channels", version="1", lifespan=lifespan,
                  description="WhatsApp and SMS: conversations become complaints; the agency's "
                              "messages go back on the same channel.",
                  dependencies=[guard(handlers.SERVICE)], **NO_CDN_DOCS)
    app.state.chat = chat
    app.state.chat_store = store
    app.state.auth = auth
    app.add_exception_handler(RequestValidationError, validation_error)
    install_abuse_limits(app, settings)
    app.include_router(api.build_router(settings))
    add_health(app, settings, handlers.SERVICE, db, broker=broker)
    add_store_errors(app, settings)
    install_metrics(app, metrics)
    add_local_docs(app)
    return app


def run(settings: Settings) -> None:
    serve(create_app(settings), settings.http_host, settings.chat_port,
          shutdown_seconds=settings.http_shutdown_seconds)
