"""New conditions learnt from the desk's corrections (pure; ``disposisi rules suggest``).

When complaints from one kelurahan or kecamatan, or arriving on one channel, keep going to one
agency by the desk's hand while the rules chose others, the place (or channel) is part of who
must act: a market a UPTD runs, a river stretch the province keeps, a channel only one
agency's public uses. The proposal is a new rule of that agency with the phrases those
complaints share and a ``when`` condition on that place (the rulebook's ``Conditions``), so it
fires nowhere else; measured on every labelled set like the phrase suggestions (suggest.py).
"""

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.router.labels import Example
from services.router.rulebook import Rulebook
from services.router.suggest import (
    CONDITION_KEYS,
    NEW_RULE_WEIGHTS,
    Change,
    Phrases,
    Suggestion,
    applied,
    best_change,
    decide,
    distinctive,
    new_rule_id,
    suggest,
    usual_category,
)

# Of the corrected complaints of a place, the share that must have gone to one agency.
CONSISTENT_SHARE = 0.8


@dataclass(frozen=True)
class PlaceGroup:
    """Corrected complaints sharing one condition value and the agency the desk chose."""

    key: str  # kelurahan, kecamatan or channel
    value: str
    agency: str
    examples: tuple[Example, ...]
    chosen_by_rules: tuple[str, ...]  # the agencies the rules had sent them to


def condition_value(example: Example, key: str) -> str | None:
    """The example's kelurahan, kecamatan or channel, as the ticket carried it."""
    if key == "channel":
        return example.channel.value if example.channel else None
    value = getattr(example.location, key) if example.location is not None else None
    return value.strip() or None if isinstance(value, str) else None


def place_groups(missed: Sequence[tuple[Example, str]], *, min_support: int) -> list[PlaceGroup]:
    """Groups of corrected complaints (example, the agency the rules chose) that share a
    condition value and went consistently (CONSISTENT_SHARE) to one agency, narrowest
    condition first; a group holding the same complaints as a narrower one is left out."""
    found: list[PlaceGroup] = []
    seen: set[frozenset[str]] = set()
    for key in CONDITION_KEYS:
        at: dict[str, list[tuple[Example, str]]] = defaultdict(list)
        for example, routed in missed:
            value = condition_value(example, key)
            if value is not None:
                at[value].append((example, routed))
        for value, here in sorted(at.items()):
            agency, n = Counter(e.agency for e, _ in here).most_common(1)[0]
            if n < min_support or n / len(here) < CONSISTENT_SHARE:
                continue
            group = [(e, r) for e, r in here if e.agency == agency]
            ids = frozenset(e.id for e, _ in group)
            if ids in seen:
                continue
            seen.add(ids)
            found.append(PlaceGroup(key, value, agency, tuple(e for e, _ in group),
                                    tuple(sorted({r for _, r in group}))))
    return found


def condition_suggestions(book: Rulebook, desk: Sequence[Example],
                          sets: Mapping[str, Sequence[Example]], *, min_support: int = 3,
                          settled: frozenset[str] = frozenset()) -> list[Suggestion]:
    """A new conditioned rule per consistent place group, measured on ``sets`` and the desk.
    ``settled``: ids of desk examples another suggestion already routes right; a place is
    not proposed as the reason for what a phrase explains."""
    measured = {"desk": list(desk), **sets}
    every = [e for examples in measured.values() for e in examples]
    routed = [(e, decide(book, e).agency.code) for e in desk if e.id not in settled]
    missed = [(e, code) for e, code in routed if code != e.agency]
    reader = Phrases(book)
    out = []
    for group in place_groups(missed, min_support=min_support):
        if group.agency not in book.codes or group.agency == book.fallback:
            continue
        suggestion = _conditioned_rule(book, group, every, reader, measured, min_support)
        if suggestion is not None:
            out.append(suggestion)
    return out


def _conditioned_rule(book: Rulebook, group: PlaceGroup, every: list[Example], reader: Phrases,
                      measured: Mapping[str, Sequence[Example]],
                      min_support: int) -> Suggestion | None:
    # Phrases rare among the place's other complaints only: elsewhere the rule never fires.
    here = [e for e in every if condition_value(e, group.key) == group.value
            and e.agency != group.agency]
    chosen = distinctive(list(group.examples), here, reader, min_support=min_support)
    if not chosen:
        return None
    agency = book.agency(group.agency)
    phrases = tuple(g for g, _, _ in chosen)
    rule = new_rule_id(agency, f"{group.key} {group.value.lower()}")
    tries = [Change("add_condition", group.agency, rule, phrases, new_rule=True, weight=weight,
                    category=usual_category(agency), when={group.key: [group.value]})
             for weight in NEW_RULE_WEIGHTS]
    why = (f"the desk gave {len(group.examples)} complaints from {group.key} {group.value} to "
           f"{group.agency} that the rules sent to {', '.join(group.chosen_by_rules)}; "
           + ", ".join(f"{g!r} is in {n} of them and in {out} other labelled complaints from there"
                       for g, n, out in chosen))
    return best_change(book, tries, list(group.examples), measured, why)


def suggest_all(book: Rulebook, desk: Sequence[Example], sets: Mapping[str, Sequence[Example]], *,
                min_support: int = 3) -> list[Suggestion]:
    """Phrases and vetoes (suggest.py), then new conditions for the corrections that no
    harmless phrase or veto routes right."""
    found = suggest(book, desk, sets, min_support=min_support)
    settled = frozenset(e.id for s in found if s.harmless for e in _routed_right(book, s))
    return [*found, *condition_suggestions(book, desk, sets, min_support=min_support,
                                           settled=settled)]


def _routed_right(book: Rulebook, suggestion: Suggestion) -> list[Example]:
    changed = applied(book, [suggestion.change])
    return [e for e in suggestion.support if decide(changed, e).agency.code == e.agency]
