"""The notification directory: the example loads, and each mistake is refused naming the field
without echoing a contact URL (it may hold a password)."""

from pathlib import Path
from typing import Any

import pytest

from services.notify.directory import DirectoryError, load_directory, parse_directory

ROOT = Path(__file__).resolve().parents[2]
SECRET_URL = "mailto://user:s3cr3t-pass@smtp.kota.example?from=a@kota.example&to=b@kota.example"


def tenant(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"people": {"kepala": {"name": "Kepala", "contacts": {"email": SECRET_URL}}},
                            "agencies": {"DLH": {"roles": {"agency_head": ["kepala"]}}}}
    return {"tenants": {"kota-bengkulu": {**base, **fields}}}


def test_the_example_directory_loads() -> None:
    directory = load_directory(ROOT / "examples" / "notify-directory.yaml")
    city = directory.of("kota-bengkulu")
    assert city.holders("DLH", "agency_head")
    assert city.holders("DLH", "inspektorat"), "the tenant's inspektorat covers every agency"


def test_no_directory_notifies_nobody() -> None:
    assert load_directory(None).of("kota-bengkulu").holders("DLH", "agency_head") == []


@pytest.mark.parametrize(("raw", "field", "problem"), [
    (tenant(people={"kepala": {"name": "Kepala", "contacts": {"email": "nonsense://s3cr3t-pass@x"}}}),
     "people.kepala.contacts", "not a notification URL Apprise understands"),
    (tenant(people={"kepala": {"name": "Kepala", "contacts": {"E-Mail": SECRET_URL}}}),
     "people.kepala.contacts", "lower-case"),
    (tenant(agencies={"DLH": {"roles": {"agency_head": ["nobody"]}}}),
     "kota-bengkulu", "agencies.DLH.roles.agency_head: names 'nobody'"),
    (tenant(people={"kepala": {"name": "Kepala", "contacts": {"email": SECRET_URL},
                               "quiet_hours": {"start": "25:00", "end": "06:00"}}}),
     "people.kepala.quiet_hours.start", "time"),
    (tenant(people={"kepala": {"name": "Kepala", "contacts": {"email": SECRET_URL},
                               "quiet_hours": {"start": "06:00", "end": "06:00"}}}),
     "people.kepala.quiet_hours", "equal"),
    (tenant(timezone="Mars/Olympus"), "timezone", "unknown timezone"),
    (tenant(citizens={"email": SECRET_URL}), "citizens.email", "{to}"),
    (tenant(pepole={}), "pepole", "Extra inputs"),
])
def test_a_bad_directory_names_the_field_and_never_the_url(raw: dict[str, Any], field: str,
                                                           problem: str) -> None:
    with pytest.raises(DirectoryError) as caught:
        parse_directory(raw, source="dir.yaml")
    message = str(caught.value)
    assert message.startswith("dir.yaml: ")
    assert field in message and problem in message, message
    assert "s3cr3t" not in message


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "dir.yaml"
    broken.write_text("tenants: [unclosed")
    with pytest.raises(DirectoryError, match=r"dir\.yaml: not valid YAML"):
        load_directory(broken)
