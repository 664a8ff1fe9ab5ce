"""A rulebook compiled for routing: one automaton for every phrase, place and road name, and
the scoring of what it finds. Built once per Rulebook object (see ``compiled``)."""

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace

from services.router.evidence import Entry, Found, Readings, Weighed
from services.router.gazetteer import ROAD_WORDS, Place, places, road_tag
from services.router.matcher import TokenMatcher
from services.router.rulebook import MainAskCues, PhraseRule, Rule, Rulebook, Signal
from services.router.text import (
    Lexicon,
    Normaliser,
    TypoFixer,
    default_lexicon,
    may_stem_to,
    root_fragments,
    shared_stemmer,
)
from shared.contracts import Channel, Location, Priority

_SETTLING_ROUNDS = 3
_NEAR = 3  # tokens between a complaint verb and its agent that still count as next to it
_TITLE_GAP = "#"  # never a token (tokens are letters or digits): nothing matches across it


@dataclass(frozen=True)
class Phrase:
    text: str
    specificity: float


@dataclass(frozen=True)
class CompiledRule:
    id: str
    agency: str  # "" for a priority signal
    weight: float
    any: frozenset[int]
    groups: tuple[frozenset[int], ...]
    none: frozenset[int]
    evidence: frozenset[int]
    kecamatan: frozenset[str] = frozenset()
    kelurahan: frozenset[str] = frozenset()
    channels: frozenset[Channel] = frozenset()
    priority: Priority | None = None
    category: str | None = None

    def may_fire(self, mentioned: AbstractSet[int], vetoing: AbstractSet[int]) -> bool:
        """Could fire once overlaps are settled: every phrase it needs is mentioned, and no
        veto phrase is mentioned other than as merely held (``vetoing``)."""
        if not self.none.isdisjoint(vetoing):
            return False
        if self.any and self.any.isdisjoint(mentioned):
            return False
        return all(not group.isdisjoint(mentioned) for group in self.groups)

    def fires(self, present: AbstractSet[int], mentioned: AbstractSet[int],
              vetoing: AbstractSet[int]) -> bool:
        """Some of its evidence scores (an 'any' phrase, if it has them, among it); every
        condition is mentioned, even inside a longer phrase ("pajak" in "pajak hotel"); and no
        veto phrase is mentioned anywhere ("guru honorer" still mentions a "guru")."""
        if self.evidence.isdisjoint(present) or not self.none.isdisjoint(vetoing):
            return False
        if self.any and self.any.isdisjoint(present):
            return False
        return all(not group.isdisjoint(mentioned) for group in self.groups)

    def signalled(self, affirmed: AbstractSet[int], mentioned: AbstractSet[int]) -> bool:
        """A priority signal: every phrase it needs present and not negated."""
        if not self.none.isdisjoint(mentioned):
            return False
        if self.any and self.any.isdisjoint(affirmed):
            return False
        return all(not group.isdisjoint(affirmed) for group in self.groups)

    def contributions(self, present: dict[int, float],
                      phrases: Sequence["Phrase"]) -> list[tuple[float, int, float]]:
        """What each phrase adds to the rule's score, as (value, phrase, factor): each 'any'
        phrase counts; the conditions count like one phrase spread over the text: the best
        scoring phrase of each group, averaged, times the length bonus of a phrase of that
        many words (so three generic words far apart do not outweigh one specific phrase).
        A group whose phrases are all inside longer ones is met but scores nothing."""
        found: list[tuple[float, int, float]] = []
        for phrase in self.any:
            if phrase in present:
                found.append((self.weight * phrases[phrase].specificity * present[phrase],
                              phrase, self.weight))
        if self.groups:
            size = len(self.groups)
            factor = self.weight * (1.0 + 0.5 * (min(size, 4) - 1)) / size
            for group in self.groups:
                best = max(((phrases[p].specificity * present[p], p) for p in group
                            if p in present), default=None)
                if best is not None:
                    found.append((factor * best[0], best[1], factor))
        return found

    def applies(self, where: "Whereabouts", channel: Channel | None) -> bool:
        if self.channels and channel not in self.channels:
            return False
        if self.kecamatan and not self.kecamatan & where.kecamatan:
            return False
        return not self.kelurahan or bool(self.kelurahan & where.kelurahan)


