"""Open311 GeoReport v2 decisions: the service list a tenant's rulebook offers, a posted form
as a complaint submission, a complaint as a service request, and both wire formats (JSON and
XML) with the specification's error shape. No I/O.

The specification: https://wiki.open311.org/GeoReport_v2/ (services, service definitions,
service requests, tokens, errors as ``[{"code", "description"}]``)."""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from shared.contracts import ComplaintSubmission, category_code, describe_errors

FORMATS = {"json": "application/json", "xml": "text/xml; charset=utf-8"}
CLOSED_STATUSES = frozenset({"resolved", "closed"})

# The attributes every service takes (its "service definition"): the identity switches of a
# Disposisi complaint, and the place names the router's location conditions read.
_YES_NO = [{"key": "true", "name": "Ya"}, {"key": "false", "name": "Tidak"}]
ATTRIBUTES: list[dict[str, Any]] = [
    {"variable": True, "code": "anonymous", "datatype": "singlevaluelist", "required": False,
     "datatype_description": None, "order": 1, "values": _YES_NO,
     "description": "Sembunyikan identitas pelapor dari instansi"},
    {"variable": True, "code": "confidential", "datatype": "singlevaluelist", "required": False,
     "datatype_description": None, "order": 2, "values": _YES_NO,
     "description": "Rahasiakan seluruh laporan (nama, isi dan lokasi tidak dipublikasikan)"},
    {"variable": True, "code": "kelurahan", "datatype": "string", "required": False,
     "datatype_description": "Nama kelurahan", "order": 3, "values": [],
     "description": "Kelurahan lokasi masalah"},
    {"variable": True, "code": "kecamatan", "datatype": "string", "required": False,
     "datatype_description": "Nama kecamatan", "order": 4, "values": [],
     "description": "Kecamatan lokasi masalah"},
]
_ATTRIBUTE_CODES = frozenset(a["code"] for a in ATTRIBUTES)
_ATTRIBUTE_KEY = re.compile(r"^attribute\[([^\]]+)\](\[\])?$")

# What a status note says of each step, in words that quote nothing of the complaint or the
# officers: the agencies' own messages stay behind the tracking code.
STATUS_NOTES = {
    "received": "Laporan diterima dan sedang diteruskan ke instansi yang berwenang.",
    "assigned": "Laporan diteruskan ke instansi yang berwenang.",
    "rerouted": "Laporan dialihkan ke instansi lain yang berwenang.",
    "acknowledged": "Instansi telah menerima laporan.",
    "responded": "Instansi telah menanggapi laporan.",
    "needs_info": "Instansi menunggu keterangan tambahan dari pelapor.",
    "citizen_replied": "Pelapor telah memberi keterangan tambahan.",
    "resolved": "Laporan telah diselesaikan.",
}


