"""Intake decisions: tracking numbers, idempotency keys, accepted complaints. No I/O."""

import hashlib
import secrets
from datetime import datetime
from typing import Any

from shared.contracts import Complaint, ComplaintSubmission

# Crockford's base32 without I, L, O, U: read aloud over the phone without confusion.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ticket_id(prefix: str, now: datetime, random_bits: int | None = None) -> str:
    """A tracking number like ``BKL-261128-7K3QX9AB``: tenant, local date, 40 random bits."""
    bits = secrets.randbits(40) if random_bits is None else random_bits
    code = "".join(_ALPHABET[(bits >> shift) & 31] for shift in range(35, -1, -5))
    return f"{prefix}-{now:%y%m%d}-{code}"


def idempotency_key(submission: ComplaintSubmission, *, header_key: str | None = None,
                    event_id: str | None = None) -> str | None:
    """What makes two submissions 'the same complaint'. The channel's own id wins over the
    transport's retry key: a channel that retries with a new event id is still deduped."""
    if submission.external_id:
        return f"ext:{submission.channel.value}:{submission.external_id}"
    if header_key:
        return f"key:{header_key}"
    if event_id:
        return f"evt:{event_id}"
    return None


def fingerprint(submission: ComplaintSubmission) -> str:
    """Content hash, to tell a retry (same content) from a reused key (different content)."""
    return hashlib.sha256(submission.model_dump_json().encode()).hexdigest()


def accept(submission: ComplaintSubmission, *, ticket_id: str, now: datetime) -> Complaint:
    return Complaint(
        ticket_id=ticket_id, channel=submission.channel, text=submission.text,
        title=submission.title, external_id=submission.external_id,
        location=submission.location, reporter=submission.reporter,
        anonymous=submission.anonymous, confidential=submission.confidential,
        attachments=[str(url) for url in submission.attachments], submitted_at=now,
    )


# What a citizen holding the tracking number sees of a ticket's history: the steps of their
# complaint and the replies meant for them. Internal notes, rejections between agencies and
# the officers' names stay inside government (Zammad: internal notes are not replies).
PUBLIC_ACTIONS = frozenset({"assigned", "rerouted", "acknowledged", "responded", "needs_info",
                            "citizen_replied", "resolved"})
# Only these notes are written for the citizen; a routing note may quote an agency's reasons
# for rejecting the complaint and the desk officer who re-assigned it.
NOTES_FOR_THE_CITIZEN = frozenset({"acknowledged", "responded", "needs_info", "citizen_replied",
                                   "resolved"})


def public_history(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"at": entry.get("at"), "action": entry["action"], "agency": entry.get("agency"),
             "note": entry.get("note") if entry["action"] in NOTES_FOR_THE_CITIZEN else None}
            for entry in history if entry.get("action") in PUBLIC_ACTIONS]
