"""Transactional outbox on MongoDB: an event is stored with the state that caused it, then
published; whatever is still unpublished after a crash or a broker outage is published by a
sweep. Publishing is at-least-once with stable event ids, so consumers dedupe on ``id``.

Outbox documents carry ``topic``, ``key``, ``event`` (the envelope as JSON-ready dict),
``published`` and ``lease_until``; the owning collection adds its own fields beside them.
``lease_until`` is in epoch seconds: NX-27017 stores a datetime given to ``$set`` as a string,
and a sweep's ``$lt`` then matched it only now and then (a claimed record whose send failed
could be left unswept; a renewed lease could not be compared at all).
"""

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from faststream.kafka import KafkaBroker
from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from shared.contracts import Envelope, utc_now
from shared.kafka import publish_raw
from shared.mongo import Document
from shared.telemetry import TRACE_FIELD, trace_field

log = logging.getLogger(__name__)


def outbox_fields(topic: str, event: Envelope[Any], *, lease_seconds: float,
                  owner: str, now: datetime) -> Document:
    """Fields to merge into a new document: it starts leased to its writer, who publishes it
    at once; others only pick it up if the writer fails to within the lease."""
    return {
        "topic": topic, "key": event.ticket_id, "event": event.model_dump(mode="json"),
        "published": False, "lease_until": now.timestamp() + lease_seconds,
        "lease_owner": owner, **trace_field(event.ticket_id),
    }


