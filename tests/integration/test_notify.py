"""The notification service against real servers: the SLA service's escalations under the demo
policy reach an SMTP server and a webhook receiver started here, exactly once each, across a
restart of the notification service and a receiver that was down; quiet hours defer a normal
notice and not an urgent one; an acknowledgement cancels what was deferred; a poison event is
dead-lettered once; failed deliveries are listed for supervisors only."""

import asyncio
import json
import re
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.console.app import create_app as console_app
from services.drain import NOTIFY_GROUPS, backlog
from services.notify.app import create_app as notify_app
from services.notify.store import DELIVERIES
from services.sla.app import create_app as sla_app
from shared.contracts import Topics, utc_now
from shared.embedded import free_port
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts, Caller
from tests.integration.notify_support import (
    MailBox,
    Webhook,
    mail_url,
    smtp_server,
    write_directory,
)
from tests.integration.sla_support import routed
from tests.integration.support import eventually, produce, read_topic, serving

pytestmark = pytest.mark.integration
HEAD, INSPEKTUR = "kepala.dlh@kota.example", "inspektur@kota.example"


def notify_settings(settings: Settings, directory: Path, **more: Any) -> Settings:
    return settings.model_copy(update={
        "notify_directory": directory, "notify_port": free_port(), "notify_poll_seconds": 0.2,
        "notify_retry_base_seconds": 0.5, "notify_retry_max_seconds": 2.0,
        "notify_send_timeout_seconds": 10.0, "notify_lease_seconds": 30.0, **more})


async def deliveries(mongo: AsyncMongoClient[Document], settings: Settings,
                     **where: Any) -> list[Document]:
    return await mongo[settings.mongodb_database][DELIVERIES].find(where).to_list(None)


async def consumed_everything(settings: Settings) -> bool:
    """The notification service's groups have committed up to the end of their topics."""
    return not await backlog(settings, NOTIFY_GROUPS)


async def test_demo_escalations_reach_mail_and_webhook_exactly_once_across_a_restart(
        settings: Settings, mongo: AsyncMongoClient[Document], tmp_path: Path) -> None:
    hook = Webhook()
    with smtp_server() as box:
        directory = write_directory(tmp_path / "directory.yaml", people={
            "kepala.dlh": {"name": "Kepala DLH", "contacts": {"email": mail_url(box, HEAD),
                                                              "webhook": hook.url}},
            "inspektur": {"name": "Inspektur", "contacts": {"email": mail_url(box, INSPEKTUR)}},
        }, roles={"agency_head": ["kepala.dlh"]}, tenant_roles={"inspektorat": ["inspektur"]})
        settings = notify_settings(settings, directory, notify_max_attempts=1000)
        async with AsyncExitStack() as sla:
            await sla.enter_async_context(serving(sla_app(settings), settings.sla_port))
            async with serving(notify_app(settings), settings.notify_port):
                await produce(settings.kafka_bootstrap_servers, Topics.ROUTED,
                              [routed("BKL-N1", utc_now(), agency="DLH")])
                # Demo policy: response level 1 at 3.75 s (agency head), level 2 at 5 s (agency
                # head and inspektorat). The webhook receiver is down all along.
                assert await eventually(lambda: _mails(box, HEAD, 2), timeout=90)
                assert await eventually(lambda: _mails(box, INSPEKTUR, 1), timeout=30)
                await sla.aclose()  # no more escalations from here on
                retrying = await eventually(lambda: _hooks_retried(mongo, settings), timeout=30)
                assert {d["status"] for d in retrying} == {"retrying"}
                assert all(d["last_error"] for d in retrying)
            # Restarted with two webhook deliveries open; the receiver comes back.
            async with hook.up(), serving(notify_app(settings), settings.notify_port):
                assert await eventually(lambda: _count(hook.received, 2), timeout=60)
                escalations = await read_topic(settings.kafka_bootstrap_servers,
                                               Topics.ESCALATIONS, expect=2)
                # The same events once more (a redelivery): nothing is sent again.
                await produce(settings.kafka_bootstrap_servers, Topics.ESCALATIONS,
                              [(e["ticket_id"], json.dumps(e).encode()) for e in escalations])
                assert await eventually(lambda: consumed_everything(settings), timeout=60)
                await asyncio.sleep(2.0)  # a few sender turns, to catch a second send
        assert len(escalations) == 2
        assert sorted(m.subject for m in box.to(HEAD)) == [
            "Eskalasi tingkat 1: tiket BKL-N1 (DLH)", "Eskalasi tingkat 2: tiket BKL-N1 (DLH)"]
        assert [m.subject for m in box.to(INSPEKTUR)] == ["Eskalasi tingkat 2: tiket BKL-N1 (DLH)"]
        assert len(box.mails) == 3
        assert sorted(h["title"] for h in hook.received) == [
            "Eskalasi tingkat 1: tiket BKL-N1 (DLH)", "Eskalasi tingkat 2: tiket BKL-N1 (DLH)"]
        stored = await deliveries(mongo, settings)
        assert len(stored) == 5 and {d["status"] for d in stored} == {"sent"}


