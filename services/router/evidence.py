"""What one pass over a complaint found, and which of it counts: the rules of reading that
decide between overlapping phrases, place names, stems, typo fixes and negations."""

from collections.abc import Sequence, Set as AbstractSet
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


class Occurrence(NamedTuple):  # a tuple: built by the thousand per second
    phrase: int
    start: int  # first token
    end: int  # last token, inclusive
    reading: Reading


class Counted(NamedTuple):
    """An occurrence that scores: its weight and the tokens it spans."""

    weight: float
    start: int
    end: int


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
        return found

    def mentions(self) -> set[int]:
        """Every phrase mentioned anywhere, even inside a longer phrase ("guru honorer" still
        mentions a "guru"), but not inside a place or road name, nor denied, nor a landmark.
        Conditions and vetoes look here; only scoring settles overlaps."""
        mentioned: set[int] = set()
        for occurrence in self.occurrences:
            if self._set_aside(occurrence.start):
                continue
            if not self.addressed(occurrence.start, occurrence.end):
                mentioned.add(occurrence.phrase)
        return mentioned

    def _set_aside(self, start: int) -> bool:
        # "bukan RS provinsi"; "di depan SMA Negeri 2": where it is, not what it is about
        return start - 1 in self.denial_ends or start - 1 in self.landmark_ends

    def covering(self, coverers: AbstractSet[int]) -> dict[int, int]:
        """Start -> furthest end of a place name or of a written occurrence of one of
        ``coverers`` (the phrases of rules that fire): a phrase that contributes to no firing
        rule hides nothing ("sudah bayar" must not hide "bayar pbb"). Only what is written
        hides what it contains; stems are a weaker reading."""
        covering = dict(self.addresses)
        for occurrence in self.occurrences:
            if occurrence.reading is not Reading.STEM and occurrence.phrase in coverers:
                start, end = occurrence.start, occurrence.end
                covering[start] = max(covering.get(start, end), end)
        return covering

    def dominated(self, start: int, end: int, covering: dict[int, int]) -> bool:
        """Claimed by another phrase or place name: one that contains it ("jalan" in "lampu
        jalan", "sawah" in "Sawah Lebar", "darurat" in "instalasi gawat darurat"), or one that
        starts earlier and runs into it ("lampu jalan rusak" is a lamp, not "jalan rusak";
        "bus sekolah gratis" a bus). Indonesian puts the head noun first."""
        if start in self.masked and all(i in self.masked for i in range(start, end + 1)):
            return True
        for first in range(start, max(-1, start - LONGEST_SPAN), -1):
            last = covering.get(first)
            if last is None:
                continue
            if (last > end) if first == start else (last >= start):
                return True
        return False

    def stem_redundant(self, start: int, end: int) -> bool:
        """Stems only fill gaps: where a phrase matched as written, its stems say nothing
        more ("kelurahan" is not also "lurah")."""
        return _covered(self.written, start, end, strictly=False)

    def negated(self, start: int) -> bool:
        return any(start - gap in self.negation_ends for gap in (1, 2, 3))

    def weighed(self, limits: Thresholds, title_length: int,
                coverers: AbstractSet[int]) -> Weighed:
        """Weigh what scores, once ``coverers`` have settled the overlaps; a mention inside a
        place or road name is no mention at all."""
        title_weight = limits.title_weight
        kinds = {Reading.WRITTEN: 1.0, Reading.STEM: limits.stem_weight,
                 Reading.TYPO: limits.typo_weight}
        covering = self.covering(coverers)
        present: dict[int, float] = {}
        counted: dict[int, list[Counted]] = {}
        affirmed: dict[int, float] = {}
        for occurrence in self.occurrences:
            start, end = occurrence.start, occurrence.end
            if self._set_aside(start) or self.dominated(start, end, covering):
                continue
            if occurrence.reading is Reading.STEM and self.stem_redundant(start, end):
                continue
            weight = kinds[occurrence.reading]
            if end < title_length:
                weight *= title_weight
            phrase = occurrence.phrase
            counted.setdefault(phrase, []).append(Counted(weight, start, end))
            if weight > present.get(phrase, 0.0):
                present[phrase] = weight
            if not self.negated(start) and weight > affirmed.get(phrase, 0.0):
                affirmed[phrase] = weight
        for spans in counted.values():
            if len(spans) > 1:
                spans.sort(key=lambda span: -span.weight)
        return Weighed(present, counted, affirmed)

    def addressed(self, start: int, end: int) -> bool:
        """Part of a place or road name."""
        if not self.addresses and not self.masked:
            return False
        if all(i in self.masked for i in range(start, end + 1)):
            return True
        return _covered(self.addresses, start, end, strictly=True)


def _covered(spans: dict[int, int], start: int, end: int, *, strictly: bool) -> bool:
    for first in range(start, max(-1, start - LONGEST_SPAN), -1):
        last = spans.get(first)
        if last is not None and last >= end and not (strictly and (first, last) == (start, end)):
            return True
    return False
