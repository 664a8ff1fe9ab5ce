"""The audit trail through the running services: a complaint submitted to intake, routed by
the router, opened by SLA, then acknowledged, paused, resumed and resolved over HTTP; the
log holds each step with the authenticated caller as its actor (the channel's key, the
signed-in officer and agency head, the administrator reloading the rulebook) and the
request id they sent, and nothing of the hidden reporter; `disposisi audit verify` passes,
and after one stored entry is edited it names exactly that entry."""

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient

import services.sla
from services.intake.app import create_app as intake_app
from services.router.app import create_app as router_app
from services.sla.app import create_app as sla_app
from shared.audit_store import AuditLog, entry_id
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.support import eventually, serving

pytestmark = pytest.mark.integration

DEFAULT_POLICY = Path(services.sla.__file__).parent / "policies" / "default.yaml"
SECRETS = ("Siti Aminah", "+6281298765432", "siti@example.com", "TPS Jl. Suprapto")


async def cli(settings: Settings, *args: str) -> tuple[int, str]:
    """`disposisi ...` as a process, configured like a service (DISPOSISI_* variables)."""
    env = {**os.environ, "DISPOSISI_MONGODB_URL": settings.mongodb_url,
           "DISPOSISI_MONGODB_DATABASE": settings.mongodb_database, "DISPOSISI_TENANT": settings.tenant}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


def actor(name: str, role: str, kind: str, agency: str | None = None) -> dict[str, str | None]:
    return {"name": name, "role": role, "agency": agency, "kind": kind}


async def test_a_ticket_life_is_audited_and_verified(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts) -> None:
    # The default policy: no escalation comes due while the test runs.
    settings = settings.model_copy(update={"sla_policy": DEFAULT_POLICY})
    log = AuditLog(mongo[settings.mongodb_database])
    web = await accounts.channel("web")
    officer = await accounts.user("petugas.dlh", "officer", "DLH")
    head = await accounts.user("kabid.dlh", "agency_head", "DLH")
    async with serving(intake_app(settings), settings.intake_port) as intake, \
            serving(router_app(settings), settings.router_port), \
            serving(sla_app(settings), settings.sla_port) as sla, httpx.AsyncClient() as http:
        submitted = await http.post(f"{intake}/v1/complaints", json={
            "channel": "web", "anonymous": True, "title": "Sampah - Siti Aminah",
            "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat",
            "reporter": {"name": "Siti Aminah", "phone": "0812-9876-5432",
                         "email": "siti@example.com"}},
            headers={**web.headers, "X-Request-ID": "req-submit"})
        ticket_id = submitted.json()["ticket_id"]

        async def opened() -> bool:
            response = await http.get(f"{sla}/v1/tickets/{ticket_id}", headers=officer.headers)
            return response.status_code == 200

        assert await eventually(opened, timeout=60)
        # The body's "actor" is gone: the caller is who signed in (a claim would be refused).
        for who, request_id, body in (
                (officer, "req-ack", {"action": "acknowledged"}),
                (officer, "req-pause", {"action": "needs_info", "note": "Mohon foto lokasi"}),
                (officer, "", {"action": "citizen_replied"}),  # by phone: no X-Request-ID
                (head, "req-resolve", {"action": "resolved", "note": "Sudah diangkut"})):
            headers = {**who.headers, **({"X-Request-ID": request_id} if request_id else {})}
            response = await http.post(f"{sla}/v1/tickets/{ticket_id}/events", json=body,
                                       headers=headers)
            assert response.status_code == 200, response.text
        found = await log.latest(settings.tenant, limit=100, ticket_id=ticket_id)

    assert submitted.status_code == 202
    petugas = actor("petugas.dlh", "officer", "person", "DLH")
    assert [(e["action"], e["actor"]) for e in found] == [
        ("submission", actor("web", "channel", "channel")),
        ("routing", actor("router", "service", "service")),
        ("update:acknowledged", petugas), ("pause", petugas), ("resume", petugas),
        ("update:resolved", actor("kabid.dlh", "agency_head", "person", "DLH"))]
    ids = [e["request_id"] for e in found]
    assert ids[:4] + ids[5:] == ["req-submit", None, "req-ack", "req-pause", "req-resolve"]
    assert len(ids[4]) == 32 and ids[4] not in ids[:4]  # none sent: the service made one
    assert found[0]["after"] == {"status": "received", "channel": "web", "anonymous": True,
                                 "confidential": False}
    assert found[1]["after"]["agency"] == "DLH"
    assert found[-1]["after"]["status"] == "resolved"
    assert [e["seq"] for e in found] == list(range(1, 7))  # the only ticket: the whole chain
    everything = repr(await mongo[settings.mongodb_database]["audit_log"].find().to_list(None))
    assert [s for s in SECRETS if s in everything] == []
    assert web.headers["X-API-Key"] not in everything

    code, out = await cli(settings, "audit", "verify", "--tenant", settings.tenant)
    assert (code, out.strip()) == (0, f"audit log of {settings.tenant}: OK, 6 entries; head seq 6, "
                                      f"hash {found[-1]['hash']}")
    code, out = await cli(settings, "audit", "show", "--ticket", ticket_id)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 6
    assert f"submission {ticket_id} by web (channel) -> " in lines[0]
    assert f"routing {ticket_id} by router (service) -> " in lines[1]
    assert lines[0].endswith(" request req-submit")
    assert f"pause {ticket_id} by petugas.dlh (person, officer, DLH) " in lines[3]
    assert lines[3].endswith(" request req-pause")
    assert f"update:resolved {ticket_id} by kabid.dlh (person, agency_head, DLH) " in lines[5]

    pause = found[3]
    await mongo[settings.mongodb_database]["audit_log"].update_one(
        {"_id": entry_id(settings.tenant, pause["seq"])}, {"$set": {"actor.name": "orang lain"}})
    code, out = await cli(settings, "audit", "verify", "--tenant", settings.tenant)
    assert code == 1
    assert out.startswith(f"audit log of {settings.tenant}: BROKEN at seq {pause['seq']}: "
                          "hash mismatch")


