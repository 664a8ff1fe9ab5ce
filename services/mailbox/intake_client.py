"""Intake's HTTP API as the mailbox uses it, with the email channel's API key: submit a
complaint, upload its attachments, pass the citizen's answer on. The mailbox reads and writes
complaints only through this API, never intake's collections."""

from dataclasses import dataclass
from typing import Literal

import httpx

from shared.contracts import Channel
from shared.settings import Settings


class IntakeUnavailable(RuntimeError):
    """Intake did not take the call now (down, overloaded, key refused): try again later."""


class SubmissionRefused(ValueError):
    """Intake refused the content (422): trying again will not help."""


@dataclass(frozen=True)
class Submitted:
    ticket_id: str
    tracking_code: str


Answer = Literal["applied", "not_waiting"]


def _problem(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, list):  # FastAPI's 422: the fields and problems (never the values)
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}"
                         for d in detail if isinstance(d, dict))
    return str(detail or f"HTTP {response.status_code}")


@dataclass
class IntakeClient:
    settings: Settings

    def _client(self) -> httpx.AsyncClient:
        key = self.settings.mailbox_api_key.get_secret_value() if self.settings.mailbox_api_key else ""
        headers = {"X-API-Key": key} if key else {}
        return httpx.AsyncClient(base_url=self.settings.mailbox_intake_url, headers=headers,
                                 timeout=self.settings.mailbox_send_timeout_seconds)

    async def _call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            async with self._client() as http:
                response = await http.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as error:
            raise IntakeUnavailable(f"intake not reached: {type(error).__name__}") from None
        if response.status_code in (401, 403) or response.status_code == 429 \
                or response.status_code >= 500:
            raise IntakeUnavailable(f"intake answered {response.status_code}: {_problem(response)}")
        return response

    async def submit(self, *, text: str, title: str | None, external_id: str) -> Submitted:
        body = {"channel": Channel.EMAIL.value, "text": text, "external_id": external_id}
        if title:
            body["title"] = title
        response = await self._call("POST", "/v1/complaints", json=body)
        if response.status_code == 422:
            raise SubmissionRefused(_problem(response))
        if response.status_code != 202:
            raise IntakeUnavailable(f"intake answered {response.status_code}: {_problem(response)}")
        accepted = response.json()
        return Submitted(accepted["ticket_id"], accepted["tracking_code"])

    async def upload(self, ticket_id: str, content: bytes) -> str | None:
        """None when kept; else intake's reason (type or size refused)."""
        response = await self._call("POST", f"/v1/complaints/{ticket_id}/attachments",
                                    files={"file": ("lampiran", content)})
        if response.status_code == 201:
            return None
        if response.status_code in (413, 415, 422):
            return _problem(response)
        raise IntakeUnavailable(f"intake answered {response.status_code}: {_problem(response)}")

    async def answer(self, ticket_id: str, code: str, text: str, *, key: str) -> Answer:
        response = await self._call(
            "POST", f"/v1/complaints/{ticket_id}/replies", json={"text": text},
            headers={"X-Tracking-Code": code, "Idempotency-Key": key})
        if response.status_code == 202:
            return "applied"
        if response.status_code in (404, 409):
            return "not_waiting"
        if response.status_code == 422:
            raise SubmissionRefused(_problem(response))
        raise IntakeUnavailable(f"intake answered {response.status_code}: {_problem(response)}")
