"""How far the consumers are behind the embedded broker, so `disposisi dev` can let them drain
it before stopping it: the embedded broker keeps its log in memory, and whatever is still in
it when it stops is gone.

Measured against Tansu 0.6 with aiokafka 0.14: ``list_consumer_group_offsets`` without
explicit partitions fails to decode Tansu's answer (the connection is dropped); with the
partitions named it answers in milliseconds, as does a consumer's ``end_offsets``. Every call
is still bounded by a timeout, because Tansu's ListOffsets has been seen to hang.
"""

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from services.intake.store import COMPLAINTS
from shared.contracts import Topics
from shared.credentials import kafka_client_options, mongo_client_options
from shared.mongo import Document
from shared.settings import Settings

# The consumer groups of the services (see each service's handlers.py) and what they read.
INTAKE_GROUPS: Mapping[str, Sequence[str]] = {"disposisi-intake": (Topics.SUBMITTED,)}
ROUTING_GROUPS: Mapping[str, Sequence[str]] = {
    "disposisi-router": (Topics.RECEIVED,),
    "disposisi-router-reroute": (Topics.REROUTE,),
    "disposisi-sla": (Topics.ROUTED,),
    "disposisi-sla-updates": (Topics.UPDATES,),
}
# Intake following the SLA: tickets opened (reconciliation) and their public state (tracking).
FOLLOW_UP_GROUPS: Mapping[str, Sequence[str]] = {
    "disposisi-intake-opened": (Topics.OPENED,),
    "disposisi-intake-tracking": (Topics.CHANGES,),
}
# The notification service: what it must hear of before the broker goes (it stores deliveries).
NOTIFY_GROUPS: Mapping[str, Sequence[str]] = {
    "disposisi-notify-escalations": (Topics.ESCALATIONS,),
    "disposisi-notify-acks": (Topics.ESCALATION_ACKS,),
    "disposisi-notify-routed": (Topics.ROUTED,),
    "disposisi-notify-received": (Topics.RECEIVED,),
    "disposisi-notify-changes": (Topics.CHANGES,),
}
ALL_GROUPS: Mapping[str, Sequence[str]] = {**INTAKE_GROUPS, **ROUTING_GROUPS, **FOLLOW_UP_GROUPS,
                                           **NOTIFY_GROUPS}
CALL_TIMEOUT_SECONDS = 5.0
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Backlog:
    """Records on ``topic`` that consumer group ``group`` has not committed yet."""

    group: str
    topic: str
    behind: int

    def __str__(self) -> str:
        return f"{self.group} is {self.behind} behind on {self.topic}"


@dataclass(frozen=True)
class DrainResult:
    drained: bool
    backlog: tuple[Backlog, ...] = ()
    unpublished: int = 0
    error: str | None = None

    def describe(self) -> str:
        parts = [str(b) for b in self.backlog]
        if self.unpublished:
            parts.append(f"{self.unpublished} stored complaints not yet published "
                         "(the outbox publishes them on the next start)")
        if self.error:
            parts.append(f"last error: {self.error}")
        return "; ".join(parts) or "nothing left"


async def backlog(settings: Settings, groups: Mapping[str, Sequence[str]]) -> list[Backlog]:
    """Per group and topic, how many records lie between its commits and the topic's end."""
    bootstrap = settings.kafka_bootstrap_servers
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="disposisi-dev-drain",
                                request_timeout_ms=int(CALL_TIMEOUT_SECONDS * 1000),
                                **kafka_client_options(settings))
    ends = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id="disposisi-dev-drain",
                            enable_auto_commit=False,
                            request_timeout_ms=int(CALL_TIMEOUT_SECONDS * 1000),
                            **kafka_client_options(settings))
    try:
        async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
            await admin.start()
            await ends.start()
            known = await partitions_of(admin, {t for topics in groups.values() for t in topics})
        found: list[Backlog] = []
        for group, topics in groups.items():
            partitions = [tp for tp in known if tp.topic in topics]
            if not partitions:
                continue
            # Committed first, ends second: whatever a consumer published before committing is
            # then already counted in the ends of the topics downstream.
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                end = await ends.end_offsets(partitions)
            for topic in topics:
                behind = sum(end[tp] - _offset(committed.get(tp)) for tp in partitions
                             if tp.topic == topic)
                if behind > 0:
                    found.append(Backlog(group, topic, behind))
        return found
    finally:
        with contextlib.suppress(Exception):
            await ends.stop()
        with contextlib.suppress(Exception):
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


async def unpublished_complaints(settings: Settings) -> int:
    """Complaints intake stored (and answered 202 for) that its outbox has not published."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_url, serverSelectionTimeoutMS=int(CALL_TIMEOUT_SECONDS * 1000),
        **mongo_client_options(settings))
    try:
        async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
            pending = await client[settings.mongodb_database][COMPLAINTS].find(
                {"published": False}, {"_id": 1}).limit(10_000).to_list(None)
        return len(pending)
    finally:
        await client.close()


async def wait_drained(settings: Settings, groups: Mapping[str, Sequence[str]], *,
                       deadline: float, outbox: bool) -> DrainResult:
    """Poll until every group has committed up to its topics' ends (and, with ``outbox``,
    intake has published every stored complaint) twice in a row, or the deadline passes.
    Twice: the router and the SLA feed each other, and one clean look can fall between a
    consume and the publish it causes."""
    clean_looks = 0
    result = DrainResult(drained=False)
    while True:
        try:
            behind = tuple(await backlog(settings, groups))
            unpublished = await unpublished_complaints(settings) if outbox else 0
            result = DrainResult(drained=not behind and not unpublished, backlog=behind,
                                 unpublished=unpublished)
        except Exception as error:  # broker or store unreachable: keep trying until the deadline
            result = DrainResult(drained=False, backlog=result.backlog,
                                 unpublished=result.unpublished, error=repr(error))
        clean_looks = clean_looks + 1 if result.drained else 0
        if clean_looks >= 2 or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(POLL_SECONDS)
