"""Intake decisions: tracking numbers and codes, idempotency keys, accepted complaints and
what of them leaves intake. No I/O."""

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from shared.contracts import (
    NOTES_FOR_THE_CITIZEN,
    PUBLIC_ACTIONS,
    Complaint,
    ComplaintSubmission,
    Reporter,
)
from shared.privacy import mask_optional, mask_personal

# Crockford's base32 without I, L, O, U: read aloud over the phone without confusion.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ticket_id(prefix: str, now: datetime, random_bits: int | None = None) -> str:
    """A tracking number like ``BKL-261128-7K3QX9AB``: tenant, local date, 40 random bits."""
    bits = secrets.randbits(40) if random_bits is None else random_bits
    code = "".join(_ALPHABET[(bits >> shift) & 31] for shift in range(35, -1, -5))
    return f"{prefix}-{now:%y%m%d}-{code}"


def idempotency_key(submission: ComplaintSubmission, *, tenant: str,
                    header_key: str | None = None, event_id: str | None = None) -> str | None:
    """What makes two submissions 'the same complaint'. The channel's own id wins over the
    transport's retry key: a channel that retries with a new event id is still deduped. Both
    are the tenant's own: another tenant using the same id (the same LAPOR! report sent to a
    city and its province) is another complaint, never the first tenant's ticket. Event ids
    are unique across tenants already."""
    if submission.external_id:
        return f"ext:{tenant}:{submission.channel.value}:{submission.external_id}"
    if header_key:
        return f"key:{tenant}:{header_key}"
    if event_id:
        return f"evt:{event_id}"
    return None


def fingerprint(submission: ComplaintSubmission) -> str:
    """Content hash, to tell a retry (same content) from a reused key (different content)."""
    return hashlib.sha256(submission.model_dump_json().encode()).hexdigest()


def accept(submission: ComplaintSubmission, *, ticket_id: str, now: datetime) -> Complaint:
    """The complaint as the citizen sent it, with its tracking number."""
    return Complaint(
        ticket_id=ticket_id, channel=submission.channel, text=submission.text,
        title=submission.title, external_id=submission.external_id,
        category=submission.category,
        location=submission.location, reporter=submission.reporter,
        anonymous=submission.anonymous, confidential=submission.confidential,
        attachments=[str(url) for url in submission.attachments], submitted_at=now,
        linked_to=submission.linked_to,
    )


# What a citizen holding the tracking number sees of a ticket's history is what the SLA
# service announces (shared.contracts: PUBLIC_ACTIONS, NOTES_FOR_THE_CITIZEN); filtered again
# here, so the view holds to it whatever a producer of ticket.changed sends.


def public_history(history: list[dict[str, Any]], *, with_notes: bool = True) -> list[dict[str, Any]]:
    """The steps of a complaint; the agency's messages only for the holder of the tracking
    code (they may quote the complaint)."""
    return [{"at": entry.get("at"), "action": entry["action"], "agency": entry.get("agency"),
             "note": entry.get("note") if with_notes and entry["action"] in NOTES_FOR_THE_CITIZEN
             else None}
            for entry in history if entry.get("action") in PUBLIC_ACTIONS]


# The router's explanation without the parts that quote the text (matched terms) or, after a
# re-routing, name the desk officer and an agency's reasons for rejecting (reason).
_ROUTING_FOR_ANYONE = ("rulebook_version", "rule_ids", "confidence")


def public_routing(routing: dict[str, Any] | None, *, assignment: int,
                   with_content: bool) -> dict[str, Any] | None:
    if routing is None:
        return None
    shown = {k: routing.get(k) for k in _ROUTING_FOR_ANYONE}
    if with_content:
        shown["matched_terms"] = routing.get("matched_terms", [])
        if assignment == 1:  # the router's own first decision: its reasons are about the text
            shown["reason"] = routing.get("reason")
    return shown


# --- what leaves intake ---------------------------------------------------------------------

