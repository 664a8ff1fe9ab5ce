"""Sign-in and the permission guard every service mounts.

People sign in with the OAuth2 password flow (``POST /v1/auth/token``) and send the signed,
expiring access token as ``Authorization: Bearer``; channels and services send an API key as
``X-API-Key``. ``guard(service)`` is an app-wide dependency: it finds the route's row in
``shared.permissions.PERMISSIONS``, authenticates the caller when the row is not public, and
leaves the outcome in ``request.state.access`` for handlers that must check a ticket's agency.
"""

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.params import Depends as DependsParam
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel
from pymongo.errors import PyMongoError

from shared.accounts import AccountStore
from shared.audit import Actor, ActorKind
from shared.limits import rate_limit
from shared.oidc import IdentityProviderDown, OidcRejected, OidcVerifier
from shared.permissions import Decision, Principal, Scope, decide, rule_for, sees_ticket
from shared.runtime import Unavailable
from shared.settings import Settings

ALGORITHM = "HS256"
ISSUER = "disposisi"
TOKEN_PATH = "/v1/auth/token"
MIN_SECRET_LENGTH = 32

log = logging.getLogger(__name__)
_bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_PATH, auto_error=False)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)
_CREDENTIALS = (_bearer, _api_key)  # in the API document's order
_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


class AuthConfigError(ValueError):
    pass


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


