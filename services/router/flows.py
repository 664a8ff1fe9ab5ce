"""Router flows: decide each received complaint and say so on two topics."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from services.router.domain import Decision, mask_contacts, placed, route
from services.router.labels import LabelDoc, label_of
from services.router.places import resolve
from services.router.rerouting import reroute
from services.router.rulebook import Rulebook
from services.router.second_opinion import Reviewer, complaint_text
from shared.contracts import (
    AgencyTicket,
    Complaint,
    Envelope,
    Escalation,
    EventType,
    Recipient,
    RerouteRequest,
    TicketRouted,
    TicketWithdrawn,
    Topics,
    derived_event_id,
    envelope,
    utc_now,
)
from shared.kafka import Outgoing
from shared.settings import Settings
from shared.tenants import Tenants, UnknownTenant, load_tenants


@dataclass
class Router:
    settings: Settings
    rulebook: Rulebook  # the home tenant's (setting `tenant`)
    tenants: Tenants | None = None  # None: the settings' single tenant
    others: dict[str, Rulebook] = field(default_factory=dict)  # the other tenants' rulebooks
    reviewer: Reviewer | None = None  # the statistical second opinion, for the home tenant

    def __post_init__(self) -> None:
        if self.tenants is None:
            self.tenants = load_tenants(self.settings)

    @property
    def registry(self) -> Tenants:
        assert self.tenants is not None
        return self.tenants

    def book(self, tenant: str) -> Rulebook:
        """The tenant's rulebook; an event of a tenant not served here is refused."""
        if tenant == self.settings.tenant:
            return self.rulebook
        found = self.others.get(tenant)
        if found is None:
            raise UnknownTenant(f"tenant {tenant!r} is not served by this deployment")
        return found

    def swap(self, tenant: str, rulebook: Rulebook) -> None:
        """One reference swap: a decision in progress keeps the rulebook it started with."""
        if tenant == self.settings.tenant:
            self.rulebook = rulebook
        else:
            self.others[tenant] = rulebook

    def queues(self, tenant: str) -> set[str]:
        return {self.registry.agency_topic(tenant, code) for code in self.book(tenant).codes}

    def decide(self, received: Envelope[Complaint]) -> list[Outgoing]:
        """First assignment of an accepted complaint, by its tenant's rulebook."""
        return self.decide_all([received])

    def decide_all(self, batch: Sequence[Envelope[Complaint]]) -> list[Outgoing]:
        """First assignments of a batch; the second opinion (home tenant) is asked once for
        all the batch's questions."""
        decided = [self._first_decision(received) for received in batch]
        if self.reviewer is not None:
            home = [i for i, (received, _, _) in enumerate(decided)
                    if received.tenant == self.settings.tenant]
            reviewed = self.reviewer.review(self.rulebook, [
                (decided[i][2], complaint_text(decided[i][1].text, decided[i][1].title))
                for i in home])
            for i, decision in zip(home, reviewed, strict=True):
                decided[i] = (decided[i][0], decided[i][1], decision)
        return [out for received, complaint, decision in decided
                for out in self._assign(received.tenant, complaint.ticket_id,
                                        self._routed(received.tenant, complaint, decision),
                                        received.id)]

    def _first_decision(self, received: Envelope[Complaint]) -> tuple[
            Envelope[Complaint], Complaint, Decision]:
        complaint, rulebook = received.data, self.book(received.tenant)
        # Where it is, when the reporter gave no kelurahan: from coordinates or the address,
        # before routing, so rules with location conditions see it.
        where = resolve(rulebook.gazetteer, rulebook.boundaries, complaint.location,
                        tenant=received.tenant)
        complaint = complaint.model_copy(update={"location": where.location})
        decision = placed(route(rulebook, complaint.text, complaint.title,
                                location=where.location, channel=complaint.channel,
                                category=complaint.category), where.place)
        return received, complaint, decision

    def _routed(self, tenant: str, complaint: Complaint, decision: Decision) -> TicketRouted:
        routed = routed_event(complaint, decision)
        window = self.book(tenant).duplicates.get(decision.category or "")
        location = complaint.location
        if window is not None and location is not None and location.lat is not None:
            routed = routed.model_copy(update={"duplicates": window})
        return routed

    def label_of(self, requested: Envelope[RerouteRequest]) -> LabelDoc | None:
        """The labelled example a reroute request makes, if a person named the agency."""
        return label_of(self.book(requested.tenant), requested,
                        max_bounces=self.settings.reroute_max_bounces)

    def reroute(self, requested: Envelope[RerouteRequest]) -> list[Outgoing]:
        """A new assignment after a rejection or by hand: the new agency's queue gets the
        ticket, the old one a withdrawal; too many rejections also alert a supervisor."""
        request, ticket_id, tenant = requested.data, str(requested.ticket_id), requested.tenant
        rulebook = self.book(tenant)
        outcome = reroute(rulebook, request, max_bounces=self.settings.reroute_max_bounces)
        old = request.ticket
        routed = TicketRouted(**{
            **old.model_dump(), "agency": outcome.decision.agency.code,
            "agency_name": outcome.decision.agency.name,
            "authority": outcome.decision.agency.authority, "category": outcome.decision.category,
            "routing": outcome.decision.explanation, "assignment": old.assignment + 1,
            "previous_agency": old.agency,
            "assigned_by": request.actor if request.cause == "manual" else None,
            "duplicates": None})
        withdrawn = TicketWithdrawn(agency=old.agency, assignment=old.assignment,
                                    new_agency=routed.agency, reason=routed.routing.reason)
        out = [*self._assign(tenant, ticket_id, routed, requested.id), Outgoing(
            self.registry.agency_topic(tenant, old.agency), self._event(
                withdrawn, EventType.TICKET_WITHDRAWN, tenant, ticket_id,
                derived_event_id("withdrawn", requested.id)))]
        if outcome.bounced_out:
            out.append(Outgoing(Topics.ESCALATIONS, self._event(
                self._bounce_alert(rulebook, routed), EventType.TICKET_ESCALATED, tenant, ticket_id,
                derived_event_id("bounced", requested.id))))
        return out

    def _assign(self, tenant: str, ticket_id: str, routed: TicketRouted,
                cause_id: str) -> list[Outgoing]:
        """The decision (for SLA) and the assignment (for the agency's queue).

        Event ids derive from the causing event's id: a redelivered input produces the same
        ids, so downstream consumers see a duplicate, never a second ticket.
        """
        decision = Outgoing(Topics.ROUTED, self._event(
            routed, EventType.TICKET_ROUTED, tenant, ticket_id, derived_event_id("routed", cause_id)))
        if routed.duplicates is not None and routed.assignment == 1:
            # Maybe the same problem as an open ticket: the SLA service decides, and assigns it
            # only if it is new work (a duplicate never reaches the agency's queue).
            return [decision]
        assigned = AgencyTicket(**routed.model_dump())
        return [decision, Outgoing(self.registry.agency_topic(tenant, routed.agency), self._event(
            assigned, EventType.TICKET_ASSIGNED, tenant, ticket_id,
            derived_event_id("assigned", cause_id)))]

    def _event(self, data: BaseModel, kind: EventType, tenant: str, ticket_id: str,
               event_id: str) -> Envelope[Any]:
        return envelope(data, type=kind, tenant=tenant, ticket_id=ticket_id, event_id=event_id)

    def _bounce_alert(self, rulebook: Rulebook, routed: TicketRouted) -> Escalation:
        head = rulebook.agency(routed.agency).supervisors.get("agency_head")
        now = utc_now()
        return Escalation(
            agency=routed.agency, assignment=routed.assignment, level=1, clock="routing",
            trigger=f"rejected by {len(routed.rejected_by)} agencies: {', '.join(routed.rejected_by)}",
            triggered_at=now, fired_at=now, late=False,
            recipients=[Recipient(role="agency_head", name=head)])


def routed_event(complaint: Complaint, decision: Decision) -> TicketRouted:
    names = [complaint.reporter.name] if complaint.reporter and complaint.reporter.name else []

    def hide(text: str) -> str:
        return mask_contacts(text, names) if complaint.identity_hidden else text

    location = complaint.location
    if complaint.identity_hidden and location and location.address:
        location = location.model_copy(update={"address": hide(location.address)})
    return TicketRouted(
        agency=decision.agency.code, agency_name=decision.agency.name,
        authority=decision.agency.authority, priority=decision.priority,
        category=decision.category, routing=decision.explanation, channel=complaint.channel,
        title=hide(complaint.title) if complaint.title else None, text=hide(complaint.text),
        location=location, attachments=complaint.attachments,
        reporter=None if complaint.identity_hidden else complaint.reporter,
        anonymous=complaint.anonymous, confidential=complaint.confidential,
        submitted_at=complaint.submitted_at, linked_to=complaint.linked_to,
    )
