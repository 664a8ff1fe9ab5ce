"""HTTP: the serving SLA policy (``GET /v1/policy``) and a reload on an administrator's
demand (``POST /v1/policy/reload``), audited with the administrator as actor."""

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder

from services.sla.policy_reload import PolicyReloader
from shared.auth import access_of, request_id_of


def _reloader(request: Request) -> PolicyReloader:
    reloader: PolicyReloader = request.app.state.policy_reloader
    return reloader


def build_policy_router() -> APIRouter:
    router = APIRouter(prefix="/v1/policy", tags=["policy"])

    @router.get("")
    async def get_policy(request: Request) -> dict[str, Any]:
        """The serving policy: version (hash of its files), targets, levels, calendars, when
        loaded, and the last refusal."""
        encoded: dict[str, Any] = jsonable_encoder(_reloader(request).status())
        return encoded

    @router.post("/reload", responses={422: {"description": "Policy refused; the old one serves"}})
    async def reload_policy(request: Request) -> dict[str, Any]:
        """Read the policy files now. An invalid policy is refused with its reason (422) and
        the policy already loaded keeps serving. A change is recorded in the audit log
        (``policy_change``) with the caller as actor."""
        reloader = _reloader(request)
        await reloader.reload(actor=access_of(request).audit_actor,
                              request_id=request_id_of(request))
        if reloader.last_error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, reloader.last_error)
        encoded: dict[str, Any] = jsonable_encoder(reloader.status())
        return encoded

    _ = (get_policy, reload_policy)
    return router
