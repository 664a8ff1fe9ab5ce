"""The inbox read model's entry and search pattern (pure)."""

import re
from datetime import UTC, datetime, timedelta

from services.sla.inbox import DueState, inbox_entry, inbox_query, search_pattern

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def ticket(**fields: object) -> dict[str, object]:
    return {"_id": "BKL-2026-0042", "version": 3, "tenant": "kota", "agency": "DLH",
            "status": "acknowledged", "category": "Sampah", "title": "Sampah Menumpuk",
            "text": "Truk tidak datang (sudah 3 hari)", "location": {"kelurahan": "Padang Jati"},
            "due_next_at": NOW + timedelta(hours=4), "due_soon_at": NOW + timedelta(hours=2),
            **fields}


def test_an_open_ticket_becomes_an_entry_with_epochs_and_a_lowercased_search_text() -> None:
    entry = inbox_entry(ticket())
    assert entry is not None
    assert (entry["agency"], entry["status"], entry["kelurahan"], entry["version"]) == (
        "DLH", "acknowledged", "Padang Jati", 3)
    assert entry["due_next_epoch"] == (NOW + timedelta(hours=4)).timestamp()
    assert entry["search"].split("\x1f") == ["bkl-2026-0042", "sampah menumpuk",
                                             "truk tidak datang (sudah 3 hari)"]


def test_a_ticket_out_of_the_inbox_has_no_entry_and_a_missing_date_sorts_first() -> None:
    assert inbox_entry(ticket(status="resolved")) is None
    paused = inbox_entry(ticket(status="needs_info", due_next_at=None, title=None, location=None))
    assert paused is not None and paused["due_next_epoch"] is None
    assert paused["kelurahan"] is None and paused["search"].count("\x1f") == 1


def test_a_search_is_literal_and_ignores_case() -> None:
    entry = inbox_entry(ticket())
    assert entry is not None
    for asked in ("bkl-2026-0042", "MENUMPUK", " (Sudah 3 ", "hari)"):
        assert re.search(search_pattern(asked), entry["search"]), asked
    for asked in ("sudah.3", "hari$x", "a|zzz"):  # what would match as a regex, does not
        assert not re.search(search_pattern(asked), entry["search"]), asked


def test_due_filters_compare_epoch_numbers() -> None:
    query = inbox_query(tenant="kota", agency="DLH", status=None, due=DueState.OVERDUE,
                        category=None, kelurahan=None, q=None, now=NOW)
    assert query["due_next_epoch"] == {"$lt": NOW.timestamp()}
    assert "needs_info" not in query["status"]["$in"]
