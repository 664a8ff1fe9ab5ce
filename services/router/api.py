"""Router's HTTP API: which rulebook is serving, and a reload on demand."""

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder

from services.router.reload import RulebookReloader
from services.router.second_opinion import Reviewer
from shared.auth import access_of, request_id_of


def _reloader(request: Request) -> RulebookReloader:
    """The caller's tenant's rulebook (the guard let only callers of served tenants through)."""
    reloaders: dict[str, RulebookReloader] = request.app.state.reloaders
    return reloaders[access_of(request).tenant]


def _second_opinion(request: Request, tenant: str) -> dict[str, Any] | None:
    reviewer: Reviewer | None = getattr(request.app.state, "reviewer", None)
    home: str = request.app.state.home_tenant
    if reviewer is None or reviewer.model is None or tenant != home:
        return None
    return {"model_version": reviewer.model.version, "examples": reviewer.model.examples}


def build_router() -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/rulebook")
    async def get_rulebook(request: Request) -> dict[str, Any]:
        """The serving rulebook: version (content hash), size, when loaded, last refusal; and
        the second opinion serving beside it (model version and examples; null: none yet)."""
        reloader = _reloader(request)
        encoded: dict[str, Any] = jsonable_encoder({
            **reloader.status(), "second_opinion": _second_opinion(request, reloader.owner)})
        return encoded

    @router.post("/rulebook/reload", responses={422: {"description": "Rulebook refused; old one serves"}})
    async def reload_rulebook(request: Request) -> dict[str, Any]:
        """Read the rulebook file now. An invalid file is refused with its reason (422) and
        the rulebook already loaded keeps serving."""
        reloader = _reloader(request)
        await reloader.reload(actor=access_of(request).audit_actor,
                              request_id=request_id_of(request))
        if reloader.last_error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, reloader.last_error)
        encoded: dict[str, Any] = jsonable_encoder(reloader.status())
        return encoded

    return router
