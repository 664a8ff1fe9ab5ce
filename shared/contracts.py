"""Event contracts: the topics and the JSON envelopes every Disposisi service reads and writes.

These models are the project's public API. Any Kafka client can read the events: they are
UTF-8 JSON objects keyed by ticket id. Changing a field's meaning needs a new
``schema_version``; adding an optional field does not.
"""

import re
import unicodedata
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
EVENT_NAMESPACE = uuid.UUID("6f1c2a4e-5d0b-4c1e-9a53-2f7e8b9d0c11")


class Topics:
    """Kafka topic names; agency queues are ``disposisi.agency.<CODE>``."""

    SUBMITTED = "disposisi.complaints.submitted"
    RECEIVED = "disposisi.complaints.received"
    ROUTED = "disposisi.tickets.routed"
    OPENED = "disposisi.tickets.opened"
    CHANGES = "disposisi.tickets.changes"
    UPDATES = "disposisi.tickets.updates"
    REROUTE = "disposisi.tickets.reroute"
    ESCALATIONS = "disposisi.escalations"
    ESCALATION_ACKS = "disposisi.escalations.acknowledged"
    DEADLETTER = "disposisi.deadletter"
    AGENCY_PREFIX = "disposisi.agency."

    @classmethod
    def agency(cls, code: str) -> str:
        return f"{cls.AGENCY_PREFIX}{code}"

    @classmethod
    def fixed(cls) -> list[str]:
        return [cls.SUBMITTED, cls.RECEIVED, cls.ROUTED, cls.OPENED, cls.UPDATES, cls.REROUTE,
                cls.ESCALATIONS, cls.ESCALATION_ACKS, cls.DEADLETTER, cls.CHANGES]


class EventType(StrEnum):
    COMPLAINT_SUBMITTED = "complaint.submitted"
    COMPLAINT_RECEIVED = "complaint.received"
    TICKET_ROUTED = "ticket.routed"
    TICKET_ASSIGNED = "ticket.assigned"
    TICKET_OPENED = "ticket.opened"
    TICKET_CHANGED = "ticket.changed"
    TICKET_UPDATE = "ticket.update"
    TICKET_WITHDRAWN = "ticket.withdrawn"
    REROUTE_REQUESTED = "ticket.reroute_requested"
    TICKET_ESCALATED = "ticket.escalated"
    ESCALATION_ACKNOWLEDGED = "escalation.acknowledged"
    DEAD_LETTER = "deadletter"


# Length limits: a consumer accepts from Kafka no more than HTTP accepts from a citizen or an
# officer, so an event can never carry what the API would have refused.
TEXT_MAX = 4000
TITLE_MAX = 200
NOTE_MAX = 4000
REASON_MAX = 1000
ACTOR_MAX = 120
CODE_MAX = 40  # an agency code; also part of a topic name (disposisi.agency.<CODE>)
NAME_MAX = 200
URL_MAX = 2083  # what pydantic's HttpUrl accepts
ATTACHMENTS_MAX = 10
# Masking a contact may lengthen the text: "a@b.c" (5 characters) becomes a 20-character
# placeholder, so an agency's copy is at most four times the citizen's.
MASKED_GROWTH = 4
EXPLANATION_ITEMS_MAX = 500  # rule ids and matched phrases: bounded by the rulebook, generously

AgencyCode = Annotated[str, Field(min_length=1, max_length=CODE_MAX, pattern=r"^[A-Za-z0-9_-]+$")]


def category_code(category: str) -> str:
    """A category's stable code (an Open311 ``service_code``): ``Pelayanan puskesmas`` ->
    ``pelayanan-puskesmas``. A category hint matches a rule's category by name or by code."""
    folded = unicodedata.normalize("NFKD", category).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-") or "lainnya"


def derived_event_id(*parts: str) -> str:
    """A stable event id: redelivered input yields the same output ids, so consumers can dedupe."""
    return str(uuid.uuid5(EVENT_NAMESPACE, "\x1f".join(parts)))


def utc_now() -> datetime:
    return datetime.now(UTC)


def _is_valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as JSON "\ud800"
        return False
    return True


