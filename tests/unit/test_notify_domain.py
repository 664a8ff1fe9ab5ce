"""The notification service's pure decisions: who an event notifies, stable ids, quiet hours,
backoff, what an acknowledgement stops, and that a hidden reporter is never contacted."""

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from services.notify.directory import QuietHours, parse_directory
from services.notify.domain import (
    CITIZEN,
    assignment_notices,
    citizen_contact,
    citizen_deliveries,
    escalation_notices,
    escalation_wanted,
    first_due,
    person_deliveries,
    quiet_until,
    reply_notices,
    step_id,
)
from shared.contracts import (
    Complaint,
    Envelope,
    Escalation,
    TicketChanged,
    TicketRouted,
)
from shared.sending import after_attempt, retry_delay

TENANT = "kota-bengkulu"
DIRECTORY = parse_directory({"tenants": {TENANT: {
    "timezone": "Asia/Jakarta",
    "people": {
        "kepala.dlh": {"name": "Kepala DLH", "contacts": {
            "email": "mailto://127.0.0.1:2525?from=d@kota.example&to=kepala@kota.example",
            "webhook": "json://127.0.0.1:9/hook"},
            "quiet_hours": {"start": "21:00", "end": "06:00"}},
        "inspektur": {"name": "Inspektur", "contacts": {
            "email": "mailto://127.0.0.1:2525?from=d@kota.example&to=insp@kota.example"}},
        "dlh.andi": {"name": "Andi", "contacts": {"webhook": "json://127.0.0.1:9/andi"}},
    },
    "agencies": {"DLH": {"notify_assignments": True,
                         "roles": {"agency_head": ["kepala.dlh"], "officer": ["dlh.andi"]}},
                 "PDAM": {"roles": {"officer": ["dlh.andi"]}}},
    "roles": {"inspektorat": ["inspektur"]},
    "citizens": {"email": "mailto://127.0.0.1:2525?from=d@kota.example&to={to}"},
}}}).of(TENANT)
NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 10:00 WIB


def escalation(event_id: str = "esc-1", *, roles: tuple[str, ...] = ("agency_head", "inspektorat"),
               repeat: int = 0, agency: str = "DLH") -> Envelope[Escalation]:
    return Envelope[Escalation].model_validate({
        "id": event_id, "type": "ticket.escalated", "tenant": TENANT, "ticket_id": "BKL-1",
        "data": {"agency": agency, "assignment": 1, "level": 2, "clock": "response",
                 "trigger": "100% of response target", "triggered_at": NOW.isoformat(),
                 "fired_at": NOW.isoformat(), "late": False, "repeat": repeat,
                 "due_at": NOW.isoformat(), "recipients": [{"role": r} for r in roles]}})


def routed(agency: str, priority: str = "normal", **extra: Any) -> Envelope[TicketRouted]:
    return Envelope[TicketRouted].model_validate({
        "id": f"routed-{agency}", "type": "ticket.routed", "tenant": TENANT, "ticket_id": "BKL-2",
        "data": {"agency": agency, "agency_name": agency, "authority": "kota",
                 "priority": priority, "category": "Sampah", "channel": "web",
                 "text": "Sampah menumpuk, hubungi Budi 0812", "submitted_at": NOW.isoformat(),
                 "routing": {"rulebook_version": "t"}, **extra}})


def test_an_escalation_notifies_each_holder_of_its_roles_once_with_stable_ids() -> None:
    notices, unstaffed = escalation_notices(escalation(), DIRECTORY, urgent=False)
    assert [n.recipient for n in notices] == ["kepala.dlh", "inspektur"]
    assert unstaffed == []
    assert [n.notice_id for n in notices] == ["escalation:esc-1:kepala.dlh",
                                              "escalation:esc-1:inspektur"]
    again, _ = escalation_notices(escalation(), DIRECTORY, urgent=False)
    assert again == notices, "a redelivered event makes the same notices"
    assert {n.step for n in notices} == {step_id("BKL-1", 1, "response", 2)}
    assert "BKL-1" in notices[0].title and "DLH" in notices[0].title


