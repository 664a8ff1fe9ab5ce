"""The permission table as a tested fact: every row, for every role (own agency, another
agency, another tenant, no credentials), against the three services running on real ports;
then sign-in end to end, lock-out, expiry and revocation."""

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.intake.app import create_app as intake_app
from services.lapor.app import create_app as lapor_app
from services.mailbox.app import create_app as mailbox_app
from services.notify.app import create_app as notify_app
from services.router.app import create_app as router_app
from services.sla.app import create_app as sla_app
from services.sla.reports_api import build_reports_router
from shared import mongo
from shared.accounts import AccountStore
from shared.auth import Authenticator, build_auth_router, guard
from shared.contracts import Topics, utc_now
from shared.embedded import free_port
from shared.limits import install_abuse_limits
from shared.permissions import (
    ANYONE,
    PERMISSIONS,
    Endpoint,
    Principal,
    Scope,
    rule_for,
)
from shared.runtime import add_store_errors
from shared.settings import Settings
from tests.integration.auth_support import Accounts, Caller
from tests.integration.sla_support import routed
from tests.integration.support import eventually, produce, serving, serving_together
from tests.integration.tenant_support import CITY, PROVINCE, two_tenants
from tests.unit.test_media import photo_png

pytestmark = pytest.mark.integration

COMPLAINT = {"channel": "web",
             "text": "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"}
OTHER_TENANT = "kota-lain"  # not served by this deployment
SECOND_TENANT = PROVINCE  # served by the same deployment: its people get 404 on our tickets
# The tickets the walk calls ticket endpoints on: (ticket id, agency).
TICKETS = (("T-DLH", "DLH"), ("T-PDAM", "PDAM"), ("T-TRI", "TRIAGE"))


@dataclass(frozen=True)
class Who:
    """A caller of the walk: the principal it is (None: no credentials) and its headers."""

    label: str
    principal: Principal | None
    headers: dict[str, str]


@dataclass
class System:
    urls: dict[str, str]
    accounts: Accounts
    callers: list[Who]
    admin: Caller
    tracking_id: str
    tracking_code: str
    escalation_id: str  # an escalation of T-DLH (the demo policy fires within seconds)
    tracking_agency: str = ""  # the agency the router gave the tracked complaint


async def _user(accounts: Accounts, name: str, role: str, agency: str | None = None,
                tenant: str | None = None) -> tuple[Who, Caller]:
    caller = await accounts.user(name, role, agency, tenant=tenant)
    principal = Principal("user", name, tenant or accounts.settings.tenant, role, agency)
    return Who(f"{role}:{agency or '-'}@{tenant or 'home'}", principal, caller.headers), caller


async def _key(accounts: Accounts, kind: str, name: str, tenant: str | None = None) -> Who:
    doc, key = await accounts.store.create_api_key(tenant=tenant or accounts.settings.tenant,
                                                   kind="channel" if kind == "channel" else "service",
                                                   name=name)
    return Who(f"{kind}:{name}@{tenant or 'home'}", Principal(kind, name, doc["tenant"], kind),
               {"X-API-Key": key})