async def _mails(box: MailBox, address: str, n: int) -> bool:
    return len(box.to(address)) >= n


async def _count(items: list[Any], n: int) -> bool:
    return len(items) >= n


async def _hooks_retried(mongo: AsyncMongoClient[Document], settings: Settings) -> list[Document]:
    found = await deliveries(mongo, settings, contact="webhook")
    return found if len(found) == 2 and all(d["attempts"] >= 2 for d in found) else []


def escalation_event(ticket_id: str, *, level: int = 1,
                     roles: tuple[str, ...] = ("agency_head",)) -> tuple[str, bytes]:
    now = utc_now().isoformat()
    event = {"id": f"esc-{ticket_id}-{level}", "type": "ticket.escalated",
             "tenant": "kota-bengkulu", "ticket_id": ticket_id,
             "data": {"agency": "DLH", "assignment": 1, "level": level, "clock": "response",
                      "trigger": "75% of response target", "triggered_at": now, "fired_at": now,
                      "late": False, "recipients": [{"role": r} for r in roles]}}
    return ticket_id, json.dumps(event).encode()


def ack_event(ticket_id: str, *, level: int = 1) -> tuple[str, bytes]:
    event = {"id": f"ack-{ticket_id}-{level}", "type": "escalation.acknowledged",
             "tenant": "kota-bengkulu", "ticket_id": ticket_id,
             "data": {"escalation_id": f"{ticket_id}:a1:response:{level}:0", "agency": "DLH",
                      "assignment": 1, "clock": "response", "level": level, "repeat": 0,
                      "acknowledged_by": "inspektorat (supervisor)",
                      "acknowledged_at": utc_now().isoformat()}}
    return ticket_id, json.dumps(event).encode()


def quiet_window_around_now() -> dict[str, str]:
    local = utc_now().astimezone(ZoneInfo("Asia/Jakarta"))
    return {"start": (local - timedelta(hours=1)).strftime("%H:%M"),
            "end": (local + timedelta(hours=1)).strftime("%H:%M")}


