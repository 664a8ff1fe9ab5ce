"""The one settings class of every Disposisi service, read from ``DISPOSISI_*`` variables."""

import os
import socket
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _packaged(package: str, name: str) -> Path:
    return Path(str(resources.files(package).joinpath(name)))


def _instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Configuration shared by intake, router and SLA; each service reads what it needs."""

    model_config = SettingsConfigDict(env_prefix="DISPOSISI_", extra="ignore")

    tenant: str = Field("kota-bengkulu", description="Tenant id written into every event.")
    ticket_prefix: str = Field("BKL", description="Prefix of tracking numbers.")
    timezone: str = Field("Asia/Jakarta", description="Tenant timezone for working-day clocks.")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_partitions: int = Field(3, ge=1, description="Partitions of topics Disposisi creates.")
    mongodb_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongodb_database: str = "disposisi"

    rulebook: Path = _packaged("services.router", "rulebooks/kota-bengkulu.yaml")
    sla_policy: Path = _packaged("services.sla", "policies/default.yaml")

    http_host: str = "127.0.0.1"
    intake_port: int = 8080
    sla_port: int = 8081
    router_port: int = 8082

    consume_batch_size: int = Field(500, ge=1, description="Most records one handler call takes.")
    fetch_max_wait_ms: int = Field(50, ge=1, description="Longest a consumer waits for records.")
    outbox_lease_seconds: float = Field(
        15.0, gt=0, description="How long a publisher owns an unpublished record before others retry."
    )
    outbox_sweep_seconds: float = Field(2.0, gt=0, description="Pause between outbox sweeps.")
    scheduler_interval_seconds: float = Field(1.0, gt=0, description="Pause between SLA scans.")
    scheduler_batch_size: int = Field(200, ge=1)
    late_after_seconds: float = Field(
        30.0, ge=0, description="An escalation fired this long after its trigger is marked late."
    )
    parked_update_seconds: float = Field(
        3600.0, gt=0, description="How long an update waits for its ticket to open before it "
                                  "is dead-lettered.")
    reroute_max_bounces: int = Field(
        2, ge=1, description="Rejections after which a ticket goes to the triage desk.")
    rulebook_reload_seconds: float = Field(
        5.0, gt=0, description="How often the router checks the rulebook file for changes.")
    instance_id: str = Field(default_factory=_instance_id)

    # --- real Apache Kafka (replication, idempotence) ---
    kafka_replication_factor: int = Field(
        1, ge=1, description="Replicas of each topic Disposisi creates (3 on a production cluster).")
    kafka_min_insync_replicas: int = Field(
        1, ge=1, description="min.insync.replicas of the topics Disposisi creates: with acks=all a "
                             "write succeeds only once this many replicas have it (2 of 3 in "
                             "production).")
    kafka_idempotent_producer: bool = Field(
        False, description="Idempotent producers (no duplicates from producer retries). Needs a "
                           "broker that serves InitProducerId: on for real Kafka, off for the "
                           "embedded Tansu, which rejects it.")
    kafka_acks: Literal["all", "1", "0"] = Field(
        "all", description="Producer acknowledgements; 'all' so an accepted complaint survives the "
                           "loss of the partition leader.")
