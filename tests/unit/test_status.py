"""`disposisi status`'s reading of what services answer: readiness problems named, backlogs
read from a /metrics exposition, and the rendering's verdict."""

from prometheus_client import generate_latest

from services.status import Backlog, ServiceState, Status, backlogs_in, readiness_problem, render, service_url
from shared.lag import GroupLag
from shared.metrics import Metrics
from shared.settings import Settings


def test_readiness_names_each_failed_check_with_its_problem() -> None:
    body = {"ready": False, "checks": {"kafka": {"ok": True},
                                       "mongodb": {"ok": False, "problem": "store unreachable"},
                                       "consumers": {"ok": False, "problem": "no partitions"}}}
    assert readiness_problem(200, {"ready": True}) is None
    assert readiness_problem(503, body) == "mongodb (store unreachable); consumers (no partitions)"
    assert readiness_problem(502, "<html>") == "/readyz answered 502"


def test_backlogs_are_read_from_the_services_metrics() -> None:
    metrics = Metrics("intake")
    metrics.backlogs.outbox.labels("complaints").set(4)
    metrics.backlogs.outbox_age.labels("complaints").set(12.5)
    metrics.backlogs.reconciliation.labels("complaints").set(1)
    metrics.backlogs.consumer_lag.labels("g", "t").set(9)  # not a backlog the status reads here
    found = backlogs_in("intake", generate_latest(metrics.registry).decode())
    assert found == [Backlog("intake", "outbox", "complaints", 4, 12.5),
                     Backlog("intake", "reconciliation", "complaints", 1, 0.0)]


def test_a_service_listening_everywhere_is_asked_on_loopback() -> None:
    assert service_url(Settings(http_host="0.0.0.0", sla_port=9001), "sla_port") == \
        "http://127.0.0.1:9001"
    assert service_url(Settings(http_host="10.0.0.5"), "intake_port") == "http://10.0.0.5:8080"


def test_the_verdict_is_not_ok_when_a_service_or_the_broker_fails() -> None:
    ready = ServiceState("intake", "http://127.0.0.1:8080", True,
                         backlogs=(Backlog("intake", "outbox", "complaints", 2, 30.0),))
    down = ServiceState("sla", "http://127.0.0.1:8081", False, "not answering (ConnectError)")
    fine = Status([ready], [GroupLag("disposisi-intake", "disposisi.complaints.submitted", 3)])
    text = render(fine)
    assert fine.ok and text.endswith("OK: every service is ready")
    assert "disposisi-intake  disposisi.complaints.submitted" in text and text.count(" 3\n") == 1
    assert "complaints" in text and "oldest 30 s" in text
    assert not Status([ready, down]).ok
    assert "NOT READY: not answering (ConnectError)" in render(Status([ready, down]))
    broker_down = Status([ready], lag_error="KafkaConnectionError: no broker")
    assert not broker_down.ok and "BROKER NOT ANSWERING" in render(broker_down)