@pytest.fixture
async def system(settings: Settings, accounts: Accounts, tmp_path: Path) -> AsyncIterator[System]:
    # The walk signs in dozens of times from one address: the per-address limits are not
    # what it tests (test_abuse does), so its address is a trusted one. Two tenants are served:
    # the walk's tickets are the home tenant's, and the second tenant's people try them too.
    settings = two_tenants(settings, tmp_path).model_copy(
        update={"trusted_addresses": ["127.0.0.1"]})
    callers = [Who("anonymous", None, {})]
    for name, role, agency, tenant in (
            ("dlh.petugas", "officer", "DLH", None), ("pdam.petugas", "officer", "PDAM", None),
            ("dlh.kepala", "agency_head", "DLH", None), ("meja.triase", "triage", None, None),
            ("inspektorat", "supervisor", None, None), ("lain.dlh", "officer", "DLH", OTHER_TENANT),
            ("lain.inspektorat", "supervisor", None, OTHER_TENANT),
            ("lain.admin", "admin", None, OTHER_TENANT),
            ("prov.dlh", "officer", "DLH", SECOND_TENANT),
            ("prov.kepala", "agency_head", "DLH", SECOND_TENANT),
            ("prov.triase", "triage", None, SECOND_TENANT),
            ("prov.inspektorat", "supervisor", None, SECOND_TENANT),
            ("prov.admin", "admin", None, SECOND_TENANT)):
        who, _ = await _user(accounts, name, role, agency, tenant)
        callers.append(who)
    admin_who, admin = await _user(accounts, "admin.kota", "admin")
    callers.append(admin_who)
    callers += [await _key(accounts, "channel", "web"), await _key(accounts, "service", "sla"),
                await _key(accounts, "channel", "web", OTHER_TENANT),
                await _key(accounts, "channel", "web", SECOND_TENANT)]
    async with AsyncExitStack() as stack:
        notify = settings.model_copy(update={"notify_port": free_port()})
        mailbox = settings.model_copy(update={"mailbox_port": free_port(),
                                              "mailbox_smtp_port": free_port()})
        lapor = settings.model_copy(update={"lapor_port": free_port()})
        urls = await serving_together(stack, {
            "intake": (intake_app(settings), settings.intake_port),
            "router": (router_app(settings), settings.router_port),
            "sla": (sla_app(settings), settings.sla_port),
            "notify": (notify_app(notify), notify.notify_port),
            "mailbox": (mailbox_app(mailbox), mailbox.mailbox_port),
            "lapor": (lapor_app(lapor), lapor.lapor_port),
        })
        await produce(settings.kafka_bootstrap_servers, Topics.ROUTED,
                      [routed(ticket_id, utc_now(), agency=agency) for ticket_id, agency in TICKETS])
        supervisor = next(c for c in callers if c.label == "supervisor:-@home").headers
        web = next(c for c in callers if c.label == "channel:web@home")
        async with httpx.AsyncClient(timeout=30) as http:
            assert await eventually(lambda: _all_open(http, urls["sla"], supervisor))
            escalation_id = await eventually(lambda: _escalated(http, urls["sla"], supervisor),
                                             timeout=60)
            assert escalation_id, "the demo policy escalates T-DLH within seconds"
            accepted = await http.post(f"{urls['intake']}/v1/complaints", json=COMPLAINT,
                                       headers=web.headers)
            both = await http.get(f"{urls['sla']}/v1/tickets/T-DLH",
                                  headers={**supervisor, **web.headers})
            assert both.status_code == 401, "two credentials at once are refused, not guessed"
            assert accepted.status_code == 202, accepted.text
            # Intake's ticket rows (attachments) read the agency from intake's tracking copy.
            agency = await eventually(lambda: _tracked_agency(
                http, f"{urls['intake']}/v1/complaints/{accepted.json()['ticket_id']}"), timeout=90)
            assert agency, "the walked complaint was never routed"
        yield System(urls, accounts, callers, admin, accepted.json()["ticket_id"],
                     accepted.json()["tracking_code"], escalation_id, agency)


async def _tracked_agency(http: httpx.AsyncClient, url: str) -> str | None:
    agency: str | None = (await http.get(url)).json().get("agency")
    return agency


async def _all_open(http: httpx.AsyncClient, sla: str, headers: dict[str, str]) -> bool:
    return all([(await http.get(f"{sla}/v1/tickets/{t}", headers=headers)).status_code == 200
                for t, _ in TICKETS])


async def _escalated(http: httpx.AsyncClient, sla: str, headers: dict[str, str]) -> str | None:
    """The id of an escalation of each of T-DLH and T-PDAM once both have one (T-DLH's)."""
    page = (await http.get(f"{sla}/v1/escalations", headers=headers, params={"limit": 200})).json()
    found = {e["ticket_id"]: e["escalation_id"] for e in page.get("escalations", [])}
    return found["T-DLH"] if {"T-DLH", "T-PDAM"} <= found.keys() else None


