"""kill -9 of the broker that leads disposisi.complaints.received while complaints flow through
intake → router → SLA on the three-broker cluster (replication 3, min.insync.replicas 2,
idempotent producers): every accepted complaint becomes exactly one ticket.

Delivery between services is at least once: when the killed node was also a consumer group's
coordinator, the router's offset commit fails and it routes that batch again, publishing the
same decision under the same event id (seen: 1 of 120). The SLA dedupes on that id, so the
test demands that any repeat is the same decision, and exactly one ticket per complaint."""

import signal
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.dev import create_topics
from shared.contracts import Topics
from shared.kafka_cluster import KafkaCluster
from shared.mongo import Document
from shared.settings import Settings
from tests.e2e.support import spawn, stop, wait_healthy
from tests.integration.auth_support import Accounts
from tests.integration.support import at_least, eventually, read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

BURST = 120
TEXTS = ["Sampah di TPS belum diangkut seminggu", "Jalan berlubang besar di depan sekolah",
         "Air PDAM mati sejak kemarin pagi", "Lampu jalan mati di gang kami"]


async def post_complaints(intake: str, numbers: range, headers: dict[str, str]) -> list[str]:
    """Post one complaint per number, as the web channel; the ticket ids of those answered 202."""
    accepted = []
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:
        for i in numbers:
            response = await http.post(f"{intake}/v1/complaints", json={
                "channel": "web", "text": TEXTS[i % 4], "external_id": f"failover-{i}"})
            if response.status_code == 202:
                accepted.append(response.json()["ticket_id"])
    return accepted


async def new_leader(cluster: KafkaCluster, old: int) -> int:
    """The partition's leader once it is another node than ``old`` (0 until then)."""
    leader = await cluster.leader_of(Topics.RECEIVED, 0)
    return leader if leader not in (old, -1) else 0


async def test_leader_of_received_killed_mid_flow_loses_nothing_and_opens_each_ticket_once(
        settings: Settings, mongo: AsyncMongoClient[Document], kafka_cluster: KafkaCluster,
        tmp_path: Path, accounts: Accounts) -> None:
    db = mongo[settings.mongodb_database]
    web = await accounts.channel("web")
    intake_url = f"http://127.0.0.1:{settings.intake_port}"
    await create_topics(settings)
    # One address posts for many citizens, as a channel gateway does: its key still counts.
    services = [spawn(name, settings, tmp_path, trusted_addresses=["127.0.0.1"])
                for name in ("intake", "router", "sla")]
    victim = -1
    try:
        for process, port in zip(services, (settings.intake_port, settings.router_port,
                                            settings.sla_port), strict=True):
            wait_healthy(f"http://127.0.0.1:{port}", process)
        accepted = await post_complaints(intake_url, range(BURST // 3), web.headers)
        assert await eventually(lambda: at_least(db["tickets"], 5), timeout=120)
        victim = await kafka_cluster.leader_of(Topics.RECEIVED, 0)
        assert victim in {n.node_id for n in kafka_cluster.nodes}
        kafka_cluster.kill(victim)
        accepted += await post_complaints(intake_url, range(BURST // 3, BURST), web.headers)
        moved_to = await eventually(lambda: new_leader(kafka_cluster, victim), timeout=60)
        assert await eventually(lambda: at_least(db["tickets"], len(accepted)), timeout=240)
        routed = await read_topic(settings.kafka_bootstrap_servers, Topics.ROUTED,
                                  expect=len(accepted), timeout=120, settle=3)
    finally:
        for process in services:
            stop(process, signal.SIGTERM)
        if victim != -1:
            # The next tests need all three. On this (the main) thread: a node started from a
            # worker thread would be stopped when that thread ends (see KafkaCluster.launch).
            kafka_cluster.restart(victim)

    assert len(accepted) == BURST
    assert moved_to, "a surviving in-sync replica took over the partition"
    complaints = await db["complaints"].find({}, {"ticket_id": 1}).to_list(None)
    tickets = await db["tickets"].find({}, {"_id": 1}).to_list(None)
    assert sorted(c["ticket_id"] for c in complaints) == sorted(accepted)
    assert sorted(t["_id"] for t in tickets) == sorted(accepted)
    assert {e["ticket_id"] for e in routed} == set(accepted)
    decisions: dict[str, list[object]] = defaultdict(list)
    for event in routed:
        decisions[event["id"]].append((event["ticket_id"], event["data"]))
    assert len(decisions) == len(accepted)  # one decision (event id) per ticket
    assert [i for i, seen in decisions.items() if any(d != seen[0] for d in seen)] == []
