"""The e-mail channel, the pure decisions: reading a mail (its text, attachments, sender and
the ticket it answers), what is refused with which SMTP code, the stable ids, the replies'
wording and threading headers, and when a failed step is tried again. No MongoDB, no Kafka,
no network.

A mail is stored whole first (``InboundDoc``, by a hash of its Message-ID), then submitted;
every mail the mailbox sends (``OutgoingDoc``) is stored before it is sent, under an id
derived from what caused it, so a restart or a redelivered event never sends it twice."""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import getaddresses
from typing import Literal, TypedDict

from bs4 import BeautifulSoup

from shared.contracts import ATTACHMENTS_MAX, TEXT_MAX, TITLE_MAX, PublicStep
from shared.privacy import mask_emails

InboundStatus = Literal["stored", "submitted", "answered", "follow_up", "refused"]
OutgoingKind = Literal["receipt", "answer_received", "follow_up", "refused", "agency"]
OutgoingStatus = Literal["pending", "retrying", "sent", "failed"]
# The agency's steps that carry a message for the citizen (as notify reads them).
REPLY_ACTIONS = frozenset({"responded", "needs_info", "resolved"})
TEXT_MIN = 10  # what intake accepts as a complaint's text
# A tracking number like BKL-261128-7K3QX9AB (services/intake/domain.new_ticket_id).
_TICKET = re.compile(r"\b([A-Z][A-Z0-9]{0,15}-\d{6}-[0-9A-Z]{8})\b")
_QUOTE_HEADER = re.compile(r"^\s*(on|pada)\b.{0,200}\b(wrote|menulis)\s*:\s*$", re.IGNORECASE)
_ORIGINAL = re.compile(r"^\s*-{2,}\s*(original message|pesan asli|forwarded message)", re.IGNORECASE)


class MailRefused(ValueError):
    """A mail the SMTP server refuses, with its reply code and enhanced status."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


NO_TEXT = "550 5.6.0 No complaint text: please write the complaint in the message"
UNREADABLE = "550 5.6.0 The message could not be read as e-mail"


@dataclass(frozen=True)
class ReadMail:
    message_id: str  # as given, or made from the content when missing
    subject: str
    sender: str  # where replies go: Reply-To, else From
    text: str  # the body as text, quotes of earlier mails left out
    attachments: list[bytes] = field(default_factory=list)
    thread_refs: list[str] = field(default_factory=list)  # In-Reply-To and References
    automatic: bool = False  # an auto-reply or bounce: never a complaint


class InboundDoc(TypedDict):
    """A received mail (``mailbox_inbound``): stored whole before the SMTP server says 250."""

    _id: str  # mail_id(message_id)
    tenant: str
    message_id: str
    # The mail as received, base64: documents are replaced whole, and a store may not take
    # bytes there (NX-27017 refuses them in a replacement).
    raw_base64: str
    envelope_sender: str | None  # MAIL FROM, for a mail whose headers name no address
    received_at: datetime
    status: InboundStatus
    due_epoch: float | None  # set while it waits to be submitted
    attempts: int
    last_error: str | None
    ticket_id: str | None
    attachments_sent: int  # how many attachments intake has (a retry does not send them again)
    attachments_refused: list[str]
    version: int


class ThreadDoc(TypedDict):
    """A complaint that came by mail (``mailbox_threads``): where its replies go."""

    _id: str  # tenant:ticket_id
    tenant: str
    ticket_id: str
    address: str
    tracking_code: str  # needed to pass the citizen's answers through intake's citizen API
    subject: str
    root_message_id: str


class OutgoingDoc(TypedDict):
    """A mail to a citizen (``mailbox_outgoing``), stored before it is sent."""

    _id: str
    tenant: str
    ticket_id: str | None
    kind: OutgoingKind
    to: str
    subject: str
    body: str
    message_id: str
    in_reply_to: str | None
    references: list[str]
    status: OutgoingStatus
    attempts: int
    due_epoch: float | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    version: int


def digest(text: str) -> str:
    return hashlib.sha256(text.encode(errors="replace")).hexdigest()


def mail_id(message_id: str) -> str:
    """The stored id of a mail and its ``external_id`` at intake: a hash, so the id says
    nothing of the sender's host."""
    return digest(message_id.strip())