def expected(rule: Any, who: Who, *, tenant: str, ticket_agency: str | None,
             served: frozenset[str] = frozenset({CITY, PROVINCE}),
             names_ticket: bool = True) -> int | None:
    """The status the table promises (None: allowed, so a 2xx), written out from the table's
    meaning rather than by calling the guard's own decision function. The tickets walked are
    all of ``tenant``; a caller of another tenant the deployment serves is within its rights
    on its own tenant's data, and meets every ticket of ``tenant`` as one that does not exist."""
    if ANYONE in rule:
        return None
    if who.principal is None:
        return 401
    scope = rule.get(who.principal.role)
    if scope is None:
        return 403
    if who.principal.tenant not in served:  # refused for any id: a 403 reveals nothing
        return 404 if ticket_agency is not None and names_ticket else 403
    if who.principal.tenant != tenant and ticket_agency is not None:
        return 404
    if ticket_agency is not None:
        if scope is Scope.AGENCY and who.principal.agency != ticket_agency:
            return 404
        if scope is Scope.TRIAGE and ticket_agency != "TRIAGE":
            return 404
    return None


# Rows whose sample, when the guard lets the caller through, gets a set answer other than a
# 2xx: a citizen's reply with the right code while the agency is not waiting for one is a 409
# from the handler (test_tracking sends one that is accepted).
# Open311's routes are public rows whose handlers check the GeoReport api_key of the form:
# the walk's post carries none (test_open311 posts with one), and its complaint came through
# /v1 so it has no Open311 token.
ALLOWED_STATUS = {("POST", "/v1/complaints/{ticket_id}/replies"): 409,
                  ("POST", "/open311/v2/requests.{fmt}"): 403,
                  ("GET", "/open311/v2/tokens/{token}.{fmt}"): 404,
                  # the walk reads a file that does not exist: only the refusals are walked
                  ("GET", "/v1/tickets/{ticket_id}/attachments/{attachment_id}"): 404,
                  ("GET", "/v1/complaints/{ticket_id}/attachments/{attachment_id}"): 404,
                  # the walked tickets carry no dispute: an allowed caller passes the guard and
                  # finds nothing to accept (test_console_desks accepts a disputed one)
                  ("POST", "/v1/tickets/{ticket_id}/review/accept"): 409}
PNG = photo_png()


def _sample(endpoint: Endpoint, system: System, ticket_id: str | None) -> dict[str, Any]:
    """A request that succeeds when the caller is allowed. A new row needs a sample here."""
    path = endpoint.path.replace("{ticket_id}", ticket_id or system.tracking_id).replace(
        "{escalation_id}", system.escalation_id).replace("{fmt}", "json").replace(
        "{service_code}", "sampah").replace("{service_request_id}", system.tracking_id).replace(
        "{token}", "no-such-token").replace("{attachment_id}", "no-such-file")
    samples: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/v1/complaints"): {"json": COMPLAINT},
        ("POST", "/v1/tickets/{ticket_id}/events"): {"json": {"action": "note", "note": "dicek"}},
        ("POST", "/v1/tickets/{ticket_id}/route"): {"json": {"agency": "PUPR", "reason": "jalan"}},
        ("POST", "/v1/auth/token"): {"data": {"username": "admin.kota",
                                              "password": system.admin.password}},
        ("POST", "/v1/rulebook/reload"): {},
        ("POST", "/v1/policy/reload"): {},
        ("POST", "/v1/tickets/{ticket_id}/review/accept"): {},
        ("POST", "/v1/escalations/{escalation_id}/acknowledge"): {},
        ("POST", "/open311/v2/requests.{fmt}"): {"data": {
            "service_code": "sampah", "lat": "-3.79", "long": "102.26",
            "description": COMPLAINT["text"]}},
        ("POST", "/v1/complaints/{ticket_id}/attachments"): {"files": {"file": ("foto.png", PNG)}},
        ("POST", "/v1/tickets/{ticket_id}/attachments"): {"files": {"file": ("hasil.png", PNG)}},
        ("POST", "/v1/complaints/{ticket_id}/replies"): {
            "json": {"text": "Sudah saya kirim fotonya"},
            "headers": {"X-Tracking-Code": system.tracking_code}},
    }
    if endpoint.method == "GET" and endpoint.path.startswith("/v1/complaints/{ticket_id}/attachments"):
        return {"method": "GET", "path": path, "headers": {"X-Tracking-Code": system.tracking_code}}
    if endpoint.method == "GET":
        return {"method": "GET", "path": path}
    return {"method": endpoint.method, "path": path, **samples[(endpoint.method, endpoint.path)]}