async def test_quiet_hours_defer_a_normal_notice_not_an_urgent_one_and_failures_are_listed(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts,
        tmp_path: Path) -> None:
    with smtp_server() as box:
        directory = write_directory(tmp_path / "directory.yaml", people={
            "kepala.dlh": {"name": "Kepala DLH", "contacts": {"email": mail_url(box, HEAD)},
                           "quiet_hours": quiet_window_around_now()},
            # Nobody ever listens there: its deliveries fail for good after two attempts.
            "rusak": {"name": "Webhook rusak", "contacts": {"webhook": Webhook().url}},
        }, roles={"agency_head": ["kepala.dlh"]}, tenant_roles={"inspektorat": ["rusak"]})
        settings = notify_settings(settings, directory, notify_max_attempts=2)
        supervisor = await accounts.user("inspektorat", "supervisor")
        officer = await accounts.user("dlh.andi", "officer", "DLH")
        pdam_head = await accounts.user("kepala.pdam", "agency_head", "PDAM")
        async with serving(notify_app(settings), settings.notify_port) as url, \
                httpx.AsyncClient(timeout=60) as http:
            bootstrap = settings.kafka_bootstrap_servers
            await produce(bootstrap, Topics.ROUTED, [
                routed("BKL-Q1", utc_now(), agency="DLH"),
                routed("BKL-Q2", utc_now(), agency="DLH", priority="urgent")])
            assert await eventually(lambda: consumed_everything(settings), timeout=60)
            await produce(bootstrap, Topics.ESCALATIONS, [
                ("BKL-X", b"\xff not json"), escalation_event("BKL-Q1"),
                escalation_event("BKL-Q2", roles=("agency_head", "inspektorat"))])

            assert await eventually(lambda: _mails(box, HEAD, 1), timeout=60)
            assert [m.subject for m in box.to(HEAD)] == ["Eskalasi tingkat 1: tiket BKL-Q2 (DLH)"]
            [deferred] = await deliveries(mongo, settings, ticket_id="BKL-Q1", recipient="kepala.dlh")
            assert deferred["status"] == "deferred" and deferred["attempts"] == 0
            assert deferred["deferred_until"] > utc_now() + timedelta(minutes=30)

            # The supervisor acknowledges the normal one: its deferred notice will never go.
            await produce(bootstrap, Topics.ESCALATION_ACKS, [ack_event("BKL-Q1")])

            async def cancelled() -> bool:
                [d] = await deliveries(mongo, settings, ticket_id="BKL-Q1", recipient="kepala.dlh")
                return bool(d["status"] == "cancelled")

            assert await eventually(cancelled, timeout=60)

            letters = await read_topic(bootstrap, Topics.DEADLETTER, expect=1, settle=3.0)
            assert [(d["data"]["service"], d["data"]["source_topic"]) for d in letters] == [
                ("notify", Topics.ESCALATIONS)]

            async def failed() -> list[dict[str, Any]]:
                page = await http.get(f"{url}/v1/deliveries", params={"status": "failed"},
                                      headers=supervisor.headers)
                found: list[dict[str, Any]] = page.json()["deliveries"]
                return found if found else []

            listed = await eventually(failed, timeout=60)
            assert [(d["ticket_id"], d["recipient"], d["contact"], d["attempts"])
                    for d in listed] == [("BKL-Q2", "rusak", "webhook", 2)]
            assert all(d["last_error"] and "127.0.0.1" not in d["last_error"] for d in listed)
            assert "json://" not in str(listed), "a contact's URL is never shown"
            assert len(box.mails) == 1
            assert (await http.get(f"{url}/v1/deliveries", headers=officer.headers)).status_code == 403
            assert (await http.get(f"{url}/v1/deliveries")).status_code == 401
            own = await http.get(f"{url}/v1/deliveries", headers=pdam_head.headers)
            assert own.status_code == 200 and own.json()["deliveries"] == []
            other = await http.get(f"{url}/v1/deliveries", params={"agency": "DLH"},
                                   headers=pdam_head.headers)
            assert other.status_code == 403
            bad = await http.get(f"{url}/v1/deliveries", params={"status": "lost"},
                                 headers=supervisor.headers)
            assert bad.status_code == 422 and "status" in bad.text
            # Last: the SLA service started for the console's sign-in opens the tickets above.
            await _dashboard_lists_the_failure(settings, url, supervisor)


async def _dashboard_lists_the_failure(settings: Settings, notify_url: str,
                                       supervisor: Caller) -> None:
    """The supervisor's dashboard shows the delivery given up on; with the notification
    service unreachable it says so rather than showing an empty list."""
    console = settings.model_copy(update={
        "console_port": free_port(), "console_notify_url": notify_url,
        "console_sla_url": f"http://127.0.0.1:{settings.sla_port}",
        "console_intake_url": f"http://127.0.0.1:{settings.intake_port}"})
    away = console.model_copy(update={"console_port": free_port(),
                                      "console_notify_url": f"http://127.0.0.1:{free_port()}"})
    async with serving(sla_app(settings), settings.sla_port), \
            serving(console_app(console), console.console_port) as url, \
            serving(console_app(away), away.console_port) as away_url:
        for base, expected in ((url, "BKL-Q2"), (away_url, "Layanan pemberitahuan tidak menjawab")):
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                login = await http.get("/login")
                token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
                assert token is not None
                signed = await http.post("/login", data={
                    "csrf_token": token.group(1), "username": supervisor.name,
                    "password": supervisor.password})
                assert signed.status_code == 303, signed.text
                page = (await http.get("/dashboard")).text
                failed = page.split('id="h-failed"')[1].split("</section>")[0]
                assert expected in failed
                assert "json://" not in page and "127.0.0.1" not in failed