# Characters that show nothing: format characters (zero-width space and joiners, BOM, bidi
# marks), separators and controls, and letters that render blank (Hangul fillers, braille blank).
_BLANK_CATEGORIES = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp", "Mn", "Me"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _visible(text: str) -> str:
    # An empty string is left to min_length (or means "not given" where that is allowed).
    if text and all(c in _BLANK_LETTERS or unicodedata.category(c) in _BLANK_CATEGORIES for c in text):
        raise ValueError("is empty once invisible characters (zero-width spaces, joiners, BOM, "
                         "blank space) are removed")
    return text


VisibleText = Annotated[str, AfterValidator(_visible)]


class Strict(BaseModel):
    """Unknown fields are an error, so a misspelt field is reported instead of ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        # JSON allows "\ud800", which no UTF-8 store, log or response can hold.
        values = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(v, str) and not _is_valid_unicode(v) for v in values):
            raise ValueError("contains invalid Unicode (a lone surrogate)")
        return value


class Channel(StrEnum):
    WEB = "web"
    MOBILE = "mobile"
    WHATSAPP = "whatsapp"
    SMS = "sms"
    CALL_CENTRE = "call_centre"
    EMAIL = "email"
    WALK_IN = "walk_in"
    SOCIAL_MEDIA = "social_media"
    LAPOR = "lapor"
    OPEN311 = "open311"


def _normalise_phone(raw: str) -> str:
    # A bare "62812..." is misread as +62 62...; an international prefix needs its "+".
    candidate = "+" + raw if raw.startswith("62") else raw
    try:
        number = phonenumbers.parse(candidate, "ID")
    except phonenumbers.NumberParseException as error:
        raise ValueError(f"not a phone number: {error}") from error
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number (expected e.g. 0812-3456-7890 or +62...)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


PhoneNumber = Annotated[str, Field(max_length=32), AfterValidator(_normalise_phone)]


class Location(Strict):
    kelurahan: VisibleText | None = Field(None, max_length=100, description="Kelurahan (urban village).")
    kecamatan: VisibleText | None = Field(None, max_length=100, description="Kecamatan (district).")
    address: VisibleText | None = Field(None, max_length=300, description="Street address or landmark.")
    lat: float | None = Field(None, ge=-90, le=90, description="Latitude, WGS84.")
    lon: float | None = Field(None, ge=-180, le=180, description="Longitude, WGS84.")

    @model_validator(mode="after")
    def _coordinates_come_in_pairs(self) -> "Location":
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        if not any((self.kelurahan, self.kecamatan, self.address, self.lat is not None)):
            raise ValueError("give at least one of kelurahan, kecamatan, address or lat/lon")
        return self


class Reporter(Strict):
    name: VisibleText | None = Field(None, min_length=1, max_length=120)
    phone: PhoneNumber | None = Field(None, description="Normalised to E.164 (+62...).")
    email: EmailStr | None = None


class TicketLink(Strict):
    """A ticket of another tenant on the same deployment: the city's original of a complaint
    it forwarded to its province."""

    tenant: str = Field(pattern=r"^[a-z][a-z0-9-]{1,62}$")
    ticket_id: str = Field(min_length=1, max_length=64)


class ComplaintSubmission(Strict):
    """What a channel sends: over HTTP (`POST /v1/complaints`) or on `complaints.submitted`."""

    channel: Channel = Field(description="Where the complaint came from.")
    text: VisibleText = Field(min_length=10, max_length=TEXT_MAX,
                              description="The complaint in the citizen's words.")
    title: VisibleText | None = Field(None, min_length=1, max_length=TITLE_MAX)
    external_id: VisibleText | None = Field(
        None, min_length=1, max_length=128,
        description="The channel's own id; with `channel` it makes resubmission idempotent.",
    )
    category: VisibleText | None = Field(
        None, min_length=1, max_length=NAME_MAX,
        description="The category the citizen picked on the channel (an Open311 service, a "
                    "LAPOR! category): a hint the router weighs for the rulebook's rules of "
                    "that category (by name or service code); unknown ones are ignored.")
    location: Location | None = None
    reporter: Reporter | None = None
    anonymous: bool = Field(False, description="Hide the reporter's identity from agencies.")
    confidential: bool = Field(False, description="Rahasia: the whole report is confidential.")
    attachments: list[HttpUrl] = Field(default_factory=list, max_length=ATTACHMENTS_MAX)
    linked_to: TicketLink | None = Field(
        None, description="Set only by Disposisi when a city forwards a complaint to its province "
                          "tenant (on `complaints.submitted`); refused over HTTP.")


class Complaint(BaseModel):
    """An accepted complaint with its tracking number (`complaint.received`)."""

    ticket_id: str = Field(min_length=1, max_length=64)
    channel: Channel
    text: str = Field(min_length=1, max_length=TEXT_MAX)
    title: str | None = Field(None, max_length=TITLE_MAX)
    external_id: str | None = Field(None, max_length=128)
    category: str | None = Field(None, max_length=NAME_MAX,
                                 description="The channel's category hint (see the submission).")
    location: Location | None = None
    reporter: Reporter | None = None
    anonymous: bool = False
    confidential: bool = False
    attachments: list[Annotated[str, Field(max_length=URL_MAX)]] = Field(
        default_factory=list, max_length=ATTACHMENTS_MAX)
    submitted_at: datetime
    linked_to: TicketLink | None = Field(None, description="The city's ticket it was forwarded from.")

    @property
    def identity_hidden(self) -> bool:
        return self.anonymous or self.confidential


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Candidate(BaseModel):
    agency: AgencyCode
    score: float
    rule_ids: list[Annotated[str, Field(max_length=NAME_MAX)]] = Field(
        default_factory=list, max_length=EXPLANATION_ITEMS_MAX)


class SecondOpinion(BaseModel):
    """What the statistical model (trained on the desk's labelled examples) made of the
    complaint: it may settle a TRIAGE the rules were unsure of when both agree, and it flags a
    confident rule decision it strongly disputes for the triage desk (``review``)."""

    agency: AgencyCode = Field(description="The model's first choice.")
    probability: float = Field(ge=0, le=1, description="The model's probability for it.")
    rules_choice_probability: float = Field(
        ge=0, le=1, description="The model's probability for the rules' first candidate.")
    verdict: Literal["agrees", "decided", "differs", "disputes"] = Field(
        description="agrees: same first choice; decided: it settled a TRIAGE with the rules' "
                    "first candidate; differs: another first choice, nothing changed; disputes: "
                    "it strongly disagrees with a confident rule decision.")
    review: bool = Field(False, description="True: the triage desk should look at this decision.")
    model_version: str = Field(max_length=NAME_MAX)


class PlaceFound(BaseModel):
    """Where the router placed a complaint, and from what: the reporter's own kelurahan or
    kecamatan, the coordinates (the tenant's shipped kelurahan boundaries), or place names in
    the address (the gazetteer). ``source`` is "none" when nothing placed it, e.g. coordinates
    outside the tenant: then no kelurahan is guessed, and ``note`` says why."""

    kecamatan: str | None = Field(None, max_length=NAME_MAX)
    kelurahan: str | None = Field(None, max_length=NAME_MAX)
    source: Literal["reporter", "coordinates", "address", "none"]
    note: str = Field("", max_length=REASON_MAX, description="One sentence for humans.")


class DuplicateWindow(BaseModel):
    """How near and how soon after an open ticket of the same agency and category a new
    complaint counts as the same problem (the rulebook's ``duplicates``, per category)."""

    metres: float = Field(gt=0, le=5000)
    hours: float = Field(gt=0, le=24 * 90)


class RoutingExplanation(BaseModel):
    """Why the router chose this agency, in terms a civil servant can check."""

    rulebook_version: str = Field(max_length=NAME_MAX, description="Content hash of the rulebook used.")
    rule_ids: list[Annotated[str, Field(max_length=NAME_MAX)]] = Field(
        default_factory=list, max_length=EXPLANATION_ITEMS_MAX,
        description="Rules that fired for the winner.")
    matched_terms: list[Annotated[str, Field(max_length=NAME_MAX)]] = Field(
        default_factory=list, max_length=EXPLANATION_ITEMS_MAX,
        description="Phrases found in the text.")
    score: float = 0.0
    confidence: float = Field(0.0, ge=0, le=1)
    candidates: list[Candidate] = Field(default_factory=list, max_length=20,
                                        description="Top candidates.")
    # A re-routing's reason quotes the rejection's (REASON_MAX) and the actor (ACTOR_MAX).
    reason: str = Field("", max_length=4 * REASON_MAX, description="One sentence for humans.")
    second_opinion: "SecondOpinion | None" = Field(
        None, description="The statistical second opinion, when one was consulted.")
    place: PlaceFound | None = Field(
        None, description="Where the complaint was placed and from what (coordinates, address).")


class TicketRouted(BaseModel):
    """The router's decision (`ticket.routed` on `disposisi.tickets.routed`).

    A ticket is routed once per assignment: re-routing after a rejection, or by hand from the
    triage desk, publishes a new `ticket.routed` with the next ``assignment`` number.
    """

    agency: AgencyCode = Field(description="Agency code, e.g. DLH, EXT_PLN or TRIAGE.")
    agency_name: str = Field(max_length=NAME_MAX)
    authority: Literal["kota", "provinsi", "pusat", "bumn", "internal"]
    priority: Priority
    category: str | None = Field(None, max_length=NAME_MAX)
    routing: RoutingExplanation
    channel: Channel
    title: str | None = Field(None, max_length=MASKED_GROWTH * TITLE_MAX)
    text: str = Field(max_length=MASKED_GROWTH * TEXT_MAX,
                      description="The complaint text, with contact details masked when anonymous.")
    location: Location | None = None
    anonymous: bool = False
    confidential: bool = False
    submitted_at: datetime
    attachments: list[Annotated[str, Field(max_length=URL_MAX)]] = Field(
        default_factory=list, max_length=ATTACHMENTS_MAX)
    reporter: Reporter | None = Field(None, description="Absent when anonymous or confidential.")
    assignment: int = Field(1, ge=1, description="1 for the first decision, +1 per re-routing.")
    previous_agency: AgencyCode | None = Field(
        None, description="The agency this ticket was taken from.")
    rejected_by: list[AgencyCode] = Field(
        default_factory=list, max_length=100,
        description="Agencies that rejected this ticket so far.")
    assigned_by: str | None = Field(
        None, max_length=ACTOR_MAX,
        description="Who assigned it by hand (triage desk); null for the router.")
    linked_to: TicketLink | None = Field(
        None, description="The city's ticket this complaint was forwarded from (province tenant).")
    duplicates: DuplicateWindow | None = Field(
        None, description="Set on a first assignment whose category the rulebook deduplicates "
                          "and that has coordinates: the SLA service links it to an open ticket "
                          "of the same agency and category within this window instead of "
                          "opening a second one.")

    @model_validator(mode="after")
    def _identity_stays_hidden(self) -> "TicketRouted":
        if (self.anonymous or self.confidential) and self.reporter is not None:
            raise ValueError("an anonymous or confidential complaint cannot carry its reporter")
        return self


class AgencyTicket(TicketRouted):
    """What an agency receives on its queue (`ticket.assigned`): the decision and the complaint,
    never the identity of a reporter who asked for anonymity or confidentiality."""


class TicketOpened(BaseModel):
    """The SLA service stored this ticket and runs its clocks (`ticket.opened` on
    `disposisi.tickets.opened`). Intake counts a complaint as ticketed only on this event, so
    a complaint or a routing decision lost on the way is noticed and sent again. Announced
    again (same event id) whenever the ticket's routing decision is read again."""

    agency: str = Field(description="The agency of the assignment that opened the ticket.")
    assignment: int = Field(ge=1, description="That assignment's number.")
    opened_at: datetime = Field(description="When the SLA service stored the ticket.")


# What of a ticket's history a citizen may follow: the steps of their complaint and the
# messages meant for them. Internal notes, rejections between agencies and officers' names stay
# inside government (Zammad: internal notes are not replies).
PUBLIC_ACTIONS = frozenset({"assigned", "rerouted", "acknowledged", "responded", "needs_info",
                            "citizen_replied", "resolved"})
# Only these notes are written for the citizen; a routing note may quote an agency's reasons
# for rejecting the complaint and the desk officer who re-assigned it.
NOTES_FOR_THE_CITIZEN = frozenset({"acknowledged", "responded", "needs_info", "citizen_replied",
                                   "resolved"})
CHANGED_HISTORY_MAX = 200  # steps carried by ticket.changed: the newest ones


class PublicStep(BaseModel):
    """One step of a ticket as the citizen may follow it: never who acted or an internal note."""

    at: datetime
    action: str = Field(max_length=40)
    agency: str | None = Field(None, max_length=CODE_MAX)
    note: str | None = Field(None, max_length=NOTE_MAX,
                             description="Only for a message meant for the citizen.")


class TicketChanged(BaseModel):
    """The SLA service's ticket as the public may follow it, after each change (`ticket.changed`
    on `disposisi.tickets.changes`; event id derived from ticket and version, so a repeat is the
    same event). Intake keeps its tracking view from these, never reading the SLA's store, and
    counts a citizen's reply as settled once its event id is listed here. Announced again
    (same id) whenever the SLA reads an update it already applied or refused."""

    version: int = Field(ge=1, description="The ticket's version: a reader keeps the highest.")
    status: str = Field(max_length=40)
    agency: AgencyCode
    agency_name: str | None = Field(None, max_length=NAME_MAX)
    priority: Priority | None = None
    category: str | None = Field(None, max_length=NAME_MAX)
    assignment: int = Field(1, ge=1)
    routing: RoutingExplanation | None = None
    deadlines: dict[str, datetime | None] = Field(default_factory=dict)
    history: list[PublicStep] = Field(default_factory=list, max_length=CHANGED_HISTORY_MAX,
                                      description="The public steps (PUBLIC_ACTIONS), newest last.")
    replies_applied: list[Annotated[str, Field(max_length=128)]] = Field(
        default_factory=list, max_length=1000,
        description="Event ids of the citizen's replies (citizen_replied) this ticket applied.")
    replies_refused: list[Annotated[str, Field(max_length=128)]] = Field(
        default_factory=list, max_length=1000,
        description="Event ids of citizen's replies refused (the ticket was not waiting).")
    duplicate_of: str | None = Field(
        None, max_length=64,
        description="Set when this complaint was linked to an open ticket of the same problem: "
                    "the state shown is that ticket's, whose tracking number this is.")
    duplicate_reason: str | None = Field(None, max_length=REASON_MAX,
                                         description="Why it was linked (distance, time).")


class TicketWithdrawn(BaseModel):
    """Sent to an agency's queue when a ticket is taken from it (`ticket.withdrawn`)."""

    agency: str = Field(description="The agency that loses the ticket.")
    assignment: int = Field(ge=1, description="The assignment that ends.")
    new_agency: str = Field(description="Where the ticket went.")
    reason: str


class UpdateAction(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    RESPONDED = "responded"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    NEEDS_INFO = "needs_info"
    CITIZEN_REPLIED = "citizen_replied"
    NOTE = "note"
    REPRIORITISED = "reprioritised"
    # An officer takes the ticket on (assigns it to themself); no clock or status changes.
    PICKED_UP = "picked_up"


class TicketUpdate(Strict):
    """An action on a ticket (`ticket.update` on `disposisi.tickets.updates`).

    ``responded`` is a reply the citizen can see and stops the response clock;
    ``acknowledged`` and ``note`` (internal) never stop a clock; ``needs_info`` pauses the
    clocks until ``citizen_replied``.
    """

    action: UpdateAction
    actor: VisibleText | None = Field(None, max_length=ACTOR_MAX,
                                      description="Who acted (officer or system).")
    note: VisibleText | None = Field(None, max_length=NOTE_MAX, description="Message for the citizen.")
    reason: VisibleText | None = Field(None, max_length=REASON_MAX, description="Why rejected.")
    suggested_agency: VisibleText | None = Field(None, max_length=CODE_MAX,
                                                 description="Who should take it.")
    priority: Priority | None = Field(None, description="The new priority (reprioritised only).")

    @model_validator(mode="after")
    def _fields_fit_the_action(self) -> "TicketUpdate":
        # "Not our responsibility" alone reads as a brush-off: say why, and who should own it.
        if self.action is UpdateAction.REJECTED and not (self.reason and self.suggested_agency):
            raise ValueError("a rejection must give a reason and a suggested_agency")
        if (self.action is UpdateAction.REPRIORITISED) != (self.priority is not None):
            raise ValueError("priority is given with, and only with, action reprioritised")
        return self


class Recipient(BaseModel):
    role: str = Field(description="Escalation role, e.g. agency_head, inspektorat, ombudsman.")
    name: str | None = Field(None, description="Who holds the role, from the rulebook.")


class Escalation(BaseModel):
    """A supervisor alert (`ticket.escalated` on `disposisi.escalations`)."""

    agency: str
    assignment: int = Field(1, ge=1)
    level: int = Field(ge=1)
    clock: str = Field(description="Which clock: e.g. response, update, resolution, routing.")
    trigger: str = Field(description="What fired, e.g. '75% of response target'.")
    target_seconds: float | None = Field(None, description="The clock's target, working seconds.")
    elapsed_seconds: float | None = Field(None, description="Working seconds elapsed, pauses excluded.")
    due_at: datetime | None = Field(None, description="When the clock's target runs out.")
    triggered_at: datetime = Field(description="When this level was due to fire.")
    fired_at: datetime
    late: bool = Field(description="True when fired well after its trigger (service was down).")
    repeat: int = Field(0, ge=0, description="0 for the first notice, n for the n-th re-notify.")
    recipients: list[Recipient] = Field(description="Who to notify, by role.")


class EscalationAcknowledged(BaseModel):
    """A supervisor acknowledged an escalation (`escalation.acknowledged` on
    `disposisi.escalations.acknowledged`): its step (ticket, assignment, clock, level) sends no
    more re-notifications. Higher levels of the ladder still fire when they come due."""

    escalation_id: str = Field(description="The acknowledged escalation, as listed by the SLA API.")
    agency: str
    assignment: int = Field(ge=1)
    clock: str
    level: int = Field(ge=1)
    repeat: int = Field(ge=0, description="Which notice of the step was acknowledged.")
    acknowledged_by: str = Field(max_length=ACTOR_MAX,
                                 description="The supervisor, e.g. 'inspektorat (supervisor)'.")
    acknowledged_at: datetime


class RerouteRequest(BaseModel):
    """The SLA service asks the router for a new decision (`ticket.reroute_requested` on
    `disposisi.tickets.reroute`): after an agency's rejection, or when the triage desk
    assigns an agency by hand."""

    ticket: TicketRouted = Field(description="The ticket as currently assigned.")
    cause: Literal["rejected", "manual"]
    actor: str | None = Field(None, max_length=ACTOR_MAX)
    reason: str = Field(max_length=REASON_MAX)
    suggested_agency: str | None = Field(None, max_length=CODE_MAX,
                                         description="The rejecting agency's suggestion.")
    agency: AgencyCode | None = Field(None, description="Manual: the agency the triage desk chose.")


class DeadLetter(BaseModel):
    """A message a consumer could not accept, with the reason (`disposisi.deadletter`)."""

    source_topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = Field(None, description="The record's key (cut to 200 characters).")
    service: str
    reason: str
    payload: str = Field(description="The original bytes as UTF-8 text (invalid bytes replaced); "
                                     "only the start of them when `payload_truncated`.")
    payload_truncated: bool = Field(
        False, description="True when the record was too large to carry whole.")
    payload_size: int | None = Field(None, description="Size of the original record, in bytes.")
    payload_sha256: str | None = Field(
        None, description="SHA-256 (hex) of the whole original record, to match it to a copy.")


DataT = TypeVar("DataT", bound=BaseModel)


class Envelope(BaseModel, Generic[DataT]):
    """Every message on every Disposisi topic."""

    id: str = Field(min_length=1, max_length=128, description="Event id (UUID). Consumers dedupe on it.")
    type: EventType
    schema_version: int = SCHEMA_VERSION
    time: datetime = Field(default_factory=utc_now, description="When the event was made, UTC.")
    tenant: str = Field(max_length=100)
    ticket_id: str | None = Field(None, max_length=64,
                                  description="Tracking number; also the Kafka key.")
    data: DataT

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


def envelope(
    data: DataT, *, type: EventType, tenant: str, ticket_id: str | None, event_id: str,
) -> Envelope[DataT]:
    return Envelope[DataT](
        id=event_id, type=type, time=utc_now(), tenant=tenant, ticket_id=ticket_id, data=data,
    )


def describe_errors(errors: list[Any]) -> str:
    """Pydantic errors as 'field: problem; ...', the form used in 422s and dead letters."""
    parts = []
    for error in errors:
        field = ".".join(str(p) for p in error.get("loc", ())) or "(message)"
        parts.append(f"{field}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)