def _walk_order(endpoint: Endpoint) -> int:
    # The one allowed manual routing moves its ticket out of the triage queue: walk it last.
    return 1 if endpoint.path.endswith("/route") else 0


async def test_every_row_of_the_permission_table_for_every_caller(system: System,
                                                                  settings: Settings) -> None:
    checked: list[str] = []
    wrong: list[str] = []
    async with httpx.AsyncClient(timeout=60) as http:
        for service in ("intake", "sla", "router", "notify", "mailbox", "lapor"):
            served = await _served_paths(http, system.urls[service])
            rows = sorted((e for e in PERMISSIONS if e.service in (service, "*")
                           and (e.method, e.path) in served), key=_walk_order)
            for endpoint in rows:
                rule = rule_for(service, endpoint.method, endpoint.path)
                assert rule is not None
                names_ticket = "{ticket_id}" in endpoint.path and service == "sla"
                # Intake's guarded rows naming a ticket (attachments) walk the tracked complaint.
                intake_ticket = "{ticket_id}" in endpoint.path and service == "intake" \
                    and ANYONE not in rule
                names_ticket = names_ticket or intake_ticket
                # The walked escalation is T-DLH's: an object of the home tenant, like a ticket.
                names_escalation = "{escalation_id}" in endpoint.path
                targets = ((system.tracking_id, system.tracking_agency),) if intake_ticket else \
                    TICKETS if names_ticket else \
                    ((None, "DLH"),) if names_escalation else ((None, None),)
                for ticket_id, agency in targets:
                    for who in system.callers:
                        want = expected(rule, who, tenant=settings.tenant, ticket_agency=agency,
                                        names_ticket=names_ticket)
                        sample = _sample(endpoint, system, ticket_id)
                        got = await http.request(
                            sample.pop("method"), system.urls[service] + sample.pop("path"),
                            headers={**sample.pop("headers", {}), **who.headers}, **sample)
                        line = (f"{service} {endpoint.method} {endpoint.path} [{ticket_id}] "
                                f"as {who.label}: want {want or '2xx'}, got {got.status_code}")
                        checked.append(line)
                        allowed = ALLOWED_STATUS.get((endpoint.method, endpoint.path))
                        if want is None and allowed is not None:
                            want = allowed
                        ok = (got.is_success if want is None else got.status_code == want)
                        if not ok:
                            wrong.append(f"{line} {got.text[:200]}")
                        if want == 401:
                            assert got.headers.get("www-authenticate", "").startswith("Bearer")
    assert wrong == [], "\n".join(wrong)
    # The chat service's rows are its providers' webhooks: public in the table, each checking
    # the provider's signature or secret instead of a caller (tests/integration/test_chat.py
    # sends them unsigned, forged and signed).
    specific = [e for e in PERMISSIONS if e.service not in ("*", "chat")]
    assert all(any(f" {e.method} {e.path} " in line for line in checked) for e in specific)
    assert len(checked) > 150


async def _served_paths(http: httpx.AsyncClient, base: str) -> set[tuple[str, str]]:
    spec = (await http.get(f"{base}/openapi.json")).json()
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


