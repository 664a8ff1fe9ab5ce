"""The rulebook: a tenant's agencies, their Tupoksi and the phrases that route to them (YAML).

A rulebook file may include a language lexicon (slang, negation cues) and a tenant gazetteer
(place names, road status) from files next to it; the version hashes all of them, so an
explanation always names the exact data that produced it.
"""

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from services.router.gazetteer import ROAD_TAGS, Gazetteer
from services.router.text import Lexicon
from services.router.yamlsource import YamlSource, locate
from shared.contracts import Channel, DuplicateWindow, Priority

if TYPE_CHECKING:
    from services.router.places import Boundaries

Model = TypeVar("Model", bound=BaseModel)


class RulebookError(ValueError):
    """A rulebook that cannot be used; the message names the file, the line, the path and the
    problem, e.g. ``kota-bengkulu.yaml:123: agencies[4].rules[2].weight: Input should be
    greater than 0``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Conditions(_Strict):
    """Where and how a complaint must arrive for a rule to apply (empty = anywhere)."""

    kecamatan: list[str] = Field(default_factory=list)
    kelurahan: list[str] = Field(default_factory=list)
    channel: list[Channel] = Field(default_factory=list)


class PhraseRule(_Strict):
    """Phrases that must, may or must not appear: shared by routing rules and signals."""

    id: str = Field(min_length=1)
    any: list[str] = Field(default_factory=list, description="At least one must appear.")
    all: list[str] = Field(default_factory=list, description="Every one must appear.")
    require: list[list[str]] = Field(
        default_factory=list,
        description="Groups of alternatives: one phrase of every group must appear.")
    none: list[str] = Field(default_factory=list, description="Any of these vetoes the rule.")

    @model_validator(mode="after")
    def _has_phrases(self) -> "PhraseRule":
        if not self.any and not self.all and not self.require:
            raise ValueError(f"rule {self.id!r} needs 'any', 'all' or 'require' phrases")
        if any(not group for group in self.require):
            raise ValueError(f"rule {self.id!r} has an empty 'require' group")
        for phrase in self.phrases():
            if phrase.startswith("@") and phrase not in ROAD_TAGS:
                raise ValueError(f"unknown tag {phrase!r} (known: {', '.join(sorted(ROAD_TAGS))})")
            if not phrase.strip():
                raise ValueError("a phrase is empty")
        return self

    def groups(self) -> list[list[str]]:
        """Conditions as groups of alternatives: each phrase of 'all' is a group of one."""
        return [*([phrase] for phrase in self.all), *self.require]

    def phrases(self) -> list[str]:
        return [*self.any, *(p for g in self.groups() for p in g), *self.none]


class Rule(PhraseRule):
    weight: float = Field(1.0, gt=0)
    category: str | None = None
    priority: Priority | None = Field(None, description="Raise the ticket to this priority.")
    when: Conditions = Field(default_factory=Conditions)
    ask: bool = Field(
        True, description="False: its phrases name who is concerned (pasien, penyandang "
                          "disabilitas), never who failed: they are not a main ask.")


class Signal(PhraseRule):
    """A priority signal: emergencies make a ticket urgent; vulnerable people raise it a level;
    some harms make it at least high."""

    effect: Literal["urgent", "raise", "high"]
    label: str = Field("", max_length=60,
                       description="What it means, for the explanation ('medical emergency').")
    near: int | None = Field(
        None, ge=1, le=12,
        description="A situation told in one breath: one phrase of every 'require' group within "
                    "this many tokens of each other ('sesak' ... 'dari subuh'), not anywhere "
                    "in the text. None: anywhere.")
    responder: str | None = Field(
        None, description="The agency that answers this kind of emergency (a fire: DAMKAR, "
                          "violence going on: EXT_POLRI): an urgent signal is evidence for "
                          "it, weighing thresholds.responder_weight, when the text names no "
                          "one else strongly.")


class MainAskCues(_Strict):
    """How a complaint says which institution it is about: the agent of a complaint verb
    ("ditolak ... di RSUD", "ambulans puskesmas tidak datang") is the main ask and its agency's
    score is boosted; a phrase right after a holding cue ("pemegang SKTM", "pakai KIS") is a
    document the reporter holds, merely mentioned, and weighs less. Empty lists: off."""

    verbs: dict[str, list[str]] = Field(
        default_factory=dict,
        description="What went wrong (a gloss for the explanation) -> complaint verbs saying it.")
    agent_cues: list[str] = Field(
        default_factory=list, description="Words before the agent of a failure: di, oleh, pihak.")
    emphasis_cues: list[str] = Field(
        default_factory=list, description="Words before what the reporter asks about: tolong, "
                                          "mohon, yang paling.")
    held_cues: list[str] = Field(
        default_factory=list, description="Words before a document held: pemegang, pakai, punya.")
    aside_cues: list[str] = Field(
        default_factory=list,
        description="Words before an institution named only as where the reporter goes next or "
                    "works (mau daftar ke, kerja di): held, and it vetoes no rule ('mau daftar "
                    "ke SMK' does not make an SMP's withheld diploma the province's).")
    window: int = Field(6, ge=1, le=12, description="Most tokens between a verb and its agent.")
    emphasis_window: int = Field(2, ge=0, le=12,
                                 description="Most tokens between an emphasis cue and the ask.")
    boost: float = Field(0.5, ge=0, description="The main ask's score is multiplied by 1 + this.")
    held_weight: float = Field(0.5, gt=0, le=1, description="A held document's phrase weighs this.")


class Agency(_Strict):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    name: str
    authority: Literal["kota", "provinsi", "pusat", "bumn", "internal"]
    tupoksi: str = ""
    supervisors: dict[str, str] = Field(
        default_factory=dict, description="Escalation role -> who holds it, e.g. agency_head.")
    rules: list[Rule] = Field(default_factory=list)


class Thresholds(_Strict):
    min_score: float = Field(1.0, ge=0, description="Below this the complaint goes to triage.")
    min_margin: float = Field(
        0.0, ge=0, le=1, description="(best - runner-up) / best below this: too close, triage.")
    min_confidence: float = Field(0.0, ge=0, le=1, description="Below this: triage.")
    strong_score: float = Field(
        2.0, gt=0, description="A score at which confidence in the winner's evidence is 63%.")
    title_weight: float = Field(1.5, ge=1, description="A title is the citizen's own summary.")
    stem_weight: float = Field(
        0.7, gt=0, le=1, description="A phrase found only through stems (the stemmer over-stems).")
    typo_weight: float = Field(0.8, gt=0, le=1, description="A phrase found only via a typo fix.")
    responder_weight: float = Field(
        0.0, ge=0, description="Score an urgent signal adds to its responder agency (once per "
                               "agency); 0: signals never route.")
    category_hint_weight: float = Field(
        1.0, ge=0, description="Score added to each agency whose rules name the category the "
                               "citizen picked on the channel (Open311 service, LAPOR! "
                               "category): as much as one matched phrase; 0 ignores hints.")


class Includes(_Strict):
    lexicon: str | None = Field(None, description="Lexicon file, relative to the rulebook.")
    gazetteer: str | None = Field(None, description="Gazetteer file, relative to the rulebook.")
    boundaries: str | None = Field(
        None, description="Kelurahan boundaries (TSV, see services/router/places.py), relative "
                          "to the rulebook: coordinates are placed in a kelurahan through them.")


class Rulebook(_Strict):
    tenant: str
    fallback: str = "TRIAGE"
    thresholds: Thresholds = Field(default_factory=Thresholds)
    min_score: float | None = Field(None, ge=0, description="Shorthand for thresholds.min_score.")
    urgent_phrases: list[str] = Field(
        default_factory=list, description="Shorthand for one urgent signal.")
    signals: list[Signal] = Field(default_factory=list)
    main_ask: MainAskCues = Field(default_factory=MainAskCues)
    include: Includes = Field(default_factory=Includes)
    lexicon: Lexicon | None = Field(None, description="None: the built-in Indonesian lexicon.")
    gazetteer: Gazetteer = Field(default_factory=Gazetteer)
    agencies: list[Agency]
    duplicates: dict[str, DuplicateWindow] = Field(
        default_factory=dict,
        description="Category -> how near (metres) and how soon (hours) after an open ticket "
                    "of the same agency and category a complaint is linked to it, not opened.")
    version: str = Field("", description="Content hash, set when loaded.")
    _compiled: object = PrivateAttr(default=None)  # the routing engine's compiled form
    _boundaries: "Boundaries | None" = PrivateAttr(default=None)
    _sources: tuple[Path, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _codes_are_consistent(self) -> "Rulebook":
        codes = [a.code for a in self.agencies]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"agency codes defined twice: {', '.join(duplicates)}")
        if self.fallback not in codes:
            raise ValueError(f"fallback agency {self.fallback!r} is not defined")
        rule_ids = [r.id for a in self.agencies for r in a.rules] + [s.id for s in self.signals]
        twice = sorted({r for r in rule_ids if rule_ids.count(r) > 1})
        if twice:
            raise ValueError(f"rule ids used twice: {', '.join(twice)}")
        responders = sorted({s.responder for s in self.signals if s.responder} - set(codes))
        if responders:
            raise ValueError(f"signal responders are not agencies: {', '.join(responders)}")
        categories = {r.category for a in self.agencies for r in a.rules if r.category}
        unknown = sorted(set(self.duplicates) - categories)
        if unknown:
            raise ValueError(f"duplicates: no rule has the category {', '.join(map(repr, unknown))}")
        return self

    def agency(self, code: str) -> Agency:
        return next(a for a in self.agencies if a.code == code)

    @property
    def codes(self) -> list[str]:
        return [a.code for a in self.agencies]

    @property
    def sources(self) -> tuple[Path, ...]:
        """The files this rulebook was read from (itself and its includes): watch them all."""
        return self._sources

    @property
    def boundaries(self) -> "Boundaries | None":
        """The kelurahan boundaries the rulebook includes (None: coordinates stay unplaced)."""
        return self._boundaries

    @property
    def limits(self) -> Thresholds:
        """The thresholds in force, with the top-level min_score shorthand applied."""
        if self.min_score is None:
            return self.thresholds
        return self.thresholds.model_copy(update={"min_score": self.min_score})

    @property
    def priority_signals(self) -> list[Signal]:
        if not self.urgent_phrases:
            return self.signals
        shorthand = Signal(id="urgent_phrases", any=self.urgent_phrases, effect="urgent")
        return [shorthand, *self.signals]


def load_rulebook(path: Path) -> Rulebook:
    """Read and validate a rulebook and its includes; raise RulebookError naming file, line,
    path and problem."""
    source = _read(path)
    content = source.content
    includes = content.get("include") or {}
    if not isinstance(includes, dict):
        raise RulebookError(f"{path}:{locate(source.node, ('include',))}: include: expected a mapping")
    digest = hashlib.sha256(source.raw)
    sources = [path]
    for key, model in (("lexicon", Lexicon), ("gazetteer", Gazetteer)):
        name = includes.get(key)
        if isinstance(name, str) and key not in content:
            included = _read(path.parent / name)
            digest.update(included.raw)
            sources.append(included.path)
            content[key] = _validate(model, included).model_dump()
    boundaries = _boundaries(path, includes.get("boundaries"), digest, sources)
    content["version"] = digest.hexdigest()[:16]
    rulebook = _validate(Rulebook, source)
    rulebook._sources = tuple(sources)
    rulebook._boundaries = boundaries
    # Compile now, where the loader runs (a reload does so off the event loop), not on the
    # first complaint routed with it.
    from services.router.engine import compiled  # the engine imports this module
    compiled(rulebook)
    return rulebook


def _boundaries(path: Path, name: object, digest: "hashlib._Hash",
                sources: list[Path]) -> "Boundaries | None":
    """The included boundaries file, read and hashed into the version like the other includes."""
    if not isinstance(name, str):
        return None
    from services.router.places import Boundaries  # shapely: only where boundaries are used
    file = path.parent / name
    try:
        raw = file.read_bytes()
        boundaries = Boundaries.parse(raw.decode("utf-8"), source=str(file))
    except OSError as error:
        raise RulebookError(f"{file}: cannot read: {error.strerror}") from error
    except (UnicodeDecodeError, ValueError) as error:
        raise RulebookError(f"include.boundaries: {error}") from error
    digest.update(raw)
    sources.append(file)
    return boundaries


def _read(path: Path) -> YamlSource:
    try:
        return YamlSource.read(path)
    except OSError as error:
        raise RulebookError(f"{path}: cannot read: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise RulebookError(f"{path}: not valid YAML: {error}") from error
    except TypeError as error:
        raise RulebookError(f"{path}: {error}") from error


def _validate(model: type[Model], source: YamlSource) -> Model:
    try:
        return model.model_validate(source.content)
    except ValidationError as error:
        raise RulebookError(source.describe(error)) from error
