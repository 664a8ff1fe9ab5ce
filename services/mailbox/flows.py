"""Mailbox flows: keep a received mail, submit the stored ones to intake, turn the agency's
messages into mails, and send the stored mails through the relay.

The SMTP server answers 250 only once the mail is stored; submission happens afterwards, in
a loop over the stored mails, so a mailbox that dies between the two submits the mail after
its restart (intake keeps one complaint per external_id, so a repeat is harmless). Every
mail sent is stored first under a stable id and sent by the sender loop, with retries."""

import asyncio
import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import aiosmtplib

from services.mailbox.domain import (
    InboundDoc,
    MailRefused,
    OutgoingDoc,
    OutgoingKind,
    ReadMail,
    ThreadDoc,
    agency_body,
    agency_messages,
    answer_received_body,
    complaint_text,
    complaint_title,
    compose,
    follow_up_body,
    mail_id,
    masked,
    outgoing_message_id,
    read_mail,
    receipt_body,
    refused_body,
    reply_subject,
    ticket_named,
)
from services.mailbox.intake_client import IntakeClient, IntakeUnavailable, SubmissionRefused
from services.mailbox.store import MailboxStore, thread_key
from shared.contracts import Envelope, TicketChanged, utc_now
from shared.mongo import Document
from shared.privacy import mask_emails
from shared.sending import Backoff, SendLoop, retry_delay
from shared.settings import Settings

log = logging.getLogger(__name__)  # mails by id (a hash), addresses masked: never an address
BATCH = 50