def received_event(ticket_id: str, reporter: dict[str, str], *, anonymous: bool) -> tuple[str, bytes]:
    event = {"id": f"rcv-{ticket_id}", "type": "complaint.received", "tenant": "kota-bengkulu",
             "ticket_id": ticket_id,
             "data": {"ticket_id": ticket_id, "channel": "web", "text": "Sampah menumpuk di pasar",
                      "reporter": reporter, "anonymous": anonymous,
                      "submitted_at": utc_now().isoformat()}}
    return ticket_id, json.dumps(event).encode()


def changed_event(ticket_id: str, note: str) -> tuple[str, bytes]:
    now = utc_now().isoformat()
    event = {"id": f"chg-{ticket_id}-2", "type": "ticket.changed", "tenant": "kota-bengkulu",
             "ticket_id": ticket_id,
             "data": {"version": 2, "status": "responded", "agency": "DLH", "history": [
                 {"at": now, "action": "assigned", "agency": "DLH"},
                 {"at": now, "action": "responded", "agency": "DLH", "note": note}]}}
    return ticket_id, json.dumps(event).encode()


async def test_replies_reach_a_citizen_who_is_not_anonymous_and_officers_hear_of_assignments(
        settings: Settings, mongo: AsyncMongoClient[Document], tmp_path: Path) -> None:
    citizen, hidden, officer = "warga@example.com", "rahasia@example.com", "andi@kota.example"
    with smtp_server() as box:
        path = tmp_path / "directory.yaml"
        path.write_text(json.dumps({"tenants": {"kota-bengkulu": {
            "people": {"dlh.andi": {"name": "Andi", "contacts": {"email": mail_url(box, officer)}}},
            "agencies": {"DLH": {"notify_assignments": True, "roles": {"officer": ["dlh.andi"]}}},
            "citizens": {"email": mail_url(box, "{to}")}}}}))
        settings = notify_settings(settings, path)
        async with serving(notify_app(settings), settings.notify_port):
            bootstrap = settings.kafka_bootstrap_servers
            await produce(bootstrap, Topics.RECEIVED, [
                received_event("BKL-C1", {"name": "Budi Santoso", "email": citizen}, anonymous=False),
                received_event("BKL-C2", {"name": "Siti", "email": hidden}, anonymous=True)])
            await produce(bootstrap, Topics.ROUTED, [routed("BKL-C1", utc_now(), agency="DLH")])
            assert await eventually(lambda: consumed_everything(settings), timeout=60)
            await produce(bootstrap, Topics.CHANGES, [
                changed_event("BKL-C1", "Sampah sudah diangkut hari ini."),
                changed_event("BKL-C2", "Sampah sudah diangkut kemarin.")])
            assert await eventually(lambda: _mails(box, citizen, 1), timeout=60)
            assert await eventually(lambda: _mails(box, officer, 1), timeout=60)
            assert await eventually(lambda: consumed_everything(settings), timeout=60)
            await asyncio.sleep(2.0)  # a few sender turns, to catch a mail that should not go
        [reply] = box.to(citizen)
        assert reply.subject == "Tanggapan atas pengaduan BKL-C1"
        assert "Sampah sudah diangkut hari ini." in reply.body
        [assigned] = box.to(officer)
        assert assigned.subject == "Tiket baru BKL-C1 untuk DLH"
        assert "Budi" not in assigned.body and citizen not in assigned.body
        assert box.to(hidden) == [] and len(box.mails) == 2, "an anonymous reporter is never written to"
        known = await mongo[settings.mongodb_database]["notify_citizens"].find().to_list(None)
        assert [c["_id"] for c in known] == ["kota-bengkulu:BKL-C1"], "nor is their address kept"
