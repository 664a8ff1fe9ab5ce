"""The store's CPU for each document write an accepted HTTP complaint costs, apart: the
complaint with its outbox event, its audit entry, the audit key lookup (which intake no longer
writes, issue 12) and the mark published. Real documents (built by intake's own code), in
batches as the grouped insert and the publish queue send them, on an embedded NX-27017 of its
own; CPU time of the store process from /proc, so other load on the machine matters less than
in a rate.

    python -m benchmarks.post_writes --n 3000 --batch 36
"""

import argparse
import asyncio
import os
import tempfile
import uuid
from pathlib import Path

from pymongo import AsyncMongoClient

from services.intake.flows import Intake, Submission, submission_record
from services.intake.store import ComplaintStore, ReplyStore, TrackingStore
from shared.audit import GENESIS, seal_all
from shared.audit_store import AuditLog, entry_id
from shared.contracts import ComplaintSubmission, utc_now
from shared.embedded import free_port, start_mongo
from shared.mongo import Document, insert_new
from shared.outbox import OutboxRelay
from shared.settings import Settings

TEXT = "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"
TENANT = "kota-bengkulu"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(url: str, pid: int, n: int, batch: int) -> dict[str, float]:
    """Store CPU seconds spent on each kind of write, over ``n // batch`` batches."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
    db = client["post_writes"]
    settings = Settings(mongodb_url=url, mongodb_database="post_writes", instance_id="bench")
    complaints = ComplaintStore(db, settings)
    relay = OutboxRelay(complaints.collection, None, lease_seconds=30, owner="bench")  # type: ignore[arg-type]
    intake = Intake(settings, complaints, relay, ReplyStore(db, settings), relay, TrackingStore(db))
    log = AuditLog(db)
    await complaints.ensure_indexes()
    await relay.ensure_indexes()
    await log.ensure_indexes()
    spent = dict.fromkeys(("complaint insert", "audit entry", "audit key", "mark published"), 0.0)
    seq, prev = 0, GENESIS
    try:
        for _ in range(n // batch):
            submissions = [Submission(ComplaintSubmission(channel="web", text=TEXT,
                                                          external_id=f"w-{uuid.uuid4()}"), key=None)
                           for _ in range(batch)]
            before = cpu_seconds(pid)
            docs = await intake.store(submissions)
            spent["complaint insert"] += cpu_seconds(pid) - before
            entries = seal_all([submission_record(TENANT, d) for d in docs], seq=seq,
                               prev_hash=prev, now=utc_now())
            seq, prev = entries[-1]["seq"], entries[-1]["hash"]
            before = cpu_seconds(pid)
            await log.log.insert_many([{"_id": entry_id(TENANT, e["seq"]), **e} for e in entries])
            spent["audit entry"] += cpu_seconds(pid) - before
            before = cpu_seconds(pid)
            await insert_new(log.keys, [{"_id": f"{TENANT}:{e['key']}", "seq": e["seq"]}
                                        for e in entries])
            spent["audit key"] += cpu_seconds(pid) - before
            before = cpu_seconds(pid)  # as OutboxRelay._send marks a batch
            await complaints.collection.update_many(
                {"_id": {"$in": [d["_id"] for d in docs]}},
                {"$set": {"published": True, "published_at": utc_now(), "audited": True},
                 "$unset": {"lease_until": "", "lease_owner": ""}})
            spent["mark published"] += cpu_seconds(pid) - before
    finally:
        await client.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="complaints")
    parser.add_argument("--batch", type=int, default=36, help="complaints per write (the "
                        "pipeline benchmark's HTTP posts make batches of about 30-40)")
    args = parser.parse_args()
    server = start_mongo(free_port(), Path(tempfile.mkdtemp(prefix="post-writes-")))
    try:
        spent = asyncio.run(measure(f"mongodb://{server.address}/?directConnection=true",
                                    server.process.pid, args.n, args.batch))
    finally:
        server.stop()
    posts = (args.n // args.batch) * args.batch
    print(f"store CPU per accepted post, by write ({posts} posts, {args.batch} per batch; "
          f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())}):")
    for kind, seconds in spent.items():
        print(f"  {kind:16s} {seconds * 1e6 / posts:6.0f} us")
    print(f"  {'all four':16s} {sum(spent.values()) * 1e6 / posts:6.0f} us "
          f"(intake now writes all but the audit key)")


if __name__ == "__main__":
    main()