RULEBOOK = """
tenant: kota-bengkulu
fallback: TRIAGE
agencies:
  - {code: TRIAGE, name: Meja Pengaduan, authority: internal}
  - code: DLH
    name: Dinas Lingkungan Hidup
    authority: kota
    rules: [{id: dlh.sampah, any: [sampah]}]
"""


async def test_a_rulebook_reload_is_audited(settings: Settings, mongo: AsyncMongoClient[Document],
                                            tmp_path: Path, accounts: Accounts) -> None:
    rulebook = tmp_path / "rulebook.yaml"
    rulebook.write_text(RULEBOOK)
    settings = settings.model_copy(update={"rulebook": rulebook, "rulebook_reload_seconds": 3600})
    log = AuditLog(mongo[settings.mongodb_database])
    admin = await accounts.user("admin.rina", "admin")
    async with serving(router_app(settings), settings.router_port) as url, \
            httpx.AsyncClient(headers=admin.headers) as http:
        before = (await http.get(f"{url}/v1/rulebook")).json()["version"]
        rulebook.write_text(RULEBOOK.replace("any: [sampah]", "any: [sampah, tps]"))
        reloaded = await http.post(f"{url}/v1/rulebook/reload", headers={"X-Request-ID": "req-rb"})
        again = await http.post(f"{url}/v1/rulebook/reload")  # unchanged: no new entry
    found = await log.latest(settings.tenant, limit=10)
    assert reloaded.status_code == again.status_code == 200
    assert [(e["action"], e["actor"], e["request_id"]) for e in found] == [
        ("rulebook_change", actor("admin.rina", "admin", "person"), "req-rb")]
    assert found[0]["before"] == {"version": before, "agencies": 2, "rules": 1}
    assert found[0]["after"]["version"] == reloaded.json()["version"] != before
