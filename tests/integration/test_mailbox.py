"""The e-mail channel against real servers: a citizen's mail client (smtplib) talks to the
mailbox's own SMTP server on loopback, the replies reach a real relay (aiosmtpd) started here.
A mail becomes a complaint in the agency's queue with its photo, the receipt carries the
tracking number and code, the agency's question comes back in the mail's thread, the
citizen's answer by mail resumes the ticket, a mail on a ticket that waits for nothing is kept
as a follow-up. A stored mail surviving a SIGKILL before its submission, and bad mail refused
with the right SMTP codes (tests/e2e/test_mailbox_crash.py); no address reaches the agency
or a log."""

import io
import json
import logging
import re
from typing import Any

import httpx
import pytest
from PIL import Image
from pymongo import AsyncMongoClient

from services.mailbox.app import create_app as mailbox_app
from services.mailbox.store import INBOUND
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.mailbox_support import (
    CITIZEN,
    citizen_mail,
    mailbox_settings,
    relay,
    send,
)
from tests.integration.support import eventually, json_when_ok, serving
from tests.integration.test_privacy import pipeline

pytestmark = pytest.mark.integration
TEXT = ("Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat. "
        f"Hubungi saya di {CITIZEN}.")


def photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    return buffer.getvalue()


async def _ticket(http: httpx.AsyncClient, url: str, headers: dict[str, str],
                  status: str | None = None) -> dict[str, Any] | None:
    response = await http.get(url, headers=headers)
    if response.status_code != 200:
        return None
    found: dict[str, Any] = response.json()
    return found if status is None or found["status"] == status else None


async def test_mail_in_agency_queue_question_back_in_the_thread_and_the_answer_by_mail(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    email = await accounts.channel("email")
    officer = await accounts.user("petugas.dlh", "officer", "DLH")
    supervisor = await accounts.user("inspektorat", "supervisor")
    with relay() as sink:
        settings = mailbox_settings(settings, sink, email.headers["X-API-Key"])
        smtp = settings.mailbox_smtp_port
        async with pipeline(settings) as (intake, sla), \
                serving(mailbox_app(settings), settings.mailbox_port) as mailbox, \
                httpx.AsyncClient(timeout=60) as http:
            first = citizen_mail(TEXT, subject="Sampah menumpuk", message_id="<c1@warga.example>")
            first.add_attachment(photo(), maintype="image", subtype="png", filename="foto.png")
            first.add_attachment(b"MZ\x90\x00 not a photo", maintype="application",
                                 subtype="octet-stream", filename="foto2.jpg")
            await send(smtp, first)
            [receipt] = await eventually(lambda: sink.count(1), timeout=90)
            ticket_id = re.findall(r"^\[([A-Z]+-\d{6}-\w{8})\] Sampah menumpuk$", receipt["Subject"])[0]
            code = re.findall(r"Kode pelacakan: (\S+)", receipt.get_content())[0]
            sla_url = f"{sla}/v1/tickets/{ticket_id}"
            queued = await eventually(lambda: _ticket(http, sla_url, officer.headers), timeout=90)
            # Intake's copy of who holds the ticket follows the SLA's (CI: 404 on the cluster).
            files = await eventually(lambda: json_when_ok(
                http, f"{intake}/v1/tickets/{ticket_id}/attachments", officer.headers), timeout=60)
            tracked = await http.get(f"{intake}/v1/complaints/{ticket_id}", params={"code": code})

            asked = await http.post(f"{sla_url}/events", headers=officer.headers,
                                    json={"action": "needs_info", "note": "Mohon sebutkan patokan lokasi"})
            assert asked.status_code == 200, asked.text
            question = (await eventually(lambda: sink.count(2), timeout=90))[1]
            answer = citizen_mail("Patokannya di depan Pasar Minggu, dekat halte bus.\n\n> kutipan",
                                  subject=f"Re: {question['Subject']}", message_id="<c2@warga.example>",
                                  in_reply_to=question["Message-ID"])
            await send(smtp, answer)
            resumed = await eventually(lambda: _ticket(http, sla_url, officer.headers, "assigned"),
                                       timeout=90)
            answered = (await eventually(lambda: sink.count(3), timeout=60))[2]
            # Not waiting for anything now: kept as a follow-up, and the citizen is told so.
            await send(smtp, citizen_mail("Apakah sudah ada perkembangan pengaduan saya?",
                                          subject=f"Re: [{ticket_id}] Sampah menumpuk",
                                          message_id="<c3@warga.example>"))
            follow_up = (await eventually(lambda: sink.count(4), timeout=60))[3]
            done = await http.post(f"{sla_url}/events", headers=officer.headers,
                                   json={"action": "responded", "note": "Sampah sudah diangkut hari ini"})
            assert done.status_code == 200, done.text
            response = (await eventually(lambda: sink.count(5), timeout=90))[4]
            summary = (await http.get(f"{mailbox}/v1/mail/summary", headers=supervisor.headers)).json()
            inbound = {d["message_id"]: d["status"]
                       for d in await mongo[settings.mongodb_database][INBOUND].find().to_list(None)}

    assert queued is not None and queued["agency"] == "DLH"
    assert CITIZEN not in json.dumps(queued), "no address reaches the agency"
    assert "[email disembunyikan]" in queued["text"]
    assert len(files["attachments"]) == 1, "the photo is kept, the file that is no photo is not"
    assert "lampiran 2" in receipt.get_content()
    assert tracked.status_code == 200 and tracked.json()["text"] == queued["text"]
    # The question goes back in the citizen's thread, carrying the tracking number.
    assert question["In-Reply-To"] == "<c1@warga.example>"
    assert question["Subject"] == f"[{ticket_id}] Sampah menumpuk"
    assert "Mohon sebutkan patokan lokasi" in question.get_content()
    assert ticket_id in question["Message-ID"]
    # The answer by mail came in as the citizen's answer: the ticket resumed.
    assert resumed is not None
    replied = [s for s in resumed["history"] if s["action"] == "citizen_replied"]
    assert [s["note"] for s in replied] == ["Patokannya di depan Pasar Minggu, dekat halte bus."]
    assert "teruskan" in answered.get_content() and answered["In-Reply-To"] == "<c2@warga.example>"
    assert "telah kami simpan" in follow_up.get_content()
    assert "Sampah sudah diangkut hari ini" in response.get_content()
    assert response["Subject"] == f"[{ticket_id}] Sampah menumpuk"
    assert all(m["To"] == CITIZEN for m in sink.mails)
    assert inbound == {"<c1@warga.example>": "submitted", "<c2@warga.example>": "answered",
                       "<c3@warga.example>": "follow_up"}
    assert summary == {"stored": 0, "submitted": 1, "answered": 1, "follow_up": 1, "refused": 0,
                       "replies_failed": 0}
    assert CITIZEN not in caplog.text and "rina.marlina" not in caplog.text
