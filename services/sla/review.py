"""The second opinion's disputes, for the triage desk (pure).

The router flags a confident rule decision its statistical second opinion strongly disputes
(``routing.second_opinion.review``). Such a ticket goes to the agency the rules chose, and also
waits in the desk's review list ("Perlu ditinjau") until the desk either re-routes it (a new
assignment, whose routing carries no flag of its own unless the router raises one again) or
accepts the rules' decision, which settles the flag for that assignment only.
"""

import copy
from datetime import datetime
from typing import Any

from services.sla.timing import Ticket, history_entry
from services.sla.updates import UpdateRefused

REVIEW_ACCEPTED = "review_accepted"  # the history action of the desk's acceptance


def disputed(routing: Any) -> bool:
    """Whether a routing explanation (as stored) carries the second opinion's flag."""
    opinion = (routing or {}).get("second_opinion") or {}
    return bool(opinion.get("review"))


def awaits_review(ticket: Ticket) -> bool:
    """Flagged for this assignment, and nobody at the desk has accepted the decision yet."""
    return disputed(ticket.get("routing")) and ticket.get("review_settled") != ticket.get("assignment")


def accepted(ticket: Ticket) -> bool:
    """The desk already accepted this assignment's disputed decision (a repeat, or a retry
    after a crash between the ticket's write and its audit entry)."""
    return disputed(ticket.get("routing")) and ticket.get("review_settled") == ticket.get("assignment")


def accept_review(ticket: Ticket, *, actor: str, now: datetime) -> Ticket:
    """The ticket with the rules' decision accepted by ``actor``: it leaves the review list
    and stays with its agency. Refused when there is nothing to accept (``accepted`` tells a
    repeat apart)."""
    if not awaits_review(ticket):
        raise UpdateRefused(f"ticket {ticket['_id']} has no disputed routing decision to accept")
    changed = copy.deepcopy(ticket)
    changed["review_settled"] = ticket["assignment"]
    opinion = ticket["routing"]["second_opinion"]
    changed["history"].append(history_entry(
        now, REVIEW_ACCEPTED, ticket["agency"], actor=actor,
        note=(f"keputusan aturan ({ticket['agency']}) diterima meja triase; model menyarankan "
              f"{opinion.get('agency')}")))
    return changed
