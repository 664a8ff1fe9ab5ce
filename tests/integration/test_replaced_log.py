"""A consumer left past the end of a log the embedded broker replaced (a kill -9 and restart:
Tansu keeps its log in memory) is rewound to the beginning, and reads what was published
since the restart. Tansu answers a fetch past a partition's end with no records and no error,
where Kafka answers OFFSET_OUT_OF_RANGE and the consumer starts again from the earliest offset:
without the rewind, the consumer waits at its old offset and skips everything below it."""

import os
import signal
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.embedded import EmbeddedServer, free_port, start_kafka
from shared.kafka import past_the_end, rewind_replaced_logs

pytestmark = [pytest.mark.integration, pytest.mark.own_servers]

TOPIC = "disposisi.replaced-log-test"
BEFORE = 3  # records read before the broker dies: the consumer waits at offset 3


async def _create_topic(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, 1, 1)])
    finally:
        await admin.close()


async def _produce(bootstrap: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            # Partition 0, the one the consumer reads: a consumer's request can reach the
            # restarted broker before the topic is created again, and Tansu then creates it
            # itself with more partitions, where a record without one may land elsewhere.
            await producer.send_and_wait(TOPIC, value, partition=0)
    finally:
        await producer.stop()


def _kill_and_restart(server: EmbeddedServer, tmp_path: Path) -> EmbeddedServer:
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    return start_kafka(server.port, tmp_path)


async def _read_until(consumer: AIOKafkaConsumer, wanted: bytes, *, rewind: bool,
                      timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=200)
        if any(record.value == wanted for records in batches.values() for record in records):
            return True
        if rewind:
            await rewind_replaced_logs(consumer)
    return False


@pytest.mark.parametrize("rewind", [True, False], ids=["rewound", "without-the-rewind"])
async def test_a_consumer_past_a_replaced_logs_end_reads_the_new_log(tmp_path: Path,
                                                                     rewind: bool) -> None:
    """Manually assigned (no group), so nothing but the rewind moves the consumer: the
    stale offset is kept exactly as a group member kept it across the restart in `disposisi
    dev`. Without the rewind the record published after the restart is never read (the
    second case proves the first one's rewind is what reads it)."""
    server = start_kafka(free_port(), tmp_path)
    bootstrap = server.address
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                fetch_max_wait_ms=50, retry_backoff_ms=50)
    try:
        await _create_topic(bootstrap)
        await _produce(bootstrap, [f"before-{i}".encode() for i in range(BEFORE)])
        await consumer.start()
        partition = TopicPartition(TOPIC, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        assert await _read_until(consumer, f"before-{BEFORE - 1}".encode(), rewind=False,
                                 timeout=60)
        assert await consumer.position(partition) == BEFORE
        # Caught up on the log it read is not past its end: nothing is rewound.
        assert await rewind_replaced_logs(consumer) == []

        server = _kill_and_restart(server, tmp_path)
        await _create_topic(bootstrap)  # as `disposisi dev` recreates them
        await _produce(bootstrap, [b"after"])  # offset 0 of the new log

        # Generous: the consumer reconnects and fetches; what is asserted is that it gets there.
        read = await _read_until(consumer, b"after", rewind=rewind, timeout=30 if rewind else 10)
        if rewind:
            assert read, "the record published after the restart was not read"
        else:
            assert not read, "Tansu now answers a fetch past the end as Kafka does: the rewind " \
                             "may be unneeded"
            assert past_the_end(await consumer.position(partition), consumer.highwater(partition))
    finally:
        await consumer.stop()
        server.stop()


def test_past_the_end_only_when_both_are_known_and_the_position_is_beyond() -> None:
    assert past_the_end(3, 1)
    assert not past_the_end(1, 1)  # caught up
    assert not past_the_end(0, 5)
    assert not past_the_end(None, 1)  # position being reset
    assert not past_the_end(3, None)  # nothing fetched yet
