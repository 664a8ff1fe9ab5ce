"""Schemathesis against each service's OpenAPI document: generated requests, valid and
invalid (wrong types, missing fields, odd characters), on the running service; none may get a
5xx. Bounded: a few dozen examples per operation and mode, so all three services take about
a minute."""

import asyncio
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.core.result import Err

from services.intake.app import create_app as intake_app
from services.lapor.app import create_app as lapor_app
from services.notify.app import create_app as notify_app
from services.router.app import create_app as router_app
from services.sla.app import create_app as sla_app
from shared.embedded import free_port
from shared.settings import Settings
from tests.conftest import CLUSTER_MODE
from tests.integration.auth_support import Accounts
from tests.integration.support import serving

pytestmark = [pytest.mark.integration,
              # Schemathesis' own strategies use `random`; nothing this test can change.
              pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")]

# The embedded pass fuzzes in full. The cluster pass runs the same handlers on another
# broker, which generated HTTP requests hardly reach (a 202 publishes through the outbox);
# there a lighter sweep checks that nothing about the cluster turns a request into a 5xx.
EXAMPLES_PER_OPERATION = 8 if CLUSTER_MODE else 20
CREDENTIAL_HEADERS = {"authorization", "x-api-key"}

SERVICES: dict[str, tuple[Callable[[Settings], FastAPI], Callable[[Settings], int]]] = {
    "intake": (intake_app, lambda s: s.intake_port),
    "router": (router_app, lambda s: s.router_port),
    "sla": (sla_app, lambda s: s.sla_port),
    "notify": (notify_app, lambda s: s.notify_port),
    "lapor": (lapor_app, lambda s: s.lapor_port),
}


@pytest.fixture
async def credentials(accounts: Accounts) -> dict[str, list[dict[str, str]]]:
    """Per service, the callers of the passes after the one without credentials: those whose
    rights reach the most endpoints, so generated requests get past the guard to the handlers
    (a channel key for intake; the administrator for the rulebook; for the SLA the supervisor,
    who reads everything, and an agency head, who may post updates)."""
    web = await accounts.channel("web")
    admin = await accounts.user("admin.kota", "admin")
    supervisor = await accounts.user("inspektorat", "supervisor")
    head = await accounts.user("dlh.kepala", "agency_head", "DLH")
    return {"intake": [web.headers], "router": [admin.headers],
            "sla": [supervisor.headers, head.headers], "notify": [supervisor.headers, head.headers],
            "lapor": [supervisor.headers]}


def _server_errors(url: str, headers: dict[str, str], statuses: list[int]) -> list[str]:
    """Fuzz every operation in both modes; the requests that got a 5xx. Every status seen is
    added to ``statuses``."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # a service's own document that schemathesis cannot read
            raise result.err()
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += _fuzz(operation, mode, url, headers, statuses)
    return failures


def _fuzz(operation: Any, mode: GenerationMode, url: str, headers: dict[str, str],
          statuses: list[int]) -> list[str]:
    failures: list[str] = []

    @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                         phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        if headers and case.headers:
            # Schemathesis makes up values for the documented credentials too; a caller that
            # sends ours besides is refused (token and key at once), so drop the made-up ones.
            for name in [n for n in case.headers if n.lower() in CREDENTIAL_HEADERS]:
                del case.headers[name]
        response = case.call(base_url=url, headers=headers, timeout=30)
        statuses.append(response.status_code)
        if response.status_code >= 500 and not _not_ready_report(case.path, response):
            failures.append(f"{case.method} {case.formatted_path} ({mode.value}) -> "
                            f"{response.status_code}: {response.text[:300]}\n  {case.as_curl_command()}")

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        # An operation without parameters or body (GET /healthz) has no invalid form.
        if mode is not GenerationMode.NEGATIVE:
            raise
    return failures


def _not_ready_report(path: str, response: Any) -> bool:
    """/readyz answers 503 with its report when a check fails: its documented answer, not a
    server error. On a loaded machine the broker check (a fresh client's bootstrap and
    metadata within the check's bound) can miss its bound for one probe; test_readiness.py
    tests what the checks report."""
    if path != "/readyz" or response.status_code != 503:
        return False
    body = response.json()
    return body.get("ready") is False and bool(body.get("failed"))


@pytest.mark.parametrize("service", list(SERVICES))
async def test_no_request_gets_a_server_error(service: str, settings: Settings,
                                              credentials: dict[str, list[dict[str, str]]]) -> None:
    # Rate limits would turn most generated requests into 429s before they reach a handler.
    settings = settings.model_copy(update={"rate_limits_enabled": False,
                                           "notify_port": free_port(), "lapor_port": free_port()})
    create_app, port = SERVICES[service]
    async with serving(create_app(settings), port(settings)) as url:
        # Schemathesis calls are blocking: they run in a thread while the server serves here.
        # First as a stranger (401s are fine), then as each caller of the service.
        stranger: list[int] = []
        failures = await asyncio.to_thread(_server_errors, url, {}, stranger)
        known: list[list[int]] = []
        for headers in credentials[service]:
            known.append([])
            failures += await asyncio.to_thread(_server_errors, url, headers, known[-1])
    assert failures == [], "\n".join(failures)
    assert 401 in stranger, "the pass without credentials met the guard"
    # The credentials are good everywhere: the generated requests reach the handlers.
    assert credentials[service] and all(seen and 401 not in seen for seen in known), \
        [sorted(set(seen)) for seen in known]
