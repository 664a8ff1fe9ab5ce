"""The Prometheus scrape config, Grafana's provisioning and the dashboard agree with the
compose file and the code: every Disposisi service in docker-compose.yml is scraped on its
port at /metrics, Grafana loads the dashboard from where compose mounts it, and every series
the dashboard queries is one the services export (a renamed metric fails here, not in an
empty panel)."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.metrics import Metrics
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "disposisi.json"
SCRAPED = {"intake": "intake_port", "router": "router_port", "sla": "sla_port"}
PROMQL_FUNCTIONS = {"sum", "max", "min", "rate", "increase", "histogram_quantile", "by"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = load_yaml(ROOT / "docker-compose.yml")["services"]
    return services


def exported_names() -> set[str]:
    """Every sample name a service's registry can export (all families registered)."""
    metrics = Metrics("any")
    metrics.kafka_middlewares()  # FastStream's families join the registry
    _ = (metrics.routing, metrics.sla, metrics.backlogs)
    names = set()
    for family in metrics.registry.collect():
        suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum"),
                    "gauge": ("",)}.get(family.type, ("",))
        names |= {family.name + s for s in suffixes}
    return names


@pytest.mark.parametrize("service", sorted(SCRAPED))
def test_prometheus_scrapes_every_service_on_its_port(service: str) -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs[service]
    port = getattr(Settings(), SCRAPED[service])
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["dns_sd_configs"] == [{"names": [service], "type": "A", "port": port}]
    assert service in compose_services()
    healthcheck = " ".join(compose_services()[service]["healthcheck"]["test"])
    assert f":{port}/readyz" in healthcheck  # the same port the service listens on


def test_compose_mounts_what_prometheus_and_grafana_read() -> None:
    services = compose_services()
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    grafana = services["grafana"]["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "disposisi.yml")
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    source = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    for name in ("prometheus", "grafana"):
        for mapping in services[name]["ports"]:
            assert str(mapping).startswith("127.0.0.1:"), mapping


def test_every_series_the_dashboard_queries_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    uid = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"][0]["uid"]
    exprs = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    exported = exported_names()
    for title, expr in exprs:
        assert all(t["datasource"]["uid"] == uid for p in dashboard["panels"]
                   for t in p.get("targets", []))
        without_labels = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", expr)
        names = set(re.findall(r"\b[a-z_][a-z0-9_]*\b", without_labels)) - PROMQL_FUNCTIONS
        series = {n for n in names if n.startswith(("disposisi_", "faststream_"))}
        assert series or "up" in names, (title, expr)
        assert series <= exported, (title, series - exported)


def test_the_dashboard_covers_each_metric_the_services_define() -> None:
    text = DASHBOARD.read_text(encoding="utf-8")
    families = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in exported_names()
                if n.startswith("disposisi_") and not n.endswith("_created")}
    missing = sorted(f for f in families if f not in text)
    assert missing == []
