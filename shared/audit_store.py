"""The audit log in MongoDB: append-only, hash-chained per tenant, safe for concurrent writers.

Collections:
- ``audit_log``: the entries, ``_id = "<tenant>:<seq, 12 digits>"``, so one entry per seq
  (the chain cannot fork), with a unique index on (tenant, key) (a key is appended once);
- ``audit_keys``: ``_id = "<tenant>:<key>"``, a fast lookup of keys appended, to skip the
  already appended records of a redelivered batch in one round trip (written unless the
  log is made with ``register_keys=False``: see ``AuditLog``);
- ``audit_heads``: ``_id = <tenant>``, a hint of a recent entry (``seq``, ``hash``), moved
  every ``_HINT_EVERY`` entries: where a writer that starts cold begins to look for the end.

No transaction is needed (NX-27017's fail between concurrent sessions): an append walks
forward (by ``_id``) from the last entry it knows to the end of the chain, seals its entries
after it and inserts them in order; the first seq or key another writer took stops the
insert there, and it retries from the new end. Entries are only ever inserted right after an
existing one, so the chain has no gaps. Every lookup is by ``_id``: NX-27017 answers only
those from an index whatever the log's size.

A process that wrote the chain's last entry itself, and found no other writer's entry after
its own when it last looked, seals its next entries after that one without looking first:
an entry another writer put there meanwhile (the SLA service shares the chain) stops the
insert at its seq, and the append looks and retries as any other. Appends of one process to
one tenant's chain take turns, so they do not collide with each other. Uncontended, an
append is two round trips (the entries, their keys; one without keys); after another writer's
entry, one more (a lookup first) until an append finds no other writer's entry again.
"""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Sequence
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
_HINT_EVERY = 32  # the hint moves when an append crosses a multiple of this (fewer writes)


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
    def __init__(self, db: AsyncDatabase[Document], *, register_keys: bool = True) -> None:
        """``register_keys=False`` writes no ``audit_keys`` document (a write per entry, about
        a tenth of the store's work for an HTTP submission): for a writer that rarely appends
        a record twice because it knows what it appended (intake's outbox marks its complaints
        audited). Nothing else changes: the unique (tenant, key) index still lets a key in
        once, and a redelivered record is dropped when its insert stops at that index (a
        round trip or two per such record, instead of one lookup for the batch)."""
        self.db = db
        self.register_keys = register_keys
        self.log = db[LOG]
        self.keys = db[KEYS]
        self.heads = db[HEADS]
        self._heads: dict[str, Head] = {}  # the last entry this process appended or walked over
        # Tenants whose chain end in ``_heads`` this process wrote itself, having found no other
        # writer's entry after its own when it last looked: it appends there without looking.
        self._sole: set[str] = set()
        self._turns: dict[str, asyncio.Lock] = {}  # one append at a time per tenant, here
        self._indexed = False

    async def ensure_indexes(self) -> None:
        await self.log.create_index([("tenant", ASCENDING), ("key", ASCENDING)], unique=True)

    # --- writing ----------------------------------------------------------------------------

    async def append(self, records: Sequence[AuditRecord]) -> int:
        """Append records (in this order, per tenant) whose keys are not in the log yet; returns
        how many were new."""
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
        # Taking turns: two appends of this process would both seal after the same head, and
        # one would pay a failed insert and a lookup for it.
        async with self._turns.setdefault(tenant, asyncio.Lock()):
            return await self._append_in_turn(tenant, records)

    async def _append_in_turn(self, tenant: str, records: list[AuditRecord]) -> int:
        added, pending = 0, records
        crowded = 0  # stops at another writer's entry so far: what the backoff grows with
        stopped_at: tuple[Head, str] | None = None  # (the head then, the key not inserted)
        held = self._heads.get(tenant) if tenant in self._sole else None
        self._sole.discard(tenant)  # back when this append finds no other writer's entry
        alone = True  # no other writer's entry was found during this append
        # Each attempt either drops a record whose key is taken (at most one per record) or
        # finds another writer's entry in the way: only the latter count against _ATTEMPTS.
        for attempt in range(_ATTEMPTS + len(records)):
            if attempt == 0 and held is not None:
                head = held  # no lookup: an entry in the way stops the insert, and we look then
            else:
                head, found_others = await self._catch_up_reporting(tenant)
                alone = alone and not found_others
            if stopped_at is not None and head == stopped_at[0]:
                # No entry took the seq, so the key was taken (a redelivery): drop it, and any
                # other record of the batch already appended. (Keys are new usually: no lookup
                # before the first insert; another writer's entry in the way needs none either.)
                if self.register_keys:  # the others' keys are registered: drop them at once
                    pending = await self._not_yet_appended(tenant, pending)
                pending = [r for r in pending if r.key != stopped_at[1]]
                if not pending:
                    if alone:
                        self._sole.add(tenant)
                    return added
            elif stopped_at is not None:
                crowded += 1
                if crowded >= _ATTEMPTS:
                    break
            entries = seal_all(pending, seq=head.seq, prev_hash=head.hash, now=utc_now())
            inserted = await self._insert(entries)
            if inserted:
                await self._register(tenant, entries[:inserted])
                added += inserted
                head = Head(entries[inserted - 1]["seq"], entries[inserted - 1]["hash"])
            if inserted == len(pending):
                if alone:
                    self._sole.add(tenant)
                return added
            stopped_at, pending = (head, pending[inserted].key), pending[inserted:]
            await asyncio.sleep(random.uniform(0, 0.002 * min(crowded + 1, 25)))
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

    async def _register(self, tenant: str, entries: Sequence[AuditEntry]) -> None:
        """Key lookups for entries just inserted (unless not wanted), and now and then the
        head hint."""
        first, last = entries[0], entries[-1]
        self._heads[tenant] = Head(last["seq"], last["hash"])
        writes: list[Awaitable[object]] = []
        if self.register_keys:
            writes.append(insert_new(self.keys, [{"_id": _key_id(tenant, e["key"]), "seq": e["seq"]}
                                                 for e in entries]))
        if (first["seq"] - 1) // _HINT_EVERY != last["seq"] // _HINT_EVERY:
            # crossed a multiple of _HINT_EVERY: the hint stays within reach of one probe
            writes.append(self._move_hint(tenant, last))
        await asyncio.gather(*writes)

    async def _move_hint(self, tenant: str, last: AuditEntry) -> None:
        # Only forward: a slower writer never moves the hint back (its upsert collides).
        with contextlib.suppress(DuplicateKeyError):
            await self.heads.update_one({"_id": tenant, "seq": {"$lt": last["seq"]}},
                                        {"$set": {"seq": last["seq"], "hash": last["hash"]}},
                                        upsert=True)

    async def _catch_up(self, tenant: str) -> Head:
        head, _ = await self._catch_up_reporting(tenant)
        return head

    async def _catch_up_reporting(self, tenant: str) -> tuple[Head, bool]:
        """The last entry: from the last one this process saw (or the hint), walk forward over
        entries written since (by concurrent writers, or by one that crashed before
        registering them); and whether there were any."""
        head = self._heads.get(tenant) or await self.head(tenant)
        others = False
        while True:
            ids = [entry_id(tenant, n) for n in range(head.seq + 1, head.seq + 1 + _PROBE)]
            found = {d["seq"]: d for d in await self.log.find({"_id": {"$in": ids}}).to_list(None)}
            run: list[Document] = []
            while head.seq + len(run) + 1 in found:
                run.append(found[head.seq + len(run) + 1])
            if not run:
                return head, others
            # Other writers register their own entries; a crashed one's are caught at the
            # unique (tenant, key) index if their events come again.
            head = Head(int(run[-1]["seq"]), str(run[-1]["hash"]))
            self._heads[tenant] = head
            self._sole.discard(tenant)
            others = True
            if len(run) == _PROBE:  # far behind: the hint may be nearer the end
                hint = await self.head(tenant)
                head = hint if hint.seq > head.seq else head
            else:
                return head, others

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
        """Walk the whole chain; the entry the head hint names must hash as the hint records,
        and no entry may lie past the last one reached."""
        walker, hint = ChainWalker(), await self.head(tenant)
        async for doc in self.walk(tenant):
            broken = walker.step(doc)
            if broken is None and walker.seq == hint.seq and walker.prev != hint.hash:
                broken = BrokenLink(hint.seq, f"hash mismatch: the head hint records "
                                              f"{hint.hash[:12]}…, the entry hashes to "
                                              f"{walker.prev[:12]}…")
            if broken is not None:
                return walker.result(broken)
        return walker.result(await self._end_problem(tenant, walker, hint))

    async def _end_problem(self, tenant: str, walker: ChainWalker, hint: Head) -> BrokenLink | None:
        beyond = await self.log.find_one({"tenant": tenant, "seq": {"$gt": walker.seq}},
                                         sort=[("seq", ASCENDING)])
        if beyond is not None:
            return BrokenLink(walker.seq + 1, f"gap: expected seq {walker.seq + 1}, "
                                              f"found seq {beyond['seq']} next")
        if hint.seq > walker.seq:
            return BrokenLink(walker.seq + 1, f"gap: the head hint records seq {hint.seq}, the "
                                              f"entries end at seq {walker.seq}")
        return None

    async def latest(self, tenant: str, *, limit: int, ticket_id: str | None = None) -> list[Document]:
        """The last ``limit`` entries of a tenant, or of one ticket, oldest first."""
        if ticket_id is not None:
            found = await self.log.find({"tenant": tenant, "ticket_id": ticket_id}).sort(
                "seq", -1).limit(limit).to_list(None)
            return found[::-1]
        head = await self._catch_up(tenant)
        first = max(1, head.seq - limit + 1)
        ids = [entry_id(tenant, n) for n in range(first, head.seq + 1)]
        docs = await self.log.find({"_id": {"$in": ids}}).to_list(None)
        return sorted(docs, key=lambda d: int(d.get("seq") or 0))
