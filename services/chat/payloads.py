"""The providers' webhook payloads, read without trusting them: Meta's signature, the
WhatsApp Cloud API's notification shape, a generic SMS gateway's fields. Pure: no I/O.

Problems are named by where they are (``entry[0].changes[0].value.messages[2]: from: ...``),
never by a value, which could be a phone number or a citizen's words."""

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.chat.domain import Inbound
from shared.contracts import TEXT_MAX

# --- signatures and secrets ----------------------------------------------------------------

def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison; an unset expected secret matches nothing."""
    return bool(expected) and given is not None and hmac.compare_digest(
        given.encode(), expected.encode())


def signature_problem(body: bytes, header: str | None, app_secret: str) -> str | None:
    """Why ``X-Hub-Signature-256`` does not prove the body came from Meta, or None if it does."""
    if not header:
        return "missing X-Hub-Signature-256"
    scheme, _, given = header.partition("=")
    if scheme != "sha256" or not given:
        return "X-Hub-Signature-256 is not of the form sha256=<hex>"
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(given.lower().encode(), expected.encode()) \
        else "X-Hub-Signature-256 does not match the body"


def whatsapp_signature(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


# --- reading the WhatsApp Cloud API webhook --------------------------------------------------

@dataclass
class Parsed:
    messages: list[Inbound] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # each names where, never a number or text
    statuses: int = 0  # delivery receipts: ignored


def whatsapp_messages(payload: Any) -> Parsed:
    """The messages of a Cloud API webhook (``entry[].changes[].value.messages[]``). A part
    that is not of the documented shape is named in ``problems`` and skipped; the rest is read."""
    parsed = Parsed()
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        parsed.problems.append("object: not whatsapp_business_account")
        return parsed
    for e, entry in enumerate(_list(payload.get("entry"))):
        for c, change in enumerate(_list(entry.get("changes") if isinstance(entry, dict) else None)):
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                parsed.problems.append(f"entry[{e}].changes[{c}].value: missing")
                continue
            parsed.statuses += len(_list(value.get("statuses")))
            for m, message in enumerate(_list(value.get("messages"))):
                where = f"entry[{e}].changes[{c}].value.messages[{m}]"
                read = _whatsapp_message(message)
                if isinstance(read, str):
                    parsed.problems.append(f"{where}: {read}")
                else:
                    parsed.messages.append(read)
    return parsed


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _whatsapp_message(message: Any) -> Inbound | str:
    if not isinstance(message, dict):
        return "not an object"
    message_id, sender, kind = message.get("id"), message.get("from"), message.get("type")
    if not isinstance(message_id, str) or not message_id or len(message_id) > 128:
        return "id: missing or too long"
    if not isinstance(sender, str) or not sender.isdigit() or len(sender) > 20:
        return "from: missing or not a phone number"
    base = {"channel": "whatsapp", "message_id": message_id, "sender": sender,
            "raw_type": str(kind)[:40]}
    body = message.get(str(kind))
    if kind == "text" and isinstance(body, dict) and isinstance(body.get("body"), str):
        return Inbound(**base, kind="text", text=body["body"])  # type: ignore[arg-type]
    if kind == "image" and isinstance(body, dict) and isinstance(body.get("id"), str):
        caption = body.get("caption") if isinstance(body.get("caption"), str) else None
        return Inbound(**base, kind="image", media_id=body["id"], text=caption)  # type: ignore[arg-type]
    if kind == "location" and isinstance(body, dict):
        return _location(base, body)
    return Inbound(**base, kind="unknown")  # type: ignore[arg-type]


def _location(base: Mapping[str, str], body: Mapping[str, Any]) -> Inbound | str:
    lat, lon = body.get("latitude"), body.get("longitude")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float) \
            or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return "location: latitude and longitude missing or out of range"
    words = [body.get(k) for k in ("name", "address")]
    address = ", ".join(w for w in words if isinstance(w, str) and w.strip())[:300] or None
    return Inbound(**base, kind="location", lat=float(lat), lon=float(lon),  # type: ignore[arg-type]
                   address=address)


# --- reading the generic SMS gateway webhook --------------------------------------------------

def sms_message(fields: Mapping[str, Any]) -> Inbound | str:
    """An SMS gateway's ``from``, ``text`` and ``id``; else what is wrong, naming the field."""
    sender, text, message_id = fields.get("from"), fields.get("text"), fields.get("id")
    if not isinstance(message_id, str | int) or not str(message_id).strip() \
            or len(str(message_id)) > 128:
        return "id: required, at most 128 characters"
    if not isinstance(sender, str) or not 6 <= len(sender) <= 20 \
            or not sender.lstrip("+").isdigit():
        return "from: required, a phone number (digits, optionally a leading +)"
    if not isinstance(text, str) or not text.strip():
        return "text: required"
    if len(text) > TEXT_MAX:
        return f"text: at most {TEXT_MAX} characters"
    return Inbound(channel="sms", message_id=str(message_id).strip(), sender=sender,
                   kind="text", text=text, raw_type="text")
