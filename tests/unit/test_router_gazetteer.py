"""The gazetteer: places by kecamatan, roads by status; and YAML locations in error messages."""

import pytest
from pydantic import ValidationError

from services.router.gazetteer import Gazetteer, Place, places, road_tag
from services.router.rulebook import load_rulebook
from services.router.yamlsource import dotted
from tests.unit.test_router_domain import DEFAULT_RULEBOOK


def test_places_name_kecamatan_and_their_kelurahan() -> None:
    gazetteer = Gazetteer(kecamatan={"Selebar": ["Pagar Dewa", "Betungan"]})
    assert places(gazetteer) == {
        "Selebar": Place("Selebar"),
        "Pagar Dewa": Place("Selebar", "Pagar Dewa"),
        "Betungan": Place("Selebar", "Betungan"),
    }


def test_a_kelurahan_belongs_to_one_kecamatan() -> None:
    with pytest.raises(ValidationError, match="kelurahan listed twice: kandang"):
        Gazetteer(kecamatan={"A": ["Kandang"], "B": ["kandang"]})


def test_a_road_has_one_status() -> None:
    with pytest.raises(ValidationError, match="road with two statuses: danau"):
        Gazetteer(roads={"provinsi": ["Danau"], "kota": ["danau"]})


def test_road_tags() -> None:
    assert road_tag("nasional") == "@jalan_nasional"


def test_the_default_gazetteer_covers_the_nine_kecamatan() -> None:
    gazetteer = load_rulebook(DEFAULT_RULEBOOK).gazetteer
    assert len(gazetteer.kecamatan) == 9
    assert places(gazetteer)["Sawah Lebar"] == Place("Ratu Agung", "Sawah Lebar")
    assert "Adam Malik" in gazetteer.roads["provinsi"]


@pytest.mark.parametrize(("loc", "text"), [
    (("agencies", 4, "rules", 2, "weight"), "agencies[4].rules[2].weight"),
    (("agencies", 1, "rules", 0, "require", 0, "list[str]"), "agencies[1].rules[0].require[0]"),
    (("roads", "desa", "[key]"), "roads.desa"),
    ((), ""),
])
def test_error_locations_read_like_paths(loc: tuple[object, ...], text: str) -> None:
    assert dotted(loc) == text