def masked(address: str) -> str:
    """An address as logs may show it: ``r***@***``."""
    local = address.partition("@")[0]
    return f"{local[:1]}***@***" if local else "***"


def read_mail(raw: bytes, envelope_sender: str | None = None) -> ReadMail:
    """The mail as the channel uses it; MailRefused when it holds no complaint at all."""
    try:
        message = message_from_bytes(raw, policy=policy.default)
    except Exception:  # the parser is lenient; whatever escapes it means unreadable
        raise MailRefused(UNREADABLE) from None
    assert isinstance(message, EmailMessage)
    message_id = _header(message, "Message-ID") or f"<{digest(raw.decode(errors='replace'))}@mailbox>"
    subject = _header(message, "Subject")
    sender = _address(message, "Reply-To") or _address(message, "From") or (envelope_sender or "")
    read = ReadMail(
        message_id=message_id, subject=subject, sender=sender, text=body_text(message),
        attachments=attachments(message), thread_refs=_refs(message),
        automatic=is_automatic(message, envelope_sender))
    if not read.automatic and len(complaint_text(read)) < TEXT_MIN:
        raise MailRefused(NO_TEXT)
    if not read.automatic and "@" not in read.sender:
        raise MailRefused("550 5.1.7 No sender address to answer to")
    return read


def _header(message: Message, name: str) -> str:
    try:
        return " ".join(str(message.get(name) or "").split())
    except Exception:  # an undecodable encoded word: the header is left out
        return ""


def _address(message: Message, name: str) -> str | None:
    try:
        found = [a for _, a in getaddresses([str(v) for v in message.get_all(name, [])]) if "@" in a]
    except Exception:
        return None
    return found[0] if found else None


def _refs(message: Message) -> list[str]:
    refs: list[str] = []
    for name in ("In-Reply-To", "References"):
        refs += re.findall(r"<[^<>\s]+>", _header(message, name))
    return refs


def is_automatic(message: Message, envelope_sender: str | None) -> bool:
    """A bounce (null sender) or an auto-reply (RFC 3834): answering it could loop."""
    auto = _header(message, "Auto-Submitted").lower()
    return envelope_sender == "" or (auto not in ("", "no")) or \
        _header(message, "Precedence").lower() in ("bulk", "junk", "auto_reply")


def part_text(part: Message) -> str:
    """A text part's content; an unknown or wrong charset is read as UTF-8 with the
    undecodable bytes replaced, so such a mail is still taken."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError, ValueError, AssertionError):
        pass
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""


def html_to_text(html: str) -> str:
    soup = BeautifulSoup(html, "html.parser")
    for hidden in soup(["script", "style", "head"]):
        hidden.decompose()
    return soup.get_text("\n")


def body_text(message: EmailMessage) -> str:
    """Plain text preferred, HTML turned to text; quoted earlier mails left out."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = part_text(part)
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return without_quotes(text)


def without_quotes(text: str) -> str:
    kept: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if _QUOTE_HEADER.match(line) or _ORIGINAL.match(line):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def attachments(message: EmailMessage) -> list[bytes]:
    """The attached files (intake checks their type by content); at most ATTACHMENTS_MAX."""
    found: list[bytes] = []
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() == "message":
            continue
        disposition = part.get_content_disposition()
        inline_file = disposition == "inline" and part.get_content_maintype() != "text"
        if disposition == "attachment" or inline_file:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload:
                found.append(payload)
    return found[:ATTACHMENTS_MAX]


def complaint_text(mail: ReadMail) -> str:
    """The text intake gets: the body, or the subject when the body is too short to be a
    complaint; addresses masked (they are never passed to an agency)."""
    text = mail.text if len(mail.text) >= TEXT_MIN else f"{mail.subject}\n{mail.text}".strip()
    return mask_emails(text)[:TEXT_MAX]


def complaint_title(mail: ReadMail) -> str | None:
    title = mask_emails(without_ticket(mail.subject))[:TITLE_MAX].strip()
    return title or None


