"""The audit log in MongoDB: append-only, hash-chained per tenant, safe for concurrent writers.

Collections:
- ``audit_log``: the entries, ``_id = "<tenant>:<seq, 12 digits>"``, so one entry per seq
  (the chain cannot fork), with a unique index on (tenant, key) (a key is appended once);
- ``audit_keys``: ``_id = "<tenant>:<key>"``, a fast lookup of the keys already appended;
- ``audit_heads``: ``_id = <tenant>``, a hint of the tenant's last entry (``seq``, ``hash``).

No transaction is needed (NX-27017's are not safe between concurrent sessions): an append
seals its entries after the last entry it found and inserts them in order; the first seq or
key another writer took stops the insert there, and it retries after that writer's entries.
Entries are only ever inserted right after an existing one, so the chain has no gaps. The
hint and the key lookups are written after the entries; an append first walks forward from
the hint (by ``_id``) and completes them for any entry a crashed writer left behind. Every
lookup is by ``_id``: NX-27017 answers only those from an index whatever the log's size.
"""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.audit import (
    GENESIS,
    AuditEntry,
    AuditRecord,
    BrokenLink,
    ChainCheck,
    ChainWalker,
    seal_all,
)
from shared.contracts import utc_now
from shared.mongo import DUPLICATE_KEY, Document, insert_new

LOG = "audit_log"
KEYS = "audit_keys"
HEADS = "audit_heads"
_ATTEMPTS = 200  # a failed attempt means another writer appended: progress, not a livelock
_PROBE = 64  # entries looked up at once when walking forward from the head hint


class AuditAppendError(RuntimeError):
    """The log could not be appended to (its head is damaged or never free)."""


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


def entry_id(tenant: str, seq: int) -> str:
    return f"{tenant}:{seq:012d}"


def _key_id(tenant: str, key: str) -> str:
    return f"{tenant}:{key}"


