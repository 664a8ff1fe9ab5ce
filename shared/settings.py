"""The one settings class of every Disposisi service, read from ``DISPOSISI_*`` variables."""

import os
import socket
from importlib import resources
from pathlib import Path

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

    # --- sign-in and permissions ---
    auth_secret: str = Field(
        "", repr=False, description="Key that signs access tokens (HS256), at least 32 random "
                                    "characters; required (`disposisi dev` makes its own).")
    auth_token_seconds: float = Field(1800.0, gt=0, description="Lifetime of an access token.")
    auth_max_failed_sign_ins: int = Field(
        5, ge=1, description="Wrong passwords in a row that lock an account.")
    auth_lockout_seconds: float = Field(900.0, gt=0, description="How long a locked account stays locked.")

    # --- sign-in with the city's identity provider (OpenID Connect) ---
    oidc_issuer: str | None = Field(
        None, description="Issuer URL of the city's OpenID Connect provider; unset turns it off. "
                          "Its tokens are then accepted beside local accounts.")
    oidc_client_id: str = Field(
        "", description="Client id Disposisi is registered under at the provider (required with "
                        "an issuer).")
    oidc_audience: str | None = Field(
        None, description="The `aud` a token must carry; unset: the client id (as in ID tokens).")
    oidc_role_claim: str = Field(
        "disposisi_role", description="Claim holding the Disposisi role (a string, or a list with "
                                      "exactly one Disposisi role).")
    oidc_agency_claim: str = Field(
        "disposisi_agency", description="Claim holding the agency code of officers and agency heads.")
    oidc_tenant_claim: str | None = Field(
        None, description="Claim holding the tenant; unset: every token is of `tenant`.")
    oidc_jwks_cache_seconds: float = Field(
        300.0, gt=0, description="How long the provider's signing keys are kept before re-reading "
                                 "(an unknown key id re-reads them sooner).")
    oidc_leeway_seconds: float = Field(
        30.0, ge=0, description="Clock difference to the provider tolerated for exp/iat.")
    oidc_timeout_seconds: float = Field(
        5.0, gt=0, description="Longest wait for the provider's discovery document or keys.")
