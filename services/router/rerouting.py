"""Re-routing decisions: where a ticket goes after an agency rejects it or the triage desk
assigns it by hand. Pure functions over the rulebook; no Kafka."""

from dataclasses import dataclass

from services.router.domain import Decision, route
from services.router.rulebook import Rulebook
from shared.contracts import Candidate, RerouteRequest, RoutingExplanation


@dataclass(frozen=True)
class Reroute:
    decision: Decision
    bounced_out: bool  # rejected too often: the triage desk takes it and a supervisor is told


def reroute(rulebook: Rulebook, request: RerouteRequest, *, max_bounces: int) -> Reroute:
    """The next assignment: the triage desk's choice when made by hand; after ``max_bounces``
    rejections the triage desk; otherwise a valid suggestion of the rejecting agency, else a
    new decision that never picks an agency that already rejected the ticket."""
    if request.cause == "manual":
        return Reroute(_by_hand(rulebook, request), bounced_out=False)
    ticket = request.ticket
    if len(ticket.rejected_by) >= max_bounces:
        return Reroute(_bounced_out(rulebook, request), bounced_out=True)
    rejected = frozenset({*ticket.rejected_by, ticket.agency})
    decision = route(rulebook, ticket.text, ticket.title, location=ticket.location,
                     channel=ticket.channel, exclude=rejected)
    suggestion = valid_suggestion(rulebook, request.suggested_agency, rejected)
    if suggestion is None:
        return Reroute(_explained(decision, request), bounced_out=False)
    return Reroute(_suggested(rulebook, suggestion, decision, request), bounced_out=False)


def valid_suggestion(rulebook: Rulebook, code: str | None, rejected: frozenset[str]) -> str | None:
    """A rejecting agency's suggestion counts when it names a real agency that has not
    rejected the ticket already; the triage desk is not a suggestion, it is the fallback."""
    if code is None:
        return None
    code = code.strip().upper()
    if code not in rulebook.codes or code in rejected or code == rulebook.fallback:
        return None
    return code


def _by_hand(rulebook: Rulebook, request: RerouteRequest) -> Decision:
    who = request.actor or "the triage desk"
    if request.agency not in rulebook.codes:  # e.g. removed from the rulebook since
        reason = f"{who} chose {request.agency}, which the rulebook does not know: triage decides"
        return _fixed(rulebook, rulebook.fallback, request, reason, candidates=[])
    reason = f"assigned by hand by {who}: {request.reason}"
    return _fixed(rulebook, str(request.agency), request, reason, candidates=[])


def _bounced_out(rulebook: Rulebook, request: RerouteRequest) -> Decision:
    agencies = ", ".join(request.ticket.rejected_by)
    reason = f"rejected by {len(request.ticket.rejected_by)} agencies ({agencies}): the triage desk decides"
    return _fixed(rulebook, rulebook.fallback, request, reason, candidates=[])


def _suggested(rulebook: Rulebook, code: str, routed: Decision, request: RerouteRequest) -> Decision:
    reason = (f"{request.ticket.agency} rejected it ({request.reason}) and suggested {code}; "
              f"the rulebook's choice was {routed.agency.code}")
    return _fixed(rulebook, code, request, reason, candidates=routed.explanation.candidates)


def _explained(decision: Decision, request: RerouteRequest) -> Decision:
    reason = (f"{request.ticket.agency} rejected it ({request.reason}); "
              f"re-routed without it: {decision.explanation.reason}")
    explanation = decision.explanation.model_copy(update={"reason": reason})
    return Decision(decision.agency, request.ticket.priority, decision.category, explanation)


def _fixed(rulebook: Rulebook, code: str, request: RerouteRequest, reason: str, *,
           candidates: list[Candidate]) -> Decision:
    # A human chose (or the rules ran out): full confidence in the choice, not in the text.
    explanation = RoutingExplanation(rulebook_version=rulebook.version, confidence=1.0,
                                     candidates=candidates, reason=reason)
    return Decision(rulebook.agency(code), request.ticket.priority, request.ticket.category,
                    explanation)
