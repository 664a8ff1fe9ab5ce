"""Kafka with SASL_SSL, as a production cluster runs it: a real Apache Kafka broker
(shared/kafka_cluster.py, one KRaft node) whose only client listener is SASL_SSL, with
SCRAM-SHA-512 users created when its storage is formatted and a certificate from a CA made in
the test (shared/compose_secrets.py, the code that makes docker-compose.yml's certificates).

Intake and router with the right credentials move a complaint to its agency's queue; a wrong
password stops a service at start with an error naming the refusal (and never the password);
clients without credentials, or that do not trust the broker's CA, are refused."""

import asyncio
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from services.intake.app import create_app as intake_app
from services.router.app import create_app as router_app
from shared.compose_secrets import write_compose_secrets
from shared.contracts import Topics
from shared.credentials import KafkaAccessRefused, kafka_client_options
from shared.kafka import ensure_topics, kafka_reachable
from shared.kafka_cluster import BROKER_USER, KafkaCluster, ListenerSecurity, start_cluster
from shared.settings import Settings
from tests.e2e.support import spawn, stop
from tests.integration.auth_support import Accounts
from tests.integration.support import read_topic, serving

pytestmark = [pytest.mark.integration, pytest.mark.cluster]

SERVICE_USER = "disposisi"
# Bounds for "refused, not hung": generous for a loaded machine; a refusal takes seconds.
REFUSAL_WITHIN = 120.0


@dataclass(frozen=True)
class SecureKafka:
    cluster: KafkaCluster
    ca_file: Path
    password_file: Path
    password: str


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """One broker on the files `python -m shared.compose_secrets` makes for docker-compose.yml
    (kafka-1's PKCS#12 keystore, the CA, the passwords), its certificate also naming 127.0.0.1."""
    directory = tmp_path_factory.mktemp("secure-kafka")
    secrets = directory / "secrets"
    write_compose_secrets(secrets, also_names=["127.0.0.1"])
    keystore_password = (secrets / "kafka_keystore_password").read_text()
    keystore = secrets / "kafka-1.p12"
    password_file = secrets / "kafka_disposisi_password"
    password = password_file.read_text()
    users = {BROKER_USER: (secrets / "kafka_broker_password").read_text(), SERVICE_USER: password}
    cluster = start_cluster(directory / "kafka", brokers=1, security=ListenerSecurity(
        keystore, secrets / "ca.crt", users, keystore_password=keystore_password))
    try:
        yield SecureKafka(cluster, secrets / "ca.crt", password_file, password)
    finally:
        cluster.stop()


def secured(settings: Settings, kafka: SecureKafka, **overrides: Any) -> Settings:
    """The test's settings pointed at the secured broker, signed in as the services' user."""
    update: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka.cluster.bootstrap, "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": SERVICE_USER,
        "kafka_sasl_password_file": kafka.password_file, "kafka_ssl_cafile": kafka.ca_file,
        # one broker: one replica (the cluster pass sets three in the environment)
        "kafka_replication_factor": 1, "kafka_min_insync_replicas": 1,
        "kafka_idempotent_producer": True,
    }
    return Settings.model_validate({**settings.model_dump(), **update, **overrides})


async def test_a_complaint_reaches_its_agency_over_sasl_ssl(
        settings: Settings, secure_kafka: SecureKafka, accounts: Accounts) -> None:
    configured = secured(settings, secure_kafka)
    web = await accounts.channel("web")
    async with serving(intake_app(configured), configured.intake_port) as intake, \
            serving(router_app(configured), configured.router_port) as router, \
            httpx.AsyncClient(headers=web.headers, timeout=30) as http:
        assert (await http.get(f"{intake}/readyz")).status_code == 200
        assert (await http.get(f"{router}/readyz")).status_code == 200
        response = await http.post(f"{intake}/v1/complaints", json={
            "channel": "web", "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut"})
        assert response.status_code == 202
        ticket_id = response.json()["ticket_id"]
        assigned = await read_topic(configured.kafka_bootstrap_servers, Topics.agency("DLH"),
                                    expect=1, timeout=120, options=kafka_client_options(configured))

    assert [(e["type"], e["ticket_id"]) for e in assigned] == [("ticket.assigned", ticket_id)]