def without_ticket(subject: str) -> str:
    subject = re.sub(r"\[[^\]]*\]", " ", subject)
    subject = re.sub(r"^\s*((re|fwd?|aw|balas)\s*:\s*)+", "", subject, flags=re.IGNORECASE)
    return " ".join(subject.split())


def ticket_named(mail: ReadMail) -> str | None:
    """The tracking number the mail's subject or threading headers carry, if any."""
    for text in (mail.subject, *mail.thread_refs):
        found = _TICKET.search(text)
        if found:
            return found.group(1)
    return None


# --- what the mailbox sends ---------------------------------------------------------------

def reply_subject(ticket_id: str, subject: str) -> str:
    return f"[{ticket_id}] {without_ticket(subject) or 'Pengaduan'}"


def outgoing_message_id(outgoing_id: str, ticket_id: str | None, domain: str) -> str:
    """Stable per outgoing mail (a resend keeps it), and carrying the ticket, so an answer
    finds its ticket from In-Reply-To even when the subject was changed."""
    return f"<{ticket_id or 'mail'}.{digest(outgoing_id)[:20]}@{domain}>"


def receipt_body(ticket_id: str, tracking_code: str, refused: list[str]) -> str:
    lines = [
        "Terima kasih, pengaduan Anda telah kami terima.", "",
        f"Nomor pelacakan: {ticket_id}", f"Kode pelacakan: {tracking_code}", "",
        "Simpan kode ini: dengan nomor dan kode itu Anda dapat melihat perkembangan pengaduan "
        "Anda. Balas e-mail ini (dengan nomor pelacakan tetap di subjek) bila petugas meminta "
        "keterangan tambahan."]
    if refused:
        lines += ["", "Lampiran berikut tidak dapat kami terima:", *[f"- {r}" for r in refused]]
    return "\n".join(lines)


def answer_received_body(ticket_id: str) -> str:
    return (f"Jawaban Anda atas pertanyaan petugas untuk pengaduan {ticket_id} telah kami "
            "teruskan. Terima kasih.")


def follow_up_body(ticket_id: str) -> str:
    return (f"Pesan Anda untuk pengaduan {ticket_id} telah kami simpan. Petugas tidak sedang "
            "menunggu jawaban atas pengaduan ini; bila petugas membutuhkan keterangan, kami akan "
            "mengirim pertanyaannya melalui e-mail ini.")


def refused_body(problem: str) -> str:
    return ("Maaf, pesan Anda belum dapat kami terima sebagai pengaduan: "
            f"{problem}. Silakan kirim ulang dengan perbaikan tersebut.")


@dataclass(frozen=True)
class AgencyMessage:
    source: str  # stable: ticket, action and time of the step
    action: str
    note: str


def agency_messages(ticket_id: str, history: list[PublicStep]) -> list[AgencyMessage]:
    """The agency's messages for the citizen in a ticket's public history."""
    return [AgencyMessage(f"{ticket_id}:{s.action}:{s.at.isoformat()}", s.action, s.note)
            for s in history if s.action in REPLY_ACTIONS and s.note]


def agency_body(ticket_id: str, message: AgencyMessage) -> str:
    ask = ("\n\nPetugas membutuhkan keterangan dari Anda: balas e-mail ini untuk menjawab."
           if message.action == "needs_info" else "")
    done = "\n\nPengaduan Anda telah diselesaikan." if message.action == "resolved" else ""
    return f"Tanggapan atas pengaduan {ticket_id}:\n\n{message.note}{ask}{done}"


def compose(doc: OutgoingDoc, sender: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = Address(addr_spec=sender)
    mail["To"] = doc["to"]
    mail["Subject"] = doc["subject"]
    mail["Message-ID"] = doc["message_id"]
    mail["Auto-Submitted"] = "auto-replied"
    if doc["in_reply_to"]:
        mail["In-Reply-To"] = doc["in_reply_to"]
    if doc["references"]:
        mail["References"] = " ".join(doc["references"])
    mail.set_content(doc["body"])
    return mail
