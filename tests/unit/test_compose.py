"""docker-compose.yml and the Dockerfile agree with the code they run.

No Docker engine runs here, so both files are parsed and cross-checked, not started. The
Kafka side is the one the cluster pass of the suite ran (shared/kafka_cluster.py, same version,
same replication settings); the image digests could not be pulled here to verify.
"""

import ipaddress
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from shared.compose_secrets import write_compose_secrets
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_PREFIX = "DISPOSISI_"
KAFKA_BROKERS = ("kafka-1", "kafka-2", "kafka-3")
BACKING = (*KAFKA_BROKERS, "mongodb")
DISPOSISI = ("intake", "router", "sla", "notify", "chat", "mailbox")
POM = ROOT / "tools" / "kafka" / "pom.xml"
DIGEST_PINNED = re.compile(r"^[a-z0-9./_-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$")
RS_INITIATE = re.compile(r"rs\.initiate\(\s*\{\s*_id:\s*['\"]([^'\"]+)['\"]")

Service = Mapping[str, Any]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), "docker-compose.yml is not a mapping"
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Service]:
    found = compose.get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services mapping"
    return found


def environment(service: Service) -> dict[str, str]:
    """The service's environment, from either compose form (mapping or KEY=VALUE list)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (str(item).partition("=") for item in raw)
        return {key: value for key, _, value in pairs}
    return {str(key): str(value) for key, value in raw.items()}


def settings_of(service: Service) -> Settings:
    """The Settings the service would read from its DISPOSISI_* variables."""
    env = environment(service)
    fields: dict[str, Any] = {key.removeprefix(ENV_PREFIX).lower(): env[key] for key in env
                              if key.startswith(ENV_PREFIX)}
    for name, value in fields.items():  # a list or mapping setting is JSON, as the services read it
        if value.startswith(("[", "{")):
            fields[name] = json.loads(value)
    return Settings.model_validate(fields)


def argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def healthcheck_text(service: Service) -> str:
    return " ".join(argv(service["healthcheck"]["test"]))


def kafka_hosts(bootstrap_servers: str) -> set[str]:
    return {urlsplit(f"//{server.strip()}").hostname or "" for server in bootstrap_servers.split(",")}


def mongodb_hosts(url: str) -> set[str]:
    members = urlsplit(url).netloc.rpartition("@")[2]
    return {urlsplit(f"//{member}").hostname or "" for member in members.split(",")}


def mongodb_replica_set(url: str) -> str:
    return parse_qs(urlsplit(url).query).get("replicaSet", [""])[0]


def test_defines_backing_and_disposisi_services(services: dict[str, Service]) -> None:
    assert set(BACKING + DISPOSISI) <= services.keys()


@pytest.mark.parametrize("name", DISPOSISI)
def test_kafka_and_mongodb_hosts_are_compose_services(services: dict[str, Service], name: str) -> None:
    settings = settings_of(services[name])
    assert kafka_hosts(settings.kafka_bootstrap_servers) == set(KAFKA_BROKERS)
    assert urlsplit(settings.mongodb_url).scheme == "mongodb"
    assert mongodb_hosts(settings.mongodb_url) <= {"mongodb"}


def test_every_disposisi_variable_names_a_settings_field() -> None:
    names = set(re.findall(r"\b" + ENV_PREFIX + r"[A-Za-z0-9_]+", COMPOSE_FILE.read_text()))
    assert names, "no DISPOSISI_* variable in docker-compose.yml"
    unknown = {n for n in names if n.removeprefix(ENV_PREFIX).lower() not in Settings.model_fields}
    assert not unknown, f"not fields of shared.settings.Settings: {sorted(unknown)}"


@pytest.mark.parametrize("name", DISPOSISI)
def test_listens_on_all_interfaces(services: dict[str, Service], name: str) -> None:
    assert settings_of(services[name]).http_host == "0.0.0.0"


@pytest.mark.parametrize("name", DISPOSISI)
def test_runs_its_own_command(services: dict[str, Service], name: str) -> None:
    assert argv(services[name]["command"]) == ["disposisi", name]


@pytest.mark.parametrize("name", DISPOSISI)
def test_waits_for_healthy_kafka_and_mongodb(services: dict[str, Service], name: str) -> None:
    depends_on = services[name].get("depends_on")
    assert isinstance(depends_on, dict), "depends_on needs the mapping form to carry a condition"
    for backing in BACKING:
        assert depends_on[backing]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", BACKING + DISPOSISI)
def test_has_a_healthcheck(services: dict[str, Service], name: str) -> None:
    healthcheck = services[name].get("healthcheck") or {}
    assert not healthcheck.get("disable", False)
    assert argv(healthcheck.get("test", []))[:1] in (["CMD"], ["CMD-SHELL"])


@pytest.mark.parametrize("name", DISPOSISI)
def test_healthcheck_calls_readyz_on_the_service_port(services: dict[str, Service], name: str) -> None:
    # /healthz only says the process lives; a container is healthy when it can do its work.
    port: int = getattr(settings_of(services[name]), f"{name}_port")
    assert f"http://127.0.0.1:{port}/readyz" in healthcheck_text(services[name])


@pytest.mark.parametrize("name", DISPOSISI)
def test_published_ports_reach_the_service_port(services: dict[str, Service], name: str) -> None:
    settings = settings_of(services[name])
    ports = {str(getattr(settings, f"{name}_port"))}
    if name == "mailbox":  # and its SMTP server
        ports.add(str(settings.mailbox_smtp_port))
    for mapping in services[name].get("ports", []):
        assert str(mapping).rpartition(":")[2] in ports


@pytest.mark.parametrize("name", DISPOSISI)
def test_built_from_the_repository_dockerfile(services: dict[str, Service], name: str) -> None:
    build = services[name]["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE


def test_mongodb_initiates_the_replica_set_clients_name(services: dict[str, Service]) -> None:
    url = settings_of(services["intake"]).mongodb_url
    initiated = RS_INITIATE.search(healthcheck_text(services["mongodb"]))
    assert initiated, "the mongodb healthcheck never calls rs.initiate"
    assert initiated.group(1) == mongodb_replica_set(url)


def test_mongodb_runs_the_replica_set_clients_name(services: dict[str, Service]) -> None:
    url = settings_of(services["intake"]).mongodb_url
    command = argv(services["mongodb"]["command"])
    assert command[command.index("--replSet") + 1] == mongodb_replica_set(url)


def test_mongodb_member_host_is_a_compose_service(services: dict[str, Service]) -> None:
    hosts = re.findall(r"host:\s*['\"]([^'\":]+)", healthcheck_text(services["mongodb"]))
    assert hosts
    assert set(hosts) <= services.keys()


def test_mongodb_healthy_only_as_primary(services: dict[str, Service]) -> None:
    # mongosh exits 0 whatever --eval evaluates to; only quit(n) makes the check fail.
    assert re.search(r"quit\(.*isWritablePrimary", healthcheck_text(services["mongodb"]))


def dockerfile_instructions() -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    lines = (line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#"))
    for instruction in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines():
        keyword, _, arguments = instruction.strip().partition(" ")
        if keyword:
            yield keyword.upper(), arguments.strip()


def copied_sources() -> list[str]:
    sources: list[str] = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY" and "--from=" not in arguments:
            words = [w for w in shlex.split(arguments) if not w.startswith("--")]
            sources += words[:-1]
    return sources


def test_dockerfile_installs_the_project() -> None:
    runs = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "RUN"]
    assert any(re.search(r"\bpip3? install\b[^&;|]*\s\.(\s|$)", run) for run in runs)


def test_dockerfile_copies_paths_that_exist() -> None:
    sources = copied_sources()
    assert sources
    missing = [source for source in sources if not (ROOT / source).exists()]
    assert not missing, f"COPY sources missing from the repository: {missing}"


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    lines = DOCKERIGNORE.read_text().splitlines()
    patterns = [p.strip().strip("/") for p in lines if p.strip() and not p.startswith(("#", "!"))]
    for source in copied_sources():
        path = source.strip("/")
        assert not [p for p in patterns if fnmatch(path, p)], f".dockerignore excludes {source}"


def test_dockerfile_runs_disposisi_as_non_root() -> None:
    users = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_defaults_to_intake() -> None:
    commands = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "CMD"]
    assert json.loads(commands[-1]) == ["disposisi", "intake"]


# --- what the cluster pass of the tests proves (DISPOSISI_TEST_KAFKA=cluster) ---

def test_three_kraft_nodes_form_one_quorum(services: dict[str, Service]) -> None:
    envs = [environment(services[name]) for name in KAFKA_BROKERS]
    assert {env["KAFKA_PROCESS_ROLES"] for env in envs} == {"broker,controller"}
    assert len({env["CLUSTER_ID"] for env in envs}) == 1
    node_ids = {env["KAFKA_NODE_ID"]: name for env, name in zip(envs, KAFKA_BROKERS, strict=True)}
    assert len(node_ids) == len(KAFKA_BROKERS)
    for env in envs:
        voters = dict(v.split("@") for v in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
        assert {node: address.partition(":")[0] for node, address in voters.items()} == node_ids


@pytest.mark.parametrize("name", KAFKA_BROKERS)
def test_each_broker_advertises_its_own_service_name(services: dict[str, Service], name: str) -> None:
    advertised = environment(services[name])["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka_hosts(re.sub(r"[A-Z_]+://", "", advertised)) == {name}


@pytest.mark.parametrize("name", KAFKA_BROKERS)
def test_brokers_keep_three_copies_and_need_two(services: dict[str, Service], name: str) -> None:
    env = environment(services[name])
    assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
    assert env["KAFKA_MIN_INSYNC_REPLICAS"] == env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
    assert env.get("KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE", "false") == "false"


@pytest.mark.parametrize("name", DISPOSISI)
def test_services_replicate_and_produce_idempotently(services: dict[str, Service], name: str) -> None:
    settings = settings_of(services[name])
    assert settings.kafka_replication_factor == len(KAFKA_BROKERS)
    assert settings.kafka_min_insync_replicas == 2
    assert settings.kafka_idempotent_producer
    assert settings.kafka_acks == "all"


@pytest.mark.parametrize("name", KAFKA_BROKERS)
def test_brokers_run_the_kafka_version_the_tests_ran(services: dict[str, Service], name: str) -> None:
    version = re.search(r"<kafka.version>([^<]+)<", POM.read_text())
    assert version
    assert services[name]["image"].startswith(f"apache/kafka:{version.group(1)}@")


@pytest.mark.parametrize("name", (*BACKING,))
def test_images_are_pinned_by_digest(services: dict[str, Service], name: str) -> None:
    assert DIGEST_PINNED.match(services[name]["image"]), services[name]["image"]


@pytest.mark.parametrize("name", BACKING + DISPOSISI)
def test_every_container_has_resource_limits(services: dict[str, Service], name: str) -> None:
    limits = services[name].get("deploy", {}).get("resources", {}).get("limits", {})
    assert float(limits["cpus"]) > 0
    assert re.fullmatch(r"\d+[MG]", str(limits["memory"]))


@pytest.mark.parametrize("name", BACKING + DISPOSISI)
def test_no_port_is_published_on_all_interfaces(services: dict[str, Service], name: str) -> None:
    for mapping in services[name].get("ports", []):
        assert str(mapping).startswith("127.0.0.1:"), f"{name} publishes {mapping} on every interface"


def mounted_source(service: Service, path: Path) -> Path | None:
    """The checkout file a bind mount shows at ``path`` in the container, if one does."""
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        target = rest.partition(":")[0]
        if source.startswith(".") and path.is_relative_to(target):
            return ROOT / source / path.relative_to(target)
    return None


@pytest.mark.parametrize(("name", "field"), [("router", "rulebook"), ("sla", "sla_policy")])
def test_rulebook_and_policy_are_mounted_from_the_checkout(
        services: dict[str, Service], name: str, field: str) -> None:
    inside: Path = getattr(settings_of(services[name]), field)
    source = mounted_source(services[name], inside)
    assert source is not None, f"{name}: {inside} is not on a bind mount, so edits never reach it"
    assert source.is_file()
    assert all(str(v).endswith(":ro") for v in services[name]["volumes"])


# --- broker and store credentials (README, "Broker and store credentials") ---

def mounted_secrets(service: Service) -> dict[str, str]:
    """Where each secret granted to the service appears in its container: target → secret."""
    found = {}
    for entry in service.get("secrets", []):
        source, target = (entry, entry) if isinstance(entry, str) else (entry["source"],
                                                                         entry.get("target", entry["source"]))
        found[target if target.startswith("/") else f"/run/secrets/{target}"] = source
    return found


def secret_file(compose: dict[str, Any], service: Service, path: str | Path | None) -> str:
    """The ./secrets file the service sees at ``path`` (fails when none is mounted there)."""
    secret = mounted_secrets(service).get(str(path))
    assert secret is not None, f"nothing is mounted at {path}"
    return str(compose["secrets"][secret]["file"]).removeprefix("./secrets/")


def scram_users(service: Service) -> dict[str, str]:
    """User → password file of each SCRAM user a broker's storage is formatted with."""
    script = " ".join(argv(service["command"]))
    return dict(re.findall(r"--add-scram \"SCRAM-SHA-512=\[name=([^,]+),password=\$\$\(cat ([^)]+)\)\]\"",
                           script))


