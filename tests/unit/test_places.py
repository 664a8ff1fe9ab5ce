"""Places: coordinates and addresses to kelurahan and kecamatan, with the shipped Kota Bengkulu
boundaries, and the router using the place for its location conditions."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from shapely.geometry import Point

from services.router.flows import Router
from services.router.gazetteer import Gazetteer, places
from services.router.places import (
    EDGE_METRES,
    Boundaries,
    Kelurahan,
    haversine_metres,
    match_address,
    resolve,
)
from services.router.rulebook import Rulebook, RulebookError, load_rulebook
from shared.contracts import Complaint, EventType, Location, envelope
from shared.settings import Settings
from tests.unit.support import write_yaml

RULEBOOKS = Path(__file__).parents[2] / "services" / "router" / "rulebooks"
CITY = load_rulebook(RULEBOOKS / "kota-bengkulu.yaml")
TENANT = "kota-bengkulu"


def place_of(location: Location) -> tuple[str | None, str | None, str]:
    found = resolve(CITY.gazetteer, CITY.boundaries, location, tenant=TENANT).place
    assert found is not None
    return found.kecamatan, found.kelurahan, found.source


# --- the shipped data ------------------------------------------------------------------------

def test_the_city_ships_67_kelurahan_in_9_kecamatan_as_its_gazetteer_lists_them() -> None:
    assert CITY.boundaries is not None
    areas = CITY.boundaries.areas
    assert len(areas) == 67
    assert len({a.kecamatan for a in areas}) == 9
    assert all(a.code.startswith("17.71.") for a in areas)
    listed = {(p.kecamatan, p.kelurahan) for p in places(CITY.gazetteer).values() if p.kelurahan}
    assert {(a.kecamatan, a.name) for a in areas} == listed


def test_the_boundaries_are_part_of_the_rulebook_version(tmp_path: Path) -> None:
    copy = tmp_path / "rules"
    copy.mkdir()
    for file in RULEBOOKS.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    assert load_rulebook(copy / "kota-bengkulu.yaml").version == CITY.version
    tsv = copy / "kota-bengkulu-kelurahan.tsv"
    tsv.write_text(tsv.read_text().replace("102.32073\t", "102.32074\t", 1))
    assert load_rulebook(copy / "kota-bengkulu.yaml").version != CITY.version


AREAS = CITY.boundaries.areas if CITY.boundaries else []
# The source's centroid of a bent kelurahan can lie outside it: Kampung Bali wraps round Bajak.
BENT = [a for a in AREAS if not a.shape.contains(Point(a.centroid[1], a.centroid[0]))]


def test_only_kampung_balis_source_centre_lies_outside_it_in_bajak() -> None:
    assert [a.name for a in BENT] == ["Kampung Bali"]
    lat, lon = BENT[0].centroid
    assert place_of(Location(lat=lat, lon=lon)) == ("Teluk Segara", "Bajak", "coordinates")


@pytest.mark.parametrize("area", [a for a in AREAS if a not in BENT], ids=lambda a: a.name)
def test_each_kelurahan_centre_of_the_source_is_placed_in_it(area: Kelurahan) -> None:
    lat, lon = area.centroid
    assert place_of(Location(lat=lat, lon=lon)) == (area.kecamatan, area.name, "coordinates")


@pytest.mark.parametrize(("lat", "lon", "kecamatan", "kelurahan"), [
    (-3.7870, 102.2520, "Teluk Segara", "Kebun Keling"),         # Benteng Marlborough
    (-3.8376, 102.1795, "Ratu Agung", "Nusa Indah"),             # Pulau Tikus, off the coast
    (-3.9500, 102.2900, "Kampung Melayu", "Teluk Sepang"),       # the south, near the port
    (-3.7600, 102.2780, "Muara Bangka Hulu", "Kandang Limun"),
])
def test_known_points_fall_in_their_kelurahan(lat: float, lon: float, kecamatan: str,
                                              kelurahan: str) -> None:
    assert place_of(Location(lat=lat, lon=lon)) == (kecamatan, kelurahan, "coordinates")


@pytest.mark.parametrize(("lat", "lon"), [
    (-3.8000, 102.2000),   # the Indian Ocean west of the city
    (-6.2000, 106.8166),   # Jakarta
    (-3.7500, 102.3400),   # Bengkulu Tengah, north-east of the city
    (-3.9900, 102.3300),   # Seluma, south of Teluk Sepang
])
def test_coordinates_outside_the_city_place_nothing_and_say_so(lat: float, lon: float) -> None:
    found = resolve(CITY.gazetteer, CITY.boundaries, Location(lat=lat, lon=lon), tenant=TENANT)
    assert found.location == Location(lat=lat, lon=lon)  # no kelurahan added
    assert found.place is not None
    assert (found.place.source, found.place.kelurahan, found.place.kecamatan) == ("none", None, None)
    assert "outside kota-bengkulu" in found.place.note


def test_a_point_just_off_a_drawn_edge_belongs_to_it_farther_out_it_does_not() -> None:
    square = "1\tK\tTepi\t0.0\t0.0\t0 0;0.01 0;0.01 0.01;0 0.01\n"
    boundaries = Boundaries.parse(square)
    step = 0.00001  # about 1.1 m
    near = boundaries.locate(0.005, -50 * step)
    assert near is not None and near.kelurahan.name == "Tepi"
    assert 50 < near.outside_metres < 60
    assert boundaries.locate(0.005, -(EDGE_METRES + 20) / 1.1132 * step) is None


def test_where_thinned_edges_overlap_the_deeper_kelurahan_wins() -> None:
    two = ("1\tK\tBarat\t0\t0\t0 0;0.0102 0;0.0102 0.01;0 0.01\n"
           "2\tK\tTimur\t0\t0\t0.0098 0;0.02 0;0.02 0.01;0.0098 0.01\n")
    boundaries = Boundaries.parse(two)
    left, right = boundaries.locate(0.005, 0.0099), boundaries.locate(0.005, 0.0101)
    assert left is not None and right is not None
    assert (left.kelurahan.name, right.kelurahan.name) == ("Barat", "Timur")


def test_a_broken_boundaries_file_is_refused_naming_the_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"b\.tsv:2: not a longitude and latitude"):
        Boundaries.parse("# c\n1\tK\tX\t0\t0\t0 0;200 0;1 1\n", source="b.tsv")
    book = write_yaml(tmp_path, {"tenant": "t", "include": {"boundaries": "missing.tsv"},
                                 "agencies": [{"code": "TRIAGE", "name": "T",
                                               "authority": "internal"}]}, "r.yaml")
    with pytest.raises(RulebookError, match=r"missing\.tsv: cannot read"):
        load_rulebook(book)


def test_haversine_metres_of_a_known_distance() -> None:
    # one minute of latitude is a nautical mile, 1852 m
    assert haversine_metres(-3.8, 102.3, -3.8 + 1 / 60, 102.3) == pytest.approx(1852, rel=0.005)


# --- addresses -------------------------------------------------------------------------------

@pytest.mark.parametrize(("address", "expected"), [
    ("Jl. Danau RT 03, Kel. Pematang Gubernur", ("Muara Bangka Hulu", "Pematang Gubernur")),
    ("dekat SD 5 Sawah Lebar Baru", ("Ratu Agung", "Sawah Lebar Baru")),   # not Sawah Lebar
    ("Kecamatan Ratu Agung, belakang pasar", ("Ratu Agung", None)),
    ("sawah lebar, gang mawar", ("Ratu Agung", "Sawah Lebar")),
    ("Jl. Padang Harapan no 3", None),          # a street named after a kelurahan
    ("Jalan Sudirman depan toko", None),
    ("antara Kebun Geran dan Padang Jati", ("Ratu Samban", None)),  # two kelurahan: only the kecamatan
    ("Jl. Kebun Geran, Kel. Padang Jati", ("Ratu Samban", "Padang Jati")),
])
def test_addresses_name_their_place(address: str, expected: tuple[str, str | None] | None) -> None:
    found = match_address(CITY.gazetteer, address)
    assert (None if found is None else (found.kecamatan, found.kelurahan)) == expected


def test_an_address_places_the_complaint_when_no_coordinates_do() -> None:
    assert place_of(Location(address="Gg. Melati, Kel. Kebun Keling")) == (
        "Teluk Segara", "Kebun Keling", "address")
    # coordinates outside the city: the address still places it, and the note says both
    found = resolve(CITY.gazetteer, CITY.boundaries,
                    Location(lat=-6.2, lon=106.8, address="Kel. Kebun Keling"), tenant=TENANT)
    assert found.place is not None and found.place.source == "address"
    assert "outside kota-bengkulu" in found.place.note and "from the address" in found.place.note


def test_the_reporters_own_place_is_kept() -> None:
    given = Location(kelurahan="Jitra", lat=-3.84067, lon=102.32073)  # the point: Pagar Dewa
    found = resolve(CITY.gazetteer, CITY.boundaries, given, tenant=TENANT)
    assert found.location == given
    assert found.place is not None
    assert (found.place.source, found.place.kecamatan, found.place.kelurahan) == (
        "reporter", "Teluk Segara", "Jitra")


def test_a_kelurahan_outside_the_reporters_kecamatan_is_not_assumed() -> None:
    found = resolve(CITY.gazetteer, CITY.boundaries,
                    Location(kecamatan="Ratu Agung", lat=-3.84067, lon=102.32073), tenant=TENANT)
    assert found.location is not None and found.location.kelurahan is None
    assert found.place is not None and "lies in Selebar" in found.place.note
    inside = resolve(CITY.gazetteer, CITY.boundaries,
                     Location(kecamatan="Selebar", lat=-3.84067, lon=102.32073), tenant=TENANT)
    assert inside.location is not None and inside.location.kelurahan == "Pagar Dewa"


# --- the router --------------------------------------------------------------------------------

def test_the_router_places_coordinates_before_its_location_conditions(tmp_path: Path) -> None:
    (tmp_path / "k.tsv").write_text("1\tPesisir\tTepi Laut\t0.005\t0.005\t0 0;0.01 0;0.01 0.01;0 0.01\n")
    book = write_yaml(tmp_path, {
        "tenant": "tepi", "include": {"boundaries": "k.tsv"},
        "gazetteer": {"kecamatan": {"Pesisir": ["Tepi Laut"]}},
        "agencies": [
            {"code": "TRIAGE", "name": "Desk", "authority": "internal"},
            {"code": "PANTAI", "name": "Pantai", "authority": "kota", "rules": [
                {"id": "abrasi-tepi", "any": ["abrasi"], "when": {"kelurahan": ["Tepi Laut"]}}]},
        ]}, "r.yaml")
    router = Router(Settings(tenant="tepi"), load_rulebook(book))

    def routed(location: Location) -> dict[str, object]:
        complaint = Complaint(ticket_id="T-1", channel="web", text="abrasi makin parah di pantai",
                              location=location, submitted_at=datetime(2026, 1, 5, tzinfo=UTC))
        out = router.decide(envelope(complaint, type=EventType.COMPLAINT_RECEIVED, tenant="tepi",
                                     ticket_id="T-1", event_id="e-1"))
        data: dict[str, object] = out[0].event.data.model_dump(mode="json")
        return data

    inside = routed(Location(lat=0.005, lon=0.005))
    assert inside["agency"] == "PANTAI"
    assert inside["location"] == {"kelurahan": "Tepi Laut", "kecamatan": "Pesisir",
                                  "address": None, "lat": 0.005, "lon": 0.005}
    routing = inside["routing"]
    assert isinstance(routing, dict)
    assert routing["place"]["source"] == "coordinates"
    assert "kelurahan Tepi Laut (Pesisir) from coordinates" in routing["reason"]
    outside = routed(Location(lat=1.0, lon=1.0))
    assert outside["agency"] == "TRIAGE"  # the rule needs the kelurahan: none is guessed
    assert isinstance(outside["routing"], dict)
    assert "outside tepi" in outside["routing"]["reason"]


def test_duplicate_windows_are_rulebook_data_per_category(tmp_path: Path) -> None:
    assert CITY.duplicates["Jalan rusak"].metres == 50
    assert "Pelayanan puskesmas" not in CITY.duplicates
    book = write_yaml(tmp_path, {"tenant": "t", "duplicates": {"Tiada": {"metres": 10, "hours": 1}},
                                 "agencies": [{"code": "TRIAGE", "name": "T",
                                               "authority": "internal"}]}, "r.yaml")
    with pytest.raises(RulebookError, match="no rule has the category 'Tiada'"):
        load_rulebook(book)
    with pytest.raises(ValueError, match="metres"):
        Rulebook.model_validate({"tenant": "t", "duplicates": {"x": {"metres": 0, "hours": 1}},
                                 "agencies": [{"code": "TRIAGE", "name": "T",
                                               "authority": "internal"}]})


def test_gazetteer_places_are_the_address_vocabulary() -> None:
    small = Gazetteer.model_validate({"kecamatan": {"A": ["Satu Dua", "Satu"]}})
    found = match_address(small, "rt 1 satu dua")
    assert found is not None and found.kelurahan == "Satu Dua"
