"""A city and its province on one deployment: what the city's rulebook routes to the province
(``forward_agency``, EXT_PROVINSI) becomes a new complaint in the province tenant's intake,
linked to the city's ticket; the province ticket's progress comes back to the city's ticket as
updates. The only path on which anything crosses tenants, and only between a city and the
province its registry entry names.

Both directions are driven from the store, so a process that dies between two steps loses
nothing and repeats nothing twice:

- **Forward**: when a routing decision to the forwarding agency takes effect, a
  ``complaint.submitted`` of the province tenant is stored in the ``forwards`` outbox (one per
  city ticket, its event id derived from the ticket) before the decision's offset is
  committed; the outbox relay publishes it, and the province's intake dedupes by event id.
- **Progress**: when a linked province ticket opens, a cursor (``link_cursors``) is stored
  with it. A sweep reads each open cursor's ticket, publishes the history entries after the
  cursor as ``ticket.update`` events of the city's ticket (ids derived from the province ticket
  and the entry's place, published one at a time, in order), and only then moves the cursor; a
  crash in between republishes the same ids, which the city's ticket has applied already.

What crosses (privacy): the complaint as the city's agency queue carries it. An anonymous or
confidential complaint goes masked, without its reporter, with its flags, so the province
masks and withholds as the city did; for the others the reporter goes too, since the province
must answer the citizen. Back come only the steps the citizen may see (accepted, responded,
resolved, asked for information, handed to another agency) with the province's messages to the
citizen, never its internal notes, rejection reasons or officers' names.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from faststream.kafka import KafkaBroker
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from shared.contracts import (
    NOTE_MAX,
    TEXT_MAX,
    TITLE_MAX,
    ComplaintSubmission,
    Envelope,
    EventType,
    TicketLink,
    TicketRouted,
    TicketUpdate,
    Topics,
    UpdateAction,
    derived_event_id,
    envelope,
    utc_now,
)
from shared.kafka import publish_raw
from shared.mongo import Document, insert_new
from shared.outbox import OutboxRelay, outbox_fields
from shared.settings import Settings
from shared.tenants import Tenants

log = logging.getLogger(__name__)

FORWARDS = "forwards"
CURSORS = "link_cursors"
# A string, not a boolean: NX-27017 stores a boolean given to $set as 0/1, which an equality
# query on false/true then misses.
OPEN, CLOSED = "open", "closed"
A = UpdateAction


@dataclass(frozen=True)
class Progress:
    """One step of the province's ticket as the city's ticket records it."""

    action: UpdateAction
    note: str


def progress_of(entry: dict[str, Any], *, province_ticket: str, province_name: str,
                agency_name: str) -> Progress | None:
    """What a history entry of the province's ticket means for the city's; None for what
    stays inside the province (notes, reprioritising, the citizen's own replies)."""
    action, note = entry.get("action"), entry.get("note") or ""
    at = f"{province_name} ({agency_name})"
    if action == "assigned":
        return Progress(A.ACKNOWLEDGED, f"Diteruskan ke {province_name}, nomor {province_ticket}; "
                                        f"ditangani {agency_name}.")
    if action == "rerouted":
        return Progress(A.NOTE, f"{province_ticket}: dialihkan ke {agency_name}.")
    if action == "acknowledged":
        return Progress(A.NOTE, f"{province_ticket}: diterima {at}.")
    if action == "rejected":
        return Progress(A.NOTE, f"{province_ticket}: {at} mengembalikannya; dialihkan.")
    if action == "needs_info":
        return Progress(A.NOTE, f"{province_ticket}: {at} meminta informasi tambahan: {note}")
    if action in ("responded", "resolved"):
        return Progress(A(action), f"{at}: {note}" if note else f"{at}: {action}")
    return None


def forwarded_submission(routed: TicketRouted, link: TicketLink) -> ComplaintSubmission:
    """The complaint as the province's intake takes it: what the city's agency queue got."""
    return ComplaintSubmission(
        channel=routed.channel, text=routed.text[:TEXT_MAX],
        title=routed.title[:TITLE_MAX] if routed.title else None, location=routed.location,
        reporter=routed.reporter, anonymous=routed.anonymous, confidential=routed.confidential,
        attachments=routed.attachments,
        linked_to=link)


class ProvinceLinks:
    """Forwards to the province and carries its progress back (see the module's text)."""

    def __init__(self, settings: Settings, tenants: Tenants, db: AsyncDatabase[Document],
                 broker: KafkaBroker, agency_name: Callable[[str, str], str]) -> None:
        self.settings = settings
        self.tenants = tenants
        self.tickets = db["tickets"]
        self.forwards = db[FORWARDS]
        self.cursors = db[CURSORS]
        self.broker = broker
        self.agency_name = agency_name  # (tenant, code) -> the agency's name
        self.relay = OutboxRelay(self.forwards, broker, lease_seconds=settings.outbox_lease_seconds,
                                 owner=settings.instance_id)

    async def ensure_indexes(self) -> None:
        await self.relay.ensure_indexes()
        await self.cursors.create_index([("state", ASCENDING)])

    # --- decisions that took effect -----------------------------------------------------------

    async def routed(self, took_effect: Sequence[Envelope[TicketRouted]]) -> None:
        """Store what these decisions cause: a forward for each city ticket now with the
        province, a cursor for each province ticket linked to a city's. Called before the
        decisions' offsets are committed, so a crash means a redelivery that stores it again
        (once: ids are derived)."""
        now = utc_now()
        forwards = [self._forward(e, now) for e in took_effect if self._goes_to_province(e)]
        cursors = [self._cursor(e) for e in took_effect if self._linked(e)]
        await insert_new(self.forwards, forwards)
        await insert_new(self.cursors, cursors)
        if forwards:
            stored = await self.forwards.find(
                {"_id": {"$in": [f["_id"] for f in forwards]}}).to_list(None)
            try:
                await self.relay.publish([d for d in stored
                                          if d.get("lease_owner") == self.settings.instance_id])
            except Exception as error:  # stored: the sweep publishes it
                log.warning("forwarding %d complaints to the province failed, the sweep will "
                            "retry: %s", len(stored), error)

    def _goes_to_province(self, event: Envelope[TicketRouted]) -> bool:
        tenant = self.tenants.by_id.get(event.tenant)
        return (tenant is not None and tenant.province is not None
                and event.data.agency == tenant.forward_agency)

    def _linked(self, event: Envelope[TicketRouted]) -> bool:
        link = event.data.linked_to
        return link is not None and event.data.assignment == 1 and \
            self.tenants.forwards_from(event.tenant, link.tenant)

    def _forward(self, event: Envelope[TicketRouted], now: datetime) -> Document:
        city, ticket_id = event.tenant, str(event.ticket_id)
        province = self.tenants.province_of(city)
        assert province is not None
        submission = forwarded_submission(event.data, TicketLink(tenant=city, ticket_id=ticket_id))
        # Once per city ticket, whatever its later assignments: the province has it.
        forward = envelope(submission, type=EventType.COMPLAINT_SUBMITTED, tenant=province.id,
                           ticket_id=None, event_id=derived_event_id("forward", city, ticket_id))
        return {"_id": f"{city}:{ticket_id}", "tenant": city, "ticket_id": ticket_id,
                "province": province.id, "created_at": now,
                **outbox_fields(Topics.SUBMITTED, forward, now=now, owner=self.settings.instance_id,
                                lease_seconds=self.settings.outbox_lease_seconds)}

    def _cursor(self, event: Envelope[TicketRouted]) -> Document:
        link = event.data.linked_to
        assert link is not None
        return {"_id": str(event.ticket_id), "tenant": event.tenant,
                "linked_to": link.model_dump(), "forwarded": 0, "state": OPEN}

    # --- the province's progress, back to the city ---------------------------------------------

    async def sweep(self) -> int:
        """Publish new steps of linked province tickets to their city tickets; returns how
        many were published."""
        await self.relay.sweep()
        sent = 0
        batch = self.settings.scheduler_batch_size
        for cursor in await self.cursors.find({"state": OPEN}).limit(batch).to_list(None):
            sent += await self._carry(cursor)
        return sent

    async def _carry(self, cursor: Document) -> int:
        province = cursor["tenant"]
        ticket = await self.tickets.find_one({"_id": cursor["_id"], "tenant": province})
        if ticket is None:
            return 0
        history: list[dict[str, Any]] = ticket["history"]
        start = int(cursor["forwarded"])
        link = TicketLink.model_validate(cursor["linked_to"])
        messages = [self._update(ticket, link, index, entry)
                    for index, entry in enumerate(history[start:], start)]
        for message in (m for m in messages if m is not None):  # one at a time: in order
            await publish_raw(self.broker, [message])
        # Moved only from where it was read: a replica that got there first wins, and this
        # one's duplicates are applied once by the city's ticket (same event ids).
        await self.cursors.update_one(
            {"_id": cursor["_id"], "forwarded": start},
            {"$set": {"forwarded": len(history),
                      "state": CLOSED if ticket["status"] == "resolved" else OPEN}})
        return sum(m is not None for m in messages)

    def _update(self, ticket: Document, link: TicketLink, index: int,
                entry: dict[str, Any]) -> tuple[str, str, bytes, str] | None:
        province = self.tenants.get(ticket["tenant"])
        agency = str(entry.get("agency") or ticket["agency"])
        step = progress_of(entry, province_ticket=ticket["_id"], province_name=province.name,
                           agency_name=self.agency_name(province.id, agency))
        if step is None:
            return None
        update = TicketUpdate(action=step.action, note=step.note[:NOTE_MAX],
                              actor=f"{province.id} ({ticket['_id']})"[:120])
        event = envelope(update, type=EventType.TICKET_UPDATE, tenant=link.tenant,
                         ticket_id=link.ticket_id,
                         event_id=derived_event_id("province-progress", ticket["_id"], str(index)))
        return Topics.UPDATES, link.ticket_id, event.to_bytes(), event.type.value
