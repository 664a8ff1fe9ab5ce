"""Routing decisions: pure functions from complaint text and a rulebook to an agency.

No Kafka, no MongoDB: unit-tested without I/O. The heavy lifting (normalisation, the one-pass
phrase search, scoring) is in engine.py; here the scores become a decision and its reasons.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from services.router.engine import Analysis, Tally, compiled
from services.router.rulebook import Agency, Rulebook, Thresholds
from services.router.text import normalise
from shared.contracts import (
    Candidate,
    Channel,
    Location,
    PlaceFound,
    Priority,
    RoutingExplanation,
    category_code,
)
from shared.privacy import mask_personal

_LEVELS = list(Priority)
HINT_PREFIX = "category:"  # the rule id a category hint shows as in the explanation
RESPONDER_PREFIX = "signal:"  # the rule id an emergency's responder shows as


@dataclass(frozen=True)
class Decision:
    agency: Agency
    priority: Priority
    category: str | None
    explanation: RoutingExplanation


@dataclass(frozen=True)
class _Standing:
    """How the best candidate stands against the runner-up."""

    best: tuple[str, Tally] | None
    runner_up: tuple[str, Tally] | None
    margin: float
    confidence: float


def route(rulebook: Rulebook, text: str, title: str | None = None, *,
          location: Location | None = None, channel: Channel | None = None,
          category: str | None = None, exclude: frozenset[str] = frozenset()) -> Decision:
    """The agency whose Tupoksi the complaint falls under, with priority and reasons; the
    complaint desk (fallback) when the evidence is weak or two agencies are too close.
    ``category`` is the citizen's own pick on the channel: it weighs for the agencies whose
    rules name it as much as one matched phrase, so a text that says otherwise still counts.
    Agencies in ``exclude`` (they already rejected the ticket) are never chosen."""
    engine = compiled(rulebook)
    analysis = engine.analyse(text, title, location=location, channel=channel)
    if category:
        _weigh_hint(rulebook, analysis, category)
    _weigh_responders(rulebook, analysis)
    ranked = sorted(((code, tally) for code, tally in analysis.tallies.items()
                     if code not in exclude and code != rulebook.fallback),
                    key=lambda item: (-item[1].score, item[0]))
    candidates = [Candidate(agency=code, score=round(t.score, 3), rule_ids=t.rule_ids)
                  for code, t in ranked[:3]]
    standing = _stand(ranked, engine.limits)
    doubt = _doubt(standing, engine.limits)
    if doubt is not None or standing.best is None:
        return _triaged(rulebook, analysis, standing, candidates,
                        f"{doubt}: the complaint desk decides{_notes(analysis, exclude)}")
    code, best = standing.best
    agency = rulebook.agency(code)
    terms = [analysis.phrases[p].text for p in best.phrases]
    explanation = RoutingExplanation(
        rulebook_version=rulebook.version, rule_ids=best.rule_ids,
        matched_terms=_unique(terms + _signal_terms(analysis)), score=round(best.score, 3),
        confidence=standing.confidence, candidates=candidates,
        reason=(_reason(agency, best, terms, standing, _evidence_names(rulebook, best.rule_ids))
                + _priority_note(best)
                + _notes(analysis, exclude)))
    priority = _signalled(best.priority or Priority.NORMAL, analysis)
    return Decision(agency, priority, best.category, explanation)


def _evidence_names(rulebook: Rulebook, rule_ids: list[str]) -> list[str]:
    """The channel's category and an emergency's responder, as the reason names them."""
    named = []
    for rule_id in rule_ids:
        if rule_id.startswith(HINT_PREFIX):
            named.append(f"the channel's category {rule_id.removeprefix(HINT_PREFIX)}")
        elif rule_id.startswith(RESPONDER_PREFIX):
            signal = rule_id.removeprefix(RESPONDER_PREFIX)
            label = next((s.label for s in rulebook.priority_signals if s.id == signal), "")
            named.append(f"who answers this emergency ({label or signal}, {signal})")
    return named


def hinted_agencies(rulebook: Rulebook, category: str) -> dict[str, str]:
    """Agency code -> the category as its rules spell it, for a hint given by name or code."""
    wanted = category_code(category)
    return {agency.code: rule.category for agency in rulebook.agencies for rule in agency.rules
            if rule.category and category_code(rule.category) == wanted}


def _weigh_hint(rulebook: Rulebook, analysis: Analysis, category: str) -> None:
    weight = rulebook.limits.category_hint_weight
    if weight <= 0:
        return
    for code, named in hinted_agencies(rulebook, category).items():
        tally = analysis.tallies.setdefault(code, Tally())
        tally.score += weight
        tally.rule_ids.append(f"{HINT_PREFIX}{category_code(named)}")
        if tally.category is None or tally.best_rule < weight:
            tally.category = named
            tally.best_rule = max(tally.best_rule, weight)


def _weigh_responders(rulebook: Rulebook, analysis: Analysis) -> None:
    """An emergency told by its situation names who answers it: a fire in a kitchen is
    DAMKAR's even when no rule phrase says "pemadam", a fight going on is the police's. Half
    the weight where rule phrases speak for the responder already (a burning PLN transformer
    is told by PLN's phrases and DAMKAR's: the situation settles a near tie, not a clear
    lead); once, however many of its signals fire; an emergency told as over ("minggu lalu
    ... sudah dipadamkan") names no one."""
    weight = rulebook.limits.responder_weight
    if weight <= 0 or analysis.over is not None:
        return
    for signal, _ in analysis.signals:
        code = signal.responder
        if signal.effect != "urgent" or code is None:
            continue
        tally = analysis.tallies.setdefault(code, Tally())
        if any(r.startswith(RESPONDER_PREFIX) for r in tally.rule_ids):
            continue
        tally.score += weight / 2 if tally.phrases else weight
        tally.rule_ids.append(f"{RESPONDER_PREFIX}{signal.id}")


def placed(decision: Decision, place: PlaceFound | None) -> Decision:
    """The decision with where the complaint was placed, and from what, in its explanation."""
    if place is None:
        return decision
    explanation = decision.explanation
    reason = f"{explanation.reason}; {place.note}" if place.note else explanation.reason
    return Decision(decision.agency, decision.priority, decision.category,
                    explanation.model_copy(update={"place": place, "reason": reason}))


def _triaged(rulebook: Rulebook, analysis: Analysis, standing: _Standing,
             candidates: list[Candidate], reason: str) -> Decision:
    """The complaint desk's decision: candidates listed, urgency kept, no category."""
    explanation = RoutingExplanation(
        rulebook_version=rulebook.version, matched_terms=_unique(_signal_terms(analysis)),
        score=round(standing.best[1].score, 3) if standing.best else 0.0,
        confidence=standing.confidence, candidates=candidates, reason=reason)
    priority = _signalled(Priority.NORMAL, analysis)
    return Decision(rulebook.agency(rulebook.fallback), priority, None, explanation)


def _signal_terms(analysis: Analysis) -> list[str]:
    return [analysis.phrases[p].text for _, found in analysis.signals for p in found]


def _stand(ranked: list[tuple[str, Tally]], limits: Thresholds) -> _Standing:
    if not ranked:
        return _Standing(None, None, 0.0, 0.0)
    best = ranked[0]
    runner_up = ranked[1] if len(ranked) > 1 else None
    top = best[1].score
    margin = (top - runner_up[1].score) / top if runner_up and top > 0 else 1.0
    # Confidence needs both: a clear lead, and enough evidence that the lead is not luck.
    strength = 1.0 - math.exp(-top / limits.strong_score)
    confidence = round(min(1.0, max(0.0, margin * strength)), 3)
    return _Standing(best, runner_up, margin, confidence)


def _doubt(standing: _Standing, limits: Thresholds) -> str | None:
    """Why the rules cannot decide, or None when they can."""
    if standing.best is None:
        return "no rule matched"
    code, best = standing.best
    if best.score < limits.min_score:
        return f"best score {best.score:.3g} ({code}) is below {limits.min_score}"
    if standing.runner_up and standing.margin < limits.min_margin:
        other, runner_up = standing.runner_up
        return (f"too close to call: {code} {best.score:.3g} against {other} "
                f"{runner_up.score:.3g}")
    if standing.confidence < limits.min_confidence:
        return f"confidence {standing.confidence} ({code}) is below {limits.min_confidence}"
    return None


def _signalled(base: Priority, analysis: Analysis) -> Priority:
    effects = {signal.effect for signal, _ in analysis.signals}
    if "urgent" in effects and analysis.over is None:
        return Priority.URGENT
    if "urgent" in effects:  # told as over: a report of what happened, still serious
        return _LEVELS[max(_LEVELS.index(base), _LEVELS.index(Priority.HIGH))]
    if "raise" in effects:  # vulnerable people: one level up
        return _LEVELS[min(len(_LEVELS) - 1, _LEVELS.index(base) + 1)]
    if "high" in effects:
        return _LEVELS[max(_LEVELS.index(base), _LEVELS.index(Priority.HIGH))]
    return base


def _reason(agency: Agency, best: Tally, terms: list[str], standing: _Standing,
            named: list[str]) -> str:
    evidence = [repr(t) for t in terms[:4]] + named
    reason = f"{agency.code} by {', '.join(evidence)} (rules {', '.join(best.rule_ids[:3])})"
    if standing.runner_up:
        other, runner_up = standing.runner_up
        reason += f", ahead of {other} {best.score:.3g} to {runner_up.score:.3g}"
    if agency.authority in ("provinsi", "pusat", "bumn"):
        reason += f"; not the city's authority ({agency.authority}): to be forwarded"
    return reason


def _priority_note(best: Tally) -> str:
    if best.priority is None or best.priority is Priority.NORMAL:
        return ""
    return f"; priority {best.priority.value} by rule {best.priority_rule}"


def _notes(analysis: Analysis, exclude: frozenset[str]) -> str:
    notes = ""
    if analysis.ask is not None:
        ask = analysis.ask
        notes += f"; main ask: {ask.agency} {ask.gloss} ({ask.quote})"
    if analysis.aside:
        words = ", ".join(repr(analysis.phrases[p].text) for p in analysis.aside[:3])
        notes += f"; named aside, where the reporter goes next or works (vetoes nothing): {words}"
    for signal, found in analysis.signals:
        words = ", ".join(repr(analysis.phrases[p].text) for p in found[:3])
        effect = {"urgent": "urgent", "raise": "raised a level"}.get(signal.effect, "at least high")
        if signal.effect == "urgent" and analysis.over is not None:
            effect = f"at least high, not urgent (told as over: {analysis.over!r})"
        label = f": {signal.label}" if signal.label else ""
        notes += f"; {effect} by {words} ({signal.id}{label})"
    if exclude:
        notes += f"; excluded {', '.join(sorted(exclude))}"
    if analysis.corrections:
        notes += "; read " + ", ".join(f"{k!r} as {v!r}" for k, v in analysis.corrections.items())
    return notes


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def mask_contacts(text: str, names: Sequence[str] = ()) -> str:
    """Hide what identifies the reporter in an anonymous or confidential complaint: their name,
    NIK/KK numbers, phone numbers and e-mail addresses, however disguised. Intake already masks
    before publishing; masking again is harmless and covers other producers."""
    return mask_personal(text, names=names)


__all__ = ["Decision", "mask_contacts", "normalise", "placed", "route"]
