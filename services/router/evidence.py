"""What one pass over a complaint found, and which of it counts: the rules of reading that
decide between overlapping phrases, place names, stems, typo fixes and negations."""

from collections.abc import Sequence
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
    covers: bool = False  # a rule phrase (not only a priority signal's): hides shorter ones
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


@dataclass(frozen=True)
class Weighed:
    """Phrase -> weight of its best occurrence that counts; the same for occurrences no
    negation precedes (for priority signals); and every phrase mentioned at all (for vetoes)."""

    present: dict[int, float]
    affirmed: dict[int, float]
    mentioned: set[int]


@dataclass
class Found:
    occurrences: list[Occurrence]
    negation_ends: set[int]
    denial_ends: set[int]
    landmark_ends: set[int]
    masked: set[int]  # words of road names: an address, not a topic
    places: list[Place]
    covering: dict[int, int]  # start -> furthest end of a phrase or place starting there
    addresses: dict[int, int] = field(default_factory=dict)  # the same, for places only
    written: dict[int, int] = field(default_factory=dict)  # the same, as written only

    @classmethod
    def collect(cls, hits: Sequence[Hit[Entry]], fixed: set[int]) -> "Found":
        found = cls([], set(), set(), set(), set(), [], {})
        for hit in hits:
            entry, start, end, view = hit.payload, hit.start, hit.end, hit.view
            ids = entry.stemmed if view else entry.surface
            if not view and (entry.covers or entry.place):
                # only what is written hides what it contains; stems are a weaker reading
                found.covering[start] = max(found.covering.get(start, end), end)
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

    def dominated(self, start: int, end: int) -> bool:
        """Claimed by another phrase or place name: one that contains it ("jalan" in "lampu
        jalan", "sawah" in "Sawah Lebar", "darurat" in "instalasi gawat darurat"), or one that
        starts earlier and runs into it ("lampu jalan rusak" is a lamp, not "jalan rusak";
        "bus sekolah gratis" a bus). Indonesian puts the head noun first."""
        if start in self.masked and all(i in self.masked for i in range(start, end + 1)):
            return True
        for first in range(start, max(-1, start - LONGEST_SPAN), -1):
            last = self.covering.get(first)
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

    def weighed(self, limits: Thresholds, title_length: int) -> Weighed:
        """Weigh what counts; a mention inside a place or road name is no mention at all."""
        title_weight = limits.title_weight
        kinds = {Reading.WRITTEN: 1.0, Reading.STEM: limits.stem_weight,
                 Reading.TYPO: limits.typo_weight}
        present: dict[int, float] = {}
        affirmed: dict[int, float] = {}
        mentioned: set[int] = set()
        for occurrence in self.occurrences:
            if occurrence.start - 1 in self.denial_ends:
                continue  # "bukan RS provinsi"
            if occurrence.start - 1 in self.landmark_ends:
                continue  # "di depan SMA Negeri 2": where it is, not what it is about
            if not self.addressed(occurrence.start, occurrence.end):
                mentioned.add(occurrence.phrase)
            if self.dominated(occurrence.start, occurrence.end):
                continue
            if occurrence.reading is Reading.STEM and self.stem_redundant(occurrence.start,
                                                                          occurrence.end):
                continue
            weight = kinds[occurrence.reading]
            if occurrence.end < title_length:
                weight *= title_weight
            if weight > present.get(occurrence.phrase, 0.0):
                present[occurrence.phrase] = weight
            if not self.negated(occurrence.start) and weight > affirmed.get(occurrence.phrase, 0.0):
                affirmed[occurrence.phrase] = weight
        return Weighed(present, affirmed, mentioned)

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
