"""For the e-mail channel tests: a real outbound relay on loopback (aiosmtpd) that records the
whole mails it receives, the mailbox's settings, and a citizen's mail client (smtplib)."""

import asyncio
import contextlib
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr

from shared.embedded import free_port
from shared.settings import Settings

COMPLAINTS = "pengaduan@kota.example"
CITIZEN = "rina.marlina@warga.example"


@dataclass
class Relay:
    """The relay the mailbox sends its replies through: what it accepted, in order."""

    port: int
    mails: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd calls it so)
        message = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.mails.append(message)
        return "250 OK"

    async def count(self, n: int) -> list[EmailMessage]:
        return self.mails if len(self.mails) >= n else []


@contextlib.contextmanager
def relay() -> Iterator[Relay]:
    sink = Relay(free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def mailbox_settings(settings: Settings, sink: Relay, api_key: str, **more: Any) -> Settings:
    return settings.model_copy(update={
        "mailbox_port": free_port(), "mailbox_smtp_port": free_port(),
        "mailbox_addresses": [COMPLAINTS], "mailbox_api_key": SecretStr(api_key),
        "mailbox_intake_url": f"http://127.0.0.1:{settings.intake_port}",
        "mailbox_relay_port": sink.port, "mailbox_poll_seconds": 0.2,
        "mailbox_retry_base_seconds": 0.5, "mailbox_retry_max_seconds": 2.0,
        "mailbox_lease_seconds": 5.0, "metrics_refresh_seconds": 0.3, **more})


def citizen_mail(text: str, *, subject: str, message_id: str, sender: str = CITIZEN,
                 in_reply_to: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Rina <{sender}>"
    message["To"] = COMPLAINTS
    message["Subject"] = subject
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(text)
    return message


def _send(port: int, message: EmailMessage, to: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.send_message(message, to_addrs=[to])


async def send(port: int, message: EmailMessage, to: str = COMPLAINTS) -> None:
    """As a citizen's mail client does (smtplib, in a thread: it blocks)."""
    await asyncio.to_thread(_send, port, message, to)


async def refusal(port: int, message: EmailMessage | bytes, to: str = COMPLAINTS) -> int:
    """The SMTP code the server refuses the mail with (0 if it took it)."""
    def attempt() -> int:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
                if isinstance(message, bytes):
                    client.sendmail(CITIZEN, [to], message)
                else:
                    client.send_message(message, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused as error:
            return int(next(iter(error.recipients.values()))[0])
        except smtplib.SMTPResponseException as error:
            return int(error.smtp_code)
        return 0
    return await asyncio.to_thread(attempt)