@dataclass(frozen=True)
class Whereabouts:
    kecamatan: frozenset[str]
    kelurahan: frozenset[str]


@dataclass
class Tally:
    """One agency's evidence."""

    score: float = 0.0
    rule_ids: list[str] = field(default_factory=list)
    phrases: list[int] = field(default_factory=list)
    category: str | None = None
    best_rule: float = 0.0
    priority: Priority | None = None
    priority_rule: str | None = None  # the rule that set the priority, for the explanation


@dataclass(frozen=True)
class Ask:
    """The main ask: the agency whose phrase is the agent of a complaint verb (or follows an
    emphasis cue), what went wrong, and the words that say so."""

    agency: str
    gloss: str
    quote: str
    phrase: int
    verb: tuple[int, int]  # the tokens that tell the failure (or the emphasis cue)


@dataclass(frozen=True)
class Analysis:
    tallies: dict[str, Tally]
    signals: list[tuple[Signal, list[int]]]
    phrases: list[Phrase]
    corrections: dict[str, str]
    ask: Ask | None = None
    over: str | None = None  # the words that tell an emergency as over, none telling it is now
    aside: tuple[int, ...] = ()  # phrases named only as where the reporter goes next or works


class CompiledRulebook:
    def __init__(self, rulebook: Rulebook) -> None:
        self.rulebook = rulebook
        self.limits = rulebook.limits
        lexicon = rulebook.lexicon or default_lexicon()
        self.normaliser = Normaliser(lexicon)
        self.stemmer = shared_stemmer()
        self._ids: dict[str, int] = {}
        self._phrase_tokens: list[tuple[str, ...]] = []
        self.rules = [self._compile(rule, agency.code)
                      for agency in rulebook.agencies for rule in agency.rules]
        self.signals = [(signal, self._compile(signal, ""))
                        for signal in rulebook.priority_signals]
        for status in rulebook.gazetteer.roads:
            self._phrase(road_tag(status))
        self._signal_evidence = _evidence(rule for _, rule in self.signals)
        # phrase -> the signals it may set off: one of its 'any' phrases, else one of its first
        # group's, must be affirmed; only those signals are checked (most texts hold none)
        self._signal_triggers: dict[int, list[int]] = defaultdict(list)
        for index, (_, rule) in enumerate(self.signals):
            for phrase in rule.any or (rule.groups[0] if rule.groups else ()):
                self._signal_triggers[phrase].append(index)
        self._signal_coverers = self._signal_evidence | frozenset(
            self._phrase(phrase) for phrase in lexicon.signal_blind)
        self.phrases = self._specificities()
        self._not_asks = self._concerned_only(rulebook)
        self._order = {compiled_rule.id: i for i, compiled_rule in enumerate(self.rules)}
        self._rules_by_phrase: dict[int, list[CompiledRule]] = defaultdict(list)
        for compiled_rule in self.rules:
            for phrase in compiled_rule.evidence:
                self._rules_by_phrase[phrase].append(compiled_rule)
        self.matcher, vocabulary = self._automaton(lexicon)
        self.fixer = TypoFixer(vocabulary, self.stemmer, lexicon.typo_min_length)
        self._places = {self._key(name): place for name, place in places(rulebook.gazetteer).items()}
        self._stems: dict[str, str] = {}

    # --- compiling -------------------------------------------------------------------------

    def _key(self, text: str) -> str:
        return " ".join(self.normaliser.tokens(text))

    def _phrase(self, text: str) -> int:
        key = text if text.startswith("@") else self._key(text)
        if key not in self._ids:
            self._ids[key] = len(self._phrase_tokens)
            self._phrase_tokens.append(tuple(key.split()))
        return self._ids[key]

    def _compile(self, rule: PhraseRule, agency: str) -> CompiledRule:
        ids = self._phrase
        any_ = frozenset(ids(p) for p in rule.any)
        groups = tuple(frozenset(ids(p) for p in group) for group in rule.groups())
        compiled_rule = CompiledRule(
            id=rule.id, agency=agency, weight=1.0, any=any_, groups=groups,
            none=frozenset(ids(p) for p in rule.none), evidence=any_.union(*groups))
        if not isinstance(rule, Rule):
            return compiled_rule  # a priority signal: no weight, place or outcome of its own
        return replace(
            compiled_rule, weight=rule.weight, priority=rule.priority, category=rule.category,
            kecamatan=frozenset(self._key(k) for k in rule.when.kecamatan),
            kelurahan=frozenset(self._key(k) for k in rule.when.kelurahan),
            channels=frozenset(rule.when.channel))

    def _concerned_only(self, rulebook: Rulebook) -> frozenset[int]:
        """Phrases that only rules with ``ask: false`` list: who is concerned, not who failed."""
        asking: set[int] = set()
        concerned: set[int] = set()
        rules = [rule for agency in rulebook.agencies for rule in agency.rules]
        for rule, compiled_rule in zip(rules, self.rules, strict=True):
            (asking if rule.ask else concerned).update(compiled_rule.evidence)
        return frozenset(concerned - asking)

    def _stem_pattern(self, token: str) -> str:
        """A phrase word as the stem view matches it: its stem when only a suffix was cut
        ("tumpukan" -> "tumpuk"), else as written. A prefix changes the meaning too often
        ("pertanahan" is not "tanah", "pekerja" not "kerja"), so text is stemmed towards a
        phrase, never a phrase towards a more generic root."""
        stem = self.stemmer.stem(token)
        return stem if token.startswith(stem) else token

    def _specificities(self) -> list[Phrase]:
        """Specific phrases weigh more: longer ones, and ones fewer agencies claim (IDF). A
        one-word phrase is as generic as its word across all agencies' phrases."""
        phrase_agencies: dict[int, set[str]] = defaultdict(set)
        word_agencies: dict[str, set[str]] = defaultdict(set)
        for rule in self.rules:
            for phrase in rule.evidence:
                phrase_agencies[phrase].add(rule.agency)
                for word in self._phrase_tokens[phrase]:
                    word_agencies[word].add(rule.agency)
        total = max(1, len({rule.agency for rule in self.rules}))
        result = []
        for phrase, tokens in enumerate(self._phrase_tokens):
            claims = phrase_agencies.get(phrase, set())
            if len(tokens) == 1:
                claims = word_agencies.get(tokens[0], claims)
            idf = math.log(1 + total / max(1, len(claims))) / math.log(1 + total)
            rarity = 0.5 + 0.5 * idf  # shared words still count, half as much at worst
            length = 1.0 + 0.5 * (min(len(tokens), 4) - 1)
            result.append(Phrase(" ".join(tokens), round(length * rarity, 4)))
        return result

    def _automaton(self, lexicon: Lexicon) -> tuple[TokenMatcher[Entry], set[str]]:
        entries: dict[tuple[str, ...], Entry] = defaultdict(Entry)
        self._stem_vocabulary: set[str] = set()
        vocabulary: set[str] = set()
        for phrase, tokens in enumerate(self._phrase_tokens):
            if tokens[0].startswith("@"):
                continue  # a tag: set by the gazetteer, never typed
            surface = entries[tokens]
            surface.surface.append(phrase)
            stem_tokens = tuple(self._stem_pattern(t) for t in tokens)
            self._stem_vocabulary.update(stem_tokens)
            stemmed = entries[stem_tokens]
            if not stemmed.stemmed or tokens == self._phrase_tokens[stemmed.stemmed[0]]:
                # one phrase per stem: "lurah", "lurahnya", "kelurahan" must not count thrice
                stemmed.stemmed[:] = [phrase]
            vocabulary.update(tokens)
        for name, place in places(self.rulebook.gazetteer).items():
            tokens = tuple(self.normaliser.tokens(name))
            entries[tokens].place = place
            vocabulary.update(tokens)
        for status, roads in self.rulebook.gazetteer.roads.items():
            tag = self._phrase(road_tag(status))
            for road in roads:
                for word in ROAD_WORDS:
                    entries[(word, *self.normaliser.tokens(road))].road = tag
        for blind in lexicon.signal_blind:  # read as written, so that they hide signal words
            tokens = tuple(self.normaliser.tokens(blind))
            blind_id = self._ids[" ".join(tokens)]
            if blind_id not in entries[tokens].surface:
                entries[tokens].surface.append(blind_id)
        for cue in lexicon.negations:
            entries[tuple(self.normaliser.tokens(cue))].negation = True
        for cue in lexicon.denials:
            entries[tuple(self.normaliser.tokens(cue))].denial = True
        for cue in lexicon.landmark_cues:
            for noun in ("", *lexicon.landmark_nouns):
                entries[tuple(self.normaliser.tokens(f"{cue} {noun}"))].landmark = True
        for cue in lexicon.over_cues:
            entries[tuple(self.normaliser.tokens(cue))].over = True
        for cue in lexicon.now_cues:
            entries[tuple(self.normaliser.tokens(cue))].now = True
        cues = self.rulebook.main_ask
        for gloss, verbs in cues.verbs.items():
            for verb in verbs:
                entries[tuple(self.normaliser.tokens(verb))].verb = gloss
        for cue in cues.agent_cues:
            entries[tuple(self.normaliser.tokens(cue))].agent = True
        for cue in cues.emphasis_cues:
            entries[tuple(self.normaliser.tokens(cue))].emphasis = True
        for cue in cues.held_cues:
            entries[tuple(self.normaliser.tokens(cue))].held = True
        for cue in cues.aside_cues:
            entries[tuple(self.normaliser.tokens(cue))].aside = True
        self._root_fragments = root_fragments(self._stem_vocabulary)
        matcher: TokenMatcher[Entry] = TokenMatcher()
        for tokens, entry in entries.items():
            if tokens:
                matcher.add(tokens, entry)
        matcher.build()
        return matcher, vocabulary

    # --- analysing -------------------------------------------------------------------------

    def analyse(self, text: str, title: str | None, *, location: Location | None,
                channel: Channel | None) -> Analysis:
        title_tokens = self.normaliser.tokens(title or "")
        tokens = [*title_tokens, _TITLE_GAP, *self.normaliser.tokens(text)]
        corrections: dict[str, str] = {}
        fixed: set[int] = set()
        known, shortest = self.fixer.vocabulary, self.fixer.min_length
        for index, token in enumerate(tokens):
            if token in known or len(token) < shortest:
                continue  # the common case, without a call
            better = self.fixer.fix(token)
            if better:
                corrections[token] = tokens[index] = better
                fixed.add(index)
        stems = [self._stem(t) for t in tokens]
        found = Found.collect(self.matcher.find([tokens, stems]), fixed)
        cues = self.rulebook.main_ask
        readings = found.readings(self.limits, len(title_tokens), cues.held_weight)
        where = self._whereabouts(found.places, location)
        weighed, firing = self._settle(readings, where, channel)
        tallies, offers = self._tally(firing, weighed)
        ask = None
        if (found.verbs or found.emphasis_ends) and tallies:
            ask = main_ask(found, tallies, weighed, tokens, cues, self._not_asks)
            if ask is not None:
                told = {i for start, end, _ in found.verbs for i in range(start, end + 1)}
                self._favour(ask, tallies, offers, weighed, cues.boost, told)
        affirmed, mentioned = self._signal_view(readings, weighed), readings.mentioned
        triggers = self._signal_triggers
        maybe = sorted({i for p in affirmed if p in triggers for i in triggers[p]})
        signals = [(signal, sorted(rule.evidence & affirmed.keys()))
                   for signal, rule in (self.signals[i] for i in maybe)
                   if rule.signalled(affirmed.keys(), mentioned)
                   and (signal.near is None or together(rule.groups, readings, signal.near))]
        over = found.told_over() if signals else None
        over_words = None if over is None else " ".join(tokens[over[0]:over[1] + 1])
        aside = tuple(sorted(mentioned - readings.vetoing)) if found.aside_ends else ()
        return Analysis(tallies, signals, self.phrases, corrections, ask, over_words, aside)

    def _signal_view(self, readings: Readings, weighed: Weighed) -> dict[int, float]:
        """Signal phrases as priority reads them: a routing phrase that contains one still
        tells it ("pingsan setelah makan" is a faint, "membawa parang" a weapon); only a
        longer signal phrase, a place name or a signal-blind phrase of the lexicon ("instalasi
        gawat darurat") hides it. Weighed again only when routing hid one (rare)."""
        affirmed = weighed.affirmed
        signal_words = self._signal_evidence
        if not any(p in self._signal_coverers and (p not in signal_words or p not in affirmed)
                   for p in readings.mentioned):
            return affirmed  # nothing hidden, no signal-blind phrase: routing's view will do
        return readings.affirmed_among(signal_words, self._signal_coverers)

    def _order_of(self, rule: CompiledRule) -> int:
        return self._order[rule.id]

    def _settle(self, readings: Readings, where: "Whereabouts",
                channel: Channel | None) -> tuple[Weighed, list[CompiledRule]]:
        """Which rules fire, and what scores for them. Overlapping phrases are settled among
        the phrases of rules that may fire; a rule whose 'any' phrases all lose no longer
        hides anything, which may uncover phrases of others: settle again until no rule
        changes (a few rounds at most)."""
        mentioned, vetoing = readings.mentioned, readings.vetoing
        rules_by_phrase = self._rules_by_phrase
        candidates = {r.id: r for p in mentioned if p in rules_by_phrase
                      for r in rules_by_phrase[p]}
        eligible = [r for r in candidates.values()
                    if r.may_fire(mentioned, vetoing) and r.applies(where, channel)]
        eligible.sort(key=self._order_of)
        firing = eligible
        weighed = readings.weighed(_evidence(firing))
        for _ in range(_SETTLING_ROUNDS):
            settled = [r for r in eligible if r.fires(weighed.present.keys(), mentioned, vetoing)]
            if settled == firing:
                break
            firing = settled
            weighed = readings.weighed(_evidence(firing))
        else:  # no fixed point within the rounds: the rules that fire on the last settling
            firing = [r for r in eligible
                      if r.fires(weighed.present.keys(), mentioned, vetoing)]
        return weighed, firing

    def _stem(self, token: str) -> str:
        """Sastrawi's stem; for words its dictionary lacks (acronyms, loans: "bansosnya",
        "wifinya") at least the possessive "-nya" goes when what remains is a rule word."""
        found = self._stems.get(token)
        if found is None:
            if len(self._stems) > 200_000:
                self._stems.clear()
            found = self._stems[token] = self._stem_uncached(token)
        return found

    def _stem_uncached(self, token: str) -> str:
        if token in self._stem_vocabulary:
            return token  # already a word the stem view looks for: "penerangan jalannya"
        if not may_stem_to(token, self._root_fragments):
            # No word the stem view looks for can hide in it: skip the stemmer (~0.4 ms).
            return token
        stem = self.stemmer.stem(token)
        if stem == token and token.endswith("nya") and token[:-3] in self._stem_vocabulary:
            return token[:-3]
        return stem

    def _whereabouts(self, seen: list[Place], location: Location | None) -> Whereabouts:
        kecamatan = {self._key(p.kecamatan) for p in seen}
        kelurahan = {self._key(p.kelurahan) for p in seen if p.kelurahan}
        if location is not None and location.kecamatan:
            kecamatan.add(self._key(location.kecamatan))
        if location is not None and location.kelurahan:
            kelurahan.add(self._key(location.kelurahan))
            place = self._places.get(self._key(location.kelurahan))
            if place is not None:  # the gazetteer knows which kecamatan it lies in
                kecamatan.add(self._key(place.kecamatan))
        return Whereabouts(frozenset(kecamatan), frozenset(kelurahan))

    def _favour(self, ask: Ask, tallies: dict[str, Tally],
                offers: dict[str, list[tuple[float, int, float]]], weighed: Weighed,
                boost: float, told: set[int]) -> None:
        """The main ask's agency weighs more; the words that tell a failure ("disuruh
        bayar", ``told``) are about it and no longer score for another agency listing them."""
        for agency, tally in list(tallies.items()):
            if agency != ask.agency:
                tally.score, tally.phrases = self._claim(offers[agency], weighed, told)
                if not tally.phrases:
                    del tallies[agency]
        tallies[ask.agency].score *= 1.0 + boost

    def _tally(self, firing: list[CompiledRule], weighed: Weighed,
               ) -> tuple[dict[str, Tally], dict[str, list[tuple[float, int, float]]]]:
        """Each agency's evidence: what its firing rules' phrases add, where a phrase and a
        stretch of text score once per agency at their best (a phrase two of its rules list,
        a word read both as written and through its stem)."""
        tallies: dict[str, Tally] = {}
        offers: dict[str, list[tuple[float, int, float]]] = defaultdict(list)
        for rule in firing:
            found = rule.contributions(weighed.present, self.phrases)
            offers[rule.agency].extend(found)
            tally = tallies.setdefault(rule.agency, Tally())
            alone = sum(value for value, _, _ in found)
            if rule.category and alone > tally.best_rule:
                tally.category = rule.category  # the strongest rule names the category
            tally.best_rule = max(tally.best_rule, alone)
            tally.rule_ids.append(rule.id)
            if higher(tally.priority, rule.priority) != tally.priority:
                tally.priority, tally.priority_rule = rule.priority, rule.id
        for agency, tally in tallies.items():
            tally.score, tally.phrases = self._claim(offers[agency], weighed)
        return tallies, offers

    def _claim(self, offers: list[tuple[float, int, float]], weighed: Weighed,
               blocked: AbstractSet[int] = frozenset()) -> tuple[float, list[int]]:
        """The best offers first; each phrase once, on tokens no better offer took (nor
        ``blocked``)."""
        taken: set[int] = set(blocked)
        used: list[int] = []
        score = 0.0
        for _, phrase, factor in sorted(offers, key=lambda offer: (-offer[0], offer[1])):
            if phrase in used:
                continue
            for weight, start, end in weighed.counted[phrase]:
                tokens = range(start, end + 1)
                if taken.isdisjoint(tokens):
                    taken.update(tokens)
                    score += factor * self.phrases[phrase].specificity * weight
                    used.append(phrase)
                    break
        return score, used


