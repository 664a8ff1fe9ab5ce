"""Fixtures: real servers over sockets. The embedded broker and store are started on free
loopback ports unless DISPOSISI_KAFKA_BOOTSTRAP_SERVERS / DISPOSISI_MONGODB_URL point at
real ones. Each test gets its own database; each Kafka-using test its own broker when
embedded (Tansu keeps its log in memory, so a fresh broker is a clean slate)."""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pymongo import AsyncMongoClient

from shared.embedded import EmbeddedServer, free_port, start_kafka, start_store
from shared.mongo import Document
from shared.settings import Settings

if TYPE_CHECKING:
    from tests.integration.auth_support import Accounts

ROOT = Path(__file__).resolve().parent.parent
DEMO_POLICY = ROOT / "examples" / "policy-demo.yaml"
TEST_AUTH_SECRET = "test-signing-key-" + uuid.uuid4().hex  # 49 characters, fresh each run


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("DISPOSISI_MONGODB_URL")
    if external:
        yield external
        return
    server = start_store(free_port(), tmp_path_factory.mktemp("mongo"))
    try:
        yield f"mongodb://{server.address}/?directConnection=true"
    finally:
        server.stop()


@pytest.fixture
def kafka_server(tmp_path: Path) -> Iterator[EmbeddedServer | None]:
    if os.environ.get("DISPOSISI_KAFKA_BOOTSTRAP_SERVERS"):
        yield None
        return
    server = start_kafka(free_port(), tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kafka_bootstrap(kafka_server: EmbeddedServer | None) -> str:
    if kafka_server is None:
        return os.environ["DISPOSISI_KAFKA_BOOTSTRAP_SERVERS"]
    return kafka_server.address


@pytest.fixture
def settings(kafka_bootstrap: str, mongodb_url: str) -> Settings:
    """Settings for one test: its own database, fast loops, the 5-second demo policy."""
    return Settings(
        kafka_bootstrap_servers=kafka_bootstrap, mongodb_url=mongodb_url,
        mongodb_database=f"test_{uuid.uuid4().hex[:12]}", sla_policy=DEMO_POLICY,
        intake_port=free_port(), sla_port=free_port(), router_port=free_port(),
        outbox_sweep_seconds=0.5, outbox_lease_seconds=2.0, scheduler_interval_seconds=0.2,
        late_after_seconds=3.0, topic_partitions=2, instance_id=f"test-{uuid.uuid4().hex[:6]}",
        auth_secret=TEST_AUTH_SECRET,
    )


@pytest.fixture
async def mongo(settings: Settings) -> AsyncIterator[AsyncMongoClient[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    try:
        yield client
    finally:
        await client.drop_database(settings.mongodb_database)
        await client.close()


@pytest.fixture
async def accounts(settings: Settings, mongo: AsyncMongoClient[Document]) -> "Accounts":
    """Users and API keys in the test's database, as an administrator makes them."""
    from tests.integration.auth_support import Accounts

    return Accounts(settings, mongo)
