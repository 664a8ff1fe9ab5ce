"""Escalations over HTTP against the running SLA service (real store and broker): listed newest
first per tenant and agency, filtered and paged; a supervisor's acknowledgement stops its
step's re-notifications, is recorded once (audit log, event), and completes after the store
fails mid-request."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect

from services.sla.app import create_app
from services.sla.escalation_store import EscalationAcks
from services.sla.escalations import AckDoc
from shared.audit_store import AuditLog
from shared.contracts import Topics, utc_now
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts, Caller
from tests.integration.sla_support import routed
from tests.integration.support import eventually, produce, read_topic, serving

pytestmark = pytest.mark.integration

# Level 1 at half of a 2 s response target, re-notified every second until acknowledged or
# answered; level 2 at the target, once.
RENOTIFY_POLICY = """
timezone: Asia/Jakarta
calendars: {always: {type: 24x7}}
ceiling: {calendar: always, after: 60d}
pauses: {max_per_ticket: 2, quick_repause_within: 1h}
routing: {calendar: always, within: 30s}
targets:
  - {name: quick, calendar: always, response: 2s, update: 600s, resolution: 600s}
escalation:
  - {clock: response, level: 1, at: 0.5, notify: [agency_head], renotify: 1s}
  - {clock: response, level: 2, at: 1.0, notify: [agency_head, inspektorat]}
"""
TICKETS = (("T-DLH", "DLH"), ("T-PDAM", "PDAM"), ("T-CTRL", "DLH"))


@dataclass
class Running:
    url: str
    http: httpx.AsyncClient
    supervisor: Caller
    head: Caller
    escalations: Any  # the app's EscalationDesk


@pytest.fixture
async def running(settings: Settings, accounts: Accounts, tmp_path: Path) -> AsyncIterator[Running]:
    policy = tmp_path / "renotify.yaml"
    policy.write_text(RENOTIFY_POLICY)
    settings = settings.model_copy(update={"sla_policy": policy})
    supervisor = await accounts.user("inspektorat", "supervisor")
    head = await accounts.user("kepala.dlh", "agency_head", "DLH")
    app = create_app(settings)
    async with serving(app, settings.sla_port) as url, httpx.AsyncClient(timeout=60) as http:
        await produce(settings.kafka_bootstrap_servers, Topics.ROUTED,
                      [routed(t, utc_now(), agency=a) for t, a in TICKETS])
        yield Running(url, http, supervisor, head, app.state.escalations)


async def listed(run: Running, caller: Caller, **params: Any) -> httpx.Response:
    return await run.http.get(f"{run.url}/v1/escalations", params=params, headers=caller.headers)


async def notices(run: Running, ticket_id: str, level: int = 1) -> list[dict[str, Any]]:
    page = (await listed(run, run.supervisor, limit=200)).json()["escalations"]
    return [e for e in page if e["ticket_id"] == ticket_id and e["level"] == level]


async def test_supervisor_lists_filters_pages_and_acknowledges(
        running: Running, settings: Settings, mongo: AsyncMongoClient[Document],
        accounts: Accounts) -> None:
    run = running

    async def renotified() -> bool:
        return all([len(await notices(run, t)) >= 2 for t, _ in TICKETS])

    assert await eventually(renotified, timeout=60)
    everything = (await listed(run, run.supervisor, limit=200)).json()["escalations"]
    fired = [e["fired_at"] for e in everything]
    assert fired == sorted(fired, reverse=True), "newest first"
    assert {e["agency"] for e in everything} == {"DLH", "PDAM"}
    assert {e["state"] for e in everything} == {"open"}

    own = (await listed(run, run.head, limit=200)).json()["escalations"]
    assert own and {e["agency"] for e in own} == {"DLH"}
    assert (await listed(run, run.head, agency="PDAM")).status_code == 403
    levels = (await listed(run, run.supervisor, level=2, limit=200)).json()["escalations"]
    assert levels and {e["level"] for e in levels} == {2}
    pdam = (await listed(run, run.supervisor, agency="PDAM", limit=200)).json()["escalations"]
    assert pdam and {e["ticket_id"] for e in pdam} == {"T-PDAM"}
    first = (await listed(run, run.supervisor, limit=2)).json()
    second = (await listed(run, run.supervisor, limit=2, offset=2)).json()
    assert len(first["escalations"]) == 2 and first["next_offset"] == 2
    assert not {e["escalation_id"] for e in first["escalations"]} & {
        e["escalation_id"] for e in second["escalations"]}
    assert (await listed(run, run.supervisor, limit=0)).status_code == 422

    target = (await notices(run, "T-DLH"))[-1]  # the first notice of the step
    ack_url = f"{run.url}/v1/escalations/{target['escalation_id']}/acknowledge"
    acked = await run.http.post(ack_url, headers={**run.supervisor.headers,
                                                  "X-Request-ID": "req-ack-1"})
    assert acked.status_code == 200, acked.text
    at_ack = len(await notices(run, "T-DLH"))
    ctrl_at_ack = len(await notices(run, "T-CTRL"))
    view = acked.json()
    assert view["state"] == "acknowledged"
    assert view["acknowledgement"]["by"] == "inspektorat (supervisor)"
    again = await run.http.post(ack_url, headers=run.supervisor.headers)
    other = await accounts.user("sekda", "supervisor")
    by_other = await run.http.post(ack_url, headers=other.headers)
    assert again.json()["acknowledgement"] == by_other.json()["acknowledgement"] == view["acknowledgement"]

    async def control_renotified_three_more() -> bool:
        return len(await notices(run, "T-CTRL")) >= ctrl_at_ack + 3

    assert await eventually(control_renotified_three_more, timeout=60)
    # At most one notice the scheduler had claimed before the acknowledgement, then none.
    assert len(await notices(run, "T-DLH")) <= at_ack + 1
    acknowledged = (await listed(run, run.supervisor, state="acknowledged", limit=200)).json()
    still_open = (await listed(run, run.supervisor, state="open", limit=200)).json()
    acked_ids = {e["escalation_id"] for e in acknowledged["escalations"]}
    assert target["escalation_id"] in acked_ids
    assert {e["ticket_id"] for e in acknowledged["escalations"]} == {"T-DLH"}
    assert not acked_ids & {e["escalation_id"] for e in still_open["escalations"]}
    assert "T-CTRL" in {e["ticket_id"] for e in still_open["escalations"]}
    # the level 2 notice of the same ticket is another step: still open
    assert any(e["ticket_id"] == "T-DLH" and e["level"] == 2 for e in still_open["escalations"])

    audit = AuditLog(mongo[settings.mongodb_database])
    entries = [e for e in await audit.latest(settings.tenant, limit=100, ticket_id="T-DLH")
               if e["action"] == "escalation_ack"]
    assert len(entries) == 1
    [entry] = entries
    assert entry["actor"] == {"name": "inspektorat", "role": "supervisor", "agency": None,
                              "kind": "person"}
    assert entry["request_id"] == "req-ack-1"
    assert entry["before"] == {"state": "open"}
    assert entry["after"]["state"] == "acknowledged"
    assert entry["after"]["escalation_id"] == target["escalation_id"]
    assert (await audit.verify(settings.tenant)).ok

    events = await read_topic(settings.kafka_bootstrap_servers, Topics.ESCALATION_ACKS,
                              expect=1, timeout=30, settle=2)
    assert len(events) == 1
    assert events[0]["type"] == "escalation.acknowledged"
    assert events[0]["data"]["escalation_id"] == target["escalation_id"]
    assert events[0]["data"]["acknowledged_by"] == "inspektorat (supervisor)"


async def test_unknown_and_other_tenants_escalations_are_refused(
        running: Running, accounts: Accounts) -> None:
    run = running
    unknown = await run.http.post(f"{run.url}/v1/escalations/T-NOPE:a1:response:1:0/acknowledge",
                                  headers=run.supervisor.headers)
    assert unknown.status_code == 404
    assert await eventually(lambda: notices(run, "T-DLH"), timeout=60)
    [target, *_] = await notices(run, "T-DLH")
    stranger = await accounts.user("lain.inspektorat", "supervisor", tenant="kota-lain")
    refused = await run.http.post(f"{run.url}/v1/escalations/{target['escalation_id']}/acknowledge",
                                  headers=stranger.headers)
    listing = await listed(run, stranger)
    assert (refused.status_code, listing.status_code) == (403, 403)
    assert (await listed(run, run.head, state="open")).status_code == 200


class StoreLostMidway(EscalationAcks):
    """The store connection drops once, after the acknowledgement is stored and the ticket
    written, before the step's notices are marked."""

    failed = False

    async def mark_escalations(self, ack: AckDoc) -> None:
        if not self.failed:
            self.failed = True
            raise AutoReconnect("connection lost (test)")
        await super().mark_escalations(ack)


