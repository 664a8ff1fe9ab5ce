"""The console's pure decisions: traffic lights, WIB dates, ages, citizen steps, form errors."""

from datetime import UTC, datetime, timedelta

from services.console.domain import (
    citizen_steps,
    clock_state,
    form_errors,
    local_time,
    page_count,
    parse_instant,
)

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 10.00 WIB


def _ticket(status: str = "assigned", *, due_in: float | None = 3600,
            soon_in: float | None = 1800) -> dict[str, object]:
    def at(seconds: float | None) -> str | None:
        return None if seconds is None else (NOW + timedelta(seconds=seconds)).isoformat()
    return {"status": status, "due_next_at": at(due_in), "due_soon_at": at(soon_in)}


def test_the_traffic_light_follows_the_next_deadline_and_pauses_while_waiting_for_the_citizen() -> None:
    assert clock_state(_ticket(), NOW).key == "on_time"
    assert clock_state(_ticket(soon_in=-1), NOW).key == "due_soon"
    assert clock_state(_ticket(due_in=-1, soon_in=-10), NOW).key == "overdue"
    assert clock_state(_ticket("needs_info", due_in=-1), NOW).key == "paused"
    assert clock_state(_ticket("resolved", due_in=None), NOW).key == "closed"
    assert clock_state(_ticket(due_in=None, soon_in=None), NOW).key == "on_time"


def test_dates_are_shown_in_the_tenants_timezone_with_indonesian_months() -> None:
    assert local_time("2026-11-30T17:30:00Z", "Asia/Jakarta") == "1 Desember 2026 00.30 WIB"
    assert local_time("2026-11-30T17:30:00", "Asia/Makassar") == "1 Desember 2026 01.30 WITA"
    assert local_time(None, "Asia/Jakarta") == "—"
    naive = parse_instant("2026-11-30T03:00:00")
    assert naive is not None and naive.utcoffset() == timedelta(0)  # the services store UTC


def test_a_citizen_sees_four_plain_steps() -> None:
    def states(status: str) -> list[str]:
        return [s.state for s in citizen_steps(status)]
    assert states("received") == ["current", "todo", "todo", "todo"]
    assert states("assigned") == ["done", "current", "todo", "todo"]
    assert states("needs_info") == ["done", "done", "current", "todo"]
    assert states("resolved") == ["done", "done", "done", "done"]


def test_api_errors_become_the_forms_own_field_names() -> None:
    answer = {"errors": [{"field": "location.kelurahan", "problem": "too long"},
                         {"field": None, "problem": "bad"}]}
    assert form_errors(answer) == [{"field": "kelurahan", "problem": "too long"},
                                   {"field": "", "problem": "bad"}]
    assert form_errors({"detail": "nope"}) == [{"field": "", "problem": "nope"}]


def test_pages_offered_with_an_exact_and_a_capped_count() -> None:
    assert page_count(0, False, page=1, shown=0, per_page=25) == 1
    assert page_count(51, False, page=1, shown=25, per_page=25) == 3
    assert page_count(100, True, page=1, shown=25, per_page=25) == 4  # "4+"
    assert page_count(100, True, page=4, shown=25, per_page=25) == 5  # a full page: next stays
    assert page_count(100, True, page=9, shown=10, per_page=25) == 9  # the last one reached
