"""Would Kafka transactions remove the copies at-least-once delivery leaves? Measured before
deciding, on the embedded broker and on the three-broker cluster.

    python -m benchmarks.kafka_transactions --kafka embedded --n 2000
    python -m benchmarks.kafka_transactions --kafka cluster --n 2000

A consume-transform-produce loop (what the router does: read a record, publish its effect,
commit the read) runs twice over ``--n`` input records. The first run "crashes" after three
batches: its outputs are sent, its offsets not committed. The second run starts from the
committed offsets and finishes. Then the output topic is read twice, as ``read_committed`` and
as ``read_uncommitted``, counting records and distinct inputs.

- plain (at least once): producer acks=all, commit after the sends;
- transactional: each batch in a transaction with ``send_offsets_to_transaction``.

A run that cannot start (the embedded Tansu refuses InitProducerId) says so.
"""

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.embedded import free_port, start_kafka
from shared.kafka_cluster import start_cluster

BATCH = 50
CRASH_AFTER_BATCHES = 3


@dataclass
class Topics:
    source: str
    target: str
    group: str


async def prepare(bootstrap: str, n: int, replicas: int) -> Topics:
    run = uuid.uuid4().hex[:8]
    topics = Topics(f"bench-txn-in-{run}", f"bench-txn-out-{run}", f"bench-txn-{run}")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topics.source, 1, replicas),
                                   NewTopic(topics.target, 1, replicas)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(n):
            await producer.send(topics.source, json.dumps({"i": i}).encode())
        await producer.flush()
    finally:
        await producer.stop()
    return topics


async def transform(bootstrap: str, topics: Topics, *, transactional: bool,
                    crash_after: int | None) -> tuple[int, float]:
    """Records handled and seconds taken; stops without committing after ``crash_after``
    batches (a crash between publishing the effects and committing the read)."""
    consumer = AIOKafkaConsumer(topics.source, bootstrap_servers=bootstrap, group_id=topics.group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_poll_records=BATCH)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all",
        transactional_id=f"{topics.group}-transform" if transactional else None)
    await consumer.start()
    await producer.start()
    handled, batches, started = 0, 0, time.monotonic()
    try:
        while batch := await consumer.getmany(timeout_ms=3000):
            for partition, records in batch.items():
                if transactional:
                    await producer.begin_transaction()
                for record in records:
                    await producer.send(topics.target, record.value)
                handled, batches = handled + len(records), batches + 1
                if batches == crash_after:
                    await producer.flush()
                    return handled, time.monotonic() - started
                offsets = {partition: records[-1].offset + 1}
                if transactional:
                    await producer.send_offsets_to_transaction(offsets, topics.group)
                    await producer.commit_transaction()
                else:
                    await producer.flush()
                    await consumer.commit(offsets)
        return handled, time.monotonic() - started
    finally:
        await consumer.stop()
        await producer.stop()


async def read_back(bootstrap: str, topic: str, isolation: str) -> tuple[int, int]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                isolation_level=isolation)
    await consumer.start()
    seen: list[int] = []
    try:
        while batch := await consumer.getmany(timeout_ms=3000):
            seen += [json.loads(r.value)["i"] for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return len(seen), len(set(seen))


async def measure(bootstrap: str, n: int, replicas: int, transactional: bool) -> str:
    mode = "transactional" if transactional else "plain"
    try:
        topics = await prepare(bootstrap, n, replicas)
        await transform(bootstrap, topics, transactional=transactional,
                        crash_after=CRASH_AFTER_BATCHES)
        handled, seconds = await transform(bootstrap, topics, transactional=transactional,
                                           crash_after=None)
    except Exception as error:
        return f"{mode:14} cannot run: {type(error).__name__}: {error}"
    committed = await read_back(bootstrap, topics.target, "read_committed")
    uncommitted = await read_back(bootstrap, topics.target, "read_uncommitted")
    return (f"{mode:14} read_committed {committed[0]} records ({committed[1]} distinct); "
            f"read_uncommitted {uncommitted[0]} ({uncommitted[1]} distinct); "
            f"after the crash {handled / seconds:.0f} records/s")


async def main_async(kafka: str, n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="disposisi-txn-") as tmp:
        if kafka == "cluster":
            cluster = await asyncio.to_thread(start_cluster, Path(tmp) / "kafka", 3)
            bootstrap, replicas, stop = cluster.bootstrap, 3, cluster.stop
        else:
            broker = start_kafka(free_port(), Path(tmp))
            bootstrap, replicas, stop = broker.address, 1, broker.stop
        try:
            print(f"{kafka}: {n} records, batches of {BATCH}, crash after "
                  f"{CRASH_AFTER_BATCHES} batches")
            for transactional in (False, True):
                print(await measure(bootstrap, n, replicas, transactional), flush=True)
        finally:
            stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kafka_transactions",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kafka", choices=["embedded", "cluster"], default="embedded")
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main_async(args.kafka, args.n))


if __name__ == "__main__":
    main()
