"""The notification directory: who holds each role of each agency and tenant, how to reach
them, and when not to wake them. A YAML file (``DISPOSISI_NOTIFY_DIRECTORY``), validated
whole at start-up with errors naming the field; contact URLs are never echoed (they may hold
passwords or tokens).

Every contact is an Apprise URL (``mailto://``, ``tgram://``, ``whatsapp://``, an SMS
gateway's, ``json://`` for a webhook...): adding a channel is adding a URL, not code."""

import logging
import re
from datetime import time
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import apprise
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.contracts import describe_errors
from shared.yamlfile import read_yaml

PersonId = str
Label = str
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
_LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
TO = "{to}"  # where a citizen template takes the citizen's address
_SAMPLE_TO = {"email": "warga@example.invalid", "sms": "6281234567890"}
# Apprise names recipients (e-mail addresses, phone numbers) and parts of URLs in its own log
# lines, even when only parsing: the service logs outcomes itself, by delivery id.
logging.getLogger(apprise.LOGGER_NAME).setLevel(logging.CRITICAL)


class DirectoryError(ValueError):
    pass


class _Strict(BaseModel):
    # hide_input_in_errors: a refused contact URL may carry a password; name the field only.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


@lru_cache(maxsize=1024)
def apprise_understands(url: str) -> bool:
    """Whether Apprise has a channel for this URL (it is parsed, nothing is sent)."""
    return apprise.Apprise.instantiate(url, suppress_exceptions=True) is not None


class QuietHours(_Strict):
    """Local times between which only urgent notices are sent; ``start`` after ``end`` spans
    midnight (21:00-06:00)."""

    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> "QuietHours":
        if self.start == self.end:
            raise ValueError("start and end are equal: give a window, or leave quiet_hours out")
        return self


def _contacts_valid(contacts: dict[Label, str]) -> dict[Label, str]:
    for label, url in contacts.items():
        if not _LABEL.match(label):
            raise ValueError(f"{label!r}: a contact's name is lower-case letters, digits, _ or - "
                             "(e.g. email, telegram, whatsapp, sms, webhook)")
        if not apprise_understands(url):
            raise ValueError(f"{label}: not a notification URL Apprise understands (the URL is "
                             "not shown: it may hold a password)")
    return contacts


class Person(_Strict):
    name: str = Field(min_length=1, max_length=200)
    contacts: dict[Label, str] = Field(min_length=1, max_length=10,
                                       description="Contact name -> Apprise URL.")
    quiet_hours: QuietHours | None = None
    timezone: str | None = Field(None, description="For quiet hours; default the tenant's.")

    _contacts = field_validator("contacts")(_contacts_valid)


class Agency(_Strict):
    notify_assignments: bool = Field(False, description="Tell the officers of new tickets.")
    roles: dict[str, list[PersonId]] = Field(default_factory=dict)


class CitizenChannels(_Strict):
    """Apprise URL templates for replies to citizens, ``{to}`` standing for the citizen's
    e-mail address or phone number."""

    email: str | None = None
    sms: str | None = None

    @field_validator("email", "sms")
    @classmethod
    def _template(cls, url: str | None, info: ValidationInfo) -> str | None:
        if url is None:
            return None
        if TO not in url:
            raise ValueError("must contain {to}, where the citizen's address goes")
        if not apprise_understands(url.replace(TO, _SAMPLE_TO[str(info.field_name)])):
            raise ValueError("not a notification URL Apprise understands (not shown)")
        return url


class TenantDirectory(_Strict):
    timezone: str = Field("Asia/Jakarta", description="Quiet hours are read in this zone.")
    people: dict[PersonId, Person] = Field(default_factory=dict)
    agencies: dict[str, Agency] = Field(default_factory=dict)
    roles: dict[str, list[PersonId]] = Field(
        default_factory=dict, description="The tenant's own roles (inspektorat, ombudsman...), "
                                          "used when the agency names nobody for the role.")
    citizens: CitizenChannels = Field(default_factory=CitizenChannels)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        _known_zone(name)
        return name

    @model_validator(mode="after")
    def _people_exist(self) -> "TenantDirectory":
        for where, people in self._role_lists():
            for person in people:
                if person not in self.people:
                    raise ValueError(f"{where}: names {person!r}, who is not under people")
        for person_id, entry in self.people.items():
            if entry.timezone is not None:
                try:
                    _known_zone(entry.timezone)
                except ValueError as error:
                    raise ValueError(f"people.{person_id}.timezone: {error}") from None
        return self

    def _role_lists(self) -> list[tuple[str, list[PersonId]]]:
        found = [(f"roles.{role}", people) for role, people in self.roles.items()]
        found += [(f"agencies.{code}.roles.{role}", people)
                  for code, agency in self.agencies.items() for role, people in agency.roles.items()]
        return found

    def holders(self, agency: str, role: str) -> list[PersonId]:
        """Who holds ``role`` for ``agency``: the agency's own holders, else the tenant's."""
        own = self.agencies.get(agency)
        if own is not None and own.roles.get(role):
            return list(own.roles[role])
        return list(self.roles.get(role, []))

    def zone_of(self, person: PersonId) -> str:
        return self.people[person].timezone or self.timezone


def _known_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None


class Directory(_Strict):
    tenants: dict[str, TenantDirectory] = Field(default_factory=dict)

    def of(self, tenant: str) -> TenantDirectory:
        return self.tenants.get(tenant) or TenantDirectory()


EMPTY = Directory()


def parse_directory(raw: object, *, source: str = "directory") -> Directory:
    """The directory from parsed YAML; DirectoryError naming each bad field otherwise."""
    try:
        return Directory.model_validate(raw if raw is not None else {})
    except ValidationError as error:
        raise DirectoryError(f"{source}: {describe_errors(error.errors())}") from None


def load_directory(path: Path | None) -> Directory:
    if path is None:
        return EMPTY
    try:
        raw = read_yaml(path)
    except ValueError as error:
        raise DirectoryError(str(error)) from None
    return parse_directory(raw, source=str(path))

