"""Two tenants on one deployment for integration tests: Kota Bengkulu (home, with the test's
demo policy) and Provinsi Bengkulu with its own small rulebook and policy."""

from pathlib import Path

import yaml

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CITY, PROVINCE = "kota-bengkulu", "provinsi-bengkulu"
PROVINCE_RULEBOOK = ROOT / "services" / "router" / "rulebooks" / "provinsi-bengkulu.yaml"
PROVINCE_POLICY = ROOT / "services" / "sla" / "policies" / "provinsi-bengkulu.yaml"


def two_tenants(settings: Settings, directory: Path, *, linked: bool = True) -> Settings:
    """The settings with a registry of both tenants; ``linked``: the city forwards to the
    province (EXT_PROVINSI)."""
    city: dict[str, object] = {"name": "Pemerintah Kota Bengkulu", "rulebook": str(settings.rulebook),
                               "policy": str(settings.sla_policy), "ticket_prefix": "BKL"}
    if linked:
        city["province"] = PROVINCE
    registry = {"tenants": {
        CITY: city,
        PROVINCE: {"name": "Pemerintah Provinsi Bengkulu", "rulebook": str(PROVINCE_RULEBOOK),
                   "policy": str(PROVINCE_POLICY), "ticket_prefix": "PBK"}}}
    path = directory / "tenants.yaml"
    path.write_text(yaml.safe_dump(registry), encoding="utf-8")
    return settings.model_copy(update={"tenants_file": path, "tenant": CITY})
