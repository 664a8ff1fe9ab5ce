"""Reply templates per agency: ready texts an officer picks on the ticket page's reply forms
and edits before sending. One YAML file per tenant (``<tenant>.yaml``) in the directory of
``DISPOSISI_CONSOLE_REPLY_TEMPLATES_DIR``; the example is ``reply_templates/kota-bengkulu.yaml``
beside this file. Each file is checked when the console starts: a field that does not fit, or
an agency code its tenant's rulebook does not have, stops the start with the file and field
named."""

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.contracts import NOTE_MAX

EVERY_AGENCY = "*"
# The forms that carry a text: a reply, a question for the citizen, the outcome, a note.
TemplateAction = Literal["responded", "needs_info", "resolved", "note"]


class ReplyTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=80, description="What the officer picks.")
    text: str = Field(min_length=1, max_length=NOTE_MAX, description="The text put in the form.")
    actions: tuple[TemplateAction, ...] = Field(
        ("responded", "resolved"), min_length=1, description="The forms that offer it.")


class TemplateFile(BaseModel):
    """``agencies``: agency code (or ``*`` for every agency of the tenant) → its templates."""

    model_config = ConfigDict(extra="forbid")

    agencies: dict[str, list[ReplyTemplate]]


class ReplyTemplatesError(ValueError):
    """A templates file that cannot serve: the file, the field and the problem."""


class ReplyTemplates:
    def __init__(self, by_tenant: dict[str, TemplateFile]) -> None:
        self.by_tenant = by_tenant

    def for_form(self, tenant: str, agency: str, action: str) -> list[ReplyTemplate]:
        """The agency's own templates for this form, then those of every agency."""
        found = self.by_tenant.get(tenant)
        if found is None:
            return []
        own = found.agencies.get(agency, [])
        shared = found.agencies.get(EVERY_AGENCY, [])
        return [t for t in [*own, *shared] if action in t.actions]


def load_reply_templates(directory: Path | None, agencies_of: dict[str, set[str]]) -> ReplyTemplates:
    """Every ``<tenant>.yaml`` of ``directory``, checked; ``agencies_of`` holds the agency codes
    of each tenant the console knows (a file of another tenant is refused)."""
    if directory is None:
        return ReplyTemplates({})
    if not directory.is_dir():
        raise ReplyTemplatesError(f"{directory}: reply templates directory not found")
    return ReplyTemplates({path.stem: _load(path, agencies_of)
                           for path in sorted(directory.glob("*.yaml"))})


def _load(path: Path, agencies_of: dict[str, set[str]]) -> TemplateFile:
    if path.stem not in agencies_of:
        raise ReplyTemplatesError(f"{path.name}: no tenant {path.stem!r} (name the file <tenant>.yaml)")
    try:
        loaded = TemplateFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as error:
        raise ReplyTemplatesError(f"{path.name}: not YAML ({type(error).__name__})") from None
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ReplyTemplatesError(f"{path.name}: {field}: {first['msg']}") from None
    unknown = sorted(set(loaded.agencies) - agencies_of[path.stem] - {EVERY_AGENCY})
    if unknown:
        raise ReplyTemplatesError(f"{path.name}: agencies: {', '.join(unknown)} not in the rulebook "
                                  f"of {path.stem}")
    return loaded