class Withheld(TypedDict):
    """What intake keeps of an anonymous or confidential complaint and never publishes: the
    reporter (to reach the citizen) and the words as written (masking can hide more than it
    should: the original is the record)."""

    reporter: dict[str, Any] | None
    text: str
    title: str | None
    address: str | None
    # The URLs of its files as given: the files behind them may carry the reporter's GPS and
    # name; agencies read intake's stripped copies instead (services.intake.attachments).
    attachments: NotRequired[list[str]]


def reporter_names(reporter: Reporter | dict[str, Any] | None) -> list[str]:
    if reporter is None:
        return []
    name = reporter.name if isinstance(reporter, Reporter) else reporter.get("name")
    return [name] if name else []


def mask_for(complaint: Complaint, text: str) -> str:
    """Text written by the citizen of this complaint (the complaint itself, or a reply), as
    agencies and the public may read it."""
    if not complaint.identity_hidden:
        return text
    return mask_personal(text, names=reporter_names(complaint.reporter))


def to_publish(complaint: Complaint) -> tuple[Complaint, Withheld | None]:
    """The complaint as ``complaint.received`` carries it, and what is withheld from it.

    The broker is read by every service and, unless secured, by anyone on its network: an
    anonymous or confidential complaint leaves intake without its reporter and with names,
    NIK/KK numbers, phone numbers and e-mail addresses masked in its text, title and address,
    and without the URLs of its files (intake keeps stripped copies of them).
    """
    if not complaint.identity_hidden:
        return complaint, None
    names = reporter_names(complaint.reporter)
    location = complaint.location
    withheld = Withheld(
        reporter=complaint.reporter.model_dump(mode="json") if complaint.reporter else None,
        text=complaint.text, title=complaint.title,
        address=location.address if location else None, attachments=list(complaint.attachments))
    masked_location = location.model_copy(update={
        "address": mask_optional(location.address, names=names)}) if location else None
    published = complaint.model_copy(update={
        "text": mask_personal(complaint.text, names=names),
        "title": mask_optional(complaint.title, names=names),
        "location": masked_location, "reporter": None, "attachments": []})
    return published, withheld


# --- tracking codes ------------------------------------------------------------------------

TRACKING_CODE_LENGTH = 12  # 60 random bits: out of reach of guessing, short enough to copy
_CODE_DECODING = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})


def new_tracking_code() -> str:
    """A code like ``7K3Q-X9AB-M2PD``, shown once with the tracking number: with the number,
    it lets the citizen read their complaint and answer the agency."""
    # One call for all the randomness: the alphabet has 32 letters, so the low 5 bits of each
    # random byte pick one uniformly (a secrets.choice per letter cost more than the rest of
    # the code's handling of a submission).
    code = "".join(_ALPHABET[b & 31] for b in secrets.token_bytes(TRACKING_CODE_LENGTH))
    return "-".join(code[i:i + 4] for i in range(0, TRACKING_CODE_LENGTH, 4))


def normalise_tracking_code(code: str) -> str:
    """As Crockford's base32 reads it: any case, dashes and spaces ignored, O as 0, I/L as 1."""
    return code.upper().translate(_CODE_DECODING)


def hash_tracking_code(code: str, salt: str | None = None) -> str:
    """Stored instead of the code. 60 random bits make a fast salted hash enough: there is no
    dictionary to try, and a stolen database gives no code back in useful time."""
    salt = salt if salt is not None else secrets.token_hex(16)
    text = f"{salt}:{normalise_tracking_code(code)}"
    digest = hashlib.sha256(text.encode(errors="replace")).hexdigest()
    return f"sha256${salt}${digest}"


def tracking_code_matches(code: str | None, stored: list[str]) -> bool:
    if not code:
        return False
    matches = False
    for entry in stored:
        _, salt, _ = entry.split("$", 2)
        # Compare every entry, in constant time, so timing tells nothing.
        matches |= hmac.compare_digest(hash_tracking_code(code, salt), entry)
    return matches
