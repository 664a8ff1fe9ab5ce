"""Every service's API docs page (``/docs``) works on an intranet without internet: the page
names no outside host, and every script, style and icon it names is served by the service
itself. ``/redoc``, whose script only a CDN has, is not offered."""

import re
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from services.intake.app import create_app as intake_app
from services.mailbox.app import create_app as mailbox_app
from services.notify.app import create_app as notify_app
from services.router.app import create_app as router_app
from services.sla.app import create_app as sla_app
from shared.embedded import free_port
from shared.runtime import NO_CDN_DOCS, add_local_docs
from shared.settings import Settings
from tests.integration.support import serving

pytestmark = pytest.mark.integration

APPS: dict[str, tuple[Callable[[Settings], FastAPI], str]] = {
    "intake": (intake_app, "intake_port"), "router": (router_app, "router_port"),
    "sla": (sla_app, "sla_port"), "notify": (notify_app, "notify_port"),
    "mailbox": (mailbox_app, "mailbox_port")}


def _named_urls(page: str) -> list[str]:
    """Every address the page loads or links: src/href attributes and the quoted URLs of its
    inline script (Swagger UI is configured there)."""
    attributes = re.findall(r'(?:src|href)="([^"]+)"', page)
    scripted = re.findall(r"(?:url|oauth2RedirectUrl)['\"]?\s*:\s*['\"]([^'\"]+)['\"]", page)
    return attributes + scripted


@pytest.mark.parametrize("service", sorted(APPS))
async def test_the_docs_page_loads_only_from_the_service_itself(settings: Settings,
                                                                service: str) -> None:
    create, port_field = APPS[service]
    settings = settings.model_copy(update={"notify_port": free_port(), "mailbox_port": free_port(),
                                           "mailbox_smtp_port": free_port()})
    port = getattr(settings, port_field)
    async with serving(create(settings), port, consumers_assigned=False) as url, \
            httpx.AsyncClient(base_url=url, timeout=30) as http:
        page = await http.get("/docs")
        assert page.status_code == 200 and "SwaggerUIBundle" in page.text
        assert not re.search(r"https?://", page.text), "the page names an outside host"
        named = _named_urls(page.text)
        assets = [u for u in named if u.endswith((".js", ".css", ".png"))]
        assert len(assets) == 3, named  # script, style, icon
        assert "/openapi.json" in named
        for address in named:
            absolute = urljoin(f"{url}/docs", address)
            assert urlsplit(absolute).netloc == urlsplit(url).netloc, address
            loaded = await http.get(absolute)
            assert loaded.status_code == 200, address
            assert len(loaded.content) > 100, address
        script = await http.get("/docs-assets/swagger-ui-bundle.js")
        assert "javascript" in script.headers["content-type"]
        assert (await http.get("/docs/oauth2-redirect")).status_code == 200
        assert (await http.get("/redoc")).status_code in (401, 404)


def test_an_app_with_fastapis_own_cdn_docs_is_refused() -> None:
    with pytest.raises(ValueError, match="NO_CDN_DOCS"):
        add_local_docs(FastAPI())
    add_local_docs(FastAPI(**NO_CDN_DOCS))  # the way every service creates its app
