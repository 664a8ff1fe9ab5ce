"""The rulebook: a tenant's agencies, their Tupoksi and the phrases that route to them (YAML)."""

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.contracts import Priority, describe_errors


class RulebookError(ValueError):
    """A rulebook that cannot be used; the message names the file, the path and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    id: str = Field(min_length=1)
    any: list[str] = Field(default_factory=list, description="At least one must appear.")
    all: list[str] = Field(default_factory=list, description="Every one must appear.")
    none: list[str] = Field(default_factory=list, description="Any of these vetoes the rule.")
    weight: float = Field(1.0, gt=0)
    category: str | None = None
    priority: Priority | None = Field(None, description="Raise the ticket to this priority.")

    @model_validator(mode="after")
    def _has_phrases(self) -> "Rule":
        if not self.any and not self.all:
            raise ValueError(f"rule {self.id!r} needs 'any' or 'all' phrases")
        return self


class Agency(_Strict):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    name: str
    authority: Literal["kota", "provinsi", "pusat", "bumn", "internal"]
    tupoksi: str = ""
    supervisors: dict[str, str] = Field(
        default_factory=dict, description="Escalation role -> who holds it, e.g. agency_head.")
    rules: list[Rule] = Field(default_factory=list)


class Rulebook(_Strict):
    tenant: str
    fallback: str = "TRIAGE"
    min_score: float = Field(1.0, ge=0, description="Below this the complaint goes to triage.")
    urgent_phrases: list[str] = Field(default_factory=list)
    agencies: list[Agency]
    version: str = Field("", description="Content hash, set when loaded.")

    @model_validator(mode="after")
    def _codes_are_consistent(self) -> "Rulebook":
        codes = [a.code for a in self.agencies]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"agency codes defined twice: {', '.join(duplicates)}")
        if self.fallback not in codes:
            raise ValueError(f"fallback agency {self.fallback!r} is not defined")
        rule_ids = [r.id for a in self.agencies for r in a.rules]
        twice = sorted({r for r in rule_ids if rule_ids.count(r) > 1})
        if twice:
            raise ValueError(f"rule ids used twice: {', '.join(twice)}")
        return self

    def agency(self, code: str) -> Agency:
        return next(a for a in self.agencies if a.code == code)

    @property
    def codes(self) -> list[str]:
        return [a.code for a in self.agencies]


def load_rulebook(path: Path) -> Rulebook:
    """Read and validate a rulebook file; raise RulebookError naming file, path and problem."""
    try:
        raw = path.read_bytes()
        content = yaml.safe_load(raw)
    except OSError as error:
        raise RulebookError(f"{path}: cannot read: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise RulebookError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(content, dict):
        raise RulebookError(f"{path}: expected a mapping at the top level")
    content["version"] = hashlib.sha256(raw).hexdigest()[:16]
    try:
        return Rulebook.model_validate(content)
    except ValidationError as error:
        raise RulebookError(f"{path}: {describe_errors(error.errors())}") from error
