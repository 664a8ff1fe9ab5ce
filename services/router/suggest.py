"""Rulebook changes learnt from the desk's corrections (``disposisi rules suggest``): pure.

For every agency the desk had to assign by hand (or move a ticket to) at least ``min_support``
times, the phrases (word n-grams of the router's own normalised tokens) common in those
complaints and rare in every other labelled complaint become a proposed rule change:
- ``add_phrases``: add them to a plain rule of that agency (no conditions), or to a new rule;
- ``add_veto``: when the rules confidently chose another agency, a phrase of those complaints
  that never appears in that agency's own labelled complaints vetoes the rule that fired;
- ``add_condition``: a new rule of that agency that applies only where (kelurahan, kecamatan)
  or how (channel) those complaints came, found by suggest_conditions.py.
Each change is measured on every labelled set, alone and all together, before a person decides.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from services.router.domain import Decision, route
from services.router.labels import Example
from services.router.rulebook import Agency, Rule, Rulebook
from services.router.text import Normaliser, default_lexicon

ChangeKind = Literal["add_phrases", "add_veto", "add_condition"]
CONDITION_KEYS = ("kelurahan", "kecamatan", "channel")  # what a rule's ``when`` can require
MAX_NGRAM = 3
MAX_PHRASES = 3
NEW_RULE_WEIGHTS = (1.0, 1.5, 2.0, 3.0)  # the lightest weight that routes the support wins

# Function words: a phrase made of them, or starting or ending with one, says nothing of who
# must act ("di", "yang sudah").
_STOPWORD_TEXT = """
ada adalah agar akan aku anda apa atau bagi bahwa banyak baru begitu belum beliau bisa buat
bu bapak dan dari dengan di dia ini itu jadi jalan juga kalau kami kamu karena kata ke kemarin
kita lagi lah lalu lama mohon masih mau mereka nya oleh pada pak para saat saja sama sampai
sangat saya sejak sekali selalu semua sering serta sudah supaya tapi telah tempat terima kasih
tersebut tetapi tidak tolong untuk warga yang ya rt rw no nomor hari minggu bulan tahun jam pagi
siang sore malam
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class Change:
    """One proposed edit of one rule."""

    kind: ChangeKind
    agency: str
    rule: str
    phrases: tuple[str, ...]
    new_rule: bool = False
    weight: float = 1.0
    category: str | None = None
    when: dict[str, list[str]] = field(default_factory=dict)  # add_condition: the rule's conditions


@dataclass(frozen=True)
class Score:
    n: int
    correct: int
    triaged: int

    @property
    def accuracy(self) -> float:
        return round(self.correct / self.n, 4) if self.n else 0.0

    @property
    def triage_rate(self) -> float:
        return round(self.triaged / self.n, 4) if self.n else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "accuracy": self.accuracy, "triage_rate": self.triage_rate}


@dataclass(frozen=True)
class Suggestion:
    change: Change
    support: tuple[Example, ...]
    why: str
    effect: dict[str, tuple[Score, Score]] = field(default_factory=dict)  # set: before, after

    @property
    def harmless(self) -> bool:
        """No labelled set loses accuracy or gains triage when it is applied."""
        return all(after.accuracy >= before.accuracy and after.triage_rate <= before.triage_rate
                   for name, (before, after) in self.effect.items() if name != "desk")


# ------------------------------------------------------------------ applying, measuring

def applied(book: Rulebook, changes: Iterable[Change]) -> Rulebook:
    """A copy of the rulebook with the changes made (in memory; the file is never touched)."""
    content = book.model_dump()
    for change in changes:
        agency = next(a for a in content["agencies"] if a["code"] == change.agency)
        rule = next((r for r in agency["rules"] if r["id"] == change.rule), None)
        if rule is None and change.new_rule:
            agency["rules"].append({"id": change.rule, "any": list(change.phrases),
                                    "weight": change.weight, "category": change.category,
                                    "when": dict(change.when)})
            continue
        assert rule is not None, f"rule {change.rule} of {change.agency}"
        key = "none" if change.kind == "add_veto" else "any"
        rule[key] = [*rule[key], *(p for p in change.phrases if p not in rule[key])]
    content["version"] = f"{book.version}+suggested"
    return Rulebook.model_validate(content)


def decide(book: Rulebook, example: Example) -> Decision:
    return route(book, example.text, example.title, location=example.location,
                 channel=example.channel)


def score(book: Rulebook, examples: Sequence[Example]) -> Score:
    decided = [decide(book, e).agency.code for e in examples]
    return Score(n=len(examples), correct=sum(d == e.agency for d, e in zip(decided, examples, strict=True)),
                 triaged=sum(d == book.fallback for d in decided))


def effect(before: Rulebook, after: Rulebook,
           sets: Mapping[str, Sequence[Example]]) -> dict[str, tuple[Score, Score]]:
    return {name: (score(before, examples), score(after, examples)) for name, examples in sets.items()}


