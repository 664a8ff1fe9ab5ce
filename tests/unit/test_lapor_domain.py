"""The LAPOR! connector's pure parts: the admin console's export (CSV and JSON) read into
reports or per-row refusals naming the column and quoting nothing; reports as intake
submissions without the reporter; ticket steps as LAPOR! status updates; the export file."""

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.lapor.domain import LaporReport, ReportDoc, RowError, export_row, updates_of
from services.lapor.exchange import ExchangeError, FileExchange
from shared.contracts import TicketChanged

DATA = Path(__file__).resolve().parents[1] / "data" / "lapor"
PERSONAL = ("Budi", "Siti", "Rahasia Orang", "Andi", "Dewi", "0812", "dewi@example.org",
            "pendek", "kemarin", "mungkin", "not a url", "just a string")


def test_the_csv_export_gives_reports_and_refuses_bad_rows_by_column_without_their_content() -> None:
    rows = FileExchange(source=DATA / "export.csv").dispositioned()
    first, second, short, bad = rows
    assert isinstance(first, LaporReport) and isinstance(second, LaporReport)
    assert (first.row, first.lapor_id, first.tracking_number) == (1, "LPR-2026-0001", "1234567")
    assert first.reported_at == datetime(2026, 11, 28, 1, 15, tzinfo=UTC)
    assert [str(u) for u in first.attachments] == ["https://foto.example.org/tps-1.jpg"]
    assert second.anonymous and not second.confidential and second.lat == -3.8
    assert isinstance(short, RowError) and short.row == 3 and short.lapor_id == "LPR-2026-0003"
    assert short.reason.startswith("isi_laporan:")
    assert isinstance(bad, RowError) and bad.row == 4
    assert "tanggal_laporan:" in bad.reason and "anonim:" in bad.reason
    for error in (short, bad):
        assert not any(p in error.reason for p in PERSONAL), error.reason


def test_a_submission_carries_flags_category_and_place_but_never_the_reporter() -> None:
    first, second, *_ = FileExchange(source=DATA / "export.csv").dispositioned()
    assert isinstance(first, LaporReport) and isinstance(second, LaporReport)
    submission = first.submission()
    assert submission.channel == "lapor" and submission.external_id == "LPR-2026-0001"
    assert submission.category == "Sampah" and submission.reporter is None
    assert submission.location is not None and submission.location.kelurahan == "Padang Jati"
    hidden = second.submission()
    assert hidden.anonymous and hidden.reporter is None
    assert "Siti" not in hidden.model_dump_json(), "the reporter's name column is never read"


def test_the_json_export_reads_the_same_columns_and_refuses_rows_that_are_not_reports() -> None:
    one, url, text = FileExchange(source=DATA / "export.json").dispositioned()
    assert isinstance(one, LaporReport) and one.confidential and not one.anonymous
    assert one.submission().reporter is None
    assert isinstance(url, RowError) and url.reason.startswith("lampiran:")
    assert isinstance(text, RowError) and text.row == 3 and text.lapor_id is None
    for error in (url, text):
        assert not any(p in error.reason for p in PERSONAL), error.reason


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("a.csv", "judul,kategori\nx,y\n", "lacks the column(s) id_laporan, isi_laporan"),
    ("a.json", '{"laporan": 3}', "expected a JSON list"),
    ("a.json", "[{", "not JSON"),
    ("a.txt", "", "give --format"),
])
def test_a_file_that_cannot_be_read_is_refused_whole(tmp_path: Path, name: str, content: str,
                                                     expected: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ExchangeError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        FileExchange(source=path).dispositioned()


def changed(*steps: dict[str, str]) -> TicketChanged:
    return TicketChanged.model_validate({
        "version": len(steps), "status": "resolved", "agency": "DLH",
        "agency_name": "Dinas Lingkungan Hidup", "history": list(steps)})


REPORT = ReportDoc(_id="kota:BKL-1", tenant="kota", ticket_id="BKL-1", lapor_id="LPR-1",
                   lapor_tracking_number="99")
AT = ["2026-11-30T01:00:00+00:00", "2026-11-30T02:00:00+00:00", "2026-11-30T03:00:00+00:00",
      "2026-11-30T04:00:00+00:00"]


def test_each_public_step_is_one_lapor_update_with_the_agency_reply() -> None:
    event = changed({"at": AT[0], "action": "assigned", "agency": "DLH"},
                    {"at": AT[1], "action": "citizen_replied", "agency": "DLH", "note": "dari warga"},
                    {"at": AT[2], "action": "responded", "agency": "DLH", "note": "Kami cek besok."},
                    {"at": AT[3], "action": "resolved", "agency": "DLH", "note": "Sudah diangkut."})
    now = datetime.now(UTC)
    updates = updates_of(event, REPORT, tenant="kota", ticket_id="BKL-1", now=now)
    assert [(u["status"], u["reply"]) for u in updates] == [
        ("Terdisposisi", None), ("Ditindaklanjuti", "Kami cek besok."), ("Selesai", "Sudah diangkut.")]
    again = updates_of(changed(*[{"at": AT[0], "action": "assigned", "agency": "DLH"}]), REPORT,
                       tenant="kota", ticket_id="BKL-1", now=now)
    assert again[0]["_id"] == updates[0]["_id"], "the same step is the same update"
    row = export_row(updates[2])
    assert row["waktu"] == "2026-11-30T11:00:00+07:00" and row["instansi"] == "Dinas Lingkungan Hidup"
    assert (row["id_laporan"], row["nomor_tracking"], row["nomor_tiket"]) == ("LPR-1", "99", "BKL-1")


def test_the_export_file_is_written_whole_in_csv_or_json(tmp_path: Path) -> None:
    event = changed({"at": AT[0], "action": "assigned", "agency": "DLH"})
    updates = updates_of(event, REPORT, tenant="kota", ticket_id="BKL-1", now=datetime.now(UTC))
    FileExchange(target=tmp_path / "out.csv").send(updates)
    FileExchange(target=tmp_path / "out.json").send(updates)
    [row] = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert row["status"] == "Terdisposisi" and row["id_laporan"] == "LPR-1"
    assert json.loads((tmp_path / "out.json").read_text())["pembaruan"] == [row]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.json"]
