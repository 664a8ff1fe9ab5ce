"""The mailbox as a process, killed with SIGKILL after its SMTP server said 250 and before
intake took the mails (intake was down): the mailbox started again submits them, once each,
and the citizen gets one receipt per mail. Before that, bad mail is refused with the SMTP
code that says why: an unknown recipient (550), too large (552), no complaint text (550)."""

import re
import signal
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.intake.app import create_app as intake_app
from services.mailbox.store import INBOUND, OUTGOING
from shared.mongo import Document
from shared.settings import Settings
from tests.e2e.support import spawn, stop, wait_healthy
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

pytestmark = pytest.mark.e2e
TEXT = "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat."
UNKNOWN_CHARSET = (b"From: Rina <" + CITIZEN.encode() + b">\r\nTo: pengaduan@kota.example\r\n"
                   b"Subject: Lampu jalan\r\nMessage-ID: <cs@warga.example>\r\n"
                   b"Content-Type: text/plain; charset=x-tidak-dikenal\r\n\r\n"
                   b"Lampu jalan di depan rumah saya mati \xff\xfe sejak kemarin malam\r\n")


async def _backlog(url: str, n: int) -> bool:
    """Whether the mailbox's /metrics shows ``n`` received mails waiting for submission."""
    async with httpx.AsyncClient(timeout=30) as http:
        text = (await http.get(f"{url}/metrics")).text
    found = re.search(r'^disposisi_outbox_backlog\{[^}]*outbox="mailbox_inbound"[^}]*\} (\S+)$', text, re.M)
    return found is not None and float(found.group(1)) == n


def big_mail(size: int) -> EmailMessage:
    return citizen_mail("Jalan rusak parah di depan pasar. " + "x" * size, subject="Jalan",
                        message_id="<big@warga.example>")


async def test_mail_stored_before_a_sigkill_is_submitted_after_the_restart(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts,
        tmp_path: Path) -> None:
    email = await accounts.channel("email")
    db = mongo[settings.mongodb_database]
    with relay() as sink:
        settings = mailbox_settings(settings, sink, email.headers["X-API-Key"], mailbox_max_bytes=20_000)
        smtp, url = settings.mailbox_smtp_port, f"http://127.0.0.1:{settings.mailbox_port}"
        good = citizen_mail(TEXT, subject="Sampah menumpuk", message_id="<ok@warga.example>")
        mailbox = spawn("mailbox", settings, tmp_path)  # intake is not running
        try:
            wait_healthy(url, mailbox)
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
            shown = await eventually(lambda: _backlog(url, 2), timeout=60)
        finally:
            stop(mailbox, signal.SIGKILL)
        assert codes == [550, 552, 550]
        assert shown, "the stored mails show as the mailbox's backlog (disposisi status)"
        assert {d["status"] for d in waiting} == {"stored"} and sink.mails == []
        async with serving(intake_app(settings), settings.intake_port):
            again = spawn("mailbox", settings, tmp_path, mailbox_retry_base_seconds=0.2)
            try:
                receipts = await eventually(lambda: sink.count(2), timeout=120)

                async def submitted() -> list[Document]:
                    found = await db[INBOUND].find({"status": "submitted"}).to_list(None)
                    return found if len(found) == 2 else []

                stored = await eventually(submitted, timeout=60)
            finally:
                stop(again)
    assert sorted(m["In-Reply-To"] for m in receipts) == ["<cs@warga.example>", "<ok@warga.example>"]
    assert len({d["ticket_id"] for d in stored}) == 2
    assert await db["complaints"].count_documents({}) == 2
    assert await db[OUTGOING].count_documents({}) == 2
    [charset] = [d for d in stored if d["message_id"] == "<cs@warga.example>"]
    complaint = await db["complaints"].find_one({"ticket_id": charset["ticket_id"]})
    assert complaint is not None and "Lampu jalan di depan rumah saya mati" in str(complaint)
    for log in tmp_path.glob("mailbox-*.log"):
        assert CITIZEN not in log.read_text(errors="replace"), "no address in the service's log"
