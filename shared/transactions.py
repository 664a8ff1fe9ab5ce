"""One MongoDB transaction, and what to do when the store gives it up.

NX-27017 (the embedded store) keeps transactions as nested savepoints: when one opened earlier
commits while a later one is still writing, the later one's commit fails with "no such
savepoint", unlabelled, its writes kept or not. MongoDB labels what it gives up
``TransientTransactionError``. The write was not at fault: the caller reads afresh and tries
again, its write idempotent against that read (a versioned ticket write reports a conflict and
the update finds its event id applied; the report counters find their ledger entries), rather
than answering 500 (tests/integration/test_transaction_gave_up.py provokes it)."""

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from shared.mongo import Document

log = logging.getLogger(__name__)
Result = TypeVar("Result")


def transaction_gave_up(error: OperationFailure) -> bool:
    """A transaction the store aborted through no fault of the write, worth trying again on a
    fresh read."""
    return error.has_error_label("TransientTransactionError") or \
        "no such savepoint" in str(error.details.get("errmsg", "") if error.details else error)


async def in_transaction(db: AsyncDatabase[Document],
                         work: Callable[[AsyncClientSession], Awaitable[Result]],
                         *, what: str) -> Result | None:
    """``work``'s result, its writes committed in one transaction; None when the store gave the
    transaction up (read again and retry). Other errors are raised.
    ``what`` names the write in the warning logged then (no personal data: an id)."""
    try:
        async with db.client.start_session() as session, await session.start_transaction():
            return await work(session)
    except OperationFailure as error:
        if not transaction_gave_up(error):
            raise
        log.warning("%s: the store gave up a transaction (%s); read again",
                    what, error.details.get("errmsg") if error.details else error)
        return None
