"""Real receivers for the notification tests: an SMTP server (aiosmtpd) and a webhook receiver
(uvicorn), both on loopback, recording what reached them."""

import contextlib
import email
import email.policy
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, Request

from shared.embedded import free_port
from tests.integration.support import serving


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    body: str


@dataclass
class MailBox:
    """What the SMTP server accepted, in order."""

    port: int
    mails: list[Mail] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd calls it so)
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        part = message.get_body(preferencelist=("plain",)) if message.is_multipart() else message
        body = part.get_content() if part is not None else ""
        self.mails.append(Mail(tuple(envelope.rcpt_tos), str(message["Subject"]), str(body)))
        return "250 OK"

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails if address in m.to]


@contextlib.contextmanager
def smtp_server() -> Iterator[MailBox]:
    box = MailBox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Webhook:
    """A webhook receiver that can be down: ``up()`` serves it on its (fixed) port."""

    port: int = field(default_factory=free_port)
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    @contextlib.asynccontextmanager
    async def up(self) -> AsyncIterator[None]:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> dict[str, str]:
            self.received.append(json.loads(await request.body()))
            return {"ok": "yes"}

        _ = hook
        async with serving(app, self.port, consumers_assigned=False):
            yield


def mail_url(box: MailBox, to: str) -> str:
    return f"mailto://127.0.0.1:{box.port}?from=disposisi@kota.example&to={to}&mode=insecure"


def write_directory(path: Path, people: dict[str, Any], roles: dict[str, list[str]], *,
                    tenant_roles: dict[str, list[str]] | None = None,
                    agency: str = "DLH") -> Path:
    path.write_text(yaml.safe_dump({"tenants": {"kota-bengkulu": {
        "timezone": "Asia/Jakarta", "people": people,
        "agencies": {agency: {"roles": roles}}, "roles": tenant_roles or {}}}}))
    return path