class GeoReportError(Exception):
    """A refusal in the specification's shape: an HTTP status and a description naming the
    field and the problem (never its value)."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


@dataclass(frozen=True)
class Service:
    service_code: str
    service_name: str
    group: str  # the agency that owns the category first
    agencies: tuple[str, ...]

    def as_open311(self) -> dict[str, Any]:
        return {"service_code": self.service_code, "service_name": self.service_name,
                "description": f"Pengaduan {self.service_name} ({', '.join(self.agencies)})",
                "metadata": True, "type": "realtime", "keywords": ",".join(self.agencies),
                "group": self.group}


def service_code(category: str) -> str:
    """A stable code from a category name: ``Pelayanan puskesmas`` -> ``pelayanan-puskesmas``."""
    return category_code(category)


def services_of(rulebook: Mapping[str, Any]) -> list[Service]:
    """One service per routing category of a rulebook (as its YAML reads), in the order the
    rulebook first names them; the group is the first agency whose rules name it."""
    found: dict[str, tuple[str, str, list[str]]] = {}
    for agency in rulebook.get("agencies") or []:
        for rule in agency.get("rules") or []:
            category = rule.get("category")
            if not category:
                continue
            code = service_code(str(category))
            agencies = found.setdefault(code, (str(category), str(agency["name"]), []))[2]
            if agency["code"] not in agencies:
                agencies.append(str(agency["code"]))
    return [Service(code, name, group, tuple(agencies)) for code, (name, group, agencies) in found.items()]


def service_definition(service: Service) -> dict[str, Any]:
    return {"service_code": service.service_code, "attributes": ATTRIBUTES}


# --- a posted request ------------------------------------------------------------------------

@dataclass(frozen=True)
class PostedRequest:
    service: Service
    submission: ComplaintSubmission
    api_key: str
    jurisdiction_id: str | None
    uploads: list[Any] = field(default_factory=list)  # multipart `media` parts, if any


def _text(form: Mapping[str, str], name: str) -> str | None:
    value = form.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _number(form: Mapping[str, str], name: str) -> float | None:
    value = _text(form, name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise GeoReportError(400, f"{name}: not a number") from None


def attributes_of(form: Mapping[str, str]) -> dict[str, str]:
    """``attribute[code]=value`` fields; an attribute the services do not define is refused."""
    found: dict[str, str] = {}
    for key, value in form.items():
        match = _ATTRIBUTE_KEY.match(key)
        if match is None:
            continue
        code = match.group(1)
        if code not in _ATTRIBUTE_CODES:
            raise GeoReportError(400, f"attribute[{code}]: not an attribute of this service "
                                      f"(known: {', '.join(sorted(_ATTRIBUTE_CODES))})")
        found[code] = value.strip()
    for switch in ("anonymous", "confidential"):
        if found.get(switch, "false") not in ("true", "false"):
            raise GeoReportError(400, f"attribute[{switch}]: must be true or false")
    return found


def submission_of(form: Mapping[str, str], service: Service) -> ComplaintSubmission:
    """The form of ``POST requests`` as a Disposisi complaint, validated as ``POST
    /v1/complaints`` validates it. The service's name is the complaint's title: the citizen's
    own choice of what the problem is, which the router weighs as a title."""
    attributes = attributes_of(form)
    lat, lon = _number(form, "lat"), _number(form, "long")
    address = _text(form, "address_string")
    if lat is None and address is None:
        raise GeoReportError(400, "lat/long or address_string: a location is required")
    names = [n for n in (_text(form, "first_name"), _text(form, "last_name")) if n]
    reporter = {"name": " ".join(names) if names else None, "phone": _text(form, "phone"),
                "email": _text(form, "email")}
    location = {"lat": lat, "lon": lon, "address": address,
                "kelurahan": attributes.get("kelurahan") or None,
                "kecamatan": attributes.get("kecamatan") or None}
    media = _text(form, "media_url")
    data = {
        "channel": "open311", "text": _text(form, "description") or "",
        "title": service.service_name, "category": service.service_name, "location": location,
        "reporter": reporter if any(reporter.values()) else None,
        "anonymous": attributes.get("anonymous") == "true",
        "confidential": attributes.get("confidential") == "true",
        "attachments": [media] if media else [],
    }
    try:
        return ComplaintSubmission.model_validate(data)
    except ValidationError as error:
        raise GeoReportError(400, _open311_names(describe_errors(error.errors()))) from None


# Disposisi's field names in a refusal, as the client sent them.
_FIELD_NAMES = (("location.lon", "long"), ("location.lat", "lat"), ("location.address", "address_string"),
                ("location.kelurahan", "attribute[kelurahan]"),
                ("location.kecamatan", "attribute[kecamatan]"), ("location", "lat/long"),
                ("reporter.name", "first_name/last_name"), ("reporter.phone", "phone"),
                ("reporter.email", "email"), ("attachments.0", "media_url"),
                ("attachments", "media_url"), ("text", "description"))


def _open311_names(message: str) -> str:
    for ours, theirs in _FIELD_NAMES:
        message = message.replace(f"{ours}:", f"{theirs}:")
    return message


# --- a complaint as a service request ----------------------------------------------------------

def w3c(moment: datetime | None, zone: ZoneInfo) -> str | None:
    """W3C date-time with the tenant's offset, e.g. ``2026-11-28T09:15:00+07:00``."""
    return None if moment is None else moment.astimezone(zone).isoformat(timespec="seconds")


def open_or_closed(status: str) -> str:
    return "closed" if status in CLOSED_STATUSES else "open"