def test_every_secret_is_a_file_the_secrets_script_makes(compose: dict[str, Any], tmp_path: Path) -> None:
    made = {path.name for path in write_compose_secrets(tmp_path / "secrets")}
    files = {str(entry["file"]) for entry in compose["secrets"].values()}
    assert {f.removeprefix("./secrets/") for f in files} <= made
    assert all(f.startswith("./secrets/") for f in files)
    assert "/secrets/" in (ROOT / ".gitignore").read_text().splitlines()
    assert "secrets" in DOCKERIGNORE.read_text().splitlines()  # never in the image


@pytest.mark.parametrize("name", DISPOSISI)
def test_services_sign_in_to_kafka_with_scram_over_verified_tls(
        compose: dict[str, Any], services: dict[str, Service], name: str) -> None:
    settings = settings_of(services[name])
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka_ssl_check_hostname
    assert not settings.kafka_sasl_password.get_secret_value(), "a password belongs in a secret file"
    assert secret_file(compose, services[name], settings.kafka_ssl_cafile) == "ca.crt"
    password = secret_file(compose, services[name], settings.kafka_sasl_password_file)
    for broker in KAFKA_BROKERS:  # each broker knows the user, with the same password file
        users = scram_users(services[broker])
        assert settings.kafka_sasl_username in users
        assert secret_file(compose, services[broker], users[settings.kafka_sasl_username]) == password


