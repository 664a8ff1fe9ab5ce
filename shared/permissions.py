"""Who may call which endpoint: THE permission table, and the pure decision drawn from it.

One row per (service, method, path template). A row maps each role that may call the endpoint
to the scope it may act in; a role missing from a row may not call it (403, or 401 without
credentials). ``PUBLIC`` rows need no credentials. Every endpoint of every service must have a
row (a test compares the apps' routes with this table), and a test walks every row against the
running services.

Roles: the people's roles of ``shared.accounts.Role``, plus ``channel`` (an API key of a
complaint channel) and ``service`` (an API key of a Disposisi service; services talk over Kafka
today, so no row grants it anything yet).
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

from shared.contracts import UpdateAction

CHANNEL = "channel"
SERVICE = "service"
ANYONE = "anyone"  # the role key of public rows
ROLES = ("officer", "agency_head", "triage", "supervisor", "admin", CHANNEL, SERVICE)
TRIAGE_QUEUE = "TRIAGE"  # the agency code of the triage desk's queue


class Scope(StrEnum):
    PUBLIC = "public"  # anyone, no credentials
    TENANT = "tenant"  # everything of the caller's own tenant
    AGENCY = "agency"  # tickets (or the report row) of the caller's own agency only
    TRIAGE = "triage"  # tickets in the triage desk's queue of the caller's tenant


@dataclass(frozen=True)
class Endpoint:
    service: str  # intake, sla, router, notify, lapor, or "*" for every service
    method: str
    path: str  # the route's path template, e.g. /v1/tickets/{ticket_id}


PUBLIC = {ANYONE: Scope.PUBLIC}

PERMISSIONS: dict[Endpoint, Mapping[str, Scope]] = {
    # every service
    Endpoint("*", "GET", "/healthz"): PUBLIC,
    Endpoint("*", "GET", "/readyz"): PUBLIC,
    Endpoint("*", "GET", "/metrics"): PUBLIC,  # settings may bind it to a separate address
    Endpoint("*", "POST", "/v1/auth/token"): PUBLIC,
    # intake
    Endpoint("intake", "POST", "/v1/complaints"): {CHANNEL: Scope.TENANT},
    Endpoint("intake", "GET", "/v1/complaints/{ticket_id}"): PUBLIC,  # the citizen's tracking view
    # the citizen's answer to the agency: the tracking code (checked by the handler) is the key
    Endpoint("intake", "POST", "/v1/complaints/{ticket_id}/replies"): PUBLIC,
    # attachments: the channel that took a complaint uploads its files; the citizen (with the
    # tracking code, checked by the handler) and the ticket's agency read them
    Endpoint("intake", "POST", "/v1/complaints/{ticket_id}/attachments"): {CHANNEL: Scope.TENANT},
    Endpoint("intake", "GET", "/v1/complaints/{ticket_id}/attachments"): PUBLIC,
    Endpoint("intake", "GET", "/v1/complaints/{ticket_id}/attachments/{attachment_id}"): PUBLIC,
    Endpoint("intake", "GET", "/v1/tickets/{ticket_id}/attachments"): {
        "officer": Scope.AGENCY, "agency_head": Scope.AGENCY, "triage": Scope.TRIAGE,
        "supervisor": Scope.TENANT},
    Endpoint("intake", "GET", "/v1/tickets/{ticket_id}/attachments/{attachment_id}"): {
        "officer": Scope.AGENCY, "agency_head": Scope.AGENCY, "triage": Scope.TRIAGE,
        "supervisor": Scope.TENANT},
    # the agency's photo of the fixed problem, sent when it resolves
    Endpoint("intake", "POST", "/v1/tickets/{ticket_id}/attachments"): {
        "officer": Scope.AGENCY, "agency_head": Scope.AGENCY},
    # Open311 GeoReport v2: its api_key travels in the form or query; the handlers check it
    Endpoint("intake", "GET", "/open311/v2/discovery.{fmt}"): PUBLIC,
    Endpoint("intake", "GET", "/open311/v2/services.{fmt}"): PUBLIC,
    Endpoint("intake", "GET", "/open311/v2/services/{service_code}.{fmt}"): PUBLIC,
    Endpoint("intake", "POST", "/open311/v2/requests.{fmt}"): PUBLIC,
    Endpoint("intake", "GET", "/open311/v2/requests.{fmt}"): PUBLIC,
    Endpoint("intake", "GET", "/open311/v2/requests/{service_request_id}.{fmt}"): PUBLIC,
    Endpoint("intake", "GET", "/open311/v2/tokens/{token}.{fmt}"): PUBLIC,
    # SLA
    Endpoint("sla", "GET", "/v1/tickets/{ticket_id}"): {
        "officer": Scope.AGENCY, "agency_head": Scope.AGENCY, "triage": Scope.TRIAGE,
        "supervisor": Scope.TENANT},
    # the inbox: a page of the open tickets in the caller's scope (console helper)
    Endpoint("sla", "GET", "/v1/tickets"): {
        "officer": Scope.AGENCY, "agency_head": Scope.AGENCY, "triage": Scope.TRIAGE,
        "supervisor": Scope.TENANT},
    Endpoint("sla", "POST", "/v1/tickets/{ticket_id}/events"): {
        "officer": Scope.AGENCY, "agency_head": Scope.AGENCY},
    Endpoint("sla", "POST", "/v1/tickets/{ticket_id}/route"): {"triage": Scope.TRIAGE},
    # the desk accepts a decision the router's second opinion disputed (it leaves the review list)
    Endpoint("sla", "POST", "/v1/tickets/{ticket_id}/review/accept"): {"triage": Scope.TRIAGE},
    Endpoint("sla", "GET", "/v1/reports/compliance"): {
        "agency_head": Scope.AGENCY, "supervisor": Scope.TENANT},
    # escalations: supervisors read and acknowledge them; an agency head reads its agency's
    Endpoint("sla", "GET", "/v1/escalations"): {
        "agency_head": Scope.AGENCY, "supervisor": Scope.TENANT},
    Endpoint("sla", "POST", "/v1/escalations/{escalation_id}/acknowledge"): {
        "supervisor": Scope.TENANT},
    Endpoint("sla", "GET", "/v1/policy"): {"admin": Scope.TENANT, "supervisor": Scope.TENANT},
    Endpoint("sla", "POST", "/v1/policy/reload"): {"admin": Scope.TENANT},
    # router
    Endpoint("router", "GET", "/v1/rulebook"): {
        "admin": Scope.TENANT, "supervisor": Scope.TENANT, "triage": Scope.TENANT},
    Endpoint("router", "POST", "/v1/rulebook/reload"): {"admin": Scope.TENANT},
    # notifications: the dashboard's deliveries (failed ones: ?status=failed)
    Endpoint("notify", "GET", "/v1/deliveries"): {
        "agency_head": Scope.AGENCY, "supervisor": Scope.TENANT},
    # chat channels: the providers' webhooks, each checking its own signature or secret
    Endpoint("chat", "GET", "/webhooks/whatsapp"): PUBLIC,
    Endpoint("chat", "POST", "/webhooks/whatsapp"): PUBLIC,
    Endpoint("chat", "POST", "/webhooks/sms"): PUBLIC,
    # e-mail channel: how many mails wait per state (no address, subject or text)
    Endpoint("mailbox", "GET", "/v1/mail/summary"): {"supervisor": Scope.TENANT},
    # SP4N-LAPOR! connector: the status updates for LAPOR! (admin instansi = triage desk)
    Endpoint("lapor", "GET", "/v1/lapor/updates"): {
        "triage": Scope.TENANT, "supervisor": Scope.TENANT, "admin": Scope.TENANT},
}

_OFFICER_ACTIONS = frozenset({
    UpdateAction.ACKNOWLEDGED, UpdateAction.RESPONDED, UpdateAction.NEEDS_INFO,
    UpdateAction.RESOLVED, UpdateAction.REJECTED, UpdateAction.NOTE,
    # recorded for a citizen who answered by phone or at the counter: it only resumes clocks
    UpdateAction.CITIZEN_REPLIED,
    UpdateAction.PICKED_UP})
# Which actions of POST /v1/tickets/{ticket_id}/events each role may take.
UPDATE_ACTIONS: Mapping[str, frozenset[UpdateAction]] = {
    "officer": _OFFICER_ACTIONS,
    "agency_head": _OFFICER_ACTIONS | {UpdateAction.REPRIORITISED},
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person (``user``), a channel or a service, always of one tenant."""

    kind: str  # user, channel, service
    name: str  # username, channel name or service name
    tenant: str
    role: str
    agency: str | None = None

    @property
    def actor(self) -> str:
        """How updates name the caller: ``dlh.andi (officer, DLH)``."""
        detail = f"{self.role}, {self.agency}" if self.agency else self.role
        return f"{self.name} ({detail})"[:120]