class AuditLog:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.log = db[LOG]
        self.keys = db[KEYS]
        self.heads = db[HEADS]
        self._heads: dict[str, Head] = {}  # the last entry this process appended or walked over
        self._indexed = False

    async def ensure_indexes(self) -> None:
        await self.log.create_index([("tenant", ASCENDING), ("key", ASCENDING)], unique=True)
        await self.log.create_index([("tenant", ASCENDING), ("ticket_id", ASCENDING)])

    # --- writing ----------------------------------------------------------------------------

    async def append(self, records: Sequence[AuditRecord]) -> int:
        """Append records (in this order, per tenant) whose keys are not in the log yet; returns
        how many were new. Uncontended, an append is three round trips of latency whatever the
        batch's size."""
        if not self._indexed:  # the unique (tenant, key) index is what makes appends idempotent
            await self.ensure_indexes()
            self._indexed = True
        added = 0
        by_tenant: dict[str, dict[str, AuditRecord]] = {}
        for record in records:
            by_tenant.setdefault(record.tenant, {}).setdefault(record.key, record)
        for tenant, mine in by_tenant.items():
            added += await self._append(tenant, list(mine.values()))
        return added

    async def _append(self, tenant: str, records: list[AuditRecord]) -> int:
        added, pending = 0, records
        stopped_at: tuple[Head, str] | None = None  # (the head then, the key not inserted)
        for attempt in range(_ATTEMPTS):
            head = await self._catch_up(tenant)
            if stopped_at is not None:  # new keys usually: look them up only after a shortfall
                pending = await self._not_yet_appended(tenant, pending)
                if head == stopped_at[0]:  # no entry took its seq, so its key was taken
                    pending = [r for r in pending if r.key != stopped_at[1]]
                if not pending:
                    return added
            entries = seal_all(pending, seq=head.seq, prev_hash=head.hash, now=utc_now())
            inserted = await self._insert(entries)
            if inserted:
                await self._register(tenant, entries[:inserted])
                added += inserted
                head = Head(entries[inserted - 1]["seq"], entries[inserted - 1]["hash"])
            if inserted == len(pending):
                return added
            stopped_at, pending = (head, pending[inserted].key), pending[inserted:]
            await asyncio.sleep(random.uniform(0, 0.002 * min(attempt + 1, 25)))
        raise AuditAppendError(f"audit log of {tenant}: no free seq after {_ATTEMPTS} attempts")

    async def _insert(self, entries: list[AuditEntry]) -> int:
        """Insert in seq order; stops at the first seq or key already taken. Returns how many
        went in (a prefix)."""
        docs = [{"_id": entry_id(e["tenant"], e["seq"]), **e} for e in entries]
        try:
            await self.log.insert_many(docs, ordered=True)
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details["writeErrors"]):
                raise
            return int(error.details.get("nInserted", 0))
        return len(docs)

    async def _register(self, tenant: str, entries: Sequence[AuditEntry | Document]) -> None:
        """Key lookups and the head hint for entries already in the log."""
        last = entries[-1]
        self._heads[tenant] = Head(int(last["seq"]), str(last["hash"]))
        keys = insert_new(self.keys, [{"_id": _key_id(tenant, e["key"]), "seq": e["seq"]}
                                      for e in entries])
        await asyncio.gather(keys, self._move_hint(tenant, last))

    async def _move_hint(self, tenant: str, last: AuditEntry | Document) -> None:
        # Only forward: a slower writer never moves the hint back (its upsert collides).
        with contextlib.suppress(DuplicateKeyError):
            await self.heads.update_one({"_id": tenant, "seq": {"$lt": last["seq"]}},
                                        {"$set": {"seq": last["seq"], "hash": last["hash"]}},
                                        upsert=True)

    async def _catch_up(self, tenant: str) -> Head:
        """The last entry: from the last one this process saw (or the hint), walk forward over
        entries written since (by concurrent writers, or by one that crashed before
        registering them)."""
        head = self._heads.get(tenant) or await self.head(tenant)
        while True:
            ids = [entry_id(tenant, n) for n in range(head.seq + 1, head.seq + 1 + _PROBE)]
            found = {d["seq"]: d for d in await self.log.find({"_id": {"$in": ids}}).to_list(None)}
            run: list[Document] = []
            while head.seq + len(run) + 1 in found:
                run.append(found[head.seq + len(run) + 1])
            if not run:
                return head
            await self._register(tenant, run)
            head = Head(int(run[-1]["seq"]), str(run[-1]["hash"]))
            if len(run) == _PROBE:  # far behind: the hint may be nearer the end
                hint = await self.head(tenant)
                head = hint if hint.seq > head.seq else head
            else:
                return head

    async def _not_yet_appended(self, tenant: str, records: list[AuditRecord]) -> list[AuditRecord]:
        ids = [_key_id(tenant, r.key) for r in records]
        found = {d["_id"] for d in await self.keys.find({"_id": {"$in": ids}}, {"_id": 1}).to_list(None)}
        return [r for r, i in zip(records, ids, strict=True) if i not in found]

    async def head(self, tenant: str) -> Head:
        """The head hint: seq and hash of the tenant's last registered entry (0 and GENESIS
        before the first)."""
        doc = await self.heads.find_one({"_id": tenant})
        if doc is None:
            return Head(0, GENESIS)
        return Head(int(doc["seq"]), str(doc["hash"]))

    # --- reading ----------------------------------------------------------------------------

    async def walk(self, tenant: str, *, start: int = 1, batch: int = 500) -> AsyncIterator[Document]:
        """Entries in seq order from ``start``, fetched by id in batches; stops at the first
        batch with no entry at all (a gap inside a batch shows as a jump in seq)."""
        while True:
            ids = [entry_id(tenant, n) for n in range(start, start + batch)]
            docs = await self.log.find({"_id": {"$in": ids}}).to_list(None)
            if not docs:
                return
            for doc in sorted(docs, key=lambda d: int(d.get("seq") or 0)):
                yield doc
            start += batch

    async def verify(self, tenant: str) -> ChainCheck:
        """Walk the whole chain, then check its end against the head document: entries past
        the last one reached, or a head that records another last entry, are broken links."""
        walker = ChainWalker()
        async for doc in self.walk(tenant):
            broken = walker.step(doc)
            if broken is not None:
                return walker.result(broken)
        return walker.result(await self._end_problem(tenant, walker))

    async def _end_problem(self, tenant: str, walker: ChainWalker) -> BrokenLink | None:
        beyond = await self.log.find_one({"tenant": tenant, "seq": {"$gt": walker.seq}},
                                         sort=[("seq", ASCENDING)])
        if beyond is not None:
            return BrokenLink(walker.seq + 1, f"gap: expected seq {walker.seq + 1}, "
                                              f"found seq {beyond['seq']} next")
        head = await self.head(tenant)
        if head.seq > walker.seq:
            return BrokenLink(walker.seq + 1, f"gap: the head records seq {head.seq}, the "
                                              f"entries end at seq {walker.seq}")
        if head.seq != walker.seq or head.hash != walker.prev:
            return BrokenLink(walker.seq, f"hash mismatch: the head records seq {head.seq} with "
                                          f"hash {head.hash[:12]}…, the last entry hashes to "
                                          f"{walker.prev[:12]}…")
        return None

    async def latest(self, tenant: str, *, limit: int, ticket_id: str | None = None) -> list[Document]:
        """The last ``limit`` entries of a tenant, or of one ticket, oldest first."""
        if ticket_id is not None:
            found = await self.log.find({"tenant": tenant, "ticket_id": ticket_id}).sort(
                "seq", -1).limit(limit).to_list(None)
            return found[::-1]
        head = await self.head(tenant)
        first = max(1, head.seq - limit + 1)
        ids = [entry_id(tenant, n) for n in range(first, head.seq + 1)]
        docs = await self.log.find({"_id": {"$in": ids}}).to_list(None)
        return sorted(docs, key=lambda d: int(d.get("seq") or 0))
