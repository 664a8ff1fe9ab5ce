"""Rulebook lint (`disposisi rules check`): what makes a rulebook route badly."""

from collections.abc import Iterator
from dataclasses import dataclass

from services.router.domain import route
from services.router.gazetteer import places
from services.router.rulebook import Rule, Rulebook
from services.router.text import normalise


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" or "warning"
    subject: str  # a rule id, an agency code or a phrase
    message: str

    def __str__(self) -> str:
        return f"{self.severity.upper():<7} {self.subject}: {self.message}"


def lint(rulebook: Rulebook) -> list[Finding]:
    """What makes a rulebook route badly: unknown codes, contested phrases, dead rules, phrases
    that are place names, rules easy to misread."""
    return [*_unknown_codes(rulebook), *_agencies_without_rules(rulebook),
            *_contested_phrases(rulebook), *_dead_rules(rulebook),
            *_place_names_as_phrases(rulebook), *_any_and_require(rulebook)]


def _unknown_codes(rulebook: Rulebook) -> Iterator[Finding]:
    if rulebook.fallback not in rulebook.codes:
        yield Finding("error", "fallback", f"names {rulebook.fallback!r}, which is not an agency")


def _agencies_without_rules(rulebook: Rulebook) -> Iterator[Finding]:
    for agency in rulebook.agencies:
        if not agency.rules and agency.code != rulebook.fallback:
            yield Finding("warning", agency.code, "has no rules: nothing can route to it")


def _contested_phrases(rulebook: Rulebook) -> Iterator[Finding]:
    owners: dict[str, dict[str, list[str]]] = {}
    for agency in rulebook.agencies:
        for rule in agency.rules:
            for phrase in {normalise(p).strip() for p in (*rule.any, *(q for g in rule.groups() for q in g))}:
                owners.setdefault(phrase, {}).setdefault(agency.code, []).append(rule.id)
    for phrase, by_agency in sorted(owners.items()):
        if len(by_agency) > 1:
            claims = "; ".join(f"{code} ({', '.join(ids)})" for code, ids in sorted(by_agency.items()))
            yield Finding("warning", repr(phrase), f"claimed by {claims}")


def _dead_rules(rulebook: Rulebook) -> Iterator[Finding]:
    for agency in rulebook.agencies:
        for rule in agency.rules:
            vetoed = {normalise(p) for p in rule.none}
            if any(normalise(p) in vetoed for p in rule.all):
                yield Finding("error", rule.id, "vetoes one of its own 'all' phrases: it never fires")
                continue
            winner = _winner(rulebook, [*_required(rule), *rule.any])
            if winner == rulebook.fallback != agency.code:
                yield Finding("warning", rule.id, "too weak to win alone: its phrases together score "
                              "below min_score (a tie-breaker at best)")
                continue
            if winner != agency.code:
                yield Finding("error", rule.id,
                              f"can never win: its phrases together route to {winner}, not {agency.code}")
                continue
            for phrase in rule.any:
                winner = _winner(rulebook, [*_required(rule), phrase])
                if winner != agency.code:
                    yield Finding("warning", rule.id, f"{phrase!r} alone routes to {winner}")


def _place_names_as_phrases(rulebook: Rulebook) -> Iterator[Finding]:
    """A phrase that is also a place name ("jembatan kecil" is a kelurahan) is found in every
    address that names the place: a complaint from there reads as one about the phrase."""
    named = {normalise(name): place for name, place in places(rulebook.gazetteer).items()}
    for agency in rulebook.agencies:
        for rule in agency.rules:
            for phrase in dict.fromkeys((*rule.any, *(p for g in rule.groups() for p in g))):
                place = named.get(normalise(phrase))
                if place is None:
                    continue
                kind = (f"a kelurahan of {place.kecamatan}" if place.kelurahan
                        else "a kecamatan")
                yield Finding("warning", rule.id, f"{phrase!r} is also a place name ({kind}): "
                              "every address there reads as this phrase")


def _any_and_require(rulebook: Rulebook) -> Iterator[Finding]:
    for agency in rulebook.agencies:
        for rule in agency.rules:
            if rule.any and rule.require:
                yield Finding("warning", rule.id,
                              "has both 'any' and 'require': it fires only when one 'any' "
                              "phrase AND a phrase of every 'require' group appear")


def _required(rule: Rule) -> list[str]:
    """The least text that satisfies a rule's required phrases: each of ``all`` and the first
    alternative of each ``require`` group."""
    return [*rule.all, *(group[0] for group in rule.require)]


def _winner(rulebook: Rulebook, phrases: list[str]) -> str:
    # A full stop between phrases keeps each one whole to a reader; the router sees plain words.
    return route(rulebook, " . ".join(phrases)).agency.code
