"""HTTP: the providers' webhooks.

- ``GET /webhooks/whatsapp``: Meta's verification handshake (``hub.mode=subscribe``,
  ``hub.verify_token``, ``hub.challenge``).
- ``POST /webhooks/whatsapp``: Cloud API notifications, signed (``X-Hub-Signature-256``).
  Errors in the Graph API's shape: ``{"error": {"message", "type", "code"}}``.
- ``POST /webhooks/sms``: a generic SMS gateway, ``from``, ``text``, ``id`` as a form or JSON,
  with the shared secret in ``X-Gateway-Secret``. Errors as ``{"status": "error", "error"}``.

A message is stored (in a draft) before the webhook answers 200: a provider that got no 200
sends it again, and a message seen before changes nothing."""

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from services.chat.domain import masked
from services.chat.flows import Chat
from services.chat.payloads import same_secret, signature_problem, sms_message, whatsapp_messages
from shared.settings import Settings

log = logging.getLogger(__name__)


def _whatsapp_error(code: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=code, content={
        "error": {"message": message, "type": "DisposisiWebhookError", "code": code}})


def _sms_error(code: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=code, content={"status": "error", "error": message})


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])
    _whatsapp_routes(router, settings)
    _sms_routes(router, settings)
    return router


def _chat(request: Request) -> Chat:
    chat: Chat = request.app.state.chat
    return chat


def _whatsapp_routes(router: APIRouter, settings: Settings) -> None:
    verify_token = settings.chat_whatsapp_verify_token.get_secret_value()
    app_secret = settings.chat_whatsapp_app_secret.get_secret_value()

    @router.get("/whatsapp", response_class=PlainTextResponse,
                responses={403: {"description": "Wrong mode or verify token"}})
    async def verify(mode: Annotated[str | None, Query(alias="hub.mode", max_length=40)] = None,
                     token: Annotated[str | None, Query(alias="hub.verify_token",
                                                        max_length=200)] = None,
                     challenge: Annotated[str | None, Query(alias="hub.challenge",
                                                            max_length=200)] = None) -> Response:
        """Meta's handshake: answers ``hub.challenge`` when the verify token is the one set."""
        if mode != "subscribe" or not challenge or not same_secret(token, verify_token):
            log.warning("WhatsApp webhook verification refused (mode %s)", (mode or "-")[:40])
            return _whatsapp_error(status.HTTP_403_FORBIDDEN, "verification failed")
        return PlainTextResponse(challenge)

    @router.post("/whatsapp", responses={
        400: {"description": "Body is not JSON"},
        401: {"description": "No X-Hub-Signature-256"},
        403: {"description": "X-Hub-Signature-256 does not match"},
        503: {"description": "WhatsApp is not configured here"}})
    async def whatsapp(request: Request) -> Response:
        """Cloud API notifications: text, image and location messages join the sender's
        draft; other types get a polite reply; delivery statuses are ignored."""
        if not app_secret:
            return _whatsapp_error(status.HTTP_503_SERVICE_UNAVAILABLE,
                                   "the WhatsApp channel is not configured")
        body = await request.body()
        problem = signature_problem(body, request.headers.get("X-Hub-Signature-256"), app_secret)
        if problem is not None:
            log.warning("WhatsApp webhook refused: %s (%d bytes, nothing stored)", problem, len(body))
            code = status.HTTP_401_UNAUTHORIZED if problem.startswith("missing") \
                else status.HTTP_403_FORBIDDEN
            return _whatsapp_error(code, problem)
        try:
            payload = json.loads(body)
        except ValueError:
            log.warning("WhatsApp webhook: signed body is not JSON (%d bytes)", len(body))
            return _whatsapp_error(status.HTTP_400_BAD_REQUEST, "body: not JSON")
        parsed = whatsapp_messages(payload)
        for problem in parsed.problems:
            log.warning("WhatsApp webhook: skipped %s", problem)
        for message in parsed.messages:
            if message.kind == "unknown":
                log.warning("WhatsApp message %s from %s of unsupported type %s", message.message_id,
                            masked(message.sender), message.raw_type)
            await _chat(request).take(message)
        return JSONResponse({"status": "ok", "messages": len(parsed.messages),
                             "skipped": len(parsed.problems)})

    _ = (verify, whatsapp)


def _sms_routes(router: APIRouter, settings: Settings) -> None:
    secret = settings.chat_sms_secret.get_secret_value()

    @router.post("/sms", responses={
        401: {"description": "No X-Gateway-Secret"},
        403: {"description": "Wrong X-Gateway-Secret"},
        422: {"description": "A field missing or invalid, named"},
        503: {"description": "SMS is not configured here"}})
    async def sms(request: Request) -> Response:
        """One SMS from the gateway: ``from``, ``text``, ``id`` (form-encoded or JSON)."""
        if not secret:
            return _sms_error(status.HTTP_503_SERVICE_UNAVAILABLE, "the SMS channel is not configured")
        given = request.headers.get("X-Gateway-Secret")
        if not same_secret(given, secret):
            log.warning("SMS webhook refused: %s X-Gateway-Secret", "wrong" if given else "no")
            return _sms_error(status.HTTP_403_FORBIDDEN if given else status.HTTP_401_UNAUTHORIZED,
                              "X-Gateway-Secret: wrong" if given else "X-Gateway-Secret: missing")
        fields = await _fields(request)
        if fields is None:
            return _sms_error(status.HTTP_422_UNPROCESSABLE_CONTENT,
                              "body: a form or a JSON object with from, text and id")
        message = sms_message(fields)
        if isinstance(message, str):
            log.warning("SMS webhook refused: %s", message)
            return _sms_error(status.HTTP_422_UNPROCESSABLE_CONTENT, message)
        await _chat(request).take(message)
        return JSONResponse({"status": "ok", "id": message.message_id})

    _ = sms


async def _fields(request: Request) -> dict[str, Any] | None:
    kind = request.headers.get("content-type", "")
    try:
        if kind.startswith("application/json"):
            found = await request.json()
            return found if isinstance(found, dict) else None
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    except ValueError:
        return None
