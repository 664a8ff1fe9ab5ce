"""The console's calls to the other services, over their HTTP APIs, with the signed-in
person's own token (so the APIs' permission table decides what anyone sees), a channel key for
the public form, and the tracking code for the citizen."""

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from shared.settings import Settings

TRACKING_CODE_HEADER = "X-Tracking-Code"
IDLE_CONNECTION_SECONDS = 2.0  # below uvicorn's keep-alive (5 s) on the services' side


class SignedOut(Exception):
    """The API no longer accepts the session's token (expired or revoked)."""


class Unanswered(RuntimeError):
    """A service behind a page did not answer (down, restarting, slower than
    ``DISPOSISI_CONSOLE_API_TIMEOUT_SECONDS``) or answered with an error: the page says so
    (the dashboard per panel) rather than failing whole."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Backends:
    """Intake and the SLA API as the console reaches them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        timeout = settings.console_api_timeout_seconds
        # An idle connection is dropped before the services' uvicorn closes it (after 5 s):
        # with both at 5 s, a request sent on a connection the server was just closing
        # failed (RemoteProtocolError/ReadError).
        limits = httpx.Limits(keepalive_expiry=IDLE_CONNECTION_SECONDS)
        self.sla = httpx.AsyncClient(base_url=settings.console_sla_url, timeout=timeout,
                                     limits=limits)
        self.intake = httpx.AsyncClient(base_url=settings.console_intake_url, timeout=timeout,
                                        limits=limits)
        self.notify = httpx.AsyncClient(base_url=settings.console_notify_url, timeout=timeout,
                                        limits=limits)

    async def close(self) -> None:
        await self.sla.aclose()
        await self.intake.aclose()
        await self.notify.aclose()

    async def sign_in(self, username: str, password: str) -> Answer:
        """The SLA API's token; a 503 answer when the API does not answer (the sign-in page
        says the service does not answer)."""
        try:
            reply = await self.sla.post("/v1/auth/token",
                                        data={"username": username, "password": password})
        except httpx.HTTPError as error:
            return Answer(503, {"detail": type(error).__name__})
        return _answer(reply)

    async def inbox(self, token: str, params: dict[str, str | int]) -> dict[str, Any]:
        return await self._read(token, "/v1/tickets", params)

    async def ticket(self, token: str, ticket_id: str) -> dict[str, Any] | None:
        reply = await self.sla.get(f"/v1/tickets/{ticket_id}", headers=_bearer(token))
        if reply.status_code == 404:
            return None
        return _answer(_signed_in(reply)).body

    async def act(self, token: str, ticket_id: str, update: dict[str, Any],
                  idempotency_key: str) -> Answer:
        reply = await self.sla.post(f"/v1/tickets/{ticket_id}/events", json=update,
                                    headers={**_bearer(token), "Idempotency-Key": idempotency_key})
        return _answer(_signed_in(reply))

    async def route(self, token: str, ticket_id: str, agency: str, reason: str) -> Answer:
        """The triage desk's assignment by hand (the router carries it out)."""
        reply = await self.sla.post(f"/v1/tickets/{ticket_id}/route", headers=_bearer(token),
                                    json={"agency": agency, "reason": reason})
        return _answer(_signed_in(reply))

    async def accept_review(self, token: str, ticket_id: str) -> Answer:
        """The triage desk keeps a decision the router's second opinion disputed."""
        reply = await self.sla.post(f"/v1/tickets/{ticket_id}/review/accept", headers=_bearer(token))
        return _answer(_signed_in(reply))

    async def escalations(self, token: str, params: dict[str, str | int]) -> dict[str, Any]:
        return await self._read(token, "/v1/escalations", params)

    async def acknowledge(self, token: str, escalation_id: str) -> Answer:
        reply = await self.sla.post(f"/v1/escalations/{escalation_id}/acknowledge",
                                    headers=_bearer(token))
        return _answer(_signed_in(reply))

    async def compliance(self, token: str, params: dict[str, str | int]) -> dict[str, Any]:
        return await self._read(token, "/v1/reports/compliance", params)

    async def compliance_csv(self, token: str, params: dict[str, str | int]) -> httpx.Response:
        """The report's own CSV export, passed on as the API wrote it."""
        reply = _signed_in(await self.sla.get("/v1/reports/compliance", headers=_bearer(token),
                                              params={**params, "format": "csv"}))
        if reply.status_code != 200:
            raise Unanswered(f"/v1/reports/compliance answered {reply.status_code}")
        return reply

    async def attachments(self, token: str, ticket_id: str) -> list[dict[str, Any]]:
        """The ticket's files as intake lists them for the officer; none when intake cannot
        say (the page still shows the ticket)."""
        try:
            reply = await self.intake.get(f"/v1/tickets/{ticket_id}/attachments", headers=_bearer(token))
        except httpx.HTTPError:
            return []
        if reply.status_code != 200:
            return []
        found: list[dict[str, Any]] = reply.json().get("attachments", [])
        return found

    async def attachment(self, token: str, ticket_id: str, attachment_id: str) -> tuple[bytes, str] | None:
        reply = await self.intake.get(f"/v1/tickets/{ticket_id}/attachments/{attachment_id}",
                                      headers=_bearer(token))
        if _signed_in(reply).status_code != 200:
            return None
        return reply.content, reply.headers.get("content-type", "application/octet-stream")

    async def add_resolution_photo(self, token: str, ticket_id: str, content: bytes) -> Answer:
        """The agency's photo of the fixed problem, kept by intake with the ticket's files."""
        reply = await self.intake.post(f"/v1/tickets/{ticket_id}/attachments",
                                       headers=_bearer(token), files={"file": ("foto", content)})
        return _answer(_signed_in(reply))

    async def resolution_photos(self, ticket_id: str, code: str) -> list[dict[str, Any]]:
        """The agency's photos of the fix, as the citizen may list them (with the code)."""
        try:
            reply = await self.intake.get(f"/v1/complaints/{ticket_id}/attachments",
                                          headers={TRACKING_CODE_HEADER: code})
        except httpx.HTTPError:
            return []
        if reply.status_code != 200:
            return []
        return [a for a in reply.json().get("attachments", []) if a.get("purpose") == "resolution"]

    async def citizen_file(self, ticket_id: str, code: str,
                           attachment_id: str) -> tuple[bytes, str] | None:
        reply = await self.intake.get(f"/v1/complaints/{ticket_id}/attachments/{attachment_id}",
                                      headers={TRACKING_CODE_HEADER: code})
        if reply.status_code != 200:
            return None
        return reply.content, reply.headers.get("content-type", "application/octet-stream")

    async def track(self, ticket_id: str, code: str | None) -> dict[str, Any] | None:
        headers = {TRACKING_CODE_HEADER: code} if code else {}
        reply = await self.intake.get(f"/v1/complaints/{ticket_id}", headers=headers)
        if reply.status_code == 404:
            return None
        return _answer(reply).body

    async def reply(self, ticket_id: str, code: str, text: str, idempotency_key: str) -> Answer:
        reply = await self.intake.post(
            f"/v1/complaints/{ticket_id}/replies", json={"text": text},
            headers={TRACKING_CODE_HEADER: code, "Idempotency-Key": idempotency_key})
        return _answer(reply)

    async def submit(self, complaint: dict[str, Any], idempotency_key: str) -> Answer:
        key = self.settings.console_channel_api_key or ""
        reply = await self.intake.post("/v1/complaints", json=complaint,
                                       headers={"X-API-Key": key, "Idempotency-Key": idempotency_key})
        return _answer(reply)

    async def failed_deliveries(self, token: str, limit: int) -> list[dict[str, Any]] | None:
        """The notices given up after every retry, newest first; None when the notification
        service does not answer (the dashboard says so instead of showing an empty list)."""
        try:
            reply = await self.notify.get("/v1/deliveries", headers=_bearer(token),
                                          params={"status": "failed", "limit": limit})
        except httpx.HTTPError:
            return None
        answer = _answer(_signed_in(reply))
        if not answer.ok:
            return None
        found: list[dict[str, Any]] = answer.body.get("deliveries", [])
        return found

    async def _read(self, token: str, path: str, params: dict[str, str | int]) -> dict[str, Any]:
        try:
            reply = await self.sla.get(path, params=params, headers=_bearer(token))
        except httpx.HTTPError as error:
            raise Unanswered(f"{path}: {type(error).__name__}") from error
        answer = _answer(_signed_in(reply))
        if not answer.ok:
            raise Unanswered(f"{path} answered {answer.status}")
        return answer.body


def idempotency_key(nonce: str) -> str:
    """A form's nonce as the API's Idempotency-Key: a form sent twice (a double click, a
    resent POST) is applied once."""
    return nonce.strip()[:100] or uuid.uuid4().hex


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _signed_in(reply: httpx.Response) -> httpx.Response:
    if reply.status_code == 401:
        raise SignedOut()
    return reply


def _answer(reply: httpx.Response) -> Answer:
    try:
        body = reply.json()
    except ValueError:
        body = {"detail": reply.text[:200]}
    return Answer(reply.status_code, body if isinstance(body, dict) else {"items": body})
