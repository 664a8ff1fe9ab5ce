"""SLA flows: open and re-assign tickets, apply updates, request re-routing, fire escalations."""

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from services.router.rulebook import Rulebook
from services.sla.audit_records import (
    escalation_record,
    manual_request_record,
    review_record,
    routing_record,
    update_actor,
    update_note,
    update_record,
)
from services.sla.domain import (
    Ticket,
    UpdateRefused,
    apply_update,
    escalations_due,
    manual_request,
    mark_fired,
    new_ticket,
    reassign,
    rejection_request,
)
from services.sla.duplicates import DuplicateLink, link, nearest_primary, probe_of, with_report
from services.sla.ladder import Notice
from services.sla.links import ProvinceLinks
from services.sla.policy import Policy
from services.sla.public import REFUSED_REPLIES, duplicate_state, public_state
from services.sla.read_model_store import ReportCounters
from services.sla.review import accept_review, accepted
from services.sla.store import TicketStore
from shared.audit import Actor, AuditRecord
from shared.audit_store import AuditLog
from shared.contracts import (
    AgencyTicket,
    Envelope,
    EventType,
    RerouteRequest,
    TicketOpened,
    TicketRouted,
    TicketUpdate,
    Topics,
    UpdateAction,
    derived_event_id,
    envelope,
    utc_now,
)
from shared.kafka import Incoming, Outgoing, dead_letter, publish_all
from shared.logs import get_logger
from shared.mongo import Document
from shared.outbox import OutboxRelay, outbox_fields
from shared.settings import Settings
from shared.telemetry import context_for, current, parent_of, ticket_spans, trace_field, tracer_for
from shared.tenants import UnknownTenant, load_tenants

__all__ = ["AlreadyRefused", "Sla", "UnknownTicket", "UpdateRefused"]

log = logging.getLogger(__name__)
events = get_logger(__name__)
_RETRIES = 10  # optimistic concurrency: re-read when another writer got there first


class UnknownTicket(LookupError):
    pass


class AlreadyRefused(UpdateRefused):
    """A citizen's reply refused before, read again: refused again, but it was already
    dead-lettered once (intake republishes a reply until the SLA service settles it)."""


@dataclass(frozen=True)
class Turn:
    claimed: int
    fired: int


