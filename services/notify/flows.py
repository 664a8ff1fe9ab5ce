"""Notification flows: turn consumed events into stored deliveries, and send the due ones.

Taking an event only stores (idempotently, by delivery id); the sender sends what the store
says is due, so a redelivered event or a restart never sends twice, a failed delivery is
retried on the store's schedule (which survives restarts), and a deferred one waits there."""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import quote
from uuid import uuid4

import apprise

from services.notify.directory import TO, Directory, TenantDirectory
from services.notify.domain import (
    CITIZEN,
    DeliveryDoc,
    assignment_notices,
    citizen_contact,
    citizen_deliveries,
    escalation_notices,
    escalation_wanted,
    person_deliveries,
    reply_notices,
    step_id,
)
from services.notify.store import AckDoc, NotifyStore
from shared.contracts import (
    Complaint,
    Envelope,
    Escalation,
    EscalationAcknowledged,
    Priority,
    TicketChanged,
    TicketRouted,
    utc_now,
)
from shared.sending import after_attempt
from shared.settings import Settings

log = logging.getLogger(__name__)  # Apprise's own logging is silenced in directory.py


class Sender(Protocol):
    async def send(self, url: str, title: str, body: str) -> str | None:
        """Deliver; None when sent, else why not (in words without the address)."""


@dataclass
class AppriseSender:
    """Every channel through Apprise: the URL's scheme picks it (mailto, tgram, json...)."""

    timeout_seconds: float

    async def send(self, url: str, title: str, body: str) -> str | None:
        notifier = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
        if not notifier.add(url):
            return "the contact URL is not one Apprise understands"
        try:
            async with asyncio.timeout(self.timeout_seconds):
                result = await notifier.async_notify(body=body, title=title)
        except TimeoutError:
            return f"no answer within {self.timeout_seconds:g} s"
        return None if result else "the channel refused the message or could not be reached"


