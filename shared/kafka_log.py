"""Read what a topic's log holds at given places, to check the broker's acknowledgements
against the log itself: a broker restarted with an empty log (the embedded one keeps it in
memory), a truncated partition or a recreated topic no longer holds what it acknowledged."""

import asyncio
import contextlib
import json
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.kafka import bootstrap_list
from shared.settings import Settings

Place = tuple[int, int]  # (partition, offset)


async def event_ids_at(settings: Settings, topic: str, places: Iterable[Place], *,
                       timeout_ms: int = 5000) -> dict[Place, str]:
    """The event id of the record at each place that still holds one (places that hold
    nothing, or a record that is not an event, are left out). Reads each partition once,
    from its lowest asked offset to its highest: the checked events sit close together."""
    wanted: dict[int, set[int]] = {}
    for partition, offset in places:
        wanted.setdefault(partition, set()).add(offset)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_list(settings), group_id=None,
                                enable_auto_commit=False, client_id="disposisi-log-check",
                                max_partition_fetch_bytes=settings.consumer_fetch_bytes)
    await consumer.start()
    try:
        await consumer.topics()  # fetches the metadata partitions_for_topic answers from
        existing = consumer.partitions_for_topic(topic) or set()
        parts = [TopicPartition(topic, p) for p in wanted if p in existing]
        if not parts:
            return {}
        consumer.assign(parts)
        # Below the log's start, a record is gone (retention). Its end is asked only when a
        # read comes back empty: the embedded broker's answer to it can lag its log.
        starts = await consumer.beginning_offsets(parts)
        found: dict[Place, str] = {}
        for tp in parts:
            held = {o for o in wanted[tp.partition] if o >= starts[tp]}
            if held:
                found.update(await _read_range(consumer, tp, min(held), max(held), held,
                                               timeout_ms))
        return found
    finally:
        with contextlib.suppress(Exception):  # a check's client must never hold up a shutdown
            async with asyncio.timeout(10):
                await consumer.stop()


async def _read_range(consumer: AIOKafkaConsumer, tp: TopicPartition, first: int, last: int,
                      wanted: set[int], timeout_ms: int) -> dict[Place, str]:
    consumer.seek(tp, first)
    found: dict[Place, str] = {}
    position = first
    while position <= last:
        batch = (await consumer.getmany(tp, timeout_ms=timeout_ms)).get(tp, [])
        if not batch:
            end = (await consumer.end_offsets([tp]))[tp]
            if position < end:  # there, yet not served: inconclusive, not missing
                raise TimeoutError(f"{tp.topic}[{tp.partition}] served nothing from offset "
                                   f"{position} within {timeout_ms} ms")
            break  # the log ends here: what was not read is not held
        for record in batch:
            position = record.offset + 1
            if record.offset in wanted:
                event_id = _event_id(record.value)
                if event_id is not None:
                    found[(tp.partition, record.offset)] = event_id
    return found


def _event_id(value: bytes | None) -> str | None:
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        event_id = json.loads(value or b"").get("id")
        return event_id if isinstance(event_id, str) else None
    return None
