"""Priority signals read through routing phrases: a routing phrase that contains a signal's
word ("membawa parang", "pingsan setelah makan") still tells the emergency; a signal-blind
phrase of the lexicon ("korban kebakaran": a fire being followed up) does not."""

from pathlib import Path

from services.router.domain import route
from services.router.rulebook import load_rulebook
from shared.contracts import Priority

ROOT = Path(__file__).resolve().parents[2]
RULEBOOK = load_rulebook(ROOT / "services" / "router" / "rulebooks" / "kota-bengkulu.yaml")


def test_a_weapon_inside_a_routing_phrase_is_still_urgent() -> None:
    decision = route(RULEBOOK, "Dua pemuda membawa parang ribut di simpang dekat rumah saya, "
                               "satu sudah luka.")
    assert decision.agency.code == "EXT_POLRI"
    assert decision.priority is Priority.URGENT


def test_a_faint_inside_a_routing_phrase_is_still_urgent() -> None:
    decision = route(RULEBOOK, "Belasan murid SD pingsan setelah makan nasi kotak dari katering.")
    assert decision.agency.code == "DINKES"
    assert decision.priority is Priority.URGENT


def test_a_fire_being_followed_up_is_not_urgent() -> None:
    decision = route(RULEBOOK, "Korban kebakaran di Kampung Bali sudah seminggu tinggal di tenda "
                               "tapi bantuan dari dinas sosial belum datang.")
    assert decision.agency.code == "DINSOS"
    assert decision.priority is not Priority.URGENT


def test_a_child_not_home_since_yesterday_is_urgent_for_the_police() -> None:
    decision = route(RULEBOOK, "anak sy belum pulang dari kemarin sore, hp nya tidak aktif, "
                               "teman2nya tidak tau")
    assert decision.agency.code == "EXT_POLRI"
    assert decision.priority is Priority.URGENT


def test_stroke_signs_at_home_go_urgently_to_the_health_office() -> None:
    decision = route(RULEBOOK, "ibu saya tiba2 jatuh di kamar mandi, mulutnya mencong dan tangan "
                               "kirinya tidak bisa digerakkan")
    assert decision.agency.code == "DINKES"
    assert decision.priority is Priority.URGENT


def test_a_cat_down_a_well_is_a_rescue_but_not_urgent() -> None:
    decision = route(RULEBOOK, "Kucing kami jatuh ke sumur tua sejak tadi pagi, warga tidak berani "
                               "turun. Mohon bantuan tim penyelamat.")
    assert decision.agency.code == "DAMKAR"
    assert decision.priority is not Priority.URGENT
