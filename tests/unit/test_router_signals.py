"""Priority signals read through routing phrases: a routing phrase that contains a signal's
word ("membawa parang", "pingsan setelah makan") still tells the emergency; a signal-blind
phrase of the lexicon ("korban kebakaran": a fire being followed up) does not."""

from pathlib import Path

import pytest

from services.router.domain import route
from services.router.rulebook import load_rulebook
from shared.contracts import Priority

ROOT = Path(__file__).resolve().parents[2]
RULEBOOK = load_rulebook(ROOT / "services" / "router" / "rulebooks" / "kota-bengkulu.yaml")

# (complaint, agency, urgent?)
CASES = {
    "a weapon inside a routing phrase is still urgent": (
        "Dua pemuda membawa parang ribut di simpang dekat rumah saya, satu sudah luka.",
        "EXT_POLRI", True),
    "a faint inside a routing phrase is still urgent": (
        "Belasan murid SD pingsan setelah makan nasi kotak dari katering.", "DINKES", True),
    "a fire being followed up is not urgent": (
        "Korban kebakaran di Kampung Bali sudah seminggu tinggal di tenda tapi bantuan dari dinas "
        "sosial belum datang.", "DINSOS", False),
    "a child not home since yesterday is urgent for the police": (
        "anak sy belum pulang dari kemarin sore, hp nya tidak aktif, teman2nya tidak tau",
        "EXT_POLRI", True),
    "stroke signs at home go urgently to the health office": (
        "ibu saya tiba2 jatuh di kamar mandi, mulutnya mencong dan tangan kirinya tidak bisa "
        "digerakkan", "DINKES", True),
    "a cat down a well is a rescue but not urgent": (
        "Kucing kami jatuh ke sumur tua sejak tadi pagi, warga tidak berani turun. Mohon bantuan "
        "tim penyelamat.", "DAMKAR", False),
}


@pytest.mark.parametrize(("text", "agency", "urgent"), CASES.values(), ids=CASES.keys())
def test_signals_through_routing_phrases(text: str, agency: str, urgent: bool) -> None:
    decision = route(RULEBOOK, text)
    assert decision.agency.code == agency
    assert (decision.priority is Priority.URGENT) is urgent
