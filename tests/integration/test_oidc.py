"""Sign-in with the city's identity provider: the SLA service, running on a real port, takes ID
tokens that a real OpenID Connect provider on loopback issued through the authorization code
flow. The role claim decides what a person may do; tokens of another issuer, for another
client, expired, forged or tampered with are refused; local accounts keep working beside it;
an unreachable provider answers 503 until it is back, and rotated keys are re-read."""

import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import jwt
import pytest

from services.sla.app import create_app as sla_app
from shared.contracts import Topics, utc_now
from shared.embedded import free_port
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.oidc_support import CLIENT_ID, IdentityProvider, identity_provider
from tests.integration.sla_support import routed
from tests.integration.support import eventually, produce, serving

pytestmark = pytest.mark.integration

REPORT = "/v1/reports/compliance"
SUPERVISOR = {"disposisi_role": "supervisor"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def _sla(settings: Settings, issuer: str) -> AsyncIterator[str]:
    configured = settings.model_copy(update={"oidc_issuer": issuer, "oidc_client_id": CLIENT_ID})
    async with serving(sla_app(configured), configured.sla_port) as url:
        yield url


def _tampered(token: str, **changes: object) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, **changes}).encode()).rstrip(b"=")
    return f"{header}.{forged.decode()}.{signature}"


async def _status(http: httpx.AsyncClient, url: str, token: str) -> tuple[int, str]:
    response = await http.get(url, headers=_bearer(token))
    return response.status_code, response.json().get("detail", "")


async def test_the_role_claim_decides_what_a_person_of_the_city_provider_may_do(
        settings: Settings, accounts: Accounts) -> None:
    local = await accounts.user("inspektorat.lokal", "supervisor")
    with identity_provider() as idp, identity_provider() as stranger:
        async with _sla(settings, idp.issuer) as sla, httpx.AsyncClient(timeout=60) as http:
            await produce(settings.kafka_bootstrap_servers, Topics.ROUTED,
                          [routed("T-DLH", utc_now(), agency="DLH"),
                           routed("T-PDAM", utc_now(), agency="PDAM")])
            supervisor = await idp.sign_in("siti@bengkulukota.go.id", SUPERVISOR)

            async def both_open() -> bool:
                return all([(await http.get(f"{sla}/v1/tickets/{t}", headers=_bearer(supervisor))
                             ).status_code == 200 for t in ("T-DLH", "T-PDAM")])

            assert await eventually(both_open)
            officer = await idp.sign_in("andi", {"disposisi_role": "officer",
                                                 "disposisi_agency": "DLH"})
            head = await idp.sign_in("budi", {"disposisi_role": ["pegawai", "agency_head"],
                                              "disposisi_agency": "DLH"})
            assert (await _status(http, f"{sla}/v1/tickets/T-DLH", officer))[0] == 200
            assert (await _status(http, f"{sla}/v1/tickets/T-PDAM", officer))[0] == 404
            assert await _status(http, sla + REPORT, officer) == (
                403, "role officer may not call this endpoint")
            assert (await _status(http, sla + REPORT, head))[0] == 200
            assert (await _status(http, sla + REPORT, supervisor))[0] == 200
            noted = await http.post(f"{sla}/v1/tickets/T-DLH/events", headers=_bearer(officer),
                                    json={"action": "note", "note": "dicek ke lokasi"})
            assert noted.is_success, noted.text
            # local accounts keep working beside the provider
            assert (await http.get(sla + REPORT, headers=local.headers)).status_code == 200

            mayor = await idp.sign_in("walikota", {"disposisi_role": "walikota"})
            code, reason = await _status(http, sla + REPORT, mayor)
            assert code == 403 and "names no Disposisi role" in reason
            channel = await idp.sign_in("bot", {"disposisi_role": "channel"})
            assert (await _status(http, sla + REPORT, channel))[0] == 403, "people only"
            nobody = await idp.sign_in("tamu", {"email": "tamu@example.org"})
            code, reason = await _status(http, sla + REPORT, nobody)
            assert code == 401 and "'disposisi_role'" in reason
            homeless = await idp.sign_in("cici", {"disposisi_role": "officer"})
            code, reason = await _status(http, f"{sla}/v1/tickets/T-DLH", homeless)
            assert code == 401 and "'disposisi_agency'" in reason

            await _refused(http, sla, idp, stranger, supervisor)


async def _refused(http: httpx.AsyncClient, sla: str, idp: IdentityProvider,
                   stranger: IdentityProvider, supervisor: str) -> None:
    other_issuer = await stranger.sign_in("siti", SUPERVISOR)
    other_client = await idp.sign_in("siti", SUPERVISOR, client_id="aplikasi-lain")
    now = int(time.time())
    claims = {"iss": idp.issuer, "aud": CLIENT_ID, "sub": "siti", "iat": now, "exp": now + 600,
              **SUPERVISOR}
    forged = {
        "another issuer": other_issuer,
        "another client": other_client,
        "tampered claims": _tampered(supervisor, disposisi_role="admin", sub="mallory"),
        "HMAC-signed": jwt.encode(claims, "a-guessed-shared-secret-of-32-chars!", algorithm="HS256"),
        "unsigned": jwt.encode(claims, "", algorithm="none"),
        "not a JWT": "opaque-access-token",
    }
    for label, token in forged.items():
        response = await http.get(sla + REPORT, headers=_bearer(token))
        assert response.status_code == 401, f"{label}: {response.status_code} {response.text}"
        assert response.headers["www-authenticate"].startswith("Bearer"), label
    assert "another client" in (await _status(http, sla + REPORT, other_client))[1]
    assert "algorithm 'HS256' is not accepted" in (
        await _status(http, sla + REPORT, forged["HMAC-signed"]))[1]
    assert (await _status(http, sla + REPORT, supervisor))[0] == 200, "the real one still passes"


async def test_an_unreachable_provider_answers_503_then_keys_are_cached_and_re_read_on_rotation(
        settings: Settings, accounts: Accounts) -> None:
    local = await accounts.user("inspektorat.lokal", "supervisor")
    port = free_port()
    with identity_provider(port) as before:
        early = await before.sign_in("siti", SUPERVISOR)
    # configured with a trailing slash, as operators often copy it; the provider writes none
    async with _sla(settings, f"http://127.0.0.1:{port}/") as sla, \
            httpx.AsyncClient(timeout=60) as http:
        down = await http.get(sla + REPORT, headers=_bearer(early))
        assert down.status_code == 503 and down.headers["retry-after"] == "5", down.text
        assert down.json() == {"errors": [{
            "field": None, "problem": "the identity provider is unreachable; try again shortly"}]}
        assert (await http.get(sla + REPORT, headers=local.headers)).status_code == 200

        with identity_provider(port) as idp:  # back, with a new signing key
            token = await idp.sign_in("siti", SUPERVISOR)
            assert (await _status(http, sla + REPORT, token))[0] == 200
        # down again: the keys read before still verify its tokens
        assert (await _status(http, sla + REPORT, token))[0] == 200

        with identity_provider(port, token_lifetime=timedelta(minutes=-10)) as rotated:
            stale = await rotated.sign_in("siti", SUPERVISOR)
            # signed with a key the service has not seen: it re-reads the keys, so the answer
            # is about the expiry rather than the signature
            code, reason = await _status(http, sla + REPORT, stale)
            assert code == 401 and "expired" in reason, reason
