"""Open311 GeoReport v2 decisions: services from a rulebook, a posted form as a complaint,
a complaint as a service request (what each reader may see), and the XML shape."""

from datetime import UTC, datetime
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest

from services.intake.georeport import (
    GeoReportError,
    Service,
    attributes_of,
    errors_body,
    service_code,
    service_request,
    services_of,
    submission_of,
    to_xml,
)

SAMPAH = Service("sampah", "Sampah", "Dinas Lingkungan Hidup", ("DLH",))
JAKARTA = ZoneInfo("Asia/Jakarta")
TEXT = "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut"


def test_one_service_per_category_grouped_by_its_first_agency() -> None:
    rulebook = {"agencies": [
        {"code": "DLH", "name": "Dinas LH", "rules": [{"category": "Sampah"}, {"category": "Sampah"},
                                                       {"id": "x"}]},
        {"code": "PUPR", "name": "Dinas PUPR", "rules": [{"category": "Jalan rusak"},
                                                          {"category": "Sampah"}]}]}
    services = services_of(rulebook)
    assert [s.service_code for s in services] == ["sampah", "jalan-rusak"]
    assert services[0].group == "Dinas LH" and services[0].agencies == ("DLH", "PUPR")
    assert service_code("Posyandu, gizi dan imunisasi") == "posyandu-gizi-dan-imunisasi"
    assert service_code("Rumah Sakit Ümum") == "rumah-sakit-umum"


def test_a_form_becomes_a_complaint_titled_by_its_service() -> None:
    submission = submission_of({
        "description": TEXT, "lat": "-3.79", "long": "102.26", "first_name": "Budi",
        "last_name": "Santoso", "phone": "0812-3456-7890", "media_url": "https://x.org/a.jpg",
        "attribute[anonymous]": "true", "attribute[kelurahan]": "Padang Jati"}, SAMPAH)
    assert submission.channel.value == "open311" and submission.title == "Sampah"
    assert submission.reporter is not None and submission.reporter.name == "Budi Santoso"
    assert submission.reporter.phone == "+6281234567890"
    assert submission.location is not None and submission.location.kelurahan == "Padang Jati"
    assert submission.anonymous and not submission.confidential
    assert [str(u) for u in submission.attachments] == ["https://x.org/a.jpg"]


@pytest.mark.parametrize(("form", "start"), [
    ({"description": TEXT}, "lat/long or address_string"),
    ({"description": TEXT, "lat": "utara", "long": "1"}, "lat: not a number"),
    ({"description": TEXT, "lat": "-3.7"}, "lat/long:"),
    ({"description": TEXT, "lat": "-3.7", "long": "500"}, "long:"),
    ({"description": TEXT, "address_string": "Jl. A", "attribute[warna]": "merah"}, "attribute[warna]"),
    ({"description": TEXT, "address_string": "Jl. A", "attribute[anonymous]": "ya"},
     "attribute[anonymous]"),
    ({"description": TEXT, "address_string": "Jl. A", "phone": "12"}, "phone:"),
])
def test_a_refusal_names_the_clients_field(form: dict[str, str], start: str) -> None:
    with pytest.raises(GeoReportError) as refused:
        submission_of(form, SAMPAH)
    assert refused.value.status == 400 and refused.value.description.startswith(start)
    assert "merah" not in refused.value.description


def test_unknown_attributes_are_refused_known_ones_read() -> None:
    assert attributes_of({"attribute[confidential]": "true", "other": "x"}) == {"confidential": "true"}


COMPLAINT = {"text": "masked text", "location": {"lat": -3.79, "lon": 102.26, "address": "Jl. A"},
             "attachments": ["https://x.org/a.jpg"], "anonymous": False, "confidential": False}
META = {"ticket_id": "BKL-1", "submitted_at": datetime(2026, 11, 30, 1, 0, tzinfo=UTC),
        "open311": {"service_code": "sampah", "service_name": "Sampah"}}
TICKET = {"status": "resolved", "agency": "DLH", "agency_name": "Dinas LH", "category": "Sampah",
          "changed_at": datetime(2026, 11, 30, 2, 0, tzinfo=UTC),
          "deadlines": {"resolution_due": datetime(2026, 12, 5, 9, 0, tzinfo=UTC)},
          "history": [{"action": "assigned"}, {"action": "resolved", "note": "sudah diangkut"}]}


def test_a_routed_request_reads_its_agency_deadline_and_status() -> None:
    found = service_request(COMPLAINT, META, TICKET, zone=JAKARTA, detailed=False)
    assert found["status"] == "closed" and found["agency_responsible"] == "Dinas LH"
    assert found["expected_datetime"] == "2026-12-05T16:00:00+07:00"
    assert found["requested_datetime"] == "2026-11-30T08:00:00+07:00"
    assert found["status_notes"] == "Laporan telah diselesaikan." and "diangkut" not in str(found)
    assert found["description"] is None and found["lat"] == -3.79 and found["address"] is None


def test_what_each_reader_sees_of_hidden_reporters() -> None:
    anonymous = {**COMPLAINT, "anonymous": True}
    confidential = {**COMPLAINT, "confidential": True}
    public = service_request(anonymous, META, None, zone=JAKARTA, detailed=False)
    keyed = service_request(anonymous, META, None, zone=JAKARTA, detailed=True)
    secret = service_request(confidential, META, None, zone=JAKARTA, detailed=True)
    assert public["lat"] is None and public["description"] is None
    assert keyed["lat"] == -3.79 and keyed["description"] == "masked text"
    assert secret["lat"] is None and secret["description"] is None and secret["media_url"] is None
    assert public["status"] == "open" and public["service_code"] == "sampah"
    assert public["agency_responsible"] is None and public["expected_datetime"] is None


def test_xml_names_items_as_the_specification_does() -> None:
    body = to_xml("services", [{**SAMPAH.as_open311()}])
    root = ElementTree.fromstring(body)
    assert root.tag == "services" and root[0].tag == "service"
    assert root.find("service/metadata").text == "true"  # type: ignore[union-attr]
    errors = ElementTree.fromstring(to_xml("errors", errors_body(GeoReportError(403, "api_key: x"))))
    assert [(e.findtext("code"), e.findtext("description")) for e in errors] == [("403", "api_key: x")]
