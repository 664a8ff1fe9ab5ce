"""Console wiring: templates and their filters, the vendored assets, the session, the clients
of intake and the SLA API, health."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from services.console import api, domain, i18n
from services.console.errors import install_error_pages
from services.console.flows import Backends
from services.console.replies import ReplyTemplates, load_reply_templates
from services.console.session import Sessions
from services.router.rulebook import load_rulebook
from shared.auth import check_secret
from shared.metrics import Metrics, install_metrics
from shared.runtime import serve
from shared.settings import Settings
from shared.tenants import load_tenants

SERVICE = "console"
HERE = Path(__file__).resolve().parent


def templates_for(settings: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    i18n.install(templates.env)  # `_()` in the request's language (Indonesian or English)
    templates.env.globals["nav_pages"] = domain.nav_pages
    templates.env.filters.update({
        "duration": domain.duration_label,
        "wib": partial(domain.local_time, timezone=settings.timezone, gettext=i18n.gettext),
        "age": partial(domain.age, gettext=i18n.gettext, ngettext=i18n.ngettext),
        "status_label": lambda s: i18n.gettext(domain.status_label(s)),
        "priority_label": lambda p: i18n.gettext(domain.priority_label(p)),
        "action_label": lambda a: i18n.gettext(domain.action_label(a)),
        "clock_state": domain.clock_state})
    return templates


def reply_templates(settings: Settings) -> ReplyTemplates:
    """Each tenant's reply templates, checked against the agency codes of its rulebook."""
    agencies_of = {tenant.id: set(load_rulebook(tenant.rulebook).codes)
                   for tenant in load_tenants(settings)}
    return load_reply_templates(settings.console_reply_templates_dir, agencies_of)


def create_app(settings: Settings) -> FastAPI:
    check_secret(settings)  # the session is signed with a key derived from it
    backends = Backends(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await backends.close()

    app = FastAPI(title="Disposisi console", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.console = api.Console(
        settings, backends, Sessions(settings.auth_secret, settings.auth_token_seconds),
        templates_for(settings), load_rulebook(settings.rulebook), reply_templates(settings))
    install_error_pages(app)  # inside the language middleware: pages in the request's language
    app.add_middleware(i18n.LanguageMiddleware)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.build_router())
    _add_health(app, {"sla": f"{settings.console_sla_url}/healthz",
                      "intake": f"{settings.console_intake_url}/healthz"})
    install_metrics(app, Metrics(SERVICE))
    return app


def _add_health(app: FastAPI, upstream: dict[str, str]) -> None:
    """``/healthz``: the process answers. ``/readyz``: the services behind the pages answer
    (the console has no broker or store of its own)."""

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"service": SERVICE, "status": "alive"})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        problems = {name: await _answers(url) for name, url in upstream.items()}
        failed = [name for name, problem in problems.items() if problem]
        return JSONResponse(status_code=503 if failed else 200, content={
            "service": SERVICE, "ready": not failed, "failed": failed,
            "checks": {n: {"ok": p is None, **({"problem": p} if p else {})}
                       for n, p in problems.items()}})

    _ = (healthz, readyz)


async def _answers(url: str) -> str | None:
    """None when the service behind the pages answers; else what went wrong."""
    try:
        async with httpx.AsyncClient(timeout=3.0) as http:
            reply = await http.get(url)
        return None if reply.status_code == 200 else f"{url} answered {reply.status_code}"
    except httpx.HTTPError as error:
        return f"{url}: {type(error).__name__}"


def run(settings: Settings) -> None:
    serve(create_app(settings), settings.http_host, settings.console_port,
          shutdown_seconds=settings.http_shutdown_seconds)