def check_secret(settings: Settings) -> str:
    """The token signing key; a service refuses to start without a strong one."""
    secret = settings.auth_secret
    if len(secret) < MIN_SECRET_LENGTH:
        raise AuthConfigError(
            f"DISPOSISI_AUTH_SECRET must be set to at least {MIN_SECRET_LENGTH} random characters "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`); "
            "`disposisi dev` makes one for itself")
    return secret


MAX_CACHED_KEYS = 10_000  # keys are few (one per channel or service); this bounds a flood


@dataclass
class Authenticator:
    """Issues and checks credentials for one service of one tenant."""

    settings: Settings
    accounts: AccountStore
    tenants: frozenset[str] = frozenset()  # the tenants served here; empty: the setting `tenant`

    def __post_init__(self) -> None:
        self._secret = check_secret(self.settings)
        # The city's identity provider, when configured: its tokens are accepted beside ours.
        self._oidc = OidcVerifier(self.settings) if self.settings.oidc_issuer else None
        if not self.tenants:
            self.tenants = frozenset({self.settings.tenant})
        # key -> (its principal or None when refused, monotonic time it was checked)
        self._keys: dict[str, tuple[Principal | None, float]] = {}
        # key -> its lookup in flight: concurrent requests with one key wait for one lookup
        self._looking_up: dict[str, asyncio.Task[Principal | None]] = {}

    @property
    def tenant(self) -> str:
        """The home tenant."""
        return self.settings.tenant

    def issue(self, principal: Principal, *, now: float | None = None) -> TokenResponse:
        issued = int(now if now is not None else time.time())
        lifetime = int(self.settings.auth_token_seconds)
        claims = {"sub": principal.name, "tenant": principal.tenant, "role": principal.role,
                  "agency": principal.agency, "iat": issued, "exp": issued + lifetime,
                  "jti": uuid.uuid4().hex, "iss": ISSUER}
        return TokenResponse(access_token=jwt.encode(claims, self._secret, algorithm=ALGORITHM),
                             expires_in=lifetime)

    async def from_token(self, token: str) -> Principal | None:
        """The person a valid, unexpired token names, if their account is still active. Role,
        agency and tenant come from the account now, so a change applies at once. A token of the
        city's identity provider names the person by its claims instead (``shared.oidc``); it
        raises ``OidcRejected`` with the reason when refused."""
        if self._oidc is not None and self._oidc.issued_by_it(token):
            return await self._oidc.principal(token)
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], issuer=ISSUER,
                                options={"require": ["exp", "sub", "tenant", "jti"]})
        except jwt.PyJWTError:
            return None
        user = await self.accounts.active_user(str(claims["sub"]))
        if user is None or user["tenant"] != claims["tenant"]:
            return None
        return Principal("user", user["_id"], user["tenant"], user["role"], user["agency"])

    async def from_key(self, key: str) -> Principal | None:
        """The channel or service a valid key names; an answer is reused for
        ``api_key_cache_seconds`` (a refused key is asked again: it may be new). Requests that
        come with one key while it is being looked up wait for that lookup: a burst of a
        channel's posts (at start, or when its answer expires) costs the store one lookup."""
        known = self._keys.get(key)
        if known is not None and time.monotonic() - known[1] < self.settings.api_key_cache_seconds:
            return known[0]
        lookup = self._looking_up.get(key)
        if lookup is None:
            lookup = self._looking_up[key] = asyncio.create_task(self._look_up(key))
            lookup.add_done_callback(lambda done: self._looked_up(key, done))
        # Shielded: a caller that gives up (its client went away) does not cancel the lookup
        # the other callers wait for.
        return await asyncio.shield(lookup)

    def _looked_up(self, key: str, lookup: "asyncio.Task[Principal | None]") -> None:
        if self._looking_up.get(key) is lookup:
            del self._looking_up[key]
        if not lookup.cancelled():
            lookup.exception()  # retrieved, so one whose callers all gave up logs no warning

    async def _look_up(self, key: str) -> Principal | None:
        now = time.monotonic()
        doc = await self.accounts.key(key)
        if doc is None:
            self._keys.pop(key, None)
            return None
        principal = Principal(doc["kind"], doc["name"], doc["tenant"], doc["kind"])
        if self.settings.api_key_cache_seconds > 0:
            if len(self._keys) >= MAX_CACHED_KEYS:
                self._keys.clear()
            self._keys[key] = (principal, now)
        return principal

    async def sign_in(self, username: str, password: str) -> TokenResponse | None:
        outcome = await self.accounts.sign_in(
            username, password, max_failures=self.settings.auth_max_failed_sign_ins,
            lockout_seconds=self.settings.auth_lockout_seconds)
        if outcome.user is None:
            return None
        user = outcome.user
        return self.issue(Principal("user", user["_id"], user["tenant"], user["role"], user["agency"]))


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, reason,
                         headers={"WWW-Authenticate": 'Bearer realm="disposisi"'})


def _store_down(settings: Settings, what: str = "the account store") -> Unavailable:
    return Unavailable(f"{what} is unreachable; try again shortly",
                       retry_after=settings.store_retry_after_seconds)


@dataclass(frozen=True)
class Access:
    """What the guard allowed for this request."""

    principal: Principal | None
    scope: Scope

    @property
    def tenant(self) -> str:
        """The caller's tenant: every read and write of the request is within it."""
        assert self.principal is not None, "a public call has no tenant"
        return self.principal.tenant

    def sees(self, ticket_agency: str, *, disputed: bool = False) -> bool:
        return sees_ticket(self.scope, self.principal, ticket_agency, disputed=disputed)

    def require_ticket(self, ticket_id: str, ticket_agency: str | None, *,
                       disputed: bool = False) -> None:
        """404, exactly as for an unknown ticket, when the caller may not see this one."""
        if ticket_agency is None or not self.sees(ticket_agency, disputed=disputed):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id}")

    @property
    def actor(self) -> str:
        assert self.principal is not None, "actions are never public"
        return self.principal.actor

    @property
    def audit_actor(self) -> Actor:
        """The signed-in caller as the audit log records it."""
        assert self.principal is not None, "actions are never public"
        p = self.principal
        kind: ActorKind = "person" if p.kind == "user" else "service" if p.kind == "service" else "channel"
        return Actor(name=p.name, role=p.role, agency=p.agency, kind=kind)


def request_id_of(request: Request) -> str:
    """The caller's ``X-Request-ID`` (so a proxy's id reaches the audit log), else a new one."""
    given = request.headers.get("x-request-id", "")
    return given[:64] if given.strip() else uuid.uuid4().hex


def access_of(request: Request) -> Access:
    access: Access = request.state.access
    return access


def own_agency_filter(access: Access, asked: str | None, listing: str) -> str | None:
    """The agency a list is filtered to: an agency-scoped caller (an agency head) sees its own
    agency's ``listing`` only, and asking for another is refused (403); a wider scope keeps
    what it asked for (None: every agency)."""
    if access.scope is not Scope.AGENCY:
        return asked
    own = access.principal.agency if access.principal else None
    if own is None or (asked is not None and asked != own):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"an agency head sees the {listing} of its own agency only")
    return own


def guard(service: str) -> DependsParam:
    """The app-wide dependency enforcing the permission table for ``service``."""

    # The credentials are read here, not declared as FastAPI dependencies: FastAPI solves
    # each dependency again on every request (~20 us each, as much as the rest of the
    # guard); ``document_credentials`` puts them in the API document as those did.
    async def enforce(request: Request) -> None:
        route = request.scope.get("route")
        path = route.path if isinstance(route, APIRoute) else request.url.path
        rule = rule_for(service, request.method, path)
        auth: Authenticator = request.app.state.auth
        probe = decide(rule, None, tenant=auth.tenants, names_ticket=False)
        if probe.status is None:  # public: credentials are not even read
            request.state.access = Access(None, Scope.PUBLIC)
            return
        principal = await _principal(auth, await _bearer(request), await _api_key(request))
        decision: Decision = decide(rule, principal, tenant=auth.tenants,
                                    names_ticket="{ticket_id}" in path)
        if decision.status == status.HTTP_401_UNAUTHORIZED:
            raise _unauthorized(decision.reason)
        if decision.status == status.HTTP_404_NOT_FOUND:
            ticket_id = request.path_params.get("ticket_id")
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id}")
        if decision.status is not None or decision.scope is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, decision.reason)
        request.state.access = Access(principal, decision.scope)

    dependency: DependsParam = Depends(enforce)
    return dependency


def document_credentials(app: FastAPI) -> None:
    """The credentials ``guard`` reads, in the app's OpenAPI document as FastAPI writes a
    security dependency: both schemes under ``components``, and on every operation (the guard
    is app-wide) either of them, before any of the operation's own."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = build()
        if fresh:
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            for scheme in _CREDENTIALS:
                schemes[scheme.scheme_name] = jsonable_encoder(scheme.model, by_alias=True,
                                                               exclude_none=True)
            either: list[dict[str, list[str]]] = [{s.scheme_name: []} for s in _CREDENTIALS]
            for operations in schema.get("paths", {}).values():
                for method, operation in operations.items():
                    if method in _METHODS:
                        operation["security"] = [*either, *operation.get("security", [])]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _principal(auth: Authenticator, token: str | None, key: str | None) -> Principal | None:
    if token is None and key is None:
        return None
    if token is not None and key is not None:  # whose rights would apply is no guess to make
        raise _unauthorized("send a bearer token or an API key, not both")
    try:
        principal = await auth.from_token(token) if token else await auth.from_key(key or "")
    except PyMongoError as error:  # who is calling cannot be known now: never let it through
        raise _store_down(auth.settings) from error
    except IdentityProviderDown as error:
        log.warning("sign-in with the identity provider is unavailable: %s", error)
        raise _store_down(auth.settings, "the identity provider") from error
    except OidcRejected as rejected:
        if rejected.status == status.HTTP_401_UNAUTHORIZED:
            raise _unauthorized(rejected.reason) from rejected
        raise HTTPException(rejected.status, rejected.reason) from rejected
    if principal is None:
        raise _unauthorized("invalid, expired or revoked credentials")
    return principal


def build_auth_router() -> APIRouter:
    router = APIRouter(prefix="/v1/auth", tags=["auth"])

    # Per address, before the form is checked: guessing passwords across many accounts from
    # one address is slowed down too, not only one account's lock-out.
    @router.post("/token", response_model=TokenResponse,
                 dependencies=[Depends(rate_limit("rate_limit_sign_in"))], responses={
        400: {"description": "Wrong username or password, or the account is locked for a while"},
        429: {"description": "Too many sign-ins from this address; see Retry-After"},
        503: {"description": "The account store is unreachable"}})
    async def sign_in(request: Request,
                      form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Any:
        """OAuth2 password flow: form-encoded ``username`` and ``password`` give a signed
        access token to send as ``Authorization: Bearer``."""
        auth: Authenticator = request.app.state.auth
        try:
            token = await auth.sign_in(form.username, form.password)
        except PyMongoError as error:
            raise _store_down(auth.settings) from error
        if token is None:
            # One answer for a wrong name, a wrong password and a locked account.
            return JSONResponse(status_code=status.HTTP_400_BAD_REQUEST, content={
                "error": "invalid_grant",
                "error_description": "wrong username or password, or too many failed "
                                     "sign-ins: try again later"})
        return token

    _ = sign_in
    return router
