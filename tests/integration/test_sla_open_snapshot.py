"""The report read model's open tickets' snapshot and the open-ticket gauges it feeds, on the
embedded store, driven by the SLA flow: after ticket changes (opened, responded, paused,
resolved, re-assigned), after the SLA process dies right after a ticket write, and after a
write whose stamp the reads of changes cannot see (healed by the periodic rebuild), the report
equals the full computation over every ticket and the gauges equal a full read."""

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.sla.inbox import inbox_entry
from services.sla.metrics import count_open, open_ticket_counts
from services.sla.read_model_store import CatchUp, OpenSnapshot, ReportCounters
from services.sla.report_store import ensure_report_indexes
from services.sla.reports import ComplianceZones, compliance_report
from services.sla.reports_api import report_period
from services.sla.timing import report_epochs
from shared.contracts import TicketUpdate, UpdateAction, utc_now
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.sla_support import routed_envelope, sla_instance
from tests.integration.test_sla_read_model import GROUPINGS, same_figures
from tests.integration.test_sla_reports import TIMEZONE, ticket

pytestmark = pytest.mark.integration
TENANT = "kota-bengkulu"


def snapshot_model(db: AsyncDatabase[Document]) -> ReportCounters:
    """The read model as app.py wires it: counters and the open tickets' snapshot."""
    return ReportCounters(db, lambda tenant: TIMEZONE, home_tenant=TENANT,
                          open_tickets=OpenSnapshot(db["tickets"], db["inbox"]))


class KilledAfterTheTicketWrite(ReportCounters):
    """The SLA process killed right after a ticket write, before the resolved ticket is
    counted: the task ends there (a kill is not an error any handler sees)."""

    async def count_tickets(self, tickets: Sequence[Document]) -> int:
        raise asyncio.CancelledError


async def assert_agrees_with_every_ticket(db: AsyncDatabase[Document],
                                          model: ReportCounters) -> None:
    """Each grouping's report of the last 30 days equals the full computation over every
    ticket; the gauges counted from the snapshot equal those of a full read."""
    now = utc_now()
    tickets = await db["tickets"].find({}).to_list(None)
    period = report_period(None, None, timezone=TIMEZONE,
                           today=now.astimezone(ZoneInfo(TIMEZONE)).date())
    zones = ComplianceZones()
    for by in GROUPINGS:
        report = await model.report(db["tickets"], tenant=TENANT, period=period, now=now, by=by,
                                    timezone=TIMEZONE, zones=zones)
        reference = compliance_report(tickets, [], period=period, now=now, by=by, zones=zones)
        same_figures(report, reference, by)
    docs = await model.open_documents()
    assert docs is not None
    assert count_open(docs, [TENANT], now) == await open_ticket_counts(db["tickets"], [TENANT], now)


def update(action: UpdateAction, **fields: str) -> TicketUpdate:
    return TicketUpdate(action=action, actor="petugas DLH", **fields)


async def test_the_snapshot_and_gauges_follow_ticket_changes_and_a_killed_process(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    db = mongo[settings.mongodb_database]
    await ensure_report_indexes(db["tickets"], db["escalations"])
    now = utc_now()
    async with sla_instance(settings, mongo) as sla:
        sla.report_counters = model = snapshot_model(db)
        await model.ensure_indexes()
        # Long ago (their clocks ran out: overdue) and just now (on time), two agencies.
        await sla.open_tickets([
            routed_envelope(f"T-S{n}", now - timedelta(days=n % 3), agency=("DLH", "PUPR")[n % 2])
            for n in range(8)])
        await model.refresh_open()  # the first read: every open ticket
        await assert_agrees_with_every_ticket(db, model)
        await sla.apply("T-S0", update(UpdateAction.RESOLVED, note="Sudah diangkut"), "u-0",
                        tenant=TENANT)
        await sla.apply("T-S1", update(UpdateAction.NEEDS_INFO, note="Di mana tepatnya?"), "u-1",
                        tenant=TENANT)
        await sla.apply("T-S2", update(UpdateAction.RESPONDED, note="Kami tangani"), "u-2",
                        tenant=TENANT)
        await sla.apply("T-S3", update(UpdateAction.REJECTED, reason="Bukan wewenang kami",
                                       suggested_agency="DISHUB"), "u-3", tenant=TENANT)
        await sla.open_tickets([routed_envelope("T-S9", utc_now(), agency="DISHUB")])
        await assert_agrees_with_every_ticket(db, model)  # read from the changes alone
        sla.report_counters = KilledAfterTheTicketWrite(
            db, lambda tenant: TIMEZONE, home_tenant=TENANT, open_tickets=model.open_tickets)
        with pytest.raises(asyncio.CancelledError):
            await sla.apply("T-S4", update(UpdateAction.RESOLVED, note="Selesai"), "u-4",
                            tenant=TENANT)
    stored = await db["tickets"].find_one({"_id": "T-S4"})
    assert stored is not None and stored["status"] == "resolved"  # written, then the kill
    # A new process, its own client: the start-up catch-up counts what the kill left
    # uncounted, the snapshot reads every open ticket: both agree with the tickets again.
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    try:
        again = snapshot_model(client[db.name])
        catch_up = CatchUp(again, client[db.name]["tickets"], client[db.name]["escalations"],
                           window_seconds=3600)
        await catch_up.run()
        await assert_agrees_with_every_ticket(client[db.name], again)
    finally:
        await client.close()


async def test_a_change_the_reads_of_changes_miss_is_healed_by_the_rebuild(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    """A ticket opened and one resolved, each written with a stamp older than the last read
    (a transaction that committed long after it stamped the ticket): the reads of changes
    cannot see them; the periodic full read (from the inbox) does."""
    db = mongo[settings.mongodb_database]
    await ensure_report_indexes(db["tickets"], db["escalations"])
    model = snapshot_model(db)
    await model.ensure_indexes()
    opened = [ticket(f"T-R{n}", utc_now() - timedelta(hours=n), agency="DLH", tenant=TENANT)
              for n in range(3)]
    await db["tickets"].insert_many([{**t, **report_epochs(t), "changed_epoch": 0.0}
                                     for t in opened])
    await db["inbox"].insert_many([dict(inbox_entry(t) or {}) for t in opened])
    await model.refresh_open()
    await assert_agrees_with_every_ticket(db, model)
    late = ticket("T-R-late", utc_now(), agency="PUPR", tenant=TENANT)
    await db["tickets"].insert_one({**late, **report_epochs(late), "changed_epoch": 0.0})
    await db["inbox"].insert_one(dict(inbox_entry(late) or {}))
    # And one resolved the same way (its inbox entry gone with it, as the store does).
    resolved = {**opened[0], "status": "resolved", "resolved_at": utc_now(),
                "resolution_met": True, "first_response_at": utc_now(), "response_met": True,
                "response_working_seconds": 60.0}
    await db["tickets"].replace_one({"_id": "T-R0"}, {**resolved, **report_epochs(resolved),
                                                      "changed_epoch": 0.0})
    await db["inbox"].delete_one({"_id": "T-R0"})
    await model.count_tickets([resolved])
    await model.refresh_open(rebuild_after=3600)  # not due: a read of changes only
    docs = await model.open_documents()
    assert docs is not None and "T-R-late" not in {d["_id"] for d in docs}
    assert "T-R0" in {d["_id"] for d in docs}
    await model.refresh_open(rebuild_after=0)  # due: every open ticket again
    await assert_agrees_with_every_ticket(db, model)

