"""Chat channels (WhatsApp, SMS), the pure decisions: turning a citizen's messages into a draft
complaint or an answer, the texts sent back, and when to try again. No MongoDB, no HTTP, no
Kafka. (Reading the providers' payloads: services/chat/payloads.py.)

A conversation: the first message (text, photo or location) opens a draft; more text,
photos and a location join it until the window ends or the citizen sends a done word; then
the draft is submitted to intake. A text from a citizen whose ticket waits for information
(needs_info), with no draft open, is their answer."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NotRequired, TypedDict

from shared.contracts import TEXT_MAX, Envelope, TicketChanged

ChatChannel = Literal["whatsapp", "sms"]
MessageKind = Literal["text", "image", "location", "unknown"]
DraftKind = Literal["complaint", "answer"]
DraftStatus = Literal["open", "submitting", "submitted", "refused"]
OutgoingStatus = Literal["pending", "retrying", "sent", "failed"]
REPLY_ACTIONS = frozenset({"responded", "needs_info", "resolved"})
PHOTOS_MAX = 10  # intake's attachments per complaint


@dataclass(frozen=True)
class Inbound:
    """One message from a citizen, whatever the provider."""

    channel: ChatChannel
    message_id: str
    sender: str  # the phone number as the provider gives it; never logged (see `masked`)
    kind: MessageKind
    text: str | None = None
    media_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    raw_type: str = ""

    @property
    def key(self) -> str:
        return f"{self.channel}:{self.message_id}"


def masked(phone: str) -> str:
    """A phone number as logs may show it: its last three digits only."""
    digits = "".join(c for c in phone if c.isdigit())
    return f"***{digits[-3:]}" if len(digits) >= 3 else "***"


# --- drafts -----------------------------------------------------------------------------------

class LocationDoc(TypedDict):
    lat: float
    lon: float
    address: str | None


class DraftDoc(TypedDict):
    """A complaint being put together, or an answer to send (``chat_drafts``). ``due_epoch``
    is set while it waits to be submitted and None once finished; written whole, guarded by
    ``version``. ``submitting``: closed to more messages, being sent to intake (again after a
    failure or a restart, unchanged, so intake's idempotency by external_id holds)."""

    _id: str  # channel:first provider message id (also intake's external_id)
    kind: DraftKind
    channel: ChatChannel
    sender: str
    status: DraftStatus
    texts: list[str]
    photos: list[str]  # provider media ids, in order
    photos_done: list[str]  # uploaded to intake, or refused there
    photos_refused: int
    location: LocationDoc | None
    message_ids: list[str]
    ticket_id: str | None  # answers: the ticket; complaints: once intake accepted it
    opened_epoch: float
    due_epoch: float | None
    attempts: int
    last_error: str | None
    version: int


class TicketLinkDoc(TypedDict):
    """A ticket submitted through a chat channel (``chat_tickets``): where its citizen hears
    back, and what the chat service learnt of its state from ``ticket.changed``."""

    _id: str  # ticket id
    tenant: str
    channel: ChatChannel
    sender: str
    tracking_code: str  # what intake gave once; the citizen's answers need it
    status: str
    version: int  # the highest ticket version seen


class OutgoingDoc(TypedDict):
    """One message to a citizen (``chat_outgoing``), id derived from its cause."""

    _id: str
    channel: ChatChannel
    to: str
    text: str
    status: OutgoingStatus
    due_epoch: float | None
    attempts: int
    last_error: str | None
    created_epoch: float
    version: int
    sent_at: NotRequired[datetime | None]  # written by the sender (shared.sending.SendLoop)


def is_done_word(text: str | None, done_words: Sequence[str]) -> bool:
    return text is not None and text.strip().lower().strip(".!") in {w.lower() for w in done_words}


def new_draft(message: Inbound, now: float, window: float, *, kind: DraftKind = "complaint",
              ticket_id: str | None = None) -> DraftDoc:
    draft = DraftDoc(_id=message.key, kind=kind, channel=message.channel, sender=message.sender,
                     status="open", texts=[], photos=[], photos_done=[], photos_refused=0,
                     location=None, message_ids=[], ticket_id=ticket_id, opened_epoch=now,
                     due_epoch=now if kind == "answer" else now + window, attempts=0,
                     last_error=None, version=0)
    return joined(draft, message, now, done=False)


def joined(draft: DraftDoc, message: Inbound, now: float, *, done: bool) -> DraftDoc:
    """The draft with the message added (once: a redelivered message changes nothing)."""
    if message.message_id in draft["message_ids"]:
        return draft
    texts, photos, location = list(draft["texts"]), list(draft["photos"]), draft["location"]
    if message.text and not done:
        texts.append(message.text)
    if message.media_id and len(photos) < PHOTOS_MAX:
        photos.append(message.media_id)
    if message.lat is not None and message.lon is not None:
        location = LocationDoc(lat=message.lat, lon=message.lon, address=message.address)
    return DraftDoc(**{**draft, "texts": texts, "photos": photos, "location": location,
                       "message_ids": [*draft["message_ids"], message.message_id],
                       "due_epoch": now if done else draft["due_epoch"]})


Step = Literal["join", "open", "answer", "reply"]


@dataclass(frozen=True)
class Decision:
    step: Step
    reply: str | None = None  # sent to the citizen at once


def decide(message: Inbound, *, draft_open: bool, waiting_ticket: str | None,
           done_words: Sequence[str]) -> Decision:
    """What one message does: join the open draft, open one, answer the ticket waiting for
    information, or only get a reply (unknown types; a done word with nothing to send)."""
    if message.kind == "unknown":
        return Decision("reply", UNKNOWN_TYPE)
    done = is_done_word(message.text, done_words) and message.kind == "text"
    if draft_open:
        return Decision("join")
    if done:
        return Decision("reply", NOTHING_TO_SEND)
    if waiting_ticket is not None and message.kind == "text":
        return Decision("answer")
    return Decision("open")


def complaint_text(draft: DraftDoc) -> str:
    return "\n".join(t.strip() for t in draft["texts"] if t.strip())[:TEXT_MAX]


# --- what the citizen reads -----------------------------------------------------------------

UNKNOWN_TYPE = ("Maaf, kami hanya dapat menerima pesan teks, foto dan lokasi. Silakan tuliskan "
                "pengaduan Anda.")
NOTHING_TO_SEND = "Belum ada pengaduan yang sedang disusun. Silakan tuliskan pengaduan Anda."
TOO_SHORT = ("Maaf, pengaduan Anda belum dapat kami terima: mohon jelaskan masalahnya dalam "
             "satu pesan teks (paling sedikit 10 huruf).")
ANSWER_SENT = "Jawaban Anda untuk pengaduan {ticket} sudah kami teruskan ke instansi."
ANSWER_NOT_WAITING = "Instansi tidak sedang menunggu jawaban untuk pengaduan {ticket}."


def opened_reply(channel: ChatChannel, window: float, done_word: str) -> str:
    minutes = max(1, round(window / 60))
    extra = "foto dan lokasi" if channel == "whatsapp" else "keterangan tambahan"
    return (f"Terima kasih, pengaduan Anda sedang kami susun. Dalam {minutes} menit Anda dapat "
            f"menambahkan {extra}; ketik {done_word.upper()} untuk langsung mengirim.")


def accepted_reply(ticket_id: str, tracking_code: str, photos_refused: int) -> str:
    text = (f"Pengaduan Anda diterima dengan nomor {ticket_id} (kode pelacakan {tracking_code}). "
            "Simpan nomor dan kode ini; tanggapan instansi akan kami kirim ke nomor ini.")
    if photos_refused:
        text += f" {photos_refused} foto tidak dapat diterima (terlalu besar atau bukan gambar)."
    return text


@dataclass(frozen=True)
class CitizenMessage:
    outgoing_id: str
    text: str


def citizen_messages(event: Envelope[TicketChanged]) -> list[CitizenMessage]:
    """One message per step the agency wrote for the citizen; ids derive from the step, so a
    later change repeating the history makes the same ids."""
    ticket = str(event.ticket_id)
    found = []
    for step in event.data.history:
        if step.action not in REPLY_ACTIONS or not step.note:
            continue
        if step.action == "needs_info":
            text = (f"Pertanyaan dari instansi tentang pengaduan {ticket}: {step.note} "
                    "Balas pesan ini untuk menjawab.")
        elif step.action == "resolved":
            text = f"Pengaduan {ticket} telah diselesaikan: {step.note}"
        else:
            text = f"Tanggapan atas pengaduan {ticket}: {step.note}"
        found.append(CitizenMessage(f"reply:{ticket}:{step.action}:{step.at.isoformat()}", text))
    return found


def new_outgoing(outgoing_id: str, channel: ChatChannel, to: str, text: str,
                 now: float) -> OutgoingDoc:
    return OutgoingDoc(_id=outgoing_id, channel=channel, to=to, text=text, status="pending",
                       due_epoch=now, attempts=0, last_error=None, created_epoch=now, version=0)
