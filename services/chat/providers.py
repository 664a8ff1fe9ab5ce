"""The providers' side: sending a text to a citizen, and (WhatsApp) fetching a photo they
sent. A city plugs in its own provider by implementing ``ChatSender``; the base URLs are
settings, so tests point them at a fake provider on loopback.

Errors say what failed in words without the phone number (an exception's text may reach a
log, and URLs here never carry the number: it travels in the body)."""

from dataclasses import dataclass
from typing import Protocol

import httpx

from shared.settings import Settings


class SendFailed(Exception):
    """The provider did not take the message; the text says why (no phone number)."""


class MediaRefused(Exception):
    """A photo that will not be fetched (too large); the citizen is told."""


class ChatSender(Protocol):
    async def send_text(self, to: str, text: str) -> None:
        """Deliver ``text`` to the phone number ``to``; SendFailed when the provider refused."""


class MediaSource(Protocol):
    async def fetch(self, media_id: str, max_bytes: int) -> bytes:
        """The media's bytes; MediaRefused when larger than ``max_bytes``."""


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _post(http: httpx.AsyncClient, url: str, token: str, body: dict[str, object],
                provider: str) -> None:
    try:
        answer = await http.post(url, json=body, headers=_bearer(token))
    except httpx.HTTPError as error:
        raise SendFailed(f"{provider} not reached: {type(error).__name__}") from None
    if answer.status_code >= 300:
        raise SendFailed(f"{provider} answered {answer.status_code}: {answer.text[:200]}")


@dataclass
class WhatsAppCloud:
    """WhatsApp Business Cloud API: ``POST /{version}/{phone_number_id}/messages``; media by
    ``GET /{version}/{media_id}`` (its URL), then that URL, both with the bearer token."""

    http: httpx.AsyncClient
    graph_url: str
    version: str
    phone_number_id: str
    token: str

    @classmethod
    def of(cls, settings: Settings, http: httpx.AsyncClient) -> "WhatsAppCloud":
        return cls(http, settings.chat_whatsapp_graph_url.rstrip("/"),
                   settings.chat_whatsapp_api_version, settings.chat_whatsapp_phone_number_id,
                   settings.chat_whatsapp_access_token.get_secret_value())

    async def send_text(self, to: str, text: str) -> None:
        body: dict[str, object] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                                   "to": to, "type": "text",
                                   "text": {"preview_url": False, "body": text[:4096]}}
        await _post(self.http, f"{self.graph_url}/{self.version}/{self.phone_number_id}/messages",
                    self.token, body, "the WhatsApp Cloud API")

    async def fetch(self, media_id: str, max_bytes: int) -> bytes:
        meta = await self.http.get(f"{self.graph_url}/{self.version}/{media_id}",
                                   headers=_bearer(self.token))
        meta.raise_for_status()
        found = meta.json()
        if int(found.get("file_size") or 0) > max_bytes:
            raise MediaRefused(f"the photo is larger than {max_bytes} bytes")
        content = bytearray()
        async with self.http.stream("GET", str(found["url"]), headers=_bearer(self.token)) as got:
            got.raise_for_status()
            async for chunk in got.aiter_bytes():
                content += chunk
                if len(content) > max_bytes:
                    raise MediaRefused(f"the photo is larger than {max_bytes} bytes")
        return bytes(content)


@dataclass
class SmsGateway:
    """A generic SMS gateway: ``POST <url>`` with JSON ``{"to": ..., "text": ...}`` and a
    bearer token; any 2xx means taken."""

    http: httpx.AsyncClient
    url: str
    token: str

    @classmethod
    def of(cls, settings: Settings, http: httpx.AsyncClient) -> "SmsGateway":
        return cls(http, settings.chat_sms_gateway_url,
                   settings.chat_sms_gateway_token.get_secret_value())

    async def send_text(self, to: str, text: str) -> None:
        if not self.url:
            raise SendFailed("no SMS gateway URL is set (chat_sms_gateway_url)")
        await _post(self.http, self.url, self.token, {"to": to, "text": text}, "the SMS gateway")
