"""The permission table covers every endpoint of every service, says nothing of endpoints that
do not exist, decides as documented, and is the table the README shows."""

from pathlib import Path

import pytest
from fastapi import FastAPI

from services.chat.app import create_app as chat_app
from services.intake.app import create_app as intake_app
from services.lapor.app import create_app as lapor_app
from services.mailbox.app import create_app as mailbox_app
from services.notify.app import create_app as notify_app
from services.router.app import create_app as router_app
from services.sla.app import create_app as sla_app
from shared.auth import AuthConfigError
from shared.permissions import (
    PERMISSIONS,
    Principal,
    Scope,
    decide,
    markdown_table,
    rule_for,
    sees_ticket,
)
from shared.settings import Settings
from tests.conftest import TEST_AUTH_SECRET

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = Settings(auth_secret=TEST_AUTH_SECRET)


def apps() -> dict[str, FastAPI]:
    # Building an app opens no connection: clients connect in the lifespan or on first use.
    return {"intake": intake_app(SETTINGS), "sla": sla_app(SETTINGS), "router": router_app(SETTINGS),
            "notify": notify_app(SETTINGS), "chat": chat_app(SETTINGS),
            "mailbox": mailbox_app(SETTINGS), "lapor": lapor_app(SETTINGS)}


def routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path template) the app serves, as its OpenAPI document lists them (FastAPI
    nests included routers; the document flattens them). A route hidden from the document still
    meets the guard, which closes any endpoint without a row."""
    paths = app.openapi()["paths"]
    return {(method.upper(), path) for path, operations in paths.items() for method in operations}


def test_every_endpoint_of_every_service_has_a_row() -> None:
    missing = [(service, method, path) for service, app in apps().items()
               for method, path in sorted(routes(app)) if rule_for(service, method, path) is None]
    assert missing == [], f"endpoints without a row in shared/permissions.py: {missing}"


def test_every_operation_of_every_service_documents_both_credentials() -> None:
    """The guard reads the bearer token and the API key itself (not as FastAPI dependencies,
    which are solved again on every request); the API document still offers both, on every
    operation, so /docs has its Authorize button for either."""
    for service, app in apps().items():
        spec = app.openapi()
        schemes = spec["components"]["securitySchemes"]
        assert schemes["APIKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
        assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/v1/auth/token"
        undocumented = [(service, method, path) for path, operations in spec["paths"].items()
                        for method, operation in operations.items()
                        if operation.get("security", [])[:2] != [{"OAuth2PasswordBearer": []},
                                                                 {"APIKeyHeader": []}]]
        assert undocumented == []
        assert app.openapi() is spec  # built once


def test_every_row_names_an_endpoint_that_exists() -> None:
    served = {service: routes(app) for service, app in apps().items()}
    stale = [e for e in PERMISSIONS if e.service != "*" and (e.method, e.path) not in served[e.service]]
    assert stale == []


def test_a_service_refuses_to_start_without_a_signing_key() -> None:
    with pytest.raises(AuthConfigError, match="DISPOSISI_AUTH_SECRET"):
        intake_app(Settings(auth_secret="short"))


OFFICER = Principal("user", "andi", "kota-bengkulu", "officer", "DLH")


def test_decisions_follow_the_table() -> None:
    tickets = rule_for("sla", "GET", "/v1/tickets/{ticket_id}")
    home = "kota-bengkulu"
    assert decide(tickets, None, tenant=home, names_ticket=True).status == 401
    assert decide(tickets, OFFICER, tenant=home, names_ticket=True).scope is Scope.AGENCY
    assert decide(tickets, Principal("channel", "web", home, "channel"), tenant=home,
                  names_ticket=True).status == 403
    assert decide(tickets, OFFICER, tenant="kota-lain", names_ticket=True).status == 404
    reload = rule_for("router", "POST", "/v1/rulebook/reload")
    assert decide(reload, Principal("user", "x", "kota-lain", "admin"), tenant=home,
                  names_ticket=False).status == 403
    assert decide(None, OFFICER, tenant=home, names_ticket=False).status == 403  # no row: closed
    escalations = rule_for("sla", "GET", "/v1/escalations")
    acknowledge = rule_for("sla", "POST", "/v1/escalations/{escalation_id}/acknowledge")
    head = Principal("user", "kepala", home, "agency_head", "DLH")
    supervisor = Principal("user", "inspektur", home, "supervisor")
    assert decide(escalations, head, tenant=home, names_ticket=False).scope is Scope.AGENCY
    assert decide(escalations, supervisor, tenant=home, names_ticket=False).scope is Scope.TENANT
    assert decide(escalations, OFFICER, tenant=home, names_ticket=False).status == 403
    assert decide(acknowledge, supervisor, tenant=home, names_ticket=False).scope is Scope.TENANT
    assert [decide(acknowledge, p, tenant=home, names_ticket=False).status
            for p in (head, OFFICER, Principal("user", "a", home, "admin"),
                      Principal("user", "t", home, "triage"))] == [403, 403, 403, 403]
    assert decide(acknowledge, supervisor, tenant="kota-lain", names_ticket=False).status == 403
    assert decide(rule_for("intake", "GET", "/healthz"), None, tenant=home,
                  names_ticket=False).status is None


def test_ticket_scopes() -> None:
    assert sees_ticket(Scope.AGENCY, OFFICER, "DLH") and not sees_ticket(Scope.AGENCY, OFFICER, "PDAM")
    assert sees_ticket(Scope.TRIAGE, OFFICER, "TRIAGE") and not sees_ticket(Scope.TRIAGE, OFFICER, "DLH")
    assert sees_ticket(Scope.TENANT, OFFICER, "PDAM")
    # a decision the second opinion disputed: the triage desk reviews it wherever it went
    assert sees_ticket(Scope.TRIAGE, OFFICER, "DLH", disputed=True)
    assert not sees_ticket(Scope.AGENCY, OFFICER, "PDAM", disputed=True)


def test_actor_names_the_caller_with_role_and_agency() -> None:
    assert OFFICER.actor == "andi (officer, DLH)"
    assert Principal("user", "meja", "t", "triage").actor == "meja (triage)"


def test_readme_shows_the_table_from_the_code() -> None:
    assert markdown_table() in (ROOT / "README.md").read_text(), \
        "README is out of date: paste `disposisi admin permissions` into it"
