"""Places and duplicates through the running pipeline (intake, router, SLA on the real broker
and store): coordinates are placed in their kelurahan before routing; a second pothole report
30 m from an open one is linked to it (one ticket, two reports, no second clock), its citizen
follows the first ticket to its end, and the agency never sees who sent the second; a report
farther away, or of another category, is new work."""

from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.sla.duplicates import link, probe_of
from shared.contracts import Envelope, TicketRouted, Topics, utc_now
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.sla_support import routed_envelope, sla_instance
from tests.integration.support import eventually, read_topic
from tests.integration.test_privacy import pipeline

pytestmark = pytest.mark.integration

POTHOLE = "Aspal jalan di depan masjid berlubang dalam, motor sering jatuh, mohon segera ditambal"
RUBBISH = "Sampah menumpuk di pinggir jalan sudah seminggu tidak diangkut, baunya menyengat"
SAWAH_LEBAR = (-3.79578, 102.28232)
METRE = 1 / 111_320  # of latitude, in degrees
SECOND_REPORTER = {"name": "Yudi Hartono", "phone": "0812-7788-9900", "email": "yudi@example.id"}


def at(lat: float, lon: float, text: str, **extra: Any) -> dict[str, Any]:
    return {"channel": "web", "text": text, "location": {"lat": lat, "lon": lon}, **extra}


async def _json(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any] | None:
    response = await http.get(url, headers=headers)
    return response.json() if response.status_code == 200 else None


async def test_a_second_report_nearby_follows_the_first_ticket_and_is_counted(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts) -> None:
    web = await accounts.channel("web")
    pupr = await accounts.user("petugas.pupr", "officer", "PUPR")
    dlh = await accounts.user("petugas.dlh", "officer", "DLH")
    lat, lon = SAWAH_LEBAR
    async with pipeline(settings) as (intake, sla), httpx.AsyncClient(timeout=30) as http:
        async def submit(body: dict[str, Any]) -> str:
            response = await http.post(f"{intake}/v1/complaints", json=body, headers=web.headers)
            assert response.status_code == 202, response.text
            return str(response.json()["ticket_id"])

        async def ticket(ticket_id: str, who: Any = pupr) -> dict[str, Any] | None:
            return await _json(http, f"{sla}/v1/tickets/{ticket_id}", who.headers)

        first = await submit(at(lat, lon, POTHOLE))
        primary = await eventually(lambda: ticket(first), timeout=60)
        second_post = at(lat + 30 * METRE, lon, POTHOLE, reporter=SECOND_REPORTER)
        second = await submit(second_post)

        async def counted() -> dict[str, Any] | None:
            found = await ticket(first)
            return found if found and found.get("reports") == 2 else None

        primary = await eventually(counted, timeout=60)
        far = await submit(at(lat + 300 * METRE, lon, POTHOLE))
        rubbish = await submit(at(lat + 10 * METRE, lon, RUBBISH))
        far_ticket = await eventually(lambda: ticket(far), timeout=60)
        rubbish_ticket = await eventually(lambda: ticket(rubbish, dlh), timeout=60)

        second_url = f"{intake}/v1/complaints/{second}"

        async def following(status: str) -> dict[str, Any] | None:
            view = await _json(http, second_url, {})
            return view if view and view["status"] == status and view.get("duplicate_of") else None

        linked_view = await eventually(lambda: following("assigned"), timeout=60)
        inbox = (await http.get(f"{sla}/v1/tickets", headers=pupr.headers)).json()
        as_second = await http.get(f"{sla}/v1/tickets/{second}", headers=pupr.headers)
        update_second = await http.post(f"{sla}/v1/tickets/{second}/events", headers=pupr.headers,
                                        json={"action": "acknowledged"})
        done = await http.post(f"{sla}/v1/tickets/{first}/events", headers=pupr.headers,
                               json={"action": "resolved", "note": "Sudah ditambal"})
        assert done.status_code == 200, done.text
        closed_view = await eventually(lambda: following("resolved"), timeout=60)
        db = mongo[settings.mongodb_database]
        [link] = await db["duplicates"].find().to_list(None)
        second_tickets = await db["tickets"].count_documents({"_id": second})
        second_escalations = await db["escalations"].count_documents({"ticket_id": second})
        # Read after everything settled: a wrong assignment of the second would be there by now.
        queue = await read_topic(settings.kafka_bootstrap_servers, Topics.agency("PUPR"), expect=3,
                                 timeout=20)

    # Placed from coordinates before routing, and said so.
    assert primary["location"]["kelurahan"] == "Sawah Lebar"
    assert primary["location"]["kecamatan"] == "Ratu Agung"
    assert primary["routing"]["place"]["source"] == "coordinates"
    assert "kelurahan Sawah Lebar (Ratu Agung) from coordinates" in primary["routing"]["reason"]
    # One ticket, two reports; the second has no ticket, no clock and no escalation of its own.
    assert primary["agency"] == "PUPR" and primary["category"] == "Jalan rusak"
    assert [d["ticket_id"] for d in primary["duplicates"]] == [second]
    assert 29 <= primary["duplicates"][0]["metres"] <= 31
    assert (second_tickets, second_escalations, as_second.status_code) == (0, 0, 404)
    assert update_second.status_code == 404
    row = next(t for t in inbox["tickets"] if t["ticket_id"] == first)
    assert row["reports"] == 2
    assert all(t["ticket_id"] != second for t in inbox["tickets"])
    # The second's reporter never reaches the agency's view of the ticket.
    for secret in ("Yudi", "7788", "yudi@example.id"):
        assert secret not in str(primary) and secret not in str(inbox) and secret not in str(queue)
    # The agency's queue: the new work, each once; never the duplicate.
    assert sorted(e["ticket_id"] for e in queue) == sorted([first, far])
    assert {e["type"] for e in queue} == {"ticket.assigned"}
    # The link explains itself: which ticket, how far.
    assert link["primary"] == first and link["reason"].startswith(f"duplicate of {first}: 30 m")
    # Its citizen follows the first ticket, to its end.
    assert linked_view["duplicate_of"] == first and linked_view["agency"] == "PUPR"
    assert closed_view["status"] == "resolved"
    # Farther than 50 m, or another category: new work.
    assert far_ticket is not None and far_ticket.get("reports") is None
    assert rubbish_ticket is not None and rubbish_ticket["agency"] == "DLH"
    assert rubbish_ticket.get("reports") is None