async def test_an_officer_signs_in_resolves_own_agency_ticket_and_is_refused_another(
        system: System) -> None:
    sla, intake = system.urls["sla"], system.urls["intake"]
    officer = await system.accounts.user("andi.dlh", "officer", "DLH")
    async with httpx.AsyncClient(timeout=60) as http:
        signed = await http.post(f"{sla}/v1/auth/token",
                                 data={"username": "andi.dlh", "password": officer.password})
        assert signed.status_code == 200, signed.text
        token = signed.json()
        assert (token["token_type"], token["expires_in"]) == ("bearer", 1800)
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        seen = await http.get(f"{sla}/v1/tickets/T-DLH", headers=bearer)
        resolved = await http.post(f"{sla}/v1/tickets/T-DLH/events", headers=bearer,
                                   json={"action": "resolved", "note": "Sampah sudah diangkut"})
        other = await http.get(f"{sla}/v1/tickets/T-PDAM", headers=bearer)
        other_act = await http.post(f"{sla}/v1/tickets/T-PDAM/events", headers=bearer,
                                    json={"action": "resolved"})
        unknown = await http.get(f"{sla}/v1/tickets/T-NOPE", headers=bearer)
        not_mine = await http.post(f"{sla}/v1/tickets/T-DLH/events", headers=bearer,
                                   json={"action": "reprioritised", "priority": "low"})
        tracking = await http.get(f"{intake}/v1/complaints/{system.tracking_id}")
    assert seen.status_code == 200 and seen.json()["agency"] == "DLH"
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["history"][-1]["actor"] == "andi.dlh (officer, DLH)"
    # another agency's ticket answers exactly as a ticket that does not exist
    assert other.status_code == other_act.status_code == unknown.status_code == 404
    assert other.json()["detail"] == "no ticket T-PDAM"
    assert not_mine.status_code == 403  # reprioritising is the agency head's
    assert tracking.status_code == 200  # the citizen's view stays public


async def test_escalations_across_agencies_and_tenants(system: System) -> None:
    """An agency head lists its own agency's escalations only and is refused another's; another
    tenant's supervisor can neither list nor acknowledge; an unknown escalation is a 404."""
    sla = system.urls["sla"]
    who = {c.label: c.headers for c in system.callers}
    url = f"{sla}/v1/escalations"
    ack = f"{url}/{system.escalation_id}/acknowledge"
    async with httpx.AsyncClient(timeout=60) as http:
        own = await http.get(url, headers=who["agency_head:DLH@home"], params={"limit": 200})
        other_agency = await http.get(url, headers=who["agency_head:DLH@home"],
                                      params={"agency": "PDAM"})
        everything = await http.get(url, headers=who["supervisor:-@home"], params={"limit": 200})
        stranger_list = await http.get(url, headers=who["supervisor:-@kota-lain"])
        stranger_ack = await http.post(ack, headers=who["supervisor:-@kota-lain"])
        head_ack = await http.post(ack, headers=who["agency_head:DLH@home"])
        unknown = await http.post(f"{url}/T-NOPE:a1:response:1:0/acknowledge",
                                  headers=who["supervisor:-@home"])
    assert own.status_code == 200 and {e["agency"] for e in own.json()["escalations"]} == {"DLH"}
    assert {"DLH", "PDAM"} <= {e["agency"] for e in everything.json()["escalations"]}
    assert other_agency.status_code == 403
    assert (stranger_list.status_code, stranger_ack.status_code, head_ack.status_code) == (403, 403, 403)
    assert unknown.status_code == 404


async def test_wrong_passwords_lock_the_account_for_a_while(settings: Settings,
                                                            accounts: Accounts) -> None:
    # The per-address sign-in limit (10 a minute, test_abuse's subject) would answer 429 to the
    # polling below for the rest of its minute, long after the 2 s lock-out ended.
    settings = settings.model_copy(update={"auth_max_failed_sign_ins": 3, "auth_lockout_seconds": 2.0,
                                           "rate_limit_sign_in": "600/minute"})
    user = await accounts.user("rina.dlh", "officer", "DLH")
    async with serving(router_app(settings), settings.router_port) as url, \
            httpx.AsyncClient(timeout=60) as http:

        async def sign_in(password: str) -> httpx.Response:
            return await http.post(f"{url}/v1/auth/token",
                                   data={"username": "rina.dlh", "password": password})

        before = await sign_in(user.password)
        wrong = [await sign_in("salah-salah-salah") for _ in range(3)]
        locked = await sign_in(user.password)
        unknown = await http.post(f"{url}/v1/auth/token",
                                  data={"username": "nobody", "password": "whatever-it-is"})

        async def unlocked() -> bool:
            return (await sign_in(user.password)).status_code == 200

        assert await eventually(unlocked, timeout=60)
    assert before.status_code == 200
    assert [w.status_code for w in wrong] == [400, 400, 400]
    assert locked.status_code == 400
    assert locked.json() == wrong[0].json() == unknown.json()  # no hint which part was wrong
    assert locked.json()["error"] == "invalid_grant"


