"""A transaction the embedded store gives up, provoked on demand: NX-27017 keeps transactions as
nested savepoints, so when a transaction opened earlier commits while a later one is writing,
the later one's commit fails with "no such savepoint" (under load, two agencies' updates at
once did this). The ticket store answers a conflict (the update is retried on a fresh read),
and the report counters count again: each source once, no error."""

import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.sla.read_model_store import COUNTERS, ReportCounters
from services.sla.store import TicketStore
from shared.mongo import Document
from tests.integration.test_sla_reports import TIMEZONE, db, many_tickets

pytestmark = pytest.mark.integration
_ = db  # the fixture: a fresh database, dropped afterwards
GAVE_UP = "the store gave up a transaction"


class CommitsEarlierFirst:
    """A collection whose bulk write first commits ``earlier``, a transaction another session
    opened before: a transaction that wrote already and writes here is then given up."""

    def __init__(self, collection: AsyncCollection[Document], earlier: AsyncClientSession) -> None:
        self.collection, self.earlier = collection, earlier

    def __getattr__(self, name: str) -> Any:
        return getattr(self.collection, name)

    async def _commit_earlier(self) -> None:
        if self.earlier.in_transaction:
            await self.earlier.commit_transaction()

    async def bulk_write(self, *args: Any, **kwargs: Any) -> Any:
        await self._commit_earlier()
        return await self.collection.bulk_write(*args, **kwargs)


class CountersBesideAnEarlierTransaction(ReportCounters):
    def __init__(self, db: AsyncDatabase[Document], earlier: AsyncClientSession) -> None:
        super().__init__(db, lambda tenant: TIMEZONE)
        self.interleaved = CommitsEarlierFirst(db[COUNTERS], earlier)

    @property
    def counters(self) -> AsyncCollection[Document]:
        return cast(AsyncCollection[Document], self.interleaved)


@pytest.fixture
async def earlier(db: AsyncDatabase[Document]) -> AsyncIterator[AsyncClientSession]:
    """Another writer's transaction, open (one write in it) before the test's own begins."""
    async with db.client.start_session() as session:
        await session.start_transaction()
        await db["elsewhere"].insert_one({"_id": "another writer"}, session=session)
        yield session


async def test_counting_in_a_transaction_the_store_gave_up_counts_again_once(
        db: AsyncDatabase[Document], earlier: AsyncClientSession,
        caplog: pytest.LogCaptureFixture) -> None:
    resolved = [t for t in many_tickets(40) if t["status"] == "resolved"]
    plain = ReportCounters(db.client[f"{db.name}_plain"], lambda tenant: TIMEZONE)
    try:
        expected = await plain.count_tickets(resolved)
        assert expected == len(resolved) > 0
        wanted = await plain.counters.find({}).sort("_id").to_list(None)
    finally:
        await db.client.drop_database(plain.db.name)

    counters = CountersBesideAnEarlierTransaction(db, earlier)
    with caplog.at_level(logging.WARNING, logger="shared.transactions"):
        await counters.count_tickets(resolved)  # before: OperationFailure "no such savepoint"
    assert GAVE_UP in caplog.text  # the store did give the counting transaction up
    assert await db[COUNTERS].find({}).sort("_id").to_list(None) == wanted
    assert await db["report_ledger"].count_documents({}) == len(resolved)
    assert await counters.count_tickets(resolved) == 0  # and a redelivery adds nothing


async def test_a_ticket_write_the_store_gave_up_is_a_conflict_not_an_error(
        db: AsyncDatabase[Document], earlier: AsyncClientSession,
        caplog: pytest.LogCaptureFixture) -> None:
    store = TicketStore(db)
    ticket = many_tickets(1)[0] | {"version": 1}
    await db["tickets"].insert_one(ticket)
    # the inbox entry is written after the ticket, in the same transaction
    store.inbox = cast(AsyncCollection[Document], CommitsEarlierFirst(store.inbox, earlier))
    with caplog.at_level(logging.WARNING, logger="shared.transactions"):
        saved = await store.save_if_unchanged(ticket | {"status": "acknowledged"}, 1)
    assert GAVE_UP in caplog.text
    assert saved is False  # the caller reads the ticket again (and finds its change, or not)