def main_ask(found: Found, tallies: dict[str, Tally], weighed: Weighed, tokens: Sequence[str],
             cues: MainAskCues, not_asks: AbstractSet[int] = frozenset()) -> Ask | None:
    """Which agency the complaint is about: the one whose phrase stands nearest a complaint
    verb (within a few words is near enough; then an agent cue before the phrase decides: "di
    RSUD", "oleh petugas puskesmas"); failing a verb, the phrase right after an emphasis cue
    ("yang paling ..."). None when two agencies stand equally near, or none near enough. A
    held document ("pemegang SKTM") and a phrase that only says who is concerned never are."""
    owners: dict[int, set[str]] = defaultdict(set)
    for agency, tally in tallies.items():
        for phrase in tally.phrases:
            if phrase not in not_asks:
                owners[phrase].add(agency)
    spans = [(start, end, phrase, agency) for phrase, agencies in owners.items()
             if len(agencies) == 1 for agency in agencies
             for _, start, end in weighed.counted[phrase] if not found.held(start)]
    best: tuple[tuple[int, ...], list[Ask]] | None = None
    for v_start, v_end, gloss in _longest(found.verbs):
        for start, end, phrase, agency in spans:
            if v_start <= start and end <= v_end:
                continue  # the verb itself ("dimintai uang"): what failed, not who
            cue = _agent_cue(found.agent_ends, start)
            first = start if cue is None else cue  # "... di RSUD": the cue goes with it
            gap = v_start - end - 1 if end < v_start else max(0, first - v_end - 1)
            if gap > cues.window:
                continue
            # within a few words is near enough; then an agent cue, then the first failure
            # told, then the nearest
            rank = (max(gap, _NEAR), 0 if cue is not None else 1, v_start, gap)
            quote = _quote(tokens, (v_start, v_end), (first, first), (start, end))
            best = _better(best, rank, Ask(agency, gloss, quote, phrase, (v_start, v_end)))
    if best is None:
        for cue_end, cue_start in found.emphasis_ends.items():
            for start, end, phrase, agency in spans:
                gap = start - cue_end - 1
                if 0 <= gap <= cues.emphasis_window:
                    quote = _quote(tokens, (cue_start, cue_end), (start, end))
                    ask = Ask(agency, "asked about", quote, phrase, (cue_start, cue_end))
                    best = _better(best, (gap, 0, cue_end, gap), ask)
    if best is None or len({ask.agency for ask in best[1]}) > 1:
        return None
    return best[1][0]