class OutboxRelay:
    """Publishes a collection's unpublished events and marks them published."""

    def __init__(self, collection: AsyncCollection[Document], broker: KafkaBroker, *,
                 lease_seconds: float, owner: str, publish_timeout: float = 30.0,
                 keep_positions: bool = False) -> None:
        self.collection = collection
        # Where the broker put each event ({"partition", "offset"} in ``log``), for a check
        # of the log itself later (one write per event instead of one per batch).
        self.keep_positions = keep_positions
        self.broker = broker
        self.lease = lease_seconds
        self.owner = owner
        self.publish_timeout = publish_timeout
        # What this relay holds and has not sent yet (queued, or in flight), by id, with the
        # lease owner it holds it under. A keeper renews these leases while they are held: a
        # send slower than the lease (a loaded machine, a slow broker) is then not also taken
        # by another replica's sweep and sent twice. A process that dies stops renewing, so
        # its documents still go to the sweep once the lease runs out.
        self.held: dict[Any, str] = {}
        self._keeper: asyncio.Task[None] | None = None

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("published", ASCENDING), ("lease_until", ASCENDING)])

    async def publish(self, docs: Sequence[Document]) -> None:
        """Publish these (already stored) documents now, then mark them published. Only the
        ones still held by whoever leased them to the caller are sent: a writer whose lease
        ran out while it was slow finds another replica's sweep already has them."""
        unpublished = [d for d in docs if not d.get("published")]
        self.keep(unpublished)
        try:
            await self._send(unpublished)
        finally:
            self.release(unpublished)

    def keep(self, docs: Sequence[Document]) -> None:
        """Hold these documents' leases until ``release``: renewed while queued or sent."""
        for d in docs:
            if isinstance(d.get("lease_owner"), str):
                self.held[d["_id"]] = d["lease_owner"]
        if self.held and (self._keeper is None or self._keeper.done()):
            self._keeper = asyncio.create_task(self._keep_leases(), name=f"outbox lease keeper "
                                               f"{self.collection.name}")

    def release(self, docs: Sequence[Document]) -> None:
        for d in docs:
            self.held.pop(d["_id"], None)

    async def _keep_leases(self) -> None:
        """Renew the held leases every quarter lease while anything is held. A renewal matches
        only documents still unpublished under the owner they are held by, so one another
        replica claimed is left to it."""
        while self.held:
            await asyncio.sleep(self.lease / 4)
            held = dict(self.held)
            if not held:
                return
            try:
                await self.collection.update_many(
                    {"_id": {"$in": list(held)}, "published": False,
                     "lease_owner": {"$in": sorted(set(held.values()))}},
                    {"$set": {"lease_until": utc_now().timestamp() + self.lease}})
            except Exception as error:  # the store is away: the lease may run out, as it would
                log.warning("outbox %s: renewing %d leases failed: %s", self.collection.name,
                            len(held), error)

    async def _send(self, unpublished: Sequence[Document]) -> None:
        pending = await self._hold(unpublished)
        if not pending:
            return
        self.keep(pending)  # under the owner the hold gave them
        # Bounded: with the broker down a send can wait indefinitely, and a stuck publish
        # would stall the sweep that is meant to retry it.
        async with asyncio.timeout(self.publish_timeout):
            positions = await publish_raw(self.broker, [
                (d["topic"], d.get("key"), json.dumps(d["event"], separators=(",", ":")).encode(),
                 str(d["event"]["type"])) for d in pending],
                traces=[d.get(TRACE_FIELD) for d in pending])
        done = self.published_fields()
        unlease = {"$unset": {"lease_until": "", "lease_owner": ""}}
        if not self.keep_positions:
            await self.collection.update_many({"_id": {"$in": [d["_id"] for d in pending]}},
                                              {"$set": done, **unlease})
            return
        await self.collection.bulk_write([
            UpdateOne({"_id": d["_id"]}, {"$set": {**done, "log": {"partition": partition,
                                                                   "offset": offset}}, **unlease})
            for d, (partition, offset) in zip(pending, positions, strict=True)], ordered=False)

    def published_fields(self) -> Document:
        """What marking a document published sets (a subclass adds what it knows of the
        document by then, in the same write)."""
        return {"published": True, "published_at": utc_now()}

    async def _hold(self, docs: Sequence[Document]) -> list[Document]:
        """Take these documents over from the lease they were handed over under (the
        writer's, or a sweep's claim). One update per document decides it: if a sweep
        claimed one first, its lease owner changed and it is not ours to send. Only the
        owner changes: the lease's end stays, so a send that dies is retried as before.
        Returns the stored documents now held."""
        if not docs:
            return []
        if all(self._freshly_mine(d) for d in docs):
            return list(docs)
        token = f"{self.owner}/send/{uuid.uuid4()}"
        by_owner: dict[str | None, list[Any]] = {}
        for d in docs:
            by_owner.setdefault(d.get("lease_owner"), []).append(d["_id"])
        taken = 0
        for owner, ids in by_owner.items():
            result = await self.collection.update_many({"_id": {"$in": ids}, "lease_owner": owner},
                                                       {"$set": {"lease_owner": token}})
            taken += result.matched_count
        if taken == len(docs):  # all of them: the caller's copies are what is stored
            return [{**d, "lease_owner": token} for d in docs]
        held: list[Document] = await self.collection.find(
            {"_id": {"$in": [d["_id"] for d in docs]}, "lease_owner": token}).to_list(None)
        return held

    def _freshly_mine(self, doc: Document) -> bool:
        """Written by this writer with more than half its lease left: a sweep takes only
        documents whose lease ran out, so none can hold it yet and no write is needed to take
        it over (the usual case: an HTTP submission handed over just after its insert). This
        saves a store update per document; at worst, with clocks of replicas apart by more
        than half a lease, an event is sent twice, which consumers dedupe by its id anyway."""
        lease_until = doc.get("lease_until")
        return (doc.get("lease_owner") == self.owner and isinstance(lease_until, (int, float))
                and lease_until - utc_now().timestamp() > self.lease / 2)

    async def sweep(self) -> int:
        """Claim documents whose lease ran out unpublished, publish them; returns the count."""
        now = utc_now().timestamp()
        token = f"{self.owner}/{uuid.uuid4()}"
        await self.collection.update_many(
            {"published": False, "lease_until": {"$lt": now}},
            {"$set": {"lease_until": now + self.lease, "lease_owner": token}},
        )
        claimed = await self.collection.find(
            {"published": False, "lease_owner": token}).to_list(None)
        if claimed:
            log.info("outbox %s: republishing %d events", self.collection.name, len(claimed))
            await self.publish(claimed)
        return len(claimed)


class PublishQueue:
    """Publishes what concurrent writers hand over in batches: while one batch is being sent,
    the next gathers, so a burst of HTTP submissions costs a few round trips per batch (hold,
    mark published; the audit append of intake's relay) instead of per submission. Nothing
    is lost by queueing: the documents are stored and leased, and the sweep sends whatever a
    process that stopped left in its queue."""

    def __init__(self, relay: OutboxRelay, *, max_batch: int = 500) -> None:
        self.relay = relay
        self.max_batch = max_batch
        self.pending: list[Document] = []
        self.task: asyncio.Task[None] | None = None

    def put(self, docs: Sequence[Document]) -> None:
        queued = [d for d in docs if not d.get("published")]
        self.relay.keep(queued)  # a long queue must not outlast the leases of its tail
        self.pending.extend(queued)
        if self.pending and (self.task is None or self.task.done()):
            self.task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:self.max_batch], self.pending[self.max_batch:]
            try:
                await self.relay.publish(batch)
            except Exception as error:  # stored and leased: the sweep retries them
                log.warning("outbox %s: publishing %d events failed, the sweep will retry: %s",
                            self.relay.collection.name, len(batch), error)

    async def flush(self) -> None:
        """Wait until everything handed over so far was sent (or failed to be)."""
        while self.task is not None and not self.task.done():
            await asyncio.shield(self.task)
