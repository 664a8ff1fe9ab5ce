"""``GET /v1/tickets``: the agency's open tickets, due first, filtered and paged, against the
SLA service on a real port (tickets opened from routing decisions on the broker)."""

from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.sla.app import create_app as sla_app
from shared.contracts import Topics, utc_now
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.sla_support import routed
from tests.integration.support import eventually, produce, serving

pytestmark = pytest.mark.integration


async def test_the_inbox_lists_the_agencys_open_tickets_due_first_filtered_and_paged(
        settings: Settings, accounts: Accounts) -> None:
    now = utc_now()
    # Submitted at different times: the older a ticket, the sooner its clocks are due.
    tickets: list[tuple[str | None, bytes]] = [routed("T-DLH-NEW", now, agency="DLH"),
               routed("T-DLH-OLD", now - timedelta(days=3), agency="DLH",
                      location={"kelurahan": "Padang Jati"}),
               routed("T-DLH-MID", now - timedelta(days=1), agency="DLH",
                      text="Truk sampah tidak datang ke Jl. Hibrida", category="Sampah"),
               routed("T-PDAM", now - timedelta(days=5), agency="PDAM", category="Air")]
    officer = await accounts.user("dlh.andi", "officer", "DLH")
    supervisor = await accounts.user("inspektorat", "supervisor")
    async with serving(sla_app(settings), settings.sla_port) as sla, \
            httpx.AsyncClient(base_url=sla, timeout=30, headers=officer.headers) as http:
        await produce(settings.kafka_bootstrap_servers, Topics.ROUTED, tickets)

        async def listed() -> list[str]:
            answer = await http.get("/v1/tickets")
            assert answer.status_code == 200, answer.text
            return [t["ticket_id"] for t in answer.json()["tickets"]]

        assert await eventually(lambda: _len_is(listed, 3))
        assert await listed() == ["T-DLH-OLD", "T-DLH-MID", "T-DLH-NEW"]  # never PDAM's
        first = (await http.get("/v1/tickets", params={"per_page": 2, "page": 2})).json()
        assert (first["total"], [t["ticket_id"] for t in first["tickets"]]) == (3, ["T-DLH-NEW"])
        row = first["tickets"][0]
        assert "reporter" not in row and row["due_next_at"] and row["due_soon_at"]
        found = (await http.get("/v1/tickets", params={"per_page": 1})).json()["tickets"]
        assert found[0]["location"]["kelurahan"] == "Padang Jati"
        found = (await http.get("/v1/tickets", params={"q": "hibrida"})).json()["tickets"]
        assert [t["ticket_id"] for t in found] == ["T-DLH-MID"]
        found = (await http.get("/v1/tickets", params={"kelurahan": "Padang Jati"})).json()["tickets"]
        assert [t["ticket_id"] for t in found] == ["T-DLH-OLD"]
        acted = await http.post("/v1/tickets/T-DLH-NEW/events", json={"action": "needs_info",
                                                                       "note": "Alamat lengkap?"})
        assert acted.status_code == 200, acted.text
        paused = (await http.get("/v1/tickets", params={"due": "paused"})).json()["tickets"]
        assert [t["ticket_id"] for t in paused] == ["T-DLH-NEW"]
        running = (await http.get("/v1/tickets", params={"due": "on_time"})).json()["tickets"]
        assert "T-DLH-NEW" not in [t["ticket_id"] for t in running]
        everyone = await http.get("/v1/tickets", headers=supervisor.headers,
                                  params={"agency": "PDAM"})
        assert [t["ticket_id"] for t in everyone.json()["tickets"]] == ["T-PDAM"]
        asked_other = await http.get("/v1/tickets", params={"agency": "PDAM"})
        assert "T-PDAM" not in [t["ticket_id"] for t in asked_other.json()["tickets"]]
        bad = await http.get("/v1/tickets", params={"due": "soonish"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.due"


async def _len_is(listed: object, n: int) -> bool:
    assert callable(listed)
    return len(await listed()) == n


async def test_the_triage_queue_rows_carry_the_candidates_and_the_rejection_history(
        settings: Settings, accounts: Accounts) -> None:
    now = utc_now()
    candidates = [{"agency": "DLH", "score": 1.2, "rule_ids": ["dlh.sampah"]},
                  {"agency": "PUPR", "score": 1.1, "rule_ids": ["pupr.drainase"]}]
    weak = {"rulebook_version": "test", "matched_terms": [], "score": 1.2, "confidence": 0.1,
            "candidates": candidates, "reason": "too close to call: the complaint desk decides"}
    officer = await accounts.user("dlh.andi", "officer", "DLH")
    triage = await accounts.user("meja.triase", "triage")
    async with serving(sla_app(settings), settings.sla_port) as sla, \
            httpx.AsyncClient(base_url=sla, timeout=30) as http:
        await produce(settings.kafka_bootstrap_servers, Topics.ROUTED, [
            routed("T-CLOSE", now, agency="TRIAGE", routing=weak, category=None),
            routed("T-BOUNCE", now - timedelta(hours=1), agency="DLH")])

        async def opened(ticket_id: str, headers: dict[str, str]) -> bool:
            answer = await http.get(f"/v1/tickets/{ticket_id}", headers=headers)
            return answer.status_code == 200
        assert await eventually(lambda: opened("T-BOUNCE", officer.headers))
        rejected = await http.post("/v1/tickets/T-BOUNCE/events", headers=officer.headers, json={
            "action": "rejected", "reason": "Saluran dikelola PUPR", "suggested_agency": "PUPR"})
        assert rejected.status_code == 200, rejected.text
        # The router (not running here) sends it to the triage desk after the rejection.
        await produce(settings.kafka_bootstrap_servers, Topics.ROUTED, [
            routed("T-BOUNCE", now - timedelta(hours=1), agency="TRIAGE", assignment=2,
                   rejected_by=["DLH"], category=None)])

        async def queue() -> dict[str, dict[str, Any]]:
            answer = await http.get("/v1/tickets", headers=triage.headers)
            assert answer.status_code == 200, answer.text
            return {t["ticket_id"]: t for t in answer.json()["tickets"]}
        assert await eventually(lambda: _has(queue, {"T-CLOSE", "T-BOUNCE"}))
        rows = await queue()
        assert rows["T-CLOSE"]["routing"]["candidates"] == candidates
        assert rows["T-CLOSE"]["rejections"] == [] and "history" not in rows["T-CLOSE"]
        [rejection] = rows["T-BOUNCE"]["rejections"]
        assert (rejection["agency"], rejection["reason"], rejection["suggested_agency"]) == (
            "DLH", "Saluran dikelola PUPR", "PUPR")
        assert rejection["actor"].startswith("dlh.andi") and rows["T-BOUNCE"]["rejected_by"] == ["DLH"]
        # An agency's inbox stays small: no routing, history or rejections on its rows.
        await produce(settings.kafka_bootstrap_servers, Topics.ROUTED,
                      [routed("T-DLH", now, agency="DLH")])
        assert await eventually(lambda: opened("T-DLH", officer.headers))
        [row] = (await http.get("/v1/tickets", headers=officer.headers)).json()["tickets"]
        assert not {"routing", "history", "rejections"} & set(row)


async def _has(queue: object, wanted: set[str]) -> bool:
    assert callable(queue)
    return wanted <= set(await queue())


async def test_a_large_inbox_is_counted_up_to_the_cap_and_its_last_page_exactly(
        settings: Settings, accounts: Accounts) -> None:
    capped = settings.model_copy(update={"inbox_count_cap": 2})
    officer = await accounts.user("dlh.andi", "officer", "DLH")
    tickets: list[tuple[str | None, bytes]] = [
        routed(f"T-{i}", utc_now() - timedelta(hours=i), agency="DLH") for i in range(3)]
    async with serving(sla_app(capped), capped.sla_port) as sla, \
            httpx.AsyncClient(base_url=sla, timeout=30, headers=officer.headers) as http:
        await produce(capped.kafka_bootstrap_servers, Topics.ROUTED, tickets)

        async def listed() -> list[str]:
            answer = await http.get("/v1/tickets", params={"per_page": 5})
            return [t["ticket_id"] for t in answer.json()["tickets"]]

        assert await eventually(lambda: _len_is(listed, 3))
        first = (await http.get("/v1/tickets", params={"per_page": 1})).json()
        assert (first["total"], first["total_capped"], len(first["tickets"])) == (2, True, 1)
        last = (await http.get("/v1/tickets", params={"per_page": 2, "page": 2})).json()
        assert (last["total"], last["total_capped"], len(last["tickets"])) == (3, False, 1)
        beyond = (await http.get("/v1/tickets", params={"per_page": 2, "page": 9})).json()
        assert (beyond["total"], beyond["total_capped"], beyond["tickets"]) == (2, True, [])
        few = (await http.get("/v1/tickets", params={"per_page": 1, "q": "nothing like it"})).json()
        assert (few["total"], few["total_capped"]) == (0, False)