def together(groups: Sequence[AbstractSet[int]], readings: Readings, near: int) -> bool:
    """Whether one affirmed occurrence of every group lies within ``near`` tokens of the first
    group's: a symptom and the words that tell it is happening now, in one clause."""
    starts: list[list[int]] = [[] for _ in groups]
    for phrase, start, _end, _written, _weight, negated in readings.scoring:
        if negated:
            continue
        for index, group in enumerate(groups):
            if phrase in group:
                starts[index].append(start)
    if not all(starts):
        return False
    return any(all(any(abs(other - anchor) <= near for other in found) for found in starts[1:])
               for anchor in starts[0])


def _agent_cue(agent_ends: AbstractSet[int], start: int) -> int | None:
    """Where an agent cue stands right before a phrase, or one word before it ("oleh agen
    e-warong", "di kantor kelurahan")."""
    for cue in (start - 1, start - 2):
        if cue in agent_ends:
            return cue
    return None


def _longest(verbs: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Verbs not inside a longer one ("disuruh" in "disuruh tebus")."""
    return [(start, end, gloss) for start, end, gloss in verbs
            if not any(s <= start and end <= e and (s, e) != (start, end) for s, e, _ in verbs)]


def _better(best: tuple[tuple[int, ...], list[Ask]] | None, rank: tuple[int, ...], ask: Ask,
            ) -> tuple[tuple[int, ...], list[Ask]]:
    if best is None or rank < best[0]:
        return rank, [ask]
    if rank == best[0]:
        best[1].append(ask)
    return best


def _quote(tokens: Sequence[str], *stretches: tuple[int, int]) -> str:
    """The stretches of text (a verb, a cue, a phrase: rulebook words only, never the words
    between them, which may be a name) in reading order, "…" where words lie between them."""
    quote = ""
    shown = -1  # the last token quoted
    for start, end in sorted(stretches):
        start = max(start, shown + 1)
        if start > end:
            continue  # inside what is quoted already
        gap = "" if shown < 0 else (" " if start == shown + 1 else " … ")
        quote += gap + " ".join(tokens[start:end + 1])
        shown = end
    return quote


def _evidence(rules: Iterable[CompiledRule]) -> frozenset[int]:
    return frozenset().union(*(rule.evidence for rule in rules))


def higher(a: Priority | None, b: Priority | None) -> Priority | None:
    if a is None or b is None:
        return a or b
    order = list(Priority)
    return a if order.index(a) >= order.index(b) else b


def compiled(rulebook: Rulebook) -> CompiledRulebook:
    """The rulebook's compiled form, built on first use and kept on the object; a reloaded
    rulebook is a new object and compiles afresh."""
    engine = rulebook._compiled
    if not isinstance(engine, CompiledRulebook) or engine.rulebook is not rulebook:
        engine = CompiledRulebook(rulebook)
        rulebook._compiled = engine
    return engine