def test_an_unstaffed_role_is_reported_and_an_agency_role_falls_back_to_the_tenant() -> None:
    notices, unstaffed = escalation_notices(escalation(roles=("ombudsman", "inspektorat")),
                                            DIRECTORY, urgent=False)
    assert unstaffed == ["ombudsman"]
    assert [n.recipient for n in notices] == ["inspektur"]
    nobody, _ = escalation_notices(escalation(roles=("agency_head",), agency="PDAM"), DIRECTORY,
                                   urgent=False)
    assert nobody == []


def test_each_contact_of_a_person_is_one_delivery() -> None:
    notices, _ = escalation_notices(escalation(), DIRECTORY, urgent=True)
    deliveries = person_deliveries(notices[0], DIRECTORY, NOW)
    assert [d["_id"] for d in deliveries] == ["escalation:esc-1:kepala.dlh:email",
                                              "escalation:esc-1:kepala.dlh:webhook"]
    assert {d["status"] for d in deliveries} == {"pending"}
    assert all("mailto" not in str(d) and "json://" not in str(d) for d in deliveries), \
        "the contact's URL stays in the directory"


QUIET = QuietHours(start=time(21), end=time(6))


@pytest.mark.parametrize(("wib", "ends"), [
    (datetime(2026, 3, 2, 22, 30), datetime(2026, 3, 3, 6, 0)),  # evening: ends next morning
    (datetime(2026, 3, 3, 2, 0), datetime(2026, 3, 3, 6, 0)),    # after midnight
    (datetime(2026, 3, 2, 10, 0), None),                          # working hours
    (datetime(2026, 3, 2, 6, 0), None),                           # the end itself is not quiet
    (datetime(2026, 3, 2, 21, 0), datetime(2026, 3, 3, 6, 0)),   # the start is
])
def test_quiet_hours_defer_until_the_window_ends(wib: datetime, ends: datetime | None) -> None:
    offset = timedelta(hours=7)
    now = (wib - offset).replace(tzinfo=UTC)
    expected = None if ends is None else (ends - offset).replace(tzinfo=UTC)
    assert quiet_until(now, QUIET, "Asia/Jakarta") == expected


def test_a_daytime_window_and_the_person_without_one() -> None:
    lunch = QuietHours(start=time(12), end=time(13))
    at = datetime(2026, 3, 2, 5, 30, tzinfo=UTC)  # 12:30 WIB
    assert quiet_until(at, lunch, "Asia/Jakarta") == datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    assert quiet_until(at, None, "Asia/Jakarta") is None


def test_urgent_notices_ignore_quiet_hours_and_normal_ones_are_deferred() -> None:
    night = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 23:00 WIB
    assert first_due(night, QUIET, "Asia/Jakarta", urgent=True) is None
    assert first_due(night, QUIET, "Asia/Jakarta", urgent=False) == datetime(
        2026, 3, 2, 23, 0, tzinfo=UTC)
    normal, _ = escalation_notices(escalation(), DIRECTORY, urgent=False)
    deferred = person_deliveries(normal[0], DIRECTORY, night)
    assert {d["status"] for d in deferred} == {"deferred"}
    assert deferred[0]["due_epoch"] == datetime(2026, 3, 2, 23, 0, tzinfo=UTC).timestamp()
    urgent, _ = escalation_notices(escalation(), DIRECTORY, urgent=True)
    assert {d["status"] for d in person_deliveries(urgent[0], DIRECTORY, night)} == {"pending"}


def test_backoff_doubles_up_to_its_ceiling_and_gives_up_after_the_last_attempt() -> None:
    assert [retry_delay(n, base=2, ceiling=20) for n in range(1, 6)] == [2, 4, 8, 16, 20]
    retry = after_attempt(1, "down", 100.0, max_attempts=3, base=2, ceiling=20)
    assert (retry.status, retry.due_epoch, retry.last_error) == ("retrying", 102.0, "down")
    assert after_attempt(3, "down", 100.0, max_attempts=3, base=2, ceiling=20).status == "failed"
    sent = after_attempt(2, None, 100.0, max_attempts=3, base=2, ceiling=20)
    assert (sent.status, sent.due_epoch) == ("sent", None)


