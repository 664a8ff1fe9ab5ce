"""Chat flows: a provider's message joins a stored draft (before the webhook answers), the
drafts that are due go to intake, the agency's messages go back to the citizen.

Nothing is held in memory only: a message is in a draft before the provider hears 200, the
submitter takes due drafts from the store (after a restart too), and messages to citizens
wait in the store until a provider took them. Intake's idempotency by external_id (the
draft's first message id) makes a repeated submission the same complaint."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from services.chat.domain import (
    ANSWER_NOT_WAITING,
    ANSWER_SENT,
    TOO_SHORT,
    ChatChannel,
    DraftDoc,
    Inbound,
    TicketLinkDoc,
    accepted_reply,
    citizen_messages,
    complaint_text,
    decide,
    is_done_word,
    joined,
    masked,
    new_draft,
    new_outgoing,
    opened_reply,
)
from services.chat.providers import ChatSender, MediaRefused, MediaSource, SendFailed
from services.chat.store import ChatStore
from shared.contracts import Envelope, TicketChanged, utc_now
from shared.mongo import Document
from shared.sending import Backoff, SendLoop, retry_delay
from shared.settings import Settings

log = logging.getLogger(__name__)
BATCH = 50
CONFLICT_RETRIES = 5


class Retry(Exception):
    """Intake could not take it now (down, overloaded): try again later."""


@dataclass
class Intake:
    """Intake's HTTP API as a chat channel uses it: its channel keys per chat channel."""

    http: httpx.AsyncClient
    url: str
    keys: Mapping[str, str]

    async def submit(self, draft: DraftDoc) -> tuple[int, dict[str, object]]:
        body: dict[str, object] = {"channel": draft["channel"], "text": complaint_text(draft),
                                   "external_id": draft["_id"]}
        if draft["location"] is not None:
            location = draft["location"]
            body["location"] = {k: v for k, v in location.items() if v is not None}
        return await self._call("POST", "/v1/complaints", draft["channel"], json=body)

    async def attach(self, draft: DraftDoc, content: bytes) -> tuple[int, str]:
        status, body = await self._call("POST", f"/v1/complaints/{draft['ticket_id']}/attachments",
                                        draft["channel"], files={"file": ("photo", content)})
        return status, str(body.get("detail", ""))[:200]

    async def answer(self, draft: DraftDoc, code: str) -> int:
        status, _ = await self._call(
            "POST", f"/v1/complaints/{draft['ticket_id']}/replies", None,
            json={"text": complaint_text(draft)},
            headers={"X-Tracking-Code": code, "Idempotency-Key": draft["_id"]})
        return status

    async def _call(self, method: str, path: str, channel: str | None, *,
                    headers: dict[str, str] | None = None,
                    **more: object) -> tuple[int, dict[str, object]]:
        sent = dict(headers or {})
        if channel is not None:
            sent["X-API-Key"] = self.keys.get(channel, "")
        try:
            answer = await self.http.request(method, self.url + path, headers=sent, **more)  # type: ignore[arg-type]
        except httpx.HTTPError as error:
            raise Retry(f"intake not reached: {type(error).__name__}") from None
        if answer.status_code >= 500 or answer.status_code in (401, 403, 429):
            raise Retry(f"intake answered {answer.status_code}: {answer.text[:200]}")
        body = answer.json() if answer.headers.get("content-type", "").startswith(
            "application/json") else {}
        return answer.status_code, body if isinstance(body, dict) else {}


