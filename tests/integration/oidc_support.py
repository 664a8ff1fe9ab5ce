"""A real OpenID Connect provider on loopback (oidc-provider-mock: Authlib's authorization
server on Flask, served by werkzeug in a thread), and a client that signs people in at it
through the authorization code flow, the way a front end would."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import httpx
import oidc_provider_mock
import werkzeug.serving

CLIENT_ID = "disposisi"
REDIRECT_URI = "http://127.0.0.1/signed-in"  # never followed: the code is read from the redirect


@dataclass(frozen=True)
class IdentityProvider:
    issuer: str
    port: int

    async def sign_in(self, sub: str, claims: dict[str, Any], *, client_id: str = CLIENT_ID) -> str:
        """The ID token the provider issues for ``sub`` with ``claims`` to ``client_id``."""
        async with httpx.AsyncClient(base_url=self.issuer, timeout=30) as http:
            put = await http.put(f"/users/{quote(sub)}", json=claims)
            assert put.status_code == 204, put.text
            config = (await http.get("/.well-known/openid-configuration")).json()
            # The person approves at the provider's authorization page (its form takes the sub).
            approved = await http.post(config["authorization_endpoint"], params={
                "client_id": client_id, "response_type": "code", "redirect_uri": REDIRECT_URI,
                "scope": "openid", "state": "st4te"}, data={"sub": sub})
            assert approved.status_code == 302, approved.text
            query = parse_qs(urlparse(approved.headers["location"]).query)
            assert query["state"] == ["st4te"]
            token = await http.post(config["token_endpoint"], data={
                "grant_type": "authorization_code", "code": query["code"][0],
                "redirect_uri": REDIRECT_URI, "client_id": client_id, "client_secret": "any"})
            assert token.status_code == 200, token.text
            id_token: str = token.json()["id_token"]
            return id_token


@contextmanager
def identity_provider(port: int = 0, *, token_lifetime: timedelta = timedelta(hours=1)
                      ) -> Iterator[IdentityProvider]:
    """A provider with its own fresh signing key; a negative lifetime issues expired tokens."""
    app = oidc_provider_mock.app(access_token_max_age=token_lifetime)
    server = werkzeug.serving.make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    try:
        yield IdentityProvider(f"http://127.0.0.1:{server.server_port}", server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)
