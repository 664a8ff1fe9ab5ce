"""The console's session: a signed cookie (HttpOnly, SameSite=Lax, Secure when the page came
over https) holding the person's API token, who they are, a CSRF token for every form, and the
tracking codes a citizen opened. Signed with a key derived from the auth secret, so a cookie
cannot be forged or edited; it expires with the token."""

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request, Response, status
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "disposisi_console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
ANONYMOUS_SECONDS = 24 * 3600  # a citizen's session: the form's CSRF token and opened codes


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    token: str | None = None
    user: dict[str, Any] | None = None  # username, role, agency (from the sign-in's claims)
    codes: dict[str, str] = field(default_factory=dict)  # ticket id -> tracking code
    flash: str | None = None
    changed: bool = False

    @property
    def signed_in(self) -> bool:
        return self.token is not None and self.user is not None


class Sessions:
    def __init__(self, secret: str, max_age: float) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt="disposisi-console-session")
        self.max_age = max_age

    def read(self, request: Request) -> Session:
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                data = self.serializer.loads(raw, max_age=int(max(self.max_age, ANONYMOUS_SECONDS)))
                return Session(csrf=data["csrf"], token=data.get("token"), user=data.get("user"),
                               codes=data.get("codes", {}), flash=data.get("flash"))
            except (BadSignature, KeyError, TypeError):
                pass
        return Session(changed=True)

    def write(self, request: Request, response: Response, session: Session) -> None:
        data = {"csrf": session.csrf, "token": session.token, "user": session.user,
                "codes": session.codes, "flash": session.flash}
        response.set_cookie(COOKIE, self.serializer.dumps(data), httponly=True, samesite="lax",
                            secure=request.url.scheme == "https", path="/",
                            max_age=int(self.max_age if session.token else ANONYMOUS_SECONDS))


def check_csrf(session: Session, given: str | None) -> None:
    """Every form (and HTMX request) carries the session's CSRF token: a page of another site
    cannot make the browser act with this session."""
    if not given or not hmac.compare_digest(given, session.csrf):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "formulir kedaluwarsa atau tidak sah; muat ulang halaman")