async def test_an_acknowledgement_cut_short_by_the_store_is_completed_once(
        running: Running, settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    run = running
    desk = run.escalations
    desk.acks = StoreLostMidway(desk.acks.acks.database, desk.acks.escalations)
    assert await eventually(lambda: notices(run, "T-PDAM"), timeout=60)
    [target, *_] = await notices(run, "T-PDAM")
    ack_url = f"{run.url}/v1/escalations/{target['escalation_id']}/acknowledge"
    cut = await run.http.post(ack_url, headers=run.supervisor.headers)
    assert cut.status_code == 503 and cut.headers["retry-after"]

    async def completed_by_the_sweep() -> bool:
        page = (await listed(run, run.supervisor, state="acknowledged", limit=200)).json()
        return target["escalation_id"] in {e["escalation_id"] for e in page["escalations"]}

    assert await eventually(completed_by_the_sweep, timeout=60)
    retried = await run.http.post(ack_url, headers=run.supervisor.headers)
    assert retried.status_code == 200 and retried.json()["state"] == "acknowledged"
    audit = AuditLog(mongo[settings.mongodb_database])
    acks = [e for e in await audit.latest(settings.tenant, limit=100, ticket_id="T-PDAM")
            if e["action"] == "escalation_ack"]
    assert len(acks) == 1
    events = await read_topic(settings.kafka_bootstrap_servers, Topics.ESCALATION_ACKS,
                              expect=1, timeout=30, settle=2)
    assert [e["data"]["escalation_id"] for e in events] == [target["escalation_id"]]
    ticket = await mongo[settings.mongodb_database]["tickets"].find_one({"_id": "T-PDAM"})
    assert ticket is not None
    step = next(s for s in ticket["ladder"] if (s["clock"], s["level"]) == ("response", 1))
    assert step["acknowledged"]["escalation_id"] == target["escalation_id"]
