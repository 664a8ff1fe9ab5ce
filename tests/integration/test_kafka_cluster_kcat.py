"""An agency's queue on the three-broker Apache Kafka cluster, read by Debian's kcat (librdkafka,
a client that is not ours): the message is the documented JSON envelope, keyed by ticket id."""

import asyncio
import json
import shutil
import subprocess
from datetime import datetime

import pytest

from services.router.app import create_app
from shared.contracts import Topics
from shared.settings import Settings
from tests.integration.support import produce, serving

pytestmark = pytest.mark.cluster

ENVELOPE_FIELDS = {"id", "type", "schema_version", "time", "tenant", "ticket_id", "data"}


def received(ticket_id: str, text: str) -> bytes:
    data = {"ticket_id": ticket_id, "channel": "web", "text": text,
            "submitted_at": "2026-11-27T03:00:00Z"}
    return json.dumps({"id": f"evt-{ticket_id}", "type": "complaint.received",
                       "tenant": "kota-bengkulu", "ticket_id": ticket_id, "data": data}).encode()


def kcat_consume_one(bootstrap: str, topic: str) -> dict[str, object]:
    """One message from the start of ``topic``, as kcat's JSON (-J) shows it."""
    kcat = shutil.which("kcat")
    assert kcat, "kcat is not installed: apt-get install -y kcat (.ci/run does this)"
    done = subprocess.run([kcat, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-c", "1",
                           "-J", "-q"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    found: dict[str, object] = json.loads(done.stdout)
    return found


async def test_kcat_reads_the_documented_envelope_from_an_agency_queue(settings: Settings) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    assert len(bootstrap.split(",")) == 3, "this test is about the three-broker cluster"
    async with serving(create_app(settings), settings.router_port):
        await produce(bootstrap, Topics.RECEIVED,
                      [("T-K1", received("T-K1", "Sampah di TPS Jl. Suprapto belum diangkut"))])
        record = await asyncio.to_thread(kcat_consume_one, bootstrap, Topics.agency("DLH"))

    assert record["key"] == "T-K1"  # keyed by ticket id, so a ticket's events stay in order
    assert isinstance(record["payload"], str)
    message = json.loads(record["payload"])
    assert set(message) == ENVELOPE_FIELDS
    assert message["type"] == "ticket.assigned"
    assert message["ticket_id"] == "T-K1"
    assert message["tenant"] == "kota-bengkulu"
    assert message["schema_version"] == 1
    assert datetime.fromisoformat(message["time"]).tzinfo is not None
    assert message["data"]["agency"] == "DLH"
    assert message["data"]["routing"]["rule_ids"]