def status_note(ticket: Mapping[str, Any] | None) -> str:
    """The newest public step, in words of its own."""
    if ticket is None:
        return STATUS_NOTES["received"]
    steps = [s.get("action") for s in ticket.get("history") or [] if s.get("action") in STATUS_NOTES]
    return STATUS_NOTES.get(steps[-1] if steps else ticket.get("status", ""), STATUS_NOTES["assigned"])


def service_request(complaint: Mapping[str, Any], meta: Mapping[str, Any], ticket: Mapping[str, Any] | None,
                    *, zone: ZoneInfo, detailed: bool) -> dict[str, Any]:
    """One complaint as GeoReport v2's service request.

    ``complaint``: as published (masked when anonymous or confidential); ``meta``: the stored
    document's ticket id, time and Open311 fields; ``ticket``: intake's tracking copy, None
    before the SLA service announced it. The text, address and media go only to a caller with
    the jurisdiction's API key (``detailed``), and never for a confidential complaint, whose
    place is not published either. An anonymous complaint's place is shown only to such a
    caller: coordinates can point at a reporter's house."""
    category = (ticket or {}).get("category")
    code = service_code(category) if category else (meta.get("open311") or {}).get("service_code")
    name = category or (meta.get("open311") or {}).get("service_name")
    location = complaint.get("location") or {}
    hidden = complaint.get("anonymous") or complaint.get("confidential")
    show_place = not complaint.get("confidential") and (detailed or not hidden)
    show_text = detailed and not complaint.get("confidential")
    deadlines = (ticket or {}).get("deadlines") or {}
    attachments = complaint.get("attachments") or []
    return {
        "service_request_id": meta["ticket_id"],
        "status": open_or_closed((ticket or {}).get("status", "received")),
        "status_notes": status_note(ticket),
        "service_name": name, "service_code": code,
        "description": complaint.get("text") if show_text else None,
        "agency_responsible": (ticket or {}).get("agency_name") or (ticket or {}).get("agency"),
        "service_notice": None,
        "requested_datetime": w3c(meta["submitted_at"], zone),
        "updated_datetime": w3c((ticket or {}).get("changed_at") or meta["submitted_at"], zone),
        "expected_datetime": w3c(deadlines.get("resolution_due"), zone),
        "address": location.get("address") if show_place and show_text else None,
        "address_id": None, "zipcode": None,
        "lat": location.get("lat") if show_place else None,
        "long": location.get("lon") if show_place else None,
        "media_url": attachments[0] if attachments and show_text else None,
    }


def matches(request: Mapping[str, Any], *, codes: Iterable[str] | None,
            statuses: Iterable[str] | None) -> bool:
    code_set, status_set = set(codes or ()), set(statuses or ())
    return (not code_set or request["service_code"] in code_set) and \
        (not status_set or request["status"] in status_set)


def comma_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def parse_w3c(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise GeoReportError(400, f"{name}: not a W3C date-time (e.g. 2026-11-01T00:00:00Z)") from None
    if moment.tzinfo is None:
        raise GeoReportError(400, f"{name}: give a time zone (Z or +07:00)")
    return moment


# --- the wire ------------------------------------------------------------------------------

# XML element names of a list's items, by the list's element (the specification's own).
_ITEM_NAMES = {"services": "service", "service_requests": "request", "errors": "error",
               "attributes": "attribute", "values": "value", "endpoints": "endpoint",
               "formats": "format"}


def _xml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _fill(element: ElementTree.Element, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _fill(ElementTree.SubElement(element, key), inner)
    elif isinstance(value, list):
        item = _ITEM_NAMES.get(element.tag, "item")
        for inner in value:
            _fill(ElementTree.SubElement(element, item), inner)
    else:
        element.text = _xml_value(value)


def to_xml(root: str, value: Any) -> bytes:
    """``root`` holding ``value``: a list's items named as the specification names them."""
    element = ElementTree.Element(root)
    _fill(element, value)
    body: bytes = ElementTree.tostring(element, encoding="utf-8", xml_declaration=True)
    return body


def errors_body(error: GeoReportError) -> list[dict[str, Any]]:
    return [{"code": error.status, "description": error.description}]