async def test_expired_tokens_and_revoked_accounts_and_keys_stop_working(
        settings: Settings, accounts: Accounts) -> None:
    head = await accounts.user("kabid.dlh", "agency_head", "DLH")
    expired = accounts.auth.issue(Principal("user", "kabid.dlh", settings.tenant, "agency_head", "DLH"),
                                  now=time.time() - settings.auth_token_seconds - 60)
    web = await accounts.channel("web")
    async with serving(intake_app(settings), settings.intake_port) as intake, \
            serving(sla_app(settings), settings.sla_port) as sla, httpx.AsyncClient(timeout=60) as http:
        report = f"{sla}/v1/reports/compliance"
        fresh = await http.get(report, headers=head.headers)
        stale = await http.get(report, headers={"Authorization": f"Bearer {expired.access_token}"})
        forged = await http.get(report, headers={
            "Authorization": head.headers["Authorization"][:-2] + "xx"})
        posted = await http.post(f"{intake}/v1/complaints", json=COMPLAINT, headers=web.headers)
        await accounts.store.revoke_key(web.name)
        await accounts.store.revoke_user("kabid.dlh")

        async def refused_key() -> httpx.Response | None:
            # A checked key is trusted for api_key_cache_seconds, then asked again.
            answer = await http.post(f"{intake}/v1/complaints", json=COMPLAINT, headers=web.headers)
            return answer if answer.status_code != 202 else None

        after_key = await eventually(refused_key, timeout=settings.api_key_cache_seconds + 30)
        assert after_key is not None, "the revoked key still posts"
        after_user = await http.get(report, headers=head.headers)
        sign_in = await http.post(f"{sla}/v1/auth/token",
                                  data={"username": "kabid.dlh", "password": head.password})
    assert (fresh.status_code, posted.status_code) == (200, 202)
    assert (stale.status_code, forged.status_code) == (401, 401)
    assert (after_key.status_code, after_user.status_code, sign_in.status_code) == (401, 401, 400)
    assert after_key.headers["www-authenticate"].startswith("Bearer")


async def test_with_the_account_store_down_no_call_gets_through(settings: Settings,
                                                                accounts: Accounts) -> None:
    """The store is a real address with nothing listening: credentials cannot be checked, so
    protected calls and sign-in answer 503 (never 200, never a 500); no credentials is still 401."""
    supervisor = await accounts.user("inspektorat", "supervisor")
    web = await accounts.channel("web")
    down = settings.model_copy(update={
        "mongodb_url": f"mongodb://127.0.0.1:{free_port()}/?directConnection=true&serverSelectionTimeoutMS=300"})
    client = mongo.connect(down)
    app = FastAPI(dependencies=[guard("sla")])  # as the SLA app mounts it, on the dead store
    app.state.auth = Authenticator(down, AccountStore(mongo.database(client, down)))
    install_abuse_limits(app, down)  # as every app does: sign-in is rate limited
    add_store_errors(app, down)  # and the one shape of every 503
    app.include_router(build_auth_router())
    app.include_router(build_reports_router())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sla",
                                 timeout=60) as http:
        report = await http.get("/v1/reports/compliance", headers=supervisor.headers)
        keyed = await http.get("/v1/reports/compliance", headers=web.headers)
        sign_in = await http.post("/v1/auth/token", data={"username": "inspektorat",
                                                          "password": supervisor.password})
        anonymous = await http.get("/v1/reports/compliance")
    await client.close()
    assert (report.status_code, keyed.status_code, sign_in.status_code) == (503, 503, 503)
    assert report.headers["retry-after"] == sign_in.headers["retry-after"] == "5"
    shape = {"errors": [{"field": None, "problem": "the account store is unreachable; try again shortly"}]}
    assert report.json() == keyed.json() == sign_in.json() == shape
    assert anonymous.status_code == 401