@dataclass
class Chat:
    settings: Settings
    store: ChatStore
    intake: Intake
    senders: Mapping[ChatChannel, ChatSender]
    media: MediaSource | None
    outbox: SendLoop = field(init=False)  # the messages to citizens (chat_outgoing)

    def __post_init__(self) -> None:
        s = self.settings
        self.outbox = SendLoop(
            self.store.outgoing, self._send,
            Backoff(s.chat_retry_base_seconds, s.chat_retry_max_seconds, s.chat_max_attempts),
            lease_seconds=4 * s.chat_http_timeout_seconds, batch=BATCH,
            describe=lambda m: f"message {m['_id']} on {m['channel']}")

    # --- messages in ------------------------------------------------------------------------

    async def take(self, message: Inbound) -> None:
        """Store one provider message where it belongs; a repeat changes nothing."""
        now = utc_now().timestamp()
        if await self.store.seen(message.key, now):
            log.info("%s message %s seen before: ignored", message.channel, message.message_id)
            return
        for _ in range(CONFLICT_RETRIES):
            if await self._apply(message, now):
                await self.store.applied(message.key)
                return
        raise RuntimeError(f"draft of {message.key} kept changing; the provider will retry")

    async def _apply(self, message: Inbound, now: float) -> bool:
        s = self.settings
        draft = await self.store.open_draft(message.channel, message.sender)
        waiting = None if draft else await self.store.waiting_ticket(message.channel, message.sender)
        decision = decide(message, draft_open=draft is not None,
                          waiting_ticket=waiting["_id"] if waiting else None,
                          done_words=s.chat_done_words)
        who = masked(message.sender)
        if decision.step == "reply":
            log.info("%s message %s from %s (%s) needs no draft: replying", message.channel,
                     message.message_id, who, message.raw_type)
            await self._say(f"about:{message.key}", message.channel, message.sender,
                            decision.reply or "", now)
            return True
        if decision.step == "join" and draft is not None:
            done = is_done_word(message.text, s.chat_done_words)
            log.info("%s message %s (%s) joins draft %s%s", message.channel, message.message_id,
                     message.kind, draft["_id"], ", which is sent now" if done else "")
            return await self.store.save_draft(joined(draft, message, now, done=done),
                                               read_version=draft["version"])
        if decision.step == "answer" and waiting is not None:
            log.info("%s message %s from %s answers ticket %s", message.channel,
                     message.message_id, who, waiting["_id"])
            await self.store.add_draft(new_draft(message, now, s.chat_window_seconds,
                                                 kind="answer", ticket_id=waiting["_id"]))
            return True
        log.info("%s message %s from %s opens draft %s", message.channel, message.message_id,
                 who, message.key)
        await self.store.add_draft(new_draft(message, now, s.chat_window_seconds))
        await self._say(f"opened:{message.key}", message.channel, message.sender,
                        opened_reply(message.channel, s.chat_window_seconds,
                                     s.chat_done_words[0] if s.chat_done_words else "kirim"), now)
        return True

    # --- drafts to intake -------------------------------------------------------------------

    async def submit_due(self) -> int:
        """One submitter turn: every due draft to intake (or retried later)."""
        now = utc_now().timestamp()
        due = await self.store.due_drafts(now, BATCH)
        for draft in due:
            await self._submit(draft, now)
        return len(due)

    async def _submit(self, draft: DraftDoc, now: float) -> None:
        lease = now + 4 * self.settings.chat_http_timeout_seconds
        claimed = DraftDoc(**{**draft, "status": "submitting", "due_epoch": lease})
        if not await self.store.save_draft(claimed, read_version=draft["version"]):
            return  # a message joined it meanwhile, or another submitter took it
        claimed["version"] += 1
        try:
            done = await (self._send_answer(claimed) if claimed["kind"] == "answer"
                          else self._send_complaint(claimed))
        except Retry as error:  # photos uploaded so far are saved: a lost race waits out the lease
            attempts = claimed["attempts"] + 1
            wait = retry_delay(attempts, base=self.settings.chat_retry_base_seconds,
                               ceiling=self.settings.chat_retry_max_seconds)
            log.warning("draft %s not submitted (attempt %d), again in %.0f s: %s",
                        claimed["_id"], attempts, wait, error)
            done = DraftDoc(**{**claimed, "attempts": attempts, "due_epoch": now + wait,
                               "last_error": str(error)[:300]})
        await self.store.save_draft(done, read_version=done["version"])

    async def _send_complaint(self, draft: DraftDoc) -> DraftDoc:
        now = utc_now().timestamp()
        if draft["ticket_id"] is None:
            status, body = await self.intake.submit(draft)
            if status == 422 or not complaint_text(draft):
                log.info("draft %s refused by intake (%d): %s", draft["_id"], status,
                         str(body.get("detail", ""))[:300])
                await self._say(f"refused:{draft['_id']}", draft["channel"], draft["sender"],
                                TOO_SHORT, now)
                return DraftDoc(**{**draft, "status": "refused", "due_epoch": None})
            if status != 202:
                raise Retry(f"intake answered {status}")
            link = await self.store.link(TicketLinkDoc(
                _id=str(body["ticket_id"]), tenant=self.settings.tenant, channel=draft["channel"],
                sender=draft["sender"], tracking_code=str(body["tracking_code"]),
                status="received", version=0))
            draft = DraftDoc(**{**draft, "ticket_id": link["_id"]})
            log.info("draft %s submitted as ticket %s", draft["_id"], link["_id"])
        draft = await self._upload_photos(draft)
        known = await self.store.ticket(str(draft["ticket_id"]), self.settings.tenant)
        code = known["tracking_code"] if known else "-"
        await self._say(f"accepted:{draft['_id']}", draft["channel"], draft["sender"],
                        accepted_reply(str(draft["ticket_id"]), code, draft["photos_refused"]), now)
        return DraftDoc(**{**draft, "status": "submitted", "due_epoch": None, "last_error": None})

    async def _upload_photos(self, draft: DraftDoc) -> DraftDoc:
        """Each photo once; one too large or of a refused type is counted, not retried."""
        for media_id in draft["photos"]:
            if media_id in draft["photos_done"]:
                continue
            refused = await self._upload(draft, media_id)
            draft = DraftDoc(**{**draft, "photos_done": [*draft["photos_done"], media_id],
                                "photos_refused": draft["photos_refused"] + refused})
            await self.store.save_draft(draft, read_version=draft["version"])
            draft["version"] += 1
        return draft

    async def _upload(self, draft: DraftDoc, media_id: str) -> int:
        if self.media is None:
            return 1
        try:
            content = await self.media.fetch(media_id, self.settings.attachment_max_bytes)
        except MediaRefused as refused:
            log.warning("draft %s: photo %s refused: %s", draft["_id"], media_id, refused)
            return 1
        except httpx.HTTPError as error:
            raise Retry(f"photo {media_id} not fetched: {type(error).__name__}") from None
        status, why = await self.intake.attach(draft, content)
        if status in (413, 415, 422):
            log.warning("draft %s: intake refused photo %s (%d): %s", draft["_id"], media_id,
                        status, why)
            return 1
        if status != 201:
            raise Retry(f"intake answered {status} to photo {media_id}")
        return 0

    async def _send_answer(self, draft: DraftDoc) -> DraftDoc:
        now, ticket = utc_now().timestamp(), str(draft["ticket_id"])
        link = await self.store.ticket(ticket, self.settings.tenant)
        status = 404 if link is None else await self.intake.answer(draft, link["tracking_code"])
        if status == 202:
            log.info("answer %s sent to ticket %s", draft["_id"], ticket)
            reply = ANSWER_SENT
        else:
            log.info("answer %s to ticket %s refused by intake (%d)", draft["_id"], ticket, status)
            reply = ANSWER_NOT_WAITING
        await self._say(f"answered:{draft['_id']}", draft["channel"], draft["sender"],
                        reply.format(ticket=ticket), now)
        return DraftDoc(**{**draft, "status": "submitted" if status == 202 else "refused",
                           "due_epoch": None})

    # --- the agency's messages back -----------------------------------------------------------

    async def take_changed(self, events: Sequence[Envelope[TicketChanged]]) -> None:
        now = utc_now().timestamp()
        for event in events:
            link = await self.store.ticket(str(event.ticket_id), event.tenant)
            if link is None:
                continue  # not a ticket of a chat channel: nothing is ever sent for it
            await self.store.note_state(link["_id"], event.data.status, event.data.version)
            messages = [new_outgoing(m.outgoing_id, link["channel"], link["sender"], m.text, now)
                        for m in citizen_messages(event)]
            added = await self.store.add_outgoing(messages)
            if added:
                log.info("ticket %s: %d message(s) for the citizen queued", link["_id"], added)

    # --- messages out -------------------------------------------------------------------------

    async def _say(self, outgoing_id: str, channel: ChatChannel, to: str, text: str,
                   now: float) -> None:
        await self.store.add_outgoing([new_outgoing(outgoing_id, channel, to, text, now)])

    async def send_due(self) -> int:
        return await self.outbox.send_due()

    async def _send(self, message: Document) -> str | None:
        sender = self.senders.get(message["channel"])
        if sender is None:
            return f"no sender for channel {message['channel']}"
        try:
            await sender.send_text(message["to"], message["text"])
        except SendFailed as failed:
            return str(failed)
        return None
