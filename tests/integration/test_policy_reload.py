"""The SLA policy reloads while the service runs, and every change is in the audit log: by the
administrator who asked over HTTP, or by ``file-reload`` when the watcher picks up an edited
file. A refused policy changes nothing and records nothing."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.sla.app import create_app
from shared.audit_store import AuditLog
from shared.mongo import Document
from shared.settings import Settings
from tests.conftest import DEMO_POLICY
from tests.integration.auth_support import Accounts
from tests.integration.support import eventually, serving

pytestmark = pytest.mark.integration


@asynccontextmanager
async def sla_with_policy(settings: Settings, policy: Path,
                          reload_seconds: float) -> AsyncIterator[str]:
    policy.write_text(Path(DEMO_POLICY).read_text())
    settings = settings.model_copy(update={"sla_policy": policy,
                                           "sla_policy_reload_seconds": reload_seconds})
    async with serving(create_app(settings), settings.sla_port) as url:
        yield url


def edit(policy: Path, old: str, new: str) -> None:
    text = policy.read_text()
    assert old in text
    policy.write_text(text.replace(old, new))


async def policy_changes(settings: Settings, mongo: AsyncMongoClient[Document]) -> list[dict[str, Any]]:
    entries = await AuditLog(mongo[settings.mongodb_database]).latest(settings.tenant, limit=100)
    return [e for e in entries if e["action"] == "policy_change"]


async def test_an_administrator_reloads_the_policy_and_is_recorded(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts,
        tmp_path: Path) -> None:
    admin = await accounts.user("admin.kota", "admin")
    supervisor = await accounts.user("inspektorat", "supervisor")
    policy = tmp_path / "policy.yaml"
    async with sla_with_policy(settings, policy, reload_seconds=3600) as url, \
            httpx.AsyncClient(timeout=60) as http:
        before = (await http.get(f"{url}/v1/policy", headers=supervisor.headers)).json()
        unchanged = await http.post(f"{url}/v1/policy/reload", headers=admin.headers)
        edit(policy, "name: demo", "name: demo-longer")
        reloaded = await http.post(f"{url}/v1/policy/reload",
                                   headers={**admin.headers, "X-Request-ID": "req-policy-1"})
        edit(policy, "targets:", "targets: [")  # no longer YAML
        refused = await http.post(f"{url}/v1/policy/reload", headers=admin.headers)
        after = (await http.get(f"{url}/v1/policy", headers=admin.headers)).json()
        by_supervisor = await http.post(f"{url}/v1/policy/reload", headers=supervisor.headers)
    assert unchanged.status_code == 200 and unchanged.json()["version"] == before["version"]
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["targets"] == ["demo-longer"]
    assert reloaded.json()["version"] != before["version"]
    assert refused.status_code == 422 and "not valid YAML" in refused.json()["detail"]
    assert after["version"] == reloaded.json()["version"], "the refused policy did not replace it"
    assert after["last_error"] and "not valid YAML" in after["last_error"]
    assert by_supervisor.status_code == 403
    [change] = await policy_changes(settings, mongo)  # only the one that took effect
    assert change["actor"] == {"name": "admin.kota", "role": "admin", "agency": None, "kind": "person"}
    assert change["request_id"] == "req-policy-1"
    assert change["before"]["version"] == before["version"]
    assert change["before"]["targets"] == ["demo"]
    assert change["after"] == {**change["after"], "version": reloaded.json()["version"],
                               "targets": ["demo-longer"]}
    assert (await AuditLog(mongo[settings.mongodb_database]).verify(settings.tenant)).ok


async def test_an_edited_policy_file_is_picked_up_and_recorded_as_file_reload(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts,
        tmp_path: Path) -> None:
    admin = await accounts.user("admin.kota", "admin")
    policy = tmp_path / "policy.yaml"
    async with sla_with_policy(settings, policy, reload_seconds=0.2) as url, \
            httpx.AsyncClient(timeout=60) as http:
        edit(policy, "response: 5s", "response: 9s")

        async def recorded() -> list[dict[str, Any]]:
            return await policy_changes(settings, mongo)

        changes = await eventually(recorded, timeout=60)
        serving_now = (await http.get(f"{url}/v1/policy", headers=admin.headers)).json()
    assert len(changes) == 1
    assert changes[0]["actor"] == {"name": "file-reload", "role": "system", "agency": None,
                                   "kind": "system"}
    assert changes[0]["after"]["version"] == serving_now["version"]
    assert changes[0]["before"]["version"] != serving_now["version"]
