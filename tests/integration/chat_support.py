"""A fake WhatsApp Cloud API and SMS gateway on loopback (a real uvicorn server speaking the
providers' payloads, recording what reached it), and webhook payloads of the Cloud API's
documented shape, signed as Meta signs them."""

import contextlib
import io
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from PIL import Image
from pydantic import SecretStr

from services.chat.payloads import whatsapp_signature
from shared.embedded import free_port
from shared.settings import Settings
from tests.integration.support import serving

TOKEN, APP_SECRET, VERIFY, SMS_SECRET = "wa-token", "wa-app-secret", "wa-verify", "sms-secret"
SMS_TOKEN, PHONE_ID, VERSION = "sms-token", "4455667788", "v21.0"
CITIZEN = "6281234567890"  # WhatsApp sends numbers without "+"


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(out, "JPEG")
    return out.getvalue()


@dataclass
class FakeProvider:
    """Records texts sent on WhatsApp and by SMS; serves media by id."""

    port: int = field(default_factory=free_port)
    whatsapp: list[dict[str, Any]] = field(default_factory=list)
    sms: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, bytes] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def texts_to(self, to: str) -> list[str]:
        return [m["text"]["body"] for m in self.whatsapp if m["to"] == to] + \
            [m["text"] for m in self.sms if m["to"] == to]

    def settings(self, settings: Settings, **more: Any) -> Settings:
        return settings.model_copy(update={
            "chat_port": free_port(), "chat_intake_url": f"http://127.0.0.1:{settings.intake_port}",
            "chat_poll_seconds": 0.2, "chat_retry_base_seconds": 0.5, "chat_retry_max_seconds": 2.0,
            "chat_whatsapp_graph_url": self.url, "chat_whatsapp_api_version": VERSION,
            "chat_whatsapp_phone_number_id": PHONE_ID,
            "chat_whatsapp_access_token": SecretStr(TOKEN),
            "chat_whatsapp_app_secret": SecretStr(APP_SECRET),
            "chat_whatsapp_verify_token": SecretStr(VERIFY),
            "chat_sms_secret": SecretStr(SMS_SECRET),
            "chat_sms_gateway_url": f"{self.url}/sms/send",
            "chat_sms_gateway_token": SecretStr(SMS_TOKEN), **more})

    @contextlib.asynccontextmanager
    async def up(self) -> AsyncIterator[None]:
        async with serving(self._app(), self.port, consumers_assigned=False):
            yield

    def _app(self) -> FastAPI:
        app = FastAPI()

        def bearer(request: Request, token: str) -> None:
            if request.headers.get("Authorization") != f"Bearer {token}":
                raise HTTPException(401, {"error": {"message": "Invalid OAuth access token",
                                                    "type": "OAuthException", "code": 190}})

        @app.post("/{version}/{phone_number_id}/messages")
        async def send(version: str, phone_number_id: str, request: Request) -> dict[str, Any]:
            bearer(request, TOKEN)
            body = await request.json()
            assert (version, phone_number_id) == (VERSION, PHONE_ID)
            assert body["messaging_product"] == "whatsapp" and body["type"] == "text"
            self.whatsapp.append(body)
            return {"messaging_product": "whatsapp",
                    "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                    "messages": [{"id": f"wamid.out{len(self.whatsapp)}"}]}

        @app.get("/{version}/{media_id}")
        async def media_url(version: str, media_id: str, request: Request) -> dict[str, Any]:
            bearer(request, TOKEN)
            content = self.media[media_id]
            return {"messaging_product": "whatsapp", "url": f"{self.url}/files/{media_id}/content",
                    "mime_type": "image/jpeg", "sha256": "-", "file_size": len(content),
                    "id": media_id}

        @app.get("/files/{media_id}/content")
        async def download(media_id: str, request: Request) -> Response:
            bearer(request, TOKEN)
            return Response(self.media[media_id], media_type="image/jpeg")

        @app.post("/sms/send")
        async def send_sms(request: Request) -> dict[str, str]:
            bearer(request, SMS_TOKEN)
            self.sms.append(await request.json())
            return {"status": "queued"}

        _ = (send, media_url, download, send_sms)
        return app


def message(kind: str, message_id: str, body: dict[str, Any], *,
            sender: str = CITIZEN) -> dict[str, Any]:
    return {"from": sender, "id": message_id, "timestamp": str(int(time.time())), "type": kind,
            kind: body}


def notification(*messages: dict[str, Any], statuses: list[dict[str, Any]] | None = None,
                 sender: str = CITIZEN) -> bytes:
    """A Cloud API webhook body, as Meta posts it."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "6285100000000", "phone_number_id": PHONE_ID},
        "contacts": [{"profile": {"name": "Warga"}, "wa_id": sender}]}
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = statuses
    return json.dumps({"object": "whatsapp_business_account", "entry": [
        {"id": "WABA-1", "changes": [{"value": value, "field": "messages"}]}]}).encode()


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": whatsapp_signature(body, secret)}
