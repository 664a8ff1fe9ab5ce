"""Routing decisions: pure functions from complaint text and a rulebook to an agency.

No Kafka, no MongoDB: unit-tested without I/O.
"""

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache

import phonenumbers

from services.router.rulebook import Agency, Rule, Rulebook
from shared.contracts import Candidate, Channel, Location, Priority, RoutingExplanation

_NON_WORD = re.compile(r"[^0-9a-z]+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
TITLE_WEIGHT = 1.5  # a title is the citizen's own summary: its words count more


def normalise(text: str) -> str:
    """Lower case, accents folded, punctuation to spaces, padded for whole-word search."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return " " + " ".join(_NON_WORD.sub(" ", folded).split()) + " "


@cache
def _normalised_phrase(phrase: str) -> str:
    return normalise(phrase)


def contains(normalised_text: str, phrase: str) -> bool:
    # Phrases come from the rulebook, a small fixed set: normalise each once, not per complaint.
    return _normalised_phrase(phrase) in normalised_text


@dataclass(frozen=True)
class Decision:
    agency: Agency
    priority: Priority
    category: str | None
    explanation: RoutingExplanation


@dataclass
class _Tally:
    score: float = 0.0
    best_rule_score: float = 0.0
    rule_ids: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    category: str | None = None
    priority: Priority | None = None


def _phrase_weight(phrase: str) -> float:
    # Longer phrases are more specific ("lampu jalan mati" beats "mati").
    return 1.0 + 0.5 * (len(phrase.split()) - 1)


def _rule_hits(rule: Rule, text: str) -> list[str]:
    if any(contains(text, veto) for veto in rule.none):
        return []
    if not all(contains(text, phrase) for phrase in rule.all):
        return []
    hits = [p for p in rule.any if contains(text, p)]
    if rule.any and not hits:
        return []
    return [*rule.all, *hits]


def _score(rule: Rule, hits: list[str], in_title: str) -> float:
    return sum(rule.weight * _phrase_weight(p) * (TITLE_WEIGHT if contains(in_title, p) else 1.0)
               for p in hits)


def _tally(rulebook: Rulebook, body: str, title: str) -> dict[str, _Tally]:
    tallies: dict[str, _Tally] = {}
    for agency in rulebook.agencies:
        for rule in agency.rules:
            hits = _rule_hits(rule, body)
            if not hits:
                continue
            tally = tallies.setdefault(agency.code, _Tally())
            score = _score(rule, hits, title)
            if rule.category and score > tally.best_rule_score:
                tally.category = rule.category  # the strongest rule names the category
            tally.best_rule_score = max(tally.best_rule_score, score)
            tally.score += score
            tally.rule_ids.append(rule.id)
            tally.terms.extend(h for h in hits if h not in tally.terms)
            tally.priority = _higher(tally.priority, rule.priority)
    return tallies


def _higher(a: Priority | None, b: Priority | None) -> Priority | None:
    order = list(Priority)
    if a is None or b is None:
        return a or b
    return a if order.index(a) >= order.index(b) else b


def route(rulebook: Rulebook, text: str, title: str | None = None, *,
          location: Location | None = None, channel: Channel | None = None,
          exclude: frozenset[str] = frozenset()) -> Decision:
    """Pick the agency whose rules score highest; below the rulebook's minimum, triage.
    Agencies in ``exclude`` (they rejected the ticket already) are never chosen."""
    norm_title = normalise(title or "")
    body = normalise(f"{title or ''} {text}")
    tallies = {code: tally for code, tally in _tally(rulebook, body, norm_title).items()
               if code not in exclude}
    ranked = sorted(tallies.items(), key=lambda item: (-item[1].score, item[0]))
    total = sum(t.score for _, t in ranked) or 1.0
    candidates = [Candidate(agency=code, score=round(t.score, 3), rule_ids=t.rule_ids)
                  for code, t in ranked[:3]]
    urgent = [p for p in rulebook.urgent_phrases if contains(body, p)]
    if not ranked or ranked[0][1].score < rulebook.min_score:
        return _triage(rulebook, candidates, urgent)
    code, best = ranked[0]
    priority = Priority.URGENT if urgent else (best.priority or Priority.NORMAL)
    explanation = RoutingExplanation(
        rulebook_version=rulebook.version, rule_ids=best.rule_ids,
        matched_terms=best.terms + [u for u in urgent if u not in best.terms],
        score=round(best.score, 3), confidence=round(best.score / total, 3),
        candidates=candidates,
        reason=f"matched {', '.join(repr(t) for t in best.terms[:5])} in rules of {code}",
    )
    return Decision(rulebook.agency(code), priority, best.category, explanation)


def _triage(rulebook: Rulebook, candidates: list[Candidate], urgent: list[str]) -> Decision:
    reason = ("no rule matched" if not candidates
              else f"best score {candidates[0].score} is below {rulebook.min_score}")
    explanation = RoutingExplanation(
        rulebook_version=rulebook.version, matched_terms=urgent, candidates=candidates,
        reason=f"{reason}: the complaint desk decides",
    )
    priority = Priority.URGENT if urgent else Priority.NORMAL
    return Decision(rulebook.agency(rulebook.fallback), priority, None, explanation)


def mask_contacts(text: str) -> str:
    """Hide phone numbers and e-mail addresses a reporter typed into the complaint text, so an
    anonymous report stays anonymous even when the citizen signed it."""
    masked = _EMAIL.sub("[email disembunyikan]", text)
    for match in reversed(list(phonenumbers.PhoneNumberMatcher(masked, "ID"))):
        masked = masked[:match.start] + "[nomor disembunyikan]" + masked[match.end:]
    return masked
