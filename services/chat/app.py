"""Chat wiring (WhatsApp and SMS): store, providers, intake's API, the subscriber, the
submitter and sender loops, the webhooks."""

from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from services.chat import api, handlers
from services.chat.domain import ChatChannel
from services.chat.flows import Chat, Intake
from services.chat.providers import ChatSender, MediaSource, SmsGateway, WhatsAppCloud
from services.chat.store import ChatStore
from shared.contracts import Topics
from shared.runtime import every
from shared.service_app import ConsumerService, serve_on
from shared.settings import Settings


def create_app(settings: Settings, *, senders: Mapping[ChatChannel, ChatSender] | None = None,
               media: MediaSource | None = None) -> FastAPI:
    """``senders``/``media``: a city's own providers; by default the WhatsApp Cloud API and
    the generic SMS gateway of the settings."""
    service = ConsumerService.connect(settings, handlers.SERVICE)
    store = ChatStore(service.db)
    http = httpx.AsyncClient(timeout=settings.chat_http_timeout_seconds)
    whatsapp = WhatsAppCloud.of(settings, http)
    keys = {"whatsapp": settings.chat_whatsapp_api_key.get_secret_value(),
            "sms": settings.chat_sms_api_key.get_secret_value()}
    chat = Chat(settings, store, Intake(http, settings.chat_intake_url.rstrip("/"), keys),
                senders or {"whatsapp": whatsapp, "sms": SmsGateway.of(settings, http)},
                media or whatsapp)
    handlers.register(service.broker, chat)
    lifespan = service.lifespan(
        topics=[Topics.CHANGES, Topics.DEADLETTER], prepare=[store.ensure_indexes],
        loops=[lambda: every(settings.chat_poll_seconds, chat.submit_due, "chat submitter"),
               lambda: every(settings.chat_poll_seconds, chat.send_due, "chat sender")],
        closing={"the HTTP client's close": http.aclose})
    app = service.app(title="Disposisi chat channels", lifespan=lifespan,
                      description="WhatsApp and SMS: conversations become complaints; the "
                                  "agency's messages go back on the same channel.",
                      routers=[api.build_router(settings)])
    app.state.chat = chat
    app.state.chat_store = store
    return app


def run(settings: Settings) -> None:
    serve_on(create_app(settings), settings, settings.chat_port)
