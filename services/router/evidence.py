"""What one pass over a complaint found, and which of it counts: the rules of reading that
decide between overlapping phrases, place names, stems, typo fixes and negations."""

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from services.router.gazetteer import Place
from services.router.matcher import Hit
from services.router.rulebook import Thresholds

LONGEST_SPAN = 12  # tokens; longer phrases and place names are not expected


class Reading(Enum):
    """How a phrase was found: as written, only through stems, or only after a typo fix."""

    WRITTEN = "written"
    STEM = "stem"
    TYPO = "typo"


@dataclass
class Entry:
    """What one token sequence means: phrases (as written, or as stems), a place, a road."""

    surface: list[int] = field(default_factory=list)
    stemmed: list[int] = field(default_factory=list)
    place: Place | None = None
    road: int | None = None  # phrase id of the road's status tag
    negation: bool = False
    denial: bool = False
    landmark: bool = False
    verb: str | None = None  # a complaint verb's gloss ("refused"): a failure is told here
    agent: bool = False  # "di", "oleh", "pihak": who failed may follow
    emphasis: bool = False  # "tolong", "mohon": what is asked for may follow
    held: bool = False  # "pemegang", "pakai": a document the reporter holds follows
    aside: bool = False  # "mau daftar ke", "kerja di": where the reporter goes next, or works
    over: bool = False  # "bulan lalu", "sudah ditangani": what happened is over
    now: bool = False  # "sekarang", "dari tadi": it is happening now


class Occurrence(NamedTuple):  # a tuple: built by the thousand per second
    phrase: int
    start: int  # first token
    end: int  # last token, inclusive
    reading: Reading


# An occurrence that scores: its weight, first and last token. A plain tuple: built by the
# thousand per second, and a named one costs a Python call each.
Counted = tuple[float, int, int]


@dataclass(frozen=True)
class Weighed:
    """Phrase -> weight of its best occurrence that counts; every occurrence that counts, best
    first (so that a text span scores once per agency); and the best weights of occurrences no
    negation precedes (for priority signals)."""

    present: dict[int, float]
    counted: dict[int, list[Counted]]
    affirmed: dict[int, float]