@dataclass
class Mailbox:
    settings: Settings
    tenant: str
    store: MailboxStore
    intake: IntakeClient
    outbox: SendLoop = field(init=False)  # the mails to citizens (mailbox_outgoing)

    def __post_init__(self) -> None:
        s = self.settings
        self.outbox = SendLoop(
            self.store.outgoing, self._send,
            Backoff(s.mailbox_retry_base_seconds, s.mailbox_retry_max_seconds, s.mailbox_max_attempts),
            lease_seconds=s.mailbox_lease_seconds, batch=BATCH,
            describe=lambda m: f"mail {m['_id'][:60]} to {masked(m['to'])}")

    @property
    def sender(self) -> str:
        return self.settings.mailbox_from or (self.settings.mailbox_addresses or ["mailbox@localhost"])[0]

    # --- inbound -----------------------------------------------------------------------------

    async def keep(self, raw: bytes, envelope_sender: str | None) -> ReadMail:
        """Store a received mail for submission (MailRefused: the SMTP server refuses it)."""
        mail = read_mail(raw, envelope_sender)
        if mail.automatic:
            log.info("mail %s is an automatic reply or bounce: not a complaint, dropped",
                     mail_id(mail.message_id)[:12])
            return mail
        now = utc_now()
        new = await self.store.keep(InboundDoc(
            _id=mail_id(mail.message_id), tenant=self.tenant, message_id=mail.message_id,
            raw_base64=base64.b64encode(raw).decode(),
            envelope_sender=envelope_sender,
            received_at=now, status="stored", due_epoch=now.timestamp(), attempts=0,
            last_error=None, ticket_id=None, attachments_sent=0, attachments_refused=[], version=1))
        log.info("mail %s from %s stored%s", mail_id(mail.message_id)[:12], masked(mail.sender),
                 "" if new else " before (the same Message-ID): kept once")
        return mail

    async def submit_due(self) -> int:
        """One submission turn over the stored mails that are due."""
        now = utc_now().timestamp()
        due = await self.store.inbound_due(now, BATCH)
        for found in due:
            doc = await self.store.claim_inbound(found, now + self.settings.mailbox_lease_seconds)
            if doc is None:
                continue  # another mailbox took it
            doc = InboundDoc(**{**doc, "version": doc["version"] + 1})
            try:
                await self._submit(doc)
            except Exception as error:  # one mail's fault must not hold up the others
                await self._later(doc, f"submission failed: {type(error).__name__}")
        return len(due)

    async def _submit(self, doc: InboundDoc) -> None:
        try:
            mail = read_mail(base64.b64decode(doc["raw_base64"]), doc["envelope_sender"])
            done = await self._into_intake(doc, mail)
        except MailRefused as refused:  # read once already: only a changed reader refuses it now
            done = InboundDoc(**{**doc, "status": "refused", "due_epoch": None,
                                 "last_error": refused.reply})
        except IntakeUnavailable as error:
            await self._later(doc, str(error))
            return
        # done["version"]: each attachment sent saved the mail once more on the way.
        if not await self.store.save_inbound(done, read_version=done["version"]):
            log.warning("mail %s changed while it was being submitted", doc["_id"][:12])
            return
        log.info("mail %s %s (ticket %s)", doc["_id"][:12], done["status"], done["ticket_id"] or "-")

    async def _later(self, doc: InboundDoc, error: str) -> None:
        # As stored now: the attachments sent before the failure moved its version on.
        doc = await self.store.inbound_mail(doc["_id"]) or doc
        attempts = doc["attempts"] + 1
        wait = retry_delay(attempts, base=self.settings.mailbox_retry_base_seconds,
                           ceiling=self.settings.mailbox_retry_max_seconds)
        log.warning("mail %s not submitted (attempt %d), again in %.0f s: %s", doc["_id"][:12],
                    attempts, wait, error)
        await self.store.save_inbound(InboundDoc(**{
            **doc, "attempts": attempts, "last_error": error,
            "due_epoch": utc_now().timestamp() + wait}), read_version=doc["version"])

    async def _into_intake(self, doc: InboundDoc, mail: ReadMail) -> InboundDoc:
        ticket = ticket_named(mail)
        thread = await self.store.thread(self.tenant, ticket) if ticket else None
        # Only the citizen who wrote the complaint answers in its thread: a tracking number in
        # someone else's mail makes that mail a complaint of its own.
        if thread is not None and thread["address"].lower() == mail.sender.lower():
            return await self._answer(doc, mail, thread)
        return await self._new_complaint(doc, mail)

    async def _new_complaint(self, doc: InboundDoc, mail: ReadMail) -> InboundDoc:
        try:
            submitted = await self.intake.submit(text=complaint_text(mail), title=complaint_title(mail),
                                                 external_id=f"mail-{doc['_id']}")
        except SubmissionRefused as refused:
            await self._reply(doc, mail, "refused", None, None, refused_body(str(refused)))
            return InboundDoc(**{**doc, "status": "refused", "due_epoch": None,
                                 "last_error": str(refused)})
        thread = await self.store.add_thread(ThreadDoc(
            _id=thread_key(self.tenant, submitted.ticket_id), tenant=self.tenant,
            ticket_id=submitted.ticket_id, address=mail.sender, tracking_code=submitted.tracking_code,
            subject=mail.subject, root_message_id=mail.message_id))
        doc = await self._attachments(doc, mail, submitted.ticket_id)
        await self._reply(doc, mail, "receipt", thread, submitted.ticket_id,
                          receipt_body(submitted.ticket_id, thread["tracking_code"],
                                       doc["attachments_refused"]))
        return InboundDoc(**{**doc, "status": "submitted", "due_epoch": None, "last_error": None,
                             "ticket_id": submitted.ticket_id})

    async def _answer(self, doc: InboundDoc, mail: ReadMail, thread: ThreadDoc) -> InboundDoc:
        ticket = thread["ticket_id"]
        try:
            outcome = await self.intake.answer(ticket, thread["tracking_code"],
                                               mask_emails(mail.text or mail.subject)[:4000],
                                               key=f"mail-{doc['_id']}")
        except SubmissionRefused as refused:
            outcome = "not_waiting"
            log.warning("mail %s: intake refused the answer (%s); kept as a follow-up",
                        doc["_id"][:12], refused)
        doc = await self._attachments(doc, mail, ticket)
        if outcome == "applied":
            await self._reply(doc, mail, "answer_received", thread, ticket, answer_received_body(ticket))
            return InboundDoc(**{**doc, "status": "answered", "due_epoch": None, "ticket_id": ticket})
        await self._reply(doc, mail, "follow_up", thread, ticket, follow_up_body(ticket))
        return InboundDoc(**{**doc, "status": "follow_up", "due_epoch": None, "ticket_id": ticket})

    async def _attachments(self, doc: InboundDoc, mail: ReadMail, ticket_id: str) -> InboundDoc:
        """Send the attachments intake does not have yet, noting progress after each one, so
        a retry after a failure sends none twice."""
        for number in range(doc["attachments_sent"], len(mail.attachments)):
            refusal = await self.intake.upload(ticket_id, mail.attachments[number])
            refused = doc["attachments_refused"] + ([f"lampiran {number + 1}: {refusal}"] if refusal else [])
            progressed = InboundDoc(**{**doc, "attachments_sent": number + 1,
                                       "attachments_refused": refused})
            if not await self.store.save_inbound(progressed, read_version=doc["version"]):
                raise IntakeUnavailable("the mail changed while its attachments were sent")
            doc = InboundDoc(**{**progressed, "version": doc["version"] + 1})
            if refusal:
                log.warning("mail %s: attachment %d refused by intake: %s", doc["_id"][:12],
                            number + 1, refusal)
        return doc

    async def _reply(self, doc: InboundDoc, mail: ReadMail, kind: OutgoingKind,
                     thread: ThreadDoc | None, ticket_id: str | None, body: str) -> None:
        outgoing_id = f"{kind}:{doc['_id']}"
        subject = reply_subject(ticket_id, mail.subject) if ticket_id else f"Re: {mail.subject}"[:200]
        refs = [*mail.thread_refs, mail.message_id][-20:]
        await self.store.add_outgoing([self._outgoing(
            outgoing_id, kind, ticket_id, mail.sender, subject, body, in_reply_to=mail.message_id,
            references=refs)])

    def _outgoing(self, outgoing_id: str, kind: OutgoingKind, ticket_id: str | None, to: str,
                  subject: str, body: str, *, in_reply_to: str | None,
                  references: list[str]) -> OutgoingDoc:
        now = utc_now()
        domain = self.sender.rpartition("@")[2] or "localhost"
        return OutgoingDoc(
            _id=outgoing_id, tenant=self.tenant, ticket_id=ticket_id, kind=kind, to=to,
            subject=subject, body=body,
            message_id=outgoing_message_id(outgoing_id, ticket_id, domain),
            in_reply_to=in_reply_to, references=references, status="pending", attempts=0,
            due_epoch=now.timestamp(), last_error=None, created_at=now, sent_at=None, version=1)

    # --- the agency's messages ---------------------------------------------------------------

    async def take_changed(self, events: Sequence[Envelope[TicketChanged]]) -> None:
        """Each message the agency wrote for a citizen who complained by mail, as a mail in
        the complaint's thread. Tickets of other channels are not the mailbox's."""
        threads = await self.store.threads_of(
            [thread_key(e.tenant, str(e.ticket_id)) for e in events if e.ticket_id])
        mails: list[OutgoingDoc] = []
        for event in events:
            thread = threads.get(thread_key(event.tenant, str(event.ticket_id)))
            if thread is None:
                continue
            ticket = thread["ticket_id"]
            for message in agency_messages(ticket, event.data.history):
                mails.append(self._outgoing(
                    f"agency:{message.source}", "agency", ticket, thread["address"],
                    reply_subject(ticket, thread["subject"]), agency_body(ticket, message),
                    in_reply_to=thread["root_message_id"], references=[thread["root_message_id"]]))
        added = await self.store.add_outgoing(mails)
        if added:
            log.info("%d agency messages to send by mail (%d known before)", added, len(mails) - added)

    # --- the sender --------------------------------------------------------------------------

    async def send_due(self) -> int:
        return await self.outbox.send_due()

    async def _send(self, doc: Document) -> str | None:
        return await self._relay(cast(OutgoingDoc, doc))

    async def _relay(self, doc: OutgoingDoc) -> str | None:
        s = self.settings
        password = s.mailbox_relay_password.get_secret_value() if s.mailbox_relay_password else None
        try:
            async with asyncio.timeout(s.mailbox_send_timeout_seconds):
                await aiosmtplib.send(
                    compose(doc, self.sender), hostname=s.mailbox_relay_host,
                    port=s.mailbox_relay_port, username=s.mailbox_relay_username, password=password,
                    start_tls=s.mailbox_relay_starttls, timeout=s.mailbox_send_timeout_seconds)
        except TimeoutError:
            return f"the relay did not answer within {s.mailbox_send_timeout_seconds:g} s"
        except aiosmtplib.SMTPResponseException as error:
            return f"the relay refused: {error.code}"  # its text may quote the address
        except (aiosmtplib.SMTPException, OSError) as error:
            return f"the relay failed: {type(error).__name__}"
        return None