def test_a_wrong_password_stops_the_service_at_start_naming_the_refusal(
        settings: Settings, secure_kafka: SecureKafka, tmp_path: Path) -> None:
    wrong = "not-" + secure_kafka.password
    configured = secured(settings, secure_kafka, kafka_sasl_password_file=None,
                         kafka_sasl_password=SecretStr(wrong))
    process = spawn("intake", configured, tmp_path)
    try:
        process.wait(REFUSAL_WITHIN)
    except subprocess.TimeoutExpired:
        pytest.fail(f"intake still running {REFUSAL_WITHIN:.0f} s after the broker refused it")
    finally:
        stop(process)
    log = "\n".join(path.read_text(errors="replace") for path in tmp_path.glob("intake-*.log"))

    assert process.returncode != 0
    assert f"refused user '{SERVICE_USER}' (SCRAM-SHA-512)" in log
    assert "KafkaAccessRefused" in log
    assert wrong not in log
    assert secure_kafka.password not in log


async def test_wrong_credentials_are_refused_at_once_and_never_ready(
        settings: Settings, secure_kafka: SecureKafka) -> None:
    wrong_password = secured(settings, secure_kafka, kafka_sasl_password_file=None,
                             kafka_sasl_password=SecretStr("guessed"))
    unknown_user = secured(settings, secure_kafka, kafka_sasl_username="mallory")
    for configured in (wrong_password, unknown_user):
        assert not await kafka_reachable(configured, within=10)
        async with asyncio.timeout(REFUSAL_WITHIN):
            with pytest.raises(KafkaAccessRefused, match="refused user") as refused:
                # would retry for an hour if the refusal were taken for an outage
                await ensure_topics(configured, [Topics.RECEIVED], wait_seconds=3600)
        assert "guessed" not in str(refused.value)


async def test_a_client_that_does_not_trust_the_brokers_ca_is_refused(
        settings: Settings, secure_kafka: SecureKafka) -> None:
    system_cas_only = secured(settings, secure_kafka, kafka_ssl_cafile=None)
    assert not await kafka_reachable(system_cas_only, within=10)
    async with asyncio.timeout(REFUSAL_WITHIN):
        with pytest.raises(KafkaAccessRefused, match="CERTIFICATE_VERIFY_FAILED"):
            await ensure_topics(system_cas_only, [Topics.RECEIVED], wait_seconds=3600)


async def test_a_plaintext_client_is_refused(settings: Settings, secure_kafka: SecureKafka) -> None:
    plaintext = secured(settings, secure_kafka, kafka_security_protocol="PLAINTEXT")
    assert not await kafka_reachable(plaintext, within=10)
    producer = AIOKafkaProducer(bootstrap_servers=secure_kafka.cluster.bootstrap,
                                request_timeout_ms=10_000)
    try:
        async with asyncio.timeout(REFUSAL_WITHIN):
            with pytest.raises(Exception, match="Unable to bootstrap"):
                await producer.start()
    finally:
        await producer.stop()


async def test_the_controllers_port_admits_no_client_without_a_certificate(
        secure_kafka: SecureKafka) -> None:
    """The controllers' listener is mutual TLS: brokers present their certificate; a client
    that trusts the CA but has none is cut off at the handshake."""
    port = secure_kafka.cluster.nodes[0].controller_port
    context = ssl.create_default_context(cafile=str(secure_kafka.ca_file))
    refusal = ""
    async with asyncio.timeout(REFUSAL_WITHIN):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        try:
            writer.write(b"\x00\x00\x00\x01\x00")  # TLS 1.3 reports the refusal on first use
            await writer.drain()
            answer = await reader.read(1)
        except (ssl.SSLError, ConnectionResetError) as error:
            answer, refusal = b"", str(error)
        finally:
            writer.close()
    assert answer == b"", f"the controller answered a client without a certificate: {answer!r}"
    assert refusal == "" or "CERTIFICATE" in refusal.upper() or "reset" in refusal, refusal
