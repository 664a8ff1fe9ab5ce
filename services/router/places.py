"""Places: which kelurahan and kecamatan a complaint is in, when the reporter did not say.

From coordinates, through the tenant's shipped kelurahan boundaries (a TSV next to the rulebook,
its source and licence in a SOURCE.md beside it): the kelurahan the point lies in. Coordinates
outside every kelurahan (beyond a small tolerance for the thinned boundaries and the coast)
place nothing: outside the tenant is never a wrong kelurahan. From an address, through the
gazetteer: a kelurahan or kecamatan named in it. Pure functions (the file is read once, when
the rulebook loads); the router's flows use ``resolve``.
"""

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from services.router.gazetteer import Gazetteer, Place, places
from services.router.text import normalise
from shared.contracts import Location, PlaceFound

# The shipped boundaries are thinned (SOURCE.md): neighbours' edges no longer coincide and
# the coast is drawn coarsely. A point this close to a kelurahan still belongs to it; farther
# out it is outside the tenant.
EDGE_METRES = 150.0
_METRES_PER_DEGREE = 111_320.0
# Words before a name that say it is the kelurahan or kecamatan ("Kel. Sawah Lebar"), or a road
# ("Jl. Padang Harapan" is a street named after a kelurahan, not necessarily in it).
_AREA_CUES = frozenset({"kel", "kelurahan", "desa", "kec", "kecamatan"})
_ROAD_CUES = frozenset({"jl", "jln", "jalan", "gg", "gang", "lorong"})


@dataclass(frozen=True)
class Kelurahan:
    code: str
    kecamatan: str
    name: str
    centroid: tuple[float, float]  # lat, lon
    shape: BaseGeometry


@dataclass(frozen=True)
class Located:
    kelurahan: Kelurahan
    outside_metres: float  # 0 inside; else how far outside its (thinned) boundary


class Boundaries:
    """A tenant's kelurahan polygons, searched through an STR tree."""

    def __init__(self, areas: Sequence[Kelurahan], *, source: str = "") -> None:
        self.areas = list(areas)
        self.source = source
        self._tree = shapely.STRtree([a.shape for a in self.areas])

    @classmethod
    def read(cls, path: Path) -> "Boundaries":
        return cls.parse(path.read_text(encoding="utf-8"), source=path.name)

    @classmethod
    def parse(cls, text: str, *, source: str = "boundaries") -> "Boundaries":
        """Rows of ``code, kecamatan, kelurahan, lat, lon, boundary`` (tab-separated; ``#``
        starts a comment line). ValueError names the line and the problem."""
        areas = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            try:
                areas.append(_row(line))
            except (ValueError, IndexError) as error:
                raise ValueError(f"{source}:{number}: {error}") from error
        if not areas:
            raise ValueError(f"{source}: no kelurahan")
        return cls(areas, source=source)

    def locate(self, lat: float, lon: float) -> Located | None:
        """The kelurahan the point lies in (the one it lies deepest in, where thinned edges
        overlap), else the nearest within EDGE_METRES; None beyond: outside the tenant."""
        point = Point(lon, lat)
        inside = [self.areas[i] for i in self._tree.query(point, predicate="within")]
        if inside:
            deepest = max(inside, key=lambda a: a.shape.boundary.distance(point))
            return Located(deepest, 0.0)
        reach = EDGE_METRES / (_METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 0.1))
        near = [self.areas[i] for i in self._tree.query(point.buffer(reach))]
        if not near:
            return None
        nearest = min(near, key=lambda a: a.shape.distance(point))
        metres = _metres(nearest.shape, point)
        return Located(nearest, metres) if metres <= EDGE_METRES else None


def _row(line: str) -> Kelurahan:
    code, kecamatan, name, lat, lon, boundary = line.rstrip("\n").split("\t")
    parts = [Polygon([_lon_lat(pair) for pair in part.split(";")]) for part in boundary.split("|")]
    shape: BaseGeometry = parts[0] if len(parts) == 1 else MultiPolygon(parts)
    if not shape.is_valid:  # a thinned ring may cross itself once: mend, keep the area
        shape = shapely.make_valid(shape)
    if shape.is_empty or shape.area <= 0:
        raise ValueError(f"kelurahan {name!r}: empty boundary")
    return Kelurahan(code=code, kecamatan=kecamatan.strip(), name=name.strip(),
                     centroid=(float(lat), float(lon)), shape=shape)


def _lon_lat(pair: str) -> tuple[float, float]:
    lon, lat = (float(v) for v in pair.split())
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"not a longitude and latitude: {pair!r}")
    return lon, lat


def _metres(shape: BaseGeometry, point: Point) -> float:
    """Distance in metres from the point to the shape (local flat-earth scale: fine within a
    city)."""
    if shape.contains(point):
        return 0.0
    nearest = shapely.shortest_line(shape, point).coords[0]
    return haversine_metres(point.y, point.x, nearest[1], nearest[0])


