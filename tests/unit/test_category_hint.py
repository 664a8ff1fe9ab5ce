"""The category a citizen picked on the channel (an Open311 service, a LAPOR! category) weighs
in routing: alone it decides, against a text that says otherwise it is one voice among them."""

from typing import Any

from services.intake.georeport import Service, submission_of
from services.router.domain import route
from services.router.rulebook import Rulebook


def rulebook(**thresholds: float) -> Rulebook:
    def agency(code: str, category: str, phrase: str) -> dict[str, Any]:
        return {"code": code, "name": f"Agency {code}", "authority": "kota",
                "rules": [{"id": f"{code.lower()}.1", "category": category, "any": [phrase]}]}
    return Rulebook.model_validate({
        "tenant": "test", "version": "v1", "thresholds": {"min_score": 0.6, "min_margin": 0.1,
                                                          **thresholds},
        "agencies": [agency("DLH", "Sampah", "sampah"), agency("PUPR", "Jalan rusak", "aspal"),
                     {"code": "TRIAGE", "name": "Meja", "authority": "internal"}]})


TEXT = "Sudah dua minggu tidak ada yang datang, mohon segera ditangani petugas"


def test_without_a_hint_a_vague_text_goes_to_the_desk_and_with_one_to_the_category() -> None:
    assert route(rulebook(), TEXT).agency.code == "TRIAGE"
    by_name = route(rulebook(), TEXT, category="Jalan rusak")
    by_code = route(rulebook(), TEXT, category="jalan-rusak")
    assert by_name.agency.code == by_code.agency.code == "PUPR"
    assert by_name.category == "Jalan rusak"
    assert by_name.explanation.rule_ids == ["category:jalan-rusak"]
    assert by_name.explanation.reason.startswith("PUPR by the channel's category jalan-rusak")


def test_a_text_that_says_otherwise_is_not_overruled_and_unknown_hints_are_ignored() -> None:
    text = "Tumpukan sampah di depan pasar belum diangkut " + TEXT
    assert route(rulebook(), text, category="Jalan rusak").agency.code == "TRIAGE", "too close"
    assert route(rulebook(), text, category="Tidak ada").agency.code == "DLH"
    assert route(rulebook(category_hint_weight=0), TEXT, category="Jalan rusak").agency.code \
        == "TRIAGE"


def test_open311_passes_the_posted_service_as_the_category() -> None:
    service = Service(service_code="jalan-rusak", service_name="Jalan rusak", group="PUPR",
                      agencies=("PUPR",))
    submission = submission_of({"description": TEXT, "lat": "-3.79", "long": "102.26"}, service)
    assert submission.category == "Jalan rusak"
