"""A tenant's places: kecamatan and their kelurahan, and road names by status.

Place names found in a complaint say where it is (for rules with location conditions) and hide
their own words from the rules ("Sawah Lebar" is an address, not a rice field). A named road
adds a status tag (@jalan_nasional, @jalan_provinsi, @jalan_kota) that rules can require or
veto: a pothole on a provincial road is the province's to fix.
"""

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RoadStatus = Literal["nasional", "provinsi", "kota"]
ROAD_TAGS = frozenset({"@jalan_nasional", "@jalan_provinsi", "@jalan_kota"})
ROAD_WORDS = ("jalan",)  # "jl", "jln" become "jalan" through the lexicon


def road_tag(status: RoadStatus) -> str:
    return f"@jalan_{status}"


class Gazetteer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kecamatan: dict[str, list[str]] = Field(
        default_factory=dict, description="Kecamatan name -> its kelurahan.")
    roads: dict[RoadStatus, list[str]] = Field(
        default_factory=dict, description="Road status -> road names without 'jalan'.")

    @model_validator(mode="after")
    def _names_are_unique(self) -> "Gazetteer":
        kelurahan = [k.lower() for names in self.kecamatan.values() for k in names]
        twice = sorted({k for k in kelurahan if kelurahan.count(k) > 1})
        if twice:
            raise ValueError(f"kelurahan listed twice: {', '.join(twice)}")
        roads = [r.lower() for names in self.roads.values() for r in names]
        twice = sorted({r for r in roads if roads.count(r) > 1})
        if twice:
            raise ValueError(f"road with two statuses: {', '.join(twice)}")
        return self


@dataclass(frozen=True)
class Place:
    """A place name: a kecamatan (kelurahan None) or a kelurahan within its kecamatan."""

    kecamatan: str
    kelurahan: str | None = None


def places(gazetteer: Gazetteer) -> dict[str, Place]:
    """Every place name (as written in the gazetteer) -> the place."""
    found: dict[str, Place] = {}
    for kecamatan, kelurahan in gazetteer.kecamatan.items():
        found[kecamatan] = Place(kecamatan)
        for name in kelurahan:
            found.setdefault(name, Place(kecamatan, name))
    return found