@dataclass
class Sla:
    settings: Settings
    policy: Policy
    rulebook: Rulebook
    store: TicketStore
    relay: OutboxRelay          # escalations
    reroute_relay: OutboxRelay  # reroute requests
    opening_relay: OutboxRelay  # ticket.opened, for intake's reconciliation
    audit: AuditLog
    change_relay: OutboxRelay | None = None  # ticket.changed, intake's tracking view

    # --- the public state of tickets --------------------------------------------------------

    async def announce_changes(self, ticket_ids: list[str]) -> None:
        """Say ``ticket.changed`` with the public state of these tickets as stored now. Also
        for a ticket whose state was announced before: reading its input again means the first
        announcement may have been lost with the broker's log, so it goes out again under the
        same event id (derived from the ticket's version). Stored first; the sweep retries."""
        if self.change_relay is None or not ticket_ids:
            return
        now = utc_now()
        docs = await self._changes_with_duplicates(ticket_ids, now)
        await self.store.save_changes(docs)
        stored = await self.store.changes_for([d["_id"] for d in docs])
        try:
            await self.change_relay.publish([{**doc, "published": False} for doc in stored])
        except Exception as error:
            log.warning("announcing %d ticket changes failed, the sweep will retry: %s",
                        len(stored), error)

    async def announce_again_after_log_lost(self) -> None:
        """The broker came back without its log (the embedded broker restarted empty): a
        ``ticket.changed`` it had acknowledged and intake had not read yet is gone, and intake's
        tracking view would stay a change behind (no agency on a new ticket) until the ticket's
        next change. Every announcement stored within ``reconcile_after_seconds`` (the time
        the pipeline is given to answer) goes out again under its event id; intake keeps the
        highest version it has seen."""
        if self.change_relay is None:
            return
        since = utc_now() - timedelta(seconds=self.settings.reconcile_after_seconds)
        stored = await self.store.changes_since(since)
        if stored:
            log.warning("the broker lost its log: announcing %d ticket changes again", len(stored))
            await self.change_relay.publish([{**doc, "published": False} for doc in stored])

    async def _changes_with_duplicates(self, ticket_ids: list[str], now: datetime) -> list[Document]:
        """The public state of these tickets, and of every duplicate linked to them: a
        duplicate's citizen follows the primary (an id that is a duplicate stands for its
        primary). No extra query unless a ticket has duplicates or an id is not a ticket."""
        tickets = await self.store.tickets.find({"_id": {"$in": ticket_ids}}).to_list(None)
        missing = set(ticket_ids) - {t["_id"] for t in tickets}
        if missing:
            primaries = {d["primary"] for d in await self.store.duplicates.of_tickets(list(missing))}
            tickets += await self.store.tickets.find(
                {"_id": {"$in": list(primaries - {t["_id"] for t in tickets})}}).to_list(None)
        with_duplicates = [t["_id"] for t in tickets if t.get("duplicates")]
        followers = await self.store.duplicates.of_primaries(with_duplicates) \
            if with_duplicates else []
        by_id = {t["_id"]: t for t in tickets}
        return [*(self._change_doc(t, now) for t in tickets),
                *(self._change_doc(by_id[d["primary"]], now, d) for d in followers)]

    def _change_doc(self, ticket: Ticket, now: datetime,
                    duplicate: DuplicateLink | None = None) -> Document:
        ticket_id, version = ticket["_id"], ticket["version"]
        state = public_state(ticket)
        if duplicate is not None:
            ticket_id, state = duplicate["_id"], duplicate_state(state, duplicate)
        event = envelope(state, type=EventType.TICKET_CHANGED,
                         tenant=self.tenant_of(ticket), ticket_id=ticket_id,
                         event_id=derived_event_id("changed", ticket_id, str(version)))
        return {"_id": ticket_id, "ticket_id": ticket_id, "version": version, "created_at": now,
                **outbox_fields(Topics.CHANGES, event, now=now, owner=self.settings.instance_id,
                                lease_seconds=self.settings.outbox_lease_seconds)}

    # The other tenants' policies and rulebooks (``policy`` and ``rulebook`` are the home
    # tenant's): every ticket is kept by its own tenant's calendar, targets and ladder.
    others: dict[str, tuple[Policy, Rulebook]] = field(default_factory=dict)
    links: ProvinceLinks | None = None  # a city's forwards to its province and their progress
    # Escalations, breaches and the scheduler's delay, counted as each turn fires them.
    on_fired: Callable[[list[Document]], None] | None = None
    # The compliance read model: resolved tickets and fired escalations counted once.
    report_counters: ReportCounters | None = None

    # --- tenants ----------------------------------------------------------------------------

    def policy_for(self, tenant: str) -> Policy:
        return self.policy if tenant == self.settings.tenant else self._books(tenant)[0]

    def rulebook_for(self, tenant: str) -> Rulebook:
        return self.rulebook if tenant == self.settings.tenant else self._books(tenant)[1]

    def _books(self, tenant: str) -> tuple[Policy, Rulebook]:
        found = self.others.get(tenant)
        if found is None:
            raise UnknownTenant(f"tenant {tenant!r} is not served by this deployment")
        return found

    def agency_name(self, tenant: str, code: str) -> str:
        found = next((a for a in self.rulebook_for(tenant).agencies if a.code == code), None)
        return code if found is None else found.name

    def tenant_of(self, ticket: Mapping[str, object]) -> str:
        return str(ticket.get("tenant") or self.settings.tenant)

    # --- routing decisions ------------------------------------------------------------------

    async def open_tickets(self, routed: list[Envelope[TicketRouted]]) -> int:
        """Open new tickets; a newer assignment of a known ticket re-assigns it; an equal or
        older one is a duplicate and changes nothing. Returns how many tickets changed.

        Each decision that took effect (now or at an earlier delivery) is audited, in one
        append for the batch: its record is built from the event, so a redelivery after a
        crash between the ticket's write and the append appends what was missing, once.

        Traced: a span per ticket; a new ticket keeps its span's context (``trace``), so the
        escalations the scheduler fires for it later join the same trace."""
        tracer = tracer_for(self.relay.broker)
        spans = [] if tracer is None else [
            (str(e.ticket_id), context_for(e.ticket_id),
             {"disposisi.agency": e.data.agency, "disposisi.assignment": e.data.assignment})
            for e in routed]
        with ticket_spans(tracer, "ticket open", spans):
            return await self._open_tickets(routed)

    async def _open_tickets(self, routed: list[Envelope[TicketRouted]]) -> int:
        now = utc_now()
        fresh, linked, opened = await self._link_duplicates(routed, now)
        opened += await self.store.add_new([self._ticket_doc(e, now) for e in fresh])
        reassigned = 0
        took_effect = [e for e in routed if e.data.assignment == 1]
        for event in routed:
            if event.data.assignment > 1:
                changed, applied = await self._reassign(event)
                reassigned += changed
                took_effect += [event] if applied else []
        if self.links is not None:  # a duplicate is never forwarded: its primary is
            await self.links.routed([e for e in took_effect if str(e.ticket_id) not in linked])
        await self.audit.append([routing_record(e.tenant, e) for e in took_effect])
        await self._assign_new_work([e for e in routed if e.data.duplicates is not None
                                     and e.data.assignment == 1 and str(e.ticket_id) not in linked],
                                    now)
        await self._announce(routed, now)
        await self.announce_changes(list({str(e.ticket_id): None for e in routed}))
        return opened + reassigned

    def _ticket_doc(self, e: Envelope[TicketRouted], now: datetime) -> Document:
        return {**new_ticket(str(e.ticket_id), e.data, self.policy_for(e.tenant),
                             assigned_at=_assigned_at(e), now=now), "tenant": e.tenant,
                **trace_field(e.ticket_id),
                # a province's ticket of a complaint its city forwarded names the city's ticket
                "linked_to": e.data.linked_to.model_dump() if e.data.linked_to else None}

    # --- duplicates -------------------------------------------------------------------------

    async def _link_duplicates(self, routed: list[Envelope[TicketRouted]], now: datetime,
                               ) -> tuple[list[Envelope[TicketRouted]], dict[str, DuplicateLink], int]:
        """Link each first assignment that asks for it (``duplicates``) to an open ticket of
        the same problem, in the batch's order: one with no primary opens at once, so a later
        report in the same batch links to it. Returns the events still to open, the links
        (new or stored before: a redelivery links again, once) and how many changed here.
        A duplicate gets no ticket, so no clocks and no ladder."""
        fresh: list[Envelope[TicketRouted]] = []
        linked: dict[str, DuplicateLink] = {}
        changed = 0
        for event in routed:
            ticket_id, probe = str(event.ticket_id), probe_of(event.tenant, event.data)
            if probe is None or await self.store.get(ticket_id) is not None:
                fresh.append(event)
                continue
            stored = await self.store.duplicates.get(ticket_id)
            if stored is None:
                found = nearest_primary(probe, ticket_id, await self.store.duplicates.open_near(probe))
                if found is None:
                    changed += await self.store.add_new([self._ticket_doc(event, now)])
                    continue
                stored = await self.store.duplicates.add(link(ticket_id, probe, *found, now))
                changed += 1
                events.info("duplicate linked", ticket_id=ticket_id, primary=stored["primary"],
                            metres=stored["metres"])
            linked[ticket_id] = stored
            await self._count_report(stored)
        return fresh, linked, changed

    async def _assign_new_work(self, routed: list[Envelope[TicketRouted]], now: datetime) -> None:
        """``ticket.assigned`` on the agency's queue for complaints the router left to this
        service (they might have been duplicates) and that are new work. Through the openings
        outbox (stored, then sent; the sweep retries), under an id derived from the decision."""
        if not routed:
            return
        tenants = load_tenants(self.settings)
        docs = []
        for event in routed:
            assigned = envelope(AgencyTicket(**event.data.model_dump()),
                                type=EventType.TICKET_ASSIGNED, tenant=event.tenant,
                                ticket_id=str(event.ticket_id),
                                event_id=derived_event_id("assigned", event.id))
            docs.append({"_id": f"assigned:{event.ticket_id}", "ticket_id": str(event.ticket_id),
                         "created_at": now, **outbox_fields(
                             tenants.agency_topic(event.tenant, event.data.agency), assigned,
                             now=now, owner=self.settings.instance_id,
                             lease_seconds=self.settings.outbox_lease_seconds)})
        await self.store.add_openings(docs)
        stored = await self.store.openings_for([d["_id"] for d in docs])
        try:
            await self.opening_relay.publish([{**doc, "published": False} for doc in stored])
        except Exception as error:
            log.warning("assigning %d tickets failed, the sweep will retry: %s", len(stored), error)

    async def _count_report(self, duplicate: DuplicateLink) -> None:
        """The primary counts the duplicate once (a redelivery finds it counted)."""
        for _ in range(_RETRIES):
            ticket = await self.store.get(duplicate["primary"])
            counted = None if ticket is None else with_report(ticket, duplicate)
            if ticket is None or counted is None:
                return
            if await self.store.save_if_unchanged(counted, ticket["version"]):
                return
        raise RuntimeError(f"ticket {duplicate['primary']} kept changing; duplicate not counted")

    async def _announce(self, routed: list[Envelope[TicketRouted]], now: datetime) -> None:
        """Say ``ticket.opened`` for every ticket in the batch, including ones opened before:
        reading a decision again means someone upstream is still waiting for the ticket (the
        first announcement may have been lost with the broker's log), so it goes out again
        under its first event id. Stored before publishing; the sweep retries a failed send."""
        first = {str(e.ticket_id): e for e in reversed(routed)}
        await self.store.add_openings([self._opening_doc(ticket_id, event, now)
                                       for ticket_id, event in first.items()])
        stored = await self.store.openings_for(list(first))
        try:
            await self.opening_relay.publish([{**doc, "published": False} for doc in stored])
        except Exception as error:
            log.warning("announcing %d opened tickets failed, the sweep will retry: %s",
                        len(stored), error)

    def _opening_doc(self, ticket_id: str, event: Envelope[TicketRouted],
                     now: datetime) -> Document:
        opened = TicketOpened(agency=event.data.agency, assignment=event.data.assignment,
                              opened_at=now)
        announcement = envelope(opened, type=EventType.TICKET_OPENED, tenant=event.tenant,
                                ticket_id=ticket_id, event_id=derived_event_id("opened", ticket_id))
        return {"_id": ticket_id, "ticket_id": ticket_id, "created_at": now,
                **outbox_fields(Topics.OPENED, announcement, now=now,
                                owner=self.settings.instance_id,
                                lease_seconds=self.settings.outbox_lease_seconds)}

    async def _reassign(self, event: Envelope[TicketRouted]) -> tuple[int, bool]:
        """(1 if this call changed the ticket, whether the ticket holds this assignment)."""
        ticket_id = str(event.ticket_id)
        for _ in range(_RETRIES):
            ticket = await self.store.get(ticket_id, tenant=event.tenant)
            if ticket is None:
                return 0, False
            changed = reassign(ticket, event.data, self.policy_for(event.tenant),
                               assigned_at=_assigned_at(event),
                               now=utc_now())
            if changed is None:  # a duplicate (already holds it), or resolved meanwhile
                return 0, any(a["assignment"] == event.data.assignment and
                              a["agency"] == event.data.agency for a in ticket["assignments"])
            if await self.store.save_if_unchanged(changed, ticket["version"]):
                return 1, True
        raise RuntimeError(f"ticket {ticket_id} kept changing; re-assignment not applied")

    # --- updates that came before their ticket --------------------------------------------

    async def take_update(self, record: Incoming, ticket_id: str, update: TicketUpdate,
                          event_id: str, *, tenant: str | None = None) -> None:
        """An update read from ``tickets.updates``, applied in the order it was produced:
        while its ticket is not open, or still has parked updates (opened, but the routed
        consumer has not applied them yet), it is parked behind them and they are all
        applied in order. Raises when this one, applied directly, is refused; parked ones
        that are refused are dead-lettered by ``apply_parked``."""
        if not await self.store.has_parked(ticket_id):
            try:
                await self.apply(ticket_id, update, event_id, tenant=tenant)
                return
            except UnknownTicket:  # its routing decision may not have been read yet
                pass
        await self.park(record, ticket_id, update, event_id, tenant=tenant)
        # The ticket may have opened (and its parked updates been applied) meanwhile: nobody
        # else would apply this one then.
        await self.apply_parked([ticket_id])

    async def park(self, record: Incoming, ticket_id: str, update: TicketUpdate,
                   event_id: str, *, tenant: str | None = None) -> None:
        """Keep an update whose ticket is not open yet: after a downtime this service may read
        an agency's update before the routing decision that opens the ticket. It is applied
        when the ticket opens, or dead-lettered if the ticket never comes."""
        await self.store.park({
            "_id": event_id, "ticket_id": ticket_id, "tenant": tenant or self.settings.tenant,
            "update": update.model_dump(mode="json"),
            "parked_at": utc_now(),
            "record": {"topic": record.topic, "partition": record.partition,
                       "offset": record.offset, "key": (record.key or b"").decode(errors="replace"),
                       "value": record.value.decode(errors="replace")}})

    async def apply_parked(self, ticket_ids: list[str]) -> int:
        """Apply the parked updates of these tickets, those that are open, in the order they
        were produced; the ones the ticket refuses are dead-lettered, before they are
        unparked. Each is unparked after it took effect: a crash in between leaves it parked,
        and applying it again changes nothing (its event id is on the ticket; a dead letter's
        id is its record's place). Returns how many were refused."""
        parked = await self.store.parked_for(ticket_ids)
        refused = 0
        not_open: set[str] = set()
        for doc in sorted(parked, key=produced_order):
            if doc["ticket_id"] in not_open:
                continue
            try:
                await self.apply(doc["ticket_id"], TicketUpdate.model_validate(doc["update"]),
                                 doc["_id"], tenant=doc.get("tenant"))
            except UnknownTicket:  # not open yet: it waits, and the newer updates behind it
                not_open.add(doc["ticket_id"])
                continue
            except ValueError as error:
                await publish_all(self.relay.broker, [self._parked_letter(doc, str(error))])
                refused += 1
            await self.store.unpark([doc["_id"]])
        return refused

    async def expire_parked(self) -> int:
        """Dead-letter updates whose ticket did not open within the allowed time."""
        limit = utc_now() - timedelta(seconds=self.settings.parked_update_seconds)
        stale = await self.store.parked_before(limit, self.settings.scheduler_batch_size)
        # A ticket that did open has them applied now (the routed consumer missed them).
        await self.apply_parked(sorted({doc["ticket_id"] for doc in stale}))
        stale = await self.store.parked_among([doc["_id"] for doc in stale])
        letters = [self._parked_letter(doc, f"no ticket {doc['ticket_id']} within "
                                            f"{self.settings.parked_update_seconds:g} s")
                   for doc in stale]
        await publish_all(self.relay.broker, letters)
        await self.store.unpark([doc["_id"] for doc in stale])
        return len(stale)

    def _parked_letter(self, doc: Document, reason: str) -> Outgoing:
        record = doc["record"]
        return dead_letter(self.settings, "sla", Incoming(
            topic=record["topic"], partition=record["partition"], offset=record["offset"],
            key=record["key"].encode() or None, value=record["value"].encode()), reason)

    # --- updates ----------------------------------------------------------------------------

    async def apply(self, ticket_id: str, update: TicketUpdate, event_id: str, *,
                    actor: Actor | None = None, request_id: str | None = None,
                    tenant: str | None = None, agency: str | None = None) -> Ticket:
        """Apply an update once: a repeated event id returns the ticket unchanged. A rejection
        is stored in one transaction with its reroute request, then the request is published.
        ``actor`` is who acted (today: what the update claims, when not given); the audit
        record rides in the update's history entry and is appended after the ticket's write,
        again on a repeat (once: the append is keyed by the event id).

        With ``agency`` (the agency the caller's right to act was checked against), the update
        applies only while the ticket is still with that agency: re-routed in between, it is
        another agency's ticket, refused as unknown. Each write is conditional on the version
        read here, so a re-routing after this check makes the write fail and the check run
        again on the re-read ticket."""
        actor = actor or update_actor(update)
        for _ in range(_RETRIES):
            ticket = await self.store.get(ticket_id, tenant=tenant or self.settings.tenant)
            if ticket is None and (duplicate := await self.store.duplicates.get(ticket_id)):
                raise UpdateRefused(f"ticket {ticket_id} is linked to {duplicate['primary']} as a "
                                    f"duplicate: updates go to {duplicate['primary']}")
            if ticket is None or (agency is not None and ticket["agency"] != agency):
                raise UnknownTicket(f"no ticket {ticket_id}")
            if event_id in ticket["applied_events"]:
                await self._audit_update(ticket, event_id)
                await self._count_resolved(ticket)  # a crash may have come before the count
                await self.announce_changes([ticket_id])
                return ticket
            if event_id in ticket.get(REFUSED_REPLIES, []):
                await self.announce_changes([ticket_id])
                raise AlreadyRefused(f"ticket {ticket_id}: this reply was refused before")
            try:
                changed = apply_update(ticket, update, self.policy_for(self.tenant_of(ticket)),
                                       event_id=event_id, now=utc_now())
            except UpdateRefused:
                if update.action is UpdateAction.CITIZEN_REPLIED and \
                        not await self._note_refused_reply(ticket, event_id):
                    continue
                raise
            changed["history"][-1]["audit"] = update_note(ticket, changed, actor, request_id)
            if update.action is not UpdateAction.REJECTED:
                if await self.store.save_if_unchanged(changed, ticket["version"]):
                    await self._audit_update(changed, event_id)
                    await self._count_resolved(changed)
                    await self.announce_changes([ticket_id])
                    return changed
                continue
            request = self._reroute_doc(changed, rejection_request(changed, update), "rejected")
            if await self.store.save_with_outbox(changed, ticket["version"], [request]):
                await self._audit_update(changed, event_id)
                await self._publish_reroutes([request])
                await self.announce_changes([ticket_id])
                return changed
        raise RuntimeError(f"ticket {ticket_id} kept changing; update not applied")

    async def _count_resolved(self, ticket: Ticket) -> None:
        """Count a resolved ticket into the report read model (once: its ledger entry guards
        a repeat). A failure is left to the start-up catch-up rather than failing the update."""
        if self.report_counters is None or ticket["status"] != "resolved":
            return
        try:
            await self.report_counters.count_tickets([ticket])
        except Exception as error:
            log.warning("counting ticket %s into the reports failed, the catch-up will: %s",
                        ticket["_id"], error)

    async def _count_fired(self, docs: list[Document], tickets: list[Ticket]) -> None:
        if self.report_counters is None or not docs:
            return
        try:
            await self.report_counters.count_escalations(docs, {t["_id"]: t for t in tickets})
        except Exception as error:
            log.warning("counting %d escalations into the reports failed, the catch-up will: %s",
                        len(docs), error)

    async def _note_refused_reply(self, ticket: Ticket, event_id: str) -> bool:
        """Keep a refused citizen's reply on the ticket and announce it, so that intake stops
        republishing it (it is dead-lettered once, by the caller). False when another writer
        changed the ticket meanwhile: the reply is then tried again on the new state."""
        noted = {**ticket, REFUSED_REPLIES: [*ticket.get(REFUSED_REPLIES, []), event_id]}
        if not await self.store.save_if_unchanged(noted, ticket["version"]):
            return False
        await self.announce_changes([ticket["_id"]])
        return True

    async def _audit_update(self, ticket: Ticket, event_id: str) -> None:
        record = update_record(self.tenant_of(ticket), ticket, event_id)
        if record is not None:
            await self.audit.append([record])

    async def request_route(self, ticket_id: str, *, agency: str, actor: str | Actor,
                            reason: str, request_id: str | None = None,
                            shown_as: str | None = None,
                            tenant: str | None = None) -> RerouteRequest:
        """The triage desk's choice, sent to the router; a repeat of the same choice for the
        same assignment is the same request (and the same audit entry). ``shown_as`` is how
        the routing reason names the caller (``meja.triase (triage)``, as updates do)."""
        ticket = await self.store.get(ticket_id, tenant=tenant or self.settings.tenant)
        if ticket is None:
            raise UnknownTicket(f"no ticket {ticket_id}")
        # The event names the caller as updates do ("meja.triase (triage)"); the audit keeps
        # the authenticated actor's fields apart.
        who, label = (actor, actor.label) if isinstance(actor, Actor) else (Actor.claimed(actor), actor)
        request = manual_request(ticket, agency=agency, actor=shown_as or label, reason=reason)
        stored = await self.store.add_reroute(self._reroute_doc(ticket, request, f"manual:{agency}"))
        await self.audit.append([manual_request_record(
            self.tenant_of(ticket), ticket, request_key=stored["_id"], agency=agency, actor=who,
            request_id=request_id)])
        await self._publish_reroutes([stored])
        return RerouteRequest.model_validate(stored["event"]["data"])

    async def accept_review(self, ticket_id: str, *, actor: Actor, shown_as: str,
                            request_id: str | None = None, tenant: str | None = None) -> Ticket:
        """The desk keeps the rules' decision the second opinion disputed: the ticket stays
        with its agency and leaves the review list. A repeat for the same assignment is the
        same acceptance: it writes nothing and appends the audit entry only if a crash lost it
        (the entry is keyed by ticket and assignment)."""
        for _ in range(_RETRIES):
            ticket = await self.store.get(ticket_id, tenant=tenant or self.settings.tenant)
            if ticket is None:
                raise UnknownTicket(f"no ticket {ticket_id}")
            changed = ticket if accepted(ticket) else accept_review(ticket, actor=shown_as, now=utc_now())
            if changed is ticket or await self.store.save_if_unchanged(changed, ticket["version"]):
                await self.audit.append([review_record(self.tenant_of(ticket), ticket, actor=actor,
                                                       request_id=request_id)])
                await self.announce_changes([ticket_id])
                return changed
        raise RuntimeError(f"ticket {ticket_id} kept changing; review not settled")

    async def _publish_reroutes(self, docs: list[Document]) -> None:
        try:
            await self.reroute_relay.publish([d for d in docs
                                              if d.get("lease_owner") == self.settings.instance_id])
        except Exception as error:  # stored: the outbox sweep publishes it later
            log.warning("publishing a reroute request failed, the sweep will retry: %s", error)

    def _reroute_doc(self, ticket: Ticket, request: RerouteRequest, kind: str) -> Document:
        key = f"{ticket['_id']}:a{ticket['assignment']}:{kind}"
        event = envelope(request, type=EventType.REROUTE_REQUESTED, tenant=self.tenant_of(ticket),
                         ticket_id=ticket["_id"], event_id=derived_event_id("reroute", key))
        now = utc_now()
        return {"_id": key, "ticket_id": ticket["_id"], "assignment": ticket["assignment"],
                "cause": request.cause, "created_at": now,
                **outbox_fields(Topics.REROUTE, event, now=now, owner=self.settings.instance_id,
                                lease_seconds=self.settings.outbox_lease_seconds)}

    # --- the scheduler ----------------------------------------------------------------------

    async def turn(self) -> Turn:
        """Lease due tickets, store their due notices under unique ids (insert-if-absent: each
        fires once however many replicas race), advance the tickets, then publish. A crash at
        any point leaves either the lease to run out (the work is redone with the same ids)
        or stored notices for the outbox sweep."""
        now = utc_now()
        token = f"{self.settings.instance_id}/{uuid.uuid4().hex}"
        tickets = await self.store.claim_due(now, limit=self.settings.scheduler_batch_size,
                                             token=token, lease_seconds=self.settings.outbox_lease_seconds)
        due = [(ticket, self._notices(ticket, now)) for ticket in tickets]
        # A span per ticket that escalates, in the trace the ticket was opened in.
        tracer = tracer_for(self.relay.broker)
        spans = [] if tracer is None else [
            (t["_id"], parent_of(t, t["_id"]), {"disposisi.escalations": len(notices)})
            for t, notices in due if notices]
        with ticket_spans(tracer, "escalation fire", spans) as traced:
            docs: list[Document] = []
            records: list[AuditRecord] = []
            finished: list[tuple[Ticket, int]] = []
            for ticket, notices in due:
                tenant = self.tenant_of(ticket)
                docs += [self._escalation_doc(ticket, n, now) for n in notices]
                records += [escalation_record(tenant, ticket, n) for n in notices]
                finished.append((mark_fired(ticket, notices, self.policy_for(tenant), now),
                                 ticket["version"]))
            mine = await self.store.store_escalations(docs, self.settings.instance_id)
            for doc in mine:
                with current(traced.get(doc["ticket_id"])):
                    _log_fired(doc)
            # Before the tickets advance: a crash in between redoes this turn with the same
            # notice ids, so the records are appended then (once, by key), never lost.
            await self.audit.append(records)
            await self.store.finish(finished, token)
            await self._count_fired(docs, tickets)
            if self.on_fired is not None:
                self.on_fired(mine)
            await self.relay.publish(mine)
        return Turn(claimed=len(tickets), fired=len(mine))

    def _notices(self, ticket: Ticket, now: datetime) -> list[Notice]:
        tenant = self.tenant_of(ticket)
        rulebook = self.rulebook_for(tenant)
        return escalations_due(ticket, self.policy_for(tenant), now,
                               late_after_seconds=self.settings.late_after_seconds,
                               supervisors=partial(_holders, rulebook), routing_desk=rulebook.fallback)

    async def run_scheduler(self) -> None:
        """Turns forever; between them it sleeps until the earliest next_check_at (capped by the
        interval, since new tickets may come due sooner), so an idle store costs one indexed
        lookup per interval."""
        interval = self.settings.scheduler_interval_seconds
        while True:
            claimed = 0
            try:
                claimed = (await self.turn()).claimed
                wait = interval
                if claimed < self.settings.scheduler_batch_size:
                    wait = idle_wait(await self.store.earliest_check(), utc_now(), interval)
                else:
                    wait = 0.0  # a full batch: more is due right now
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("SLA scheduler turn failed: %s", error)
                wait = interval
            await asyncio.sleep(wait)

    def supervisors(self, agency: str) -> Mapping[str, str]:
        """The home tenant's holders of an agency's escalation roles."""
        return _holders(self.rulebook, agency)

    def _escalation_doc(self, ticket: Ticket, notice: Notice, now: datetime) -> Document:
        escalation = notice.escalation
        tenant = self.tenant_of(ticket)
        event = envelope(escalation, type=EventType.TICKET_ESCALATED, tenant=tenant,
                         ticket_id=ticket["_id"], event_id=derived_event_id("escalation", notice.id))
        return {"_id": notice.id, "ticket_id": ticket["_id"], "tenant": tenant,
                "agency": escalation.agency,
                "assignment": escalation.assignment, "clock": escalation.clock,
                "level": escalation.level, "repeat": escalation.repeat, "late": escalation.late,
                "triggered_at": escalation.triggered_at, "fired_at": now,
                "fired_epoch": now.timestamp(),  # what report queries range over (indexed)
                **outbox_fields(Topics.ESCALATIONS, event, now=now, owner=self.settings.instance_id,
                                lease_seconds=self.settings.outbox_lease_seconds)}


