"""How the claims of the city's identity provider become a Disposisi principal, and the
settings the verifier refuses to start with (pure: no provider is asked)."""

from typing import Any

import jwt
import pytest

from shared.auth import Authenticator
from shared.oidc import OidcConfigError, OidcRejected, OidcVerifier
from shared.permissions import Principal
from shared.settings import Settings

SECRET = "x" * 40
ISSUER = "https://sso.bengkulukota.go.id/realms/pemkot"


def _verifier(**overrides: Any) -> OidcVerifier:
    return OidcVerifier(Settings(auth_secret=SECRET, oidc_issuer=ISSUER, oidc_client_id="disposisi",
                                 **overrides))


def _rejection(verifier: OidcVerifier, claims: dict[str, Any]) -> OidcRejected:
    with pytest.raises(OidcRejected) as caught:
        verifier.principal_of({"sub": "siti", **claims})
    return caught.value


def test_role_agency_and_the_services_own_tenant_come_from_the_claims() -> None:
    verifier = _verifier()
    assert verifier.principal_of({"sub": "andi", "disposisi_role": "officer",
                                  "disposisi_agency": "DLH"}) == Principal(
        "user", "andi", "kota-bengkulu", "officer", "DLH")
    # an agency claim means nothing for a role that is not bound to an agency
    assert verifier.principal_of({"sub": "siti", "disposisi_role": "supervisor",
                                  "disposisi_agency": "DLH"}).agency is None
    # a list of the provider's groups may carry exactly one Disposisi role among others
    assert verifier.principal_of({"sub": "siti", "disposisi_role": ["pns", "triage"]}).role == "triage"


def test_claim_names_and_a_tenant_claim_are_settings() -> None:
    verifier = _verifier(oidc_role_claim="peran", oidc_agency_claim="opd", oidc_tenant_claim="kota")
    principal = verifier.principal_of({"sub": "andi", "peran": "agency_head", "opd": "PDAM",
                                       "kota": "kota-lain"})
    assert principal == Principal("user", "andi", "kota-lain", "agency_head", "PDAM")
    missing_tenant = _rejection(verifier, {"peran": "supervisor"})
    assert (missing_tenant.status, missing_tenant.reason) == (
        401, "identity provider token: no 'kota' claim (tenant)")


@pytest.mark.parametrize(("claims", "status", "words"), [
    ({}, 401, "no 'disposisi_role' claim"),
    ({"disposisi_role": ""}, 401, "no 'disposisi_role' claim"),
    ({"disposisi_role": "walikota"}, 403, "names no Disposisi role"),
    ({"disposisi_role": "service"}, 403, "names no Disposisi role"),  # keys' roles, not people's
    ({"disposisi_role": ["officer", "admin"]}, 403, "more than one Disposisi role"),
    ({"disposisi_role": "officer"}, 401, "no 'disposisi_agency' claim"),
    ({"disposisi_role": "officer", "disposisi_agency": ""}, 401, "no 'disposisi_agency' claim"),
])
def test_claims_that_name_no_usable_person_are_refused_with_the_reason(
        claims: dict[str, Any], status: int, words: str) -> None:
    rejected = _rejection(_verifier(), claims)
    assert rejected.status == status and words in rejected.reason


def test_an_issuer_without_a_client_id_stops_the_service_at_start() -> None:
    with pytest.raises(OidcConfigError, match="DISPOSISI_OIDC_CLIENT_ID"):
        OidcVerifier(Settings(auth_secret=SECRET, oidc_issuer=ISSUER))
    with pytest.raises(OidcConfigError):
        Authenticator(Settings(auth_secret=SECRET, oidc_issuer=ISSUER), accounts=None)  # type: ignore[arg-type]


def test_only_tokens_naming_the_configured_issuer_take_the_provider_path() -> None:
    verifier = _verifier()
    ours = jwt.encode({"iss": ISSUER + "/", "sub": "siti"}, SECRET, algorithm="HS256")
    local = jwt.encode({"iss": "disposisi", "sub": "siti"}, SECRET, algorithm="HS256")
    assert verifier.issued_by_it(ours)  # a trailing slash is the same issuer
    assert not verifier.issued_by_it(local)
    assert not verifier.issued_by_it("not-a-jwt")