# ------------------------------------------------------------------ finding phrases

class Phrases:
    """Word n-grams of complaints as the router reads them (folded, slang expanded)."""

    def __init__(self, book: Rulebook) -> None:
        self._normaliser = Normaliser(book.lexicon or default_lexicon())

    def of(self, example: Example) -> set[str]:
        tokens = self._normaliser.tokens(f"{example.title or ''} {example.text}")
        grams = set()
        for size in range(1, MAX_NGRAM + 1):
            for start in range(len(tokens) - size + 1):
                gram = tokens[start:start + size]
                if _telling(gram):
                    grams.add(" ".join(gram))
        return grams


def _telling(gram: list[str]) -> bool:
    if gram[0] in STOPWORDS or gram[-1] in STOPWORDS:
        return False
    if any(token.isdigit() for token in gram):
        return False
    return len(gram) > 1 or len(gram[0]) >= 4


def distinctive(group: Sequence[Example], elsewhere: Sequence[Example], reader: Phrases, *,
                min_support: int, known: frozenset[str] = frozenset()) -> list[tuple[str, int, int]]:
    """Phrases found in at least ``min_support`` of ``group`` and in at most 1% (at least one)
    of ``elsewhere``, as (phrase, support, elsewhere), chosen greedily so that each covers a
    complaint the ones before it did not; longer phrases first among equals."""
    grams = [reader.of(e) for e in group]
    support = Counter(g for found in grams for g in found)
    outside = Counter(g for e in elsewhere for g in reader.of(e) if support[g] >= min_support)
    rare = max(1, len(elsewhere) // 100)
    ranked = sorted(((g, n, outside[g]) for g, n in support.items()
                     if n >= min_support and outside[g] <= rare and g not in known),
                    key=lambda item: (-item[1], item[2], -len(item[0].split()), item[0]))
    chosen: list[tuple[str, int, int]] = []
    covered: set[int] = set()
    for gram, n, out in ranked:
        covers = {i for i, found in enumerate(grams) if gram in found}
        if covers - covered and not any(gram in c or c in gram for c, _, _ in chosen):
            chosen.append((gram, n, out))
            covered |= covers
        if len(chosen) == MAX_PHRASES or len(covered) == len(group):
            break
    return chosen


# ------------------------------------------------------------------ suggesting

def suggest(book: Rulebook, desk: Sequence[Example], sets: Mapping[str, Sequence[Example]], *,
            min_support: int = 3) -> list[Suggestion]:
    """Proposed changes, each measured on ``sets`` (named labelled sets) and on the desk's own
    examples (``desk``); see the module's docstring."""
    measured = {"desk": list(desk), **sets}
    every = [e for examples in measured.values() for e in examples]
    routed = {id(e): decide(book, e) for e in desk}
    missed = [e for e in desk if routed[id(e)].agency.code != e.agency]
    reader = Phrases(book)
    found: list[Suggestion] = []
    by_agency: dict[str, list[Example]] = defaultdict(list)
    for example in missed:
        by_agency[example.agency].append(example)
    for code, group in sorted(by_agency.items()):
        if len(group) < min_support or code not in book.codes:
            continue
        elsewhere = [e for e in every if e.agency != code]
        found += _phrases_for(book, code, group, elsewhere, reader, measured, min_support)
        confident = [e for e in group if routed[id(e)].agency.code != book.fallback]
        if len(confident) >= min_support:
            found += _vetoes(book, confident, routed, every, reader, measured, min_support)
    return found


def _phrases_for(book: Rulebook, code: str, group: list[Example], elsewhere: list[Example],
                 reader: Phrases, measured: Mapping[str, Sequence[Example]],
                 min_support: int) -> list[Suggestion]:
    agency = book.agency(code)
    known = frozenset(p for rule in agency.rules for p in rule.phrases())
    chosen = distinctive(group, elsewhere, reader, min_support=min_support, known=known)
    if not chosen:
        return []
    phrases = tuple(g for g, _, _ in chosen)
    target = _plain_rule(agency)
    tries = ([Change("add_phrases", code, target.id, phrases)] if target else []) + [
        Change("add_phrases", code, new_rule_id(agency, phrases[0]), phrases, new_rule=True,
               weight=weight, category=usual_category(agency)) for weight in NEW_RULE_WEIGHTS]
    why = (f"the desk gave {len(group)} complaints to {code} that the rules did not; "
           + ", ".join(f"{g!r} is in {n} of them and in {out} other labelled complaints"
                       for g, n, out in chosen))
    return [best_change(book, tries, group, measured, why)]


def _vetoes(book: Rulebook, group: list[Example], routed: Mapping[int, Decision],
            every: list[Example], reader: Phrases, measured: Mapping[str, Sequence[Example]],
            min_support: int) -> list[Suggestion]:
    out = []
    fired: Counter[tuple[str, str]] = Counter()
    for example in group:
        decision = routed[id(example)]
        for rule_id in decision.explanation.rule_ids[:1]:
            fired[(decision.agency.code, rule_id)] += 1
    for (wrong, rule_id), n in fired.most_common():
        if n < min_support:
            continue
        vetoed = [e for e in group if routed[id(e)].agency.code == wrong]
        own = [e for e in every if e.agency == wrong]
        chosen = distinctive(vetoed, own, reader, min_support=min_support)
        if not chosen:
            continue
        change = Change("add_veto", wrong, rule_id, tuple(g for g, _, _ in chosen[:1]))
        why = (f"rule {rule_id} sent {n} complaints to {wrong} that the desk moved; "
               f"{chosen[0][0]!r} is in {chosen[0][1]} of them and in {chosen[0][2]} of "
               f"{wrong}'s own labelled complaints")
        out.append(best_change(book, [change], vetoed, measured, why))
    return out


def best_change(book: Rulebook, tries: list[Change], group: list[Example],
                measured: Mapping[str, Sequence[Example]], why: str) -> Suggestion:
    """The first change that routes its whole support right (else the last tried), measured."""
    change = tries[-1]
    for candidate in tries:
        changed = applied(book, [candidate])
        if all(decide(changed, e).agency.code == e.agency for e in group):
            change = candidate
            break
    return Suggestion(change, tuple(group), why, effect(book, applied(book, [change]), measured))


def _plain_rule(agency: Agency) -> Rule | None:
    """A rule a phrase can simply be added to: no required phrases, no place or channel."""
    plain = [r for r in agency.rules if r.any and not r.all and not r.require
             and not (r.when.kecamatan or r.when.kelurahan or r.when.channel)]
    return plain[0] if plain else None


def usual_category(agency: Agency) -> str | None:
    counts = Counter(r.category for r in agency.rules if r.category)
    return counts.most_common(1)[0][0] if counts else None


def new_rule_id(agency: Agency, phrase: str) -> str:
    taken = {r.id for r in agency.rules}
    base = f"{agency.code.lower()}.desk-{phrase.replace(' ', '-')}"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def combined(book: Rulebook, suggestions: Sequence[Suggestion],
             sets: Mapping[str, Sequence[Example]]) -> dict[str, tuple[Score, Score]]:
    """The effect of applying every suggestion at once."""
    return effect(book, applied(book, [s.change for s in suggestions]), sets)


def as_patch(suggestion: Suggestion, number: int) -> dict[str, Any]:
    """One suggestion as the reviewable YAML patch holds it."""
    change = suggestion.change
    patch: dict[str, Any] = {
        "id": f"S{number}", "apply": suggestion.harmless, "change": change.kind,
        "agency": change.agency, "rule": change.rule, "new_rule": change.new_rule,
        "phrases": list(change.phrases)}
    if change.new_rule:
        patch |= {"weight": change.weight, "category": change.category}
    if change.when:
        patch["when"] = {key: list(values) for key, values in change.when.items()}
    patch["why"] = suggestion.why
    patch["support"] = [{"id": e.id, "source": e.source, "routed": e.routed, "corrected": e.agency,
                         "text": e.text} for e in suggestion.support]
    patch["effect"] = effect_dict(suggestion.effect)
    return patch


def effect_dict(measured: Mapping[str, tuple[Score, Score]]) -> dict[str, Any]:
    return {name: {"before": before.as_dict(), "after": after.as_dict()}
            for name, (before, after) in measured.items()}


def change_of(patch: Mapping[str, Any]) -> Change:
    """A patch entry back as a Change (apply-suggestion); KeyError/ValueError when malformed."""
    kind = patch["change"]
    if kind not in ("add_phrases", "add_veto", "add_condition"):
        raise ValueError(f"change: unknown kind {kind!r}")
    phrases = tuple(str(p) for p in patch["phrases"])
    if not phrases or not all(p.strip() for p in phrases):
        raise ValueError("phrases: give at least one non-empty phrase")
    when = _conditions_of(patch["when"]) if kind == "add_condition" else {}
    return Change(kind=kind, agency=str(patch["agency"]), rule=str(patch["rule"]),
                  phrases=phrases, new_rule=kind == "add_condition" or bool(patch.get("new_rule", False)),
                  weight=float(patch.get("weight", 1.0)), category=patch.get("category"), when=when)


def _conditions_of(when: Any) -> dict[str, list[str]]:
    if not isinstance(when, Mapping) or not when:
        raise ValueError(f"when: give a mapping of {', '.join(CONDITION_KEYS)} to lists")
    out: dict[str, list[str]] = {}
    for key, values in when.items():
        if key not in CONDITION_KEYS:
            raise ValueError(f"when: unknown condition {key!r} (known: {', '.join(CONDITION_KEYS)})")
        if not isinstance(values, list) or not values or not all(str(v).strip() for v in values):
            raise ValueError(f"when.{key}: give a non-empty list of names")
        out[str(key)] = [str(v) for v in values]
    return out


