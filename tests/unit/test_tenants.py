"""The tenant registry: the default single tenant, a registry file, its refusals, queue names
and the one link between tenants."""

from pathlib import Path

import pytest

from services.sla.links import progress_of
from shared.contracts import UpdateAction
from shared.settings import Settings
from shared.tenants import UnknownTenant, load_tenants, read_tenants

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_registry_the_settings_make_the_one_tenant() -> None:
    settings = Settings(tenant="kota-bengkulu", ticket_prefix="BKL")
    tenants = load_tenants(settings)
    assert tenants.ids == {"kota-bengkulu"}
    only = tenants.get("kota-bengkulu")
    assert (only.rulebook, only.policy, only.ticket_prefix) == (settings.rulebook,
                                                               settings.sla_policy, "BKL")
    assert tenants.agency_topic("kota-bengkulu", "DLH") == "disposisi.agency.DLH"
    assert tenants.province_of("kota-bengkulu") is None
    with pytest.raises(UnknownTenant, match="kota-lain"):
        tenants.get("kota-lain")


def test_the_example_registry_holds_the_city_and_its_province() -> None:
    tenants = read_tenants(ROOT / "examples" / "tenants-bengkulu.yaml", home="kota-bengkulu")
    city, province = tenants.get("kota-bengkulu"), tenants.get("provinsi-bengkulu")
    assert city.rulebook.is_file() and province.policy.is_file()  # relative to the file
    assert tenants.province_of("kota-bengkulu") == province
    assert tenants.forwards_from("provinsi-bengkulu", "kota-bengkulu")
    assert not tenants.forwards_from("kota-bengkulu", "provinsi-bengkulu")
    # The home tenant keeps its queue names; another tenant's are named by it.
    assert tenants.agency_topic("kota-bengkulu", "DLH") == "disposisi.agency.DLH"
    assert tenants.agency_topic("provinsi-bengkulu", "DLH") == "disposisi.agency.provinsi-bengkulu.DLH"


@pytest.mark.parametrize(("content", "home", "problem"), [
    ("tenants: {}\n", "a", "tenants"),
    ("tenants:\n  Kota_X: {name: X, rulebook: r, policy: p, ticket_prefix: KX}\n", "Kota_X", "id"),
    ("tenants:\n  kota-a: {name: A, rulebook: r, policy: p, ticket_prefix: KA}\n", "kota-b",
     "home tenant 'kota-b'"),
    ("tenants:\n  kota-a: {name: A, rulebook: r, policy: p, ticket_prefix: KA}\n"
     "  kota-b: {name: B, rulebook: r, policy: p, ticket_prefix: KA}\n", "kota-a", "ticket_prefix"),
    ("tenants:\n  kota-a: {name: A, rulebook: r, policy: p, ticket_prefix: KA, province: prov-x}\n",
     "kota-a", "province 'prov-x'"),
    ("tenants:\n  kota-a: {name: A, rulebook: r, policy: p, ticket_prefix: KA, colour: red}\n",
     "kota-a", "colour"),
])
def test_a_wrong_registry_is_refused_naming_file_and_problem(tmp_path: Path, content: str, home: str,
                                                             problem: str) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=str(path)) as refused:
        read_tenants(path, home=home)
    assert problem in str(refused.value)


def test_only_what_the_citizen_may_see_of_the_province_goes_back_to_the_city() -> None:
    def step(action: str, note: str | None = None) -> tuple[UpdateAction, str] | None:
        found = progress_of({"action": action, "note": note}, province_ticket="PBK-1",
                            province_name="Pemprov", agency_name="Dinas X")
        return None if found is None else (found.action, found.note)

    assert step("assigned") == (UpdateAction.ACKNOWLEDGED,
                                "Diteruskan ke Pemprov, nomor PBK-1; ditangani Dinas X.")
    assert step("responded", "Sudah dicek") == (UpdateAction.RESPONDED, "Pemprov (Dinas X): Sudah dicek")
    assert step("resolved", "Selesai") == (UpdateAction.RESOLVED, "Pemprov (Dinas X): Selesai")
    rejected = step("rejected", "bukan tugas kami, kepala bidang Andi")
    assert rejected is not None and "Andi" not in rejected[1]  # reasons stay in the province
    assert step("note", "catatan internal") is None
    assert step("reprioritised") is None and step("citizen_replied", "jawaban") is None
