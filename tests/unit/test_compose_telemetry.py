"""docker-compose.yml's observability wiring agrees with the code: every Disposisi service
(each compose service run from the Disposisi image) is scraped by Prometheus on the port it
listens on, and sends its spans to the OpenTelemetry collector that compose runs, on the
port and protocol the collector's configuration receives (OTLP/HTTP, as shared/telemetry.py
exports), through a traces pipeline whose every part is defined."""

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "disposisi:latest"
COLLECTOR = "otel-collector"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def services() -> dict[str, Any]:
    found: dict[str, Any] = load_yaml(ROOT / "docker-compose.yml")["services"]
    return found


def disposisi_services() -> list[str]:
    return sorted(name for name, service in services().items() if service.get("image") == IMAGE)


def collector_config() -> Any:
    mounts = services()[COLLECTOR]["volumes"]
    assert "./deploy/otel-collector:/etc/otelcol-contrib:ro" in mounts
    assert "--config=/etc/otelcol-contrib/config.yaml" in services()[COLLECTOR]["command"]
    return load_yaml(ROOT / "deploy" / "otel-collector" / "config.yaml")


def test_the_disposisi_services_are_the_eight_with_their_own_ports() -> None:
    assert disposisi_services() == ["chat", "console", "intake", "lapor", "mailbox", "notify",
                                    "router", "sla"]


@pytest.mark.parametrize("service", disposisi_services())
def test_prometheus_scrapes_the_service_on_the_port_it_listens_on(service: str) -> None:
    config = load_yaml(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    port = getattr(Settings(), f"{service}_port")
    assert service in jobs, f"Prometheus does not scrape {service}"
    assert jobs[service].get("metrics_path", "/metrics") == "/metrics"
    assert jobs[service]["dns_sd_configs"] == [{"names": [service], "type": "A", "port": port}]
    healthcheck = " ".join(services()[service]["healthcheck"]["test"])
    assert f":{port}/readyz" in healthcheck


@pytest.mark.parametrize("service", disposisi_services())
def test_the_service_sends_spans_to_the_collectors_otlp_http_receiver(service: str) -> None:
    endpoint = services()[service]["environment"].get("DISPOSISI_OTLP_ENDPOINT")
    assert endpoint, f"{service} has no DISPOSISI_OTLP_ENDPOINT"
    assert Settings(otlp_endpoint=endpoint).otlp_endpoint == endpoint
    url = urlsplit(endpoint)
    assert (url.scheme, url.hostname) == ("http", COLLECTOR)
    http = collector_config()["receivers"]["otlp"]["protocols"]["http"]
    assert http["endpoint"] == f"0.0.0.0:{url.port}"


def test_the_collectors_traces_pipeline_takes_otlp_and_uses_only_defined_parts() -> None:
    config = collector_config()
    traces = config["service"]["pipelines"]["traces"]
    assert "otlp" in traces["receivers"]
    for kind in ("receivers", "processors", "exporters"):
        for name in traces.get(kind, []):
            assert name in config[kind], f"{kind[:-1]} {name} is used but not defined"
    assert traces["exporters"], "spans received would go nowhere"
    assert "ports" not in services()[COLLECTOR]  # only the services reach it