def haversine_metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two WGS84 points, in metres."""
    earth = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * earth * math.asin(min(1.0, math.sqrt(a)))


# --- addresses -------------------------------------------------------------------------------


def match_address(gazetteer: Gazetteer, address: str) -> Place | None:
    """The kelurahan (else kecamatan) an address names. Longer names first ("Sawah Lebar Baru"
    before "Sawah Lebar"); a name right after "jalan"/"jl"/"gang" is a street, not evidence; a
    name after "kel."/"kelurahan" wins over others; two different kelurahan otherwise are
    ambiguous (None for the kelurahan, the kecamatan when both agree)."""
    text = normalise(address)
    taken: list[tuple[int, int]] = []
    found: list[tuple[Place, bool]] = []  # (place, cued by kel./kec.)
    for name, place in _names(gazetteer):
        if name not in text:
            continue
        for start, end in _occurrences(text, name):
            if any(start < e and s < end for s, e in taken):
                continue  # inside a longer name already found
            taken.append((start, end))
            before = text[:start].split()[-1:] or [""]
            if before[0] in _ROAD_CUES:
                continue
            found.append((place, before[0] in _AREA_CUES))
    return _settle(found)


# Per gazetteer (kept alive here, so its id is not reused): its names folded, longest first.
_NAMES: dict[int, tuple[Gazetteer, list[tuple[str, Place]]]] = {}


def _names(gazetteer: Gazetteer) -> list[tuple[str, Place]]:
    cached = _NAMES.get(id(gazetteer))
    if cached is None or cached[0] is not gazetteer:
        if len(_NAMES) > 16:  # rulebooks reloaded many times: start again
            _NAMES.clear()
        named = [(normalise(name).strip(), place) for name, place in places(gazetteer).items()]
        cached = _NAMES[id(gazetteer)] = (gazetteer, sorted(named, key=lambda item: -len(item[0])))
    return cached[1]


def _occurrences(text: str, name: str) -> Iterable[tuple[int, int]]:
    needle = name.strip()
    if not needle:
        return
    for match in re.finditer(rf"(?<= ){re.escape(needle)}(?= )", text):
        yield match.start(), match.end()


def _settle(found: list[tuple[Place, bool]]) -> Place | None:
    kelurahan = [(p, cued) for p, cued in found if p.kelurahan]
    cued = {p for p, c in kelurahan if c}
    distinct = cued or {p for p, _ in kelurahan}
    if len(distinct) == 1:
        return next(iter(distinct))
    kecamatan = {p.kecamatan for p, _ in found}
    return Place(kecamatan.pop()) if len(kecamatan) == 1 else None


# --- one complaint ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    location: Location | None
    place: PlaceFound | None


def resolve(gazetteer: Gazetteer, boundaries: Boundaries | None, location: Location | None,
            *, tenant: str) -> Resolution:
    """The complaint's location with kelurahan and kecamatan filled in where the reporter gave
    none, and where they came from. The reporter's own kelurahan is kept as given; a kecamatan
    they gave is kept, and a kelurahan from coordinates or address is added only when it lies
    in that kecamatan."""
    if location is None:
        return Resolution(None, None)
    if location.kelurahan:
        return Resolution(location, PlaceFound(
            kelurahan=location.kelurahan, kecamatan=location.kecamatan or _kecamatan_of(
                gazetteer, location.kelurahan), source="reporter",
            note=f"kelurahan {location.kelurahan} as the reporter gave it"))
    found, note = _from_coordinates(boundaries, location, tenant)
    if found is None and location.address:
        found, note = _from_address(gazetteer, location.address, note)
    if found is None:
        return Resolution(location, _given_kecamatan(location, note))
    if location.kecamatan and _fold(location.kecamatan) != _fold(found.kecamatan):
        return Resolution(location, PlaceFound(
            kecamatan=location.kecamatan, source="reporter",
            note=f"kecamatan {location.kecamatan} as the reporter gave it; the {note} lies in "
                 f"{found.kecamatan}, so no kelurahan is assumed"))
    placed = location.model_copy(update={"kelurahan": found.kelurahan,
                                         "kecamatan": location.kecamatan or found.kecamatan})
    return Resolution(placed, PlaceFound(kelurahan=found.kelurahan, kecamatan=found.kecamatan,
                                         source=found.source, note=note))


@dataclass(frozen=True)
class _Found:
    kecamatan: str
    kelurahan: str | None
    source: str


def _from_coordinates(boundaries: Boundaries | None, location: Location,
                      tenant: str) -> tuple[_Found | None, str]:
    if location.lat is None or location.lon is None:
        return None, ""
    if boundaries is None:
        return None, f"no boundaries are shipped for {tenant}: coordinates not placed"
    located = boundaries.locate(location.lat, location.lon)
    if located is None:
        return None, (f"coordinates {location.lat:.5f}, {location.lon:.5f} lie outside {tenant} "
                      f"(no kelurahan within {EDGE_METRES:.0f} m): no kelurahan assumed")
    area = located.kelurahan
    edge = "" if not located.outside_metres else \
        f", {located.outside_metres:.0f} m outside its drawn boundary"
    return (_Found(area.kecamatan, area.name, "coordinates"),
            f"kelurahan {area.name} ({area.kecamatan}) from coordinates{edge}")


def _from_address(gazetteer: Gazetteer, address: str,
                  earlier: str) -> tuple[_Found | None, str]:
    place = match_address(gazetteer, address)
    prefix = f"{earlier}; " if earlier else ""
    if place is None:
        return None, prefix + "no kelurahan or kecamatan named in the address"
    if place.kelurahan:
        return (_Found(place.kecamatan, place.kelurahan, "address"),
                prefix + f"kelurahan {place.kelurahan} ({place.kecamatan}) from the address")
    return (_Found(place.kecamatan, None, "address"),
            prefix + f"kecamatan {place.kecamatan} from the address")


def _given_kecamatan(location: Location, note: str) -> PlaceFound:
    if location.kecamatan:
        return PlaceFound(kecamatan=location.kecamatan, source="reporter",
                          note=f"kecamatan {location.kecamatan} as the reporter gave it"
                               + (f"; {note}" if note else ""))
    return PlaceFound(source="none", note=note or "no place given")


def _kecamatan_of(gazetteer: Gazetteer, kelurahan: str) -> str | None:
    place = {_fold(k): p for k, p in places(gazetteer).items()}.get(_fold(kelurahan))
    return place.kecamatan if place else None


def _fold(name: str | None) -> str:
    return normalise(name or "").strip()