@dataclass(frozen=True)
class Decision:
    """The outcome for one call: ``status`` None means allowed within ``scope``."""

    status: int | None
    scope: Scope | None = None
    reason: str = ""


def rule_for(service: str, method: str, path: str) -> Mapping[str, Scope] | None:
    return PERMISSIONS.get(Endpoint(service, method, path)) or PERMISSIONS.get(Endpoint("*", method, path))


def decide(rule: Mapping[str, Scope] | None, principal: Principal | None, *,
           tenant: str | Collection[str], names_ticket: bool) -> Decision:
    """Whether ``principal`` may call an endpoint of a service serving ``tenant`` (one, or
    several on one deployment). A ticket's own agency and tenant are checked later, once the
    ticket is read (``sees_ticket``, and the handler's query by the caller's tenant)."""
    served = {tenant} if isinstance(tenant, str) else set(tenant)
    if rule is None:  # an endpoint without a row is closed to everyone
        return Decision(403, reason="this endpoint has no permission row")
    if ANYONE in rule:
        return Decision(None, rule[ANYONE])
    if principal is None:
        return Decision(401, reason="credentials required")
    scope = rule.get(principal.role)
    if scope is None:
        return Decision(403, reason=f"role {principal.role} may not call this endpoint")
    if principal.tenant not in served:
        # a ticket of another tenant must look exactly like one that does not exist
        return Decision(404 if names_ticket else 403, reason="another tenant")
    return Decision(None, scope)