def test_an_acknowledged_step_notifies_no_more() -> None:
    step = step_id("BKL-1", 1, "response", 2)
    assert escalation_wanted(step, [])
    assert not escalation_wanted(step, [step])
    assert escalation_wanted(step_id("BKL-1", 1, "response", 3), [step]), "a higher level still fires"


def test_assignments_only_for_agencies_that_ask_and_never_with_the_reporter() -> None:
    assert assignment_notices(routed("PDAM"), DIRECTORY) == []
    [notice] = assignment_notices(routed("DLH", location={"kelurahan": "Sawah Lebar"}), DIRECTORY)
    assert notice.recipient == "dlh.andi" and not notice.urgent
    assert "Sawah Lebar" in notice.body
    assert "Budi" not in notice.body and "0812" not in notice.body, "the text may name the reporter"
    [urgent] = assignment_notices(routed("DLH", "urgent"), DIRECTORY)
    assert urgent.urgent


def complaint(**extra: Any) -> Complaint:
    return Complaint.model_validate({"ticket_id": "BKL-3", "channel": "web",
                                     "text": "Lampu jalan mati", "submitted_at": NOW.isoformat(),
                                     **extra})


def test_a_hidden_reporter_is_never_a_contact() -> None:
    reporter = {"name": "Budi", "email": "budi@example.com", "phone": "081234567890"}
    contact = citizen_contact(complaint(reporter=reporter))
    assert contact is not None and contact.email == "budi@example.com"
    assert contact.sms == "+6281234567890"
    assert citizen_contact(complaint(reporter=reporter, anonymous=True)) is None
    assert citizen_contact(complaint(reporter=reporter, confidential=True)) is None
    assert citizen_contact(complaint(reporter={"name": "Budi"})) is None
    assert citizen_contact(complaint()) is None


def test_a_complaint_that_came_by_mail_is_answered_by_the_mailbox_not_by_notify() -> None:
    """services/mailbox replies in the mail's thread; notify must not send a second copy."""
    by_mail = {"email": "budi@example.com"}
    assert citizen_contact(complaint(channel="email", reporter=by_mail)) is None
    both = citizen_contact(complaint(channel="email", reporter={**by_mail, "phone": "081234567890"}))
    assert both is not None and both.email is None and both.sms == "+6281234567890"


def test_replies_meant_for_the_citizen_are_notices_with_ids_from_their_step() -> None:
    changed = Envelope[TicketChanged].model_validate({
        "id": "chg-2", "type": "ticket.changed", "tenant": TENANT, "ticket_id": "BKL-3",
        "data": {"version": 3, "status": "waiting", "agency": "DLH", "history": [
            {"at": NOW.isoformat(), "action": "assigned", "agency": "DLH"},
            {"at": NOW.isoformat(), "action": "acknowledged", "agency": "DLH", "note": "Diterima"},
            {"at": (NOW + timedelta(minutes=5)).isoformat(), "action": "needs_info",
             "agency": "DLH", "note": "Mohon kirim foto"}]}})
    [notice] = reply_notices(changed)
    assert notice.recipient == CITIZEN and notice.body.startswith("Mohon kirim foto")
    again = changed.model_copy(update={"id": "chg-3"})
    assert reply_notices(again) == [notice], "the next change repeats the step: same notice"
    contact = citizen_contact(complaint(reporter={"email": "budi@example.com",
                                                  "phone": "081234567890"}))
    assert contact is not None
    deliveries = citizen_deliveries(notice, DIRECTORY, contact, NOW)
    assert [d["contact"] for d in deliveries] == ["email"], "no SMS channel in this directory"
    assert "budi@example.com" not in str(deliveries), "the address is looked up when sending"