async def test_a_report_redelivered_or_cut_short_by_a_crash_is_linked_and_counted_once(
        settings: Settings, mongo: AsyncMongoClient[Document]) -> None:
    """Delivery is at least once, and a crash may fall between storing the link and counting
    it on the primary: reading the decisions again links and counts each report once."""
    window = {"duplicates": {"metres": 50, "hours": 72}}
    lat, lon = SAWAH_LEBAR
    now = utc_now()

    def report(ticket_id: str, metres: float) -> Envelope[TicketRouted]:
        return routed_envelope(ticket_id, now, location={"lat": lat + metres * METRE, "lon": lon},
                               **window)

    first, second, third = report("BKL-A", 0), report("BKL-B", 20), report("BKL-C", 40)
    db = mongo[settings.mongodb_database]
    async with sla_instance(settings, mongo) as sla:
        await sla.open_tickets([first])
        await sla.open_tickets([second])
        probe = probe_of("kota-bengkulu", third.data)
        assert probe is not None
        stored_first = await sla.store.get("BKL-A")
        assert stored_first is not None
        # as if the process died right after storing the third's link
        await sla.store.duplicates.add(link("BKL-C", probe, stored_first, 40.0, now))
        await sla.open_tickets([third])
        await sla.open_tickets([second, third])  # redelivered after a restart
        primary = await sla.store.get("BKL-A")
        changes = {d["_id"]: d for d in await db["changes"].find().to_list(None)}

    assert primary is not None and primary["reports"] == 3
    assert [d["ticket_id"] for d in primary["duplicates"]] == ["BKL-B", "BKL-C"]
    assert await db["tickets"].count_documents({}) == 1
    assert await db["duplicates"].count_documents({}) == 2
    # both citizens' tracking views follow the primary's state
    for duplicate in ("BKL-B", "BKL-C"):
        event = changes[duplicate]["event"]
        assert event["data"]["duplicate_of"] == "BKL-A"
        assert event["data"]["version"] == primary["version"]
