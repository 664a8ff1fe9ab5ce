"""Sign-in with the city's own identity provider (OpenID Connect), beside local accounts.

When ``oidc_issuer`` is set, a bearer token whose ``iss`` is that issuer is checked here rather
than as a Disposisi token: its signature against the provider's published keys (found through
``{issuer}/.well-known/openid-configuration``), its issuer, audience and expiry. The person's
role, agency and tenant are read from claims the city's provider adds (``oidc_*_claim``).

Nothing about the person is stored: the provider is the source of truth, so a role change
there applies to the next token it issues.
"""

import asyncio
import json
import threading
import time
import urllib.request
from collections.abc import Mapping
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKClientError, PyJWKSet
from jwt.exceptions import PyJWKSetError

from shared.accounts import AGENCY_ROLES, Role
from shared.permissions import Principal
from shared.settings import Settings

# Asymmetric algorithms only: an HMAC token would be "signed" with a secret nobody shares here.
ALGORITHMS = ("RS256", "ES256")
DISCOVERY_PATH = "/.well-known/openid-configuration"
_REFRESH_COOLDOWN_SECONDS = 30.0  # an unknown key id re-reads the keys at most this often
_PEOPLE_ROLES = frozenset(role.value for role in Role)


class OidcConfigError(ValueError):
    pass


class OidcRejected(Exception):
    """A provider's token Disposisi will not accept: ``status`` 401 (not a valid credential)
    or 403 (a valid person whose role Disposisi does not know)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class IdentityProviderDown(Exception):
    """The provider's discovery document or keys cannot be read now."""


def _rejected(reason: str) -> OidcRejected:
    return OidcRejected(401, f"identity provider token: {reason}")