def sees_ticket(scope: Scope, principal: Principal | None, ticket_agency: str, *,
                disputed: bool = False) -> bool:
    """Whether a caller allowed within ``scope`` may see a ticket now in ``ticket_agency``.
    ``disputed``: the router's second opinion flagged the ticket's decision and the desk has
    not settled it; the triage desk reviews it wherever it went."""
    if scope in (Scope.PUBLIC, Scope.TENANT):
        return True
    if scope is Scope.TRIAGE:
        return ticket_agency == TRIAGE_QUEUE or disputed
    return principal is not None and principal.agency == ticket_agency


def markdown_table() -> str:
    """The table as Markdown, for the README (``disposisi admin permissions``)."""
    roles = list(ROLES)
    lines = ["| service | endpoint | " + " | ".join(roles) + " |",
             "|---|---|" + "---|" * len(roles)]
    for endpoint, rule in PERMISSIONS.items():
        service = "every" if endpoint.service == "*" else endpoint.service
        if ANYONE in rule:
            cells = ["public"] * len(roles)
        else:
            cells = [rule[r].value if r in rule else "—" for r in roles]
        lines.append(f"| {service} | `{endpoint.method} {endpoint.path}` | " + " | ".join(cells) + " |")
    actions = "; ".join(f"{role}: {', '.join(sorted(a.value for a in acts))}"
                        for role, acts in UPDATE_ACTIONS.items())
    lines += ["", f"Actions of `POST /v1/tickets/{{ticket_id}}/events` by role — {actions}."]
    return "\n".join(lines)