def _log_fired(doc: Document) -> None:
    """The one line an operator reads when an escalation fires (who is told is in the event)."""
    events.info("escalation fired", ticket_id=doc["ticket_id"], event_id=doc["event"]["id"],
                escalation_id=doc["_id"], agency=doc["agency"], clock=doc["clock"],
                escalation_level=doc["level"], repeat=doc["repeat"], late=doc["late"],
                triggered_at=str(doc["triggered_at"]))


def _holders(rulebook: Rulebook, agency: str) -> Mapping[str, str]:
    found = next((a for a in rulebook.agencies if a.code == agency), None)
    return {} if found is None else found.supervisors


def _assigned_at(event: Envelope[TicketRouted]) -> datetime:
    """The routing decision's own time (not when this service read it, which may be after a
    downtime); never before the submission."""
    return max(event.time, event.data.submitted_at)


def produced_order(parked: Document) -> tuple[datetime, int, int]:
    """Parked updates in the order their agency produced them: a ticket's updates share its
    key, so one partition, read in offset order (parked_at first, since a topic recreated
    after a broker restart numbers its offsets from 0 again)."""
    record = parked["record"]
    return parked["parked_at"], record["partition"], record["offset"]


def idle_wait(earliest: datetime | None, now: datetime, cap: float) -> float:
    """Seconds to sleep before the next turn: until the earliest next check, at most ``cap``
    (a ticket opened meanwhile may come due sooner), never a busy loop."""
    if earliest is None:
        return cap
    return min(cap, max(0.01, (earliest - now).total_seconds()))