class OidcVerifier:
    """Checks tokens of one issuer; keys are cached and re-read on an unknown key id."""

    def __init__(self, settings: Settings) -> None:
        if not settings.oidc_issuer:
            raise OidcConfigError("DISPOSISI_OIDC_ISSUER is not set")
        if not settings.oidc_client_id:
            raise OidcConfigError("DISPOSISI_OIDC_CLIENT_ID must be set when DISPOSISI_OIDC_ISSUER is")
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.audience = settings.oidc_audience or settings.oidc_client_id
        self.settings = settings
        self._jwks: PyJWKClient | None = None
        self._declared_issuer = self.issuer  # as the discovery document spells it (a trailing /)
        self._lock = threading.Lock()
        self._last_refresh = 0.0

    def issued_by_it(self, token: str) -> bool:
        """Whether the token claims to come from this provider (not yet verified)."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        issuer = claims.get("iss")
        return isinstance(issuer, str) and issuer.rstrip("/") == self.issuer

    async def principal(self, token: str) -> Principal:
        claims = await asyncio.to_thread(self.verify, token)
        return self.principal_of(claims)

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims once signature, issuer, audience and expiry hold (blocking I/O
        on a cache miss: call from a thread)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise _rejected("not a readable JWT") from error
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise _rejected(f"signature algorithm {alg!r} is not accepted ({', '.join(ALGORITHMS)})")
        kid = header.get("kid")
        try:
            try:
                return self._decode(token, self._key(kid, str(alg)), str(alg))
            except jwt.InvalidSignatureError:
                # Keys rotated at the provider (a kid-less token names no key to look up):
                # read them again, at most once per cooldown, and try once more.
                if not self._may_refresh():
                    raise
                return self._decode(token, self._key(kid, str(alg), refreshed=True), str(alg))
        except jwt.ExpiredSignatureError as error:
            raise _rejected("expired; sign in again at the identity provider") from error
        except jwt.InvalidAudienceError as error:
            raise _rejected(f"issued for another client (aud is not {self.audience!r})") from error
        except jwt.PyJWTError as error:  # PyJWT's messages name the failed check, never a value
            raise _rejected(str(error)) from error

    def _decode(self, token: str, key: PyJWK, alg: str) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[alg], audience=self.audience, issuer=self._declared_issuer,
            leeway=self.settings.oidc_leeway_seconds,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        return claims

    def principal_of(self, claims: Mapping[str, Any]) -> Principal:
        role = self._role(claims.get(self.settings.oidc_role_claim))
        agency = None
        if role in AGENCY_ROLES:
            agency = self._text_claim(claims, self.settings.oidc_agency_claim, f"role {role}'s agency")
        tenant = self.settings.tenant
        if self.settings.oidc_tenant_claim:
            tenant = self._text_claim(claims, self.settings.oidc_tenant_claim, "tenant")
        return Principal("user", str(claims["sub"]), tenant, role, agency)

    def _role(self, value: object) -> str:
        claim = self.settings.oidc_role_claim
        if value is None or value == "" or value == []:
            raise _rejected(f"no {claim!r} claim (the Disposisi role); ask the provider's "
                            "administrator to add it")
        values = value if isinstance(value, list) else [value]
        known = [v for v in values if isinstance(v, str) and v in _PEOPLE_ROLES]
        if len(known) == 1:
            return known[0]
        if not known:
            raise OidcRejected(403, f"claim {claim!r} names no Disposisi role "
                                    f"({', '.join(sorted(_PEOPLE_ROLES))})")
        raise OidcRejected(403, f"claim {claim!r} names more than one Disposisi role")

    @staticmethod
    def _text_claim(claims: Mapping[str, Any], claim: str, meaning: str) -> str:
        value = claims.get(claim)
        if not isinstance(value, str) or not value:
            raise _rejected(f"no {claim!r} claim ({meaning})")
        return value

    # --- keys ---------------------------------------------------------------------------------

    def _key(self, kid: object, alg: str, *, refreshed: bool = False) -> PyJWK:
        client = self._client()
        try:
            key = _pick(client.get_jwk_set(refresh=refreshed), kid, alg)
            if key is None and not refreshed and self._may_refresh():  # a new kid: keys rotated
                key = _pick(client.get_jwk_set(refresh=True), kid, alg)
        except (PyJWKClientError, PyJWKSetError) as error:
            raise IdentityProviderDown(f"the identity provider's keys are unreadable: {error}") from error
        if key is None:
            raise _rejected("signed with a key the identity provider does not publish")
        return key

    def _may_refresh(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last_refresh < _REFRESH_COOLDOWN_SECONDS:
                return False
            self._last_refresh = now
            return True

    def _client(self) -> PyJWKClient:
        with self._lock:
            if self._jwks is None:
                self._jwks = PyJWKClient(self._discover_jwks_uri(),
                                         lifespan=self.settings.oidc_jwks_cache_seconds,
                                         timeout=self.settings.oidc_timeout_seconds)
            return self._jwks

    def _discover_jwks_uri(self) -> str:
        url = self.issuer + DISCOVERY_PATH
        try:
            with urllib.request.urlopen(url, timeout=self.settings.oidc_timeout_seconds) as response:
                document = json.load(response)
        except (OSError, ValueError) as error:  # URLError is an OSError; bad JSON a ValueError
            raise IdentityProviderDown(f"cannot read {url}: {error}") from error
        if not isinstance(document, dict) or not isinstance(document.get("jwks_uri"), str):
            raise IdentityProviderDown(f"{url} names no jwks_uri")
        declared = str(document.get("issuer", ""))
        if declared.rstrip("/") != self.issuer:
            # OpenID Connect Discovery 4.3: the document must name the issuer it was fetched for
            raise IdentityProviderDown(f"{url} names another issuer")
        self._declared_issuer = declared  # tokens carry it exactly so
        return str(document["jwks_uri"])


def _pick(keys: PyJWKSet, kid: object, alg: str) -> PyJWK | None:
    """The signing key named by ``kid``; without a kid, the provider's only key for ``alg``
    (OpenID Connect Core 10.1 lets a provider with a single key omit it)."""
    usable = [k for k in keys.keys if k.public_key_use in ("sig", None) and k.algorithm_name == alg]
    if kid is not None:
        return next((k for k in usable if k.key_id == kid), None)
    return usable[0] if len(usable) == 1 else None

