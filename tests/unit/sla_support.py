"""A small 24x7 policy with second-scale targets, and ticket builders, for SLA unit tests."""

from datetime import UTC, datetime, timedelta
from typing import Any

from services.sla.domain import Ticket, apply_update, new_ticket
from services.sla.policy import Policy
from shared.contracts import Channel, Priority, RoutingExplanation, TicketRouted, TicketUpdate

SUBMITTED = datetime(2026, 7, 10, 3, 0, tzinfo=UTC)  # Friday 10:00 WIB
ASSIGNED = SUBMITTED + timedelta(seconds=10)
TICKET_ID = "BKL-260710-00000001"

POLICY = Policy.model_validate({
    "calendars": {"always": {"type": "24x7"}},
    "ceiling": {"calendar": "always", "after": "1000s"},
    "pauses": {"max_per_ticket": 2, "quick_repause_within": "60s"},
    "routing": {"calendar": "always", "within": "40s"},
    "targets": [
        {"name": "fast", "when": {"priority": ["urgent"]}, "calendar": "always",
         "response": "10s", "update": "20s", "resolution": "100s"},
        {"name": "standard", "calendar": "always", "response": "100s", "update": "200s",
         "resolution": "500s"},
    ],
    "escalation": [
        {"clock": "response", "level": 1, "at": 0.5, "notify": ["agency_head"]},
        {"clock": "response", "level": 2, "at": 1.0, "notify": ["agency_head", "inspektorat"],
         "renotify": "30s"},
        {"clock": "response", "level": 3, "after_breach": "50s", "notify": ["sekda"]},
        {"clock": "update", "level": 1, "at": 1.0, "notify": ["agency_head"]},
        {"clock": "resolution", "level": 1, "at": 1.0, "notify": ["agency_head", "ombudsman"]},
        {"clock": "ceiling", "level": 1, "at": 1.0, "notify": ["ombudsman"]},
        {"clock": "routing", "level": 1, "at": 1.0, "notify": ["agency_head"], "renotify": "20s"},
    ],
})


def at(seconds: float) -> datetime:
    """An instant, in seconds after the submission."""
    return SUBMITTED + timedelta(seconds=seconds)


def routed(agency: str = "DLH", priority: Priority = Priority.NORMAL, *, assignment: int = 1,
           submitted_at: datetime = SUBMITTED, **extra: Any) -> TicketRouted:
    return TicketRouted(
        agency=agency, agency_name=f"Agency {agency}", authority="kota", priority=priority,
        category="sampah",
        routing=RoutingExplanation(rulebook_version="v1", rule_ids=["dlh-sampah"],
                                   matched_terms=["sampah"], reason=f"rules of {agency}"),
        channel=Channel.WEB, title="Sampah", text="Sampah menumpuk di depan pasar.",
        submitted_at=submitted_at, assignment=assignment, **extra,
    )


def ticket(policy: Policy = POLICY, **kwargs: Any) -> Ticket:
    return new_ticket(TICKET_ID, routed(**kwargs), policy, assigned_at=ASSIGNED, now=ASSIGNED)


def update(action: str, **fields: Any) -> TicketUpdate:
    return TicketUpdate.model_validate({"action": action, **fields})


def act(current: Ticket, action: str, when: float, policy: Policy = POLICY, **fields: Any) -> Ticket:
    """Apply an action at ``when`` seconds after submission, with a fresh event id."""
    event_id = f"e{len(current['applied_events']) + 1}"
    return apply_update(current, update(action, **fields), policy, event_id=event_id, now=at(when))


def step(current: Ticket, clock: str, level: int) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in current["ladder"] if (s["clock"], s["level"]) == (clock, level))
    return found
