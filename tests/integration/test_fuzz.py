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
from services.router.app import create_app as router_app
from services.sla.app import create_app as sla_app
from shared.settings import Settings
from tests.integration.support import serving

pytestmark = [pytest.mark.integration,
              # Schemathesis' own strategies use `random`; nothing this test can change.
              pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")]

EXAMPLES_PER_OPERATION = 20

SERVICES: dict[str, tuple[Callable[[Settings], FastAPI], Callable[[Settings], int]]] = {
    "intake": (intake_app, lambda s: s.intake_port),
    "router": (router_app, lambda s: s.router_port),
    "sla": (sla_app, lambda s: s.sla_port),
}


@pytest.fixture
def credentials() -> dict[str, dict[str, str]]:
    """Headers that authenticate a caller, per service: the pass with credentials uses them.
    Empty until the services ask who is calling; then fill in a key or a bearer token."""
    return {"intake": {}, "router": {}, "sla": {}}


def _server_errors(url: str, headers: dict[str, str]) -> list[str]:
    """Fuzz every operation in both modes; the requests that got a 5xx."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # a service's own document that schemathesis cannot read
            raise result.err()
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += _fuzz(operation, mode, url, headers)
    return failures


def _fuzz(operation: Any, mode: GenerationMode, url: str, headers: dict[str, str]) -> list[str]:
    failures: list[str] = []

    @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                         phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(base_url=url, headers=headers, timeout=30)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} ({mode.value}) -> "
                            f"{response.status_code}: {response.text[:300]}\n  {case.as_curl_command()}")

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        # An operation without parameters or body (GET /healthz) has no invalid form.
        if mode is not GenerationMode.NEGATIVE:
            raise
    return failures


@pytest.mark.parametrize("service", list(SERVICES))
async def test_no_request_gets_a_server_error(service: str, settings: Settings,
                                              credentials: dict[str, dict[str, str]]) -> None:
    # Rate limits would turn most generated requests into 429s before they reach a handler.
    settings = settings.model_copy(update={"rate_limits_enabled": False})
    create_app, port = SERVICES[service]
    async with serving(create_app(settings), port(settings)) as url:
        # Schemathesis calls are blocking: they run in a thread while the server serves here.
        failures = await asyncio.to_thread(_server_errors, url, {})
        if credentials[service]:
            failures += await asyncio.to_thread(_server_errors, url, credentials[service])
    assert failures == [], "\n".join(failures)
