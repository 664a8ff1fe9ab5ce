"""Notifications, the pure decisions: which notices an event makes and for whom, their stable
ids, when each may be sent (quiet hours), how long to wait after a failure, and what an
acknowledged escalation stops. No MongoDB, no Kafka, no network.

A notice is one message to one person (or to the citizen); a delivery is that notice over
one of the person's contacts. Ids derive from the event and the person, so a redelivered
event or a restart makes the same ids, and the store keeps one delivery per id."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypedDict
from zoneinfo import ZoneInfo

from services.notify.directory import QuietHours, TenantDirectory
from shared.contracts import (
    Channel,
    Complaint,
    Envelope,
    Escalation,
    Priority,
    TicketChanged,
    TicketRouted,
)

Kind = Literal["escalation", "assignment", "citizen_reply"]
Status = Literal["pending", "deferred", "retrying", "sent", "failed", "cancelled"]
OPEN: tuple[Status, ...] = ("pending", "deferred", "retrying")
CITIZEN = "citizen"  # the recipient of a reply; the citizen's address is never in a notice
# The history steps that carry a message written for the citizen.
REPLY_ACTIONS = frozenset({"responded", "needs_info", "resolved"})
CITIZEN_CHANNELS = ("email", "sms")


@dataclass(frozen=True)
class Notice:
    notice_id: str
    kind: Kind
    tenant: str
    ticket_id: str
    agency: str
    recipient: str  # a person of the directory, or CITIZEN
    title: str
    body: str
    urgent: bool
    step: str | None = None  # escalations: the ladder step an acknowledgement stops


class DeliveryDoc(TypedDict):
    """One notice over one contact, as stored (``notify_deliveries``). Written whole, guarded
    by ``version``; ``due_epoch`` is set while the delivery is open (pending, deferred or
    retrying) and None once it is finished, so the sender walks one index in time order.
    Epoch seconds, not datetimes, for the fields a query compares (NX-27017 stores a
    ``$set`` datetime as a string)."""

    _id: str  # notice id + contact
    notice_id: str
    kind: Kind
    tenant: str
    ticket_id: str
    agency: str
    recipient: str
    contact: str  # the contact's name (email, webhook...): the URL stays in the directory
    title: str
    body: str
    urgent: bool
    step: str | None
    status: Status
    attempts: int
    created_at: datetime
    due_epoch: float | None
    deferred_until: datetime | None
    sent_at: datetime | None
    last_error: str | None
    lease_owner: str | None
    lease_epoch: float | None
    version: int


def step_id(ticket_id: str, assignment: int, clock: str, level: int) -> str:
    """An escalation's ladder step, as the SLA service names it (its acknowledgement's id)."""
    return f"{ticket_id}:a{assignment}:{clock}:{level}"


def notice_id(kind: Kind, source_event: str, recipient: str) -> str:
    return f"{kind}:{source_event}:{recipient}"


def _local(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime("%d-%m-%Y %H:%M")


def escalation_notices(event: Envelope[Escalation], directory: TenantDirectory, *,
                       urgent: bool) -> tuple[list[Notice], list[str]]:
    """One notice per person holding a role the escalation names (each person once, whatever
    roles they hold); and the roles nobody holds, to be reported."""
    data, ticket = event.data, str(event.ticket_id)
    people: list[str] = []
    unstaffed: list[str] = []
    for recipient in data.recipients:
        holders = directory.holders(data.agency, recipient.role)
        if not holders:
            unstaffed.append(recipient.role)
        people += [p for p in holders if p not in people]
    again = f" (pemberitahuan ulang ke-{data.repeat})" if data.repeat else ""
    due = f" Tenggat: {_local(data.due_at, directory.timezone)}." if data.due_at else ""
    title = f"Eskalasi tingkat {data.level}: tiket {ticket} ({data.agency}){again}"
    body = (f"Tiket {ticket} di {data.agency} terlambat pada jam {data.clock}: {data.trigger}."
            f"{due} Mohon segera ditindaklanjuti.")
    step = step_id(ticket, data.assignment, data.clock, data.level)
    return [Notice(notice_id("escalation", event.id, p), "escalation", event.tenant, ticket,
                   data.agency, p, title, body, urgent, step) for p in people], unstaffed


def assignment_notices(event: Envelope[TicketRouted], directory: TenantDirectory) -> list[Notice]:
    """A new ticket for an agency that asked to hear of them, to its officers. The notice
    says what and where, never who reported it (nor the text, which may name them)."""
    data, ticket = event.data, str(event.ticket_id)
    agency = directory.agencies.get(data.agency)
    if agency is None or not agency.notify_assignments:
        return []
    where = data.location.kelurahan if data.location and data.location.kelurahan else "-"
    title = f"Tiket baru {ticket} untuk {data.agency}"
    body = (f"Kategori: {data.category or '-'}. Prioritas: {data.priority.value}. "
            f"Kelurahan: {where}. Buka kotak masuk untuk menanganinya.")
    urgent = data.priority is Priority.URGENT
    return [Notice(notice_id("assignment", event.id, p), "assignment", event.tenant, ticket,
                   data.agency, p, title, body, urgent)
            for p in directory.holders(data.agency, "officer")]


@dataclass(frozen=True)
class CitizenContact:
    """Where a citizen who gave an address (and did not ask to stay hidden) hears back."""

    email: str | None
    sms: str | None


def citizen_contact(complaint: Complaint) -> CitizenContact | None:
    """None for an anonymous or confidential complaint, or one without an address: such a
    reporter is never contacted through the notification service. The e-mail address of a
    complaint that came by e-mail is left to the mailbox (services/mailbox)."""
    reporter = complaint.reporter
    if complaint.identity_hidden or reporter is None:
        return None
    # A complaint that came by e-mail is answered by the mailbox, in the mail's own thread:
    # notify sending the same reply too would be a second copy.
    by_mail = complaint.channel is Channel.EMAIL
    email = str(reporter.email) if reporter.email and not by_mail else None
    if email is None and reporter.phone is None:
        return None
    return CitizenContact(email=email, sms=reporter.phone)


def reply_notices(event: Envelope[TicketChanged]) -> list[Notice]:
    """One notice per message the agency wrote for the citizen (a reply, a request for
    information, the resolution). Ids derive from the step, so the ticket's next change,
    which repeats its history, makes the same ids."""
    ticket = str(event.ticket_id)
    found = []
    for step in event.data.history:
        if step.action not in REPLY_ACTIONS or not step.note:
            continue
        source = f"{ticket}:{step.action}:{step.at.isoformat()}"
        title = f"Tanggapan atas pengaduan {ticket}"
        ask = " Mohon balas melalui halaman pelacakan." if step.action == "needs_info" else ""
        found.append(Notice(notice_id("citizen_reply", source, CITIZEN), "citizen_reply",
                            event.tenant, ticket, event.data.agency, CITIZEN, title,
                            f"{step.note}{ask}", urgent=False))
    return found


def quiet_until(now: datetime, quiet: QuietHours | None, zone: str) -> datetime | None:
    """The end of the quiet window ``now`` falls in (UTC), or None outside one."""
    if quiet is None:
        return None
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    spans_midnight = quiet.start > quiet.end
    inside = (clock >= quiet.start or clock < quiet.end) if spans_midnight \
        else quiet.start <= clock < quiet.end
    if not inside:
        return None
    end_day = local.date()
    if spans_midnight and clock >= quiet.start:
        end_day += timedelta(days=1)
    end = datetime.combine(end_day, quiet.end, tzinfo=tz)
    return end.astimezone(now.tzinfo)


def first_due(now: datetime, quiet: QuietHours | None, zone: str, *,
              urgent: bool) -> datetime | None:
    """When a new delivery may first be tried: now, or (deferred) when the person's quiet
    hours end. None means now. Urgent notices ignore quiet hours."""
    return None if urgent else quiet_until(now, quiet, zone)


def escalation_wanted(step: str, acknowledged: Iterable[str]) -> bool:
    """An acknowledged step notifies no more: neither its re-notifications nor a late copy."""
    return step not in set(acknowledged)


def new_delivery(notice: Notice, contact: str, *, now: datetime,
                 deferred_until: datetime | None) -> DeliveryDoc:
    due = deferred_until or now
    return DeliveryDoc(
        _id=f"{notice.notice_id}:{contact}", notice_id=notice.notice_id, kind=notice.kind,
        tenant=notice.tenant, ticket_id=notice.ticket_id, agency=notice.agency,
        recipient=notice.recipient, contact=contact, title=notice.title, body=notice.body,
        urgent=notice.urgent, step=notice.step,
        status="deferred" if deferred_until else "pending", attempts=0, created_at=now,
        due_epoch=due.timestamp(), deferred_until=deferred_until, sent_at=None, last_error=None,
        lease_owner=None, lease_epoch=None, version=1)


def person_deliveries(notice: Notice, directory: TenantDirectory, now: datetime) -> list[DeliveryDoc]:
    """A person's notice over each of their contacts, deferred past their quiet hours."""
    person = directory.people[notice.recipient]
    deferred = first_due(now, person.quiet_hours, directory.zone_of(notice.recipient),
                         urgent=notice.urgent)
    return [new_delivery(notice, label, now=now, deferred_until=deferred)
            for label in person.contacts]


def citizen_deliveries(notice: Notice, directory: TenantDirectory, contact: CitizenContact,
                       now: datetime) -> list[DeliveryDoc]:
    """A reply over each address the citizen gave that the tenant has a channel for."""
    templates: Mapping[str, str | None] = {"email": directory.citizens.email,
                                           "sms": directory.citizens.sms}
    given = {"email": contact.email, "sms": contact.sms}
    return [new_delivery(notice, channel, now=now, deferred_until=None)
            for channel in CITIZEN_CHANNELS if templates[channel] and given[channel]]