@dataclass
class Found:
    occurrences: list[Occurrence]
    negation_ends: set[int]
    denial_ends: set[int]
    landmark_ends: set[int]
    masked: set[int]  # words of road names: an address, not a topic
    places: list[Place]
    verbs: list[tuple[int, int, str]] = field(default_factory=list)  # start, end, gloss
    agent_ends: set[int] = field(default_factory=set)
    emphasis_ends: dict[int, int] = field(default_factory=dict)  # end -> start
    held_ends: set[int] = field(default_factory=set)
    aside_ends: set[int] = field(default_factory=set)
    over_cues: list[tuple[int, int]] = field(default_factory=list)  # start, end
    now_cues: list[tuple[int, int]] = field(default_factory=list)
    addresses: dict[int, int] = field(default_factory=dict)  # start -> furthest end of a place
    written: dict[int, int] = field(default_factory=dict)  # the same, of a phrase as written

    @classmethod
    def collect(cls, hits: Sequence[Hit[Entry]], fixed: set[int]) -> "Found":
        found = cls([], set(), set(), set(), set(), [])
        for hit in hits:
            entry, start, end, view = hit.payload, hit.start, hit.end, hit.view
            ids = entry.stemmed if view else entry.surface
            if not view and entry.place:
                found.addresses[start] = max(found.addresses.get(start, end), end)
            if view:
                found.occurrences.extend(Occurrence(p, start, end, Reading.STEM) for p in ids)
                continue
            if ids:
                found.written[start] = max(found.written.get(start, end), end)
            typo = bool(fixed) and any(i in fixed for i in range(start, end + 1))
            reading = Reading.TYPO if typo else Reading.WRITTEN
            found.occurrences.extend(Occurrence(p, start, end, reading) for p in ids)
            if entry.place:
                found.places.append(entry.place)
            if entry.road is not None:
                found.occurrences.append(Occurrence(entry.road, start, end, Reading.WRITTEN))
                # "Jl. Pariwisata" is an address: "pariwisata" says nothing, "jalan" still does
                found.masked.update(range(start + 1, end + 1))
            if entry.negation:
                found.negation_ends.add(end)
            if entry.denial:
                found.denial_ends.add(end)
            if entry.landmark:
                found.landmark_ends.add(end)
            if entry.verb is not None:
                found.verbs.append((start, end, entry.verb))
            if entry.agent:
                found.agent_ends.add(end)
            if entry.emphasis:
                found.emphasis_ends[end] = start
            if entry.held:
                found.held_ends.add(end)
            if entry.aside:
                found.held_ends.add(end)
                found.aside_ends.add(end)
            if entry.over:
                found.over_cues.append((start, end))
            if entry.now:
                found.now_cues.append((start, end))
        return found

    def told_over(self) -> tuple[int, int] | None:
        """The first cue that tells what happened as over, when nothing tells it is happening
        now: "minggu lalu ... sudah dipadamkan" is a report, "dari tadi ... belum datang" is
        not. None when either a now cue or no over cue is found."""
        if not self.over_cues or self.now_cues:
            return None
        return min(self.over_cues)

    def readings(self, limits: Thresholds, title_length: int,
                 held_weight: float = 1.0) -> "Readings":
        """What the text says before overlaps are settled: every phrase mentioned (even inside
        a longer phrase: "guru honorer" still mentions a "guru"; conditions and vetoes look
        here), and every occurrence that may score, weighed. A denied phrase ("bukan RS
        provinsi"), a landmark ("di depan SMA Negeri 2": where, not what) and a mention inside
        a place or road name are no mention at all."""
        kinds = {Reading.WRITTEN: 1.0, Reading.STEM: limits.stem_weight,
                 Reading.TYPO: limits.typo_weight}
        title_weight = limits.title_weight
        mentioned: set[int] = set()
        scoring: list[Scoring] = []
        landmarked = self.denial_ends | self.landmark_ends
        negations = self.negation_ends
        addressing = bool(self.addresses or self.masked)
        stems_may_repeat = bool(self.written)
        holding = bool(self.held_ends) and held_weight < 1.0
        aside = bool(self.aside_ends)
        vetoing: set[int] = set()
        for phrase, start, end, reading in self.occurrences:
            if start - 1 in landmarked:
                continue
            if not addressing or not self.addressed(start, end):
                mentioned.add(phrase)
                if aside and not self.set_aside(start):
                    vetoing.add(phrase)
            stem = reading is Reading.STEM
            if stem and stems_may_repeat and self.stem_redundant(start, end):
                continue
            weight = kinds[reading]
            if end < title_length:
                weight *= title_weight
            if holding and self.held(start):
                weight *= held_weight  # "pemegang SKTM": held, not complained about
            negated = bool(negations) and self.negated(start)
            scoring.append((phrase, start, end, not stem, weight, negated))
        return Readings(mentioned, scoring, self.addresses, self.masked,
                        vetoing if aside else mentioned)

    def stem_redundant(self, start: int, end: int) -> bool:
        """Stems only fill gaps: where a phrase matched as written, its stems say nothing
        more ("kelurahan" is not also "lurah")."""
        return _covered(self.written, start, end, strictly=False)

    def negated(self, start: int) -> bool:
        return any(start - gap in self.negation_ends for gap in (1, 2, 3))

    def held(self, start: int) -> bool:
        """A document the reporter holds ("pemegang SKTM", "pakai kartu BPJS")."""
        return start - 1 in self.held_ends or start - 2 in self.held_ends

    def set_aside(self, start: int) -> bool:
        """Named only as where the reporter goes next or works ("mau daftar ke SMK", "kerja di
        RSUD"): held, and too far from the complaint to veto a rule."""
        return start - 1 in self.aside_ends or start - 2 in self.aside_ends

    def addressed(self, start: int, end: int) -> bool:
        """Part of a place or road name."""
        if not self.addresses and not self.masked:
            return False
        if all(i in self.masked for i in range(start, end + 1)):
            return True
        return _covered(self.addresses, start, end, strictly=True)


