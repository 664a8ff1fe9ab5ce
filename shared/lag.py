"""How far consumer groups are behind: per group and topic, the records between the group's
commits and the topic's end. Used by `disposisi dev`'s drain, `disposisi status` and the
services' ``disposisi_consumer_lag`` gauge.

Measured against Tansu 0.6 with aiokafka 0.14: ``list_consumer_group_offsets`` without
explicit partitions fails to decode Tansu's answer (the connection is dropped); with the
partitions named it answers in milliseconds, as does a consumer's ``end_offsets``. Every call
is still bounded by a timeout, because Tansu's ListOffsets has been seen to hang.
"""

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.credentials import kafka_client_options
from shared.settings import Settings

CALL_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class GroupLag:
    """Records on ``topic`` that consumer group ``group`` has not committed yet."""

    group: str
    topic: str
    behind: int

    def __str__(self) -> str:
        return f"{self.group} is {self.behind} behind on {self.topic}"


async def consumer_lag(settings: Settings, groups: Mapping[str, Sequence[str]], *,
                       client_id: str = "disposisi-lag",
                       within: float = CALL_TIMEOUT_SECONDS) -> list[GroupLag]:
    """Per group and each of its topics that exists, how many records lie between its commits
    and the topic's end (0 included)."""
    bootstrap = settings.kafka_bootstrap_servers
    options = kafka_client_options(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id,
                                request_timeout_ms=int(within * 1000), **options)
    ends = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id=client_id,
                            enable_auto_commit=False, request_timeout_ms=int(within * 1000),
                            **options)
    try:
        async with asyncio.timeout(within):
            await admin.start()
            await ends.start()
            known = await partitions_of(admin, {t for topics in groups.values() for t in topics})
        found: list[GroupLag] = []
        for group, topics in groups.items():
            partitions = [tp for tp in known if tp.topic in topics]
            if not partitions:
                continue
            # Committed first, ends second: whatever a consumer published before committing is
            # then already counted in the ends of the topics downstream.
            async with asyncio.timeout(within):
                committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            async with asyncio.timeout(within):
                end = await ends.end_offsets(partitions)
            for topic in topics:
                mine = [tp for tp in partitions if tp.topic == topic]
                if mine:
                    found.append(GroupLag(group, topic, sum(
                        max(0, end[tp] - _offset(committed.get(tp))) for tp in mine)))
        return found
    finally:
        # Bounded: this runs inside services' metrics loops, whose cancellation at shutdown
        # must not wait on a broker that no longer answers.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(within):
                await ends.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(within):
                await admin.close()


async def partitions_of(admin: AIOKafkaAdminClient, topics: Iterable[str]) -> list[TopicPartition]:
    """The partitions of those of ``topics`` that exist, from the brokers' metadata. (Not from
    a consumer's ``topics()``: that fetches every topic's metadata but keeps it to itself; the
    consumer's ``partitions_for_topic`` then knows only what Tansu happens to send along, and
    on Apache Kafka nothing, so every backlog looked empty there.)"""
    existing = sorted(set(topics) & set(await admin.list_topics()))
    if not existing:
        return []
    return [TopicPartition(described["topic"], entry["partition"])
            for described in await admin.describe_topics(existing)
            for entry in sorted(described["partitions"], key=lambda e: int(e["partition"]))]


def _offset(committed: object) -> int:
    offset = getattr(committed, "offset", -1)
    return max(0, int(offset))  # -1: the group never committed on that partition


def groups_of(broker: Any) -> dict[str, tuple[str, ...]]:
    """The consumer groups of a FastStream broker's subscribers and the topics each reads."""
    groups: dict[str, tuple[str, ...]] = {}
    for subscriber in broker.subscribers:
        group = getattr(subscriber, "group_id", None)
        topics = tuple(getattr(subscriber, "topic_names_for_subscribe", ()))
        if group and topics:
            groups[group] = tuple(dict.fromkeys((*groups.get(group, ()), *topics)))
    return groups