@pytest.mark.parametrize("name", KAFKA_BROKERS)
def test_brokers_take_clients_only_on_sasl_ssl(services: dict[str, Service], name: str) -> None:
    env = environment(services[name])
    protocols = dict(pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = [listener.partition("://")[0] for listener in env["KAFKA_LISTENERS"].split(",")]
    assert {protocols[listener] for listener in listeners if listener != "CONTROLLER"} == {"SASL_SSL"}
    assert protocols["CONTROLLER"] == "SSL"
    assert env["KAFKA_LISTENER_NAME_CONTROLLER_SSL_CLIENT_AUTH"] == "required"
    assert protocols[env["KAFKA_INTER_BROKER_LISTENER_NAME"]] == "SASL_SSL"
    assert env["KAFKA_ADVERTISED_LISTENERS"].startswith("SASL_SSL://")
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == env["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == \
        "SCRAM-SHA-512"


@pytest.mark.parametrize("name", KAFKA_BROKERS)
def test_brokers_tls_and_own_login_come_from_secrets(
        compose: dict[str, Any], services: dict[str, Service], name: str) -> None:
    env = environment(services[name])
    service = services[name]
    assert secret_file(compose, service, f"/etc/kafka/secrets/{env['KAFKA_SSL_KEYSTORE_FILENAME']}") == \
        f"{name}.p12"
    for credentials in ("KAFKA_SSL_KEYSTORE_CREDENTIALS", "KAFKA_SSL_KEY_CREDENTIALS"):
        assert secret_file(compose, service, f"/etc/kafka/secrets/{env[credentials]}") == \
            "kafka_keystore_password"
    assert secret_file(compose, service, env["KAFKA_SSL_TRUSTSTORE_LOCATION"]) == "ca.crt"
    jaas = re.search(r"java\.security\.auth\.login\.config=(\S+)", env["KAFKA_OPTS"])
    assert jaas
    assert secret_file(compose, service, jaas.group(1)) == "kafka_jaas.conf"
    assert secret_file(compose, service, scram_users(service)["broker"]) == "kafka_broker_password"
    assert argv(service["command"])[-1].rstrip().endswith("exec /etc/kafka/docker/run")


@pytest.mark.parametrize("name", KAFKA_BROKERS)
def test_broker_healthcheck_signs_in(compose: dict[str, Any], services: dict[str, Service],
                                     name: str) -> None:
    test = argv(services[name]["healthcheck"]["test"])
    config = test[test.index("--command-config") + 1]
    assert secret_file(compose, services[name], config) == "kafka_client.properties"


def test_mongodb_requires_tls_and_a_password(compose: dict[str, Any], services: dict[str, Service]) -> None:
    mongodb = services["mongodb"]
    command = argv(mongodb["command"])
    assert command[command.index("--tlsMode") + 1] == "requireTLS"
    assert secret_file(compose, mongodb, command[command.index("--tlsCertificateKeyFile") + 1]) == \
        "mongodb.pem"
    assert "--keyFile" in command  # a replica set with users: its members share a key
    assert "/run/secrets/mongodb_keyfile" in " ".join(argv(mongodb["entrypoint"]))
    env = environment(mongodb)
    assert secret_file(compose, mongodb, env["MONGO_INITDB_ROOT_PASSWORD_FILE"]) == "mongodb_root_password"
    check = healthcheck_text(mongodb)
    assert "--tls " in check and "--username root" in check


@pytest.mark.parametrize("name", DISPOSISI)
def test_services_sign_in_to_mongodb_over_tls(compose: dict[str, Any], services: dict[str, Service],
                                              name: str) -> None:
    settings = settings_of(services[name])
    root = environment(services["mongodb"])
    assert settings.mongodb_username == root["MONGO_INITDB_ROOT_USERNAME"]
    assert secret_file(compose, services[name], settings.mongodb_password_file) == \
        secret_file(compose, services["mongodb"], root["MONGO_INITDB_ROOT_PASSWORD_FILE"])
    assert settings.mongodb_auth_source == "admin"
    assert settings.mongodb_tls and not settings.mongodb_tls_allow_invalid_hostnames
    assert secret_file(compose, services[name], settings.mongodb_tls_ca_file) == "ca.crt"
    assert "@" not in settings.mongodb_url  # no password in the URL


def test_the_console_reaches_intake_and_sla_by_their_compose_names(
        services: dict[str, Service]) -> None:
    console = services["console"]
    settings = settings_of(console)
    assert argv(console["command"]) == ["disposisi", "console"]
    assert settings.http_host == "0.0.0.0"
    assert urlsplit(settings.console_sla_url).hostname == "sla"
    assert urlsplit(settings.console_sla_url).port == settings_of(services["sla"]).sla_port
    assert urlsplit(settings.console_intake_url).hostname == "intake"
    assert urlsplit(settings.console_intake_url).port == settings_of(services["intake"]).intake_port
    assert f"http://127.0.0.1:{settings.console_port}/readyz" in healthcheck_text(console)
    assert [str(m).rpartition(":")[2] for m in console["ports"]] == [str(settings.console_port)]
    assert {name: d["condition"] for name, d in console["depends_on"].items()} == {
        "intake": "service_healthy", "sla": "service_healthy"}


def test_the_consoles_fixed_address_is_trusted_by_the_apis_it_posts_to(
        compose: dict[str, Any], services: dict[str, Service]) -> None:
    address = services["console"]["networks"]["default"]["ipv4_address"]
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    for name in ("intake", "sla"):
        assert address in settings_of(services[name]).trusted_addresses