@dataclass
class Notifier:
    settings: Settings
    directory: Directory
    store: NotifyStore
    sender: Sender

    # --- events --------------------------------------------------------------------------

    async def take_escalations(self, events: Sequence[Envelope[Escalation]]) -> None:
        steps = {e.id: step_id(str(e.ticket_id), e.data.assignment, e.data.clock, e.data.level)
                 for e in events}
        acknowledged = await self.store.acknowledged(list(steps.values()))
        now = utc_now()
        deliveries: list[DeliveryDoc] = []
        for event in events:
            if not escalation_wanted(steps[event.id], acknowledged):
                continue
            directory = self.directory.of(event.tenant)
            priority = await self.store.priority(event.tenant, str(event.ticket_id))
            notices, unstaffed = escalation_notices(event, directory,
                                                    urgent=priority == Priority.URGENT.value)
            if unstaffed:
                log.warning("escalation %s of %s: nobody in the directory holds %s", event.id,
                            event.data.agency, ", ".join(unstaffed))
            deliveries += [d for n in notices for d in person_deliveries(n, directory, now)]
        await self._add(deliveries)

    async def take_acks(self, events: Sequence[Envelope[EscalationAcknowledged]]) -> None:
        acks = [AckDoc(_id=step_id(str(e.ticket_id), e.data.assignment, e.data.clock, e.data.level),
                       tenant=e.tenant, acknowledged_at=e.data.acknowledged_at) for e in events]
        await self.store.acknowledge(acks)
        for ack in acks:
            await self._cancel_step(ack["_id"])

    async def take_routed(self, events: Sequence[Envelope[TicketRouted]]) -> None:
        now = utc_now()
        deliveries: list[DeliveryDoc] = []
        for event in events:
            await self.store.note_priority(event.tenant, str(event.ticket_id),
                                           event.data.priority.value)
            directory = self.directory.of(event.tenant)
            deliveries += [d for n in assignment_notices(event, directory)
                           for d in person_deliveries(n, directory, now)]
        await self._add(deliveries)

    async def take_received(self, events: Sequence[Envelope[Complaint]]) -> None:
        for event in events:
            contact = citizen_contact(event.data)
            if contact is not None:  # an anonymous or confidential reporter is never stored
                await self.store.note_citizen(event.tenant, event.data.ticket_id, contact)

    async def take_changed(self, events: Sequence[Envelope[TicketChanged]]) -> None:
        now = utc_now()
        deliveries: list[DeliveryDoc] = []
        for event in events:
            if event.data.priority is not None:
                await self.store.note_priority(event.tenant, str(event.ticket_id),
                                               event.data.priority.value)
            notices = reply_notices(event)
            if not notices:
                continue
            contact = await self.store.citizen(event.tenant, str(event.ticket_id))
            if contact is None:
                continue
            directory = self.directory.of(event.tenant)
            deliveries += [d for n in notices for d in citizen_deliveries(n, directory, contact, now)]
        await self._add(deliveries)

    async def _add(self, deliveries: list[DeliveryDoc]) -> None:
        added = await self.store.add(deliveries)
        if added:
            log.info("%d new deliveries stored (%d already known)", added, len(deliveries) - added)

    async def _cancel_step(self, step: str) -> None:
        now = utc_now().timestamp()
        for delivery in await self.store.open_of_step(step):
            if delivery["lease_epoch"] is not None and delivery["lease_epoch"] > now:
                continue  # a sender holds it: it sees the acknowledgement before sending
            await self._finish_cancelled(delivery, delivery["version"])

    async def _finish_cancelled(self, delivery: DeliveryDoc, version: int) -> None:
        cancelled = DeliveryDoc(**{**delivery, "status": "cancelled", "due_epoch": None,
                                   "lease_owner": None, "lease_epoch": None})
        if await self.store.save(cancelled, read_version=version):
            log.info("delivery %s cancelled: its escalation was acknowledged", delivery["_id"])

    # --- the sender ----------------------------------------------------------------------

    async def send_due(self) -> int:
        """One sender turn: lease the due deliveries, send each, record each outcome."""
        settings = self.settings
        token = f"{settings.instance_id}/{uuid4()}"
        claimed = await self.store.claim_due(utc_now().timestamp(), limit=settings.notify_batch_size,
                                             token=token, lease_seconds=settings.notify_lease_seconds)
        acknowledged = await self.store.acknowledged([d["step"] for d in claimed if d["step"]])
        await asyncio.gather(*(self._deliver(d, acknowledged) for d in claimed))
        return len(claimed)

    async def _deliver(self, delivery: DeliveryDoc, acknowledged: set[str]) -> None:
        if delivery["step"] is not None and delivery["step"] in acknowledged:
            await self._finish_cancelled(delivery, delivery["version"])
            return
        url = await self._address(delivery)
        if url is None:
            error: str | None = "no address for this contact any more (directory or citizen)"
        else:
            error = await self._send(url, delivery)
        attempts = delivery["attempts"] + 1
        now = utc_now()
        outcome = after_attempt(attempts, error, now.timestamp(),
                                max_attempts=self.settings.notify_max_attempts,
                                base=self.settings.notify_retry_base_seconds,
                                ceiling=self.settings.notify_retry_max_seconds)
        done = DeliveryDoc(**{**delivery, "status": outcome.status, "attempts": attempts,
                              "due_epoch": outcome.due_epoch, "last_error": outcome.last_error,
                              "sent_at": now if error is None else None,
                              "lease_owner": None, "lease_epoch": None})
        if not await self.store.save(done, read_version=delivery["version"]):
            log.warning("delivery %s changed while it was being sent", delivery["_id"])
        _log_outcome(done, error)

    async def _send(self, url: str, delivery: DeliveryDoc) -> str | None:
        try:
            return await self.sender.send(url, delivery["title"], delivery["body"])
        except Exception as error:  # a channel's own fault counts as a failed attempt
            # The type only: a channel's message may quote the address.
            log.warning("delivery %s: the channel raised %s", delivery["_id"], type(error).__name__)
            return f"the channel raised {type(error).__name__}"

    async def _address(self, delivery: DeliveryDoc) -> str | None:
        directory = self.directory.of(delivery["tenant"])
        if delivery["recipient"] != CITIZEN:
            person = directory.people.get(delivery["recipient"])
            return None if person is None else person.contacts.get(delivery["contact"])
        return await self._citizen_address(directory, delivery)

    async def _citizen_address(self, directory: TenantDirectory, delivery: DeliveryDoc) -> str | None:
        contact = await self.store.citizen(delivery["tenant"], delivery["ticket_id"])
        template = getattr(directory.citizens, delivery["contact"], None)
        address = getattr(contact, delivery["contact"], None) if contact else None
        if not template or not address:
            return None
        return str(template).replace(TO, quote(str(address), safe="@+"))


def _log_outcome(delivery: DeliveryDoc, error: str | None) -> None:
    # By delivery id (notice, staff id or "citizen", contact name): never an address.
    if error is None:
        log.info("delivery %s sent (attempt %d)", delivery["_id"], delivery["attempts"])
    elif delivery["status"] == "failed":
        log.error("delivery %s failed for good after %d attempts: %s", delivery["_id"],
                  delivery["attempts"], error)
    else:
        log.warning("delivery %s attempt %d failed, retrying at %s: %s", delivery["_id"],
                    delivery["attempts"], _when(delivery["due_epoch"]), error)


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch).astimezone().isoformat()