# An occurrence that may score unless a longer phrase claims it: phrase, first and last
# token, whether written (or typo-fixed: it may hide what it contains), weight, negated.
Scoring = tuple[int, int, int, bool, float, bool]


@dataclass(slots=True)
class Readings:
    mentioned: set[int]
    scoring: list[Scoring]
    addresses: dict[int, int]
    masked: set[int]
    # the mentioned phrases that may veto a rule: all but those named only as where the
    # reporter goes next or works ("mau daftar ke SMK", "kerja di RSUD")
    vetoing: set[int]

    def weighed(self, coverers: AbstractSet[int]) -> Weighed:
        """What scores once overlaps are settled among place names and written occurrences
        of ``coverers`` (the phrases of rules that fire): a phrase that contributes to no
        firing rule hides nothing ("sudah bayar" must not hide "bayar pbb"). Stems are a
        weaker reading: they hide nothing."""
        starting = dict(self.addresses)
        for phrase, start, end, written, _, _ in self.scoring:
            if written and phrase in coverers and end > starting.get(start, -1):
                starting[start] = end
        covering = Covering.of(starting, self.masked)
        present: dict[int, float] = {}
        counted: dict[int, list[Counted]] = {}
        affirmed: dict[int, float] = {}
        for phrase, start, end, _, weight, negated in self.scoring:
            if covering.dominates(start, end):
                continue
            counted.setdefault(phrase, []).append((weight, start, end))
            if weight > present.get(phrase, 0.0):
                present[phrase] = weight
            if not negated and weight > affirmed.get(phrase, 0.0):
                affirmed[phrase] = weight
        for spans in counted.values():
            if len(spans) > 1:
                spans.sort(key=lambda span: -span[0])
        return Weighed(present, counted, affirmed)


    def affirmed_among(self, phrases: AbstractSet[int],
                       coverers: AbstractSet[int]) -> dict[int, float]:
        """The best weight of each of ``phrases`` where no negation precedes it and only
        ``coverers`` (and place names) hide it: ``weighed(coverers).affirmed`` restricted to
        ``phrases``, without the rest of the bookkeeping."""
        starting = dict(self.addresses)
        for phrase, start, end, written, _, _ in self.scoring:
            if written and phrase in coverers and end > starting.get(start, -1):
                starting[start] = end
        covering = Covering.of(starting, self.masked)
        affirmed: dict[int, float] = {}
        for phrase, start, end, _, weight, negated in self.scoring:
            if (phrase in phrases and not negated and weight > affirmed.get(phrase, 0.0)
                    and not covering.dominates(start, end)):
                affirmed[phrase] = weight
        return affirmed


@dataclass(slots=True)
class Covering:
    """What claims a stretch of text: a phrase or place name that contains it ("jalan" in
    "lampu jalan", "sawah" in "Sawah Lebar", "darurat" in "instalasi gawat darurat"), or one
    that starts earlier and runs into it ("lampu jalan rusak" is a lamp, not "jalan rusak";
    "bus sekolah gratis" a bus): Indonesian puts the head noun first. And road names."""

    starting: dict[int, int]  # start -> furthest end of a covering phrase starting there
    reach: list[int]  # token -> furthest end of a covering phrase starting before it
    masked: set[int]

    @classmethod
    def of(cls, starting: dict[int, int], masked: set[int]) -> "Covering":
        reach = [-1]
        furthest = -1
        for first in range(max(starting, default=-1) + 1):
            furthest = max(furthest, starting.get(first, -1))
            reach.append(furthest)
        return cls(starting, reach, masked)

    def dominates(self, start: int, end: int) -> bool:
        masked = self.masked
        if masked and start in masked and all(i in masked for i in range(start, end + 1)):
            return True
        reach = self.reach
        before = reach[start] if start < len(reach) else reach[-1]
        return before >= start or self.starting.get(start, -1) > end


def _covered(spans: dict[int, int], start: int, end: int, *, strictly: bool) -> bool:
    for first in range(start, max(-1, start - LONGEST_SPAN), -1):
        last = spans.get(first)
        if last is not None and last >= end and not (strictly and (first, last) == (start, end)):
            return True
    return False
