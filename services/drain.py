"""How far the consumers are behind the embedded broker, so `disposisi dev` can let them drain
it before stopping it: the embedded broker keeps its log in memory, and whatever is still in
it when it stops is gone. (The lag itself is measured by shared/lag.py.)
"""

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pymongo import AsyncMongoClient

from services.intake.store import COMPLAINTS
from shared.contracts import Topics
from shared.credentials import mongo_client_options
from shared.lag import CALL_TIMEOUT_SECONDS, GroupLag, consumer_lag
from shared.lag import partitions_of as partitions_of  # where the drain's callers found it
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
# The chat service (WhatsApp, SMS): the agency's messages it sends back to citizens.
CHAT_GROUPS: Mapping[str, Sequence[str]] = {"disposisi-chat-changes": (Topics.CHANGES,)}
MAILBOX_GROUPS: Mapping[str, Sequence[str]] = {"disposisi-mailbox-changes": (Topics.CHANGES,)}
# The LAPOR! connector: which tickets are LAPOR!'s, and their steps for LAPOR!.
LAPOR_GROUPS: Mapping[str, Sequence[str]] = {
    "disposisi-lapor-received": (Topics.RECEIVED,),
    "disposisi-lapor-changes": (Topics.CHANGES,),
}
ALL_GROUPS: Mapping[str, Sequence[str]] = {**INTAKE_GROUPS, **ROUTING_GROUPS, **FOLLOW_UP_GROUPS,
                                           **NOTIFY_GROUPS, **CHAT_GROUPS, **MAILBOX_GROUPS, **LAPOR_GROUPS}
POLL_SECONDS = 0.5


Backlog = GroupLag  # what a group has not committed yet, as the drain reports it


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
    """Per group and topic, how many records lie between its commits and the topic's end;
    only those behind."""
    lag = await consumer_lag(settings, groups, client_id="disposisi-dev-drain")
    return [entry for entry in lag if entry.behind > 0]


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
