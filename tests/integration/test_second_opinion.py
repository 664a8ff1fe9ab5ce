"""The router's second opinion on real servers: trained at start from a labelled set, it
settles a close call the rules sent to TRIAGE when it agrees with their first candidate, flags
a confident decision it strongly disputes for the desk, and says both in the routed event; an
edited training file is trained on again."""

import json
from pathlib import Path

import httpx
import pytest

from services.router.app import create_app
from shared.contracts import Topics
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.support import eventually, produce, read_topic, serving

pytestmark = pytest.mark.integration

RULEBOOK = """
tenant: kota-bengkulu
fallback: TRIAGE
thresholds: {min_margin: 0.4}
agencies:
  - {code: TRIAGE, name: Meja Pengaduan, authority: internal}
  - code: DLH
    name: Dinas Lingkungan Hidup
    authority: kota
    rules: [{id: dlh.sampah, any: [sampah, tps], category: Sampah}]
  - code: PERKIM
    name: Dinas Perumahan dan Kawasan Permukiman
    authority: kota
    rules: [{id: perkim.taman, any: [taman kota, lampu taman], category: Taman}]
"""
TRAINING = [
    ("Sampah rumah tangga di TPS tidak diangkut", "DLH"), ("Truk sampah tidak datang ke TPS", "DLH"),
    ("Bau sampah dari TPS dekat pasar", "DLH"), ("Sampah dibuang ke sungai oleh warga", "DLH"),
    ("Tumpukan sampah di pinggir jalan raya", "DLH"), ("Sampah plastik menumpuk di selokan", "DLH"),
    ("Lampu taman kota mati semua", "PERKIM"), ("Bangku taman kota rusak dan patah", "PERKIM"),
    ("Rumput taman kota tinggi tidak dipangkas", "PERKIM"),
    ("Daun kering berserakan di taman kota, petugas taman tidak menyapu", "PERKIM"),
    ("Air mancur taman kota tidak menyala", "PERKIM"),
    ("Daun kering dan ranting di taman tidak disapu petugas taman", "PERKIM"),
]
CLOSE_CALL = "Sampah di taman kota tidak disapu petugas taman"  # PERKIM just ahead of DLH
DISPUTED = "Daun kering dan sampah ranting di taman tidak disapu petugas taman"  # rules: DLH
AGREED = "Sampah di TPS belum diangkut"


def received(ticket_id: str, text: str) -> bytes:
    data = {"ticket_id": ticket_id, "channel": "web", "text": text,
            "submitted_at": "2026-11-30T03:00:00Z"}
    return json.dumps({"id": f"evt-{ticket_id}", "type": "complaint.received",
                       "tenant": "kota-bengkulu", "ticket_id": ticket_id, "data": data}).encode()


async def test_the_second_opinion_settles_a_close_call_and_flags_a_dispute(
        settings: Settings, accounts: Accounts, tmp_path: Path) -> None:
    rulebook, training = tmp_path / "rulebook.yaml", tmp_path / "routing-dev.jsonl"
    rulebook.write_text(RULEBOOK)
    training.write_text("".join(json.dumps({"text": t, "agency": a}) + "\n" for t, a in TRAINING))
    settings = settings.model_copy(update={
        "rulebook": rulebook, "second_opinion_training": [training],
        "second_opinion_agree_probability": 0.5, "second_opinion_dispute_probability": 0.8,
        "second_opinion_confident": 0.3, "second_opinion_certain": 1.0,
        "second_opinion_refresh_seconds": 0.5})
    desk = await accounts.user("meja.triase", "triage")
    async with serving(create_app(settings), settings.router_port) as url, \
            httpx.AsyncClient(base_url=url, headers=desk.headers, timeout=30) as http:
        async def trained() -> dict[str, object] | None:
            model: dict[str, object] | None = (await http.get("/v1/rulebook")).json()["second_opinion"]
            return model
        model = await eventually(trained, timeout=120)
        assert model["examples"] == len(TRAINING)
        await produce(settings.kafka_bootstrap_servers, Topics.RECEIVED, [
            ("T-close", received("T-close", CLOSE_CALL)),
            ("T-disputed", received("T-disputed", DISPUTED)),
            ("T-agreed", received("T-agreed", AGREED))])
        events = await read_topic(settings.kafka_bootstrap_servers, Topics.ROUTED, expect=3, timeout=60)

        # An edited training file is noticed (no new desk example needed) and trained on.
        training.write_text(training.read_text() + json.dumps(
            {"text": "Kontainer sampah di TPS pasar penuh", "agency": "DLH"}) + "\n")

        async def retrained() -> dict[str, object] | None:
            now: dict[str, object] = (await http.get("/v1/rulebook")).json()["second_opinion"]
            return now if now["model_version"] != model["model_version"] else None
        assert (await eventually(retrained, timeout=120))["examples"] == len(TRAINING) + 1
    routed = {e["ticket_id"]: e["data"] for e in events}

    close = routed["T-close"]
    assert (close["agency"], close["category"]) == ("PERKIM", "Taman")
    opinion = close["routing"]["second_opinion"]
    assert opinion["verdict"] == "decided" and opinion["agency"] == "PERKIM"
    assert opinion["probability"] >= 0.5 and opinion["model_version"] == model["model_version"]
    assert "the rules were unsure (too close to call" in close["routing"]["reason"]

    disputed = routed["T-disputed"]
    assert disputed["agency"] == "DLH"  # the rules decide; the desk is told
    flag = disputed["routing"]["second_opinion"]
    assert flag["review"] is True and flag["verdict"] == "disputes" and flag["agency"] == "PERKIM"
    assert "for the desk to review" in disputed["routing"]["reason"]

    agreed = routed["T-agreed"]["routing"]["second_opinion"]
    assert agreed["verdict"] == "agrees" and agreed["review"] is False
