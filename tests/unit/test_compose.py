"""docker-compose.yml and the Dockerfile agree with the code they run.

No Docker engine runs here, so both files are parsed and cross-checked, not started. The
Kafka side is the one the cluster pass of the suite ran (shared/kafka_cluster.py, same version,
same replication settings); the image digests could not be pulled here to verify.
"""

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

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_PREFIX = "DISPOSISI_"
KAFKA_BROKERS = ("kafka-1", "kafka-2", "kafka-3")
BACKING = (*KAFKA_BROKERS, "mongodb")
DISPOSISI = ("intake", "router", "sla")
POM = ROOT / "tools" / "kafka" / "pom.xml"
DIGEST_PINNED = re.compile(r"^[a-z0-9./_-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$")
RS_INITIATE = re.compile(r"rs\.initiate\(\s*\{\s*_id:\s*['\"]([^'\"]+)['\"]")

Service = Mapping[str, Any]


@pytest.fixture(scope="module")
def services() -> dict[str, Service]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(compose, dict), "docker-compose.yml is not a mapping"
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
    fields = {key.removeprefix(ENV_PREFIX).lower(): env[key] for key in env if key.startswith(ENV_PREFIX)}
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
    port: int = getattr(settings_of(services[name]), f"{name}_port")
    for mapping in services[name].get("ports", []):
        assert str(mapping).rpartition(":")[2] == str(port)


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
    assert kafka_hosts(advertised.replace("PLAINTEXT://", "")) == {name}


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
