"""Intake groups concurrent HTTP submissions into one write (``flows.Grouped``): every 202 is
answered after its own complaint is stored, concurrent retries with one idempotency key still
get one ticket (the second told it is a duplicate). A failed group: tests/unit/test_intake_grouped.py."""

import asyncio

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.intake.app import create_app
from services.intake.flows import Grouped, Submission
from shared.mongo import Document
from shared.settings import Settings
from tests.integration.auth_support import Accounts
from tests.integration.support import serving

pytestmark = pytest.mark.integration

TEXT = "Sampah di TPS Jl. Suprapto sudah seminggu tidak diangkut, baunya menyengat"


async def test_concurrent_posts_are_each_stored_before_their_202_and_keys_stay_unique(
        settings: Settings, mongo: AsyncMongoClient[Document], accounts: Accounts) -> None:
    web = await accounts.channel("web")
    complaints = mongo[settings.mongodb_database]["complaints"]
    # 32 posts at once from one key and address: the abuse limits would refuse some.
    app = create_app(settings.model_copy(update={"rate_limits_enabled": False}))
    writes: list[int] = []
    async with serving(app, settings.intake_port) as url, \
            httpx.AsyncClient(headers=web.headers, timeout=120) as http:
        grouped: Grouped = app.state.grouped
        store = grouped.intake.store

        async def counted_store(submissions: list[Submission]) -> list[Document]:
            writes.append(len(submissions))
            return await store(submissions)

        grouped.intake.store = counted_store  # type: ignore[method-assign]

        async def post(external_id: str) -> httpx.Response:
            response = await http.post(f"{url}/v1/complaints", json={
                "channel": "web", "text": TEXT, "external_id": external_id})
            if response.status_code == 202:  # stored before it was answered
                stored = await complaints.find_one({"ticket_id": response.json()["ticket_id"]})
                assert stored is not None
            return response

        ids = [f"grouped-{n}" for n in range(30)] + ["grouped-same"] * 2
        answers = await asyncio.gather(*(post(i) for i in ids))
    assert [a.status_code for a in answers] == [202] * len(ids)
    assert len({a.json()["ticket_id"] for a in answers}) == 31  # the two retries share one
    same = [a.json() for a in answers[-2:]]
    assert same[0]["ticket_id"] == same[1]["ticket_id"]
    assert sorted(a["duplicate"] for a in same) == [False, True]
    assert await complaints.count_documents({"_id": {"$regex": "^ext:[^:]+:web:grouped-"}}) == 31
    assert sum(writes) >= len(ids) and len(writes) >= 1
