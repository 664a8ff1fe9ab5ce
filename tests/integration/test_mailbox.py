"""The e-mail channel against real servers: a citizen's mail client (smtplib) talks to the
mailbox's own SMTP server on loopback, the replies reach a real relay (aiosmtpd) started here.
A mail becomes a complaint in the agency's queue with its photo, the receipt carries the
tracking number and code, the agency's question comes back in the mail's thread, the
citizen's answer by mail resumes the ticket, a mail on a ticket that waits for nothing is kept
as a follow-up; a stored mail survives a stop before its submission; bad mail is refused
with the right SMTP codes; no address reaches the agency or a log."""

import io
import json
import logging
import re
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from PIL import Image
from pymongo import AsyncMongoClient

from services.intake.app import create_app as intake_app
from services.mailbox.app import create_app as mailbox_app
from services.mailbox.store import INBOUND, OUTGOING
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.mailbox_support import (
    CITIZEN,
    citizen_mail,
    mailbox_settings,
    refusal,
    relay,
    send,
)
from tests.integration.support import eventually, serving
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
    with relay() as sink:
        settings = mailbox_settings(settings, sink, email.headers["X-API-Key"])
        smtp = settings.mailbox_smtp_port
        async with pipeline(settings) as (intake, sla), \
                serving(mailbox_app(settings), settings.mailbox_port), \
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
            files = (await http.get(f"{intake}/v1/tickets/{ticket_id}/attachments",
                                    headers=officer.headers)).json()
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
    assert CITIZEN not in caplog.text and "rina.marlina" not in caplog.text


def big_mail(size: int) -> EmailMessage:
    return citizen_mail("Jalan rusak parah di depan pasar. " + "x" * size, subject="Jalan",
                        message_id="<big@warga.example>")


UNKNOWN_CHARSET = (b"From: Rina <" + CITIZEN.encode() + b">\r\nTo: pengaduan@kota.example\r\n"
                   b"Subject: Lampu jalan\r\nMessage-ID: <cs@warga.example>\r\n"
                   b"Content-Type: text/plain; charset=x-tidak-dikenal\r\n\r\n"
                   b"Lampu jalan di depan rumah saya mati \xff\xfe sejak kemarin malam\r\n")


async def test_stored_mail_is_submitted_after_a_restart_and_bad_mail_is_refused(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts) -> None:
    email = await accounts.channel("email")
    db = mongo[settings.mongodb_database]
    with relay() as sink:
        settings = mailbox_settings(settings, sink, email.headers["X-API-Key"], mailbox_max_bytes=20_000)
        smtp = settings.mailbox_smtp_port
        good = citizen_mail(TEXT, subject="Sampah menumpuk", message_id="<ok@warga.example>")
        # Intake is down: the mailbox stores what it takes and cannot submit it.
        async with serving(mailbox_app(settings), settings.mailbox_port):
            codes = [await refusal(smtp, good, to="walikota@kota.example"),
                     await refusal(smtp, big_mail(30_000)),
                     await refusal(smtp, citizen_mail("", subject="", message_id="<e@warga.example>"))]
            await send(smtp, good)
            await send(smtp, good)  # the same mail twice (a client's retry): kept once
            assert await refusal(smtp, UNKNOWN_CHARSET) == 0

            async def tried() -> list[Document]:
                found = await db[INBOUND].find({"attempts": {"$gte": 1}}).to_list(None)
                return found if len(found) == 2 else []

            waiting = await eventually(tried, timeout=60)
        assert codes == [550, 552, 550]
        assert {d["status"] for d in waiting} == {"stored"} and sink.mails == []
        # Intake is back and the mailbox starts again: both stored mails are submitted.
        async with serving(intake_app(settings), settings.intake_port), \
                serving(mailbox_app(settings), settings.mailbox_port):
            receipts = await eventually(lambda: sink.count(2), timeout=90)

            async def submitted() -> list[Document]:
                found = await db[INBOUND].find({"status": "submitted"}).to_list(None)
                return found if len(found) == 2 else []

            stored = await eventually(submitted, timeout=60)
    assert sorted(m["In-Reply-To"] for m in receipts) == ["<cs@warga.example>", "<ok@warga.example>"]
    assert len({d["ticket_id"] for d in stored}) == 2
    assert await db["complaints"].count_documents({}) == 2
    assert await db[OUTGOING].count_documents({}) == 2
    [charset] = [d for d in stored if d["message_id"] == "<cs@warga.example>"]
    complaint = await db["complaints"].find_one({"ticket_id": charset["ticket_id"]})
    assert complaint is not None and "Lampu jalan di depan rumah saya mati" in str(complaint)
