"""Labelled examples from the complaint desk: each time a person names the right agency for a
complaint (the triage desk assigns or re-routes it by hand, or a rejecting agency's suggestion
is taken), the router keeps the complaint's text with the decision that person corrected.

Pure functions: the router's reroute handler turns each request it is given into at most one
example (label_store.py keeps them); ``disposisi rules suggest`` and the second opinion read
them back. Only what routing reads is kept (text, title, place, channel, category), never the
reporter: an anonymous complaint's text is the masked text the agencies saw.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypedDict

from services.router.rerouting import valid_suggestion
from services.router.rulebook import Rulebook
from shared.contracts import Channel, Envelope, Location, RerouteRequest, utc_now

LabelKind = Literal["desk", "reroute", "suggestion"]


class RoutedBefore(TypedDict):
    """The decision the person corrected, as the ticket carried it."""

    agency: str
    confidence: float
    rule_ids: list[str]
    candidates: list[dict[str, Any]]  # {"agency", "score", "rule_ids"}, best first
    rulebook_version: str
    reason: str


class LabelDoc(TypedDict):
    """One labelled example in the router's ``routing_labels`` collection."""

    _id: str  # the reroute request's event id: a redelivered request is the same example
    tenant: str
    ticket_id: str
    assignment: int  # the assignment the correction opens (a later one supersedes it)
    kind: LabelKind
    text: str
    title: str | None
    location: dict[str, Any] | None
    channel: str
    category: str | None
    routed: RoutedBefore
    agency: str  # the corrected agency
    corrected_by: str | None
    corrected_at: datetime
    recorded_at: datetime


def corrected_agency(rulebook: Rulebook, request: RerouteRequest, *, max_bounces: int) -> str | None:
    """The agency a person named for this ticket, when the router will carry it out; None when
    nobody did (a rejection without a usable suggestion, or one past the bounce limit)."""
    if request.cause == "manual":
        code = request.agency
        return code if code in rulebook.codes and code != rulebook.fallback else None
    ticket = request.ticket
    if len(ticket.rejected_by) >= max_bounces:
        return None
    return valid_suggestion(rulebook, request.suggested_agency,
                            frozenset({*ticket.rejected_by, ticket.agency}))


def label_of(rulebook: Rulebook, requested: Envelope[RerouteRequest], *,
             max_bounces: int) -> LabelDoc | None:
    request = requested.data
    agency = corrected_agency(rulebook, request, max_bounces=max_bounces)
    if agency is None or requested.ticket_id is None:
        return None
    ticket = request.ticket
    kind: LabelKind = ("suggestion" if request.cause == "rejected"
                       else "desk" if ticket.agency == rulebook.fallback else "reroute")
    routing = ticket.routing
    return LabelDoc(
        _id=requested.id, tenant=requested.tenant, ticket_id=requested.ticket_id,
        assignment=ticket.assignment + 1, kind=kind, text=ticket.text, title=ticket.title,
        location=ticket.location.model_dump(mode="json", exclude_none=True) if ticket.location else None,
        channel=ticket.channel.value, category=ticket.category,
        routed=RoutedBefore(agency=ticket.agency, confidence=routing.confidence,
                            rule_ids=list(routing.rule_ids),
                            candidates=[c.model_dump(mode="json") for c in routing.candidates],
                            rulebook_version=routing.rulebook_version, reason=routing.reason),
        agency=agency, corrected_by=request.actor if request.cause == "manual" else None,
        corrected_at=requested.time, recorded_at=utc_now())


def latest_per_ticket(docs: Iterable[LabelDoc]) -> list[LabelDoc]:
    """One example per ticket: the last correction (highest assignment) is the last word; an
    agency that was suggested and then handed the ticket on was not the answer."""
    latest: dict[tuple[str, str], LabelDoc] = {}
    for doc in docs:
        key = (doc["tenant"], doc["ticket_id"])
        if key not in latest or doc["assignment"] > latest[key]["assignment"]:
            latest[key] = doc
    return sorted(latest.values(), key=lambda d: (d["corrected_at"], d["ticket_id"]))


@dataclass(frozen=True)
class Example:
    """A complaint with the agency that should get it: a line of a labelled JSON-lines set or
    a desk example. ``routed`` is the decision a desk example corrected."""

    id: str
    text: str
    agency: str
    title: str | None = None
    location: Location | None = None
    channel: Channel | None = None
    source: str = ""
    routed: str | None = None


class LabelledSetError(ValueError):
    """A labelled set that cannot be read; names the file and line, never the text."""


FORBIDDEN_FOR_TRAINING = ("holdout", "blind")


def read_labelled(path: Path) -> list[Example]:
    """One Example per non-empty line of a JSON-lines set with ``text`` and ``agency`` (or
    ``expect``, as the smoke set names it)."""
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            examples.append(Example(
                id=str(row.get("id", number)), text=str(row["text"]),
                agency=str(row["agency"] if "agency" in row else row["expect"]),
                title=row.get("title"),
                location=Location.model_validate(row["location"]) if row.get("location") else None,
                channel=Channel(row["channel"]) if row.get("channel") else None, source=path.name))
        except (ValueError, KeyError, TypeError) as error:
            raise LabelledSetError(f"{path}:{number}: {type(error).__name__}: "
                                   f"{_field_of(error)}") from error
    return examples


def for_training(path: Path) -> list[Example]:
    """A labelled set the second opinion may learn from: a holdout or blind set measures
    what was learnt, so learning from it is refused."""
    if any(word in path.name.lower() for word in FORBIDDEN_FOR_TRAINING):
        raise LabelledSetError(f"{path}: a holdout or blind set is for evaluation, not training")
    return read_labelled(path)


def _field_of(error: Exception) -> str:
    return f"missing field {error}" if isinstance(error, KeyError) else "not a valid labelled line"


def desk_examples(docs: Iterable[LabelDoc]) -> list[Example]:
    return [Example(id=doc["ticket_id"], text=doc["text"], agency=doc["agency"], title=doc["title"],
                    location=Location.model_validate(doc["location"]) if doc["location"] else None,
                    channel=Channel(doc["channel"]), source="desk", routed=doc["routed"]["agency"])
            for doc in latest_per_ticket(docs)]
